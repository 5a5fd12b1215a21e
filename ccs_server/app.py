"""Start-up and shutdown of one node: checks, migrations, pool, listener, HTTP/WebSocket server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import asyncpg
from aiohttp import web

from .config import Settings
from .errors import StartupError
from .hub import Hub
from .leases import LeaseStore, PgLeases, PresenceKeeper, RedisLeases
from .metrics import Metrics
from .node import NODE_KEY, Node
from .pg_bus import Listener, PgBus
from .pg_durability import check_durability
from .pg_fixtures import PgFixtures
from .pg_migrations import apply_migrations
from .pg_pool import open_pool
from .pg_presence import PgPresence
from .pg_store import PgStore
from .ports import Bus
from .redis_bus import RedisBus, RedisLink
from .rest import error_middleware, routes
from .shutdown import graceful_shutdown
from .ws import ws_handler

log = logging.getLogger("ccs.app")


async def prepare_database(settings: Settings) -> list[str]:
    """Durability check and migrations on one short-lived connection."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except Exception as exc:
        raise StartupError(f"cannot connect to DATABASE_URL: {type(exc).__name__}: {exc}") from exc
    try:
        await check_durability(conn, settings.allow_unsafe_durability)
        return await apply_migrations(conn)
    finally:
        await conn.close()


def build_app(node: Node) -> web.Application:
    """The aiohttp application: /ws plus the REST routes."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=max(node.settings.max_frame_bytes, 1 << 20)
    )
    app[NODE_KEY] = node
    app.router.add_get("/ws", ws_handler)
    app.add_routes(routes)
    return app


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the node until ``stop`` is set (or SIGINT/SIGTERM)."""
    await prepare_database(settings)
    stop = stop or _signal_event()
    timeout_s = settings.db_timeout_ms / 1000
    async with open_pool(
        settings.database_url, settings.db_pool_size, timeout_s, settings.node_id
    ) as pool:
        # the one place that picks the implementations of the ports (ports.py)
        store, presence, fixtures = PgStore(pool), PgPresence(pool), PgFixtures(pool)
        metrics = Metrics()
        pg_bus = PgBus(pool, settings.node_id)
        link = RedisLink(settings.redis_url) if settings.redis_url else None
        redis_bus = RedisBus(link, pg_bus, settings.node_id) if link is not None else None
        bus: Bus = redis_bus if redis_bus is not None else pg_bus
        hub = Hub(settings, store, presence, bus, metrics)
        listener = Listener(
            settings.database_url,
            hub.on_change,
            pg_bus,
            lambda: _repair_after_reconnect(hub),
            metrics,
            settings.node_id,
        )
        leases: LeaseStore = RedisLeases(link) if link else PgLeases(pool, timeout_s)
        keeper = PresenceKeeper(hub, leases, settings.node_lease_ms)
        await keeper.register()
        # devices an earlier run of this node id left online (crash): offline, and say so
        await keeper.reap_node(settings.node_id)
        await keeper.tick()
        if redis_bus is not None:
            redis_bus.start()
        keeper.start()
        hub.start()
        listener.start()
        await asyncio.wait_for(listener.ready.wait(), 15)
        node = Node(settings, store, presence, fixtures, bus, hub, listener, metrics, link)
        runner = web.AppRunner(build_app(node), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        port = runner.addresses[0][1]
        if settings.port_file:
            Path(settings.port_file).write_text(str(port))  # noqa: ASYNC240 - tiny, once
        print(f"CCS listening on http://{settings.host}:{port}", flush=True)
        log.info("listening", extra={"port": port, "node_id": settings.node_id})
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await graceful_shutdown(runner, hub, keeper, settings.shutdown_timeout_ms)
            await runner.cleanup()
            if redis_bus is not None:
                await redis_bus.stop()
            await listener.stop()
            await hub.stop()
            if link is not None:
                await link.close()


async def _repair_after_reconnect(hub: Hub) -> None:
    try:
        await hub.repair(force=True)
    except Exception:
        log.warning("repair after reconnect failed", exc_info=True)


def _signal_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
