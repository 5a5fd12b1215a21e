"""Several nodes sharing PostgreSQL and a private Redis (P6, P10, P12, P13 server side).

Real processes: two (or three) ``python -m ccs_server`` nodes, a private ``redis-server`` started
by the fault kit (never the shared 6379), kill -9 for node crashes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from ccskit.faults.redis_server import PrivateRedis

from .conftest import ServerFactory
from .support import Api, Client, ServerProcess, alice_and_bob, t

LEASE_MS = "1500"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis for one test (it may be killed)."""
    rd = PrivateRedis()
    rd.start()
    try:
        yield rd
    finally:
        rd.teardown()


StartNodes = Callable[..., Awaitable[list[ServerProcess]]]


@pytest.fixture
async def start_nodes(server_factory: ServerFactory) -> AsyncIterator[StartNodes]:
    """Start nodes of this test only (not shared); they are stopped when the test ends, so a
    whole ``tests/server`` run never holds more than a few processes and connections."""
    mine: list[ServerProcess] = []

    async def start(
        prefix: str, count: int, redis_url: str = "", **env: str
    ) -> list[ServerProcess]:
        extra = {"REDIS_URL": redis_url} if redis_url else {}
        nodes = await asyncio.gather(
            *(
                server_factory(
                    f"{prefix}-{i + 1}", shared=False, CCS_NODE_LEASE_MS=LEASE_MS, **extra, **env
                )
                for i in range(count)
            )
        )
        mine.extend(nodes)
        return list(nodes)

    try:
        yield start
    finally:
        await asyncio.gather(*(node.stop() for node in mine))


async def health(http: aiohttp.ClientSession, node: ServerProcess) -> dict[str, Any]:
    async with http.get(node.base + "/health") as resp:
        return await resp.json()  # type: ignore[no-any-return]


async def wait_health(
    http: aiohttp.ClientSession, node: ServerProcess, key: str, want: str, within: float
) -> None:
    """Poll /health until ``key`` reports ``want`` (the event has no push channel)."""
    deadline = time.monotonic() + t(within)
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = await health(http, node)
        if last.get(key) == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{node.name}: {key} never became {want!r} within {within}s: {last}")


async def wait_subscribers(rd: PrivateRedis, count: int, within: float) -> None:
    """Wait until ``count`` clients subscribe to the events channel."""
    client = aioredis.Redis.from_url(rd.url)
    try:
        deadline = time.monotonic() + t(within)
        while time.monotonic() < deadline:
            ((_, subs),) = await client.pubsub_numsub("ccs:events")
            if subs >= count:
                return
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise AssertionError(f"fewer than {count} nodes subscribed to ccs:events within {within}s")


