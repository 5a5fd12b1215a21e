"""Benchmark helpers: raw limits of this machine and a reference server started for measuring."""
