"""The LISTEN connection (database changes + bus events) and the NOTIFY-based Bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .metrics import Metrics
from .pg_deadline import BoundedPool
from .ports import EventHandler

log = logging.getLogger("ccs.listener")

CHANGES_CHANNEL = "ccs_changes"  # written by triggers on messages / conversation_members
EVENTS_CHANNEL = "ccs_events"  # written by PgBus.publish
ORIGIN_KEY = "_origin"  # publishing node, stripped before handlers see the event
PROBE_INTERVAL_S = 2.0
CONNECT_TIMEOUT_S = 5.0  # connect + LISTEN: a stalled link must not hold the loop forever
REPAIR_TIMEOUT_S = 30.0  # the repair after a reconnect (each of its queries is bounded too)


class PgBus:
    """Bus over NOTIFY: at-most-once, every node (the publisher included) receives each event.

    With a ``node_id`` the publisher hands the event to its own handlers directly and ignores
    its echo from the listener: this node's sessions then never miss an event because the LISTEN
    connection was reconnecting or the database was briefly unreachable.
    """

    def __init__(self, pool: BoundedPool, node_id: str = "") -> None:
        self.pool = pool
        self.node_id = node_id
        self.handlers: list[EventHandler] = []

    async def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` to every node; failures are logged (ephemeral events may be lost)."""
        wire = {**event, ORIGIN_KEY: self.node_id} if self.node_id else event
        try:
            await self.pool.execute(
                "SELECT pg_notify($1, $2)",
                EVENTS_CHANNEL,
                json.dumps(wire, separators=(",", ":")),
                timeout=3.0,
            )
        except Exception:
            log.warning("bus publish failed", extra={"event_type": event.get("type")})
        if self.node_id:
            self.dispatch(event)

    def subscribe(self, handler: EventHandler) -> None:
        """Register a handler called for every event received."""
        self.handlers.append(handler)

    def deliver(self, payload: str) -> None:
        """Called by the listener with a raw event payload."""
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("malformed bus payload")
            return
        if not isinstance(event, dict):
            return
        if event.pop(ORIGIN_KEY, None) == self.node_id and self.node_id:
            return  # handed to this node's handlers when it was published
        self.dispatch(event)

    def dispatch(self, event: dict[str, Any]) -> None:
        """Run every handler on a copy of ``event``."""
        for handler in self.handlers:
            result = handler(dict(event))
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(_log_failure)


class Listener:
    """A dedicated LISTEN connection that reconnects by itself with jittered backoff."""

    def __init__(
        self,
        dsn: str,
        on_change: Callable[[dict[str, Any]], None],
        bus: PgBus,
        on_connect: Callable[[], Awaitable[Any]],
        metrics: Metrics,
        node_id: str = "",
    ) -> None:
        self.dsn = dsn
        self.node_id = node_id
        self.on_change = on_change
        self.bus = bus
        self.on_connect = on_connect
        self.metrics = metrics
        self.state = "starting"
        self.conn: asyncpg.Connection | None = None
        self.ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the connect/listen/reconnect loop in the background."""
        self._task = asyncio.create_task(self._run(), name="listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.conn is not None and not self.conn.is_closed():
            self.conn.terminate()

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while True:
            try:
                await self._listen_once(first)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "listener connection failed",
                    extra={"error": type(exc).__name__, "retry_in_s": round(backoff, 2)},
                )
            first = False
            self.state = "reconnecting"
            self.metrics.listener_up.set(0)
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 5.0)

    async def _listen_once(self, first: bool) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": f"ccs-listener {self.node_id}"},
        )
        self.conn = conn
        try:
            conn.add_termination_listener(lambda _c: self._lost.set())
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await conn.add_listener(CHANGES_CHANNEL, self._on_change)
                await conn.add_listener(EVENTS_CHANNEL, self._on_event)
            self.state = "listening"
            self.metrics.listener_up.set(1)
            self.ready.set()
            if not first:
                self.metrics.listener_reconnects.inc()
                log.info("listener reconnected; repairing")
            # notifications sent while we were not listening are gone: repair from the table
            async with asyncio.timeout(REPAIR_TIMEOUT_S):
                await self.on_connect()
            while not conn.is_closed():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), PROBE_INTERVAL_S)
                if self._lost.is_set() or conn.is_closed():
                    break
                # a stalled link: the probe times out, the connection is terminated (finally,
                # no cancel request waited for) and the loop reconnects
                async with asyncio.timeout(PROBE_INTERVAL_S):
                    await conn.fetchval("SELECT 1")
        finally:
            if not conn.is_closed():
                conn.terminate()

    def _on_change(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            change = json.loads(payload)
        except ValueError:
            log.warning("malformed change payload")
            return
        self.on_change(change)

    def _on_event(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.bus.deliver(payload)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("bus handler failed", exc_info=task.exception())
