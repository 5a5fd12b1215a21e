"""End-to-end consistency checker for a messaging scenario (model: Jepsen's set checker).

Pure logic over typed records, no I/O. A scenario hands over four histories:

* what each client **attempted** (:class:`Attempt`, in the order that client sent them),
* what was **acknowledged** (:class:`Ack`),
* what the database **stores** (:class:`StoredRow`, rows of ``messages`` of the scenario's
  conversations),
* what every device **received** (:class:`Delivery`, in arrival order) and what it should have
  received (:class:`Expectation`: a conversation and the seq it starts after).

:func:`check` compares them and returns a :class:`CheckResult` with a count and a few examples per
anomaly. ``ok`` holds only when every count is zero. Sent-but-unacknowledged messages are neither
lost nor unexpected whether they were stored or not: as in Jepsen, an operation whose outcome the
client never learnt is *indeterminate*; they are counted for information only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Anomaly categories, in report order. Each must be zero for ``ok``.
ANOMALIES: tuple[str, ...] = (
    "lost",
    "unexpected",
    "duplicated",
    "mismatched",
    "out_of_order",
    "sender_order",
    "gaps",
    "missing",
)

Key = tuple[str, str]
"""Idempotency key of a message: ``(sender_device_id, client_msg_id)``."""


def body_hash(body: Any) -> str:
    """Hash of a JSON body that survives a round trip through ``jsonb``.

    ``jsonb`` reorders keys and drops insignificant whitespace, so the body is serialised
    canonically (sorted keys, compact separators) before hashing.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Attempt:
    """A client tried to send a message (retries repeat the same key)."""

    device_id: str
    client_msg_id: str
    conversation_id: str
    body_hash: str


@dataclass(frozen=True, slots=True)
class Ack:
    """The server acknowledged a send (``duplicate`` acks of retries included)."""

    device_id: str
    client_msg_id: str
    conversation_id: str
    message_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of the ``messages`` table."""

    message_id: int
    conversation_id: str
    seq: int
    sender_device_id: str
    client_msg_id: str
    body_hash: str | None = None
    version: int = 1
    """Edits and deletes raise it; only a version-1 body must equal what was sent."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A ``message`` frame a device received."""

    conversation_id: str
    seq: int
    message_id: int


@dataclass(frozen=True, slots=True)
class Expectation:
    """A device should receive every stored message of ``conversation_id`` with seq > ``after_seq``.

    ``upto_seq`` (inclusive) bounds the window for a device that left before the end.
    """

    conversation_id: str
    after_seq: int = 0
    upto_seq: int | None = None


@dataclass(slots=True)
class History:
    """Everything one scenario observed; the input of :func:`check`."""

    attempts: list[Attempt] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    stored: list[StoredRow] = field(default_factory=list)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    expectations: dict[str, list[Expectation]] = field(default_factory=dict)


@dataclass(slots=True)
class CheckResult:
    """Counts and examples per anomaly, plus informational counts."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ANOMALIES, 0))
    examples: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ANOMALIES})
    info: dict[str, int] = field(default_factory=dict)
    max_examples: int = 5

    @property
    def ok(self) -> bool:
        """True when no anomaly of any kind was found."""
        return not any(self.counts.values())

    def add(self, anomaly: str, example: str) -> None:
        """Count one anomaly and keep the first few examples."""
        self.counts[anomaly] += 1
        if len(self.examples[anomaly]) < self.max_examples:
            self.examples[anomaly].append(example)

    def summary(self) -> str:
        """One line: every count, then the informational counts."""
        counts = ", ".join(f"{a}={self.counts[a]}" for a in ANOMALIES)
        info = ", ".join(f"{k}={v}" for k, v in sorted(self.info.items()))
        return f"{'OK' if self.ok else 'ANOMALIES'}: {counts} ({info})"

    def describe(self) -> str:
        """Summary plus the examples of every non-zero anomaly, for failure messages."""
        lines = [self.summary()]
        for anomaly in ANOMALIES:
            if self.counts[anomaly]:
                lines.append(f"  {anomaly}: " + "; ".join(self.examples[anomaly]))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for reports."""
        return {
            "ok": self.ok,
            "counts": dict(self.counts),
            "examples": self.examples,
            "info": dict(self.info),
        }


