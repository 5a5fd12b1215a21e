"""The reference model of the protocol (no server): its predictions, and how walks are written."""

from __future__ import annotations

import pytest
from ccskit.keywords.model import _budget_seconds
from ccskit.model.machine import pick, sized_body
from ccskit.model.runner import parse_seed
from ccskit.model.state import (
    MEMBER_CATEGORY,
    MESSAGE_CATEGORY,
    RECEIPT_CATEGORY,
    Limits,
    Model,
    body_bytes,
)
from ccskit.model.steps import Step, Walk


def model(replay_limit: int | None = 3) -> Model:
    """alice (phone, laptop) and bob (tablet) in ``room``; carol (phone) in nothing."""
    m = Model(Limits(max_body_bytes=64, replay_limit=replay_limit, max_connections_per_user=2))
    m.add_user("alice", ["a-phone", "a-laptop"])
    m.add_user("bob", ["b-tablet"])
    m.add_user("carol", ["c-phone"])
    m.add_conversation("room", ["alice", "bob"])
    return m


def messages_seen(m: Model, device: str) -> list[int]:
    return [item[2] for item in m.devices[device].stream.get((MESSAGE_CATEGORY, "room"), [])]


def test_a_send_gets_the_next_seq_and_reaches_every_connected_member_device() -> None:
    m = model()
    for device in ("a-phone", "b-tablet", "c-phone"):
        m.connect(device, "valid", None)
    first = m.send("a-phone", "room", "k1", {"text": "hi"})
    second = m.send("b-tablet", "room", "k1", {"text": "hi"})  # keys are per device
    assert (first.fields["seq"], second.fields["seq"]) == (1, 2)
    assert messages_seen(m, "a-phone") == [1, 2]  # the sending connection included
    assert messages_seen(m, "b-tablet") == [1, 2]
    assert messages_seen(m, "c-phone") == []


def test_a_retry_is_a_duplicate_for_the_same_json_value_and_a_conflict_otherwise() -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    m.send("a-phone", "room", "k1", {"text": "hi", "n": 1})
    retry = m.send("a-phone", "room", "k1", {"n": 1, "text": "hi"})
    assert retry.fields == {
        "seq": 1,
        "client_msg_id": "k1",
        "duplicate": True,
        "conversation_id": "room",
    }
    assert m.send("a-phone", "room", "k1", {"text": "other"}).codes == ("idempotency_conflict",)
    assert messages_seen(m, "a-phone") == [1]  # a retry broadcasts nothing


@pytest.mark.parametrize(
    ("cmid", "codes"),
    [
        ("", ("bad_request",)),
        ("a\x00b", ("bad_request",)),
        ("x" * 129, ("too_large",)),
        ("x" * 128, ()),
    ],
)
def test_client_msg_id_limits(cmid: str, codes: tuple[str, ...]) -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    assert m.send("a-phone", "room", cmid, {"t": 1}).codes == codes


@pytest.mark.parametrize(("width", "offset"), [(2, -1), (3, 0), (4, 1), (2, 1)])
def test_sized_bodies_hit_the_byte_limit_exactly(width: int, offset: int) -> None:
    body = sized_body(64 + offset, width)
    assert body_bytes(body) == 64 + offset
    m = model()
    m.connect("a-phone", "valid", None)
    expected = ("too_large",) if offset > 0 else ()
    assert m.send("a-phone", "room", f"k{width}{offset}", body).codes == expected


def test_a_member_added_while_offline_replays_only_after_its_join_point() -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    for n in range(1, 4):
        m.send("a-phone", "room", f"k{n}", {"n": n})
    m.add_member("room", "carol")
    expect = m.connect("c-phone", "valid", None)
    assert expect.fields["conversations"]["room"] == {
        "head_seq": 3,
        "from_seq": 3,
        "recovered": True,
    }
    assert messages_seen(m, "c-phone") == []


def test_too_many_missed_replays_the_newest_and_says_where_it_starts() -> None:
    m = model(replay_limit=3)
    m.connect("a-phone", "valid", None)
    for n in range(1, 6):
        m.send("a-phone", "room", f"k{n}", {"n": n})
    info = m.connect("b-tablet", "valid", None).fields["conversations"]["room"]
    assert info == {
        "head_seq": 5,
        "from_seq": 2,
        "recovered": False,
        "reason": "too_many_missed",
        "truncated": True,
        "oldest_available_seq": 3,
    }
    assert messages_seen(m, "b-tablet") == [3, 4, 5]


