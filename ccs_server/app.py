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
from .errors import CloseCode
from .hub import Hub
from .metrics import Metrics
from .node import NODE_KEY, Node
from .pg_bus import Listener, PgBus
from .pg_store import PgStore, StartupError, apply_migrations, check_durability
from .rest import error_middleware, routes
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
    async with PgStore.open(
        settings.database_url, settings.db_pool_size, timeout_s, settings.node_id
    ) as store:
        metrics = Metrics()
        bus = PgBus(store.pool)
        hub = Hub(settings, store, bus, metrics)
        listener = Listener(
            settings.database_url,
            hub.on_change,
            bus,
            lambda: _repair_after_reconnect(hub),
            metrics,
            settings.node_id,
        )
        await store.reset_node_presence(settings.node_id)
        hub.start()
        listener.start()
        await asyncio.wait_for(listener.ready.wait(), 15)
        node = Node(settings, store, bus, hub, listener, metrics)
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
            await _close_sessions(hub)
            await runner.cleanup()
            await listener.stop()
            await hub.stop()


async def _repair_after_reconnect(hub: Hub) -> None:
    try:
        await hub.repair(force=True)
    except Exception:
        log.warning("repair after reconnect failed", exc_info=True)


async def _close_sessions(hub: Hub) -> None:
    """Tell clients to reconnect elsewhere (1012) before the listener goes away."""
    sessions = [s for group in hub.by_user.values() for s in group]
    for sess in sessions:
        sess.close(CloseCode.SERVICE_RESTART, "service restart")
    writers = [s.writer for s in sessions if not s.writer.done()]
    if writers:
        await asyncio.wait(writers, timeout=2.0)


def _signal_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
