"""The running node: settings plus the adapters and core it is made of."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .config import Settings
from .hub import Hub
from .metrics import Metrics
from .pg_bus import Listener, PgBus
from .pg_store import PgStore


@dataclass
class Node:
    """Everything a request handler needs."""

    settings: Settings
    store: PgStore
    bus: PgBus
    hub: Hub
    listener: Listener
    metrics: Metrics


NODE_KEY: web.AppKey[Node] = web.AppKey("node", Node)
