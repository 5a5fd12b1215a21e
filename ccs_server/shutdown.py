"""Graceful shutdown on SIGTERM/SIGINT (P17), bounded by ``CCS_SHUTDOWN_TIMEOUT_MS``.

1. Stop accepting: the listening sockets close, new connections are refused.
2. Drain: the hub stops taking commands; a command already running (a send waiting for its
   commit) finishes and its ack is queued; then each socket is closed with 1012 *after* the frames
   already queued for it, so no ack written to the queue is lost.
3. Presence: the closed sessions go offline through the usual grace timers (guarded by node id,
   so a device that already reconnected to another node is left alone); what is left is set
   offline here. The lease is then released, so peers never wait for it to expire.
Whatever is still running when the bound is reached is aborted; the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from .errors import CloseCode
from .hub import Hub
from .leases import PresenceKeeper
from .session import Session

log = logging.getLogger("ccs.shutdown")


async def graceful_shutdown(
    runner: web.AppRunner, hub: Hub, keeper: PresenceKeeper | None, timeout_ms: int
) -> None:
    """Run the steps above; never raises, returns within about ``timeout_ms``."""
    deadline = time.monotonic() + timeout_ms / 1000
    log.info("graceful shutdown", extra={"sessions": hub.connections_total()})
    for site in list(runner.sites):
        with contextlib.suppress(Exception):
            await site.stop()
    hub.draining = True
    sessions = _sessions(hub)
    for sess in sessions:
        if not sess.in_command:
            sess.close(CloseCode.SERVICE_RESTART, "service restart")
    # sessions inside a command are closed by their command loop right after the ack is queued
    await _wait(deadline, [s.writer for s in sessions if not s.writer.done()])
    for sess in _sessions(hub):
        sess.abort(CloseCode.SERVICE_RESTART, "service restart")
    # the connection handlers unregister their sessions and start the presence grace timers
    while hub.connections_total() and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded
        await asyncio.sleep(0.02)
    await _wait(deadline, list(hub.offline_timers.values()))
    if keeper is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(keeper.reap_node(hub.node_id), _left(deadline, 0.5))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(keeper.stop(release=True), _left(deadline, 0.5))
    log.info("drained", extra={"left_s": round(deadline - time.monotonic(), 2)})


def _sessions(hub: Hub) -> list[Session]:
    return [s for group in hub.by_user.values() for s in group]


def _left(deadline: float, floor: float) -> float:
    return max(floor, deadline - time.monotonic())


async def _wait(deadline: float, tasks: list[asyncio.Task[None]]) -> None:
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.05, deadline - time.monotonic()))
