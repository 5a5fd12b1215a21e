"""Group commit of sends (ccs_server/group_send.py) keeps P1, P2, P3 and P12 for every item.

Store-level tests drive ``PgStore`` directly against the test database so the batch boundaries are
known: sends queued in one event-loop turn are taken by the first writer as one statement (rows
of one transaction share ``created_at``). The end-to-end test drives many connections of a real
server at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ccs_server.errors import WireError
from ccs_server.group_send import GroupSender, SendArgs
from ccs_server.pg_store import PgStore
from ccs_server.pg_write import TxState
from ccs_server.ports import WriteResult

from .support import Api, Client, ServerProcess, t


@pytest.fixture
async def store(dsn: str, db: asyncpg.Connection) -> AsyncIterator[PgStore]:
    """A store of our own (pool 4, so 2 group writers); ``db`` means the schema is migrated."""
    async with PgStore.open(dsn, 4, 5.0, node_id=f"gc-{uuid.uuid4().hex[:8]}") as st:
        yield st


async def _rows(db: asyncpg.Connection, conv: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, seq, sender_device_id, client_msg_id, created_at FROM messages"
        " WHERE conversation_id = $1 ORDER BY seq",
        conv,
    )


async def test_same_key_twice_in_one_batch(
    api: Api, store: PgStore, db: asyncpg.Connection
) -> None:
    """The second use of a key inside one statement sees the first: duplicate, or conflict."""
    user, (dev,) = await api.user("gc-same")
    conv = await api.conversation(user)
    sends = [
        (conv, user, dev, "k1", '{"n":1}'),
        (conv, user, dev, "k1", '{"n":1}'),
        (conv, user, dev, "k2", '{"n":2}'),
        (conv, user, dev, "k1", '{"n":"other"}'),
    ]
    results = await asyncio.gather(*(store.send(*s) for s in sends))
    assert [r.outcome for r in results] == [
        "created",
        "duplicate",
        "created",
        "idempotency_conflict",
    ]
    first, dup, second, conflict = (r.row for r in results)
    assert first is not None and dup is not None and second is not None and conflict is not None
    assert (dup["id"], dup["seq"]) == (first["id"], first["seq"]) == (conflict["id"], 1)
    assert second["seq"] == 2
    rows = await _rows(db, conv)
    assert [(r["client_msg_id"], r["seq"]) for r in rows] == [("k1", 1), ("k2", 2)]
    # one transaction (created_at is its start time): the four sends really were one batch
    assert rows[0]["created_at"] == rows[1]["created_at"]


async def test_outcomes_of_one_item_do_not_touch_the_others(
    api: Api, store: PgStore, db: asyncpg.Connection
) -> None:
    """forbidden is an outcome of one item; the rest of the batch is stored and acked."""
    user, (dev,) = await api.user("gc-mixed")
    outsider, (odev,) = await api.user("gc-outsider")
    conv = await api.conversation(user)
    results = await asyncio.gather(
        store.send(conv, user, dev, "a", '"a"'),
        store.send(conv, outsider, odev, "x", '"x"'),
        store.send(conv, user, dev, "b", '"b"'),
    )
    assert [r.outcome for r in results] == ["created", "forbidden", "created"]
    rows = await _rows(db, conv)
    assert [(r["client_msg_id"], r["seq"]) for r in rows] == [("a", 1), ("b", 2)]
    assert rows[0]["created_at"] == rows[1]["created_at"]  # one batch


async def test_an_item_that_raises_falls_back_to_one_by_one(
    api: Api, store: PgStore, db: asyncpg.Connection
) -> None:
    """A statement error caused by one item's data fails that item only."""
    user, (dev,) = await api.user("gc-bad")
    conv = await api.conversation(user)
    results = await asyncio.gather(
        store.send(conv, user, dev, "good-1", '{"ok":1}'),
        store.send(conv, user, dev, "bad", "{not json"),
        store.send(conv, user, dev, "good-2", '{"ok":2}'),
        return_exceptions=True,
    )
    assert isinstance(results[1], asyncpg.PostgresError), results[1]
    good = [r for i, r in enumerate(results) if i != 1]
    assert all(isinstance(r, WriteResult) and r.outcome == "created" for r in good), results
    rows = await _rows(db, conv)
    assert [(r["client_msg_id"], r["seq"]) for r in rows] == [("good-1", 1), ("good-2", 2)]


async def _writer_waiting_on_lock(db: asyncpg.Connection, app: str) -> int:
    """Pid of the store's backend once it waits for a lock (bounded wait)."""
    deadline = time.monotonic() + t(10)
    while time.monotonic() < deadline:
        pid = await db.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
            " AND wait_event_type = 'Lock'",
            app,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("the group statement never waited for the conversation lock")


async def test_batch_failure_acks_none_and_stores_nothing(
    api: Api, db: asyncpg.Connection, dsn: str
) -> None:
    """The connection of a batch dies before commit: every member gets ``unavailable``."""
    user, (dev,) = await api.user("gc-fail")
    conv_a = await api.conversation(user)
    conv_b = await api.conversation(user)
    first, second = sorted([conv_a, conv_b])  # the batch locks ``first`` before ``second``
    node = f"gc-fail-{uuid.uuid4().hex[:8]}"
    keys = [(first, "f1"), (second, "s1"), (first, "f2"), (second, "s2")]
    async with PgStore.open(dsn, 4, 5.0, node_id=node) as store:
        blocker = await asyncpg.connect(dsn)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", second)
        sends = asyncio.gather(
            *(store.send(c, user, dev, k, f'"{k}"') for c, k in keys), return_exceptions=True
        )
        try:
            pid = await _writer_waiting_on_lock(db, f"ccs-pool {node}")
            await db.execute("SELECT pg_terminate_backend($1)", pid)
            results: list[Any] = await asyncio.wait_for(sends, t(10))
        finally:
            await tx.rollback()
            await blocker.close()
        assert all(isinstance(r, WireError) and r.code == "unavailable" for r in results), results
        stored = await db.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = ANY($1::text[])",
            [first, second],
        )
        assert stored == 0  # the items stored before the failure were rolled back with it
        # nothing was stored, so the retries create (not duplicate) the messages
        retried = [await store.send(c, user, dev, k, f'"{k}"') for c, k in keys]
        assert [r.outcome for r in retried] == ["created"] * 4


