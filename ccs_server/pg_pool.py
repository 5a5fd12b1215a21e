"""The node's one asyncpg pool, every operation on it bounded (pg_deadline.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from .pg_deadline import BoundedPool


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing to reset.

    asyncpg's default reset sends RESET ALL/UNLISTEN/CLOSE ALL on every release: one extra round
    trip per query. Pool connections never LISTEN, SET, lock or leave cursors open (transactions
    are context-managed), so there is no session state to clear.
    """


@contextlib.asynccontextmanager
async def open_pool(
    dsn: str, size: int, timeout_s: float, node_id: str = ""
) -> AsyncIterator[BoundedPool]:
    """Create the pool (``size`` connections, ``timeout_s`` per operation); close it on exit."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(2, size),
        max_size=size,
        command_timeout=timeout_s,
        timeout=timeout_s,  # connect timeout (asyncpg's default is 60 s)
        server_settings={"application_name": f"ccs-pool {node_id}"},
        reset=_keep_session,
    )
    bounded = BoundedPool(pool, timeout_s)
    try:
        yield bounded
    finally:
        await bounded.close()