def presence_of(device: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (
        f.get("type") == "presence" and f.get("device_id") == device and f.get("status") == status
    )


@pytest.fixture
async def redis_events(private_redis: PrivateRedis) -> AsyncIterator[list[dict[str, Any]]]:
    """Every event published on the nodes' Redis channel while the test runs."""
    client = aioredis.Redis.from_url(private_redis.url)
    pubsub = client.pubsub()
    await pubsub.subscribe("ccs:events")
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                seen.append(json.loads(msg["data"])["e"])

    task = asyncio.create_task(read())
    try:
        yield seen
    finally:
        task.cancel()
        await pubsub.aclose()
        await client.aclose()


async def test_devices_on_two_nodes_stay_in_sync_through_redis(
    start_nodes: StartNodes,
    api: Api,
    private_redis: PrivateRedis,
    redis_events: list[dict[str, Any]],
    db: asyncpg.Connection,
) -> None:
    """Message node 1 -> node 2, read receipt node 2 -> node 1 via Redis, presence across nodes,
    and the user's third device catching up on node 2 in order."""
    n1, n2 = await start_nodes("sync", 2, private_redis.url)
    for node in (n1, n2):
        assert (await health(api.http, node))["redis"] == "ok"
    alice, (laptop, tablet, phone) = await api.user("alice", devices=3)
    bob, (bob_d,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    a1 = await Client.open(n1, alice, laptop)
    a2 = await Client.open(n2, alice, tablet)
    await a1.wait_for(presence_of(tablet, "online"))  # presence: node 2 -> node 1
    b = await Client.open(n2, bob, bob_d)
    acks = [await a1.send_msg(conv, {"text": f"hi {i}"}) for i in range(5)]
    assert all(a["type"] == "ack" for a in acks), acks
    for client in (a2, b):
        got = await client.wait_messages(conv, 5, within=2)
        assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
    receipt = await a2.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 5}
    )
    assert receipt["type"] == "ack", receipt
    event = await a1.wait_for(lambda f: f.get("type") == "receipt" and f["device_id"] == tablet)
    assert (event["read_upto"], event["delivered_upto"]) == (5, 5)
    assert any(e.get("type") == "receipt" and e["device_id"] == tablet for e in redis_events)
    phone_c = await Client.open(n2, alice, phone)  # was offline: replay, in order
    assert [m["seq"] for m in await phone_c.wait_messages(conv, 5)] == [1, 2, 3, 4, 5]
    stored = await db.fetchrow(
        "SELECT read_upto FROM device_cursors WHERE device_id = $1 AND conversation_id = $2",
        tablet,
        conv,
    )
    assert stored["read_upto"] == 5
    for client in (a1, a2, b, phone_c):
        await client.close()


@pytest.mark.parametrize("backend", ["redis", "postgres"])
async def test_killed_node_devices_go_offline_within_the_lease(
    backend: str,
    start_nodes: StartNodes,
    api: Api,
    db: asyncpg.Connection,
    private_redis: PrivateRedis,
) -> None:
    """kill -9 of a node: a surviving node sets its devices offline within the lease and tells
    those sharing a conversation; the lease lives in Redis or (no REDIS_URL) in PostgreSQL."""
    url = private_redis.url if backend == "redis" else ""
    doomed, survivor = await start_nodes(f"lease-{backend}", 2, url)
    alice, (tab,) = await api.user("alice")
    bob, (bob_d,) = await api.user("bob")
    await api.conversation(alice, bob)
    watcher = await Client.open(survivor, bob, bob_d)
    victim = await Client.open(doomed, alice, tab)
    await watcher.wait_for(presence_of(tab, "online"))
    mark = len(watcher.frames)
    assert doomed.proc is not None
    doomed.proc.kill()
    await doomed.wait_exit()
    killed_at = time.monotonic()
    frame = await watcher.wait_for(presence_of(tab, "offline"), within=6, start=mark)
    took = time.monotonic() - killed_at
    assert frame["user_status"] == "offline"
    # a lease of 1.5 s, checked every 0.5 s, after a full lease of healthy renewals
    assert took < t(4.5), f"offline after {took:.2f}s"
    row = await db.fetchrow("SELECT status, node_id FROM device_presence WHERE device_id = $1", tab)
    assert (row["status"], row["node_id"]) == ("offline", doomed.name)
    print(f"\n{backend} lease: device of killed node offline after {took:.2f}s")
    await watcher.close()
    victim.reader.cancel()


