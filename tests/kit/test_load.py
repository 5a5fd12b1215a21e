"""The lean load client against the real reference server and PostgreSQL (no mocks).

One reference server on a fresh database serves the module; each test provisions its own fleet.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import asyncpg
import ccskit.bench.races as races
import pytest
from ccskit.bench.monitor import ServerMonitor, server_db_connections
from ccskit.bench.server import ReferenceServer
from ccskit.checker import check
from ccskit.config import database_url_for
from ccskit.load import LoadRun, fetch_stored, make_idle, make_rooms, percentiles, provision

SECRET = "kit-load-test-secret-of-32-bytes-or-more"
POOL = 4
_names = itertools.count(1)


def prefix() -> str:
    """A fleet prefix unique within this module's database."""
    return f"tl{next(_names)}"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ReferenceServer]:
    env = {"CCS_TOKEN_SECRET": SECRET, "CCS_DB_POOL_SIZE": str(POOL), "CCS_LOG_LEVEL": "WARNING"}
    async with ReferenceServer("ccskit_test_load", env=env) as srv:
        yield srv


async def connected_run(srv: ReferenceServer, rooms: int = 3, members: int = 4) -> LoadRun:
    fleet = await provision(srv.api_url, SECRET, make_rooms(prefix(), rooms, members))
    run = LoadRun(srv.ws_url, fleet)
    stats = await run.connect(timeout_s=30)
    assert stats.failed == 0, stats.errors
    assert run.live == rooms * members
    return run


# ----------------------------------------------------------------------------- pure helpers


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["avg"]) == (50, 95, 99, 100, 50.5)
    assert percentiles([])["avg"] != percentiles([])["avg"]  # NaN when nothing was measured


def test_rooms_give_every_device_one_room_and_spread_senders() -> None:
    fleet = make_rooms("x", rooms=3, members=4, senders=2, devices_per_user=2)
    assert len(fleet.devices) == 12
    assert len({d.device_id for d in fleet.devices}) == 12
    assert all(len(r.senders) == 2 for r in fleet.rooms)
    # two devices per user: 2 users per room
    assert all(len({d.user_id for d in r.members}) == 2 for r in fleet.rooms)
    run = LoadRun("ws://unused", fleet)
    plan = run._plan(12)
    assert [room.conversation_id for room, _ in plan[:3]] == ["x-c0", "x-c1", "x-c2"]
    assert {s.device_id for room, s in plan if room.conversation_id == "x-c0"} == {
        "x-d0-0",
        "x-d0-1",
    }
    with pytest.raises(ValueError):
        make_rooms("x", rooms=1, members=3, devices_per_user=2)


# ----------------------------------------------------------------------------- against a server


async def test_open_loop_phase_is_acked_delivered_and_consistent(server: ReferenceServer) -> None:
    run = await connected_run(server)
    try:
        stats = await run.send_phase(rate_per_s=200, count=60, drain_timeout_s=15)
        assert stats.drained
        assert (stats.attempted, stats.acked, stats.errors) == (60, 60, {})
        assert stats.deliveries == stats.expected_deliveries == 60 * 4
        assert 0 < stats.delivery_ms["p50"] <= stats.delivery_ms["p99"]
        assert 0 < stats.ack_ms["avg"] < 5000
        # 60 messages at 200/s take 0.3 s to schedule: the rate is the schedule's, not a burst.
        assert 0.25 < stats.send_window_s < 15
        result = check(run.history(await fetch_stored(server.dsn, run.conversation_ids)))
        assert result.ok, result.describe()
        assert result.info["acked"] == 60
        assert result.info["deliveries"] == 240
    finally:
        await run.close()


async def test_a_row_removed_behind_the_server_is_reported_lost(server: ReferenceServer) -> None:
    run = await connected_run(server, rooms=1, members=3)
    try:
        stats = await run.send_phase(rate_per_s=100, count=10)
        assert stats.acked == 10
        victim = run.sent[4]
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute("DELETE FROM messages WHERE id = $1", victim.message_id)
        finally:
            await conn.close()
        result = check(run.history(await fetch_stored(server.dsn, run.conversation_ids)))
        assert result.counts["lost"] == 1
        assert victim.client_msg_id in result.examples["lost"][0]
        assert result.counts["gaps"] == 1
        # every device did receive it, so the deliveries name an id no longer stored
        assert result.counts["unexpected"] == 3
    finally:
        await run.close()


