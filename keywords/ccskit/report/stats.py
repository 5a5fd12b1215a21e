"""Summaries of latency samples and the grouping of sample names into the seed's categories."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..percentile import percentile

# Order matters: "e2e_delivery_ms" is end-to-end, not WebSocket delivery.
CATEGORIES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "e2e",
        "End-to-end",
        re.compile(r"e2e|end.?to.?end|round.?trip|rtt|cross.?(device|node)", re.I),
    ),
    ("db", "Database operation", re.compile(r"^db|database|query|insert|commit|sql", re.I)),
    ("ws", "WebSocket delivery", re.compile(r"^ws|websocket|deliver|fan.?out|broadcast", re.I)),
)
OTHER = ("other", "Other latencies")

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
# A percentile needs at least one sample beyond it: p90 needs 10 samples, p99 100, p99.9 1,000.
PERCENTILE_RULE = (
    "A percentile pX is shown only with at least 1 / (1 − X %) samples (p90: 10, p99: 100, "
    "p99.9: 1,000), so that at least one sample lies beyond it; otherwise it reads "
    "“n too small”."
)


def min_samples(pct: float) -> int:
    """Samples needed before the ``pct`` percentile means anything (see :data:`PERCENTILE_RULE`)."""
    if pct >= 100:
        raise ValueError(f"no sample count supports percentile {pct}")
    # round() first: 100 / (100 - 99.9) is 1000.0000000000001 in floating point.
    return max(1, math.ceil(round(100.0 / (100.0 - pct), 6)))


def has_enough(count: int, pct: float) -> bool:
    """``True`` when ``count`` samples are enough to state the ``pct`` percentile."""
    return count >= min_samples(pct)


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


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Count, mean, min, max and the usual percentiles (keys ``p50``, ``p99``, ``p99.9`` …).

    A percentile the sample count cannot support (:func:`has_enough`) is ``None``.
    """
    ordered = sorted(values)
    summary: dict[str, Any] = {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "min": ordered[0],
        "max": ordered[-1],
    }
    for pct in PERCENTILES:
        enough = has_enough(len(ordered), pct)
        summary[f"p{pct:g}"] = percentile(ordered, pct) if enough else None
    return summary


def rounded(summary: dict[str, Any], digits: int = 3) -> dict[str, Any]:
    """The summary with floats rounded for storage and logs (no 15-digit noise)."""
    return {
        k: round(v, digits) if isinstance(v, float) and math.isfinite(v) else v
        for k, v in summary.items()
    }


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
