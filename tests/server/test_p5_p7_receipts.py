"""P5 what clients send is stored, P6 cross-device, P7 delivery confirmations and read receipts."""

from __future__ import annotations

import asyncpg

from .support import Api, Client, ServerProcess


async def _setup(server: ServerProcess, api: Api, count: int = 3):
    alice, (a1, a2) = await api.user("alice", devices=2)
    bob, (b1,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    sender, sender2 = await Client.open(server, alice, a1), await Client.open(server, alice, a2)
    reader = await Client.open(server, bob, b1)
    for i in range(count):
        await sender.send_msg(conv, i)
    await reader.wait_messages(conv, count)
    return conv, sender, sender2, reader


async def test_receipts_are_stored_forward_only_and_read_implies_delivered(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    conv, sender, sender2, reader = await _setup(server, api)
    ack = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "delivered", "seq": 2}
    )
    assert (ack["delivered_upto"], ack["read_upto"], ack["changed"]) == (2, 0, True)
    stale = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "delivered", "seq": 1}
    )
    assert (stale["delivered_upto"], stale["changed"]) == (2, False)
    read = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 3}
    )
    assert (read["delivered_upto"], read["read_upto"], read["changed"]) == (3, 3, True)
    row = await db.fetchrow(
        "SELECT delivered_upto, read_upto FROM device_cursors"
        " WHERE device_id = $1 AND conversation_id = $2",
        reader.device,
        conv,
    )
    assert tuple(row) == (3, 3)
    replay = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 2}
    )
    assert (replay["read_upto"], replay["changed"]) == (3, False)
    for c in (sender, sender2, reader):
        await c.close()


async def test_receipt_outside_head_or_membership_is_rejected(
    server: ServerProcess, api: Api
) -> None:
    conv, sender, sender2, reader = await _setup(server, api, count=1)
    above = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 2}
    )
    assert above["code"] == "out_of_range"
    zero = await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 0}
    )
    assert zero["code"] == "bad_request"
    outsider, (o1,) = await api.user("eve")
    eve = await Client.open(server, outsider, o1)
    denied = await eve.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 1}
    )
    unknown = await eve.request(
        {"type": "receipt", "conversation_id": "no-such-conv", "kind": "read", "seq": 1}
    )
    assert denied["code"] == unknown["code"] == "forbidden"
    assert denied["message"] == unknown["message"]  # nothing leaks about existence
    for c in (sender, sender2, reader, eve):
        await c.close()


async def test_receipt_events_reach_sender_devices_and_status_is_queryable(
    server: ServerProcess, api: Api
) -> None:
    conv, sender, sender2, reader = await _setup(server, api, count=2)
    await reader.request({"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 1})
    for c in (sender, sender2):
        ev = await c.wait_for(lambda f: f.get("type") == "receipt")
        assert ev == {
            "type": "receipt",
            "conversation_id": conv,
            "user_id": reader.user,
            "device_id": reader.device,
            "delivered_upto": 1,
            "read_upto": 1,
        }
    status, body = await api.call("GET", f"/v1/conversations/{conv}/messages/1/status")
    assert status == 200
    per_device = {d["device_id"]: (d["delivered"], d["read"]) for d in body["devices"]}
    assert per_device[reader.device] == (True, True)
    assert per_device[sender.device] == (False, False)
    status, body = await api.call("GET", f"/v1/conversations/{conv}/messages/2/status")
    assert {d["device_id"]: d["read"] for d in body["devices"]}[reader.device] is False
    for c in (sender, sender2, reader):
        await c.close()


async def test_presence_change_is_stored(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """P5: presence sent by a client ends up in device_presence."""
    user, (d1,) = await api.user("pres")
    client = await Client.open(server, user, d1)
    ack = await client.request({"type": "presence", "status": "away"})
    assert ack["status"] == "away"
    row = await db.fetchrow("SELECT status, node_id FROM device_presence WHERE device_id = $1", d1)
    assert tuple(row) == ("away", server.name)
    await client.close()
