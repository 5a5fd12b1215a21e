"""Start-up refusals (config, durability), slow consumers, and the P6 latency of one device pair."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from ccskit.percentile import percentile

from .support import ADMIN_DSN, ROOT, Api, Client, ServerProcess, create_database, drop_database, t


async def _run_cli(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccs_server",
        "serve",
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), t(20))
    return proc.returncode or 0, (out + err).decode()


async def test_bad_configuration_is_refused_with_clear_text() -> None:
    code, text = await _run_cli({"CCS_PORT": "eighty"})
    assert code == 2 and "CCS_PORT must be an integer" in text


async def test_unsafe_durability_is_refused_unless_allowed(tmp_path) -> None:
    name = f"ccs_server_test_durability_{os.getpid()}"
    dsn = await create_database(name)
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        code, text = await _run_cli({"DATABASE_URL": dsn, "CCS_PORT": "0"})
        assert code == 3 and "synchronous_commit=off" in text
        allowed = ServerProcess(dsn, tmp_path, "unsafe", CCS_ALLOW_UNSAFE_DURABILITY="true")
        await allowed.start()
        await allowed.stop()
    finally:
        await admin.close()
        await drop_database(name)


async def test_slow_consumer_is_closed_4001_and_others_unaffected(server_factory, api: Api) -> None:
    node = await server_factory(CCS_SEND_QUEUE_MAX="50", CCS_SEND_RATE_PER_S="100000")
    alice, (a1,) = await api.user("alice")
    bob, (b1, b2) = await api.user("bob", devices=2)
    conv = await api.conversation(alice, bob)
    sender = await Client.open(node, alice, a1)
    healthy = await Client.open(node, bob, b1)
    slow = await Client.open(node, bob, b2)
    slow.reader.cancel()  # stops reading: its TCP window and then its queue fill up
    payload = "x" * 8000
    for i in range(1500):
        await sender.send(
            {
                "type": "send",
                "ref": f"s{i}",
                "conversation_id": conv,
                "client_msg_id": f"k{i}",
                "body": payload,
            }
        )
    got = await healthy.wait_messages(conv, 1500, within=30)
    assert [m["seq"] for m in got] == list(range(1, 1501))
    async with api.http.get(node.base + "/metrics") as resp:
        assert "ccs_slow_consumer_closes_total 1.0" in await resp.text()
    await sender.close()
    await healthy.close()
    slow.ws.transport.abort()  # it never reads again: do not make the shutdown wait for it


def _message_seq(seq: int) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "message" and f.get("seq") == seq


async def test_latency_of_one_device_pair(server_factory, api: Api) -> None:
    """P6: send->ack and send->delivered over 300 messages; seed bound 1 s, printed for the note."""
    # sequential sends outrun the default 200 commands/s when the box is idle: lift the limit
    server = await server_factory(CCS_SEND_RATE_PER_S="100000")
    alice, (a1,) = await api.user("alice")
    bob, (b1,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    sender, receiver = await Client.open(server, alice, a1), await Client.open(server, bob, b1)
    acks, deliveries = [], []
    for i in range(300):
        mark = len(receiver.frames)
        start = time.perf_counter()
        ack = await sender.send_msg(conv, {"i": i}, cmid=f"lat-{i}")
        acks.append(time.perf_counter() - start)
        await receiver.wait_for(_message_seq(ack["seq"]), start=mark)
        deliveries.append(time.perf_counter() - start)
    acks.sort()
    deliveries.sort()

    def pct(xs: list[float], p: float) -> float:
        return round(percentile(xs, p * 100) * 1000, 2)

    print(
        f"\nlatency over 300 msgs: send->ack p50 {pct(acks, 0.5)} ms p99 {pct(acks, 0.99)} ms;"
        f" send->delivered p50 {pct(deliveries, 0.5)} ms p99 {pct(deliveries, 0.99)} ms;"
        f" mean delivered {round(statistics.mean(deliveries) * 1000, 2)} ms,"
        f" max {round(deliveries[-1] * 1000, 2)} ms"
    )
    # seed bound: 1 s; p99 rather than max so one scheduler stall on a shared CI box is no failure
    assert pct(deliveries, 0.99) < t(1000.0)
    await sender.close()
    await receiver.close()


async def test_sigterm_closes_sessions_with_1012(server_factory, api: Api) -> None:
    """Shutdown tells clients to reconnect elsewhere (1012) instead of just dropping them."""
    node = await server_factory(shared=False, CCS_NODE_ID="stopping")
    user, (d1,) = await api.user("stop")
    client = await Client.open(node, user, d1)
    assert await node.stop() == 0
    assert await client.wait_closed() == 1012
