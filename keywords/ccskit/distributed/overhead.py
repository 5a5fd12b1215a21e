"""The load instrument measured against its own limit: deliveries per CPU-second, kit vs bare.

In one run against one server every room has one sender (this process, the kit's
:class:`ccskit.load.LoadRun`) and, per kind below, the same number of receivers in a process of
that kind; every receiver process gets the very same messages at the same time:

* ``kit``: a Locust worker's receive path exactly as in a distributed run: gevent patched (Locust
  is imported), the bridge's asyncio loop (uvloop) in a native thread, :class:`WorkerFleet`
  connections keeping every record the checker needs, latency from the body, figures batched into
  Locust's statistics;
* ``bare``: the same WebSocket library (python-websockets on uvloop) counting frames, nothing else;
* ``picows`` (when installed): a Cython WebSocket client on uvloop counting frames, so the choice
  of library for the load path is made on figures.

Each receiver samples its own CPU time (``time.process_time``: every thread of the process) and
its delivery count every 0.25 s; its figure is deliveries per CPU-second between the first and the
last sample that saw deliveries arrive. The overhead ratio is ``bare / kit``: how many more
deliveries one core handles without the kit (target ≤ 1.3).

``python -m ccskit.distributed.overhead`` measures against a reference server it starts; each
receiver is a ``python -m ccskit.distributed.receiver`` process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bench.fleet import Fleet, make_rooms, provision
from ..bench.server import ReferenceServer
from ..config import KitConfig
from ..load import raise_fd_limit
from .plan import RunPlan, Share, Slot

SAMPLE_S = 0.25
READY = "READY"
TARGET_RATIO = 1.3
CONNECT_IN_FLIGHT = 200  # as the kit's fleets
CONNECT_ATTEMPTS = 5


def kinds_available() -> tuple[str, ...]:
    """``kit`` and ``bare``, plus ``picows`` when it is installed."""
    extra = ("picows",) if importlib.util.find_spec("picows") else ()
    return ("kit", "bare", *extra)


def rate(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Deliveries per CPU-second over the samples ``(cpu_s, count)`` that saw deliveries."""
    moving = [i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]]
    if not moving:
        return {"deliveries": samples[-1][1] if samples else 0, "cpu_s": 0.0, "per_cpu_s": 0.0}
    first, last = samples[moving[0] - 1], samples[moving[-1]]
    cpu, got = last[0] - first[0], last[1] - first[1]
    return {
        "deliveries": samples[-1][1],
        "window_deliveries": got,
        "cpu_s": round(cpu, 3),
        "per_cpu_s": round(got / cpu, 1) if cpu > 0 else 0.0,
    }


def _done(samples: list[tuple[float, int]], expected: int, deadline: float) -> bool:
    return samples[-1][1] >= expected or time.monotonic() > deadline


# ----- receivers (one process each) ------------------------------------------------------------


def receive_kit(share: Share, expected: int, timeout_s: float) -> dict[str, Any]:
    """The Locust worker's receive path (gevent patched exactly as Locust does it)."""
    import gevent
    from locust.stats import RequestStats

    from .bridge import Bridge
    from .fleet import WorkerFleet
    from .stats import apply

    stats = RequestStats()
    bridge = Bridge()
    fleet = WorkerFleet(share, lambda batch: bridge.notify(apply, stats, batch))
    bridge.call(fleet.start)

    async def connect_all() -> int:
        outcomes = await asyncio.gather(*(fleet.go_online(s.device_id, 60) for s in share.slots))
        return sum(1 for o in outcomes if o.ok)

    connected = bridge.run(connect_all(), 120)
    print(READY, connected, flush=True)
    samples = [(time.process_time(), fleet.delivered)]
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / SAMPLE_S) + 1):
        gevent.sleep(SAMPLE_S)
        samples.append((time.process_time(), fleet.delivered))
        if _done(samples, expected, deadline):
            break
    gevent.sleep(1.0)  # the last batch of figures reaches Locust's stats
    locust_count = stats.get("deliver", "WS").num_requests
    return {
        "kind": "kit",
        "connected": connected,
        "locust_deliveries": locust_count,
        **rate(samples),
    }


async def _sample_async(
    count: Callable[[], int], expected: int, timeout_s: float
) -> dict[str, Any]:
    samples = [(time.process_time(), count())]
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / SAMPLE_S) + 1):
        await asyncio.sleep(SAMPLE_S)
        samples.append((time.process_time(), count()))
        if _done(samples, expected, deadline):
            break
    return rate(samples)


