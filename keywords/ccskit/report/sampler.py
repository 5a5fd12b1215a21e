"""Background sampling of one process's memory and CPU into the recorder's series.

The listener starts one that follows the server's PID by itself: the ``CCS`` library's
``ctx.target.pid`` (set when it starts the reference server, cleared when it stops it), else
``CCS_SERVER_PID``. A restarted server has a new PID and the sampler moves to it, so a kill -9 and
respawn stays on one chart. A library can also point it at a process explicitly:

    from ccskit.report import sampler
    sampler.watch(pid)                 # series server_rss_mib, server_cpu_pct
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psutil

from ccskit.metrics import Recorder, recorder

DEFAULT_INTERVAL_S = float(os.environ.get("CCS_SAMPLE_INTERVAL_S", "0.5"))


class ProcessSampler:
    """Samples RSS (MiB) and CPU (% of one core) of a process every ``interval`` seconds."""

    def __init__(
        self,
        pid: int | None,
        prefix: str = "server",
        interval: float = DEFAULT_INTERVAL_S,
        target: Recorder = recorder,
        source: Callable[[], int | None] | None = None,
    ) -> None:
        """``source``, when given, is asked for the current PID at every tick (it may change)."""
        self.prefix = prefix
        self._source = source
        self._pid: int | None = None
        self.interval = interval
        self._target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: psutil.Process | None = None
        if pid is not None:
            self.follow(pid)
        self._thread = threading.Thread(target=self._run, name=f"ccs-sampler-{prefix}", daemon=True)

    def follow(self, pid: int) -> None:
        """Sample ``pid`` from now on (a restarted server has a new PID)."""
        self._pid = pid
        try:
            process = psutil.Process(pid)
            process.cpu_percent(None)  # primes the counter: the first call always returns 0.0
        except psutil.Error:
            process = None
        with self._lock:
            self._process = process

    def start(self) -> ProcessSampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def sample_once(self) -> bool:
        """Record one RSS and one CPU point; ``False`` when the process is gone."""
        with self._lock:
            process = self._process
        if process is None:
            return False
        try:
            with process.oneshot():
                rss = process.memory_info().rss / 2**20
                cpu = process.cpu_percent(None)
        except psutil.Error:
            return False
        self._target.add_point(f"{self.prefix}_rss_mib", rss, "MiB")
        self._target.add_point(f"{self.prefix}_cpu_pct", cpu, "%")
        return True

    def _run(self) -> None:
        # Event.wait is the period, not a synchronisation: stop() ends the loop at once.
        while not self._stop.wait(self.interval):
            if self._source is not None:
                current = self._source()
                if current is not None and current != self._pid:
                    self.follow(current)
            self.sample_once()


_samplers: dict[str, ProcessSampler] = {}
_samplers_lock = threading.Lock()


def watch(
    pid: int | None = None,
    prefix: str = "server",
    interval: float = DEFAULT_INTERVAL_S,
    source: Callable[[], int | None] | None = None,
) -> ProcessSampler:
    """Start sampling ``pid`` (or whatever ``source`` names) under ``prefix``.

    A sampler already running under ``prefix`` switches to ``pid`` instead of starting twice.
    """
    with _samplers_lock:
        existing = _samplers.get(prefix)
        if existing is not None:
            if pid is not None:
                existing.follow(pid)
            return existing
        sampler = ProcessSampler(pid, prefix, interval, source=source).start()
        _samplers[prefix] = sampler
        return sampler


def server_pid() -> int | None:
    """The PID of the server under test, or ``None`` while it is unknown.

    In order: the kit's target PID (:func:`kit_target`, set when the kit starts the reference
    server), ``CCS_SERVER_PID``, and the local process listening on ``SUT_URL``'s port when that
    URL is on this machine (the runner starts one server and hands its URL to every process).
    """
    pid = getattr(kit_target(), "pid", None)
    if isinstance(pid, int) and pid > 0:
        return pid
    env = os.environ.get("CCS_SERVER_PID", "").strip()
    if env.isdigit():
        return int(env)
    return _listener_of(os.environ.get("SUT_URL", ""))


_library_target: Any = None  # the CCS library's target once found: it lives as long as robot


def kit_target() -> Any:
    """The kit's record of the server under test (``base_url``, ``pid``), or ``None``.

    The ``CCS`` library's shared context (``ctx.target``) when robot has it loaded, else a
    module-level ``ccskit.config.target`` if the kit has one; the report tools run without either.
    """
    global _library_target
    if _library_target is None:
        _library_target = _ccs_library_target()
    if _library_target is not None:
        return _library_target
    try:
        import ccskit.config as config
    except ImportError:
        return None
    return getattr(config, "target", None)


def _ccs_library_target() -> Any:
    try:
        from robot.libraries.BuiltIn import BuiltIn

        library = BuiltIn().get_library_instance("CCS")
    except Exception:  # robot not running, CCS not imported, or robot tearing down
        return None
    return getattr(getattr(library, "ctx", None), "target", None)


_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_RESOLVE_EVERY_S = 5.0
_resolved: dict[str, tuple[float, int | None]] = {}


def _listener_of(url: str) -> int | None:
    """PID listening on the port of a loopback ``url`` (looked up at most every few seconds)."""
    parts = urlsplit(url)
    if parts.hostname not in _LOCAL_HOSTS or parts.port is None:
        return None
    now = time.monotonic()
    cached = _resolved.get(url)
    if cached and (now - cached[0] < _RESOLVE_EVERY_S or _alive(cached[1])):
        return cached[1]
    pid = None
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == parts.port:
                pid = conn.pid
                break
    except psutil.Error:
        pid = None
    _resolved[url] = (now, pid)
    return pid


def _alive(pid: int | None) -> bool:
    return pid is not None and psutil.pid_exists(pid)


def stop_all() -> None:
    """Stop every sampler started by :func:`watch` (the listener calls it at close)."""
    with _samplers_lock:
        samplers = list(_samplers.values())
        _samplers.clear()
    for sampler in samplers:
        sampler.stop()
