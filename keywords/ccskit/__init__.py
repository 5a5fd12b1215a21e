"""Internals of the CCS test kit: clients, fault tools, metrics, checkers.

Robot Framework libraries live one level up (``keywords/*.py``) and import from here.
"""
