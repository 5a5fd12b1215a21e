"""What a PostgreSQL failure means on the wire: unavailable, outcome_unknown, fixture errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import asyncpg

from .errors import WireError
from .pg_deadline import BoundedPool

# Errors that mean "the database is not reachable right now" (or did not answer in time).
UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # "sorry, too many clients already": the server is saturated, not the request wrong
    asyncpg.TooManyConnectionsError,
    # class 57: statement_timeout (the statement cancelled, its transaction rolled back), a
    # backend terminated (pg_terminate_backend, shutdown, crash), "cannot connect now"
    asyncpg.exceptions.OperatorInterventionError,
)
NOT_STORED = "database unavailable; nothing was stored, retry"
UNKNOWN = "database failed while committing; retry with the same client_msg_id to learn the outcome"


def unavailable() -> WireError:
    """Definitely not stored: retry. A fresh error each time (handlers mutate ``extra``)."""
    return WireError("unavailable", NOT_STORED)


def outcome_unknown() -> WireError:
    """Maybe stored: retry with the same idempotency key to find out."""
    return WireError("outcome_unknown", UNKNOWN)


@contextlib.contextmanager
def db_errors() -> Iterator[None]:
    """Map connection-level failures of a read (or a fixture write) to ``unavailable``."""
    try:
        yield
    except UNREACHABLE as exc:
        raise unavailable() from exc


@contextlib.contextmanager
def fixture_errors() -> Iterator[None]:
    """Map constraint violations of a fixture insert to ``conflict`` / ``not_found``."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise WireError("conflict", "already exists") from None
    except asyncpg.ForeignKeyViolationError:
        raise WireError("not_found", "a referenced user or conversation does not exist") from None


class MappedReads:
    """Reads on ``self.pool`` whose connection-level failures answer ``unavailable``."""

    pool: BoundedPool

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        with db_errors():
            return await self.pool.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        with db_errors():
            return await self.pool.fetch(sql, *args)
