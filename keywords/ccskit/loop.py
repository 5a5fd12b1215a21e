"""An asyncio loop in a daemon thread, driven from synchronous code (Robot keywords).

Robot runs ``async def`` keywords on a loop that only turns while such a keyword runs; live
connections (heartbeats, presence, background receive) need a loop that keeps turning during
``Sleep`` or a database keyword, hence this thread. It is never stopped by a suite teardown:
the next suite in the same process would hang on every call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Owns one event loop running forever in a daemon thread."""

    def __init__(self, name: str = "ccs-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.loop.is_running()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop and wait up to ``timeout`` seconds for its result.

        On timeout the coroutine is cancelled and :class:`TimeoutError` raised, so nothing keeps
        running in the background on behalf of a keyword that already failed.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from the loop thread itself")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"operation did not finish within {timeout:.1f} s") from None


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The process-wide loop thread (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = LoopThread()
        return _shared
