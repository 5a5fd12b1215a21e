"""Everything one test run injected, by alias, with its timeline: state of the fault keywords.

Fault kinds written to the timeline (``detail`` names the alias or PID):
``db_kill``, ``db_stop``, ``db_pause``, ``redis_kill``, ``redis_stop``, ``redis_pause``,
``proxy_cut``, ``proxy_stall``, ``proxy_delay``, ``proxy_drop``, ``db_backends_terminated``,
``db_listener_terminated``, ``process_kill``, ``process_term``, ``process_pause``.
"""

from __future__ import annotations

import signal
from typing import Any, TypeVar

from ccskit.config import scaled
from ccskit.faults import backends, procs
from ccskit.faults.common import SHARED_PORTS, FaultError, wait_until
from ccskit.faults.postgres import PrivatePostgres
from ccskit.faults.proxy import TcpProxy
from ccskit.faults.redis_server import PrivateRedis
from ccskit.faults.service import ManagedService
from ccskit.faults.timeline import INJECTED, RECOVERED, FaultTimeline

S = TypeVar("S")


def _lookup(registry: dict[str, S], alias: str, what: str) -> S:
    try:
        return registry[alias]
    except KeyError:
        raise FaultError(f"no {what} with alias '{alias}'; known: {sorted(registry)}") from None