def check(history: History, max_examples: int = 5) -> CheckResult:
    """Compare the four histories of a scenario and report every anomaly."""
    result = CheckResult(max_examples=max_examples)
    by_key = _index_stored(history.stored, result)
    _check_attempts_and_acks(history, by_key, result)
    _check_sender_order(history.attempts, by_key, result)
    _check_gaps(history.stored, result)
    by_position = {(r.conversation_id, r.seq): r for r in history.stored}
    for device_id, received in history.deliveries.items():
        _check_device_stream(device_id, received, by_position, result)
    by_conversation: dict[str, list[StoredRow]] = defaultdict(list)
    for row in history.stored:
        by_conversation[row.conversation_id].append(row)
    for device_id, expected in history.expectations.items():
        received = history.deliveries.get(device_id, [])
        _check_missing(device_id, expected, received, by_conversation, result)
    return result


def _index_stored(stored: Sequence[StoredRow], result: CheckResult) -> dict[Key, StoredRow]:
    """Index rows by idempotency key; rows sharing a key, an id or a position are duplicates."""
    by_key: dict[Key, StoredRow] = {}
    for row in stored:
        key = (row.sender_device_id, row.client_msg_id)
        if key in by_key:
            result.add(
                "duplicated",
                f"key {key} stored as id {by_key[key].message_id} and id {row.message_id}",
            )
        else:
            by_key[key] = row
    for what, counter in (
        ("message_id", Counter(r.message_id for r in stored)),
        ("(conversation, seq)", Counter((r.conversation_id, r.seq) for r in stored)),
    ):
        for value, n in counter.items():
            if n > 1:
                result.add("duplicated", f"{what} {value} stored {n} times")
    result.info["stored"] = len(stored)
    return by_key


def _check_attempts_and_acks(
    history: History, by_key: dict[Key, StoredRow], result: CheckResult
) -> None:
    """Lost, unexpected and mismatched: acks against rows, rows against attempts."""
    attempted: dict[Key, Attempt] = {}
    for a in history.attempts:
        attempted.setdefault((a.device_id, a.client_msg_id), a)
    acked: dict[Key, Ack] = {}
    for ack in history.acks:
        key = (ack.device_id, ack.client_msg_id)
        first = acked.setdefault(key, ack)
        if (first.message_id, first.seq) != (ack.message_id, ack.seq):
            result.add(
                "mismatched",
                f"key {key} acked as id {first.message_id}/seq {first.seq} "
                f"and id {ack.message_id}/seq {ack.seq}",
            )
    for key, ack in acked.items():
        row = by_key.get(key)
        if row is None:
            result.add("lost", f"key {key} acked as id {ack.message_id} seq {ack.seq}, not stored")
        elif (row.message_id, row.seq, row.conversation_id) != (
            ack.message_id,
            ack.seq,
            ack.conversation_id,
        ):
            result.add(
                "mismatched",
                f"key {key} acked id {ack.message_id} seq {ack.seq}, stored "
                f"id {row.message_id} seq {row.seq}",
            )
    for key, row in by_key.items():
        attempt = attempted.get(key)
        if attempt is None:
            result.add("unexpected", f"stored id {row.message_id} key {key} never attempted")
        elif row.version == 1 and row.body_hash is not None and row.body_hash != attempt.body_hash:
            result.add("mismatched", f"stored id {row.message_id} key {key} body differs")
        elif row.conversation_id != attempt.conversation_id:
            result.add(
                "mismatched",
                f"key {key} sent to {attempt.conversation_id}, stored in {row.conversation_id}",
            )
    unacked = attempted.keys() - acked.keys()
    result.info.update(
        attempted=len(attempted),
        acked=len(acked),
        indeterminate_stored=sum(1 for k in unacked if k in by_key),
        indeterminate_absent=sum(1 for k in unacked if k not in by_key),
    )


def _check_sender_order(
    attempts: Sequence[Attempt], by_key: dict[Key, StoredRow], result: CheckResult
) -> None:
    """One device's sends to one conversation are stored in the order it first sent them (P3)."""
    last: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[Key] = set()
    for a in attempts:
        key = (a.device_id, a.client_msg_id)
        row = by_key.get(key)
        if key in seen or row is None:
            continue
        seen.add(key)
        stream = (a.device_id, a.conversation_id)
        previous = last.get(stream)
        if previous is not None and row.seq < previous[0]:
            result.add(
                "sender_order",
                f"{a.device_id} sent {previous[1]} before {a.client_msg_id}"
                f" in {a.conversation_id}, stored seq {previous[0]} > "
                f"{row.seq}",
            )
        last[stream] = (row.seq, a.client_msg_id)


