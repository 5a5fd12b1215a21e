"""Watch a server process during a run: RSS, CPU and its PostgreSQL connections.

PostgreSQL connections are counted from ``pg_stat_activity``: the rows whose client port is one
of the server process's own TCP connections to the database port, so the kit's connections and
other servers on the same database are never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil


@dataclass(slots=True)
class Sample:
    """One reading of a process."""

    t: float
    rss_mib: float
    cpu_percent: float


class ProcessSampler:
    """Samples a process's RSS and CPU every ``interval_s`` in the background (psutil)."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        self.proc = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        """Read now (CPU is averaged since the previous reading)."""
        with self.proc.oneshot():
            s = Sample(
                time.time(), self.proc.memory_info().rss / 2**20, self.proc.cpu_percent(None)
            )
        self.samples.append(s)
        return s

    def start(self) -> None:
        """Start sampling on the running loop."""
        self.proc.cpu_percent(None)  # prime: the first call always reads 0
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(psutil.Error):
                self.sample()

    async def stop(self) -> list[Sample]:
        """Stop sampling and return every sample."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples


def listening_pid(port: int) -> int | None:
    """PID of the local process listening on TCP ``port`` (None when not visible)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def db_client_ports(pid: int, db_port: int) -> set[int]:
    """Local ports of ``pid``'s established TCP connections to ``db_port``."""
    ports = set()
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == db_port and conn.status == psutil.CONN_ESTABLISHED:
            ports.add(conn.laddr.port)
    return ports


async def server_db_connections(dsn: str, pid: int) -> list[dict[str, Any]]:
    """``pg_stat_activity`` rows of the server process ``pid`` (its pool plus any listener)."""
    db_port = urlsplit(dsn).port or 5432
    ports = db_client_ports(pid, db_port)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid, client_port, state, wait_event_type, backend_type, query "
            "FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
            sorted(ports),
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


COMMITS_SQL = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


class CommitSampler:
    """Samples ``pg_stat_database.xact_commit`` of the DSN's database every ``interval_s``.

    Database-wide: every client of that database counts. A busy PostgreSQL (15+) backend
    publishes its counts about once a second and an idle one up to 10 s later, so a delta
    between two readings around a phase is badly off; the *slope* of readings taken while the
    load runs is not (every reading lags by the same second or so).
    """

    def __init__(self, dsn: str, interval_s: float = 1.0) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            while True:
                n = await conn.fetchval(COMMITS_SQL, timeout=10)
                self.samples.append((time.time(), int(n)))
                await asyncio.sleep(self.interval_s)
        finally:
            await conn.close()

    async def stop(self) -> list[tuple[float, int]]:
        """Stop sampling and return the readings; raises what broke the sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples

    def rate_between(self, start: float, end: float, min_span_s: float = 2.0) -> float | None:
        """Commits per second from the first reading after ``start`` + 1 s (the readings lag
        about a second) to the last one before ``end``; None when they span under
        ``min_span_s``."""
        inside = [(t, n) for t, n in self.samples if start + 1.0 <= t <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < min_span_s:
            return None
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)


@dataclass
class MonitorReport:
    """What a :class:`ServerMonitor` saw."""

    samples: list[Sample] = field(default_factory=list)
    db_connections: list[tuple[float, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Peak and end figures, JSON-friendly."""
        rss = [s.rss_mib for s in self.samples]
        cpu = [s.cpu_percent for s in self.samples[1:]]
        conns = [n for _, n in self.db_connections]
        return {
            "samples": len(self.samples),
            "rss_mib_first": rss[0] if rss else None,
            "rss_mib_max": max(rss) if rss else None,
            "rss_mib_last": rss[-1] if rss else None,
            "cpu_pct_avg": sum(cpu) / len(cpu) if cpu else None,
            "cpu_pct_max": max(cpu) if cpu else None,
            "db_connections_max": max(conns) if conns else None,
        }


class ServerMonitor:
    """Samples RSS/CPU (psutil) and database connections of one server process in the background."""

    def __init__(self, pid: int, dsn: str | None = None, interval_s: float = 0.5) -> None:
        self.pid = pid
        self.dsn = dsn
        self.interval_s = interval_s
        self.sampler = ProcessSampler(pid, interval_s)
        self.report = MonitorReport()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start on the running loop."""
        self.sampler.start()
        if self.dsn:
            self._task = asyncio.create_task(self._watch_db())

    async def _watch_db(self) -> None:
        assert self.dsn is not None
        db_port = urlsplit(self.dsn).port or 5432
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                with contextlib.suppress(psutil.Error):
                    ports = sorted(db_client_ports(self.pid, db_port))
                    n = await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
                        ports,
                    )
                    self.report.db_connections.append((time.time(), int(n)))
                await asyncio.sleep(self.interval_s)
        finally:
            await conn.close()

    async def stop(self) -> MonitorReport:
        """Stop sampling; return everything seen."""
        self.report.samples = await self.sampler.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.report
