"""PostgreSQL implementation of ``MessageStore``: messages, cursors and membership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from .group_send import GroupSender, SendArgs
from .pg_deadline import BoundedPool
from .pg_errors import MappedReads
from .pg_pool import open_pool
from .pg_write import TxState, write
from .ports import ConvState, Row, WriteResult

MSG_COLS = (
    "id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, body::text AS body,"
    " version, deleted, created_at, edited_at"
)
SEND_SQL = "SELECT outcome, " + MSG_COLS + " FROM ccs_send($1, $2, $3, $4, $5::json)"
EDIT_SQL = "SELECT outcome, " + MSG_COLS + " FROM ccs_edit($1, $2, $3, $4, $5::json, $6)"
RECEIPT_SQL = "SELECT * FROM ccs_receipt($1, $2, $3, $4, $5)"
GROUP_WRITERS = 4  # group-commit statements in flight at once (see group_send.py)
GROUP_MAX = 256  # sends per statement: bounds one transaction's locks and result size


class PgStore(MappedReads):
    """``MessageStore`` on the node's pool.

    Every call is bounded by the pool's deadline as a whole (acquire + query + release, see
    pg_deadline.py): a stalled database link answers ``unavailable`` in time instead of hanging.
    """

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool
        self.timeout = pool.timeout
        # group commit: at most half the pool writes sends, the rest serves reads and fetches;
        # a send waits at most ``timeout`` from its arrival, queueing included
        self.group = GroupSender(
            self._write,
            self._send_one,
            min(GROUP_WRITERS, pool.get_max_size() // 2),
            GROUP_MAX,
            deadline_s=self.timeout,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, dsn: str, size: int, timeout_s: float, node_id: str = ""
    ) -> AsyncIterator[PgStore]:
        """A store on a pool of its own (closed on exit): for tools and tests."""
        async with open_pool(dsn, size, timeout_s, node_id) as pool:
            yield cls(pool)

    def writing(self, convs: Iterable[str]) -> list[asyncio.Future[None]]:
        """Completion of the send batches in flight that touch any of ``convs``."""
        return self.group.writing(convs)

    # ---- messages -------------------------------------------------------------------------
    async def send(
        self, conv: str, user: str, device: str | None, cmid: str, body_json: str
    ) -> WriteResult:
        """Idempotent insert (``ccs_send`` in the migration), group-committed with the sends
        that arrive at the same time (group_send.py); returns after the commit."""
        return await self.group.send((conv, user, device, cmid, body_json))

    async def _write(
        self, sql: str, args: Sequence[Any], deadline_s: float, state: TxState
    ) -> list[asyncpg.Record]:
        return await write(self.pool, sql, args, deadline_s, state)

    async def _write_one(self, sql: str, *args: Any) -> asyncpg.Record:
        recs = await write(self.pool, sql, args, self.timeout)
        assert len(recs) == 1  # the stored procedures return exactly one row
        return recs[0]

    async def _send_one(self, args: SendArgs, deadline_s: float) -> WriteResult:
        """One ``ccs_send`` in its own transaction (the group's fallback)."""
        recs = await write(self.pool, SEND_SQL, args, deadline_s)
        return WriteResult(recs[0]["outcome"], dict(recs[0]))

    async def edit(
        self, conv: str, user: str, seq: int, expected: int, body_json: str | None, delete: bool
    ) -> WriteResult:
        """Edit or tombstone a message if ``expected`` is its current version."""
        rec = await self._write_one(EDIT_SQL, conv, user, seq, expected, body_json, delete)
        return WriteResult(rec["outcome"], dict(rec))

    async def receipt(self, conv: str, user: str, device: str, kind: str, seq: int) -> WriteResult:
        """Move the device's cursors forward; ``row`` carries the new cursors and ``changed``."""
        rec = await self._write_one(RECEIPT_SQL, conv, user, device, kind, seq)
        return WriteResult(rec["outcome"], dict(rec))

    async def fetch_range(self, conv: str, after: int, upto: int, limit: int) -> list[Row]:
        """Messages with ``after < seq <= upto`` in seq order, at most ``limit``."""
        recs = await self._fetch(
            "SELECT " + MSG_COLS + " FROM messages WHERE conversation_id = $1 AND seq > $2"
            " AND seq <= $3 ORDER BY seq LIMIT $4",
            conv,
            after,
            upto,
            limit,
        )
        return [dict(r) for r in recs]

    async def fetch_many(self, keys: Sequence[tuple[str, int]]) -> list[Row]:
        """Current rows for many (conversation, seq) pairs in one query."""
        recs = await self._fetch(
            "SELECT " + MSG_COLS + " FROM messages m JOIN unnest($1::text[], $2::bigint[])"
            " AS k(c, s) ON m.conversation_id = k.c AND m.seq = k.s",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return [dict(r) for r in recs]

    async def history(
        self, conv: str, user: str | None, after: int | None, before: int | None, limit: int
    ) -> tuple[list[Row], bool] | None:
        """A page of messages (ascending) and whether more exist; None if not a member.

        A member reads only messages after its join point (``has_more`` is false at it);
        ``user`` None (an admin) skips the membership check but the conversation must exist.
        """
        joined = 0
        if user is None:
            if await self.heads([conv]) == {}:
                return None
        else:
            member = await self.membership(conv, user)
            if member is None:
                return None
            joined = member[1]
        conds, args = ["conversation_id = $1"], [conv]  # type: list[str], list[Any]
        if joined:
            args.append(joined)
            conds.append(f"seq > ${len(args)}")
        if after is not None:
            args.append(after)
            conds.append(f"seq > ${len(args)}")
        if before is not None:
            args.append(before)
            conds.append(f"seq < ${len(args)}")
        order = "ASC" if after is not None else "DESC"
        args.append(limit + 1)
        recs = await self._fetch(
            f"SELECT {MSG_COLS} FROM messages WHERE {' AND '.join(conds)}"
            f" ORDER BY seq {order} LIMIT ${len(args)}",
            *args,
        )
        rows = [dict(r) for r in recs]
        has_more = len(rows) > limit
        rows = rows[:limit]
        if order == "DESC":
            rows.reverse()
        return rows, has_more

    async def session_state(self, user: str, device: str) -> list[ConvState]:
        """Every conversation of ``user`` with its head and the device's delivered cursor."""
        recs = await self._fetch(
            "SELECT c.id, c.head_seq, c.edit_seq, COALESCE(d.delivered_upto, 0) AS delivered,"
            " m.join_seq"
            " FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id"
            " LEFT JOIN device_cursors d ON d.device_id = $2 AND d.conversation_id = c.id"
            " WHERE m.user_id = $1",
            user,
            device,
        )
        return [
            ConvState(r["id"], r["head_seq"], r["delivered"], r["edit_seq"], r["join_seq"])
            for r in recs
        ]

    async def heads(self, convs: Sequence[str]) -> dict[str, int]:
        """Current ``head_seq`` of each conversation."""
        recs = await self._fetch(
            "SELECT id, head_seq FROM conversations WHERE id = ANY($1::text[])", list(convs)
        )
        return {r["id"]: r["head_seq"] for r in recs}

    async def marks(self, convs: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``(head_seq, edit_seq)`` of each conversation: what the repair sweep compares."""
        recs = await self._fetch(
            "SELECT id, head_seq, edit_seq FROM conversations WHERE id = ANY($1::text[])",
            list(convs),
        )
        return {r["id"]: (r["head_seq"], r["edit_seq"]) for r in recs}

    async def fetch_edited(self, conv: str, after: int, upto: int) -> list[Row]:
        """Messages whose latest edit has ``after < edit_seq <= upto``, in edit order."""
        recs = await self._fetch(
            "SELECT " + MSG_COLS + " FROM messages WHERE conversation_id = $1 AND edit_seq > $2"
            " AND edit_seq <= $3 ORDER BY edit_seq LIMIT 1000",
            conv,
            after,
            upto,
        )
        return [dict(r) for r in recs]

    async def is_member(self, conv: str, user: str) -> int | None:
        """The conversation head if ``user`` is a member, else None (unknown or not a member)."""
        rec = await self._fetchrow(
            "SELECT c.head_seq FROM conversations c JOIN conversation_members m"
            " ON m.conversation_id = c.id AND m.user_id = $2 WHERE c.id = $1",
            conv,
            user,
        )
        return None if rec is None else rec["head_seq"]

    async def membership(self, conv: str, user: str) -> tuple[int, int] | None:
        """``(head_seq, join_seq)`` if ``user`` is a member, else None."""
        rec = await self._fetchrow(
            "SELECT c.head_seq, m.join_seq FROM conversations c JOIN conversation_members m"
            " ON m.conversation_id = c.id AND m.user_id = $2 WHERE c.id = $1",
            conv,
            user,
        )
        return None if rec is None else (rec["head_seq"], rec["join_seq"])

    async def device_owner(self, device: str) -> tuple[str, bool] | None:
        """(user_id, revoked) of a device, or None if unknown."""
        rec = await self._fetchrow("SELECT user_id, revoked FROM devices WHERE id = $1", device)
        return None if rec is None else (rec["user_id"], rec["revoked"])

    async def message_status(self, conv: str, seq: int) -> Row | None:
        """Per member device: has it confirmed delivery / reading of message ``seq``."""
        msg = await self._fetchrow(
            "SELECT id FROM messages WHERE conversation_id = $1 AND seq = $2", conv, seq
        )
        if msg is None:
            return None
        recs = await self._fetch(
            "SELECT d.id AS device_id, d.user_id,"
            " COALESCE(dc.delivered_upto, 0) >= $2 AS delivered,"
            " COALESCE(dc.read_upto, 0) >= $2 AS read"
            " FROM conversation_members cm JOIN devices d ON d.user_id = cm.user_id"
            " LEFT JOIN device_cursors dc ON dc.device_id = d.id"
            " AND dc.conversation_id = cm.conversation_id"
            " WHERE cm.conversation_id = $1 ORDER BY d.user_id, d.id",
            conv,
            seq,
        )
        return {"message_id": msg["id"], "seq": seq, "devices": [dict(r) for r in recs]}

    async def audience(self, user: str) -> list[str]:
        """Users sharing at least one conversation with ``user`` (``user`` included)."""
        recs = await self._fetch(
            "SELECT DISTINCT m2.user_id FROM conversation_members m1 JOIN conversation_members m2"
            " ON m2.conversation_id = m1.conversation_id WHERE m1.user_id = $1",
            user,
        )
        return [r["user_id"] for r in recs] or [user]

    async def ping(self) -> bool:
        """True if the database answers."""
        try:
            await self.pool.fetchval("SELECT 1", timeout=min(self.timeout, 2.0))
        except Exception:
            return False
        return True
