"""Random walks over real connections: a Hypothesis ``RuleBasedStateMachine`` whose rules act on
the server (``driver``), ask the model (``state``) what must happen, and compare (``observe``).

Each walk creates its own users, devices and conversations (unique ids), so walks are
independent of each other and of other tests. Every step is recorded as a ``steps.Step`` so a
failing (shrunk) walk can be printed as plain English and as a Robot Framework test.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from .driver import Driver, Reply, received_streams
from .observe import (
    check_database,
    check_presence,
    check_presence_answer,
    check_presence_leaks,
    check_reply,
    check_streams,
)
from .state import Expect, Limits, Model, PresenceEvent, body_bytes
from .steps import SEP, Step, Walk

#: The walk's cast: u0 has more devices than the connection cap of the model's node allows.
USERS = {
    "u0": ["u0-d0", "u0-d1", "u0-d2", "u0-d3"],
    "u1": ["u1-d0", "u1-d1"],
    "u2": ["u2-d0"],
    "u3": ["u3-d0"],
}
DEVICES = [d for devices in USERS.values() for d in devices]
CONVERSATIONS = {"c0": ["u0", "u1"], "c1": ["u0", "u1", "u2"]}
TOKEN_KINDS = ["valid"] * 6 + [
    "expired",
    "just-expired",
    "not-yet-valid",
    "valid-in-5s",
    "bad-signature",
    "other-users-device",
    "expires-in-2s",
]
SPECIAL_TEXTS = [
    "'; DROP TABLE messages;--",
    "<script>x</script>",
    "nul\x00inside",
    "\u202eRTL override",
    "👩‍👩‍👧 family",
    "",
]
#: ``resume`` values a correct server must refuse with bad_request (fail closed).
MALFORMED_SEQS: list[Any] = [-1, "abc", 1.5, 2**63, True, None]


@dataclass
class WalkEnv:
    """What the walks run against, set by the runner before Hypothesis starts."""

    base_url: str = ""
    database_url: str = ""
    limits: Limits = field(default_factory=Limits)
    scale: float = 1.0
    unsupported: dict[str, str] = field(default_factory=dict)  # action -> why
    used: dict[str, int] = field(default_factory=dict)  # rule -> times run
    walks: int = 0
    last_walk: Walk | None = None
    last_failure: Walk | None = None  # the last walk that failed (the shrunk one, at the end)


ENV = WalkEnv()


class ModelWalk(RuleBasedStateMachine):
    """One walk: fresh fixtures, then rules drawn by Hypothesis, each checked against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver(ENV.base_url, ENV.database_url, ENV.scale)
        self.model = Model(ENV.limits)
        self.walk = Walk(self.driver.fixture.names)
        ENV.last_walk = self.walk
        ENV.walks += 1
        self.counter = 0
        self._setup_fixtures()

    def _setup_fixtures(self) -> None:
        d = self.driver
        for user, devices in USERS.items():
            d.create_user(user)
            self.model.add_user(d.fixture.ids[user], [d.create_device(user, n) for n in devices])
        for conv, members in CONVERSATIONS.items():
            real = [d.fixture.ids[m] for m in members]
            self.model.add_conversation(d.create_conversation(conv, real), real)
        self.walk.setup(USERS, CONVERSATIONS)

    def teardown(self) -> None:
        self.driver.close()

    # ----- helpers -----------------------------------------------------------------------------
    def ids(self, name: str) -> str:
        return self.driver.fixture.ids[name]

    def connected(self) -> list[str]:
        return [n for n in DEVICES if self.model.devices[self.ids(n)].connected]

    def offline(self) -> list[str]:
        return [n for n in DEVICES if not self.model.devices[self.ids(n)].connected]

    def conv_of(self, name: str) -> Any:
        return self.model.conversations[self.ids(name)]

    def next_key(self, device: str) -> str:
        self.counter += 1
        return f"{device}-k{self.counter}"

    def command_step(
        self,
        rule: str,
        english: str,
        name: str,
        frame: dict[str, Any],
        conv_name: str,
        expect: Expect,
        marks: dict[str, int],
    ) -> None:
        """Device ``name`` sends ``frame`` over its WebSocket; its reply and then the whole
        observable state are compared with the model."""
        reply = self.driver.command(self.ids(name), dict(frame))
        step = Step(
            rule, english, kind="command", device=name, frame=frame, conv=conv_name, expect=expect
        )
        self.finish(step, check_reply(step.english, expect, reply), [], marks)

    def rest_step(
        self,
        rule: str,
        english: str,
        name: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        expect: Expect,
        marks: dict[str, int],
    ) -> None:
        """Device ``name``'s user calls the REST API; the answer and then the whole observable
        state are compared with the model."""
        reply = self.rest_call(name, method, path, body)
        step = Step(
            rule,
            english,
            kind="rest",
            device=name,
            method=method,
            path=path,
            body=body,
            expect=expect,
        )
        self.finish(step, check_reply(step.english, expect, reply), [], marks)

    def finish(
        self,
        step: Step,
        problems: list[str],
        presence: list[PresenceEvent],
        marks: dict[str, int],
        settle_s: float = 3.0,
    ) -> None:
        """Compare the whole observable state with the model after a step; fail with problems.

        ``settle_s`` bounds the waits for frames and rows the step must produce."""
        ENV.used[step.rule] = ENV.used.get(step.rule, 0) + 1
        timeout = settle_s * ENV.scale
        problems = list(problems)
        problems += check_presence(presence, self.driver, marks, timeout)
        problems += [p for p in check_streams(self.model, self.driver, timeout) if p != "waiting"]
        problems += check_presence_leaks(self.model, self.driver)
        problems += check_database(self.model, self.driver, timeout)
        self.walk.add(step)
        if problems:
            self.walk.fail(problems, self._robot_checks(presence))
            ENV.last_failure = self.walk
            raise AssertionError(self.walk.report())

    def _robot_checks(self, presence: list[PresenceEvent]) -> list[str]:
        """Robot lines asserting, after the failing step, what the model expected and the
        server did otherwise: presence frames, each differing stream, the stored rows."""
        walk, lines = self.walk, []
        for event in presence:
            lines.append(
                f"Wait For Frame{SEP}{walk.names_in(event.watcher)}{SEP}presence{SEP}"
                f"device_id={walk.value(event.device_id)}{SEP}status={event.status}"
                f"{SEP}user_status={event.user_status}"
            )
        for device in self.model.devices.values():
            if not device.connected:
                continue
            seen, _ = received_streams(self.driver.client(device.device_id))
            for key in sorted(set(seen) | set(device.stream)):
                want = [w for w in device.stream.get(key, []) if w not in device.stale_ok]
                got = [g for g in seen.get(key, []) if g not in device.stale_ok]
                if got != want:
                    lines += walk.stream_check(device.device_id, key, want, got)
        db = self.driver.snapshot(list(self.model.conversations), list(self.model.devices))
        for conv in self.model.conversations.values():
            if db["messages"][conv.conversation_id] != [m.row() for m in conv.messages]:
                lines += walk.rows_check(
                    conv.conversation_id, [(m.seq, m.version, m.deleted) for m in conv.messages]
                )
        return lines

    # ----- connecting --------------------------------------------------------------------------
    @initialize(data=st.data())
    def first_devices(self, data: st.DataObject) -> None:
        """Walks start with a member of each conversation online, so every rule is open."""
        for name in data.draw(
            st.sampled_from([["u0-d0", "u1-d0"], ["u1-d1", "u2-d0"], ["u0-d1"]]),
            label="first devices",
        ):
            marks = self.driver.mark()
            expect = self.model.connect(self.ids(name), "valid", None)
            reply = self.driver.connect(
                self.ids(name), self.driver.token(self.ids(name), "valid"), None
            )
            step = Step(
                "connect",
                f"{name} connects with a valid token",
                kind="connect",
                device=name,
                token="valid",
                resume=None,
                expect=expect,
            )
            self.finish(step, check_reply(step.english, expect, reply), expect.presence, marks)

    @precondition(lambda self: bool(self.offline()))
    @rule(data=st.data())
    def connect(self, data: st.DataObject) -> None:
        """A device connects, with a good or a bad token, resuming or not."""
        name = pick(data, self.offline(), DEVICES, "device")
        device_id = self.ids(name)
        token_kind = data.draw(st.sampled_from(TOKEN_KINDS), label="token")
        if token_kind == "expires-in-2s":
            self.token_runs_out(name)  # costs two seconds: one token kind among many
            return
        resume = self._draw_resume(data, device_id) if token_kind == "valid" else None
        other = self.ids("u1-d0" if name.startswith("u0") else "u0-d0")
        marks = self.driver.mark()
        expect = self.model.connect(device_id, token_kind, resume)
        reply = self.driver.connect(
            device_id, self.driver.token(device_id, token_kind, other), resume
        )
        if reply.status is not None and not expect.ok:
            # Refused on the upgrade: the token travelled in hello, so this is a server choice
            # the protocol does not allow for a token given in hello.
            reply = Reply({"type": "http", "status": reply.status}, None)
        step = Step(
            "connect",
            f"{name} connects with a {token_kind} token"
            + (f", resuming {self.walk.names_in(json.dumps(resume))}" if resume else ""),
            kind="connect",
            device=name,
            token=token_kind,
            resume=resume,
            expect=expect,
        )
        self.finish(step, check_reply(step.english, expect, reply), expect.presence, marks)

    def _draw_resume(self, data: st.DataObject, device_id: str) -> dict[str, Any] | None:
        mode = data.draw(
            st.sampled_from(
                ["none"] * 3
                + ["head", "behind", "ahead", "zero", "malformed", "forbidden", "replay-edge"]
            ),
            label="resume",
        )
        if mode == "none":
            return None
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="resume of")
        conv = self.conv_of(conv_name)
        head = conv.head
        if mode == "malformed":
            return {conv.conversation_id: data.draw(st.sampled_from(MALFORMED_SEQS))}
        if mode == "forbidden":
            user = self.model.devices[device_id].user_id
            if user in conv.members:
                return {self.ids("c0") + "-unknown": 0}
            return {conv.conversation_id: 0}
        if self.model.devices[device_id].user_id not in conv.members:
            return None
        if mode == "replay-edge":
            limit = ENV.limits.replay_limit
            if limit is None:
                ENV.unsupported.setdefault("resume at the replay limit", "replay limit unknown")
                return None
            gap = data.draw(st.sampled_from([limit - 1, limit, limit + 1]), label="missed")
            return {conv.conversation_id: max(0, head - gap)}
        seq = {
            "head": head,
            "ahead": head + 1,
            "zero": 0,
            "behind": max(0, head - data.draw(st.integers(1, 3), label="behind by")),
        }[mode]
        return {conv.conversation_id: seq}

    def token_runs_out(self, name: str) -> None:
        """A device connects with a token valid for two more seconds: welcome, then
        ``token_expired`` (``ref: null``) and close 4003 when it runs out (§3.4-b)."""
        device_id = self.ids(name)
        marks = self.driver.mark()
        expect = self.model.connect(device_id, "valid", None)
        reply = self.driver.connect(device_id, self.driver.token(device_id, "expires-in-2s"), None)
        problems = check_reply(f"{name} connects with a token expiring in 2 s", expect, reply)
        if expect.ok and not problems:
            closed = self.driver.wait_closed(device_id, 6.0 * ENV.scale)
            expiry = error_expect("token_expired", 4003)
            problems += check_reply(
                f"the session of {name} when its token runs out",
                expiry,
                Reply(closed.frame, closed.close, None),
            )
            if closed.frame is not None and closed.frame.get("ref") is not None:
                problems.append(
                    f"token_expired of {name} carries ref "
                    f"{closed.frame.get('ref')!r}, expected null (§3.4-b)"
                )
            events = expect.presence + self.model.disconnect(device_id)
        else:
            events = expect.presence
        step = Step(
            "token_runs_out",
            f"{name} connects with a token that expires 2 s later "
            "and stays connected until it does",
            kind="short-token",
            device=name,
            expect=expect,
        )
        self.finish(step, problems, events, marks)

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data(), abrupt=st.booleans())
    def disconnect(self, data: st.DataObject, abrupt: bool) -> None:
        """A device closes cleanly (1000) or loses its network (TCP connection dropped)."""
        name = pick(data, self.connected(), DEVICES, "device")
        marks = self.driver.mark()
        events = self.model.disconnect(self.ids(name))
        self.driver.disconnect(self.ids(name), abrupt)
        how = "loses its network" if abrupt else "disconnects cleanly"
        step = Step("disconnect", f"{name} {how}", kind="drop" if abrupt else "close", device=name)
        # §5.4-a: an abrupt loss may only be noticed by the heartbeat timeout.
        settle = ENV.limits.offline_after_drop_s if abrupt else 3.0
        self.finish(step, [], events, marks, settle)

    # ----- messages ----------------------------------------------------------------------------
    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data())
    def chat(self, data: st.DataObject) -> None:
        """A device sends: new key, retried key (same or other body), bodies around the limit.

        Named to sort first: Hypothesis favours its first rule, and sending is the core action."""
        name = pick(data, self.connected(), DEVICES, "device")
        device_id = self.ids(name)
        conv = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        cmid, body = self._draw_key_and_body(data, name, device_id, conv)
        over_rest = data.draw(st.sampled_from([False] * 4 + [True]), label="over REST")
        marks = self.driver.mark()
        expect = self.model.send(device_id, self.ids(conv), cmid, body)
        if over_rest:
            reply = self._rest_send(name, conv, cmid, body)
        else:
            reply = self.driver.command(
                device_id,
                {
                    "type": "send",
                    "conversation_id": self.ids(conv),
                    "client_msg_id": cmid,
                    "body": body,
                },
            )
        step = Step(
            "send",
            f"{name} sends {_describe_body(body)} to {conv} with key "
            f"{_describe_key(cmid)}" + (" through the REST API" if over_rest else ""),
            kind="send",
            device=name,
            conv=conv,
            cmid=cmid,
            body=body,
            rest=over_rest,
            expect=expect,
        )
        self.finish(step, check_reply(step.english, expect, reply), [], marks)

    def _draw_key_and_body(
        self, data: st.DataObject, name: str, device_id: str, conv: str
    ) -> tuple[str, Any]:
        used = sorted(k for (d, k) in self.model.keys if d == device_id)
        kind = data.draw(
            st.sampled_from(
                ["new"] * 4
                + ["retry", "retry-other-body", "128", "129", "empty", "limit", "special"]
            ),
            label="key",
        )
        body: Any = {"text": f"m{self.counter + 1}", "n": self.counter + 1}
        if kind in ("retry", "retry-other-body") and used:
            cmid = data.draw(st.sampled_from(used), label="retried key")
            sent = json.loads(self.model.sent_bodies[(device_id, cmid)])
            if kind == "retry-other-body":
                return cmid, {"text": "other body"}
            if isinstance(sent, dict) and data.draw(st.booleans(), label="keys reordered"):
                sent = dict(reversed(list(sent.items())))  # the same JSON value (§4.2-f)
            return cmid, sent
        if kind == "128":
            return (self.next_key(name) + "x" * 128)[:128], body
        if kind == "129":
            return (self.next_key(name) + "x" * 129)[:129], body
        if kind == "empty":
            return "", body
        if kind == "limit":
            offset = data.draw(st.sampled_from([-1, 0, 1]), label="bytes from the limit")
            width = data.draw(st.sampled_from([2, 3, 4]), label="bytes per char")
            return self.next_key(name), sized_body(ENV.limits.max_body_bytes + offset, width)
        if kind == "special":
            text = data.draw(st.sampled_from([*SPECIAL_TEXTS, None]), label="text")
            return self.next_key(name), None if text is None else {"text": text}
        return self.next_key(name), body

    def rest_call(self, name: str, method: str, path: str, body: Any) -> Reply:
        """A REST request with the device's token, answered in the shape of a WebSocket reply."""
        token = self.driver.token(self.ids(name), "valid")
        return rest_as_reply(self.driver.rest(method, path, token, body), {200: False})

    def _rest_send(self, name: str, conv: str, cmid: str, body: Any) -> Reply:
        token = self.driver.token(self.ids(name), "valid")
        reply = self.driver.rest(
            "POST",
            f"/v1/conversations/{self.ids(conv)}/messages",
            token,
            {"client_msg_id": cmid, "body": body},
        )
        return rest_as_reply(reply, {201: False, 200: True})

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data())
    def deep_body(self, data: st.DataObject) -> None:
        """A body nested deeper than any JSON parser allows: bad_request naming the frame's ref."""
        name = pick(data, self.connected(), DEVICES, "device")
        conv = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        if data.draw(st.sampled_from([False, False, True]), label="oversize frame"):
            self.oversize_frame(name, conv, data.draw(st.sampled_from([0, 1]), label="over by"))
            return
        depth = 3000
        ref = f"deep{self.counter}"
        cmid = self.next_key(name)
        text = (
            f'{{"type":"send","ref":"{ref}","conversation_id":"{self.ids(conv)}",'
            f'"client_msg_id":"{cmid}","body":{"[" * depth}{"]" * depth}}}'
        )
        marks = self.driver.mark()
        reply = self.driver.raw_command(self.ids(name), text, ref)
        expect = Expect(codes=("bad_request",))
        step = Step(
            "deep_body",
            f"{name} sends a body nested {depth} deep to {conv}",
            kind="raw",
            device=name,
            conv=conv,
            depth=depth,
            expect=expect,
        )
        self.finish(step, check_reply(step.english, expect, reply), [], marks)

    def oversize_frame(self, name: str, conv: str, over: int) -> None:
        """A frame of exactly ``max_frame_bytes`` (refused as too_large: its body is over the
        body limit) or one byte more: close 1009 (§7-c), the device goes offline."""
        device_id, limit = self.ids(name), ENV.limits.max_frame_bytes
        ref = f"big{self.counter}"
        head = (
            f'{{"type":"send","ref":"{ref}","conversation_id":"{self.ids(conv)}",'
            f'"client_msg_id":"{self.next_key(name)}","body":{{"text":"'
        )
        text = head + "x" * (limit + over - len(head) - 3) + '"}}'
        marks = self.driver.mark()
        reply = self.driver.raw_command(device_id, text, ref)
        events: list[PresenceEvent] = []
        if over:
            expect, closed = Expect(codes=()), self.driver.wait_closed(device_id, 5.0)
            events = self.model.disconnect(device_id)
            problems = (
                []
                if closed.close == 1009
                else [
                    f"{name} sent a frame of {len(text.encode())} bytes (limit {limit}): expected "
                    f"close 1009, saw {closed.close} and {closed.frame}"
                ]
            )
        else:
            expect = Expect(codes=("too_large",))
            problems = check_reply(f"{name} sends a frame of exactly {limit} bytes", expect, reply)
        step = Step(
            "oversize_frame",
            f"{name} sends a frame of {len(text.encode())} bytes to {conv} (frame limit {limit})",
            kind="big-frame",
            device=name,
            conv=conv,
            size=len(text.encode()),
            over=over,
            expect=expect,
        )
        self.finish(step, problems, events, marks)

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data(), delete=st.booleans())
    def edit_or_delete(self, data: st.DataObject, delete: bool) -> None:
        """Edit or delete with the current, a stale or a future version (or an unknown seq)."""
        name = pick(data, self.connected(), DEVICES, "device")
        device_id = self.ids(name)
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        conv = self.conv_of(conv_name)
        seq = data.draw(st.integers(1, conv.head + 1), label="seq")
        message = conv.get(seq)
        current = message.version if message else 1
        version = current + data.draw(st.sampled_from([0, 0, 0, -1, 1]), label="version offset")
        body = {"text": f"edit{self.counter}"}
        marks = self.driver.mark()
        expect = self.model.change(device_id, conv.conversation_id, seq, version, body, delete)
        frame: dict[str, Any] = {
            "type": "delete" if delete else "edit",
            "conversation_id": conv.conversation_id,
            "seq": seq,
            "expected_version": version,
        }
        if not delete:
            frame["body"] = body
        over_rest = data.draw(st.sampled_from([False, False, False, True]), label="over REST")
        verb = "deletes" if delete else "edits"
        english = f"{name} {verb} message {seq} of {conv_name} expecting version {version}"
        if over_rest:
            rest_body: dict[str, Any] = {"expected_version": version}
            rest_body.update({"deleted": True} if delete else {"body": body})
            path = f"/v1/conversations/{conv.conversation_id}/messages/{seq}"
            self.rest_step(
                "edit_or_delete",
                english + " through the REST API",
                name,
                "PATCH",
                path,
                rest_body,
                expect,
                marks,
            )
        else:
            self.command_step("edit_or_delete", english, name, frame, conv_name, expect, marks)

    def insert_row(self, data: st.DataObject) -> None:
        """Another program INSERTs a message row directly (seq left to the trigger)."""
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        conv = self.conv_of(conv_name)
        senders = [n for n in DEVICES if self.model.devices[self.ids(n)].user_id in conv.members]
        if not senders:
            return
        sender = pick(data, senders, DEVICES, "sender")
        cmid, body = self.next_key(sender) + "-sql", {"text": f"sql{self.counter}"}
        marks = self.driver.mark()
        seq = self.model.insert_row(conv.conversation_id, self.ids(sender), cmid, body)
        stored = self.driver.insert_row(conv.conversation_id, self.ids(sender), cmid, body)
        problems = [] if stored == seq else [f"the inserted row got seq {stored}, expected {seq}"]
        step = Step(
            "insert_row",
            f"another program inserts a row into {conv_name} as {sender}",
            kind="sql",
            device=sender,
            conv=conv_name,
            cmid=cmid,
            body=body,
        )
        self.finish(step, problems, [], marks)

    def update_row(self, data: st.DataObject) -> None:
        """Another program UPDATEs a message row (body and version) directly."""
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        conv = self.conv_of(conv_name)
        live = [m.seq for m in conv.messages if not m.deleted]
        if not live:
            return
        seq = data.draw(st.sampled_from(live), label="seq")
        body = {"text": f"sql-update{self.counter}"}
        self.counter += 1
        marks = self.driver.mark()
        self.model.update_row(conv.conversation_id, seq, body)
        self.driver.update_row(conv.conversation_id, seq, body)
        step = Step(
            "update_row",
            f"another program updates message {seq} of {conv_name} to {json.dumps(body)}",
            kind="sql-update",
            conv=conv_name,
            seq=seq,
            body=body,
        )
        self.finish(step, [], [], marks)

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data())
    def subscribe(self, data: st.DataObject) -> None:
        """A member or a stranger subscribes: the head, or forbidden."""
        name = pick(data, self.connected(), DEVICES, "device")
        conv_name = data.draw(st.sampled_from([*sorted(CONVERSATIONS), "unknown"]), label="c")
        conv_id = self.ids(conv_name) if conv_name in CONVERSATIONS else f"{self.ids('c0')}-x"
        user = self.model.devices[self.ids(name)].user_id
        expect = (
            Expect({"conversation_id": conv_id, "head_seq": self.conv_of(conv_name).head})
            if self.model.is_member(user, conv_id)
            else Expect(codes=("forbidden",))
        )
        frame = {"type": "subscribe", "conversation_id": conv_id}
        marks = self.driver.mark()
        self.command_step(
            "subscribe", f"{name} subscribes to {conv_name}", name, frame, conv_name, expect, marks
        )

    # ----- receipts and history ----------------------------------------------------------------
    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data(), kind=st.sampled_from(["delivered", "read"]))
    def receipt(self, data: st.DataObject, kind: str) -> None:
        """A receipt forward, stale, equal, at head, beyond head or at zero."""
        name = pick(data, self.connected(), DEVICES, "device")
        device_id = self.ids(name)
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        conv = self.conv_of(conv_name)
        cursor = self.model.devices[device_id].cursor(conv.conversation_id)[kind == "read"]
        seq = data.draw(
            st.sampled_from(
                sorted({0, max(cursor - 1, 1), cursor, cursor + 1, conv.head, conv.head + 1})
            ),
            label="seq",
        )
        marks = self.driver.mark()
        expect = self.model.receipt(device_id, conv.conversation_id, kind, seq)
        frame = {
            "type": "receipt",
            "conversation_id": conv.conversation_id,
            "kind": kind,
            "seq": seq,
        }
        self.command_step(
            "receipt",
            f"{name} confirms {kind} up to {seq} in {conv_name}",
            name,
            frame,
            conv_name,
            expect,
            marks,
        )

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data())
    def history(self, data: st.DataObject) -> None:
        """A history page with bounds at, one below and one above every edge."""
        name = pick(data, self.connected(), DEVICES, "device")
        device_id = self.ids(name)
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        head = self.conv_of(conv_name).head
        edges = sorted({0, 1, 2, max(head - 1, 0), head, head + 1})
        after = data.draw(st.sampled_from([None, *edges]), label="after_seq")
        before = data.draw(st.sampled_from([None, *[e for e in edges if e > 0]]), label="before")
        cap = ENV.limits.history_limit_max
        limit = data.draw(st.sampled_from([None, 1, 2, cap, 0, cap + 1]), label="limit")
        frame: dict[str, Any] = {"type": "history", "conversation_id": self.ids(conv_name)}
        for key, value in (("after_seq", after), ("before_seq", before), ("limit", limit)):
            if value is not None:
                frame[key] = value
        marks = self.driver.mark()
        expect = self.model.history(device_id, self.ids(conv_name), after, before, limit)
        shown = {k: v for k, v in frame.items() if k not in ("type", "conversation_id")}
        english = f"{name} asks for the history of {conv_name} {shown or ''}"
        if data.draw(st.sampled_from([False, False, False, True]), label="over REST"):
            query = "&".join(f"{k}={v}" for k, v in shown.items())
            path = f"/v1/conversations/{self.ids(conv_name)}/messages" + (f"?{query}" * bool(query))
            self.rest_step(
                "history", english + " through the REST API", name, "GET", path, None, expect, marks
            )
            return
        self.command_step("history", english, name, frame, conv_name, expect, marks)

    # ----- presence ----------------------------------------------------------------------------
    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data(), status=st.sampled_from(["online", "away", "online", "away", "offline"]))
    def set_presence(self, data: st.DataObject, status: str) -> None:
        """A device says it is online or away."""
        name = pick(data, self.connected(), DEVICES, "device")
        marks = self.driver.mark()
        expect = (
            self.model.set_presence(self.ids(name), status)
            if status != "offline"
            else Expect(codes=("bad_request",))
        )  # §4.7-a: a disconnect does that
        frame = {"type": "presence", "status": status}
        reply = self.driver.command(self.ids(name), dict(frame))
        step = Step(
            "set_presence",
            f"{name} sets its presence to {status}",
            kind="command",
            device=name,
            frame=frame,
            expect=expect,
        )
        self.finish(step, check_reply(step.english, expect, reply), expect.presence, marks)

    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data(), over_rest=st.booleans())
    def query_presence(self, data: st.DataObject, over_rest: bool) -> None:
        """A member or a stranger asks for presence, over WebSocket or REST."""
        name = pick(data, self.connected(), DEVICES, "asker")
        asker = self.model.devices[self.ids(name)]
        users = data.draw(
            st.lists(st.sampled_from(sorted(USERS)), min_size=1, max_size=3, unique=True),
            label="users",
        )
        real = [self.ids(u) for u in users]
        marks = self.driver.mark()
        if over_rest:
            problems = self._rest_presence(name, real)
            english = f"{name} reads the presence of {', '.join(users)} through the REST API"
            frame: dict[str, Any] = {}
        else:
            frame = {"type": "presence_query", "user_ids": real}
            reply = self.driver.command(self.ids(name), dict(frame))
            english = f"{name} asks for the presence of {', '.join(users)}"
            problems = check_reply(english, Expect({}), reply)
            if not problems and reply.frame is not None:
                problems = check_presence_answer(
                    self.model, asker.user_id, reply.frame.get("users"), real, english
                )
        step = Step(
            "query_presence",
            english,
            kind="rest-presence" if over_rest else "command",
            device=name,
            frame=frame,
            users=users,
            answers={u: self.model.presence_answer(asker.user_id, self.ids(u)) for u in users},
        )
        self.finish(step, problems, [], marks)

    def _rest_presence(self, name: str, users: list[str]) -> list[str]:
        asker = self.model.devices[self.ids(name)]
        token = self.driver.token(asker.device_id, "valid")
        problems = []
        for user_id in users:
            reply = self.driver.rest("GET", f"/v1/users/{user_id}/presence", token)
            over = f"GET /v1/users/{self.walk.names_in(user_id)}/presence as {name}"
            if reply.status != 200:
                problems.append(f"{over}: expected 200, got {reply.status} {reply.frame}")
                continue
            problems += check_presence_answer(
                self.model, asker.user_id, {user_id: reply.frame}, [user_id], over
            )
        return problems

    # ----- other parties -----------------------------------------------------------------------
    @precondition(lambda self: bool(self.connected()))
    @rule(data=st.data())
    def other_party(self, data: st.DataObject) -> None:
        """Someone else acts: an admin changes membership, another program writes SQL.

        One rule for the three: Hypothesis favours the first of its rules (sorted by name), and
        three always-enabled rules would crowd out the devices' own actions."""
        action = data.draw(
            st.sampled_from(["membership", "membership", "insert", "update"]), label="other party"
        )
        {
            "membership": self.change_membership,
            "insert": self.insert_row,
            "update": self.update_row,
        }[action](data)

    def change_membership(self, data: st.DataObject) -> None:
        """A member is added or removed while its devices are online or offline."""
        conv_name = data.draw(st.sampled_from(sorted(CONVERSATIONS)), label="conversation")
        conv = self.conv_of(conv_name)
        user = data.draw(st.sampled_from(sorted(USERS)), label="user")
        user_id = self.ids(user)
        marks = self.driver.mark()
        if user_id in conv.members:
            if len(conv.members) == 1:
                return
            self.model.remove_member(conv.conversation_id, user_id)
            status = self.driver.remove_member(conv.conversation_id, user_id)
            english, kind, want = f"{user} is removed from {conv_name}", "remove", 204
        else:
            self.model.add_member(conv.conversation_id, user_id)
            status = self.driver.add_member(conv.conversation_id, user_id)
            english, kind, want = f"{user} is added to {conv_name}", "add", 201
        problems = [] if status == want else [f"{english}: HTTP {status}, expected {want}"]
        step = Step("change_membership", english, kind=kind, user=user, conv=conv_name)
        self.finish(step, problems, [], marks)


