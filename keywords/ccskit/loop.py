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
    """Owns one event loop running forever in a daemon thread.

    ``fast=True`` runs it on uvloop where installed: the load keywords use a loop of their own
    so that thousands of lean connections do not slow the device clients, and uvloop gives a
    load process 14-55% more deliveries per second here.
    """

    def __init__(self, name: str = "ccs-loop", fast: bool = False) -> None:
        self.loop = _new_loop(fast)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.loop.is_running()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str = "") -> T:
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
            raise TimeoutError(
                f"expected {what or 'the operation'} to finish within {timeout:.1f} s"
            ) from None


def _new_loop(fast: bool) -> asyncio.AbstractEventLoop:
    if fast:
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The process-wide loop thread (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = LoopThread()
        return _shared
