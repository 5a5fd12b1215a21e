"""Graceful shutdown (P17): stop accepting, finish the in-flight send and its ack, close with 1012,
devices offline, lease released, exit 0 within the bound."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import redis
from ccskit.faults.redis_server import PrivateRedis

from .conftest import ServerFactory
from .support import Api, Client, t


async def _refuses_connections(port: int, within: float) -> None:
    """Wait until nothing accepts on ``port`` any more (the first visible step of shutdown)."""
    deadline = time.monotonic() + t(within)
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        await asyncio.sleep(0.02)
    raise AssertionError(f"port {port} still accepts connections after {within}s")


@pytest.fixture
def private_redis() -> PrivateRedis:
    rd = PrivateRedis()
    rd.start()
    yield rd  # type: ignore[misc]
    rd.teardown()


async def test_sigterm_finishes_the_in_flight_send_then_closes_1012(
    server_factory: ServerFactory, api: Api, dsn: str, private_redis: PrivateRedis
) -> None:
    """A send blocked on a row lock when SIGTERM arrives is committed and acknowledged before
    its socket closes with 1012; a bystander also gets 1012; the node exits 0."""
    node = await server_factory(
        "drain",
        shared=False,
        REDIS_URL=private_redis.url,
        CCS_DB_TIMEOUT_MS="10000",
        CCS_SHUTDOWN_TIMEOUT_MS="8000",
    )
    alice, (a_d,) = await api.user("alice")
    bob, (b_d,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    sender = await Client.open(node, alice, a_d)
    bystander = await Client.open(node, bob, b_d)
    lock = await asyncpg.connect(dsn)
    try:
        tx = lock.transaction()
        await tx.start()
        # the seq trigger updates this row: the send waits for our lock, i.e. it is in flight
        await lock.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conv)
        await sender.send(
            {
                "type": "send",
                "ref": "inflight",
                "conversation_id": conv,
                "client_msg_id": "in-flight-1",
                "body": {"text": "sent as the node stops"},
            }
        )
        await _wait_for_lock_waiter(lock, conv)
        assert node.proc is not None
        began = time.monotonic()
        node.proc.terminate()
        await _refuses_connections(node.port, within=5)
        await tx.rollback()  # the send may commit now
    finally:
        await lock.close()
    ack = await sender.wait_for(lambda f: f.get("ref") == "inflight", within=5)
    assert ack["type"] == "ack", ack
    assert await sender.wait_closed() == 1012
    assert await bystander.wait_closed() == 1012
    assert await node.wait_exit() == 0
    print(f"\nSIGTERM -> exit 0 in {time.monotonic() - began:.2f}s")
    check = await asyncpg.connect(dsn)
    try:
        seqs = await check.fetch(
            "SELECT seq FROM messages WHERE conversation_id = $1 AND client_msg_id = $2",
            conv,
            "in-flight-1",
        )
        assert [r["seq"] for r in seqs] == [ack["seq"]]
        rows = await check.fetch(
            "SELECT status FROM device_presence WHERE device_id = ANY($1::text[])", [a_d, b_d]
        )
        assert [r["status"] for r in rows] == ["offline", "offline"]
    finally:
        await check.close()
    lease = redis.Redis.from_url(private_redis.url)
    try:
        assert lease.exists("ccs:lease:drain") == 0  # released, peers need not wait for expiry
    finally:
        lease.close()


async def _wait_for_lock_waiter(conn: asyncpg.Connection, conv: str) -> None:
    """Wait until a server backend is blocked on a lock (the send is really in flight)."""
    deadline = time.monotonic() + t(5)
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND application_name LIKE 'ccs-pool drain%'"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no send of {conv} waited for the lock")
