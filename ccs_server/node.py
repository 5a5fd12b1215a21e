"""The running node: settings plus the adapters and core it is made of."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from .config import Settings
from .hub import Hub
from .metrics import Metrics
from .pg_bus import Listener
from .ports import Bus, FixtureStore, MessageStore, PresenceStore
from .redis_bus import RedisLink


@dataclass
class Node:
    """Everything a request handler needs, storage and bus as their ports (ports.py)."""

    settings: Settings
    store: MessageStore
    presence: PresenceStore
    fixtures: FixtureStore
    bus: Bus
    hub: Hub
    listener: Listener
    metrics: Metrics
    redis: RedisLink | None = None  # None: no REDIS_URL (leases in PostgreSQL, bus over NOTIFY)
    hello_gate: asyncio.Semaphore | None = None  # made on first hello (ws.hello_gate)


NODE_KEY: web.AppKey[Node] = web.AppKey("node", Node)
