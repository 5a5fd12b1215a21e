"""Schema migrations: ``migrations/NNNN_*.sql``, each applied once, in order, by the first node."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

log = logging.getLogger("ccs.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 731_001  # advisory lock key: nodes starting together migrate one at a time


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply pending ``migrations/NNNN_*.sql`` files in order; return the versions applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("migration applied", extra={"version": version})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied
