"""PostgreSQL implementation of ``FixtureStore``: what the admin REST endpoints create."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from .pg_deadline import BoundedPool
from .pg_errors import db_errors, fixture_errors


class PgFixtures:
    """Users, devices, conversations and members."""

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool

    async def create_user(self, user: str, display_name: str | None) -> None:
        """Insert a user; conflict if it exists."""
        await self._fixture(
            "INSERT INTO users (id, display_name) VALUES ($1, $2)", user, display_name
        )

    async def create_device(self, user: str, device: str, name: str | None) -> None:
        """Insert a device of ``user``."""
        await self._fixture(
            "INSERT INTO devices (id, user_id, name) VALUES ($1, $2, $3)", device, user, name
        )

    async def create_conversation(
        self, conv: str, title: str | None, members: Sequence[str]
    ) -> None:
        """Insert a conversation with its members in one transaction."""

        async def insert(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO conversations (id, title) VALUES ($1, $2)", conv, title
                )
                await conn.executemany(
                    "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
                    [(conv, m) for m in dict.fromkeys(members)],
                )

        with db_errors(), fixture_errors():
            await self.pool.run(insert)

    async def add_member(self, conv: str, user: str) -> None:
        """Add ``user`` to ``conv``."""
        await self._fixture(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
            conv,
            user,
        )

    async def remove_member(self, conv: str, user: str) -> bool:
        """Remove ``user`` from ``conv``; False if not a member."""
        with db_errors():
            res = await self.pool.execute(
                "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                conv,
                user,
            )
        return res != "DELETE 0"

    async def _fixture(self, sql: str, *args: Any) -> None:
        with db_errors(), fixture_errors():
            await self.pool.execute(sql, *args)
