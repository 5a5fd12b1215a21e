"""One asyncio loop in a daemon thread, shared by every proxy of the process.

The proxies live in the Robot process (not a child process) so that a keyword such as
``Cut Proxy`` has taken effect when it returns, and counters are read without any IPC. The loop is
never stopped: a later suite in the same robot process must still be able to use it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ccskit.faults.common import FaultError

T = TypeVar("T")


class LoopThread:
    _instance: LoopThread | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="ccs-faults-loop", daemon=True
        )
        self._thread.start()

    @classmethod
    def shared(cls) -> LoopThread:
        with cls._guard:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FaultError(f"expected {what} to finish within {timeout:.1f} s") from None