def receive_bare(share: Share, expected: int, timeout_s: float) -> dict[str, Any]:
    """python-websockets on uvloop, counting frames and nothing else."""
    from websockets.asyncio.client import ClientConnection, connect

    from .bridge import new_loop

    count = 0

    limit = asyncio.Semaphore(CONNECT_IN_FLIGHT)

    async def dial(slot: Slot) -> ClientConnection:
        ws = await connect(slot.ws_url, compression=None, ping_interval=None, max_size=2**20)
        await ws.send(json.dumps({"type": "hello", "ref": "h", "token": slot.token}))
        if json.loads(await ws.recv()).get("type") != "welcome":
            raise RuntimeError("hello refused")
        return ws

    async def one(slot: Slot) -> ClientConnection:
        async with limit:
            for attempt in range(CONNECT_ATTEMPTS):  # a refused hello closes 1012: come back
                try:
                    return await dial(slot)
                except Exception:
                    await asyncio.sleep(0.1 * (attempt + 1))
            return await dial(slot)

    async def reader(ws: ClientConnection) -> None:
        nonlocal count
        with contextlib.suppress(Exception):
            async for _ in ws:
                count += 1

    async def main() -> dict[str, Any]:
        socks = await asyncio.gather(*(one(s) for s in share.slots))
        tasks = [asyncio.create_task(reader(ws)) for ws in socks]
        print(READY, len(socks), flush=True)
        result = await _sample_async(lambda: count, expected, timeout_s)
        for task in tasks:
            task.cancel()
        return {"kind": "bare", "connected": len(socks), **result}

    return new_loop().run_until_complete(main())


