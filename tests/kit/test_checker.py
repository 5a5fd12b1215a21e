"""The consistency checker finds every anomaly it names, and passes a clean history."""

from __future__ import annotations

import dataclasses

import pytest

# Robot puts keywords/ on the path and the libraries import ``ccskit``; do the same here so the
# modules are not imported twice under two names.
from ccskit.checker import (
    ANOMALIES,
    Ack,
    Attempt,
    Delivery,
    Expectation,
    History,
    StoredRow,
    body_hash,
    check,
)

CONV = "room"
DEVICES = ("alice-phone", "bob-laptop")


def clean_history(n: int = 4) -> History:
    """alice-phone sends n messages to one room; both devices receive all of them in order."""
    h = History()
    for i in range(1, n + 1):
        cmid = f"m{i}"
        digest = body_hash({"text": f"hello {i}"})
        h.attempts.append(Attempt("alice-phone", cmid, CONV, digest))
        h.acks.append(Ack("alice-phone", cmid, CONV, 100 + i, i))
        h.stored.append(StoredRow(100 + i, CONV, i, "alice-phone", cmid, digest))
    for device in DEVICES:
        h.deliveries[device] = [Delivery(CONV, r.seq, r.message_id) for r in h.stored]
        h.expectations[device] = [Expectation(CONV)]
    return h


def only(result_counts: dict[str, int], anomaly: str) -> None:
    """The named anomaly was found and no other one."""
    assert result_counts[anomaly] >= 1, result_counts
    others = {a: c for a, c in result_counts.items() if a != anomaly and c}
    assert not others, others


def test_clean_history_passes() -> None:
    result = check(clean_history())
    assert result.ok, result.describe()
    assert result.info["acked"] == 4
    assert result.info["deliveries"] == 8
    assert result.summary().startswith("OK")


def test_body_hash_ignores_key_order_and_spacing() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


def test_acknowledged_but_not_stored_is_lost() -> None:
    h = clean_history()
    dropped = h.stored.pop(1)
    for device in DEVICES:
        h.deliveries[device] = [d for d in h.deliveries[device] if d.seq != dropped.seq]
    result = check(h)
    assert result.counts["lost"] == 1
    assert "m2" in result.examples["lost"][0]
    # A removed middle row also leaves a hole in seq: both must be reported.
    assert result.counts["gaps"] == 1
    assert not result.ok


def test_stored_but_never_attempted_is_unexpected() -> None:
    h = clean_history()
    h.stored.append(StoredRow(999, CONV, 5, "mallory-phone", "x1", body_hash("x")))
    for device in DEVICES:
        h.deliveries[device].append(Delivery(CONV, 5, 999))
    result = check(h)
    only(result.counts, "unexpected")
    assert "mallory-phone" in result.examples["unexpected"][0]


def test_delivered_but_not_stored_is_unexpected() -> None:
    h = clean_history()
    h.deliveries["bob-laptop"].append(Delivery(CONV, 9, 909))
    only(check(h).counts, "unexpected")


def test_same_key_stored_twice_is_duplicated() -> None:
    h = clean_history()
    first = h.stored[0]
    h.stored.append(dataclasses.replace(first, message_id=205, seq=5))
    for device in DEVICES:
        h.deliveries[device].append(Delivery(CONV, 5, 205))
    result = check(h)
    only(result.counts, "duplicated")
    assert "m1" in result.examples["duplicated"][0]


def test_same_seq_stored_twice_is_duplicated() -> None:
    h = clean_history()
    h.attempts.append(Attempt("bob-laptop", "b1", CONV, body_hash("b")))
    h.stored.append(StoredRow(300, CONV, 2, "bob-laptop", "b1", body_hash("b")))
    result = check(h)
    assert result.counts["duplicated"] >= 1
    assert any("seq" in e for e in result.examples["duplicated"])


def test_delivered_twice_to_one_device_is_duplicated() -> None:
    h = clean_history()
    h.deliveries["bob-laptop"].insert(2, h.deliveries["bob-laptop"][1])
    result = check(h)
    only(result.counts, "duplicated")
    assert "bob-laptop" in result.examples["duplicated"][0]


def test_delivery_order_is_checked_per_device_and_conversation() -> None:
    h = clean_history()
    bob = h.deliveries["bob-laptop"]
    bob[1], bob[2] = bob[2], bob[1]
    result = check(h)
    only(result.counts, "out_of_order")
    assert "bob-laptop" in result.examples["out_of_order"][0]


def test_interleaving_conversations_is_not_out_of_order() -> None:
    h = clean_history(2)
    digest = body_hash("other")
    h.attempts.append(Attempt("alice-phone", "o1", "other", digest))
    h.acks.append(Ack("alice-phone", "o1", "other", 500, 1))
    h.stored.append(StoredRow(500, "other", 1, "alice-phone", "o1", digest))
    h.deliveries["bob-laptop"].insert(1, Delivery("other", 1, 500))
    assert check(h).ok


