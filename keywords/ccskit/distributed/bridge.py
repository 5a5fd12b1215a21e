"""The bridge between Locust's gevent world and the kit's asyncio connections.

Locust runs users as greenlets on a gevent hub with the standard library monkey-patched; the kit's
device connections (``ccskit.load``, python-websockets) are asyncio. Driving one from the other
inside one thread would need a gevent-asyncio hybrid loop whose wake-ups cost more than the
frames themselves. Instead each Locust process owns **one asyncio loop (uvloop where installed) in
a real operating-system thread** that holds every connection of that process, and the greenlets
only hand it work:

* gevent -> asyncio: :meth:`Bridge.call` / :meth:`Bridge.spawn` use ``call_soon_threadsafe``
  (never blocks a greenlet);
* asyncio -> gevent: :meth:`Bridge.notify` queues a callback and wakes the hub through a gevent
  ``async`` watcher, the one gevent primitive that may be signalled from another thread; the
  callback then runs in the hub's thread (so it may set gevent events or touch Locust's stats);
* :meth:`Bridge.run` waits in a greenlet (other greenlets keep running) for a coroutine's result.

The thread is started with the *original* ``start_new_thread`` so gevent's patching does not turn
it into a greenlet; uvloop does its I/O in libuv, so the patched ``socket``/``selectors`` modules
are never used by the loop.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.monkey

T = TypeVar("T")


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (14-55 % more deliveries per second here), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _start_native_thread(target: Callable[[], None]) -> None:
    if gevent.monkey.is_module_patched("threading"):
        start = gevent.monkey.get_original("_thread", "start_new_thread")
        start(target, ())
    else:
        threading.Thread(target=target, name="ccs-distributed-loop", daemon=True).start()


class Bridge:
    """One asyncio loop in a native thread, reachable from greenlets and back."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self._started = threading.Event()
        self._inbox: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._watcher = gevent.get_hub().loop.async_()
        self._watcher.start(self._drain)
        _start_native_thread(self._run)
        if not self._started.wait(10):
            raise RuntimeError("the distributed load's asyncio thread did not start in 10 s")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    # gevent -> asyncio ------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; returns at once."""
        self.loop.call_soon_threadsafe(fn, *args)

    def spawn(self, coro_fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start ``coro_fn(*args)`` as a task on the loop; returns at once (fire and forget)."""
        self.loop.call_soon_threadsafe(self._create_task, coro_fn, args)

    def _create_task(
        self, coro_fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...]
    ) -> None:
        self.loop.create_task(coro_fn(*args))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait (cooperatively, in this greenlet) for its result."""
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()

        def done(future: asyncio.Future[T]) -> None:
            if future.cancelled():
                self.notify(result.set_exception, TimeoutError("cancelled"))
            elif future.exception() is not None:
                self.notify(result.set_exception, future.exception())
            else:
                self.notify(result.set, future.result())

        def start() -> None:
            self.loop.create_task(asyncio.wait_for(coro, timeout)).add_done_callback(done)

        self.loop.call_soon_threadsafe(start)
        value: T = result.get(timeout=timeout + 5)
        return value

    # asyncio -> gevent ------------------------------------------------------------------------
    def notify(self, callback: Callable[..., Any], *args: Any) -> None:
        """From the loop's thread: run ``callback(*args)`` in the gevent hub's thread soon."""
        self._inbox.append((callback, args))
        self._watcher.send()

    def _drain(self) -> None:
        inbox = self._inbox
        while inbox:
            callback, args = inbox.popleft()
            callback(*args)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (its thread ends); pending callbacks are dropped."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._watcher.stop()
