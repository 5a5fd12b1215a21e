"""Benchmark: raw limits of this machine, then a sweep against the reference server (make bench).

Figures, not pass/fail. In one run it measures

1. raw WebSocket round trip against a trivial echo server (another process),
2. raw single-row INSERT+COMMIT rate with asyncpg over as many connections as the server's pool,
3. against a reference server it starts on a fresh database: live connections held from this one
   process (100 -> 1,000 -> 10,000), persisted messages/s at 1,000 connections with rooms of 10
   devices (every message reaches 10 connections), delivery latency at half that rate (timed from
   the scheduled send time) and again at a lower fixed rate where this load client stays under
   half a core (latency measured while the client queues is the client's, not the server's),
   with the CPU of client, server and PostgreSQL during each, send->ack time (the database
   operation as a client sees it), RSS per connection, and a consistency check of everything sent.

Writes ``results/bench.json`` (keys of issue 5 plus ``sweep``) and prints a table.

Usage: ``python scripts/bench.py [--quick] [--max-connections 10000] [--out results/bench.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from ccskit.bench.distributed_steps import (
    instrument_steps,
    live_options,
    live_step,
    live_steps_file,
)
from ccskit.bench.raw import raw_commit, ws_echo_rtt
from ccskit.bench.server import ReferenceServer
from ccskit.checker import check
from ccskit.config import admin_database_url, database_url_for
from ccskit.load import (
    LoadRun,
    PhaseStats,
    fetch_stored,
    make_idle,
    make_rooms,
    provision,
    raise_fd_limit,
)

ROOT = Path(__file__).resolve().parents[1]

# The kit's login (DATABASE_URL, or .ccs-env loaded by ccskit) on its `postgres` database.
ADMIN_DSN = admin_database_url()
SECRET = "ccs-bench-secret-long-enough-for-hs256"
# A load client above this share of one core queues frames in its own event loop, and that
# queueing shows up as delivery latency: the issue asks for latency while the client is unsaturated.
CLIENT_CPU_LIMIT_PCT = 50.0
UNSATURATED_LADDER = (2000, 1000, 500, 250)  # msgs/s tried for the unsaturated latency phase
TARGETS = {
    "max_live_connections": ">= 10000",
    "persisted_msgs_per_s": ">= 3000 at 1000 connections, 10 devices per message",
    "delivery_latency_ms": "avg <= 5, p99 <= 50 at half the persisted rate",
    "delivery_latency_unsaturated_ms": (
        "avg <= 5, p99 <= 50 at a rate the load client keeps up with"
    ),
    "ratio_persisted_to_raw_commit": ">= 0.3",
    "instrument_overhead_ratio": "<= 1.3 (bare python-websockets deliveries per CPU-second "
    "/ those of a Locust worker's receive path)",
    "connect_burst": "10,000 devices connecting at once all welcomed in 5 of 5 bursts",
    "live_connections": ">= 100000 held 60 s on several nodes and Locust workers "
    "(--live-connections 100000)",
}


@dataclass
class Bench:
    """Options and everything measured so far."""

    args: argparse.Namespace
    rows: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    server_proc: psutil.Process | None = None
    me: psutil.Process = field(default_factory=psutil.Process)
    postgres: list[psutil.Process] = field(default_factory=list)

    def prime_cpu(self) -> None:
        """Start a CPU window for the server, this process, PostgreSQL and the whole machine."""
        psutil.cpu_percent(None)
        self.me.cpu_percent(None)
        if self.server_proc is not None:
            self.server_proc.cpu_percent(None)
        # every postgres process on the machine: other users of the shared cluster included
        self.postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
        for p in self.postgres:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)

    def _postgres_cpu(self) -> float:
        total = 0.0
        for p in self.postgres:
            with contextlib.suppress(psutil.Error):
                total += p.cpu_percent(None)
        return total

    def row(
        self, step: str, connections: int, stats: PhaseStats | None = None, **extra: Any
    ) -> None:
        """Add one line of the sweep table, closing the CPU window opened by :meth:`prime_cpu`."""
        server = self.server_proc
        row: dict[str, Any] = {
            "step": step,
            "connections": connections,
            "server_rss_mib": round(server.memory_info().rss / 2**20, 1) if server else None,
            "server_cpu_pct": round(server.cpu_percent(None)) if server else None,
            "client_cpu_pct": round(self.me.cpu_percent(None)),
            "postgres_cpu_pct": round(self._postgres_cpu()),
            "machine_cpu_pct": round(psutil.cpu_percent(None)),
        }
        # Other helpers share the machine: what is left of all cores after ours is their noise.
        ours = sum(row[k] or 0 for k in ("server_cpu_pct", "client_cpu_pct", "postgres_cpu_pct"))
        row["other_cpu_pct"] = max(0, row["machine_cpu_pct"] * (os.cpu_count() or 1) - ours)
        if stats is not None:
            row.update(
                offered_msgs_per_s=round(stats.offered_rate_per_s),
                attempted=stats.attempted,
                acked=stats.acked,
                errors=stats.errors,
                persisted_msgs_per_s=round(stats.ack_rate_per_s),
                deliveries_per_s=round(stats.deliveries / stats.send_window_s),
                delivered=f"{stats.deliveries}/{stats.expected_deliveries}",
                delivery_ms=_rounded(stats.delivery_ms),
                ack_ms=_rounded(stats.ack_ms),
                max_send_lag_ms=round(stats.max_send_lag_ms, 1),
                drained=stats.drained,
            )
        row.update(extra)
        self.rows.append(row)
        print(_format_row(row), flush=True)


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in d.items()}


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"{row['step']:<22}", f"conns={row['connections']:>6}"]
    if "persisted_msgs_per_s" in row:
        d, a = row["delivery_ms"], row["ack_ms"]
        parts += [
            f"offered={row['offered_msgs_per_s']:>5}/s",
            f"persisted={row['persisted_msgs_per_s']:>5}/s",
            f"deliv={row['deliveries_per_s']:>6}/s",
            f"deliv_ms avg/p50/p99={d['avg']:.2f}/{d['p50']:.2f}/{d['p99']:.2f}",
            f"ack_ms avg/p99={a['avg']:.2f}/{a['p99']:.2f}",
            f"err={sum(row['errors'].values())}",
        ]
    parts += [
        f"srv_rss={row['server_rss_mib']}MiB",
        f"cpu srv/cli/pg/all={row['server_cpu_pct']}/{row['client_cpu_pct']}/"
        f"{row['postgres_cpu_pct']}/{row['machine_cpu_pct']}% other={row['other_cpu_pct']}%",
    ]
    return "  ".join(parts)


async def measure_raw(bench: Bench) -> dict[str, Any]:
    """Raw WebSocket round trip and raw commit rate."""
    rtt = await ws_echo_rtt(round_trips=1000 if bench.args.quick else 3000)
    print(f"raw ws echo rtt: p50={rtt['p50']:.3f} ms p99={rtt['p99']:.3f} ms", flush=True)
    db = f"ccsbench_raw_{os.getpid()}"
    psutil.cpu_percent(None)
    commit = await raw_commit(
        bench.args.admin_dsn,
        database_url_for(db, bench.args.admin_dsn),
        db,
        connections=bench.args.pool,
        seconds=1.5 if bench.args.quick else 3.0,
    )
    # the ratio divides by this rate: say how busy the machine was while it was taken
    commit["machine_cpu_pct"] = psutil.cpu_percent(None)
    lat = commit["latency_ms"]
    print(
        f"raw commit ({commit['connections']} conns): {commit['per_s']:.0f}/s "
        f"p50={lat['p50']:.3f} ms p99={lat['p99']:.3f} ms (machine {commit['machine_cpu_pct']}%)",
        flush=True,
    )
    notify_db = f"ccsbench_rawn_{os.getpid()}"
    notify = await raw_commit(
        bench.args.admin_dsn,
        database_url_for(notify_db, bench.args.admin_dsn),
        notify_db,
        connections=bench.args.pool,
        seconds=1.0 if bench.args.quick else 2.0,
        notify=True,
    )
    print(
        f"raw commit with a NOTIFY trigger ({notify['connections']} conns): "
        f"{notify['per_s']:.0f}/s",
        flush=True,
    )
    return {"rtt": rtt, "commit": commit, "commit_notify": notify}


async def sweep(bench: Bench, srv: ReferenceServer) -> dict[str, Any]:
    """Connections 100 -> 1,000 (rooms of 10), send-rate sweep, latency, then hold 10,000."""
    args = bench.args
    prefix = f"b{os.getpid()}"
    rooms = make_rooms(prefix + "r", rooms=args.rooms_connections // 10, members=10)
    idle_n = max(0, args.max_connections - args.rooms_connections)
    t0 = time.perf_counter()
    rooms = await provision(srv.api_url, SECRET, rooms)
    idle = await provision(srv.api_url, SECRET, make_idle(prefix + "i", idle_n))
    bench.context["provision_s"] = round(time.perf_counter() - t0, 1)
    run = LoadRun(srv.ws_url, rooms)
    bench.prime_cpu()
    bench.row("provisioned, idle", 0)
    for n in (100, args.rooms_connections):
        bench.prime_cpu()
        stats = await run.connect(rooms.devices[:n])
        await asyncio.sleep(1.0)  # hold: a connection that survives a second is "live"
        bench.row(f"connect {n}", run.live, connect_per_s=round(stats.per_s), failed=stats.failed)
    profiler = await start_profiler(args.profile, srv.pid)
    try:
        best = await rate_sweep(bench, run)
    finally:
        await stop_profiler(profiler)
    half = max(100.0, best / 2)
    bench.context["settle_before_latency_s"] = await settle(bench)
    bench.prime_cpu()
    latency = await run.send_phase(half, duration_s=args.latency_s, drain_timeout_s=15)
    bench.row("latency @ half rate", run.live, latency)
    half_row = bench.rows[-1]
    unsaturated, unsat_row = await unsaturated_latency(bench, run, latency, half_row)
    idle_run = LoadRun(srv.ws_url, idle)
    if idle_n:
        bench.prime_cpu()
        stats = await idle_run.connect(timeout_s=180)
        await asyncio.sleep(args.hold_s)
        bench.row(
            f"hold {args.max_connections}",
            run.live + idle_run.live,
            connect_per_s=round(stats.per_s),
            failed=stats.failed,
            connect_errors=stats.errors,
            unexpected_closes=len(run.closes) + len(idle_run.closes),
            close_reasons=close_reasons(run.closes + idle_run.closes),
        )
    live_max = run.live + idle_run.live
    result = check(run.history(await fetch_stored(srv.dsn, run.conversation_ids)))
    print("checker:", result.summary(), flush=True)
    await idle_run.close()
    await run.close()
    return {
        "best": best,
        "latency": latency,
        "latency_row": half_row,
        "unsaturated": unsaturated,
        "unsaturated_row": unsat_row,
        "live_max": live_max,
        "checker": result.as_dict(),
        "stored": await _count_messages(srv.dsn),
        "acked": run.acked,
    }


async def unsaturated_latency(
    bench: Bench, run: LoadRun, half: PhaseStats, half_row: dict[str, Any]
) -> tuple[PhaseStats, dict[str, Any]]:
    """Delivery latency at a fixed rate the load client keeps up with.

    Steps down a fixed ladder below the half rate (2,000 -> 1,000 -> 500 -> 250 msgs/s) until this
    process stays at or under :data:`CLIENT_CPU_LIMIT_PCT` of a core during the phase; round
    rates keep runs comparable. If the half-rate phase already was unsaturated, it is the answer."""
    if half_row["client_cpu_pct"] <= CLIENT_CPU_LIMIT_PCT:
        return half, half_row
    # a rung within 25% of the half rate would only repeat that phase
    ladder = [r for r in UNSATURATED_LADDER if r <= 0.75 * half.offered_rate_per_s]
    for rate in ladder or UNSATURATED_LADDER[-1:]:
        bench.context.setdefault("settle_before_unsaturated_s", []).append(await settle(bench))
        bench.prime_cpu()
        stats = await run.send_phase(rate, duration_s=bench.args.latency_s, drain_timeout_s=15)
        bench.row(f"latency @ {rate:.0f}/s", run.live, stats)
        if bench.rows[-1]["client_cpu_pct"] <= CLIENT_CPU_LIMIT_PCT:
            break
    return stats, bench.rows[-1]


def log_problems(path: Path, keep: int = 5) -> dict[str, Any]:
    """Errors the server logged during the run (its log is deleted with it): a failed handshake
    closes with a bare 1000, and only the log says why."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    bad = [_log_summary(ln) for ln in lines if '"ERROR"' in ln or "Traceback" in ln]
    return {"count": len(bad), "by_kind": dict(Counter(bad)), "last": bad[-keep:]}