def _check_gaps(stored: Sequence[StoredRow], result: CheckResult) -> None:
    """Every conversation's seqs run 1..head without a hole."""
    seqs: dict[str, set[int]] = defaultdict(set)
    for row in stored:
        seqs[row.conversation_id].add(row.seq)
    for conversation, present in sorted(seqs.items()):
        head = max(present)
        holes = [s for s in range(1, head + 1) if s not in present]
        for s in holes:
            result.add("gaps", f"{conversation} has no seq {s} (head {head})")


def _check_device_stream(
    device_id: str,
    received: Sequence[Delivery],
    by_position: dict[tuple[str, int], StoredRow],
    result: CheckResult,
) -> None:
    """One device: no message twice, seq strictly rising per conversation, ids match storage."""
    last_seq: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for d in received:
        position = (d.conversation_id, d.seq)
        if position in seen:
            result.add("duplicated", f"{device_id} received {d.conversation_id} seq {d.seq} twice")
            continue
        seen.add(position)
        row = by_position.get(position)
        if row is None:
            result.add(
                "unexpected",
                f"{device_id} received {d.conversation_id} seq {d.seq} "
                f"(id {d.message_id}), not stored",
            )
        elif row.message_id != d.message_id:
            result.add(
                "mismatched",
                f"{device_id} received id {d.message_id} at "
                f"{d.conversation_id} seq {d.seq}, stored id {row.message_id}",
            )
        previous = last_seq.get(d.conversation_id, 0)
        if d.seq < previous:
            result.add(
                "out_of_order",
                f"{device_id} received {d.conversation_id} seq {d.seq} after seq {previous}",
            )
        last_seq[d.conversation_id] = max(previous, d.seq)
    result.info["deliveries"] = result.info.get("deliveries", 0) + len(received)


def _check_missing(
    device_id: str,
    expected: Iterable[Expectation],
    received: Sequence[Delivery],
    by_conversation: dict[str, list[StoredRow]],
    result: CheckResult,
) -> None:
    """Every stored message inside a device's expected window reached that device."""
    got = {(d.conversation_id, d.seq) for d in received}
    for e in expected:
        for row in by_conversation.get(e.conversation_id, ()):
            if row.seq <= e.after_seq:
                continue
            if e.upto_seq is not None and row.seq > e.upto_seq:
                continue
            if (row.conversation_id, row.seq) not in got:
                result.add(
                    "missing",
                    f"{device_id} never received {row.conversation_id} "
                    f"seq {row.seq} (id {row.message_id})",
                )


def history_from_clients(
    clients: Iterable[Any],
    stored: Sequence[StoredRow],
    conversations: Iterable[str],
    expect_from: dict[str, int] | None = None,
) -> History:
    """A :class:`History` from the kit's ``DeviceClient`` objects (``ccskit.client``).

    Acks and received ``message`` frames come from each client's recorded frames (across its
    reconnects); unacknowledged sends from its outbox. The client does not keep the body of an
    acknowledged send, so bodies are not compared (stored rows come with ``body_hash`` None).
    Every client is expected to see each conversation in ``conversations`` from
    ``expect_from[conversation]`` (default 0) on.
    """
    wanted = set(conversations)
    h = History(stored=[dataclasses.replace(r, body_hash=None) for r in stored])
    for client in clients:
        device = client.device_id
        for f in client.frames:
            data = f.data or {}
            if data.get("conversation_id") not in wanted:
                continue
            if data.get("type") == "message":
                h.deliveries.setdefault(device, []).append(
                    Delivery(data["conversation_id"], data["seq"], data["message_id"])
                )
            elif data.get("type") == "ack" and data.get("for") == "send":
                key = (data["conversation_id"], data["client_msg_id"])
                h.attempts.append(Attempt(device, key[1], key[0], ""))
                h.acks.append(Ack(device, key[1], key[0], data["message_id"], data["seq"]))
        for entry in client.outbox.values():
            if entry.conversation_id in wanted:
                h.attempts.append(Attempt(device, entry.client_msg_id, entry.conversation_id, ""))
        h.deliveries.setdefault(device, [])
        h.expectations[device] = [Expectation(c, (expect_from or {}).get(c, 0)) for c in wanted]
    return h
