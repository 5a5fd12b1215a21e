"""P12 under a stalled (blackholed) database link: a TCP proxy that accepts and forwards nothing.

Unlike a killed database (connections reset, connects refused), a stall makes every database
call hang: queries, the cancel request asyncpg sends on timeout, new connections. The node must
still answer every send with a retryable ``unavailable`` within 5 s, never acknowledge one, and
recover by itself when the link heals, with nothing lost or doubled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from ccskit.faults.postgres import PrivatePostgres
from ccskit.faults.proxy import TcpProxy

from .conftest import RUN
from .support import Api, Client, ServerProcess, t, wait_health

DEVICES = 4  # senders, each on its own socket
SENDS = 3  # per device, in sequence, while the link is stalled
REPLY_LIMIT_S = 5.0  # P12: a retryable error within 5 s
DB_TIMEOUT_MS = "2000"
POOL_SIZE = 4
# the server's own bound: one deadline per operation (CCS_DB_TIMEOUT_MS) plus scheduling slack;
# an operation that waits twice (acquire, then query; queue, then statement) takes about 4 s
DEADLINE_LIMIT_S = 2.0 + 1.5


@pytest.fixture
async def db_link(private_pg: PrivatePostgres) -> AsyncIterator[TcpProxy]:
    """The proxy the node reaches PostgreSQL through."""
    proxy = await asyncio.to_thread(TcpProxy, "127.0.0.1", private_pg.port)
    try:
        yield proxy
    finally:
        await asyncio.to_thread(proxy.close)


async def _wait_backends_at_most(pg: PrivatePostgres, most: int) -> None:
    """Wait until the node holds at most ``most`` PostgreSQL backends (each poll bounded)."""
    conn = await asyncpg.connect(pg.database_url())
    try:
        deadline = time.monotonic() + t(10)
        rows: list = []
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                "SELECT application_name, state FROM pg_stat_activity"
                " WHERE application_name LIKE 'ccs-%'",
                timeout=t(5),
            )
            if len(rows) <= most:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"node backends never fell to {most}: {[dict(r) for r in rows]}")
    finally:
        await conn.close()


async def _timed(client: Client, frame: dict, what: str) -> tuple[dict, float]:
    """One command and how long its reply took; no reply within the P12 limit fails the test."""
    began = time.monotonic()
    try:
        reply = await client.request(frame, within=REPLY_LIMIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{client.device} {what}: no reply within 5 s ({exc})") from None
    return reply, time.monotonic() - began


async def _commands_during_stall(client: Client, conv: str) -> list[tuple[str, dict, float]]:
    """``SENDS`` sends in sequence on one socket (one command in flight, like a real client),
    each followed by a ``history`` read: a plain query, not a group-committed send."""
    out = []
    for i in range(SENDS):
        cmid = f"{client.device}-stall-{i}"
        send = {"type": "send", "conversation_id": conv, "client_msg_id": cmid, "body": {"n": i}}
        out.append((cmid, *await _timed(client, send, cmid)))
        history = {"type": "history", "conversation_id": conv, "limit": 10}
        out.append((f"history-{i}", *await _timed(client, history, f"history {i}")))
    return out


async def test_stalled_database_link_unavailable_then_recovery(
    private_pg: PrivatePostgres,
    db_link: TcpProxy,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    node = ServerProcess(
        private_pg.database_url(port=db_link.port),
        tmp_path,
        "stall",
        CCS_DB_TIMEOUT_MS=DB_TIMEOUT_MS,
        CCS_DB_POOL_SIZE=str(POOL_SIZE),
    )
    await node.start()
    clients: list[Client] = []
    reader: Client | None = None
    try:
        api = Api(node, http, RUN)
        alice, devices = await api.user("alice", devices=DEVICES)
        bob, (b_d,) = await api.user("bob")
        conv = await api.conversation(alice, bob)
        clients = [await Client.open(node, alice, d) for d in devices]
        reader = await Client.open(node, bob, b_d)
        for c in clients:
            assert (await c.send_msg(conv, {"n": -1}, cmid=f"{c.device}-before"))["type"] == "ack"

        await asyncio.to_thread(db_link.stall)
        results = await asyncio.gather(*(_commands_during_stall(c, conv) for c in clients))
        for what, reply, took in (r for per_device in results for r in per_device):
            assert reply["type"] == "error", f"{what} acknowledged during the stall: {reply}"
            assert (reply["code"], reply["retryable"]) == ("unavailable", True), reply
            assert took < t(DEADLINE_LIMIT_S), f"{what} answered after {took:.1f} s"
        took_all = [took for per_device in results for _c, _r, took in per_device]
        print(f"stall replies: {len(took_all)}, slowest {max(took_all):.2f} s")
        health = await wait_health(http, node, 503)
        assert health["database"] == "unavailable", health
        assert not any(c.closed.is_set() for c in clients)  # sockets stay open

        await asyncio.to_thread(db_link.restore)
        await wait_health(http, node, 200)
        for c in clients:
            for i in range(SENDS):
                # a timed-out send may have committed after all: then the retry is a duplicate
                ack = await c.send_msg(conv, {"n": i}, cmid=f"{c.device}-stall-{i}")
                assert ack["type"] == "ack", ack
        expected = DEVICES * (1 + SENDS)
        seqs = [m["seq"] for m in await reader.wait_messages(conv, expected, within=10)]
        assert seqs == list(range(1, expected + 1)), seqs  # no gap, no double, in order
        conn = await asyncpg.connect(private_pg.database_url())
        try:
            counts = await conn.fetch(
                "SELECT client_msg_id, count(*) AS n FROM messages WHERE conversation_id = $1"
                " GROUP BY client_msg_id",
                conv,
            )
        finally:
            await conn.close()
        assert len(counts) == expected and all(r["n"] == 1 for r in counts), counts
        # connections terminated or abandoned during the stall are gone, none leaked
        await _wait_backends_at_most(private_pg, POOL_SIZE + 1)  # the pool + the listener
    finally:
        for c in clients:
            await c.close()
        if reader is not None:
            await reader.close()
        await node.stop()
