"""Signals to processes (kill -9, SIGTERM, SIGSTOP/SIGCONT) and bounded waits for their exit."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from ccskit.faults.common import FaultError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the forked child: a service the kit started must not outlive a crashed kit."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    argv: Sequence[str], log_path: Path, user: str | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a direct child (its PID is the service's PID), output to ``log_path``.

    With ``user`` the child switches user itself before exec (no runuser/su wrapper in between),
    so signalling the returned PID signals the service and not a wrapper.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            preexec_fn=_die_with_parent,
            # Own process group: Ctrl-C in the terminal must not take the service down mid-test.
            start_new_session=True,
        )


def _process(pid: int) -> psutil.Process:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise FaultError(f"process {pid} has already exited (zombie)")
        return proc
    except psutil.NoSuchProcess:
        raise FaultError(f"expected a running process {pid}, but there is none") from None


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; fails clearly when the process does not exist."""
    if pid <= 1 or pid == os.getpid():
        raise FaultError(f"refusing to send {sig.name} to pid {pid}")
    _process(pid).send_signal(sig)


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def is_stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def wait_for_exit(pid: int, timeout: float) -> int | None:
    """Wait until ``pid`` has exited; returns its exit code when it was our child, else None."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    try:
        # psutil reaps our own children (waitpid) and polls any other process.
        return proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        status = proc.status() if proc.is_running() else "gone"
        raise FaultError(
            f"expected process {pid} to exit within {timeout:.1f} s, it is still {status}"
        ) from None


def descendants(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_all_gone(pids: Sequence[int], timeout: float) -> None:
    """Wait until none of ``pids`` is alive; zombies count as gone (they hold no resources and
    a non-child zombie is reaped by whoever PID 1 is, maybe never)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 2):
        still = [pid for pid in pids if is_alive(pid)]
        if not still:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    raise FaultError(f"expected processes {still} to exit within {timeout:.1f} s")


def wait_stopped(pid: int, stopped: bool, timeout: float = 5.0) -> None:
    """SIGSTOP/SIGCONT are delivered asynchronously: wait until ``pid`` is (not) stopped."""
    want = "stopped" if stopped else "running again"
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.005) + 2):
        if not is_alive(pid) or is_stopped(pid) == stopped:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    raise FaultError(f"expected process {pid} to be {want} within {timeout:.1f} s")


def refuse_shared_service(pid: int, shared_ports: frozenset[int]) -> None:
    """Refuse to signal the shared PostgreSQL/Redis (or one of their backends) by mistake."""
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.parents()[:1]]
        listening = {
            conn.laddr.port
            for member in family
            for conn in member.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        }
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return  # send_signal reports a missing process with a clear message
    if listening & shared_ports:
        raise FaultError(
            f"refusing to signal pid {pid}: it belongs to a shared service listening on "
            f"{sorted(listening & shared_ports)}"
        )
