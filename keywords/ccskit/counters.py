"""Reading a counter of a server's Prometheus ``/metrics`` page (protocol §8.6)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import requests
from prometheus_client.parser import text_string_to_metric_families


def counter_values(base_url: str, names: Iterable[str], timeout_s: float = 2.0) -> dict[str, float]:
    """The unlabelled counters (or gauges) ``names`` found on ``base_url``'s ``/metrics``, read
    in one request; a missing page or metric is left out."""
    wanted = set(names)
    try:
        reply = requests.get(f"{base_url}/metrics", timeout=timeout_s)
    except requests.RequestException:
        return {}
    if reply.status_code != 200:
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name in wanted and not sample.labels:
                found[sample.name] = float(sample.value)
    return found


def counter_value(base_url: str, name: str, timeout_s: float = 2.0) -> float | None:
    """The value of an unlabelled counter on ``base_url``'s ``/metrics``; None when the page
    or the counter is missing."""
    return counter_values(base_url, [name], timeout_s).get(name)


def wait_for_counter(
    base_url: str, name: str, done: Callable[[float], bool], timeout_s: float
) -> tuple[bool, float | None]:
    """Reads ``name`` until ``done(value)`` holds or ``timeout_s`` passes; returns whether it
    held and the last value read (None: never found)."""
    deadline = time.monotonic() + timeout_s
    value = counter_value(base_url, name)
    while value is None or not done(value):
        if time.monotonic() >= deadline:
            return False, value
        time.sleep(0.05)  # polling another process's endpoint: there is no event to wait on
        value = counter_value(base_url, name)
    return True, value
