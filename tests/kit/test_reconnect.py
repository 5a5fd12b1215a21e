"""The reference client reconnects by itself: backoff, fail-over, resume, outbox with same keys.

Close-code rules run against the tiny fake server; everything about resume and the outbox runs
against the real reference server (child process, real PostgreSQL) with the kit's TCP proxy
between client and server, so a cut is a real reset of a real connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from ccskit.api import CcsApi
from ccskit.client import ClientError, DeviceClient, ReconnectPolicy
from ccskit.closecodes import may_reconnect
from ccskit.config import database_url_for, ws_url_for
from ccskit.faults.proxy import TcpProxy
from ccskit.fixtures import Fixtures
from ccskit.loop import shared_loop
from ccskit.server import ServerProcess
from ccskit.tokens import mint_token
from fake_ccs import FakeCcs

registry = Fixtures()  # the fixture names this module creates

DB_URL = database_url_for("kit_reconnect_pytest")
FAST = ReconnectPolicy(base_s=0.02, cap_s=0.2, give_up_after_s=20)


def run(coro: Any, timeout: float = 20.0) -> Any:
    return shared_loop().run(coro, timeout)


# ----- pure rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "expected"),
    [(None, True), (1000, True), (1006, True), (1012, True), (1011, True), (1001, True),
     (4001, True), (4499, True), (1002, False), (1007, False), (1009, False), (1003, False),
     (4500, False), (4501, False), (4503, False), (4777, False)],
)  # fmt: skip
def test_one_reconnect_rule_follows_the_protocol_table(code: int | None, expected: bool) -> None:
    assert may_reconnect(code) is expected


def test_backoff_is_full_jitter_capped() -> None:
    policy = ReconnectPolicy(base_s=0.1, cap_s=1.0)
    for attempt, bound in ((0, 0.1), (2, 0.4), (3, 0.8), (10, 1.0)):
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(0.0 <= s <= bound for s in samples)
        assert max(samples) > bound / 2 and min(samples) < bound / 2  # spread, not fixed


# ----- close codes against the fake server --------------------------------------------------------
def _fake_client(fake: FakeCcs, alias: str) -> DeviceClient:
    client = DeviceClient(alias, f"ws://127.0.0.1:{fake.port}", "t", device_id=alias)
    client.enable_reconnect(policy=FAST)
    run(client.open())
    return client


def test_slow_consumer_close_is_followed_by_a_reconnect(fake: FakeCcs) -> None:
    client = _fake_client(fake, "fake-4001")
    run(client.send_raw('{"type": "close_with", "code": 4001, "ref": "x"}'))
    record = run(client.wait_reconnects(1, 10))
    assert record.ok and record.close_code == 4001 and client.connected
    run(client.close())


def test_no_reconnect_after_a_do_not_reconnect_close(fake: FakeCcs) -> None:
    client = _fake_client(fake, "fake-4501")
    run(client.send_raw('{"type": "close_with", "code": 4501, "ref": "x"}'))
    with pytest.raises(ClientError, match="expected 1 reconnect"):
        run(client.wait_reconnects(1, 1.0))
    assert client.close_code == 4501 and not client.connected


def test_an_intentional_close_is_not_followed_by_a_reconnect(fake: FakeCcs) -> None:
    client = _fake_client(fake, "fake-close")
    run(client.close())
    with pytest.raises(ClientError, match="expected 1 reconnect"):
        run(client.wait_reconnects(1, 0.5))


# ----- resume and outbox against the reference server ---------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(env={"DATABASE_URL": DB_URL}, log_dir=tmp_path_factory.mktemp("srv"))
    proc.start(timeout=60)
    yield proc
    proc.stop()


@pytest.fixture
def room(server: ServerProcess) -> str:
    api = CcsApi(server.base_url, registry)
    api.create_user("alice")
    for device in ("alice-phone", "alice-laptop"):
        api.create_device("alice", device)
    return api.create_conversation("room", ["alice"])


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[TcpProxy]:
    link = TcpProxy("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))
    yield link
    link.close()


def _client(alias: str, *urls: str) -> DeviceClient:
    user_id, device_id = registry.device(alias)
    client = DeviceClient(
        alias, urls[0], mint_token(user_id, device_id), user_id=user_id, device_id=device_id
    )
    client.enable_reconnect(list(urls), FAST)
    run(client.open())
    return client


def _seqs(client: DeviceClient, conv: str) -> list[int]:
    return [
        int((f.data or {})["seq"]) for f in client.find("message", {"conversation_id": conv}, 0)
    ]


def test_a_cut_connection_resumes_from_the_last_seq_without_gap_or_duplicate(
    server: ServerProcess, room: str, proxy: TcpProxy
) -> None:
    phone = _client("alice-phone", f"ws://{proxy.address}/ws")
    laptop = _client("alice-laptop", ws_url_for(server.base_url))
    try:
        for n in range(3):
            run(laptop.send_message(room, {"n": n}))
        run(phone.wait_for("message", {"conversation_id": room, "seq": 3}, 5, since=0))
        proxy.cut()  # the phone's connection is reset; new ones are refused until restored
        for n in range(3, 7):
            run(laptop.send_message(room, {"n": n}))
        proxy.restore()
        record = run(phone.wait_reconnects(1, 15))
        run(phone.wait_for("message", {"conversation_id": room, "seq": 7}, 5, since=0))
        assert record.ok and record.close_code == 1006 and record.recovered == {room: True}
        assert phone.hello_resumes[-1] == {room: 3}
        assert _seqs(phone, room) == list(range(1, 8))
    finally:
        run(phone.close())
        run(laptop.close())


def test_the_outbox_is_re_sent_with_the_same_key_after_a_reconnect(
    server: ServerProcess, room: str, proxy: TcpProxy
) -> None:
    phone = _client("alice-phone", f"ws://{proxy.address}/ws")
    try:
        proxy.cut()
        with pytest.raises(ClientError):
            run(phone.send_message(room, {"text": "sent while cut"}, "offline-1"))
        assert list(phone.outbox) == ["offline-1"]
        proxy.restore()
        record = run(phone.wait_reconnects(1, 15))
        assert record.ok and record.resent == 1 and not phone.outbox
        assert [r.kind for r in phone.send_log if r.client_msg_id == "offline-1"] == ["ack"]
        with psycopg2.connect(DB_URL) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM messages WHERE sender_device_id = %s AND client_msg_id = %s",
                (phone.device_id, "offline-1"),
            )
            assert cur.fetchone() == (1,)
        conn.close()
    finally:
        run(phone.close())


def test_a_lost_node_fails_over_to_the_next_url(
    server: ServerProcess, room: str, proxy: TcpProxy
) -> None:
    direct = ws_url_for(server.base_url)
    phone = _client("alice-phone", f"ws://{proxy.address}/ws", direct)
    try:
        proxy.close()  # the first "node" is gone for good
        record = run(phone.wait_reconnects(1, 15))
        assert record.ok and record.url == direct and phone.connected
    finally:
        run(phone.close())
