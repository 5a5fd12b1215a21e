"""P11 conflict resolution: optimistic versions, one of two concurrent edits wins, tombstones."""

from __future__ import annotations

import asyncio

import asyncpg

from .support import Api, Client, ServerProcess, alice_and_bob


async def test_two_concurrent_edits_one_wins_one_conflicts(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    user, (d1, d2) = await api.user("edit", devices=2)
    conv = await api.conversation(user)
    c1, c2 = await Client.open(server, user, d1), await Client.open(server, user, d2)
    await c1.send_msg(conv, "draft")
    await c2.wait_messages(conv, 1)
    results = await asyncio.gather(
        c1.request(
            {
                "type": "edit",
                "conversation_id": conv,
                "seq": 1,
                "expected_version": 1,
                "body": "from-1",
            }
        ),
        c2.request(
            {
                "type": "edit",
                "conversation_id": conv,
                "seq": 1,
                "expected_version": 1,
                "body": "from-2",
            }
        ),
    )
    kinds = sorted(r["type"] for r in results)
    assert kinds == ["ack", "error"]
    won = next(r for r in results if r["type"] == "ack")
    lost = next(r for r in results if r["type"] == "error")
    assert won["version"] == 2
    assert lost["code"] == "conflict" and lost["retryable"] is False
    winner_body = "from-1" if results[0] is won else "from-2"
    assert lost["current"] == {"version": 2, "body": winner_body, "deleted": False}
    row = await db.fetchrow(
        "SELECT version, body::text AS body FROM messages WHERE conversation_id = $1 AND seq = 1",
        conv,
    )
    assert (row["version"], row["body"]) == (2, f'"{winner_body}"')
    for c in (c1, c2):
        upd = await c.wait_for(lambda f: f.get("type") == "message_updated")
        assert (upd["version"], upd["body"]) == (2, winner_body)
        await c.close()


async def test_delete_is_a_tombstone_that_reaches_every_device(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    conv, a, b = await alice_and_bob(server, api)
    await a.send_msg(conv, {"secret": 1})
    await b.wait_messages(conv, 1)
    stale = await a.request(
        {"type": "delete", "conversation_id": conv, "seq": 1, "expected_version": 7}
    )
    assert stale["code"] == "conflict" and stale["current"]["version"] == 1
    ack = await a.request(
        {"type": "delete", "conversation_id": conv, "seq": 1, "expected_version": 1}
    )
    assert ack["version"] == 2
    for c in (a, b):
        upd = await c.wait_for(lambda f: f.get("type") == "message_updated")
        assert (upd["deleted"], upd["body"], upd["version"]) == (True, None, 2)
    row = await db.fetchrow("SELECT deleted, body FROM messages WHERE conversation_id = $1", conv)
    assert (row["deleted"], row["body"]) == (True, None)
    not_yours = await b.request(
        {"type": "edit", "conversation_id": conv, "seq": 1, "expected_version": 2, "body": "x"}
    )
    assert not_yours["code"] == "forbidden"
    missing = await a.request(
        {"type": "edit", "conversation_id": conv, "seq": 9, "expected_version": 1, "body": "x"}
    )
    assert missing["code"] == "not_found"
    await a.close()
    await b.close()