def receive_picows(share: Share, expected: int, timeout_s: float) -> dict[str, Any]:
    """picows (Cython) on uvloop, counting frames and nothing else (pongs are automatic)."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    from .bridge import new_loop

    counter = [0]

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self, token: str) -> None:
            self.token = token
            self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_ws_connected(self, transport: WSTransport) -> None:
            hello = json.dumps({"type": "hello", "ref": "h", "token": self.token})
            transport.send(WSMsgType.TEXT, hello.encode())

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            if self.ready.done():
                counter[0] += 1
            else:  # the first text frame is the welcome
                self.ready.set_result(None)

    limit = asyncio.Semaphore(CONNECT_IN_FLIGHT)

    async def dial(slot: Slot) -> Any:
        transport, listener = await ws_connect(lambda: Listener(slot.token), slot.ws_url)
        await asyncio.wait_for(listener.ready, 30)  # type: ignore[attr-defined]
        return transport

    async def one(slot: Slot) -> Any:
        async with limit:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    return await dial(slot)
                except Exception:
                    await asyncio.sleep(0.1 * (attempt + 1))
            return await dial(slot)

    async def main() -> dict[str, Any]:
        socks = await asyncio.gather(*(one(s) for s in share.slots))
        print(READY, len(socks), flush=True)
        result = await _sample_async(lambda: counter[0], expected, timeout_s)
        for transport in socks:
            transport.disconnect()
        return {"kind": "picows", "connected": len(socks), **result}

    return new_loop().run_until_complete(main())


RECEIVERS: dict[str, Callable[[Share, int, float], dict[str, Any]]] = {
    "kit": receive_kit,
    "kit-unpatched": receive_kit,
    "bare": receive_bare,
    "picows": receive_picows,
}


# ----- the measurement (this process sends) ----------------------------------------------------


async def _start_receiver(kind: str, share_file: Path, expected: int, timeout_s: float) -> Any:
    argv = [kind, str(share_file), str(expected), str(timeout_s)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccskit.distributed.receiver",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 150)
    if not line.startswith(READY.encode()):
        err = (await proc.stderr.read()).decode(errors="replace")[-2000:] if proc.stderr else ""
        raise RuntimeError(f"{kind} receiver did not get ready: {line!r} {err}")
    return proc


async def _send(fleet: Fleet, ws_url: str, rate_per_s: float, count: int) -> int:
    """Send ``count`` messages at ``rate_per_s`` from each room's sender, round robin, the way a
    distributed run sends (scheduled time in the body); returns how many were acknowledged."""
    from .fleet import WorkerFleet

    slots = [
        Slot(d.user_id, d.device_id, d.token, ws_url, None, r.conversation_id, True)
        for r in fleet.rooms
        for d in r.senders
    ]
    senders = WorkerFleet(Share(0, RunPlan(prefix="oh", ws_urls=(ws_url,)), slots), print)
    await asyncio.gather(*(senders.go_online(s.device_id, 60) for s in slots))
    t0 = time.time() + 0.05
    for i in range(count):
        due = t0 + i / rate_per_s
        delay = due - time.time()
        if delay > 0.001:
            await asyncio.sleep(delay)
        senders.send_from(slots[i % len(slots)].device_id, due)
    await senders.quiesce(30)
    acked = senders.acked
    await senders.shutdown()
    return acked


async def measure(
    api_url: str,
    ws_url: str,
    secret: str,
    rooms: int = 100,
    per_kind: int = 10,
    rate_per_s: float = 500.0,
    seconds: float = 10.0,
    kinds: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Send ``rate_per_s`` messages/s for ``seconds`` into ``rooms`` rooms of ``per_kind``
    receivers of each kind; every kind's deliveries per CPU-second and the ratios to ``kit``."""
    kinds = kinds or kinds_available()
    members = 1 + per_kind * len(kinds)
    fleet = await provision(
        api_url,
        secret,
        make_rooms(f"oh{os.getpid()}x{time.time_ns() % 10**9}", rooms, members, senders=1),
    )
    count = round(rate_per_s * seconds)
    expected = count * per_kind
    timeout_s = seconds + 60
    procs = {}
    with tempfile.TemporaryDirectory(prefix="ccs-overhead-") as tmp:
        for k, kind in enumerate(kinds):
            lo = 1 + k * per_kind
            slots = [
                Slot(d.user_id, d.device_id, d.token, ws_url, None, r.conversation_id, False)
                for r in fleet.rooms
                for d in r.members[lo : lo + per_kind]
            ]
            share = Share(0, RunPlan(prefix="oh", ws_urls=(ws_url,), receipt_every_s=0), slots)
            path = Path(tmp) / f"{kind}.json"
            path.write_text(json.dumps(share.as_dict()))
            procs[kind] = await _start_receiver(kind, path, expected, timeout_s)
        acked = await _send(fleet, ws_url, rate_per_s, count)
        results = {}
        for kind, proc in procs.items():
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s + 30)
            lines = out.decode().strip().splitlines()
            if proc.returncode or not lines:
                raise RuntimeError(f"{kind} receiver failed: {err.decode()[-2000:]}")
            results[kind] = json.loads(lines[-1])
    kit = results["kit"]["per_cpu_s"] or 1e-9
    return {
        "rooms": rooms,
        "receivers_per_kind": rooms * per_kind,
        "rate_msgs_per_s": rate_per_s,
        "expected_per_kind": expected,
        "sender_acked": acked,
        "receivers": results,
        "ratios_to_kit": {k: round(r["per_cpu_s"] / kit, 3) for k, r in results.items()},
        "overhead_ratio": round(results["bare"]["per_cpu_s"] / kit, 3),
        "target_ratio": TARGET_RATIO,
    }


async def measure_repeated(
    api_url: str, ws_url: str, secret: str, repeats: int = 3, **kwargs: Any
) -> dict[str, Any]:
    """:func:`measure` ``repeats`` times; the median ratios (a shared machine's noise is large:
    single runs here ranged from 1.16 to 1.5)."""
    runs = [await measure(api_url, ws_url, secret, **kwargs) for _ in range(repeats)]
    kinds = list(runs[0]["receivers"])
    per_cpu = {k: statistics.median(r["receivers"][k]["per_cpu_s"] for r in runs) for k in kinds}
    return {
        **runs[len(runs) // 2],
        "repeats": repeats,
        "overhead_ratios": [r["overhead_ratio"] for r in runs],
        "overhead_ratio": statistics.median(r["overhead_ratio"] for r in runs),
        "median_per_cpu_s": per_cpu,
        "runs": runs,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    secret = KitConfig.from_env().token_secret
    env = {"CCS_LOG_LEVEL": "WARNING", "CCS_TOKEN_SECRET": secret}
    async with ReferenceServer(f"ccs_overhead_{os.getpid()}", env=env) as srv:
        return await measure(
            srv.api_url,
            srv.ws_url,
            secret,
            args.rooms,
            args.per_kind,
            args.rate,
            args.seconds,
            tuple(k for k in args.kinds.split(",") if k),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--per-kind", type=int, default=10)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kinds", default="", help="e.g. kit,bare,picows,kit-unpatched")
    args = parser.parse_args(argv)
    raise_fd_limit()
    print(json.dumps(asyncio.run(_main(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
