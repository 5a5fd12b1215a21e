"""Stops the reference server shared by a plain pabot run once that run is over.

Usage: ``python pabot_watchdog.py HOST:PORT PID`` — polls PabotLib at ``HOST:PORT`` (it lives
exactly as long as the pabot run) and sends ``SIGTERM`` to ``PID`` (the shared server), then
``SIGKILL`` if it has not exited 10 s later, once PabotLib stops answering. Exits by itself when
the server is gone. Standard library only: it runs by path, outside the kit's package.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

POLL_S = 1.0
# PabotLib answers within milliseconds while the run lasts; three misses in a row mean it is gone.
MISSES_BEFORE_STOP = 3


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def stop(pid: int, grace_s: float = 10.0) -> None:
    """Graceful shutdown first (the server closes sockets with 1012), then a kill."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)  # waiting on another process's exit: there is no event to wait on
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def watch(host: str, port: int, pid: int) -> None:
    misses = 0
    while alive(pid):
        misses = 0 if answers(host, port) else misses + 1
        if misses >= MISSES_BEFORE_STOP:
            stop(pid)
            return
        time.sleep(POLL_S)  # polling another process: there is no event to wait on


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, _, port = argv[0].rpartition(":")
    watch(host or "127.0.0.1", int(port), int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