async def _sender(
    server: ServerProcess, user: str, device: str, hot: str, own: str, count: int
) -> list[dict[str, Any]]:
    """Send ``count`` messages alternating between the hot and the own conversation."""
    client = await Client.open(server, user, device)
    acks = []
    try:
        for i in range(count):
            conv = hot if i % 2 == 0 else own
            ack = await client.send_msg(conv, {"from": device, "i": i}, cmid=f"{device}-{i}")
            assert ack["type"] == "ack", ack
            acks.append(ack)
        # a retry of an earlier key returns the original, stores nothing new
        again = await client.send_msg(hot, {"from": device, "i": 0}, cmid=f"{device}-0")
        assert again["duplicate"] is True and again["seq"] == acks[0]["seq"], again
    finally:
        await client.close()
    return acks


async def test_concurrent_senders_gapless_one_row_per_key_acks_match(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """Many connections at once: gapless seqs, one row per key, every ack is the stored row."""
    senders = 16
    per_sender = 12
    users = [await api.user(f"gc-c{i}") for i in range(senders)]
    hot = await api.conversation(*(u for u, _ in users))
    owns = [await api.conversation(u) for u, _ in users]
    results = await asyncio.gather(
        *(
            _sender(server, u, devs[0], hot, own, per_sender)
            for (u, devs), own in zip(users, owns, strict=True)
        )
    )
    stored = {
        (r["conversation_id"], r["seq"]): r
        for r in await db.fetch(
            "SELECT id, conversation_id, seq, sender_device_id, client_msg_id FROM messages"
            " WHERE conversation_id = ANY($1::text[])",
            [hot, *owns],
        )
    }
    assert len(stored) == senders * per_sender  # one row per key: the retries stored nothing
    for conv in [hot, *owns]:
        seqs = sorted(s for c, s in stored if c == conv)
        assert seqs == list(range(1, len(seqs) + 1)), (conv, seqs)  # gapless
    for (_, devs), acks in zip(users, results, strict=True):
        for i, ack in enumerate(acks):
            row = stored[(ack["conversation_id"], ack["seq"])]
            assert row["id"] == ack["message_id"]
            assert (row["sender_device_id"], row["client_msg_id"]) == (devs[0], f"{devs[0]}-{i}")
        hot_seqs = [a["seq"] for a in acks if a["conversation_id"] == hot]
        assert hot_seqs == sorted(hot_seqs)  # one connection's sends keep their order


async def test_a_sender_that_goes_away_does_not_disturb_its_batch(
    api: Api, store: PgStore, db: asyncpg.Connection
) -> None:
    """A cancelled sender (its connection closed) leaves the other items of the batch acked."""
    user, (dev,) = await api.user("gc-cancel")
    conv = await api.conversation(user)
    tasks = [asyncio.create_task(store.send(conv, user, dev, f"k{i}", f'"{i}"')) for i in range(3)]
    await asyncio.sleep(0)  # the sends are queued; the writer has not taken them yet
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [r.outcome for r in (results[0], results[2])] == ["created", "created"]  # type: ignore[union-attr]
    # the cancelled item was already part of the statement: stored, never acknowledged
    rows = await _rows(db, conv)
    assert [r["client_msg_id"] for r in rows] == ["k0", "k1", "k2"]
    again = await store.send(conv, user, dev, "k1", '"1"')
    assert again.outcome == "duplicate"  # its retry finds it


async def test_a_batch_never_waits_on_a_conversation_another_batch_is_writing() -> None:
    """While a statement writes conversation A, a second writer takes only B's send: A's sends
    stay queued (they would wait inside PostgreSQL on A's row lock) and go together, in arrival
    order, into the next batch once A's statement is done."""
    statements: list[list[str]] = []
    release = asyncio.Event()

    async def write(sql: str, cols: Any, deadline_s: float, state: TxState) -> list[dict[str, Any]]:
        keys = list(cols[3])
        statements.append(keys)
        if keys == ["a1"]:
            await release.wait()
        return [{"i": i, "outcome": "created"} for i in range(1, len(keys) + 1)]

    async def send_one(args: SendArgs, deadline_s: float) -> WriteResult:
        raise AssertionError(f"no statement failed, yet {args} was sent on its own")

    sender = GroupSender(write, send_one, writers=2, max_batch=10)  # type: ignore[arg-type]

    async def until(count: int) -> None:
        for _ in range(1000):
            if len(statements) >= count:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"expected {count} statements, saw {statements}")

    first = asyncio.create_task(sender.send(("A", "u", "d", "a1", "1")))
    await until(1)
    later = [
        asyncio.create_task(sender.send((conv, "u", "d", key, "1")))
        for conv, key in (("A", "a2"), ("B", "b1"), ("A", "a3"))
    ]
    await until(2)
    assert statements == [["a1"], ["b1"]]
    release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *later), 5)
    assert statements == [["a1"], ["b1"], ["a2", "a3"]]
    assert all(r.outcome == "created" for r in results)
