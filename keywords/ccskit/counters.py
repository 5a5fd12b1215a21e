"""Reading a counter of a server's Prometheus ``/metrics`` page (protocol §8.6)."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families


def counter_value(base_url: str, name: str, timeout_s: float = 2.0) -> float | None:
    """The value of an unlabelled counter on ``base_url``'s ``/metrics``; None when the page
    or the counter is missing."""
    try:
        reply = requests.get(f"{base_url}/metrics", timeout=timeout_s)
    except requests.RequestException:
        return None
    if reply.status_code != 200:
        return None
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


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
