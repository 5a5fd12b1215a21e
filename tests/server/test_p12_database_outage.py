"""P12: kill -9 of the database under a live node (a private PostgreSQL from the fault kit).

Sockets stay open, sends get a retryable ``unavailable`` within 5 s and are never acknowledged,
the node recovers without a restart, the retried send is stored once and delivered, and a
presence change the node could not store during the outage is applied after it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import websockets
from ccskit.faults.postgres import PrivatePostgres
from websockets.asyncio.client import ClientConnection

from .conftest import RUN
from .support import Api, Client, ServerProcess, t, wait_health


async def _upgrade_with_token(node: ServerProcess, user: str, device: str) -> ClientConnection:
    headers = {"Authorization": f"Bearer {node.token(user, device)}"}
    return await websockets.connect(node.ws_url, compression=None, additional_headers=headers)


async def _hello_is_refused_retryably(
    early: Client, node: ServerProcess, user: str, device: str
) -> None:
    """Devices connecting while the database is down get ``unavailable`` (retryable) and 1012,
    whether the token came in ``hello`` or on the upgrade; the upgrade itself says 503."""
    late = await Client.open(node, user, device, hello=False)
    for client, frame in ((late, {"token": node.token(user, device)}), (early, {})):
        reply = await client.request({"type": "hello", **frame}, within=t(5))
        assert (reply["type"], reply.get("code"), reply.get("retryable")) == (
            "error",
            "unavailable",
            True,
        ), reply
        assert await client.wait_closed(within=t(5)) == 1012
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _upgrade_with_token(node, user, device)
    assert refused.value.response.status_code == 503


async def test_database_kill_unavailable_then_recovery_without_restart(
    private_pg: PrivatePostgres, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    node = ServerProcess(
        private_pg.database_url(),
        tmp_path,
        "outage",
        CCS_DB_TIMEOUT_MS="2000",
        CCS_NODE_LEASE_MS="1500",
        CCS_PRESENCE_GRACE_MS="0",  # the offline is attempted while the database is down
    )
    await node.start()
    try:
        api = Api(node, http, RUN)
        alice, (a_d,) = await api.user("alice")
        bob, (b_d, b_gone) = await api.user("bob", devices=2)
        conv = await api.conversation(alice, bob)
        a = await Client.open(node, alice, a_d)
        b = await Client.open(node, bob, b_d)
        leaving = await Client.open(node, bob, b_gone)
        # authenticated on the upgrade now, says hello only once the database is gone
        early = Client(await _upgrade_with_token(node, bob, b_gone), bob, b_gone)
        assert (await a.send_msg(conv, {"n": 1}, cmid="before"))["type"] == "ack"

        await asyncio.to_thread(private_pg.kill)
        began = time.monotonic()
        refused = await a.send_msg(conv, {"n": 2}, cmid="during")
        assert refused["type"] == "error", refused
        assert (refused["code"], refused["retryable"]) == ("unavailable", True)
        assert time.monotonic() - began < t(5)
        health = await wait_health(http, node, 503, within=15)
        assert health["database"] == "unavailable"
        await leaving.close()  # its offline cannot be stored now
        assert not a.closed.is_set() and not b.closed.is_set()  # sockets stay open
        await _hello_is_refused_retryably(early, node, bob, b_gone)
        health = await wait_health(http, node, 503, within=15)
        assert health["connections"] == 2, health  # the refused hello left no session behind

        await asyncio.to_thread(private_pg.start)
        await wait_health(http, node, 200, within=15)
        ack = await a.send_msg(conv, {"n": 2}, cmid="during")  # the same key, retried
        assert ack["type"] == "ack" and ack["duplicate"] is False, ack
        assert [m["seq"] for m in await b.wait_messages(conv, 2)] == [1, 2]
        # the lost offline is re-applied and broadcast once the database is back
        await b.wait_for(
            lambda f: (
                f.get("type") == "presence"
                and f.get("device_id") == b_gone
                and f.get("status") == "offline"
            ),
            within=6,
        )
        conn = await asyncpg.connect(private_pg.database_url())
        try:
            status = await conn.fetchval(
                "SELECT status FROM device_presence WHERE device_id = $1", b_gone
            )
            stored = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE client_msg_id = 'during'"
            )
        finally:
            await conn.close()
        assert (status, stored) == ("offline", 1)
        await a.close()
        await b.close()
    finally:
        await node.stop()