async def test_same_key_race_edit_race_and_receipt_race(server: ReferenceServer) -> None:
    run = await connected_run(server, rooms=1, members=4)
    room = run.fleet.rooms[0]
    try:
        await run.send_phase(rate_per_s=100, count=8)
        retry = await races.retry_same_key(run, room, copies=6, connections=2)
        assert (retry["acks"], retry["duplicates"]) == (6, 5)
        edit = await races.edit_race(run, room, editors=3)
        assert edit["version"] == 2
        assert edit["conflicts"] == 2
        receipts = await races.receipt_race(run, room, server.dsn, devices=3, per_device=10)
        assert receipts["devices"] == 3
        # what the races sent is part of the history, and it is all consistent
        assert await run.wait_for_deliveries(10)
        result = check(run.history(await fetch_stored(server.dsn, run.conversation_ids)))
        assert result.ok, result.describe()
        assert result.info["stored"] == 8 + 2  # the retried key once, the edited message once
    finally:
        await run.close()


async def test_monitor_sees_rss_cpu_and_pool_within_size(server: ReferenceServer) -> None:
    monitor = ServerMonitor(server.pid, server.dsn, interval_s=0.1)
    monitor.start()
    run = await connected_run(server, rooms=2, members=5)
    try:
        await run.send_phase(rate_per_s=300, count=150)
        rows = await server_db_connections(server.dsn, server.pid)
    finally:
        await run.close()
        report = await monitor.stop()
    summary = report.summary()
    assert summary["samples"] >= 3
    assert summary["rss_mib_max"] > 10
    assert 1 <= len(rows) <= POOL + 1  # pool plus the LISTEN connection
    assert 1 <= summary["db_connections_max"] <= POOL + 1


async def test_server_close_is_recorded_as_unexpected() -> None:
    env = {"CCS_TOKEN_SECRET": SECRET, "CCS_LOG_LEVEL": "WARNING"}
    async with ReferenceServer("ccskit_test_load_close", env=env) as srv:
        fleet = await provision(srv.api_url, SECRET, make_idle(prefix(), 5))
        run = LoadRun(srv.ws_url, fleet)
        assert (await run.connect(timeout_s=30)).connected == 5
        await srv.stop()  # graceful shutdown closes every socket with 1012
        for conn in run.conns.values():
            assert conn._reader is not None
            await conn._reader
        assert run.live == 0
        assert len(run.closes) == 5
        assert {c.code for c in run.closes} == {1012}
        await run.close()


async def test_history_from_kit_device_clients(server: ReferenceServer) -> None:
    """The checker also judges the kit's own DeviceClient (used by functional/fault suites)."""
    from ccskit.checker import history_from_clients
    from ccskit.client import DeviceClient

    fleet = await provision(server.api_url, SECRET, make_rooms(prefix(), rooms=1, members=3))
    room = fleet.rooms[0]
    clients = [
        DeviceClient(d.device_id, server.ws_url, d.token, user_id=d.user_id, device_id=d.device_id)
        for d in room.members
    ]
    try:
        for c in clients:
            await c.open()
        for i in range(4):
            for c in clients[:2]:
                ack = await c.send_message(room.conversation_id, {"text": f"{c.device_id} {i}"})
                assert ack["type"] == "ack"
        for c in clients:
            await c.wait_for("message", {"seq": 8}, 10.0, since=0)
        stored = await fetch_stored(server.dsn, [room.conversation_id])
        result = check(history_from_clients(clients, stored, [room.conversation_id]))
        assert result.ok, result.describe()
        assert (result.info["acked"], result.info["deliveries"]) == (8, 24)
        # A row written behind the clients' backs is stored but was never attempted.
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(
                "INSERT INTO messages (conversation_id, sender_user_id, sender_device_id, "
                "client_msg_id, body) VALUES ($1, $2, $3, 'batch-job-1', '{}'::jsonb)",
                room.conversation_id,
                room.members[2].user_id,
                room.members[2].device_id,
            )
        finally:
            await conn.close()
        for c in clients:
            await c.wait_for("message", {"seq": 9}, 10.0, since=0)
        stored = await fetch_stored(server.dsn, [room.conversation_id])
        result = check(history_from_clients(clients, stored, [room.conversation_id]))
        assert result.counts["unexpected"] == 1, result.describe()
        assert "batch-job-1" in result.examples["unexpected"][0]
    finally:
        for c in clients:
            await c.close()


async def test_raw_limits_measure_something_real() -> None:
    """The benchmark's yardsticks: an echo round trip and single-row commits (with and without
    a NOTIFY trigger) on a database made and dropped for the purpose."""
    from ccskit.bench.raw import raw_commit, ws_echo_rtt

    rtt = await ws_echo_rtt(round_trips=50, warmup=5)
    assert rtt["samples"] == 50
    assert 0 < rtt["p50"] <= rtt["p99"] < 1000
    admin = database_url_for("postgres")
    for notify in (False, True):
        commit = await raw_commit(
            admin,
            database_url_for("ccskit_test_raw"),
            "ccskit_test_raw",
            connections=2,
            seconds=0.3,
            notify=notify,
        )
        assert commit["commits"] > 10
        assert commit["per_s"] > 30
        assert commit["notify"] is notify
    conn = await asyncpg.connect(admin)
    try:
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = 'ccskit_test_raw'"
        )
    finally:
        await conn.close()