class FaultKit:
    """Registries of private services, proxies and paused processes, plus the fault timeline."""

    def __init__(self) -> None:
        self.timeline = FaultTimeline()
        self.postgres: dict[str, PrivatePostgres] = {}
        self.redis: dict[str, PrivateRedis] = {}
        self.proxies: dict[str, TcpProxy] = {}
        self.paused_pids: set[int] = set()
        # alias -> fault kinds injected and not yet recovered, so a restore closes the right ones.
        self._open_faults: dict[str, set[str]] = {}

    # -- timeline -----------------------------------------------------------------------
    def injected(self, alias: str, kind: str, detail: str) -> None:
        self._open_faults.setdefault(alias, set()).add(kind)
        self.timeline.record(kind, INJECTED, detail)

    def recovered(self, alias: str, detail: str, kinds: set[str] | None = None) -> list[str]:
        open_kinds = self._open_faults.get(alias, set())
        closing = sorted(open_kinds if kinds is None else open_kinds & kinds)
        for kind in closing:
            open_kinds.discard(kind)
            self.timeline.record(kind, RECOVERED, detail)
        return closing

    # -- private services ---------------------------------------------------------------
    def start_postgres(self, alias: str, database: str, timeout: float) -> PrivatePostgres:
        if alias in self.postgres:
            raise FaultError(f"a private PostgreSQL with alias '{alias}' already exists")
        pg = PrivatePostgres(database)
        _start_or_clean_up(pg, timeout)
        self.postgres[alias] = pg
        return pg

    def start_redis(self, alias: str, timeout: float) -> PrivateRedis:
        if alias in self.redis:
            raise FaultError(f"a private Redis with alias '{alias}' already exists")
        server = PrivateRedis()
        _start_or_clean_up(server, timeout)
        self.redis[alias] = server
        return server

    def pg(self, alias: str) -> PrivatePostgres:
        return _lookup(self.postgres, alias, "private PostgreSQL")

    def rd(self, alias: str) -> PrivateRedis:
        return _lookup(self.redis, alias, "private Redis")

    def kill_service(self, svc: ManagedService, alias: str, prefix: str) -> int:
        pid = svc.kill()
        self.injected(f"{prefix}:{alias}", f"{prefix}_kill", f"{alias} pid {pid} port {svc.port}")
        return pid

    def stop_service(
        self, svc: ManagedService, alias: str, prefix: str, sig: signal.Signals
    ) -> None:
        pid = svc.pid
        svc.stop(sig)
        self.injected(f"{prefix}:{alias}", f"{prefix}_stop", f"{alias} pid {pid} {sig.name}")

    def restart_service(
        self, svc: ManagedService, alias: str, prefix: str, timeout: float
    ) -> float:
        """Start again on the same port and data; stops a running one first (SIGTERM/SIGINT)."""
        if svc.running:
            svc.stop(signal.SIGINT if isinstance(svc, PrivatePostgres) else signal.SIGTERM)
        seconds = svc.start(timeout)
        kinds = {f"{prefix}_kill", f"{prefix}_stop", f"{prefix}_pause"}
        detail = f"{alias} ready after {seconds:.3f} s on port {svc.port}"
        self.recovered(f"{prefix}:{alias}", detail, kinds)
        return seconds

    def pause_service(self, svc: ManagedService, alias: str, prefix: str) -> list[int]:
        pids = svc.pause()
        self.injected(f"{prefix}:{alias}", f"{prefix}_pause", f"{alias} pids {pids}")
        return pids

    def resume_service(self, svc: ManagedService, alias: str, prefix: str) -> list[int]:
        pids = svc.resume()
        self.recovered(f"{prefix}:{alias}", f"{alias} resumed", {f"{prefix}_pause"})
        return pids

    # -- proxies ------------------------------------------------------------------------
    def start_proxy(self, alias: str, upstream: str) -> TcpProxy:
        if alias in self.proxies:
            raise FaultError(f"a TCP proxy with alias '{alias}' already exists")
        host, sep, port = upstream.rpartition(":")
        if not sep or not port.isdigit():
            raise FaultError(f"upstream must be 'host:port', got {upstream!r}")
        proxy = TcpProxy(host or "127.0.0.1", int(port))
        self.proxies[alias] = proxy
        return proxy

    def proxy(self, alias: str) -> TcpProxy:
        return _lookup(self.proxies, alias, "TCP proxy")

    def proxy_fault(self, alias: str, kind: str, detail: str) -> None:
        self.injected(f"proxy:{alias}", kind, f"{alias} {detail}".strip())

    def restore_proxy(self, alias: str) -> list[str]:
        proxy = self.proxy(alias)
        proxy.restore()
        return self.recovered(f"proxy:{alias}", f"{alias} restored")

    # -- database backends --------------------------------------------------------------
    def admin_dsn(self, server: str) -> str:
        """``server`` is a private PostgreSQL alias, or a DSN / URL of any other server."""
        if "=" in server or "://" in server:
            return server
        return self.pg(server).dsn("postgres")

    def terminate_backends(self, server: str, minimum: int, **filters: Any) -> list[int]:
        if not any(filters.get(k) for k in ("database", "application_name", "listeners_only")):
            # Unfiltered, this would also end other suites' sessions on a shared server.
            raise FaultError("give a database or an application_name to terminate backends of")
        dsn = self.admin_dsn(server)
        found = backends.find_backends(dsn, **filters)
        what = "LISTEN backends" if filters.get("listeners_only") else "backends"
        backends.require_some(found, f"{what} matching {filters}", minimum)
        pids = backends.terminate(dsn, found)
        kind = (
            "db_listener_terminated" if filters.get("listeners_only") else "db_backends_terminated"
        )
        self.injected(f"backends:{server}", kind, f"pids {pids} matching {filters}")
        return pids

    def wait_for_listener(
        self, server: str, database: str | None, count: int, timeout: float
    ) -> list[int]:
        """Wait until ``count`` LISTEN backends exist (servers re-listened); returns their pids."""
        dsn = self.admin_dsn(server)

        def probe() -> list[int] | None:
            found = backends.find_backends(dsn, database=database, listeners_only=True)
            return [b.pid for b in found] if len(found) >= count else None

        what = f"{count} LISTEN backend(s) on database {database}"
        pids = wait_until(probe, scaled(timeout), what)
        detail = f"listeners back as pids {pids}"
        self.recovered(f"backends:{server}", detail, {"db_listener_terminated"})
        return pids

    # -- any process --------------------------------------------------------------------
    def signal_process(self, pid: int, sig: signal.Signals) -> None:
        procs.refuse_shared_service(pid, SHARED_PORTS)
        procs.send_signal(pid, sig)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            procs.wait_stopped(pid, stopped=sig == signal.SIGSTOP, timeout=scaled(5))
        alias = f"pid:{pid}"
        if sig == signal.SIGSTOP:
            self.paused_pids.add(pid)
            self.injected(alias, "process_pause", alias)
        elif sig == signal.SIGCONT:
            self.paused_pids.discard(pid)
            self.recovered(alias, f"{alias} resumed", {"process_pause"})
        else:
            kind = "process_kill" if sig == signal.SIGKILL else "process_term"
            self.injected(alias, kind, f"{alias} {sig.name}")

    # -- teardown -----------------------------------------------------------------------
    def stop_all(self) -> list[str]:
        """Undo every fault and remove every private service; returns what went wrong, if any."""
        problems: list[str] = []
        for pid in sorted(self.paused_pids):
            if procs.is_alive(pid):
                problems += _attempt(f"resume pid {pid}", procs.send_signal, pid, signal.SIGCONT)
        self.paused_pids.clear()
        for alias, proxy in self.proxies.items():
            problems += _attempt(f"close proxy {alias}", proxy.close)
            self.recovered(f"proxy:{alias}", f"{alias} closed by Stop All Faults")
        self.proxies.clear()
        services: dict[str, ManagedService] = {**self.postgres, **self.redis}
        for alias, svc in services.items():
            problems += _attempt(f"tear down {alias}", svc.teardown)
        self.postgres.clear()
        self.redis.clear()
        return problems


def _start_or_clean_up(svc: ManagedService, timeout: float) -> None:
    """A service that failed to come up leaves neither a process nor a directory behind."""
    try:
        svc.start(timeout)
    except BaseException:
        svc.teardown()
        raise


def _attempt(what: str, func: Any, *args: Any) -> list[str]:
    """Run one teardown step; a failure is reported, not raised, so the other steps still run."""
    try:
        func(*args)
    except Exception as exc:  # teardown must go on whatever one step raised
        return [f"{what}: {exc}"]
    return []
