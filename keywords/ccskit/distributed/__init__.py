"""Distributed load on Locust: the kit's device fleet as Locust users on a master and N workers.

``plan`` (what runs, who holds which device), ``bridge`` (gevent <-> asyncio), ``device`` and
``fleet`` (the worker's connections and records, built on ``ccskit.load``), ``worker`` and
``master`` (Locust custom messages, the end-of-run protocol, the checker over all workers),
``records`` (records on the wire), ``stats`` and ``figures`` (Locust's statistics and the kit's
metrics), ``locustfile`` (the Locust entry point) and ``launch`` (server + master + workers).
"""
