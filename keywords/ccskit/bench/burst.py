"""Connect bursts: N devices connecting at once, repeated, with refusals told apart from failures.

The devices are the distributed load's :class:`~ccskit.distributed.device.DeviceConnection`
(the kit's lean connection that retries what the protocol calls retryable: an upgrade answered
503/429, a ``hello`` answered ``unavailable``/``rate_limited``), held by one
:class:`~ccskit.distributed.fleet.WorkerFleet` in this process. Per run: how many were welcomed,
how many refusals were retried on the way, how many devices failed for good, how many welcomed
connections the server closed while they were held, and the connect rate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..distributed.fleet import WorkerFleet
from ..distributed.plan import RunPlan, Share, Slot
from .fleet import Fleet, make_idle, provision


def _share(fleet: Fleet, ws_url: str, in_flight: int) -> Share:
    plan = RunPlan(
        prefix="burst", ws_urls=(ws_url,), receipt_every_s=0, connect_in_flight=in_flight
    )
    slots = [
        Slot(d.user_id, d.device_id, d.token, ws_url, None, None, False) for d in fleet.devices
    ]
    return Share(0, plan, slots)


async def one_burst(share: Share, hold_s: float, timeout_s: float) -> dict[str, Any]:
    """Connect every device of ``share`` at once, hold ``hold_s``, close them; the figures."""
    fleet = WorkerFleet(share, lambda _batch: None)
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(fleet.go_online(s.device_id, timeout_s) for s in share.slots))
    seconds = time.perf_counter() - t0
    await asyncio.sleep(hold_s)
    live = fleet.live
    result = {
        "devices": len(share.slots),
        "welcomed": sum(1 for o in outcomes if o.ok),
        "refusals_retried": sum(o.refusals for o in outcomes),
        "errors_retried": sum(o.errors for o in outcomes),
        "failed": sum(1 for o in outcomes if not o.ok),
        "failures": sorted({o.last_error for o in outcomes if not o.ok})[:3],
        "closed_while_held": len(fleet.closes),
        "live_after_hold": live,
        "seconds": round(seconds, 2),
        "per_s": round(len(share.slots) / seconds, 1) if seconds else 0.0,
    }
    await fleet.shutdown()
    return result


async def connect_bursts(
    api_url: str,
    ws_url: str,
    secret: str,
    devices: int = 10_000,
    runs: int = 5,
    in_flight: int = 200,
    hold_s: float = 2.0,
    pause_s: float = 3.0,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """``runs`` bursts of ``devices`` idle devices (provisioned once) against one server."""
    fleet = await provision(api_url, secret, make_idle(f"burst{int(time.time()) % 10**6}", devices))
    share = _share(fleet, ws_url, in_flight)
    per_run = []
    for _ in range(runs):
        per_run.append(await one_burst(share, hold_s, timeout_s))
        await asyncio.sleep(pause_s)  # let the server mark the last burst offline
    clean = [r for r in per_run if r["welcomed"] == devices and not r["closed_while_held"]]
    return {
        "devices": devices,
        "runs": runs,
        "in_flight": in_flight,
        "all_welcomed_runs": len(clean),
        "verdict": f"{len(clean)}/{runs} bursts of {devices} all welcomed and held",
        "refusals_retried": [r["refusals_retried"] for r in per_run],
        "failed": [r["failed"] for r in per_run],
        "per_s": [r["per_s"] for r in per_run],
        "per_run": per_run,
    }
