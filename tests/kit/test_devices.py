"""Client machinery of the device keywords against a tiny local WebSocket server (real sockets)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from ccskit.closecodes import describe_close, may_reconnect
from ccskit.context import KitContext
from ccskit.frames import Frame, matches, values_equal
from ccskit.keywords.devices import DeviceKeywords, describe_seq_problems
from ccskit.loop import shared_loop
from ccskit.percentile import latency_summary
from fake_ccs import FakeCcs

SHORT = timedelta(seconds=0.3)


@pytest.fixture
def devices(fake: FakeCcs) -> Iterator[DeviceKeywords]:
    ctx = KitContext()
    ctx.target.base_url = f"http://127.0.0.1:{fake.port}"
    # The fake server takes any conversation id; the kit only resolves names it knows.
    ctx.fixtures.conversations.update(
        {c: c for c in ("room", "quiet-room", "d", "r", "resume-room")}
    )
    lib = DeviceKeywords(ctx)
    yield lib
    lib.close_all_devices()


def connect(lib: DeviceKeywords, alias: str) -> None:
    lib.connect_device(alias, user_id=f"u-{alias}", device_id=alias, token="t")


def frame(data: dict[str, object]) -> Frame:
    return Frame(0, data, json.dumps(data), 0.0, 0.0)


# ----- pure logic ------------------------------------------------------------------------------
def test_robot_strings_match_json_numbers_booleans_and_nested_fields() -> None:
    f = frame({"type": "welcome", "seq": 3, "ok": True, "conversations": {"c1": {"n": None}}})
    assert matches(f, "welcome", {"seq": "3", "ok": "true", "conversations.c1.n": "null"})
    assert matches(f, "*", {"seq": 3})
    assert not matches(f, "welcome", {"seq": "4"})
    assert not matches(f, "message", {})
    assert not matches(f, None, {"missing": "x"})
    assert not values_equal(1, True)


def test_close_codes_are_spelled_out_with_the_reconnect_rule() -> None:
    assert describe_close(4001) == "4001 slow consumer"
    assert describe_close(4321, "custom") == "4321 reconnect allowed (custom)"
    assert describe_close(4777) == "4777 do not reconnect"
    assert may_reconnect(4004) and not may_reconnect(4501) and not may_reconnect(1009)
    assert may_reconnect(1000)  # the protocol table allows it; a client closing itself never does


def test_an_unknown_fixture_name_fails_with_the_known_names(devices: DeviceKeywords) -> None:
    connect(devices, "phone")
    with pytest.raises(
        AssertionError, match=r"no conversation fixture named 'rom' \(known names: d, "
    ):
        devices.send_message("phone", "rom", "typo")
    with pytest.raises(AssertionError, match="no device fixture named 'fone'"):
        devices.connect_device("fone")


def test_sequence_problems_are_named() -> None:
    assert describe_seq_problems([1, 2, 2, 4], [1, 2, 3, 4]) == "missing [3], duplicated [2]"
    assert describe_seq_problems([2, 1], [1, 2]) == "out of order"
    assert latency_summary([5.0, 1.0, 3.0])["p50_ms"] == 3.0  # nearest rank: 2nd of 3


# ----- against real sockets --------------------------------------------------------------------
def test_loop_keeps_receiving_between_keywords(devices: DeviceKeywords, fake: FakeCcs) -> None:
    connect(devices, "phone")
    push = {"type": "push", "delay": 0.1, "frames": [{"type": "presence", "n": 1}]}
    devices.send_raw("phone", json.dumps(push))
    time.sleep(0.4)  # no keyword runs now: the background loop must still receive
    received = devices.received_frames("phone", "presence")
    assert received == [{"type": "presence", "n": 1}]
    assert shared_loop() is devices.ctx.loop and devices.ctx.loop.alive


def test_send_waits_for_ack_and_message_reaches_other_devices(devices: DeviceKeywords) -> None:
    connect(devices, "phone")
    connect(devices, "laptop")
    began = time.monotonic()
    ack = devices.send_message("phone", "room", "hi")
    assert ack["type"] == "ack" and ack["seq"] >= 1
    got = devices.wait_for_message("laptop", "room", ack["seq"], timeout=SHORT)
    took_ms = (time.monotonic() - began) * 1000.0
    assert got["body"] == {"text": "hi"}
    assert devices.last_seq_seen("laptop", "room") == ack["seq"]
    assert devices.outbox_size("phone") == 0
    latency = devices.delivery_latency("laptop", "room", ack["client_msg_id"])
    assert 0 < latency <= took_ms, f"latency {latency} ms outside the {took_ms:.3f} ms it took"


def test_wait_failure_message_has_expectation_timeout_and_last_frames(
    devices: DeviceKeywords,
) -> None:
    connect(devices, "phone")
    with pytest.raises(AssertionError) as info:
        devices.wait_for_frame("phone", "message", timeout=SHORT, seq="99")
    text = str(info.value)
    assert "'phone' expected message {seq='99'} within 0.3 s, saw none" in text
    assert "connection of 'phone': open" in text
    assert '"type": "welcome"' in text


def test_close_code_is_spelled_out_in_failures(devices: DeviceKeywords) -> None:
    connect(devices, "phone")
    devices._run(devices._device("phone").send_raw('{"type":"close_with","code":4001}'), 2)
    assert devices.device_close_code("phone") == "4001 slow consumer"
    with pytest.raises(AssertionError, match="closed with 4001 slow consumer"):
        devices.wait_for_frame("phone", "message", timeout=SHORT)


def test_should_not_receive_fails_on_a_matching_frame(devices: DeviceKeywords) -> None:
    connect(devices, "phone")
    connect(devices, "laptop")
    devices.send_message("phone", "quiet-room", "x")
    with pytest.raises(AssertionError, match="expected no message"):
        devices.should_not_receive_frame("laptop", "message", window=SHORT)
    devices.mark_frames("laptop")
    devices.should_not_receive_frame("laptop", "message", window=SHORT)


def test_order_check_reports_duplicates(devices: DeviceKeywords) -> None:
    connect(devices, "phone")
    dup = [{"type": "message", "conversation_id": "d", "seq": s} for s in (1, 2, 2, 3)]
    devices.send_raw("phone", json.dumps({"type": "push", "frames": dup}))
    with pytest.raises(AssertionError, match=r"saw \[1, 2, 2, 3\] \(duplicated \[2\]\)"):
        devices.messages_should_be_received_in_order("phone", "d", 1, 3, timeout=SHORT)


def test_outbox_keeps_unacked_sends_and_resend_reuses_the_key(
    devices: DeviceKeywords, fake: FakeCcs
) -> None:
    connect(devices, "phone")
    fake.hold_acks = True
    try:
        reply = devices.send_message_expecting_reply("phone", "r", "keep me", "cm-1")
    finally:
        fake.hold_acks = False
    assert reply["code"] == "unavailable" and devices.outbox_size("phone") == 1
    [ack] = devices.resend_outbox("phone")
    assert ack["client_msg_id"] == "cm-1" and devices.outbox_size("phone") == 0


def test_reconnect_with_resume_names_the_last_seq(devices: DeviceKeywords, fake: FakeCcs) -> None:
    connect(devices, "phone")
    ack = devices.send_message("phone", "resume-room", "one")
    devices.wait_for_message("phone", "resume-room", ack["seq"], timeout=SHORT)
    devices.disconnect_device("phone")
    devices.connect_device("phone", resume=True)
    assert fake.hellos[-1]["resume"] == {"resume-room": ack["seq"]}