def _log_summary(line: str) -> str:
    """A JSON log line as ``logger: msg: <exception line>`` (the traceback's last line)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return line[:200]
    exc = str(rec.get("exc") or "").strip().splitlines()
    return f"{rec.get('logger')}: {rec.get('msg')}" + (f": {exc[-1][:200]}" if exc else "")


def close_reasons(closes: list[Any]) -> dict[str, int]:
    """Unexpected closes counted by close code and reason, so a failed hold says why."""
    return dict(Counter(f"{c.code} {c.reason}"[:100] for c in closes))


async def start_profiler(out: str, pid: int) -> asyncio.subprocess.Process | None:
    """``py-spy record`` on the server during the rate sweep (collapsed stacks), if asked."""
    if not out:
        return None
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy not installed: no profile (pip install py-spy)", flush=True)
        return None
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--output",
        out,
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop_profiler(proc: asyncio.subprocess.Process | None) -> None:
    """Stop py-spy with SIGINT so it writes its output."""
    if proc is None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def settle(bench: Bench, quiet_pct: float = 25.0, limit_s: float = 15.0) -> float:
    """Wait (bounded) until the server's CPU is below ``quiet_pct`` over a half second: after a
    saturated phase it may still be working off internal queues. Returns the seconds waited."""
    assert bench.server_proc is not None
    began = time.perf_counter()
    bench.server_proc.cpu_percent(None)
    while time.perf_counter() - began < limit_s:
        await asyncio.sleep(0.5)
        if bench.server_proc.cpu_percent(None) < quiet_pct:
            break
    return round(time.perf_counter() - began, 1)


async def rate_sweep(bench: Bench, run: LoadRun) -> float:
    """Offer rising rates at 1,000 connections; the best acked rate is the persisted rate."""
    best, saturated = 0.0, 0
    for rate in bench.args.rates:
        bench.prime_cpu()
        stats = await run.send_phase(rate, duration_s=bench.args.phase_s, drain_timeout_s=40)
        bench.row(f"rate {rate}/s", run.live, stats)
        if not stats.errors and stats.drained:
            best = max(best, stats.ack_rate_per_s)
        # Past saturation (acks well below the offer) higher offers only measure queueing; one
        # more saturated phase is a second sample of the capacity (the machine is shared).
        if stats.ack_rate_per_s < 0.85 * rate or not stats.drained:
            saturated += 1
            if saturated == 2:
                break
    return best


async def _count_messages(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages"))
    finally:
        await conn.close()


def summarise(bench: Bench, raw: dict[str, Any], swept: dict[str, Any], rss: float) -> dict:
    """The keys of issue 5, plus the sweep table and context."""
    lat: PhaseStats = swept["latency"]
    commit_rate = raw["commit"]["per_s"]
    return {
        "max_live_connections": swept["live_max"],
        "persisted_msgs_per_s": round(swept["best"], 1),
        "delivery_latency_ms": latency_summary(lat, swept["latency_row"]),
        "delivery_latency_unsaturated_ms": latency_summary(
            swept["unsaturated"], swept["unsaturated_row"]
        ),
        "db_op_ms": {k: round(lat.ack_ms[k], 3) for k in ("avg", "p99")},
        "rss_per_connection_kb": round(rss, 1),
        "raw_ws_rtt_ms": {k: round(raw["rtt"][k], 3) for k in ("p50", "p99")},
        "raw_commit_per_s": round(commit_rate, 1),
        "ratio_persisted_to_raw_commit": round(swept["best"] / commit_rate, 3),
        "sweep": {
            "rows": bench.rows,
            "context": {
                **bench.context,
                "targets": TARGETS,
                "raw_commit": raw["commit"],
                "raw_commit_with_notify_trigger": raw["commit_notify"],
                "raw_ws_rtt": raw["rtt"],
                "latency_phase_rate_per_s": round(lat.offered_rate_per_s, 1),
                "client_cpu_limit_pct": CLIENT_CPU_LIMIT_PCT,
                "latency_verdict": "",
                "db_op_ms_means": "send -> ack on the sending connection (ack follows commit)",
                "checker": swept["checker"],
                "messages_stored": swept["stored"],
                "messages_acked": swept["acked"],
            },
        },
    }


def latency_summary(stats: PhaseStats, row: dict[str, Any]) -> dict[str, float]:
    """Delivery latency of one phase with the rate and the CPU shares it was measured under."""
    return {
        "rate_msgs_per_s": round(stats.offered_rate_per_s),
        **{k: round(stats.delivery_ms[k], 3) for k in ("avg", "p50", "p95", "p99")},
        "client_cpu_pct": row["client_cpu_pct"],
        "server_cpu_pct": row["server_cpu_pct"],
        "postgres_cpu_pct": row["postgres_cpu_pct"],
        "machine_cpu_pct": row["machine_cpu_pct"],
        "db_op_avg_ms": round(stats.ack_ms["avg"], 3),
        "db_op_p99_ms": round(stats.ack_ms["p99"], 3),
    }


def latency_verdict(out: dict[str, Any]) -> str:
    """Which of the two latency figures to trust, from the load client's CPU during each."""
    half, unsat = out["delivery_latency_ms"], out["delivery_latency_unsaturated_ms"]
    limit = CLIENT_CPU_LIMIT_PCT
    if half["client_cpu_pct"] <= limit:
        return (
            f"note: the load client stayed at {half['client_cpu_pct']}% of a core at half the "
            "persisted rate: delivery_latency_ms is trustworthy"
        )
    verdict = (
        f"note: at half the persisted rate the load client ran at {half['client_cpu_pct']}% of a "
        "core (shared 2-core machine), so delivery_latency_ms includes the client's own queueing; "
        f"delivery_latency_unsaturated_ms ({unsat['rate_msgs_per_s']} msgs/s, client at "
        f"{unsat['client_cpu_pct']}%) is the trustworthy server latency"
    )
    if unsat["client_cpu_pct"] > limit:
        verdict += f" (but the client was still above {limit:.0f}% there: an upper bound)"
    return verdict


