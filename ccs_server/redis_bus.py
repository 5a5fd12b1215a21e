"""Redis: one shared client with an up/down state, and the Bus for ephemeral cross-node events.

Redis is never the source of truth. Messages reach sockets through PostgreSQL (trigger + NOTIFY,
repaired from the table), so a Redis outage costs at most some receipt/presence events, which
are stored in PostgreSQL anyway. Every call is bounded by a short timeout: a paused (SIGSTOP)
Redis must never block the event loop or a client's command for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .pg_bus import PgBus
from .ports import EventHandler

log = logging.getLogger("ccs.redis")

EVENTS_CHANNEL = "ccs:events"
CALL_TIMEOUT_S = 0.5


class RedisLink:
    """The node's Redis client and what it last learnt about Redis being reachable.

    ``up`` is set by whoever talks to Redis (the lease heartbeat every lease/3, publishes); the
    subscriber re-subscribes whenever the link comes back, so no restart is ever needed.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # no hidden retries: a failed call must fail fast and fall back, the heartbeat retries
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=CALL_TIMEOUT_S * 2,
            socket_connect_timeout=CALL_TIMEOUT_S * 2,
            retry=Retry(NoBackoff(), 0),
        )
        self.up = False
        self.came_up = asyncio.Event()
        self.generation = 0

    @property
    def state(self) -> str:
        """``ok`` or ``unavailable`` (for /health)."""
        return "ok" if self.up else "unavailable"

    def mark_up(self) -> None:
        """Redis answered."""
        if not self.up:
            log.info("redis reachable")
            self.up = True
            self.generation += 1
            self.came_up.set()

    def mark_down(self, exc: BaseException | None = None) -> None:
        """A call failed or timed out: fall back until the heartbeat sees Redis again."""
        if self.up:
            log.warning("redis unavailable", extra={"error": type(exc).__name__ if exc else ""})
        self.up = False
        self.came_up.clear()

    async def call(self, coro: Any) -> Any:
        """Await a Redis command with a hard timeout; failures mark the link down and re-raise."""
        try:
            result = await asyncio.wait_for(coro, CALL_TIMEOUT_S)
        except Exception as exc:
            self.mark_down(exc)
            raise
        self.mark_up()
        return result

    async def close(self) -> None:
        """Close the client (best effort)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.aclose(), 1.0)


class RedisBus:
    """Bus over Redis pub/sub with PostgreSQL NOTIFY as the fallback while Redis is down.

    Local sessions get an event straight away (not through Redis), other nodes through Redis;
    a node ignores its own events coming back from Redis. At-most-once, like any pub/sub.
    """

    def __init__(self, link: RedisLink, pg_bus: PgBus, node_id: str) -> None:
        self.link = link
        self.pg_bus = pg_bus
        self.node_id = node_id
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, handler: EventHandler) -> None:
        """Handlers are shared with the NOTIFY bus, which still carries fallback events."""
        self.pg_bus.subscribe(handler)

    async def publish(self, event: dict[str, Any]) -> None:
        """Redis when reachable, else NOTIFY; this node's sessions are always served directly."""
        if self.link.up:
            payload = json.dumps({"n": self.node_id, "e": event}, separators=(",", ":"))
            try:
                await self.link.call(self.link.client.publish(EVENTS_CHANNEL, payload))
            except Exception:
                log.info("redis publish failed; falling back to NOTIFY")
            else:
                self.pg_bus.dispatch(event)
                return
        await self.pg_bus.publish(event)

    def start(self) -> None:
        """Run the subscriber in the background."""
        self._task = asyncio.create_task(self._run(), name="redis-subscriber")

    async def stop(self) -> None:
        """Stop the subscriber."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.link.came_up.wait()
            generation = self.link.generation
            try:
                await self._subscribe_while_up(generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.link.mark_down(exc)
            await asyncio.sleep(0.2)  # the heartbeat decides when Redis is back

    async def _subscribe_while_up(self, generation: int) -> None:
        pubsub = self.link.client.pubsub()
        try:
            await asyncio.wait_for(pubsub.subscribe(EVENTS_CHANNEL), CALL_TIMEOUT_S * 2)
            log.info("redis subscribed")
            # a new generation means the link went down and up meanwhile: subscribe afresh
            while self.link.up and self.link.generation == generation:
                msg = await asyncio.wait_for(
                    pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5), 2.0
                )
                if msg is not None and msg.get("type") == "message":
                    self._deliver(msg["data"])
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 0.5)

    def _deliver(self, data: bytes | str) -> None:
        try:
            wrapped = json.loads(data)
        except ValueError:
            log.warning("malformed redis payload")
            return
        if not isinstance(wrapped, dict) or wrapped.get("n") == self.node_id:
            return
        if not isinstance(wrapped.get("e"), dict):
            return
        self.pg_bus.dispatch(wrapped["e"])
