"""Summaries of latency samples and the grouping of sample names into the seed's categories."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

# Order matters: "e2e_delivery_ms" is end-to-end, not WebSocket delivery.
CATEGORIES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("e2e", "End-to-end", re.compile(r"e2e|end.?to.?end|round.?trip|rtt|cross.?device", re.I)),
    ("db", "Database operation", re.compile(r"^db|database|query|insert|commit|sql", re.I)),
    ("ws", "WebSocket delivery", re.compile(r"^ws|websocket|deliver|fan.?out|broadcast", re.I)),
)
OTHER = ("other", "Other latencies")

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def series_kind(name: str, unit: str) -> str:
    """Timeline panel of a series: ``latency``, ``rate``, ``memory``, ``cpu`` or ``other``.

    Judged by unit first (names vary between libraries: ``server_rss_mib``, ``server rss``).
    """
    unit = unit.strip()
    if unit in ("ms", "s", "us", "µs"):
        return "latency"
    if unit.endswith("/s"):
        return "rate"
    if unit in ("MiB", "KiB", "B", "GiB") and re.search(r"rss|mem", name, re.I):
        return "memory"
    if unit in ("%", "pct") and re.search(r"cpu", name, re.I):
        return "cpu"
    return "other"


def category_of(name: str) -> str:
    """Category key of a sample or metric name (``e2e``, ``db``, ``ws`` or ``other``)."""
    for key, _label, pattern in CATEGORIES:
        if pattern.search(name):
            return key
    return OTHER[0]


def category_label(key: str) -> str:
    for cat, label, _pattern in CATEGORIES:
        if cat == key:
            return label
    return OTHER[1]


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Percentile with linear interpolation between closest ranks of an already sorted list."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Count, mean, min, max and the usual percentiles (keys ``p50``, ``p99``, ``p99.9`` …)."""
    ordered = sorted(values)
    summary: dict[str, Any] = {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "min": ordered[0],
        "max": ordered[-1],
    }
    for pct in PERCENTILES:
        summary[f"p{pct:g}"] = percentile(ordered, pct)
    return summary


def latency_samples(samples: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Samples measured in time units, converted to milliseconds, keyed by name."""
    scale = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
    out = {}
    for name, entry in samples.items():
        unit = str(entry.get("unit", "")).strip()
        values = entry.get("values") or []
        if unit in scale and values:
            out[name] = {"unit": "ms", "values": [v * scale[unit] for v in values]}
    return out


def by_category(samples: dict[str, Any]) -> dict[str, list[float]]:
    """Latency values pooled per category (only categories that have values)."""
    pooled: dict[str, list[float]] = {}
    for name, entry in latency_samples(samples).items():
        pooled.setdefault(category_of(name), []).extend(entry["values"])
    return pooled


def fmt(value: float | None, unit: str = "") -> str:
    """A figure with sensible precision for a human reader (3 significant digits, no 1e-05)."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1e15:
        text = f"{int(value):,}"
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1 or magnitude == 0:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip() if unit else text