def rss_per_connection(rows: list[dict[str, Any]]) -> float:
    """KiB of server RSS per connection added by the idle hold step (nothing else changes then);
    without that step, from the fewest to the most connections of the connect steps."""
    hold = next((i for i, r in enumerate(rows) if r["step"].startswith("hold")), None)
    if hold is not None and hold > 0:
        lo, hi = rows[hold - 1], rows[hold]
    else:
        held = [r for r in rows if r["step"].startswith("connect")]
        lo, hi = held[0], held[-1]
    extra = hi["connections"] - lo["connections"]
    return (hi["server_rss_mib"] - lo["server_rss_mib"]) * 1024 / extra if extra else float("nan")


async def main(args: argparse.Namespace) -> int:
    """Run everything, write the JSON, print the table."""
    if args.only_distributed:
        return await only_distributed(args)
    started = time.perf_counter()
    fd_limit = raise_fd_limit()
    # Other work on the machine shifts every figure: say how busy it was before we began.
    busy = await asyncio.to_thread(psutil.cpu_percent, 1.0)
    if busy > 20:
        print(f"warning: the machine was {busy:.0f}% busy before the bench started", flush=True)
    bench = Bench(
        args,
        context={
            "fd_limit": fd_limit,
            "cpus": os.cpu_count(),
            "postgres": args.admin_dsn,
            "machine_busy_before_pct": busy,
        },
    )
    raw = await measure_raw(bench)
    env = {
        "CCS_TOKEN_SECRET": SECRET,
        "CCS_DB_POOL_SIZE": str(args.pool),
        "CCS_LOG_LEVEL": "WARNING",  # per-message INFO logs would measure the logger
        "CCS_MAX_CONNECTIONS_PER_USER": "100",
    }
    root = Path(args.server_root)
    bench.context["server_root"] = str(root)
    async with ReferenceServer(f"ccsbench_{os.getpid()}", args.admin_dsn, env, root=root) as srv:
        bench.server_proc = psutil.Process(srv.pid)
        bench.context["server_env"] = env
        swept = await sweep(bench, srv)
        extra = {}
        if not args.no_distributed:
            extra = await instrument_steps(
                srv.api_url, srv.ws_url, SECRET, args.burst_devices, args.burst_runs
            )
        bench.context["server_log_problems"] = log_problems(srv.log_path)
    out = summarise(bench, raw, swept, rss_per_connection(bench.rows))
    out.update(extra)
    if args.live_connections:
        out.update(
            await live_step(
                live_options(
                    args.live_connections,
                    args.admin_dsn,
                    connect_timeout_s=args.live_connect_timeout,
                )
            )
        )
        out["max_live_connections"] = max(out["max_live_connections"], out["live_connections_max"])
    out["sweep"]["context"]["wall_s"] = round(time.perf_counter() - started, 1)
    out["sweep"]["context"]["latency_verdict"] = latency_verdict(out)
    path = write_json(Path(args.out), out)
    print_summary(out, path)
    return 0


