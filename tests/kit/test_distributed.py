"""The distributed load's parts without Locust processes: dealing, Locust stats batches, records
on the wire and the checker over several workers, and the gevent <-> asyncio bridge."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import gevent
import pytest
from ccskit.bench.fleet import Device, Fleet, Room
from ccskit.checker import StoredRow, body_hash, check
from ccskit.distributed.bridge import Bridge
from ccskit.distributed.plan import RunPlan, Share, build_fleet, deal
from ccskit.distributed.records import Collected


def plan(**kw: object) -> RunPlan:
    values: dict[str, object] = {"prefix": "t", "rooms": 3, "members": 4, "ws_urls": ("ws://a/ws",)}
    values.update(kw)
    return RunPlan(**values)  # type: ignore[arg-type]


# ----- dealing ---------------------------------------------------------------------------------


def test_the_fleet_is_padded_to_a_multiple_of_the_workers() -> None:
    fleet = build_fleet(plan(rooms=3, members=4, idle=1), workers=5)
    assert len(fleet.devices) == 15  # 12 in rooms + 1 idle, padded to 15
    assert len({d.device_id for d in fleet.devices}) == 15


def test_every_room_spans_every_worker_and_each_device_is_dealt_once() -> None:
    p = plan(rooms=4, members=6, ws_urls=("ws://n1/ws", "ws://n2/ws"))
    fleet = build_fleet(p, workers=3)
    shares = deal(p, fleet, 3)
    dealt = [s.device_id for share in shares for s in share.slots]
    assert sorted(dealt) == sorted(d.device_id for d in fleet.devices)
    assert {len(share.slots) for share in shares} == {len(fleet.devices) // 3}
    for room in fleet.rooms:
        holders = {
            share.worker
            for share in shares
            for s in share.slots
            if s.conversation_id == room.conversation_id
        }
        assert holders == {0, 1, 2}, f"{room.conversation_id} held by {holders}"
    urls = Counter(s.ws_url for share in shares for s in share.slots)
    assert (
        set(urls) == {"ws://n1/ws", "ws://n2/ws"}
        and abs(urls["ws://n1/ws"] - urls["ws://n2/ws"]) <= 1
    )


def test_source_addresses_rotate_per_node_and_a_share_survives_the_wire() -> None:
    p = plan(rooms=2, members=4, source_addresses=("127.0.0.2", "127.0.0.3"))
    share = deal(p, build_fleet(p, 1), 1)[0]
    assert [s.source_address for s in share.slots[:4]] == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.2",
        "127.0.0.3",
    ]
    again = Share.from_dict(share.as_dict())
    assert again.plan == p and again.slots == share.slots


def test_a_sender_sends_its_share_of_the_room_rate() -> None:
    assert plan(members=10, rate_per_conversation=5).sender_interval_s() == 2.0
    assert plan(members=10, senders=2, rate_per_conversation=5).sender_interval_s() == 0.4
    assert plan(rate_per_conversation=0).sender_interval_s() == float("inf")


def test_dealing_refuses_no_worker_and_no_server() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        deal(plan(), build_fleet(plan(), 1), 0)
    with pytest.raises(ValueError, match="no server"):
        deal(plan(ws_urls=()), build_fleet(plan(), 1), 1)


# ----- Locust statistics in batches -------------------------------------------------------------


def test_a_batch_gives_locust_the_same_figures_as_one_call_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # importing locust monkey-patches the whole process unless told not to: not in pytest's
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
    from ccskit.distributed.stats import log_many
    from locust.stats import RequestStats

    rng = random.Random(7)
    latencies = [rng.choice([0, 1, 2, 3, 7, 40, 180, 2300]) for _ in range(5000)]
    one_by_one, batched = RequestStats(), RequestStats()
    for ms in latencies:
        one_by_one.log_request("WS", "deliver", ms, 0)
    assert log_many(batched, "deliver", Counter(latencies)) == 5000
    a, b = one_by_one.get("deliver", "WS"), batched.get("deliver", "WS")
    assert (b.num_requests, b.total_response_time) == (a.num_requests, a.total_response_time)
    assert (b.min_response_time, b.max_response_time) == (a.min_response_time, a.max_response_time)
    assert b.response_times == a.response_times
    for q in (0.5, 0.95, 0.99):
        assert b.get_response_time_percentile(q) == a.get_response_time_percentile(q)
    assert batched.total.num_requests == one_by_one.total.num_requests == 5000


# ----- records from several workers into one check -----------------------------------------------


def _two_workers() -> tuple[Collected, list[StoredRow]]:
    """Worker 0 holds sender a1 and receiver a2, worker 1 receiver b1; room r, three messages."""
    stored, sent = [], []
    for seq in (1, 2, 3):
        h = body_hash({"n": seq})
        stored.append(StoredRow(100 + seq, "r", seq, "a1", f"m{seq}", h))
        sent.append(
            ["a1", f"m{seq}", "r", h, 10.0 + seq, 10.0 + seq, 10.1 + seq, 100 + seq, seq, ""]
        )
    recv = {d: [[d, "r", s, 100 + s, 10.05 + s] for s in (1, 2, 3)] for d in ("a1", "a2", "b1")}
    c = Collected()
    c.add(0, {"sent": sent, "part": 0, "parts": 3})
    c.add(
        0,
        {
            "recv": recv["a1"] + recv["a2"],
            "expect": [["a1", "r"], ["a2", "r"]],
            "part": 1,
            "parts": 3,
        },
    )
    c.add(0, {"summary": {"devices": 2}, "part": 2, "parts": 3})
    c.add(1, {"recv": recv["b1"], "expect": [["b1", "r"]], "part": 0, "parts": 2})
    return c, stored


def test_records_of_two_workers_check_clean_and_give_latency() -> None:
    c, stored = _two_workers()
    c.add(1, {"summary": {"devices": 1}, "part": 1, "parts": 2})
    assert c.complete(2)
    result = check(c.history(stored))
    assert result.ok, result.describe()
    assert result.info["deliveries"] == 9
    delivery, ack = c.latencies_ms()
    assert len(delivery) == 9 and all(abs(ms - 50) < 1e-6 for ms in delivery)
    assert len(ack) == 3 and all(abs(ms - 100) < 1e-6 for ms in ack)


def test_a_message_missing_on_the_other_worker_is_found() -> None:
    c, stored = _two_workers()
    c.workers[1].recv.pop(1)  # b1 never got seq 2
    result = check(c.history(stored))
    assert result.counts["missing"] == 1
    assert "b1 never received r seq 2" in result.describe()


def test_a_duplicate_and_a_reordering_across_workers_are_found() -> None:
    c, stored = _two_workers()
    rows = c.workers[1].recv
    rows.append(list(rows[0]))  # b1 got seq 1 twice
    c.workers[0].recv[0], c.workers[0].recv[1] = c.workers[0].recv[1], c.workers[0].recv[0]
    result = check(c.history(stored))
    assert result.counts["duplicated"] == 1 and result.counts["out_of_order"] == 1


def test_an_acked_message_not_stored_is_lost() -> None:
    c, stored = _two_workers()
    result = check(c.history(stored[:2]))
    assert result.counts["lost"] == 1


def test_a_worker_whose_parts_did_not_all_arrive_is_incomplete() -> None:
    c, _ = _two_workers()
    assert not c.complete(2)  # worker 1 sent 1 of 2 parts


# ----- the bridge ---------------------------------------------------------------------------------


def test_the_bridge_runs_coroutines_in_its_own_thread_and_calls_back_into_gevent() -> None:
    bridge = Bridge()
    try:

        async def where() -> int:
            await asyncio.sleep(0.01)
            return threading.get_ident()

        assert bridge.run(where(), 5) != threading.get_ident()
        got: list[int] = []
        done = gevent.event.Event()

        def back(value: int) -> None:
            got.append(value)
            done.set()

        bridge.call(lambda: bridge.notify(back, 42))
        assert done.wait(5) and got == [42]

        async def boom() -> None:
            raise ValueError("from the loop")

        with pytest.raises(ValueError, match="from the loop"):
            bridge.run(boom(), 5)

        async def slow() -> None:
            await asyncio.sleep(10)

        with pytest.raises(TimeoutError):
            bridge.run(slow(), 0.2)
    finally:
        bridge.stop()


def test_fleet_helpers_accept_rooms_without_senders() -> None:
    room = Room("c", [Device("u", "d")], [])
    p = plan(rooms=0, members=1)
    shares = deal(p, Fleet([Device("u", "d")], [room]), 1)
    assert shares[0].slots[0].conversation_id == "c" and not shares[0].slots[0].sends