def test_hole_in_seq_is_a_gap() -> None:
    h = clean_history()
    h.stored[-1] = dataclasses.replace(h.stored[-1], seq=6)
    h.acks[-1] = dataclasses.replace(h.acks[-1], seq=6)
    for device in DEVICES:
        h.deliveries[device][-1] = Delivery(CONV, 6, h.stored[-1].message_id)
    result = check(h)
    only(result.counts, "gaps")
    assert result.counts["gaps"] == 2  # seq 4 and 5
    assert "no seq 4" in result.examples["gaps"][0]


def test_undelivered_message_is_missing_for_that_device_only() -> None:
    h = clean_history()
    h.deliveries["bob-laptop"].pop()
    result = check(h)
    only(result.counts, "missing")
    assert result.counts["missing"] == 1
    assert "bob-laptop" in result.examples["missing"][0]


def test_expectation_window_limits_what_is_missing() -> None:
    h = clean_history()
    # bob joined after seq 2 and left after seq 3: he needs seq 3 only.
    h.deliveries["bob-laptop"] = [Delivery(CONV, 3, 103)]
    h.expectations["bob-laptop"] = [Expectation(CONV, after_seq=2, upto_seq=3)]
    assert check(h).ok
    h.deliveries["bob-laptop"] = []
    only(check(h).counts, "missing")


def test_ack_that_disagrees_with_storage_is_mismatched() -> None:
    h = clean_history()
    h.acks[0] = dataclasses.replace(h.acks[0], seq=3)
    only(check(h).counts, "mismatched")


def test_retry_acked_with_another_id_is_mismatched() -> None:
    h = clean_history()
    h.acks.append(dataclasses.replace(h.acks[0], message_id=777))
    only(check(h).counts, "mismatched")


def test_duplicate_ack_of_a_retry_is_fine() -> None:
    h = clean_history()
    h.attempts.append(h.attempts[0])
    h.acks.append(h.acks[0])
    assert check(h).ok


def test_changed_body_is_mismatched() -> None:
    h = clean_history()
    h.stored[0] = dataclasses.replace(h.stored[0], body_hash=body_hash("tampered"))
    only(check(h).counts, "mismatched")


def test_edited_body_is_not_a_mismatch() -> None:
    h = clean_history()
    h.stored[0] = dataclasses.replace(h.stored[0], body_hash=body_hash("edited"), version=2)
    assert check(h).ok


def test_sender_order_must_survive_storage() -> None:
    h = clean_history(3)
    # alice sent m1, m2, m3 on one connection; storage put m2 before m1.
    h.stored[0] = dataclasses.replace(h.stored[0], seq=2)
    h.stored[1] = dataclasses.replace(h.stored[1], seq=1)
    h.acks[0] = dataclasses.replace(h.acks[0], seq=2)
    h.acks[1] = dataclasses.replace(h.acks[1], seq=1)
    for device in DEVICES:
        h.deliveries[device] = [
            Delivery(CONV, r.seq, r.message_id) for r in sorted(h.stored, key=lambda r: r.seq)
        ]
    only(check(h).counts, "sender_order")


def test_unacknowledged_attempts_are_indeterminate_not_anomalies() -> None:
    h = clean_history()
    h.attempts.append(Attempt("alice-phone", "lost-in-flight", CONV, body_hash("?")))
    # Stored but its ack never arrived: allowed (the client will retry with the same key).
    h.attempts.append(Attempt("alice-phone", "m5", CONV, body_hash({"text": "hello 5"})))
    h.stored.append(StoredRow(105, CONV, 5, "alice-phone", "m5", body_hash({"text": "hello 5"})))
    for device in DEVICES:
        h.deliveries[device].append(Delivery(CONV, 5, 105))
    result = check(h)
    assert result.ok, result.describe()
    assert result.info["indeterminate_absent"] == 1
    assert result.info["indeterminate_stored"] == 1


@pytest.mark.parametrize("anomaly", ANOMALIES)
def test_describe_names_every_nonzero_anomaly(anomaly: str) -> None:
    h = clean_history()
    result = check(h)
    result.add(anomaly, "example text")
    assert not result.ok
    assert f"{anomaly}=1" in result.summary()
    assert "example text" in result.describe()
    assert result.as_dict()["counts"][anomaly] == 1


def test_examples_are_bounded() -> None:
    h = clean_history()
    h.deliveries["bob-laptop"] = []
    result = check(h, max_examples=2)
    assert result.counts["missing"] == 4
    assert len(result.examples["missing"]) == 2


def test_large_history_is_checked_quickly() -> None:
    """100 rooms x 10 devices x 100 messages: the checker must not be quadratic."""
    h = History()
    for room in range(100):
        conv = f"r{room}"
        for i in range(1, 101):
            key = f"{conv}-{i}"
            h.attempts.append(Attempt(f"d{room}", key, conv, "h"))
            h.acks.append(Ack(f"d{room}", key, conv, room * 1000 + i, i))
            h.stored.append(StoredRow(room * 1000 + i, conv, i, f"d{room}", key, "h"))
        rows = h.stored[-100:]
        for member in range(10):
            device = f"{conv}-m{member}"
            h.deliveries[device] = [Delivery(conv, r.seq, r.message_id) for r in rows]
            h.expectations[device] = [Expectation(conv)]
    result = check(h)
    assert result.ok
    assert result.info["deliveries"] == 100_000
