"""A reference model of docs/protocol.md (1.1) and the promises P1-P18: no I/O, only predictions.

The model holds what a correct server holds — users, devices, conversations with their members
and join points, messages with versions and tombstones, idempotency keys, per-device cursors and
presence — and, for every command, predicts the reply (``ack`` fields or error code, close code)
and the frames every connected device must receive. Where the protocol leaves an answer open the
prediction lists every acceptable answer (``Expect.codes`` with more than one code, frames in
``Device.stale_ok``) and the model follows the one the server chose; those places are named in
``OPEN_QUESTIONS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: Where the protocol does not decide, the model accepts each listed answer.
OPEN_QUESTIONS = {
    "check-order": "a bad field in a command on a conversation the user may not use: "
    "bad_request or forbidden",
    "retry-after-removal": "retry of an old key after the sender left: forbidden or duplicate",
    "update-before-join": "message_updated of a message from before the member's join point "
    "(held from an earlier membership or named in resume): sent or not",
    "late-member-added": "member_added of a membership made just before the device connected",
}

MESSAGE_CATEGORY = "messages"
RECEIPT_CATEGORY = "receipts"
MEMBER_CATEGORY = "members"


def body_key(body: Any) -> str:
    """Canonical text of a JSON body (key order does not matter)."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def body_bytes(body: Any) -> int:
    """Serialised size of a body: compact JSON in UTF-8 bytes (protocol section 4)."""
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True)
class Limits:
    """The documented limits of the server under test (``None``: not known for this target)."""

    max_body_bytes: int = 16384
    max_frame_bytes: int = 65536
    history_limit_max: int = 100
    client_msg_id_max: int = 128
    replay_limit: int | None = None
    max_connections_per_user: int | None = None
    #: How long an abruptly dropped device may stay online: heartbeat timeout, grace, margin.
    offline_after_drop_s: float = 25.0


@dataclass
class Message:
    """One stored message as the model knows it."""

    conversation_id: str
    seq: int
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str
    body: Any
    version: int = 1
    deleted: bool = False

    def frame(self, kind: str = "message") -> tuple[Any, ...]:
        """The canonical form of the ``message``/``message_updated`` frame for this state."""
        return (
            kind,
            self.conversation_id,
            self.seq,
            self.version,
            self.deleted,
            body_key(None if self.deleted else self.body),
        )

    def row(self) -> tuple[Any, ...]:
        """The canonical form of its ``messages`` row (and of a history entry)."""
        return (
            self.seq,
            self.sender_device_id,
            self.client_msg_id,
            self.version,
            self.deleted,
            body_key(None if self.deleted else self.body),
        )


@dataclass
class Conversation:
    """Members with the head at the moment each joined, and the messages in seq order."""

    conversation_id: str
    members: dict[str, int] = field(default_factory=dict)  # user_id -> head when joined
    messages: list[Message] = field(default_factory=list)

    @property
    def head(self) -> int:
        return len(self.messages)

    def get(self, seq: int) -> Message | None:
        return self.messages[seq - 1] if 1 <= seq <= self.head else None


@dataclass
class Device:
    """A device: its connection (if any), cursors, presence and the stream it must receive."""

    device_id: str
    user_id: str
    connected: bool = False
    status: str = "offline"
    ever_connected: bool = False
    cursors: dict[str, tuple[int, int]] = field(default_factory=dict)  # conv -> (delivered, read)
    #: What the current connection must have received, per category and conversation.
    stream: dict[tuple[str, str], list[tuple[Any, ...]]] = field(default_factory=dict)
    #: Users that shared a conversation with this device's user during the current connection.
    sharers: set[str] = field(default_factory=set)
    #: Frames this connection may receive or not (``OPEN_QUESTIONS``): never required.
    stale_ok: set[tuple[Any, ...]] = field(default_factory=set)
    #: Seqs of each conversation this connection was sent (replay or live).
    sent: dict[str, set[int]] = field(default_factory=dict)

    def cursor(self, conversation_id: str) -> tuple[int, int]:
        return self.cursors.get(conversation_id, (0, 0))


@dataclass(frozen=True)
class PresenceEvent:
    """A presence frame ``watcher`` must receive about ``device_id``."""

    watcher: str
    device_id: str
    user_id: str
    status: str
    user_status: str


