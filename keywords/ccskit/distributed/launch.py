"""Start a distributed run on this machine: reference server(s), a Locust master, N workers.

``python -m ccskit.distributed.launch --workers 2`` (what ``make distributed WORKERS=2`` runs):

1. starts the reference server on a fresh database of the shared PostgreSQL (``--nodes K`` starts
   K nodes on one database with a private Redis as their bus), unless ``--sut-url`` names a
   running server;
2. starts the master (headless, ``--expect-workers N``) and N worker processes of
   ``locustfile.py`` on loopback; the master provisions the fleet and deals it out;
3. waits (bounded) for the master to end, prints the outcome, writes the master's results file and
   a metrics file for ``make report``; exit code 0 only when the checker found nothing and every
   device got online.

Every process it starts is stopped by its own pid when it ends (or when the bound runs out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bench.server import ReferenceServer
from ..config import RESULTS_DIR, KitConfig, admin_database_url, ws_url_for
from ..faults.common import free_port
from ..load import raise_fd_limit
from ..server import ServerProcess
from .figures import metrics, write_metrics_file
from .plan import RunPlan, build_fleet

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass
class Options:
    """One distributed run (see ``--help``)."""

    workers: int = 2
    rooms: int = 30
    members: int = 10
    senders: int = 0
    idle: int = 0
    rate: float = 5.0
    duration_s: float = 20.0
    spawn_rate: float = 0.0
    receipt_every_s: float = 5.0
    nodes: int = 1
    source_addresses: str = ""
    connect_in_flight: int = 200
    drain_s: float = 30.0
    results: Path = RESULTS_DIR / "distributed.json"
    metrics_dir: Path | None = RESULTS_DIR / "metrics"
    logs: Path = RESULTS_DIR / "distributed"
    sut_url: str = ""
    database_url: str = ""
    server_env: dict[str, str] = field(default_factory=dict)
    extra_worker_env: dict[str, str] = field(default_factory=dict)
    admin_dsn: str = field(default_factory=admin_database_url)
    hold_s: float = 0.0
    """Hold mode: once the nodes report every device connected (or ``connect_timeout_s`` ran
    out), hold ``hold_s`` more and stop the master (SIGTERM: it still gathers and checks)."""
    connect_timeout_s: float = 900.0
    send_after_all_online: bool = False

    def plan(self, ws_urls: list[str]) -> RunPlan:
        return RunPlan(
            prefix=f"dl{os.getpid()}x{int(time.time()) % 100000}",
            rooms=self.rooms,
            members=self.members,
            senders=self.senders or None,
            idle=self.idle,
            rate_per_conversation=self.rate,
            receipt_every_s=self.receipt_every_s,
            ws_urls=tuple(ws_urls),
            source_addresses=tuple(a for a in self.source_addresses.split(",") if a),
            connect_in_flight=self.connect_in_flight,
            send_after_all_online=self.send_after_all_online,
        )


@dataclass
class LocustProcesses:
    """The master and worker processes of one run and where their output goes."""

    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every process still running (by pid), SIGKILL what outlives ``timeout_s``."""
        procs = [self.master, *self.workers]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
            if p.poll() is None:
                p.kill()
                p.wait(5)

    def tail(self, chars: int = 3000) -> str:
        out = []
        for path in self.logs:
            with contextlib.suppress(OSError):
                out.append(f"--- {path}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


def start_locust(
    opts: Options, plan: RunPlan, api_url: str, database_url: str
) -> tuple[LocustProcesses, int]:
    """Start master and workers; returns them and the number of Locust users (= devices)."""
    users = len(build_fleet(plan, opts.workers).devices)
    port = free_port()
    opts.logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    python = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master_cmd = [
        *python,
        *("--master", "--headless", "--master-bind-host", "127.0.0.1"),
        *("--master-bind-port", str(port), "--expect-workers", str(opts.workers)),
        *("--expect-workers-max-wait", "120", "-u", str(users)),
        *("-r", str(opts.spawn_rate or users), "-t", f"{int(load_s(opts))}s"),
        *("--host", api_url, "--only-summary", "--stop-timeout", "5"),
        *("--ccs-rooms", str(plan.rooms), "--ccs-members", str(plan.members)),
        *("--ccs-senders", str(plan.senders or 0), "--ccs-idle", str(plan.idle)),
        *("--ccs-rate", str(plan.rate_per_conversation), "--ccs-prefix", plan.prefix),
        *("--ccs-receipt-every", str(plan.receipt_every_s)),
        *("--ccs-ws-urls", ",".join(plan.ws_urls)),
        *("--ccs-source-addresses", ",".join(plan.source_addresses)),
        *("--ccs-connect-in-flight", str(plan.connect_in_flight)),
        *("--ccs-database-url", database_url, "--ccs-drain", str(opts.drain_s)),
        *("--ccs-results", str(opts.results)),
        *(["--ccs-send-after-all-online"] if plan.send_after_all_online else []),
    ]
    logs = [opts.logs / "master.log"]
    with logs[0].open("wb") as out:
        master = subprocess.Popen(master_cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    workers = []
    for i in range(opts.workers):
        logs.append(opts.logs / f"worker-{i}.log")
        worker_cmd = [*python, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        with logs[-1].open("wb") as out:
            workers.append(
                subprocess.Popen(
                    worker_cmd,
                    env={**env, **opts.extra_worker_env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    return LocustProcesses(master, workers, logs), users


def wait_for(procs: LocustProcesses, timeout_s: float) -> int | None:
    """The master's exit code, or None when it did not end within ``timeout_s``."""
    try:
        return procs.master.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


def load_s(opts: Options) -> float:
    """Locust's run time: the duration, or in hold mode long enough to connect and hold."""
    return opts.connect_timeout_s + opts.hold_s + 60 if opts.hold_s else opts.duration_s


def run_bound_s(opts: Options, users: int) -> float:
    """How long a run may take: provisioning, connecting, the load, draining, and margin."""
    return 120 + users / 300 + load_s(opts) + 3 * opts.drain_s


async def _with_server(opts: Options) -> dict[str, Any]:
    if opts.sut_url:
        database_url = opts.database_url or KitConfig.from_env().database_url
        return await asyncio.to_thread(
            _run, opts, opts.sut_url, [ws_url_for(opts.sut_url)], database_url, []
        )
    env = {"CCS_LOG_LEVEL": "WARNING", **opts.server_env}
    redis = None
    if opts.nodes > 1:
        from ..faults.redis_server import PrivateRedis

        redis = PrivateRedis()
        await asyncio.to_thread(redis.start)
        env["REDIS_URL"] = redis.url
    try:
        async with ReferenceServer(
            f"ccs_distributed_{os.getpid()}", opts.admin_dsn, env={**env, "CCS_NODE_ID": "node-1"}
        ) as srv:
            extra = [
                ServerProcess(
                    env={**env, "DATABASE_URL": srv.dsn, "CCS_NODE_ID": f"node-{k + 1}"},
                    log_dir=opts.logs / "server",
                )
                for k in range(1, opts.nodes)
            ]
            try:
                urls = [srv.ws_url]
                for node in extra:
                    urls.append(ws_url_for(await asyncio.to_thread(node.start, 60.0)))
                pids = [srv.pid, *(n.pid for n in extra if n.pid)]
                return await asyncio.to_thread(_run, opts, srv.api_url, urls, srv.dsn, pids)
            finally:
                for node in extra:
                    await asyncio.to_thread(node.stop)
    finally:
        if redis is not None:
            await asyncio.to_thread(redis.teardown)


def _run(
    opts: Options, api_url: str, ws_urls: list[str], database_url: str, node_pids: list[int]
) -> dict[str, Any]:
    plan = opts.plan(ws_urls)
    opts.results.unlink(missing_ok=True)
    watch = NodeWatch([u.replace("ws://", "http://").rsplit("/ws", 1)[0] for u in ws_urls])
    watch.baseline(node_pids)
    procs, users = start_locust(opts, plan, api_url, database_url)
    try:
        code = _supervise(opts, procs, users, watch, node_pids)
    finally:
        procs.stop()
    if not opts.results.exists():
        raise RuntimeError(
            f"the master wrote no results (exit code {code}); the processes said:\n{procs.tail()}"
        )
    outcome: dict[str, Any] = json.loads(opts.results.read_text())
    outcome["master_exit_code"] = code
    outcome["nodes"] = watch.report(len(ws_urls))
    return outcome


def _supervise(
    opts: Options, procs: LocustProcesses, users: int, watch: NodeWatch, pids: list[int]
) -> int | None:
    """Wait for the master (bounded); in hold mode stop it ``hold_s`` after every device is on."""
    deadline = time.monotonic() + run_bound_s(opts, users)
    stop_at = None
    connect_deadline = time.monotonic() + opts.connect_timeout_s + 120  # provisioning first
    for _ in range(int(run_bound_s(opts, users) / WATCH_S) + 1):
        code = procs.master.poll()
        if code is not None or time.monotonic() > deadline:
            return code
        live = watch.sample(pids)
        all_on = live >= users or time.monotonic() > connect_deadline
        if opts.hold_s and stop_at is None and all_on:
            watch.mark_connected(live)
            stop_at = time.monotonic() + opts.hold_s
        if stop_at is not None and time.monotonic() > stop_at:
            procs.master.send_signal(signal.SIGTERM)  # the master gathers and checks, then quits
            stop_at = float("inf")
        time.sleep(WATCH_S)
    return procs.master.poll()


WATCH_S = 2.0


@dataclass
class NodeWatch:
    """Connections each node reports on ``/health`` and the nodes' memory, every few seconds."""

    base_urls: list[str]
    rss_base: int = 0
    rss_peak: int = 0
    live_peak: int = 0
    connected_at: float = 0.0
    connected_live: int = 0
    started: float = field(default_factory=time.time)
    series: list[list[float]] = field(default_factory=list)

    def baseline(self, pids: list[int]) -> None:
        self.rss_base = _rss(pids)

    def sample(self, pids: list[int]) -> int:
        live = 0
        for url in self.base_urls:
            with (
                contextlib.suppress(Exception),
                urllib.request.urlopen(f"{url}/health", timeout=2) as resp,
            ):
                live += int(json.loads(resp.read()).get("connections") or 0)
        rss = _rss(pids)
        self.rss_peak = max(self.rss_peak, rss)
        self.live_peak = max(self.live_peak, live)
        self.series.append([round(time.time() - self.started, 1), live, round(rss / 2**20, 1)])
        return live

    def mark_connected(self, live: int) -> None:
        self.connected_at, self.connected_live = time.time(), live

    def report(self, nodes: int) -> dict[str, Any]:
        grown = max(0, self.rss_peak - self.rss_base)
        return {
            "nodes": nodes,
            "live_peak": self.live_peak,
            "connected_live": self.connected_live,
            "seconds_to_connect": round(self.connected_at - self.started, 1)
            if self.connected_at
            else None,
            "rss_base_mib": round(self.rss_base / 2**20, 1),
            "rss_peak_mib": round(self.rss_peak / 2**20, 1),
            "rss_per_connection_kib": round(grown / 1024 / self.live_peak, 2)
            if self.live_peak
            else None,
            "series_t_live_rssmib": self.series[-400:],
        }


def _rss(pids: list[int]) -> int:
    import psutil

    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def run(opts: Options) -> dict[str, Any]:
    """One distributed run with ``opts``; the master's outcome (results file contents)."""
    raise_fd_limit(1_048_576)
    return asyncio.run(_with_server(opts))


def describe(outcome: dict[str, Any]) -> str:
    """A few lines for a person: checker, devices, throughput, latency, failed thresholds."""
    t = outcome["totals"]
    d = {k: v if v is not None else float("nan") for k, v in outcome["delivery_ms"].items()}
    failed = [m for m in metrics(outcome) if m.passed is False]
    lines = [
        f"checker: {outcome['check']['summary']}",
        f"workers: {outcome['workers']}  devices: {t['connected']}/{t['devices']} online "
        f"({t['connect_per_s']:.0f}/s, {t['connect_refusals']} refusals retried, "
        f"{t['connect_failed']} failed), {t['closes']} unexpected closes "
        f"{t['close_codes']}",
        f"sends: {t['acked']}/{t['attempted']} acked ({t['acked_per_s']:.0f}/s), deliveries "
        f"{t['deliveries']}/{t['expected_deliveries']} ({t['deliveries_per_s']:.0f}/s)",
        f"delivery ms avg/p50/p99/max: {d['avg']:.2f}/{d['p50']:.2f}/{d['p99']:.2f}/{d['max']:.2f}",
    ]
    lines += [f"problem: {p}" for p in outcome.get("problems", [])]
    lines += [f"FAILED {m.name} = {m.value} (wanted {m.op} {m.threshold})" for m in failed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=30)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--rate", type=float, default=5.0, help="msgs/s per conversation")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--spawn-rate", type=float, default=0.0, help="default: all at once")
    parser.add_argument("--nodes", type=int, default=1, help="reference server nodes")
    parser.add_argument("--source-addresses", default="", help="e.g. 127.0.0.2,127.0.0.3")
    parser.add_argument("--sut-url", default="", help="a running server instead of starting one")
    parser.add_argument("--receipt-every", type=float, default=5.0, help="s between receipts")
    parser.add_argument(
        "--hold", type=float, default=0.0, help="hold mode: s to hold once every device is on"
    )
    parser.add_argument("--connect-timeout", type=float, default=900.0, help="hold mode bound")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "distributed.json")
    parser.add_argument("--no-metrics", action="store_true", help="write no metrics file")
    args = parser.parse_args(argv)
    opts = Options(
        workers=args.workers,
        rooms=args.rooms,
        members=args.members,
        idle=args.idle,
        rate=args.rate,
        duration_s=args.duration,
        spawn_rate=args.spawn_rate,
        nodes=args.nodes,
        source_addresses=args.source_addresses,
        sut_url=args.sut_url,
        results=args.results,
        receipt_every_s=args.receipt_every,
        hold_s=args.hold,
        connect_timeout_s=args.connect_timeout,
    )
    outcome = run(opts)
    print(describe(outcome), flush=True)
    nodes = outcome.get("nodes", {})
    print(
        f"nodes: {nodes.get('nodes')} live peak {nodes.get('live_peak')}, "
        f"{nodes.get('rss_per_connection_kib')} KiB per connection, "
        f"connected in {nodes.get('seconds_to_connect')} s",
        flush=True,
    )
    if not args.no_metrics and opts.metrics_dir is not None:
        path = write_metrics_file(
            outcome, opts.metrics_dir, f"make distributed WORKERS={opts.workers}"
        )
        print(f"metrics: {path}")
    failed = [m for m in metrics(outcome) if m.passed is False]
    return 0 if outcome["ok"] and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
