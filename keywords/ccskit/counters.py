"""Reading a counter of a server's Prometheus ``/metrics`` page (protocol §8.6)."""

from __future__ import annotations

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