def test_resume_at_the_replay_limit_is_recovered_and_ahead_replays_nothing() -> None:
    m = model(replay_limit=3)
    m.connect("a-phone", "valid", None)
    for n in range(1, 5):
        m.send("a-phone", "room", f"k{n}", {"n": n})
    at_limit = m.connect("b-tablet", "valid", {"room": 1}).fields["conversations"]["room"]
    assert at_limit == {"head_seq": 4, "from_seq": 1, "recovered": True}
    m.disconnect("b-tablet")
    ahead = m.connect("b-tablet", "valid", {"room": 9}).fields["conversations"]["room"]
    assert ahead["reason"] == "seq_ahead_of_head" and ahead["from_seq"] == 4
    assert messages_seen(m, "b-tablet") == []


@pytest.mark.parametrize("bad", [-1, "abc", 1.5, 2**63, True, None])
def test_a_malformed_resume_fails_closed(bad: object) -> None:
    expect = model().connect("a-phone", "valid", {"room": bad})
    assert (expect.codes, expect.close) == (("bad_request",), 4500)


@pytest.mark.parametrize(
    ("token", "code", "close"),
    [
        ("expired", "token_expired", 4003),
        ("just-expired", "token_expired", 4003),
        ("valid-in-5s", "auth_failed", 4501),
        ("not-yet-valid", "auth_failed", 4501),
        ("bad-signature", "auth_failed", 4501),
        ("other-users-device", "auth_failed", 4501),
    ],
)
def test_refused_tokens(token: str, code: str, close: int) -> None:
    expect = model().connect("a-phone", token, None)
    assert (expect.codes, expect.close) == ((code,), close)


def test_the_connection_cap_refuses_the_next_hello() -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    m.connect("a-laptop", "valid", None)
    m.users["alice"].append("a-watch")
    m.devices["a-watch"] = type(m.devices["a-phone"])("a-watch", "alice")
    expect = m.connect("a-watch", "valid", None)
    assert (expect.codes, expect.close) == (("rate_limited",), 4005)


def test_receipts_move_forward_only_and_reach_the_other_devices_of_every_member() -> None:
    m = model()
    for device in ("a-phone", "a-laptop", "b-tablet"):
        m.connect(device, "valid", None)
    for n in range(1, 4):
        m.send("a-phone", "room", f"k{n}", {"n": n})
    read = m.receipt("b-tablet", "room", "read", 2)
    assert read.fields == {
        "delivered_upto": 2,
        "read_upto": 2,
        "changed": True,
        "conversation_id": "room",
    }
    assert m.receipt("b-tablet", "room", "delivered", 1).fields["changed"] is False
    assert m.receipt("b-tablet", "room", "read", 4).codes == ("out_of_range",)
    assert m.receipt("b-tablet", "room", "read", 0).codes == ("bad_request",)
    assert m.receipt("c-phone", "room", "read", 1).codes == ("forbidden",)
    key = (RECEIPT_CATEGORY, "room")
    assert m.devices["a-laptop"].stream[key] == [("receipt", "room", "b-tablet", 2, 2)]
    assert key not in m.devices["b-tablet"].stream  # the mover gets only its ack


def test_edits_conflict_on_a_stale_version_and_a_deleted_message() -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    m.connect("b-tablet", "valid", None)
    m.send("a-phone", "room", "k1", {"v": 1})
    assert m.change("a-laptop", "room", 1, 1, {"v": 2}).fields["version"] == 2
    assert m.change("a-phone", "room", 1, 1, {"v": 3}).codes == ("conflict",)
    assert m.change("b-tablet", "room", 1, 2, {"v": 3}).codes == ("forbidden",)
    assert m.change("a-phone", "room", 2, 1, {"v": 3}).codes == ("not_found",)
    assert m.change("a-phone", "room", 1, 2, delete=True).fields["version"] == 3
    twice = m.change("a-phone", "room", 1, 3, delete=True)
    current = {"version": 3, "body": None, "deleted": True}
    assert twice.codes == ("conflict",) and twice.checks[0][1]({"current": current})
    updates = [
        i
        for i in m.devices["b-tablet"].stream[(MESSAGE_CATEGORY, "room")]
        if i[0] == "message_updated"
    ]
    assert [(i[3], i[4]) for i in updates] == [(2, False), (3, True)]


def test_history_pages_follow_the_direction_and_the_join_point() -> None:
    m = model()
    m.connect("a-phone", "valid", None)
    for n in range(1, 6):
        m.send("a-phone", "room", f"k{n}", {"n": n})
    newest = m.history("a-phone", "room", None, None, 2)
    assert newest.fields["has_more"] is True
    assert newest.checks[0][1]({"messages": [_entry(m, 4), _entry(m, 5)]})
    oldest = m.history("a-phone", "room", 3, None, 5)
    assert oldest.fields["has_more"] is False
    assert oldest.checks[0][1]({"messages": [_entry(m, 4), _entry(m, 5)]})
    m.add_member("room", "carol")
    assert m.history("c-phone", "room", None, None, None).checks[0][1]({"messages": []})
    assert m.history("a-phone", "room", None, None, 101).codes == ("bad_request",)