def error_expect(code: str, close: int | None = None) -> Expect:
    return Expect(codes=(code,), close=close)


def pick(data: st.DataObject, choices: list[Any], universe: list[Any], label: str) -> Any:
    """One of ``choices`` drawn as a position in the fixed ``universe`` (the next choice at or
    after it): a draw keeps its meaning when the shrinker deletes earlier steps."""
    at = data.draw(st.integers(0, len(universe) - 1), label=label)
    ordered = universe[at:] + universe[:at]
    return next(c for c in ordered if c in choices)


def sized_body(target_bytes: int, width: int) -> dict[str, str]:
    """``{"text": …}`` of exactly ``target_bytes`` serialised UTF-8 bytes, using characters of
    ``width`` bytes (2: é, 3: €, 4: 😀) and ASCII padding."""
    char = {2: "é", 3: "€", 4: "😀"}[width]
    room = max(target_bytes - body_bytes({"text": ""}), 0)
    text = char * (room // width) + "x" * (room % width)
    assert body_bytes({"text": text}) == target_bytes or room == 0
    return {"text": text}


def rest_as_reply(reply: Reply, ok_statuses: dict[int, bool]) -> Reply:
    """A REST answer in the shape of a WebSocket reply (``ack`` or ``error``)."""
    data = reply.frame or {}
    if reply.status in ok_statuses:
        return Reply({"type": "ack", **data}, None)
    return Reply({"type": "error", **data}, None)


def _describe_body(body: Any) -> str:
    text = body.get("text", "") if isinstance(body, dict) else body
    size = body_bytes(body)
    if isinstance(text, str) and len(text) > 24:
        return f"a body of {size} bytes ({text[:3]}…)"
    return json.dumps(body, ensure_ascii=False)


def _describe_key(cmid: str) -> str:
    return f"of {len(cmid)} chars" if len(cmid) > 40 or not cmid else cmid


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
