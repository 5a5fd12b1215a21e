"""The kit's libraries against the real reference server (child process, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from ccskit.api import CcsApi
from ccskit.client import ConnectRefused, DeviceClient
from ccskit.config import database_url_for
from ccskit.context import KitContext
from ccskit.ids import RUN_TAG
from ccskit.keywords.database import DatabaseKeywords
from ccskit.keywords.devices import DeviceKeywords
from ccskit.loop import shared_loop
from ccskit.server import ServerProcess
from ccskit.tokens import mint_token

DB_URL = database_url_for("kit_pytest")
# One context for the module, as the CCS library holds one for a robot process.
CTX = KitContext()
target, registry = CTX.target, CTX.fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(env={"DATABASE_URL": DB_URL}, log_dir=tmp_path_factory.mktemp("srv"))
    target.base_url = proc.start(timeout=60)
    target.pid = proc.pid
    yield proc
    proc.stop()


@pytest.fixture
def room(server: ServerProcess) -> str:
    api = CcsApi(server.base_url, registry)
    for user, devices in (("alice", ["alice-phone", "alice-laptop"]), ("carol", ["carol-phone"])):
        api.create_user(user)
        for device in devices:
            api.create_device(user, device)
    return api.create_conversation("room", ["alice"])


@pytest.fixture
def devices(server: ServerProcess) -> Iterator[DeviceKeywords]:
    lib = DeviceKeywords(CTX)
    yield lib
    lib.close_all_devices()


def test_server_is_a_healthy_child_process_on_a_free_port(server: ServerProcess) -> None:
    assert server.pid is not None and server.proc is not None and server.proc.poll() is None
    assert requests.get(f"{server.base_url}/health", timeout=5).status_code == 200
    assert target.ws_url == server.base_url.replace("http://", "ws://") + "/ws"


def test_fixture_ids_are_unique_per_call_and_carry_the_run_tag(room: str) -> None:
    first = registry.conversation("room")
    api = CcsApi(target.require(), registry)
    second = api.create_conversation("room", ["alice"])
    assert first != second and RUN_TAG in second and second.startswith("room-")


def test_message_flow_with_latency_and_direct_insert(devices: DeviceKeywords, room: str) -> None:
    devices.connect_device("alice-phone")
    devices.connect_device("alice-laptop")
    devices.connect_device("carol-phone")
    ack = devices.send_message("alice-phone", "room", "hi")
    assert devices.wait_for_message("alice-laptop", "room", ack["seq"])["body"] == {"text": "hi"}
    assert 0 <= devices.delivery_latency("alice-laptop", "room", ack["client_msg_id"]) < 1000
    db = DatabaseKeywords(CTX)
    db.connect_to_ccs_database(DB_URL)
    try:
        row = db.insert_message_as_another_program("room", "alice-phone", "from sql")
    finally:
        db.disconnect_from_ccs_database()
    assert row["seq"] == ack["seq"] + 1
    devices.messages_should_be_received_in_order("alice-laptop", "room", 1, row["seq"])
    devices.should_not_receive_frame("carol-phone", "message")


def test_a_bad_token_on_the_upgrade_is_refused_with_401(server: ServerProcess) -> None:
    client = DeviceClient("intruder", target.ws_url, "not-a-jwt", token_in="header")
    with pytest.raises(ConnectRefused) as info:
        shared_loop().run(client.open(timeout_s=5), 10)
    assert info.value.status == 401


def test_graceful_stop_closes_devices_with_1012(tmp_path: Path) -> None:
    own = ServerProcess(env={"DATABASE_URL": DB_URL}, log_dir=tmp_path)
    base = own.start(timeout=60)
    api = CcsApi(base, registry)
    api.create_user("dave")
    api.create_device("dave", "dave-phone")
    user_id, device_id = registry.device("dave-phone")
    url = base.replace("http://", "ws://") + "/ws"
    client = DeviceClient("dave-phone", url, mint_token(user_id, device_id), device_id=device_id)
    shared_loop().run(client.open(timeout_s=5), 10)
    own.stop()
    assert own.proc is not None and own.proc.returncode is not None
    with pytest.raises(AssertionError, match="1012 service restart"):
        shared_loop().run(client.wait_for("message", {"seq": 999}, 5), 10)


def test_listen_receives_a_notify_and_times_out_with_a_clear_message(
    server: ServerProcess,
) -> None:
    db = DatabaseKeywords(CTX)
    db.connect_to_ccs_database(DB_URL)
    try:
        db.listen_to_channel("kit_test_channel")
        db.query_as_dictionaries("SELECT pg_notify(%s, %s) AS sent", "kit_test_channel", "hello")
        assert db.wait_for_notification("kit_test_channel") == "hello"
        with pytest.raises(AssertionError, match=r"NOTIFY on 'kit_test_channel' within 0\.2 s"):
            db.wait_for_notification("kit_test_channel", timedelta(seconds=0.2))
    finally:
        db.disconnect_from_ccs_database()


def test_refusals_are_described_by_http_status_or_error_and_close_code(
    devices: DeviceKeywords, room: str
) -> None:
    how = devices.connect_device_expecting_failure("alice-phone", token="garbage")
    assert how == "auth_failed, closed with 4501 authentication failed"
    how = devices.connect_device_expecting_failure(
        "alice-laptop", token="garbage", token_in="header"
    )
    assert how == "HTTP 401"
    welcome = devices.connect_device("carol-phone", resume={room: 0})
    assert welcome["conversations"][room]["reason"] == "forbidden"
