"""P4 database -> WebSocket: every committed change reaches every online member device, in order,
whatever wrote it, and lost notifications are repaired from the table."""

from __future__ import annotations

import asyncpg

from .support import Api, Client, ServerProcess, one_device


async def _metric(api: Api, name: str) -> float:
    async with api.http.get(api.server.base + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


async def _without_notify(db: asyncpg.Connection, sql: str, *args: object) -> None:
    """Commit ``sql`` with the messages trigger off: its notification is lost, as if the bus had
    dropped it."""
    async with db.transaction():
        await db.execute("ALTER TABLE messages DISABLE TRIGGER messages_notify")
        await db.execute(sql, *args)
        await db.execute("ALTER TABLE messages ENABLE TRIGGER messages_notify")


async def test_message_from_every_source_reaches_every_member_device(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """WS send, REST post and a plain INSERT reach the sender's other devices and the peer."""
    alice, (phone, laptop) = await api.user("alice", devices=2)
    bob, (bphone,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    clients = [
        await Client.open(server, alice, phone),
        await Client.open(server, alice, laptop),
        await Client.open(server, bob, bphone),
    ]
    ack = await clients[0].send_msg(conv, {"via": "ws"})
    assert ack["type"] == "ack"
    status, posted = await api.call(
        "POST",
        f"/v1/conversations/{conv}/messages",
        {"client_msg_id": "rest-1", "body": {"via": "rest"}},
        token=server.token(bob, bphone),
    )
    assert status == 201 and posted["seq"] == 2
    await db.execute(
        "INSERT INTO messages (conversation_id, sender_user_id, body) VALUES ($1, $2, $3::jsonb)",
        conv,
        alice,
        '{"via": "psql"}',
    )
    for client in clients:
        got = await client.wait_messages(conv, 3)
        assert [m["seq"] for m in got] == [1, 2, 3]
        assert [m["body"]["via"] for m in got] == ["ws", "rest", "psql"]
    for client in clients:
        await client.close()


async def test_update_typed_in_psql_reaches_devices(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """An UPDATE written by another program is pushed as message_updated."""
    user, (d1, d2) = await api.user("upd", devices=2)
    conv = await api.conversation(user)
    c1, c2 = await Client.open(server, user, d1), await Client.open(server, user, d2)
    await c1.send_msg(conv, "v1")
    await c2.wait_messages(conv, 1)
    await db.execute(
        "UPDATE messages SET body = '\"v2\"', version = version + 1"
        " WHERE conversation_id = $1 AND seq = 1",
        conv,
    )
    for c in (c1, c2):
        upd = await c.wait_for(lambda f: f.get("type") == "message_updated")
        assert upd["body"] == "v2" and upd["version"] == 2
    await c1.close()
    await c2.close()


async def test_lost_notification_is_repaired_by_the_sweep(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """A row committed without NOTIFY still arrives (sweep), and the gap metric counts it."""
    conv, client = await one_device(server, api, "sweep")
    before = await _metric(api, "ccs_gaps_repaired_total")
    await _without_notify(
        db,
        "INSERT INTO messages (conversation_id, sender_user_id, body)"
        " VALUES ($1, $2, '\"silent\"')",
        conv,
        client.user,
    )
    got = await client.wait_messages(conv, 1, within=5)
    assert got[0]["body"] == "silent"
    assert await _metric(api, "ccs_gaps_repaired_total") >= before + 1
    await client.close()


async def test_gap_before_a_live_message_is_filled_in_order(
    server_factory, api: Api, db: asyncpg.Connection
) -> None:
    """A notification for seq n+2 when n+1 was lost: the device gets n+1 then n+2, no hole.

    Uses a node whose sweep is too slow to help, so only the cursor's gap fetch can pass."""
    slow = await server_factory(CCS_REPAIR_INTERVAL_MS="600000")
    user, (d1,) = await api.user("gap")
    conv = await api.conversation(user)
    client = await Client.open(slow, user, d1)
    await _without_notify(
        db,
        "INSERT INTO messages (conversation_id, sender_user_id, body) VALUES ($1, $2, '1')",
        conv,
        user,
    )
    await db.execute(
        "INSERT INTO messages (conversation_id, sender_user_id, body) VALUES ($1, $2, '2')",
        conv,
        user,
    )
    got = await client.wait_messages(conv, 2)
    assert [(m["seq"], m["body"]) for m in got] == [(1, 1), (2, 2)]
    await client.close()


async def test_listener_killed_then_reconnects_and_repairs(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """pg_terminate_backend of the LISTEN connection: health shows it, nothing is lost."""
    conv, client = await one_device(server, api, "lsn")
    reconnects = await _metric(api, "ccs_listener_reconnects_total")
    killed = await db.fetchval(
        # scoped to our database: other runs of this suite may use the same node names
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        f"ccs-listener {server.name}",
    )
    assert killed == 1
    for i in range(5):
        await db.execute(
            "INSERT INTO messages (conversation_id, sender_user_id, body)"
            " VALUES ($1, $2, $3::jsonb)",
            conv,
            client.user,
            str(i),
        )
    got = await client.wait_messages(conv, 5, within=10)
    assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
    async with api.http.get(server.base + "/health") as resp:
        health = await resp.json()
    assert health["listener"] in ("listening", "reconnecting")
    assert await _metric(api, "ccs_listener_reconnects_total") == reconnects + 1
    await client.close()


async def test_lost_edit_notification_is_repaired(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """An edit committed without NOTIFY still reaches the device as message_updated."""
    conv, client = await one_device(server, api, "editsweep")
    await client.send_msg(conv, "v1")
    await client.wait_messages(conv, 1)
    before = await _metric(api, "ccs_gaps_repaired_total")
    await _without_notify(
        db,
        "UPDATE messages SET body = '\"v2\"', version = 2, edited_at = now()"
        " WHERE conversation_id = $1 AND seq = 1",
        conv,
    )
    upd = await client.wait_for(lambda f: f.get("type") == "message_updated")
    assert (upd["seq"], upd["version"], upd["body"]) == (1, 2, "v2")
    assert await _metric(api, "ccs_gaps_repaired_total") >= before + 1
    await client.close()
