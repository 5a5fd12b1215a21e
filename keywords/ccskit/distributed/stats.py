"""Batches of figures into Locust's statistics, and Locust's statistics out as kit metrics.

Firing Locust's ``request`` event costs about 3.4 µs and a stats entry's ``log`` about 1 µs;
python-websockets spends about 16 µs on a delivered frame, so one event per delivery would add a
fifth to what the instrument costs. The worker counts latencies per whole millisecond and
:func:`log_many` adds each (latency, count) pair to the entry the way ``StatsEntry.log`` adds one
(Locust keeps response times rounded per millisecond anyway, so nothing is lost).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from locust.stats import RequestStats, StatsEntry, bucket_response_time

REQUEST_TYPE = "WS"


def _log_many(entry: StatsEntry, response_time: int, count: int, now: float) -> None:
    """What ``count`` calls of ``entry.log(response_time, 0)`` at ``now`` would do."""
    t = int(now)
    last = entry.last_request_timestamp
    if entry.use_response_times_cache and last and t > int(last):
        entry._cache_response_times(t - 1)
    entry.num_requests += count
    entry.num_reqs_per_sec[t] += count
    entry.last_request_timestamp = now
    entry.total_response_time += response_time * count
    if entry.min_response_time is None:
        entry.min_response_time = response_time
    else:
        entry.min_response_time = min(entry.min_response_time, response_time)
    entry.max_response_time = max(entry.max_response_time, response_time)
    entry.response_times[bucket_response_time(response_time)] += count


def log_many(stats: RequestStats, name: str, counts: Counter[int] | dict[int, int]) -> int:
    """Add a batch of ``{latency_ms: count}`` of request ``name`` to Locust's stats; the total."""
    now = time.time()
    entry = stats.get(name, REQUEST_TYPE)
    added = 0
    for ms, n in counts.items():
        rt = max(0, int(ms))
        _log_many(entry, rt, n, now)
        _log_many(stats.total, rt, n, now)
        added += n
    return added


def log_errors(stats: RequestStats, errors: Counter[tuple[str, str]] | dict[Any, int]) -> None:
    """Add a batch of ``{(name, error text): count}`` failures."""
    for (name, text), n in errors.items():
        for _ in range(min(n, 10_000)):
            stats.log_error(REQUEST_TYPE, name, text)


def apply(stats: RequestStats, batch: dict[str, Any]) -> None:
    """Apply one batch published by :meth:`WorkerFleet.flush_stats` (in the hub's thread)."""
    for name, counts in batch.get("stats", {}).items():
        log_many(stats, name, counts)
    log_errors(stats, batch.get("errors", {}))


def snapshot(stats: RequestStats) -> dict[str, dict[str, float]]:
    """Locust's own figures per request name: count, failures, avg, p50/p95/p99, max (ms)."""
    out: dict[str, dict[str, float]] = {}
    for (name, _method), entry in sorted(stats.entries.items()):
        out[name] = {
            "count": entry.num_requests,
            "failures": entry.num_failures,
            "avg_ms": round(entry.avg_response_time, 3),
            "p50_ms": entry.get_response_time_percentile(0.5) or 0,
            "p95_ms": entry.get_response_time_percentile(0.95) or 0,
            "p99_ms": entry.get_response_time_percentile(0.99) or 0,
            "max_ms": entry.max_response_time or 0,
        }
    return out