@dataclass
class Expect:
    """The predicted outcome of one action.

    ``codes`` empty means an ``ack`` (or ``welcome``) carrying ``fields``; otherwise an error with
    one of ``codes`` and, when ``close`` is set, that close code afterwards. ``apply`` updates the
    model with what the server answered (for answers the protocol leaves open).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    codes: tuple[str, ...] = ()
    close: int | None = None
    presence: list[PresenceEvent] = field(default_factory=list)
    apply: Callable[[dict[str, Any]], None] | None = None
    #: An ``ack`` with ``fields`` is as acceptable as the error (see ``OPEN_QUESTIONS``).
    also_ack: bool = False
    #: Extra checks on the reply: (description, predicate).
    checks: list[tuple[str, Callable[[dict[str, Any]], bool]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.codes


def error(*codes: str, close: int | None = None) -> Expect:
    return Expect(codes=codes, close=close)


class Model:
    """The reference model. Every method predicts one action and updates the state."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.users: dict[str, list[str]] = {}
        self.devices: dict[str, Device] = {}
        self.conversations: dict[str, Conversation] = {}
        self.keys: dict[tuple[str, str], Message] = {}  # (device, client_msg_id) -> original
        self.sent_bodies: dict[tuple[str, str], str] = {}  # same key -> body as first sent

    # ----- fixtures ----------------------------------------------------------------------------
    def add_user(self, user_id: str, device_ids: Iterable[str]) -> None:
        self.users[user_id] = list(device_ids)
        for device_id in self.users[user_id]:
            self.devices[device_id] = Device(device_id, user_id)

    def add_conversation(self, conversation_id: str, members: Iterable[str]) -> None:
        self.conversations[conversation_id] = Conversation(
            conversation_id, {user: 0 for user in members}
        )

    # ----- queries -----------------------------------------------------------------------------
    def is_member(self, user_id: str, conversation_id: str) -> bool:
        conv = self.conversations.get(conversation_id)
        return conv is not None and user_id in conv.members

    def shares(self, a: str, b: str) -> bool:
        """Whether users ``a`` and ``b`` are members of one conversation."""
        return any(a in c.members and b in c.members for c in self.conversations.values())

    def sharers_of(self, user_id: str) -> set[str]:
        return {u for u in self.users if self.shares(user_id, u)}

    def user_status(self, user_id: str) -> str:
        statuses = {self.devices[d].status for d in self.users.get(user_id, [])}
        for status in ("online", "away"):
            if status in statuses:
                return status
        return "offline"

    def connected_devices(self, user_ids: Iterable[str]) -> list[Device]:
        wanted = set(user_ids)
        return [d for d in self.devices.values() if d.connected and d.user_id in wanted]

    def connections_of(self, user_id: str) -> int:
        return sum(1 for d in self.users.get(user_id, []) if self.devices[d].connected)

    def _deliver(
        self, conv: Conversation, category: str, item: tuple[Any, ...], skip: str | None = None
    ) -> None:
        for device in self.connected_devices(conv.members):
            if device.device_id != skip:
                device.stream.setdefault((category, conv.conversation_id), []).append(item)
                if item[0] == "message":
                    device.sent.setdefault(conv.conversation_id, set()).add(item[2])

    def _deliver_update(self, conv: Conversation, message: Message) -> None:
        """``message_updated`` to every member connection already sent the message (§5.2)."""
        item = message.frame("message_updated")
        for device in self.connected_devices(conv.members):
            if conv.members[device.user_id] >= message.seq:
                # From before the user's join point: it may hold it from an earlier membership
                # (or say so in resume), so the update may come or not.
                device.stale_ok.add(item)
            elif message.seq not in device.sent.get(conv.conversation_id, set()):
                continue
            else:
                device.stream.setdefault((MESSAGE_CATEGORY, conv.conversation_id), []).append(item)

    def _presence_change(self, device: Device, status: str) -> list[PresenceEvent]:
        """Set the device's status; the presence frames its sharers' devices must receive."""
        if device.status == status:
            return []
        device.status = status
        user_status = self.user_status(device.user_id)
        # §5.4-d: every user sharing a conversation, the user's own other devices included.
        watchers = self.connected_devices(self.sharers_of(device.user_id) | {device.user_id})
        return [
            PresenceEvent(w.device_id, device.device_id, device.user_id, status, user_status)
            for w in watchers
            if w.device_id != device.device_id
        ]

    # ----- connecting --------------------------------------------------------------------------
    def connect(self, device_id: str, token: str, resume: dict[str, Any] | None) -> Expect:
        """``hello`` with a token of kind ``token`` (``valid``, ``expired``, ``just-expired``,
        ``not-yet-valid``, ``valid-in-5s``, ``bad-signature``, ``other-users-device``) and an
        optional ``resume`` map."""
        device = self.devices[device_id]
        if token in ("expired", "just-expired"):
            return error("token_expired", close=4003)
        if token != "valid":
            return error("auth_failed", close=4501)
        if resume is not None and any(not _valid_seq(v) for v in resume.values()):
            return error("bad_request", close=4500)
        cap = self.limits.max_connections_per_user
        if cap is not None and self.connections_of(device.user_id) >= cap:
            return error("rate_limited", close=4005)
        device.connected = device.ever_connected = True
        device.stream = {}
        device.sharers = self.sharers_of(device.user_id)
        device.sent = {}
        device.stale_ok = {
            ("member_added", c.conversation_id, u)
            for c in self.conversations.values()
            if device.user_id in c.members
            for u in c.members
        }
        conversations = self._welcome_conversations(device, resume or {})
        expect = Expect({"user_id": device.user_id, "device_id": device.device_id})
        expect.checks.append(
            (
                f"welcome.conversations to hold {json.dumps(conversations, sort_keys=True)}",
                lambda reply: _conversations_match(reply.get("conversations"), conversations),
            )
        )
        expect.fields["conversations"] = conversations
        expect.presence = self._presence_change(device, "online")
        return expect

    def _welcome_conversations(self, device: Device, resume: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for conv_id in resume:
            if not self.is_member(device.user_id, conv_id):
                answer[conv_id] = {"recovered": False, "reason": "forbidden"}
        for conv in self.conversations.values():
            joined = conv.members.get(device.user_id)
            if joined is None:
                continue
            named = resume.get(conv.conversation_id)
            start = device.cursor(conv.conversation_id)[0] if named is None else int(named)
            answer[conv.conversation_id] = self._replay(device, conv, max(start, joined))
        return answer

    def _replay(self, device: Device, conv: Conversation, start: int) -> dict[str, Any]:
        head, limit = conv.head, self.limits.replay_limit
        info: dict[str, Any] = {"head_seq": head, "from_seq": start, "recovered": True}
        # A connection that resumed past a message (or confirmed it) has it as much as one that
        # was sent it: its edits reach it too (§5.2-a read as "every connection holding it").
        device.sent.setdefault(conv.conversation_id, set()).update(
            range(conv.members[device.user_id] + 1, head + 1)
        )
        if start > head:  # §3.2-h
            return {
                "head_seq": head,
                "from_seq": head,
                "recovered": False,
                "reason": "seq_ahead_of_head",
            }
        first = start + 1
        if limit is not None and head - start > limit:  # §3.2-g
            first = head - limit + 1
            info.update(
                from_seq=head - limit,
                recovered=False,
                reason="too_many_missed",
                truncated=True,
                oldest_available_seq=first,
            )
        key = (MESSAGE_CATEGORY, conv.conversation_id)
        for message in conv.messages[first - 1 :]:
            device.stream.setdefault(key, []).append(message.frame())  # §3.2-e current version
            device.sent.setdefault(conv.conversation_id, set()).add(message.seq)
        return info

    def disconnect(self, device_id: str) -> list[PresenceEvent]:
        """Clean close or abrupt drop: the device goes offline (after the grace period)."""
        device = self.devices[device_id]
        device.connected = False
        device.stream = {}
        return self._presence_change(device, "offline")

    # ----- messages ----------------------------------------------------------------------------
    def send(self, device_id: str, conversation_id: str, cmid: str, body: Any) -> Expect:
        """``send`` over WebSocket (or ``POST …/messages``: same rules)."""
        device = self.devices[device_id]
        if cmid == "" or "\x00" in cmid:
            return error("bad_request")
        if len(cmid) > self.limits.client_msg_id_max:
            return error("too_large")
        if body_bytes(body) > self.limits.max_body_bytes:
            return error("too_large")
        member = self.is_member(device.user_id, conversation_id)
        original = self.keys.get((device_id, cmid))
        if original is not None:  # §4.2-f/g: bodies compared as JSON values
            same = (
                self.sent_bodies[(device_id, cmid)] == body_key(body)
                and original.conversation_id == conversation_id
            )
            if not member:  # which check comes first is open (OPEN_QUESTIONS)
                return (
                    self._retry(original, cmid, member)
                    if same
                    else error("forbidden", "idempotency_conflict")
                )
            return self._retry(original, cmid, member) if same else error("idempotency_conflict")
        if not member:
            return error("forbidden")
        return self._store(device, conversation_id, cmid, body)

    def _retry(self, original: Message, cmid: str, member: bool) -> Expect:
        dup = Expect(
            {
                "seq": original.seq,
                "client_msg_id": cmid,
                "duplicate": True,
                "conversation_id": original.conversation_id,
            }
        )
        if not member:
            dup.codes, dup.also_ack = ("forbidden",), True
        return dup

    def _store(self, device: Device, conversation_id: str, cmid: str, body: Any) -> Expect:
        device_id = device.device_id
        conv = self.conversations[conversation_id]
        message = Message(conversation_id, conv.head + 1, device.user_id, device_id, cmid, body)
        conv.messages.append(message)
        self.keys[(device_id, cmid)] = message
        self.sent_bodies[(device_id, cmid)] = body_key(body)
        self._deliver(conv, MESSAGE_CATEGORY, message.frame())
        return Expect(
            {
                "seq": message.seq,
                "client_msg_id": cmid,
                "duplicate": False,
                "conversation_id": conversation_id,
            }
        )

    def insert_row(self, conversation_id: str, device_id: str, cmid: str, body: Any) -> int:
        """A row written straight into ``messages`` by another program; returns its seq."""
        device = self.devices[device_id]
        conv = self.conversations[conversation_id]
        message = Message(conversation_id, conv.head + 1, device.user_id, device_id, cmid, body)
        conv.messages.append(message)
        # Still the device's idempotency key: a retry compares bodies as JSON values (§4.2-f),
        # whatever text the other program wrote.
        self.keys[(device_id, cmid)] = message
        self.sent_bodies[(device_id, cmid)] = body_key(body)
        self._deliver(conv, MESSAGE_CATEGORY, message.frame())
        return message.seq

    def change(
        self,
        device_id: str,
        conversation_id: str,
        seq: int,
        expected_version: int,
        body: Any = None,
        delete: bool = False,
    ) -> Expect:
        """``edit`` (or ``delete`` with ``delete=True``)."""
        device = self.devices[device_id]
        member = self.is_member(device.user_id, conversation_id)
        if expected_version < 1 or seq < 1:  # §4.3-a
            return error("bad_request") if member else error("bad_request", "forbidden")
        if not member:
            return error("forbidden")
        conv = self.conversations[conversation_id]
        message = conv.get(seq)
        if message is None:
            return error("not_found")
        if message.sender_user_id != device.user_id:
            return error("forbidden")
        if not delete and body_bytes(body) > self.limits.max_body_bytes:
            return error("too_large")
        if message.deleted or expected_version != message.version:
            expect = error("conflict")
            current = {
                "version": message.version,
                "deleted": message.deleted,
                "body": None if message.deleted else message.body,
            }
            expect.checks.append(
                (
                    f"conflict.current == {current}",
                    lambda reply: _current_matches(reply.get("current"), current),
                )
            )
            return expect
        message.version += 1
        message.deleted = delete
        if not delete:
            message.body = body
        self._deliver_update(conv, message)
        return Expect({"seq": seq, "version": message.version, "conversation_id": conversation_id})

    def update_row(self, conversation_id: str, seq: int, body: Any) -> None:
        """Another program UPDATEs a row's body and version (§5.2-a)."""
        conv = self.conversations[conversation_id]
        message = conv.messages[seq - 1]
        message.version += 1
        message.body = body
        self._deliver_update(conv, message)

    # ----- receipts ----------------------------------------------------------------------------
    def receipt(self, device_id: str, conversation_id: str, kind: str, seq: int) -> Expect:
        device = self.devices[device_id]
        member = self.is_member(device.user_id, conversation_id)
        if seq <= 0:  # which check comes first is open when both apply
            return error("bad_request") if member else error("bad_request", "forbidden")
        if not member:
            return error("forbidden")
        conv = self.conversations[conversation_id]
        if seq > conv.head:
            return error("out_of_range")
        delivered, read = device.cursor(conversation_id)
        new_read = max(read, seq) if kind == "read" else read
        new_delivered = max(delivered, seq, new_read)
        changed = (new_delivered, new_read) != (delivered, read)
        device.cursors[conversation_id] = (new_delivered, new_read)
        if changed:
            item = ("receipt", conversation_id, device_id, new_delivered, new_read)
            self._deliver(conv, RECEIPT_CATEGORY, item, skip=device_id)
        return Expect(
            {
                "delivered_upto": new_delivered,
                "read_upto": new_read,
                "changed": changed,
                "conversation_id": conversation_id,
            }
        )

    # ----- history -----------------------------------------------------------------------------
    def history(
        self,
        device_id: str,
        conversation_id: str,
        after: int | None,
        before: int | None,
        limit: int | None,
    ) -> Expect:
        """A history page (§4.5): oldest after ``after_seq``, else newest below ``before_seq``."""
        device = self.devices[device_id]
        member = self.is_member(device.user_id, conversation_id)
        if limit is not None and not 1 <= limit <= self.limits.history_limit_max:
            return error("bad_request") if member else error("bad_request", "forbidden")
        if not member:
            return error("forbidden")
        conv = self.conversations[conversation_id]
        visible = [m for m in conv.messages if m.seq > conv.members[device.user_id]]  # §4.5-e
        rows, more, _ = _page(visible, after, before, limit or 50, newest=after is None)
        expect = Expect({"conversation_id": conversation_id, "has_more": more})
        expect.checks.append(
            (f"history messages {rows}", lambda reply: _history_rows(reply) == rows)
        )
        return expect

    # ----- presence ----------------------------------------------------------------------------
    def set_presence(self, device_id: str, status: str) -> Expect:
        expect = Expect({"status": status})
        expect.presence = self._presence_change(self.devices[device_id], status)
        return expect

    def presence_answer(self, asker_user: str, user_id: str) -> dict[str, Any]:
        """What ``presence_query`` must say about ``user_id`` to ``asker_user``:
        ``{status, devices: {device_id: status}}`` of online/away devices only (§4.7-c)."""
        visible = user_id == asker_user or self.shares(asker_user, user_id)
        if user_id not in self.users or not visible:
            return {"status": "offline", "devices": {}, "stranger": True}
        devices = {
            d: self.devices[d].status
            for d in self.users[user_id]
            if self.devices[d].status != "offline"
        }
        return {"status": self.user_status(user_id), "devices": devices, "stranger": False}

    # ----- membership --------------------------------------------------------------------------
    def add_member(self, conversation_id: str, user_id: str) -> None:
        conv = self.conversations[conversation_id]
        conv.members[user_id] = conv.head  # §8.3-c: the join point
        self._deliver(conv, MEMBER_CATEGORY, ("member_added", conversation_id, user_id))
        for device in self.connected_devices(self.users):
            device.sharers |= self.sharers_of(device.user_id)

    def remove_member(self, conversation_id: str, user_id: str) -> None:
        conv = self.conversations[conversation_id]
        item = ("member_removed", conversation_id, user_id)
        self._deliver(conv, MEMBER_CATEGORY, item)
        del conv.members[user_id]


def _valid_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**63 - 1


def _page(
    messages: list[Message], after: int | None, before: int | None, limit: int, newest: bool
) -> tuple[list[tuple[Any, ...]], bool, bool]:
    inside = [
        m
        for m in messages
        if (after is None or m.seq > after) and (before is None or m.seq < before)
    ]
    chosen = inside[-limit:] if newest else inside[:limit]
    return [m.row() for m in chosen], len(inside) > limit, newest


def _history_rows(reply: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for m in reply.get("messages") or []:
        rows.append(
            (
                m.get("seq"),
                m.get("sender_device_id"),
                m.get("client_msg_id"),
                m.get("version"),
                m.get("deleted"),
                body_key(m.get("body")),
            )
        )
    return rows


def _current_matches(current: Any, expected: dict[str, Any]) -> bool:
    if not isinstance(current, dict):
        return False
    return (
        current.get("version") == expected["version"]
        and bool(current.get("deleted")) == expected["deleted"]
        and body_key(current.get("body")) == body_key(expected["body"])
    )


def _conversations_match(seen: Any, expected: dict[str, Any]) -> bool:
    if not isinstance(seen, dict):
        return False
    for conv_id, info in expected.items():
        got = seen.get(conv_id)
        if not isinstance(got, dict):
            return False
        for key, value in info.items():
            if got.get(key) != value:
                return False
        if info.get("reason") == "forbidden" and "head_seq" in got:
            return False
    return set(seen) == set(expected)