async def only_distributed(args: argparse.Namespace) -> int:
    """Only the distributed figures, merged into the existing ``bench.json`` (the sweep stays)."""
    raise_fd_limit()
    path = Path(args.out)
    out = await asyncio.to_thread(live_steps_file, path)
    if not args.no_distributed:
        env = {"CCS_TOKEN_SECRET": SECRET, "CCS_LOG_LEVEL": "WARNING"}
        async with ReferenceServer(f"ccsbench_{os.getpid()}", args.admin_dsn, env) as srv:
            out.update(
                await instrument_steps(
                    srv.api_url, srv.ws_url, SECRET, args.burst_devices, args.burst_runs
                )
            )
    if args.live_connections:
        out.update(
            await live_step(
                live_options(
                    args.live_connections,
                    args.admin_dsn,
                    connect_timeout_s=args.live_connect_timeout,
                )
            )
        )
        out["max_live_connections"] = max(
            out.get("max_live_connections") or 0, out["live_connections_max"]
        )
    write_json(path, out)
    print(f"wrote {path}")
    for key in ("max_live_connections", "instrument_overhead_ratio"):
        print(f"  {key:<32} {out.get(key)}   {TARGETS.get(key, '')}")
    if "connect_burst" in out:
        print(f"  connect_burst                    {out['connect_burst']['verdict']}")
    return 0


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def print_summary(out: dict[str, Any], path: Path) -> None:
    """The headline figures against the targets."""
    print(f"\nwrote {path}")
    for key, value in out.items():
        if key != "sweep":
            print(f"  {key:<32} {value}   {TARGETS.get(key, '')}")
    print(f"  {latency_verdict(out)}")
    print(f"  wall time {out['sweep']['context']['wall_s']} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults are the issue's sweep)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "results" / "bench.json"))
    p.add_argument("--quick", action="store_true", help="shorter phases, 2,000 connections")
    p.add_argument("--pool", type=int, default=int(os.environ.get("CCS_DB_POOL_SIZE", "10")))
    p.add_argument("--max-connections", type=int, default=10_000)
    p.add_argument("--rooms-connections", type=int, default=1000)
    p.add_argument(
        "--rates",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[500, 1000, 2000, 3000, 4500, 6000],
    )
    p.add_argument("--phase-s", type=float, default=3.0)
    p.add_argument("--latency-s", type=float, default=5.0)
    p.add_argument("--hold-s", type=float, default=5.0)
    p.add_argument(
        "--server-root",
        default=str(ROOT),
        help="tree whose ccs_server/ is measured (a patched copy, for before/after)",
    )
    p.add_argument(
        "--pg",
        choices=("private", "shared"),
        default="private",
        help="private: a PostgreSQL cluster of its own (no other user's locks or NOTIFY "
        "traffic; falls back to shared without the binaries); shared: BENCH_ADMIN_DSN",
    )
    p.add_argument(
        "--profile",
        default="",
        help="write py-spy collapsed stacks of the server during the rate sweep to this file",
    )
    p.add_argument(
        "--no-distributed", action="store_true", help="skip connect bursts and the overhead"
    )
    p.add_argument("--burst-devices", type=int, default=10_000)
    p.add_argument("--burst-runs", type=int, default=5)
    p.add_argument(
        "--live-connections",
        type=int,
        default=0,
        help="also hold this many devices on 6 nodes and 6 Locust workers for 60 s (heavy)",
    )
    p.add_argument(
        "--live-connect-timeout",
        type=float,
        default=900.0,
        help="s the hold waits for every device before it holds what it has",
    )
    p.add_argument(
        "--only-distributed",
        action="store_true",
        help="only bursts, overhead and --live-connections, merged into the existing --out",
    )
    args = p.parse_args(argv)
    args.server_root = str(Path(args.server_root).resolve())
    if args.quick:
        args.burst_devices, args.burst_runs = min(args.burst_devices, 2000), 1
        args.max_connections = min(args.max_connections, 2000)
        args.phase_s, args.latency_s, args.hold_s = 1.5, 2.0, 1.0
    return args


def private_postgres() -> Any:
    """A private PostgreSQL cluster (the kit's fault tool), started from the main thread: the
    cluster is killed with the thread that spawned it. None when the binaries are missing."""
    try:
        from ccskit.faults.common import FaultError
        from ccskit.faults.postgres import PrivatePostgres
    except ImportError:
        return None
    try:
        pg = PrivatePostgres(database="postgres")
    except FaultError as exc:
        print(f"no private PostgreSQL ({exc}); using the shared one", flush=True)
        return None
    pg.start(timeout=60)
    return pg


if __name__ == "__main__":
    arguments = parse_args()
    cluster = private_postgres() if arguments.pg == "private" else None
    arguments.admin_dsn = cluster.database_url("postgres") if cluster else ADMIN_DSN
    print(f"PostgreSQL: {'private cluster' if cluster else 'shared'} {arguments.admin_dsn}")
    factory: Any = asyncio.new_event_loop
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional; it adds 14-55% client throughput here
        pass
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            code = runner.run(main(arguments))
    finally:
        if cluster is not None:
            cluster.teardown()
    sys.exit(code)
