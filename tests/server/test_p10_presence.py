"""P10 presence: online on connect, offline after clean or abrupt loss, no flap inside the grace
period, user online while any device is, stored with last seen."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg

from .support import Api, Client, ServerProcess, t


def _presence(device: str, status: str):
    return lambda f: (
        f.get("type") == "presence" and f["device_id"] == device and f["status"] == status
    )


async def test_connect_and_clean_disconnect_are_broadcast(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    alice, (a1, a2) = await api.user("alice", devices=2)
    bob, (b1,) = await api.user("bob")
    await api.conversation(alice, bob)
    watcher = await Client.open(server, bob, b1)
    phone = await Client.open(server, alice, a1)
    ev = await watcher.wait_for(_presence(a1, "online"))
    assert ev["user_status"] == "online" and ev["user_id"] == alice
    laptop = await Client.open(server, alice, a2)
    await watcher.wait_for(_presence(a2, "online"))
    start = time.monotonic()
    await phone.close()
    ev = await watcher.wait_for(_presence(a1, "offline"), within=2)
    assert time.monotonic() - start < t(1.0)
    assert ev["user_status"] == "online"  # the laptop is still connected
    await laptop.close()
    ev = await watcher.wait_for(_presence(a2, "offline"), within=2)
    assert ev["user_status"] == "offline"
    row = await db.fetchrow(
        "SELECT status, last_seen FROM device_presence WHERE device_id = $1", a2
    )
    assert row["status"] == "offline" and row["last_seen"] is not None
    await watcher.close()


async def test_reconnect_inside_grace_causes_no_flap(server_factory, api: Api) -> None:
    node = await server_factory(CCS_PRESENCE_GRACE_MS="1500")
    alice, (a1,) = await api.user("alice")
    bob, (b1,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    watcher = await Client.open(node, bob, b1)
    first = await Client.open(node, alice, a1)
    await watcher.wait_for(_presence(a1, "online"))
    mark = len(watcher.frames)
    await first.close()
    second = await Client.open(node, alice, a1)
    # past the grace period: an offline event would have been sent by now
    await asyncio.sleep(t(2.0))
    await second.send_msg(conv, "still here")
    await watcher.wait_for(lambda f: f.get("type") == "message", start=mark)
    flaps = [f for f in watcher.frames[mark:] if f.get("type") == "presence"]
    assert flaps == []
    await second.close()
    await watcher.close()


async def test_silent_peer_is_closed_with_4004_and_goes_offline(server_factory, api: Api) -> None:
    node = await server_factory(CCS_HEARTBEAT_INTERVAL_MS="200", CCS_HEARTBEAT_TIMEOUT_MS="600")
    alice, (a1,) = await api.user("alice")
    bob, (b1,) = await api.user("bob")
    await api.conversation(alice, bob)
    watcher = await Client.open(node, bob, b1)
    async with aiohttp.ClientSession() as http:
        # autoping=False: this client never answers the server's pings
        ws = await http.ws_connect(node.ws_url, autoping=False)
        await ws.send_json({"type": "hello", "ref": "h", "token": node.token(alice, a1)})
        await watcher.wait_for(_presence(a1, "online"))
        async with asyncio.timeout(t(5)):
            async for _msg in ws:  # the iteration ends when the server closes
                pass
        assert ws.close_code == 4004
    await watcher.wait_for(_presence(a1, "offline"), within=3)
    await watcher.close()


async def test_presence_query_and_rest(server: ServerProcess, api: Api) -> None:
    alice, (a1,) = await api.user("alice")
    bob, _ = await api.user("bob")
    me = await Client.open(server, alice, a1)
    ack = await me.request({"type": "presence_query", "user_ids": [alice, bob]})
    assert ack["users"][alice]["status"] == "online"
    assert ack["users"][bob]["status"] == "offline"
    status, body = await api.call("GET", f"/v1/users/{alice}/presence")
    assert status == 200 and body["status"] == "online"
    assert body["devices"][0]["node_id"] == server.name
    await me.close()
