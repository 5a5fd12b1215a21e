"""P1 acknowledged means durable, P2 idempotent send, P3 one gapless order per conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from .support import Api, Client, ServerProcess, alice_and_bob, one_device


async def test_ack_is_sent_only_after_commit(
    server: ServerProcess, api: Api, db: asyncpg.Connection, dsn: str
) -> None:
    """While the commit is blocked no ack arrives; after the ack the row is stored."""
    conv, client = await one_device(server, api, "p1")
    blocker = await asyncpg.connect(dsn)
    tx = blocker.transaction()
    await tx.start()
    # holding the conversation row lock stalls the seq trigger, so the insert cannot commit
    await blocker.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conv)
    ref = "blocked-send"
    await client.send(
        {
            "type": "send",
            "ref": ref,
            "conversation_id": conv,
            "client_msg_id": "k1",
            "body": {"n": 1},
        }
    )
    with pytest.raises(AssertionError, match="no matching frame"):  # no ack before the commit
        await client.wait_for(lambda f: f.get("ref") == ref, within=0.7)
    assert await db.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv) == 0
    await tx.rollback()
    await blocker.close()
    ack = await client.wait_for(lambda f: f.get("ref") == ref, within=5)
    assert ack["type"] == "ack" and ack["seq"] == 1
    row = await db.fetchrow(
        "SELECT id, body::text AS body FROM messages WHERE conversation_id = $1 AND seq = 1", conv
    )
    assert row is not None and row["id"] == ack["message_id"]
    await client.close()


async def test_retry_returns_original_and_fans_out_nothing(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """Same key: same id/seq, duplicate=true, no new message frame; different body: rejected."""
    conv, sender, peer = await alice_and_bob(server, api)
    first = await sender.send_msg(conv, {"text": "once"}, cmid="key-1")
    again = await sender.send_msg(conv, {"text": "once"}, cmid="key-1")
    assert first["duplicate"] is False and again["duplicate"] is True
    assert (again["message_id"], again["seq"]) == (first["message_id"], first["seq"])
    conflict = await sender.send_msg(conv, {"text": "other"}, cmid="key-1")
    assert conflict["type"] == "error" and conflict["code"] == "idempotency_conflict"
    assert conflict["retryable"] is False
    marker = await sender.send_msg(conv, "marker", cmid="key-2")
    got = await peer.wait_messages(conv, 2)
    await peer.wait_for(lambda f: f.get("seq") == marker["seq"])
    assert [m["seq"] for m in peer.messages(conv)] == [1, 2]
    assert await db.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv) == 2
    assert got[0]["body"] == {"text": "once"}
    await sender.close()
    await peer.close()


async def test_retry_on_another_node_after_restart_is_duplicate(server_factory, api: Api) -> None:
    """The idempotency key lives in the database: a fresh node answers the retry as duplicate."""
    user, (dev,) = await api.user("p2n")
    conv = await api.conversation(user)
    first_node = await server_factory(shared=False, CCS_NODE_ID="p2-a")
    c1 = await Client.open(first_node, user, dev)
    first = await c1.send_msg(conv, {"x": 1}, cmid="durable-key")
    await c1.close()
    await first_node.stop()
    second_node = await server_factory(shared=False, CCS_NODE_ID="p2-b")
    c2 = await Client.open(second_node, user, dev)
    again = await c2.send_msg(conv, {"x": 1}, cmid="durable-key")
    assert again["duplicate"] is True and again["message_id"] == first["message_id"]
    await c2.close()


def _ref_is(ref: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("ref") == ref


async def test_concurrent_senders_get_gapless_order(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """5 connections x 30 sends: seqs 1..150 without holes; each sender's seqs rise in send order;
    a watcher receives them all in seq order."""
    users = [await api.user(f"s{i}") for i in range(5)]
    conv = await api.conversation(*[u for u, _ in users])
    senders = [await Client.open(server, u, d[0]) for u, d in users]
    watcher = await Client.open(server, users[0][0], users[0][1][0])

    async def burst(client: Client) -> list[int]:
        seqs = []
        for i in range(30):
            await client.send(
                {
                    "type": "send",
                    "ref": f"b{i}",
                    "conversation_id": conv,
                    "client_msg_id": f"{client.device}-{i}",
                    "body": i,
                }
            )
        for i in range(30):
            ack = await client.wait_for(_ref_is(f"b{i}"), within=10)
            seqs.append(ack["seq"])
        return seqs

    results = await asyncio.gather(*(burst(c) for c in senders))
    for seqs in results:
        assert seqs == sorted(seqs), "one connection's sends must keep their order"
    stored = [
        r["seq"]
        for r in await db.fetch(
            "SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq", conv
        )
    ]
    assert stored == list(range(1, 151))
    got = await watcher.wait_messages(conv, 150, within=15)
    assert [m["seq"] for m in got] == list(range(1, 151))
    for c in [*senders, watcher]:
        await c.close()
