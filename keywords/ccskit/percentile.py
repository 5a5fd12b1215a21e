"""The kit's one percentile definition: nearest rank.

The p-th percentile of n values is the value at rank ``ceil(p / 100 * n)`` (1-based, at least 1)
of the sorted values: always a value that was measured, never an interpolation between two.
For two samples, p50 is the first (smaller) one and p51..p100 the second. The kit's keywords,
the report and the benchmark all use these functions, so a figure means the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank ``pct``-th percentile (0 <= pct <= 100; p0 is the minimum) of ``values``
    (any order)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {pct}")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(
    values: Sequence[float], points: Iterable[float] = (50, 95, 99)
) -> dict[str, float]:
    """``avg``, ``max`` and ``p<point>`` of ``values`` (NaN for each when nothing was measured)."""
    wanted = list(points)
    if not values:
        return {"avg": math.nan, "max": math.nan, **{f"p{p:g}": math.nan for p in wanted}}
    ordered = sorted(values)
    out = {"avg": sum(ordered) / len(ordered), "max": ordered[-1]}
    for p in wanted:
        out[f"p{p:g}"] = percentile(ordered, p)
    return out


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """``{count, p50_ms, p95_ms, p99_ms, max_ms}`` of latencies in milliseconds; fails when
    nothing was measured (a latency check over no message proves nothing)."""
    if not values:
        raise AssertionError("no latency was measured")
    figures = percentiles(values, (50, 95, 99))
    return {
        "count": float(len(values)),
        "p50_ms": round(figures["p50"], 3),
        "p95_ms": round(figures["p95"], 3),
        "p99_ms": round(figures["p99"], 3),
        "max_ms": round(figures["max"], 3),
    }
