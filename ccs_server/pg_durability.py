"""Start-up check: refuse a PostgreSQL that could lose acknowledged messages."""

from __future__ import annotations

import logging

import asyncpg

from .errors import StartupError

log = logging.getLogger("ccs.store")


async def check_durability(conn: asyncpg.Connection, allow_unsafe: bool) -> None:
    """Refuse to start when commits could be lost (fsync or synchronous_commit off)."""
    fsync = await conn.fetchval("SHOW fsync")
    sync_commit = await conn.fetchval("SHOW synchronous_commit")
    problems = []
    if fsync != "on":
        problems.append(f"fsync={fsync}")
    if sync_commit == "off":
        problems.append(f"synchronous_commit={sync_commit}")
    if problems and not allow_unsafe:
        raise StartupError(
            "refusing to start: PostgreSQL may lose acknowledged messages ("
            + ", ".join(problems)
            + "); turn them on or set CCS_ALLOW_UNSAFE_DURABILITY=true"
        )
    if problems:
        log.warning("unsafe durability allowed", extra={"settings": problems})
