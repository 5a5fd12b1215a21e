"""Uptime, delivery success, latency timeline and commit count against the real reference server.

Each figure must read 100 % on a clean run and drop when what it names breaks: a server-side
close stops the uptime clock, and a delivery the device never saw lowers the success rate.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from ccskit.bench.monitor import CommitSampler
from ccskit.bench.reliability import delivery_success, latency_timeline, uptime
from ccskit.bench.server import ReferenceServer
from ccskit.load import LoadRun, make_rooms, provision

SECRET = "kit-reliability-test-secret-of-32-bytes-or-more"


@pytest.fixture
async def server() -> AsyncIterator[ReferenceServer]:
    env = {"CCS_TOKEN_SECRET": SECRET, "CCS_LOG_LEVEL": "WARNING"}
    async with ReferenceServer("ccskit_test_reliability", env=env) as srv:
        yield srv


async def _run(srv: ReferenceServer, name: str) -> LoadRun:
    fleet = await provision(srv.api_url, SECRET, make_rooms(name, rooms=2, members=3))
    run = LoadRun(srv.ws_url, fleet)
    assert (await run.connect(timeout_s=30)).failed == 0
    return run


async def test_clean_phase_is_whole_and_a_lost_delivery_lowers_success(
    server: ReferenceServer,
) -> None:
    run = await _run(server, f"rel{time.time_ns()}")
    commits = CommitSampler(server.dsn, interval_s=0.5)
    commits.start()
    stats = await run.send_phase(rate_per_s=50, count=250, drain_timeout_s=15)
    await commits.stop()
    assert stats.drained
    sends = [r.t_sched + run.epoch_offset for r in run.sent]
    rate = commits.rate_between(min(sends), max(sends))
    # Each stored message is at least one committed transaction; the server does no more than a
    # few per message. Nothing else writes to this test's database.
    assert rate is not None and 0.7 * 50 <= rate <= 5 * 50, rate
    clean = delivery_success([run])
    assert (clean.received, clean.expected, clean.pct) == (750, 750, 100.0)
    assert uptime([run]).pct == 100.0
    points = latency_timeline(run, stats.phase)
    assert sum(p.count for p in points) == 750
    assert 4 <= len(points) <= 6  # one per scheduled second
    assert all(abs(p.t - time.time()) < 30 and 0 < p.p50_ms <= p.p99_ms for p in points)
    victim = next(iter(run.conns.values()))
    victim.received.pop()  # the device "never saw" one message
    lost = delivery_success([run])
    assert (lost.received, lost.expected) == (749, 750)
    assert lost.worst_device == victim.device.device_id
    await run.close()


async def test_a_server_close_lowers_uptime() -> None:
    env = {"CCS_TOKEN_SECRET": SECRET, "CCS_LOG_LEVEL": "WARNING"}
    async with ReferenceServer("ccskit_test_reliability_close", env=env) as srv:
        run = await _run(srv, f"relc{time.time_ns()}")
        await srv.stop()  # graceful shutdown closes every socket with 1012
        for conn in run.conns.values():
            assert conn._reader is not None
            await conn._reader
        closed_at = max(c.t for c in run.closes)
        later = uptime([run], now=closed_at + 10.0)
        assert later.closed == 6
        assert later.pct < 100.0
        assert later.open_s < later.wanted_s - 6 * 9.9  # the clock stopped at each close
        await run.close()
