"""The benchmark's figures from the distributed load: connect bursts, the instrument's own overhead,
and live connections held by several nodes and Locust workers (``scripts/bench.py``).

* ``connect_burst``: N idle devices connecting at once, repeated (refusals retried and counted
  apart from failures), against the bench's server;
* ``instrument_overhead_ratio``: deliveries per CPU-second of bare python-websockets divided by
  those of a Locust worker's receive path, in one run against the bench's server (picows beside
  them when installed);
* ``live_connections`` / ``max_live_connections``: a hold run on its own nodes (Redis bus, one
  database), several Locust workers, several loopback source addresses: every device connected,
  held with heartbeats while messages flow, checker over everything, memory per connection.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..config import RESULTS_DIR
from ..distributed import launch, overhead
from .burst import connect_bursts


async def instrument_steps(
    api_url: str, ws_url: str, secret: str, burst_devices: int, burst_runs: int
) -> dict[str, Any]:
    """Connect bursts, then the overhead measurement, against one running server."""
    burst = await connect_bursts(api_url, ws_url, secret, burst_devices, burst_runs)
    print(
        f"connect bursts: {burst['verdict']}, refusals retried {burst['refusals_retried']}, "
        f"failed {burst['failed']}, per s {burst['per_s']}",
        flush=True,
    )
    cost = await overhead.measure_repeated(api_url, ws_url, secret, repeats=3)
    per = cost["median_per_cpu_s"]
    print(
        f"instrument: deliveries per CPU-second {per}; overhead ratio "
        f"{cost['overhead_ratio']} (median of {cost['overhead_ratios']}; "
        f"target <= {cost['target_ratio']})",
        flush=True,
    )
    return {
        "connect_burst": burst,
        "instrument_overhead_ratio": cost["overhead_ratio"],
        "instrument_overhead": cost,
    }


def loopback_sources(count: int) -> str:
    """``127.0.0.2,127.0.0.3,…``: every 127/8 address reaches the loopback interface."""
    return ",".join(f"127.0.0.{i}" for i in range(2, 2 + count))


def live_options(
    devices: int,
    admin_dsn: str,
    nodes: int = 6,
    workers: int = 6,
    rate_msgs_per_s: float = 1000.0,
    hold_s: float = 60.0,
    sources: int = 8,
    room_devices: int = 10_000,
    connect_timeout_s: float = 900.0,
) -> launch.Options:
    """A hold run of ``devices``: rooms of 10 for ``room_devices`` of them carrying
    ``rate_msgs_per_s`` in all, the rest idle; ``nodes`` nodes, ``workers`` workers."""
    rooms = max(1, min(room_devices, devices) // 10)
    folder = RESULTS_DIR / "live-connections"
    return launch.Options(
        workers=workers,
        rooms=rooms,
        members=10,
        idle=max(0, devices - rooms * 10),
        rate=rate_msgs_per_s / rooms,
        receipt_every_s=0.0,
        nodes=nodes,
        source_addresses=loopback_sources(sources),
        spawn_rate=500.0,
        # 50 handshakes in flight per worker (300 in all): the nodes admit 8 hellos each at a
        # time; a longer queue only makes every client wait longer
        connect_in_flight=50,
        drain_s=60.0,
        results=folder / "results.json",
        metrics_dir=None,
        logs=folder,
        admin_dsn=admin_dsn,
        hold_s=hold_s,
        send_after_all_online=True,
        connect_timeout_s=connect_timeout_s,
        # fewer database connections per node: several nodes share one PostgreSQL
        server_env={"CCS_DB_POOL_SIZE": "8", "CCS_MAX_CONNECTIONS_PER_USER": "100"},
    )


def live_steps_file(path: Path) -> dict[str, Any]:
    """The existing ``bench.json`` (or an empty one) that the distributed figures update."""
    import json

    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def live_step(opts: launch.Options) -> dict[str, Any]:
    """Run the hold (its own nodes and Redis); the figures for ``bench.json``."""
    outcome = await asyncio.to_thread(launch.run, opts)
    print(launch.describe(outcome), flush=True)
    t, nodes = outcome["totals"], outcome.get("nodes", {})
    summary = {
        "devices": t["devices"],
        "live_after_hold": t["live"],
        "live_peak_on_nodes": nodes.get("live_peak"),
        "nodes": opts.nodes,
        "workers": opts.workers,
        "source_addresses": opts.source_addresses,
        "hold_s": opts.hold_s,
        "connect_per_s": round(t["connect_per_s"], 1),
        "connect_span_s": round(t["connect_span_s"], 1),
        "connect_refusals_retried": t["connect_refusals"],
        "connect_failed": t["connect_failed"],
        "unexpected_closes": t["closes"],
        "close_codes": t.get("close_codes", {}),
        "acked_msgs_per_s": round(t["acked_per_s"], 1),
        "deliveries_per_s": round(t["deliveries_per_s"], 1),
        "delivery_ms": outcome["delivery_ms"],
        "server_rss_per_connection_kib": nodes.get("rss_per_connection_kib"),
        "server_rss_peak_mib": nodes.get("rss_peak_mib"),
        "checker": outcome["check"]["summary"],
        "ok": outcome["ok"],
        "problems": outcome.get("problems", []),
        "results_file": str(Path(opts.results)),
        "fd_limit_per_process": os.sysconf("SC_OPEN_MAX"),
    }
    # held: still live after the hold, as the clients count them
    return {"live_connections": summary, "live_connections_max": t["live"]}
