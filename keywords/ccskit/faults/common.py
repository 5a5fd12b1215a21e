"""Small helpers shared by the fault modules: free ports, bounded waits."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Ports of the shared services: never hand them out, whatever the OS says.
SHARED_PORTS = frozenset({5432, 6379})
# Below the kernel's ephemeral range (32768-60999), so a client's outgoing socket cannot grab the
# port between a kill -9 and the restart that must bind the same port again.
_PORT_LOW, _PORT_HIGH = 20000, 32000
_PORT_ATTEMPTS = 200


class FaultError(AssertionError):
    """A fault could not be injected or undone; the message says what was expected and seen."""


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1, outside the ephemeral range and never 5432/6379."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(_PORT_ATTEMPTS):
        port = rng.randint(_PORT_LOW, _PORT_HIGH)
        if port not in SHARED_PORTS and _port_is_free(port):
            return port
    raise FaultError(f"no free port found in {_PORT_LOW}-{_PORT_HIGH} after {_PORT_ATTEMPTS} tries")


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until it returns something other than None, at most ``timeout`` seconds.

    ``probe`` may raise; the last exception is quoted in the failure message.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    max_rounds = int(timeout / interval) + 2
    for _ in range(max_rounds):
        try:
            result = probe()
        except FaultError:
            raise  # the probe saw something final (e.g. the process died): no point waiting
        except Exception as exc:  # any failure of the probe just means "not yet"
            last_error = exc
        else:
            if result is not None:
                return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    seen = f"last error: {last_error!r}" if last_error else "condition never became true"
    raise FaultError(f"expected {what} within {timeout:.1f} s, {seen}")


def tail(path: Path, lines: int = 15) -> str:
    """Last lines of a log file, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])
