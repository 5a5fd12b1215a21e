"""One deadline per database operation: pool acquire + query + release.

asyncpg's ``timeout=`` bounds only the query. On a stalled (blackholed) link everything else hangs
too: ``Pool.acquire`` opening a replacement connection, the cancel request asyncpg sends when a
query times out, and ``Pool.release`` of a connection whose cancel is pending (it waits for the
cancel without a limit). One command hung like that blocks its whole socket (commands on a socket
are serialised), so ``BoundedPool`` runs every operation under one ``asyncio.timeout`` and, on any
failure that may leave the connection mid-protocol, terminates it instead of waiting on a cancel
through the dead link: the pool opens a fresh connection on the next acquire.
"""

# ruff: noqa: ASYNC109 - ``timeout=`` mirrors asyncpg.Pool's signature on purpose (see BoundedPool)
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

log = logging.getLogger("ccs.store")

T = TypeVar("T")
CLOSE_FLOOR_S = 1.0  # pool.close() grace before connections are terminated


def connection_intact(exc: BaseException) -> bool:
    """True if the server answered with an error: the connection is idle and reusable.

    Timeouts, cancellations and I/O errors leave a query (or its cancel) in flight.
    """
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.PostgresConnectionError
    )


class BoundedPool:
    """The call surface of ``asyncpg.Pool`` the server uses, each call under one deadline.

    ``timeout`` of a call is the deadline of the whole operation (default ``timeout_s``).
    Raises what asyncpg raises, plus ``TimeoutError`` when the deadline passes.
    ``timeout=`` keeps asyncpg's signature, so a call site reads like plain asyncpg.
    """

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self.raw = pool
        self.timeout = timeout_s

    def get_max_size(self) -> int:
        """The pool's connection limit."""
        return int(self.raw.get_max_size())

    async def run(
        self,
        op: Callable[[asyncpg.Connection], Awaitable[T]],
        timeout: float | None = None,
    ) -> T:
        """Acquire a connection, ``await op(conn)``, release: all within ``timeout``."""
        conn = None
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                conn = await self.raw.acquire()
                result = await op(conn)
        except BaseException as exc:
            if conn is not None:
                await self._give_back(conn, keep=connection_intact(exc))
            raise
        await self._give_back(conn, keep=True)
        return result

    async def _give_back(self, conn: asyncpg.Connection, keep: bool) -> None:
        """Return ``conn`` to the pool; ``keep`` False terminates it (no I/O, never waits)."""
        if not keep:
            conn.terminate()  # returns the holder to the pool; the next acquire reconnects
        try:
            # a kept connection is idle (no cancel pending, the reset hook does no I/O), so this
            # returns at once; the bound is a guard, and a failed release terminates the conn
            await self.raw.release(conn, timeout=self.timeout)
        except Exception:
            log.warning("releasing a pool connection failed; it was terminated", exc_info=True)

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> str:
        """``Connection.execute`` under the deadline."""
        return await self.run(lambda c: c.execute(sql, *args), timeout)

    async def fetch(self, sql: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """``Connection.fetch`` under the deadline."""
        return await self.run(lambda c: c.fetch(sql, *args), timeout)

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        """``Connection.fetchrow`` under the deadline."""
        return await self.run(lambda c: c.fetchrow(sql, *args), timeout)

    async def fetchval(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        """``Connection.fetchval`` under the deadline."""
        return await self.run(lambda c: c.fetchval(sql, *args), timeout)

    async def close(self) -> None:
        """Close gracefully if the database answers, else terminate every connection."""
        try:
            async with asyncio.timeout(max(self.timeout, CLOSE_FLOOR_S)):
                await self.raw.close()
        except TimeoutError:
            log.warning("pool did not close in time; connections terminated")
            self.raw.terminate()
        except Exception:
            with contextlib.suppress(Exception):
                self.raw.terminate()
            raise