def _entry(m: Model, seq: int) -> dict[str, object]:
    msg = m.conversations["room"].messages[seq - 1]
    return {
        "seq": seq,
        "sender_device_id": msg.sender_device_id,
        "version": msg.version,
        "client_msg_id": msg.client_msg_id,
        "deleted": msg.deleted,
        "body": msg.body,
    }


def test_presence_reaches_sharers_and_own_devices_and_strangers_see_nothing() -> None:
    m = model()
    m.connect("a-laptop", "valid", None)
    m.connect("b-tablet", "valid", None)
    m.connect("c-phone", "valid", None)
    events = m.connect("a-phone", "valid", None).presence
    assert sorted(e.watcher for e in events) == ["a-laptop", "b-tablet"]
    assert m.presence_answer("carol", "alice") == {
        "status": "offline",
        "devices": {},
        "stranger": True,
    }
    assert m.presence_answer("bob", "alice")["devices"] == {
        "a-phone": "online",
        "a-laptop": "online",
    }


def test_membership_frames_go_to_members_and_the_changed_user() -> None:
    m = model()
    m.connect("b-tablet", "valid", None)
    m.connect("c-phone", "valid", None)
    m.add_member("room", "carol")
    m.remove_member("room", "carol")
    for device in ("b-tablet", "c-phone"):
        assert m.devices[device].stream[(MEMBER_CATEGORY, "room")] == [
            ("member_added", "room", "carol"),
            ("member_removed", "room", "carol"),
        ]
    m.send("b-tablet", "room", "k1", {"n": 1})
    assert messages_seen(m, "c-phone") == []


def test_a_walk_reads_as_numbered_steps_and_as_a_robot_test() -> None:
    walk = Walk({"real-u0": "u0", "real-d0": "u0-d0", "real-c0": "c0"})
    walk.setup({"u0": ["u0-d0"]}, {"c0": ["u0"]})
    walk.add(
        Step(
            "connect",
            "real-d0 connects with a valid token",
            kind="connect",
            device="u0-d0",
            token="valid",
            resume={"real-c0": "abc"},
        )
    )
    walk.add(
        Step(
            "send",
            "real-d0 sends",
            kind="send",
            device="u0-d0",
            conv="c0",
            cmid="k1",
            body={"text": "é" * 50},
            rest=False,
        )
    )
    walk.fail(["real-d0 expected seq 1 in real-c0"])
    text = walk.english()
    assert "1. u0-d0 connects with a valid token\n2. u0-d0 sends" in text
    assert "u0-d0 expected seq 1 in c0" in text
    robot = walk.robot("Repro")
    assert 'Connect Device    u0-d0    resume=${{ {$c0: "abc"} }}' in robot
    assert "client_msg_id=k1" in robot and '"é" * 50' in robot


def test_draws_keep_their_meaning_and_budgets_and_seeds_parse() -> None:
    class Data:
        def draw(self, strategy: object, label: str = "") -> int:
            return 2

    assert pick(Data(), ["d", "b"], ["a", "b", "c", "d"], "x") == "d"  # type: ignore[arg-type]
    assert pick(Data(), ["a"], ["a", "b", "c", "d"], "x") == "a"  # type: ignore[arg-type]
    assert [_budget_seconds(t, 5) for t in ("", "90", "90s", "10m", "1h")] == [5, 90, 90, 600, 3600]
    assert parse_seed("123") == (123, 0) and parse_seed("123.7") == (123, 7)


def test_a_failing_stream_is_checked_in_the_robot_test_by_waits_and_refusals() -> None:
    walk = Walk({"real-d0": "u0-d0", "real-c0": "c0"})
    want = [("message", "real-c0", 1, 1, False, "{}"), ("message", "real-c0", 2, 1, False, "{}")]
    got = [want[0], ("message_updated", "real-c0", 1, 2, False, "{}")]
    lines = walk.stream_check("real-d0", ("messages", "real-c0"), want, got)
    assert lines == [
        "Wait For Frame    u0-d0    message    conversation_id=${c0}    seq=${2}    version=${1}"
        "    deleted=${False}",
        "Should Not Receive Frame    u0-d0    message_updated    window=1s    conversation_id=${c0}"
        "    seq=${1}    version=${2}    deleted=${False}",
    ]