async def test_redis_killed_messages_flow_and_health_recovers(
    start_nodes: StartNodes, api: Api, private_redis: PrivateRedis
) -> None:
    """kill -9 of Redis: delivery (database-driven) and receipts (NOTIFY fallback) go on,
    /health says unavailable; Redis back: both nodes report ok again without a restart."""
    n1, n2 = await start_nodes("rkill", 2, private_redis.url)
    conv, a, b = await alice_and_bob(n1, api, n2)
    private_redis.kill()
    for node in (n1, n2):
        await wait_health(api.http, node, "redis", "unavailable", within=5)
    ack = await a.send_msg(conv, {"text": "redis is down"})
    assert ack["type"] == "ack", ack
    await b.wait_messages(conv, 1, within=2)
    receipt = await b.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 1}
    )
    assert receipt["type"] == "ack"
    await a.wait_for(lambda f: f.get("type") == "receipt" and f["device_id"] == b.device)
    private_redis.start()
    for node in (n1, n2):
        await wait_health(api.http, node, "redis", "ok", within=5)
    ack = await b.send_msg(conv, {"text": "redis is back"})
    assert ack["type"] == "ack"
    assert [m["seq"] for m in await a.wait_messages(conv, 2)] == [1, 2]
    # both nodes subscribed again, so a receipt now crosses through Redis (not the fallback)
    await wait_subscribers(private_redis, 2, within=5)
    mark = len(b.frames)
    receipt = await a.request(
        {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": 2}
    )
    assert receipt["type"] == "ack"
    await b.wait_for(
        lambda f: f.get("type") == "receipt" and f["device_id"] == a.device, start=mark
    )
    await a.close()
    await b.close()


async def test_paused_redis_blocks_nothing(
    start_nodes: StartNodes, api: Api, private_redis: PrivateRedis
) -> None:
    """SIGSTOP of Redis: sends, receipts and /health answer promptly (every call is bounded)."""
    n1, n2 = await start_nodes("rpause", 2, private_redis.url)
    conv, a, b = await alice_and_bob(n1, api, n2)
    private_redis.pause()
    try:
        for i in range(3):
            began = time.monotonic()
            ack = await a.send_msg(conv, {"i": i})
            assert ack["type"] == "ack"
            await b.wait_messages(conv, i + 1, within=2)
            receipt = await b.request(
                {"type": "receipt", "conversation_id": conv, "kind": "read", "seq": i + 1}
            )
            assert receipt["type"] == "ack"
            assert time.monotonic() - began < t(2.0)
        await wait_health(api.http, n1, "redis", "unavailable", within=5)
    finally:
        private_redis.resume()
    await wait_health(api.http, n1, "redis", "ok", within=5)
    await a.close()
    await b.close()


async def test_redis_losing_its_keys_is_not_taken_for_dead_peers(
    start_nodes: StartNodes, api: Api, private_redis: PrivateRedis, db: asyncpg.Connection
) -> None:
    """Redis lost its keys without any failed call (FLUSHALL; a restart loses them too): no
    node may take its live peer for dead, so nobody is told a connected device went offline."""
    n1, n2 = await start_nodes("rquick", 2, private_redis.url)
    conv, a, b = await alice_and_bob(n1, api, n2)
    await a.wait_for(presence_of(b.device, "online"))
    # every key lost at once with connections intact (as after a quick restart without
    # persistence, but deterministic): no call fails, only the epoch key tells
    flusher = aioredis.Redis.from_url(private_redis.url)
    try:
        # one loss per heartbeat for over a lease: the later ones hit nodes past their start-up
        for _ in range(5):
            await flusher.flushall()
            await asyncio.sleep(int(LEASE_MS) / 3000)
    finally:
        await flusher.aclose()
    # a false reap happens within a heartbeat of a loss: watch one more lease after the last
    deadline = time.monotonic() + int(LEASE_MS) / 1000
    while time.monotonic() < deadline:
        assert not any(presence_of(b.device, "offline")(f) for f in a.frames), a.tail()
        assert not any(presence_of(a.device, "offline")(f) for f in b.frames), b.tail()
        await asyncio.sleep(0.1)
    rows = await db.fetch(
        "SELECT status FROM device_presence WHERE device_id = ANY($1::text[])", [a.device, b.device]
    )
    assert [r["status"] for r in rows] == ["online", "online"]
    assert (await a.send_msg(conv, {"still": "here"}))["type"] == "ack"
    await b.wait_messages(conv, 1)
    await a.close()
    await b.close()
