"""`No Duplicate Message Should Arrive` watches the whole window, so a late duplicate fails it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from ccskit.context import KitContext
from ccskit.keywords.devices import DeviceKeywords
from fake_ccs import FakeCcs

WINDOW = timedelta(seconds=0.6)


@pytest.fixture
def devices(fake: FakeCcs) -> Iterator[DeviceKeywords]:
    ctx = KitContext()
    ctx.target.base_url = f"http://127.0.0.1:{fake.port}"
    ctx.fixtures.conversations.update({"dup-room": "dup-room"})
    lib = DeviceKeywords(ctx)
    lib.connect_device("tablet", user_id="u-tablet", device_id="tablet", token="t")
    yield lib
    lib.close_all_devices()


def push(lib: DeviceKeywords, seqs: list[int], delay: float = 0.0) -> None:
    frames = [{"type": "message", "conversation_id": "dup-room", "seq": s} for s in seqs]
    lib.send_raw("tablet", json.dumps({"type": "push", "delay": delay, "frames": frames}))


def test_a_duplicate_after_the_in_order_check_passed_fails(devices: DeviceKeywords) -> None:
    push(devices, [1, 2, 3])
    devices.messages_should_be_received_in_order("tablet", "dup-room", 1, 3)
    push(devices, [2], delay=0.2)  # comes after the in-order check already passed
    with pytest.raises(AssertionError, match=r"received seq 2 of 'dup-room' 2 times"):
        devices.no_duplicate_message_should_arrive("tablet", window=WINDOW)


def test_distinct_messages_pass_after_the_window(devices: DeviceKeywords) -> None:
    push(devices, [1, 2, 3])
    devices.messages_should_be_received_in_order("tablet", "dup-room", 1, 3)
    devices.no_duplicate_message_should_arrive("tablet", window=WINDOW)
