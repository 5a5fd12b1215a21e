"""A private service run as a direct child process: start, kill -9, stop, pause, restart."""

from __future__ import annotations

import abc
import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ccskit.config import scaled
from ccskit.faults import procs
from ccskit.faults.common import FaultError, free_port, tail, wait_until


class ManagedService(abc.ABC):
    """One private instance of a server program, on a port chosen once and kept across restarts."""

    name = "service"

    def __init__(self, port: int | None = None) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"ccs-faults-{self.name}-"))
        self.log_path = self.base_dir / f"{self.name}.log"
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused: list[int] = []

    # -- what a concrete service provides -----------------------------------------------
    @abc.abstractmethod
    def _argv(self) -> list[str]: ...

    @abc.abstractmethod
    def _probe(self) -> bool:
        """One readiness check: True when the service answers a real request."""

    def _run_as(self) -> str | None:
        return None

    def _after_first_start(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Hook for one-off setup once the first start is ready (e.g. create a database)."""

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self._proc is None or self._proc.poll() is not None:
            raise FaultError(f"private {self.name} on port {self.port} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> float:
        """Start (or start again) and wait until it answers; returns seconds to readiness."""
        if self.running:
            raise FaultError(f"private {self.name} already runs as pid {self.pid}")
        first = self._proc is None
        began = time.monotonic()
        self._proc = procs.spawn(self._argv(), self.log_path, user=self._run_as())
        wait_until(self._ready_probe, scaled(timeout), f"private {self.name} to accept connections")
        if first:
            self._after_first_start()
        return time.monotonic() - began

    def _ready_probe(self) -> bool | None:
        if self._proc is not None and self._proc.poll() is not None:
            raise FaultError(
                f"private {self.name} exited with code {self._proc.returncode} while starting "
                f"on port {self.port}; log tail:\n{tail(self.log_path)}"
            )
        return True if self._probe() else None

    def kill(self, timeout: float = 10.0) -> int:
        """kill -9 the main process and every process it started (a crash of the whole server)."""
        pid = self.pid
        children = procs.descendants(pid)
        self._continue_paused()  # a stopped process still dies on SIGKILL; keep the record clean
        for victim in [pid, *children]:
            try:
                procs.send_signal(victim, signal.SIGKILL)
            except FaultError:
                continue  # it exited on its own between listing and signalling
        try:
            self._proc.wait(timeout=scaled(timeout))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            raise FaultError(f"expected {self.name} pid {pid} to die on SIGKILL") from None
        procs.wait_all_gone(children, scaled(timeout))
        return pid

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Ask the service to shut down with ``sig`` and wait for it; returns its exit code."""
        if not self.running:
            return None
        self._continue_paused()
        self._proc.send_signal(sig)  # type: ignore[union-attr]
        try:
            return self._proc.wait(timeout=scaled(timeout))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            raise FaultError(
                f"expected private {self.name} to stop on {sig.name} within {timeout:.0f} s"
            ) from None

    def pause(self) -> list[int]:
        """SIGSTOP the service and its children: it keeps its sockets but answers nothing."""
        tree = [self.pid, *procs.descendants(self.pid)]
        for pid in tree:
            procs.send_signal(pid, signal.SIGSTOP)
        self._paused = tree
        for pid in tree:
            procs.wait_stopped(pid, stopped=True, timeout=scaled(5))
        return tree

    def resume(self) -> list[int]:
        if not self._paused:
            raise FaultError(f"private {self.name} is not paused")
        return self._continue_paused()

    def _continue_paused(self) -> list[int]:
        resumed, self._paused = self._paused, []
        for pid in resumed:
            if procs.is_alive(pid):
                procs.send_signal(pid, signal.SIGCONT)
        for pid in resumed:
            procs.wait_stopped(pid, stopped=False, timeout=scaled(5))
        return resumed

    def teardown(self) -> None:
        """Kill whatever still runs and remove every file the instance made."""
        if self.running:
            # Best effort: the directory is removed whatever happened.
            with contextlib.suppress(FaultError):
                self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)
