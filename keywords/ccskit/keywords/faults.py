"""Keywords that inject real faults: processes killed, connections cut or stalled.

Private PostgreSQL and Redis instances (never the shared ones on 5432/6379), an asyncio TCP proxy
for network faults, ``pg_terminate_backend`` of a server's connections, and signals to any process.
Every fault and its recovery is timestamped for the report's fault timeline.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from ..context import KitContext
from ..faults import procs
from ..faults.common import FaultError
from ..faults.kit import FaultKit
from ..faults.postgres import STOP_SIGNALS
from ..faults.timeline import INJECTED

_SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}


def _signal(name: str) -> signal.Signals:
    key = name.upper().removeprefix("SIG")
    if key.isdigit():
        key = {"9": "KILL", "15": "TERM", "2": "INT"}.get(key, key)
    try:
        return _SIGNALS[key]
    except KeyError:
        raise FaultError(f"signal must be KILL, TERM or INT, got {name!r}") from None


class FaultKeywords:
    """Fault injection for CCS suites: private services, a TCP proxy, backend and process faults.

    Aliases name what the library started, so tests say ``db-link`` rather than a port. Fault
    kinds on the timeline: ``db_kill``, ``db_stop``, ``db_pause``, ``redis_kill``, ``redis_stop``,
    ``redis_pause``, ``proxy_cut``, ``proxy_stall``, ``proxy_delay``, ``proxy_drop``,
    ``db_backends_terminated``, ``db_listener_terminated``, ``process_kill``, ``process_term``,
    ``process_pause``; events ``injected`` and ``recovered``.

    Timeouts are Robot time strings (``10 s``) scaled by ``CCS_TIMEOUT_SCALE`` (by the fault
    kit's own waits, so each is scaled once).

    | `Start Private PostgreSQL` | database=ccs |
    | ${url}= | `Start TCP Proxy` | db-link | 127.0.0.1:${pg_port} |
    | `Kill PostgreSQL` |
    | `Restart PostgreSQL` |
    | `Stop All Faults` |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx

    @property
    def _kit(self) -> FaultKit:
        return self.ctx.faults

    # -- private PostgreSQL -------------------------------------------------------------
    @keyword("Start Private PostgreSQL")
    def start_private_postgresql(
        self, database: str = "ccs", alias: str = "pg", timeout: timedelta = timedelta(seconds=30)
    ) -> str:
        """Initialise and start a private PostgreSQL 15 on a free port; returns its DATABASE_URL.

        The cluster lives in a temporary directory, runs as the ``postgres`` user, listens on
        127.0.0.1 only, and has ``database`` created in it.

        | ${url}= | Start Private PostgreSQL | database=ccs |
        """
        pg = self._kit.start_postgres(alias, database, timeout.total_seconds())
        logger.info(f"private PostgreSQL '{alias}' pid {pg.pid} at {pg.database_url()}")
        return pg.database_url()

    @keyword("Private PostgreSQL Url")
    def private_postgresql_url(
        self, alias: str = "pg", database: str | None = None, port: int | None = None
    ) -> str:
        """DATABASE_URL of the private cluster; ``port`` names a proxy in front of it instead.

        | ${url}= | Private PostgreSQL Url | port=${proxy_port} |
        """
        return self._kit.pg(alias).database_url(database, port)

    @keyword("Private PostgreSQL Port")
    def private_postgresql_port(self, alias: str = "pg") -> int:
        """TCP port of the private cluster (kept across restarts)."""
        return self._kit.pg(alias).port

    @keyword("Kill PostgreSQL")
    def kill_postgresql(self, alias: str = "pg") -> int:
        """kill -9 the postmaster and all its backends at once; returns the postmaster PID.

        | Kill PostgreSQL |
        | Restart PostgreSQL |
        """
        pg = self._kit.pg(alias)
        return self._kit.kill_service(pg, alias, "db")

    @keyword("Stop PostgreSQL")
    def stop_postgresql(
        self, mode: str = "fast", alias: str = "pg", timeout: timedelta = timedelta(seconds=30)
    ) -> None:
        """Shut the private cluster down: ``smart`` (SIGTERM, waits for clients), ``fast``
        (SIGINT, disconnects clients) or ``immediate`` (SIGQUIT, crash-like).

        | Stop PostgreSQL | mode=smart |
        """
        sig = STOP_SIGNALS.get(mode)
        if sig is None:
            raise FaultError(f"mode must be one of {sorted(STOP_SIGNALS)}, got {mode!r}")
        pg = self._kit.pg(alias)
        pid = pg.pid
        pg.stop(sig, timeout.total_seconds())
        self._kit.injected(f"db:{alias}", "db_stop", f"{alias} pid {pid} {mode}")

    @keyword("Restart PostgreSQL")
    def restart_postgresql(
        self, alias: str = "pg", timeout: timedelta = timedelta(seconds=30)
    ) -> float:
        """Start the cluster again on the same port and data directory; returns seconds to ready.

        A running cluster is stopped (fast) first. Records ``recovered`` for an open kill/stop.

        | ${seconds}= | Restart PostgreSQL |
        """
        seconds = self._kit.restart_service(
            self._kit.pg(alias), alias, "db", timeout.total_seconds()
        )
        logger.info(f"private PostgreSQL '{alias}' ready again after {seconds:.3f} s")
        return seconds

    @keyword("Pause PostgreSQL")
    def pause_postgresql(self, alias: str = "pg") -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers."""
        self._kit.pause_service(self._kit.pg(alias), alias, "db")

    @keyword("Resume PostgreSQL")
    def resume_postgresql(self, alias: str = "pg") -> None:
        """SIGCONT what `Pause PostgreSQL` stopped."""
        self._kit.resume_service(self._kit.pg(alias), alias, "db")

    # -- private Redis ------------------------------------------------------------------
    @keyword
    def start_private_redis(
        self, alias: str = "redis", timeout: timedelta = timedelta(seconds=15)
    ) -> str:
        """Start a private Redis (nothing persisted) on a free port; returns its ``redis://`` URL.

        | ${redis_url}= | Start Private Redis |
        """
        server = self._kit.start_redis(alias, timeout.total_seconds())
        logger.info(f"private Redis '{alias}' pid {server.pid} at {server.url}")
        return server.url

    @keyword
    def private_redis_port(self, alias: str = "redis") -> int:
        """TCP port of the private Redis (kept across restarts)."""
        return self._kit.rd(alias).port

    @keyword
    def kill_redis(self, alias: str = "redis") -> int:
        """kill -9 the private Redis; returns its PID. Its data is gone (nothing is persisted)."""
        return self._kit.kill_service(self._kit.rd(alias), alias, "redis")

    @keyword
    def stop_redis(self, alias: str = "redis") -> None:
        """SIGTERM the private Redis and wait for it to exit."""
        self._kit.stop_service(self._kit.rd(alias), alias, "redis", signal.SIGTERM)

    @keyword
    def restart_redis(
        self, alias: str = "redis", timeout: timedelta = timedelta(seconds=15)
    ) -> float:
        """Start the private Redis again on the same port; returns seconds to ready (PING)."""
        return self._kit.restart_service(
            self._kit.rd(alias), alias, "redis", timeout.total_seconds()
        )

    @keyword
    def pause_redis(self, alias: str = "redis") -> None:
        """SIGSTOP the private Redis: its sockets stay open, every command hangs.

        | Pause Redis |
        | Resume Redis |
        """
        self._kit.pause_service(self._kit.rd(alias), alias, "redis")

    @keyword
    def resume_redis(self, alias: str = "redis") -> None:
        """SIGCONT the private Redis paused by `Pause Redis`."""
        self._kit.resume_service(self._kit.rd(alias), alias, "redis")

    # -- TCP proxy ----------------------------------------------------------------------
    @keyword("Start TCP Proxy")
    def start_tcp_proxy(self, alias: str, upstream: str) -> str:
        """Start a proxy on 127.0.0.1 in front of ``upstream`` (``host:port``, loopback only).

        Returns the proxy's ``127.0.0.1:PORT``; point the client there.

        | ${addr}= | Start TCP Proxy | db-link | 127.0.0.1:${pg_port} |
        """
        proxy = self._kit.start_proxy(alias, upstream)
        logger.info(f"proxy '{alias}' {proxy.address} -> {upstream}")
        return proxy.address

    @keyword("Stop TCP Proxy")
    def stop_tcp_proxy(self, alias: str) -> None:
        """Reset every connection through the proxy and stop listening for good."""
        self._kit.proxy(alias).close()
        self._kit.recovered(f"proxy:{alias}", f"{alias} stopped")
        del self._kit.proxies[alias]

    @keyword
    def proxy_port(self, alias: str) -> int:
        """Listening port of the proxy ``alias``."""
        return self._kit.proxy(alias).port

    @keyword
    def cut_proxy(self, alias: str) -> int:
        """Reset (RST) every connection through the proxy and refuse new ones until restored.

        Returns how many connections were reset.

        | ${n}= | Cut Proxy | db-link |
        | Should Be True | ${n} >= 1 |
        """
        count = self._kit.proxy(alias).cut()
        self._kit.proxy_fault(alias, "proxy_cut", f"reset {count} connections")
        return count

    @keyword
    def stall_proxy(self, alias: str, direction: str = "both") -> None:
        """Blackhole the proxy: bytes and new connections are held, nothing is forwarded.

        ``direction``: ``upstream`` (client to server), ``downstream`` or ``both``. Held bytes are
        delivered after `Restore Proxy`, as TCP would retransmit through a healed partition.

        | Stall Proxy | db-link |
        """
        self._kit.proxy(alias).stall(direction)
        self._kit.proxy_fault(alias, "proxy_stall", direction)

    @keyword
    def delay_proxy(self, alias: str, delay: timedelta, direction: str = "both") -> None:
        """Add ``delay`` of latency to every chunk in ``direction`` (throughput is kept).

        | Delay Proxy | ws-link | 200 ms |
        """
        self._kit.proxy(alias).delay(delay.total_seconds(), direction)
        self._kit.proxy_fault(alias, "proxy_delay", f"{delay.total_seconds()} s {direction}")

    @keyword
    def drop_proxy_direction(self, alias: str, direction: str) -> None:
        """Silently discard every byte in one direction (``upstream`` or ``downstream``).

        The other direction keeps flowing; the stream is corrupted from the peer's view.

        | Drop Proxy Direction | ws-link | downstream |
        """
        self._kit.proxy(alias).drop(direction)
        self._kit.proxy_fault(alias, "proxy_drop", direction)

    @keyword
    def restore_proxy(self, alias: str) -> None:
        """End every fault on the proxy: forward again, listen again after a cut (same port)."""
        closed = self._kit.restore_proxy(alias)
        logger.info(f"proxy '{alias}' restored; recovered faults: {closed or 'none'}")

    @keyword
    def get_proxy_stats(self, alias: str) -> dict[str, Any]:
        """Mode, byte and connection counts of the proxy.

        Keys: ``mode``, ``address``, ``connections_total``, ``connections_active``,
        ``connections_reset``, ``upstream_failures``, ``bytes_upstream``, ``bytes_downstream``,
        ``dropped_upstream``, ``dropped_downstream``.

        | ${stats}= | Get Proxy Stats | db-link |
        | Should Be True | ${stats}[bytes_upstream] > 0 |
        """
        return self._kit.proxy(alias).snapshot()

    # -- database backends --------------------------------------------------------------
    @keyword
    def terminate_database_backends(
        self,
        database: str | None = None,
        application_name: str | None = None,
        server: str = "pg",
        minimum: int = 1,
    ) -> int:
        """``pg_terminate_backend`` every client backend of ``database`` and/or
        ``application_name`` (never the kit's own); returns how many were terminated.

        ``server`` is a private PostgreSQL alias or a DSN/URL. At least one filter is required.
        Fails when fewer than ``minimum`` match, since a fault that hits nothing proves nothing.
        Returns once the terminated backends are gone from ``pg_stat_activity``.

        | ${n}= | Terminate Database Backends | database=ccs |
        """
        pids = self._kit.terminate_backends(
            server, minimum, database=database, application_name=application_name
        )
        logger.info(f"terminated backends {pids}")
        return len(pids)

    @keyword
    def terminate_listener_backends(
        self, database: str | None = None, server: str = "pg", minimum: int = 1
    ) -> int:
        """``pg_terminate_backend`` every idle connection whose last statement was LISTEN.

        | Terminate Listener Backends | database=ccs |
        | Wait For Listener Backend | database=ccs |
        """
        pids = self._kit.terminate_backends(server, minimum, database=database, listeners_only=True)
        logger.info(f"terminated LISTEN backends {pids}")
        return len(pids)

    @keyword
    def wait_for_listener_backend(
        self,
        database: str | None = None,
        server: str = "pg",
        timeout: timedelta = timedelta(seconds=10),
        count: int = 1,
    ) -> list[int]:
        """Wait until ``count`` connections LISTEN again (one per node); returns their PIDs.

        Records ``recovered`` for an open ``db_listener_terminated``.

        | ${pids}= | Wait For Listener Backend | database=ccs | count=2 |
        """
        return self._kit.wait_for_listener(server, database, count, timeout.total_seconds())

    # -- any process --------------------------------------------------------------------
    @keyword
    def kill_process(self, pid: int, signal_name: str = "KILL") -> None:
        """Send KILL (default, kill -9), TERM or INT to ``pid``, e.g. a server node.

        Refuses processes of the shared services on 5432/6379.

        | Kill Process | ${node_pid} |
        | Kill Process | ${node_pid} | TERM |
        """
        self._kit.signal_process(pid, _signal(signal_name))

    @keyword
    def pause_process(self, pid: int) -> None:
        """SIGSTOP ``pid`` (a client, a node); `Stop All Faults` resumes it if the test does not."""
        self._kit.signal_process(pid, signal.SIGSTOP)

    @keyword
    def resume_process(self, pid: int) -> None:
        """SIGCONT ``pid``."""
        self._kit.signal_process(pid, signal.SIGCONT)

    @keyword
    def wait_for_process_exit(
        self, pid: int, timeout: timedelta = timedelta(seconds=10)
    ) -> int | None:
        """Wait until ``pid`` exits; returns its exit code when it is this process's child.

        | Kill Process | ${pid} | TERM |
        | Wait For Process Exit | ${pid} | 15 s |
        """
        return procs.wait_for_exit(pid, self.ctx.scaled(timeout))

    # -- timeline -----------------------------------------------------------------------
    @keyword
    def record_fault_event(
        self, kind: str, event: str, detail: str = "", t: float | None = None
    ) -> None:
        """Add an event to the fault timeline, e.g. the first acknowledged send after recovery.

        ``t`` is the wall-clock time of the event (epoch seconds); default now.

        | Record Fault Event | db_kill | first_ack | message ${id} |
        """
        self._kit.timeline.record(kind, event, detail, t)

    @keyword
    def seconds_since_fault(self, kind: str, event: str = INJECTED) -> float:
        """Seconds since the last ``event`` of fault ``kind``.

        | ${s}= | Seconds Since Fault | db_kill |
        """
        return self._kit.timeline.seconds_since(kind, event)

    @keyword
    def fault_duration(self, kind: str) -> float:
        """Seconds from the last injection of ``kind`` to the recovery that followed it."""
        return self._kit.timeline.duration(kind)

    @keyword
    def get_fault_timeline(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Recorded events (of one ``kind`` if given): ``t``, ``kind``, ``event``, ``detail``."""
        return [e.as_dict() for e in self._kit.timeline.events(kind)]

    # -- teardown -----------------------------------------------------------------------
    @keyword
    def heal_private_services(self) -> list[str]:
        """Teardown helper: resumes, restarts and restores whatever a fault test left broken
        (private PostgreSQL/Redis down or paused, proxies faulted); returns what it healed."""
        healed = []
        for alias, pg in list(self._kit.postgres.items()):
            if not pg.running:
                self.restart_postgresql(alias)
                healed.append(f"restarted PostgreSQL {alias}")
        for alias, rd in list(self._kit.redis.items()):
            if not rd.running:
                self.restart_redis(alias)
                healed.append(f"restarted Redis {alias}")
        for pid in sorted(self._kit.paused_pids):
            self.resume_process(pid)
            healed.append(f"resumed pid {pid}")
        for alias, proxy in list(self._kit.proxies.items()):
            if proxy.snapshot().get("mode") not in ("pass", "closed"):
                self.restore_proxy(alias)
                healed.append(f"restored proxy {alias}")
        if healed:
            logger.info(f"healed: {healed}")
        return healed

    @keyword
    def stop_all_faults(self) -> None:
        """Resume paused processes, close proxies, kill and remove private services.

        Every step runs even if one fails; failures are then reported together.

        | Suite Teardown | Stop All Faults |
        """
        problems = self._kit.stop_all()
        if problems:
            raise FaultError("Stop All Faults could not undo everything: " + "; ".join(problems))
