"""Writes whose reply tells the truth about what was stored.

A statement run in autocommit commits the moment it completes inside PostgreSQL, whether or not
its client is still waiting: a send whose deadline passed while it queued on a lock could be
answered ``unavailable`` and committed moments later. So every write runs in an explicit
transaction, and COMMIT is sent only if the statement returned within the deadline:

- failure before COMMIT was sent: the transaction can never commit. PostgreSQL rolls it back on
  the ROLLBACK sent here, on ``statement_timeout``, or when the connection closes without a
  COMMIT (``BoundedPool`` terminates a connection that timed out). Answer: ``unavailable``.
- failure after COMMIT was sent and before its answer arrived (deadline passed, connection lost,
  backend killed): the commit may or may not have happened. Answer: ``outcome_unknown``; the
  client retries with the same key and gets either the original message (``duplicate: true``)
  or a fresh ack, never two messages. A COMMIT that PostgreSQL itself answers with an error (a
  cancelled deferred trigger, say) rolled back: ``unavailable`` again. ``statement_timeout``
  never bounds a COMMIT, so a COMMIT that hangs ends at the client-side deadline: unknown.

``SET LOCAL statement_timeout`` just under the deadline lets PostgreSQL itself cancel a statement
stuck on a lock: the error arrives on a healthy connection (kept in the pool) and the locks the
statement held are released at once instead of when the lock it waits for is granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .pg_deadline import BoundedPool, connection_intact
from .pg_errors import UNREACHABLE, outcome_unknown, unavailable

# statement_timeout this much before the client-side deadline, so PostgreSQL cancels first
SERVER_TIMEOUT_SHARE = 0.9


@dataclass
class TxState:
    """How far one write got: once ``commit_sent``, a failure leaves the outcome unknown."""

    commit_sent: bool = False


async def write(
    pool: BoundedPool,
    sql: str,
    args: Sequence[Any],
    deadline_s: float,
    state: TxState | None = None,
) -> list[asyncpg.Record]:
    """Run ``sql`` in its own transaction within ``deadline_s``; return its rows after COMMIT.

    Raises ``unavailable`` when nothing was stored, ``outcome_unknown`` when the commit may have
    happened, and any other server error (the transaction rolled back) unchanged.
    """
    state = state if state is not None else TxState()
    server_ms = max(1, int(deadline_s * 1000 * SERVER_TIMEOUT_SHARE))

    async def transaction(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        await conn.execute(f"BEGIN; SET LOCAL statement_timeout = {server_ms}")
        try:
            recs: list[asyncpg.Record] = await conn.fetch(sql, *args)
        except asyncpg.PostgresError as exc:
            if connection_intact(exc):  # an aborted transaction must not go back to the pool
                await conn.execute("ROLLBACK")
            raise
        state.commit_sent = True
        await conn.execute("COMMIT")
        return recs

    try:
        return await pool.run(transaction, timeout=deadline_s)
    except asyncpg.QueryCanceledError as exc:
        # PostgreSQL cancelled a statement (statement_timeout, pg_cancel_backend): an error, so the
        # transaction rolled back; a cancel cannot undo a commit (past the record it only warns)
        raise unavailable() from exc
    except UNREACHABLE as exc:
        raise (outcome_unknown() if state.commit_sent else unavailable()) from exc
