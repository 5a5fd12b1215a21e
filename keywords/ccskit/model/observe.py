"""Compare what the server did with what the model predicted; every function returns problems.

A problem is one sentence: what was expected, what was seen, where. An empty list means the
server agrees with the model on that aspect.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .driver import Driver, Reply, received_streams
from .state import Expect, Model, PresenceEvent, body_key

RETRYABLE = {"rate_limited", "unavailable", "internal"}


def _short(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_reply(what: str, expect: Expect, reply: Reply) -> list[str]:
    """The reply (ack fields or error code, ``ref``, ``retryable``, close) is the predicted one."""
    frame = reply.frame
    if frame is None:
        return [f"{what}: expected {_expected(expect)}, no reply came (close {reply.close})"]
    problems: list[str] = []
    kind = frame.get("type")
    if reply.ref is not None and frame.get("ref") != reply.ref:
        problems.append(f"{what}: reply ref {frame.get('ref')!r}, expected {reply.ref!r}")
    if kind in ("ack", "welcome") and (expect.ok or expect.also_ack):
        for key, value in expect.fields.items():
            if key != "conversations" and frame.get(key) != value:
                problems.append(
                    f"{what}: expected {key}={value!r}, the reply says "
                    f"{frame.get(key)!r} in {_short(frame)}"
                )
        if expect.ok:
            problems += [
                f"{what}: expected {desc}, the reply is {_short(frame, 600)}"
                for desc, check in expect.checks
                if not check(frame)
            ]
        return problems
    if kind == "error" and not expect.ok:
        code = frame.get("code")
        if code not in expect.codes:
            problems.append(f"{what}: expected error {'/'.join(expect.codes)}, got {_short(frame)}")
        elif frame.get("retryable") is not (code in RETRYABLE):
            problems.append(f"{what}: error {code} says retryable={frame.get('retryable')!r}")
        problems += [
            f"{what}: expected {desc}, the reply is {_short(frame, 600)}"
            for desc, check in expect.checks
            if not check(frame)
        ]
        if expect.close is not None and reply.close != expect.close:
            problems.append(
                f"{what}: expected close {expect.close} after {code}, saw {reply.close}"
            )
        return problems
    return [f"{what}: expected {_expected(expect)}, got {_short(frame)}"]


def _expected(expect: Expect) -> str:
    if expect.ok:
        return f"an ack with {_short(expect.fields)}"
    close = f" and close {expect.close}" if expect.close else ""
    return f"error {'/'.join(expect.codes)}{close}"


def check_streams(model: Model, driver: Driver, timeout_s: float) -> list[str]:
    """Each connected device received exactly the predicted frames, per conversation in order."""
    driver.wait(lambda: not _stream_problems(model, driver, final=False), timeout_s)
    return _stream_problems(model, driver, final=True)


def _stream_problems(model: Model, driver: Driver, final: bool) -> list[str]:
    problems = []
    for device in model.devices.values():
        if not device.connected:
            continue
        seen, _ = received_streams(driver.client(device.device_id))
        for key in sorted(set(seen) | set(device.stream)):
            want, got = device.stream.get(key, []), seen.get(key, [])
            if device.stale_ok:  # frames the protocol allows but does not require
                want = [w for w in want if w not in device.stale_ok]
                got = [g for g in got if g not in device.stale_ok]
            if got == want or (not final and got == want[: len(got)]):
                if got != want:
                    problems.append("waiting")
                continue
            problems.append(_stream_difference(device.device_id, key, want, got))
    return problems


def _stream_difference(
    device_id: str, key: tuple[str, str], want: list[Any], got: list[Any]
) -> str:
    first = next(
        (i for i, (w, g) in enumerate(zip(want, got, strict=False)) if w != g),
        min(len(want), len(got)),
    )
    return (
        f"{device_id} {key[0]} of {key[1]}: expected {len(want)} frames, received "
        f"{len(got)}; first difference at #{first + 1}: expected "
        f"{_short(want[first] if first < len(want) else 'nothing more')}, received "
        f"{_short(got[first] if first < len(got) else 'nothing more')}"
    )


def check_presence(
    events: list[PresenceEvent], driver: Driver, marks: dict[str, int], timeout_s: float
) -> list[str]:
    """Each predicted presence frame reaches its watcher (since the step began)."""

    def frames(event: PresenceEvent) -> list[Any]:
        client = driver.client(event.watcher)
        return client.frames[marks.get(event.watcher, client.connection_start) :]

    driver.wait(lambda: all(_has_presence(frames(e), e) for e in events), timeout_s)
    problems = []
    for event in events:
        if not _has_presence(frames(event), event):
            seen = [f.data for f in frames(event) if f.type == "presence"]
            problems.append(
                f"{event.watcher} expected presence {{device_id={event.device_id}, "
                f"status={event.status}, user_status={event.user_status}}}, saw {_short(seen)}"
            )
    return problems


def _has_presence(frames: list[Any], event: PresenceEvent) -> bool:
    return any(
        f.type == "presence"
        and f.data.get("device_id") == event.device_id
        and f.data.get("status") == event.status
        and f.data.get("user_status") == event.user_status
        for f in frames
    )


def check_presence_leaks(model: Model, driver: Driver) -> list[str]:
    """No device heard about a user it shared no conversation with during its connection."""
    problems = []
    for device in model.devices.values():
        if not device.connected:
            continue
        _, presence = received_streams(driver.client(device.device_id))
        for frame in presence:
            about = frame.get("user_id")
            if frame.get("device_id") == device.device_id:
                problems.append(
                    f"{device.device_id} received a presence frame about itself: {_short(frame)}"
                )
            elif about != device.user_id and about not in device.sharers:
                problems.append(
                    f"{device.device_id} received presence of {about}, a user it "
                    f"shares no conversation with: {_short(frame)}"
                )
    return problems


def check_presence_answer(
    model: Model, asker_user: str, answer: Any, users: list[str], over: str
) -> list[str]:
    """A ``presence_query`` (or REST) answer agrees with the model for every asked user."""
    if not isinstance(answer, dict):
        return [f"{over}: expected a users map, got {_short(answer)}"]
    problems = []
    for user_id in users:
        want = model.presence_answer(asker_user, user_id)
        got = answer.get(user_id)
        if not isinstance(got, dict):
            problems.append(f"{over}: no entry for {user_id} in {_short(answer)}")
            continue
        devices = {
            d.get("device_id"): d.get("status")
            for d in got.get("devices") or []
            if isinstance(d, dict)
        }
        live = {d: s for d, s in devices.items() if s != "offline"}
        if got.get("status") != want["status"] or live != want["devices"]:
            problems.append(
                f"{over}: about {user_id} expected status {want['status']} with "
                f"devices {want['devices']}, got {_short(got)}"
            )
        elif want["stranger"] and devices:
            problems.append(
                f"{over}: {user_id} shares no conversation with {asker_user} but "
                f"its devices are listed: {_short(got)}"
            )
    return problems


def check_database(model: Model, driver: Driver, timeout_s: float) -> list[str]:
    """Rows of messages, heads, members, cursors and presence agree with the model."""
    deadline = time.monotonic() + timeout_s
    while True:
        problems = _database_problems(model, driver)
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(0.05)  # rows written by the server's own transactions: poll until settled


def _database_problems(model: Model, driver: Driver) -> list[str]:
    convs, devices = list(model.conversations), list(model.devices)
    snap = driver.snapshot(convs, devices)
    problems = []
    for conv in model.conversations.values():
        cid = conv.conversation_id
        want = [m.row() for m in conv.messages]
        if snap["messages"][cid] != want:
            problems.append(
                f"table messages of {cid}: expected {_short(want, 600)}, "
                f"stored {_short(snap['messages'][cid], 600)}"
            )
        if snap["heads"].get(cid) != conv.head:
            problems.append(
                f"conversations.head_seq of {cid}: expected {conv.head}, "
                f"stored {snap['heads'].get(cid)}"
            )
        stored = {u for c, u in snap["members"] if c == cid}
        if stored != set(conv.members):
            problems.append(
                f"conversation_members of {cid}: expected {sorted(conv.members)}, "
                f"stored {sorted(stored)}"
            )
        problems += _cursor_problems(model, conv.conversation_id, snap["cursors"])
    for device in model.devices.values():
        stored_status = snap["presence"].get(device.device_id)
        allowed = {device.status} if device.ever_connected else {None, "offline"}
        if stored_status not in allowed:
            problems.append(
                f"device_presence.status of {device.device_id}: expected "
                f"{device.status}, stored {stored_status}"
            )
    return problems


def _cursor_problems(model: Model, cid: str, stored: dict[Any, Any]) -> list[str]:
    problems = []
    conv = model.conversations[cid]
    for device in model.devices.values():
        want = device.cursor(cid)
        got = stored.get((device.device_id, cid), (0, 0))
        joined = conv.members.get(device.user_id, 0)
        # A server may start an added member's delivered cursor at its join point.
        if got != want and got != (max(want[0], joined), want[1]):
            problems.append(
                f"device_cursors of {device.device_id} in {cid}: expected "
                f"delivered/read {want[0]}/{want[1]}, stored {got[0]}/{got[1]}"
            )
    return problems


def history_body(messages: Any) -> list[Any]:
    """History entries as the model compares them (for REST answers)."""
    return [(m.get("seq"), m.get("version"), body_key(m.get("body"))) for m in messages or []]
