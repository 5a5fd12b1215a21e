"""Concurrency races for Test 2.1: same-key retries, concurrent edits, racing receipts.

Each race runs on a :class:`~ccskit.load.LoadRun`'s connections, returns what happened, and raises
``AssertionError`` with the replies when the server broke the promise (P2, P11, P7).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg

from ..checker import body_hash
from ..load import LeanConnection, LoadRun, Room, Sent


def _conn(run: LoadRun, device_id: str) -> LeanConnection:
    conn = run.conns.get(device_id)
    if conn is None or conn.closed is not None:
        raise AssertionError(f"device {device_id} is not connected")
    return conn


async def _extra_connection(run: LoadRun, device_id: str) -> LeanConnection:
    """A second connection of the same device (a reconnect racing the old socket)."""
    base = _conn(run, device_id)
    extra = LeanConnection(run, base.device, counted=False)
    await extra.open(run.ws_url, 10.0)
    return extra


async def retry_same_key(
    run: LoadRun, room: Room, copies: int = 6, connections: int = 2
) -> dict[str, Any]:
    """One device sends the same (client_msg_id, body) ``copies`` times at once over
    ``connections`` sockets: every reply must be an ack of the same message, exactly one of them
    not marked duplicate (P2). The attempt is added to the run's history for the checker."""
    sender = room.senders[0]
    conns = [_conn(run, sender.device_id)]
    conns += [await _extra_connection(run, sender.device_id) for _ in range(connections - 1)]
    n = next(run._serial)
    cmid, body = f"retry-{n}", {"n": n, "retry": True}
    frame = {
        "type": "send",
        "conversation_id": room.conversation_id,
        "client_msg_id": cmid,
        "body": body,
    }
    record = Sent(
        sender.device_id, cmid, room.conversation_id, body_hash(body), 0, time.perf_counter()
    )
    run.sent.append(record)
    run.by_key[(sender.device_id, cmid)] = record
    try:
        replies = await asyncio.gather(
            *(conns[i % len(conns)].request(frame) for i in range(copies))
        )
    finally:
        for extra in conns[1:]:
            await extra.close()
    acks = [r for r in replies if r.get("type") == "ack"]
    ids = {(r.get("message_id"), r.get("seq")) for r in acks}
    fresh = [r for r in acks if not r.get("duplicate")]
    if len(acks) != copies or len(ids) != 1 or len(fresh) != 1:
        raise AssertionError(
            f"{copies} concurrent sends of key {cmid}: expected {copies} acks of "
            f"one message, one not duplicate; got {replies}"
        )
    record.message_id, record.seq = acks[0]["message_id"], acks[0]["seq"]
    record.t_ack = time.perf_counter()
    return {
        "client_msg_id": cmid,
        "message_id": record.message_id,
        "seq": record.seq,
        "acks": len(acks),
        "duplicates": len(acks) - 1,
    }


async def edit_race(run: LoadRun, room: Room, editors: int = 2) -> dict[str, Any]:
    """``editors`` member devices edit one fresh message at once with ``expected_version`` 1:
    exactly one wins (version 2); every other gets ``conflict`` carrying the winner's version and
    body (P11)."""
    author = _conn(run, room.senders[0].device_id)
    n = next(run._serial)
    cmid, body = f"edit-{n}", {"n": n, "text": "original"}
    record = Sent(
        author.device.device_id, cmid, room.conversation_id, body_hash(body), 0, time.perf_counter()
    )
    run.sent.append(record)
    run.by_key[(author.device.device_id, cmid)] = record
    ack = await author.request(
        {
            "type": "send",
            "conversation_id": room.conversation_id,
            "client_msg_id": cmid,
            "body": body,
        }
    )
    if ack.get("type") != "ack":
        raise AssertionError(f"send before the edit race failed: {ack}")
    record.message_id, record.seq, record.t_ack = ack["message_id"], ack["seq"], time.perf_counter()
    # Only the author's user may edit: the contenders are that user's devices, topped up with
    # extra sockets of the author's device when the user has fewer devices than editors.
    own = [d for d in room.members if d.user_id == author.device.user_id]
    contenders = [_conn(run, d.device_id) for d in own[:editors]]
    extras = [
        await _extra_connection(run, author.device.device_id)
        for _ in range(editors - len(contenders))
    ]
    contenders += extras
    bodies = [{"text": f"edit {i} by {c.device.device_id}"} for i, c in enumerate(contenders)]
    try:
        replies = await _edit_all(room, ack["seq"], contenders, bodies)
    finally:
        for extra in extras:
            await extra.close()
    wins = [i for i, r in enumerate(replies) if r.get("type") == "ack"]
    losers = [r for r in replies if r.get("type") == "error"]
    if len(wins) != 1 or len(losers) != editors - 1:
        raise AssertionError(f"{editors} concurrent edits: expected one winner, got {replies}")
    winner_body = bodies[wins[0]]
    for r in losers:
        current = r.get("current") or {}
        if (
            r.get("code") != "conflict"
            or current.get("version") != 2
            or current.get("body") != winner_body
        ):
            raise AssertionError(
                f"loser must get conflict with version 2 and the winner's body "
                f"{winner_body}; got {r}"
            )
    return {
        "seq": ack["seq"],
        "winner": contenders[wins[0]].device.device_id,
        "version": replies[wins[0]].get("version"),
        "conflicts": len(losers),
    }


async def _edit_all(
    room: Room, seq: int, contenders: list[LeanConnection], bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every contender edits ``seq`` from version 1 at the same moment."""
    return await asyncio.gather(
        *(
            c.request(
                {
                    "type": "edit",
                    "conversation_id": room.conversation_id,
                    "seq": seq,
                    "expected_version": 1,
                    "body": b,
                }
            )
            for c, b in zip(contenders, bodies, strict=True)
        )
    )


async def receipt_race(
    run: LoadRun, room: Room, dsn: str, devices: int = 3, per_device: int = 20, seed: int = 7
) -> dict[str, Any]:
    """Several member devices fire shuffled ``delivered``/``read`` receipts at once, each over two
    sockets; each device's cursors must end at the maximum it sent (cursors only move forward,
    read <= delivered; P7). Needs ``head_seq`` >= 1 in the room."""
    rng = random.Random(seed)
    head = max((r.seq for r in run.sent if r.conversation_id == room.conversation_id), default=0)
    if head < 1:
        raise AssertionError(f"no message in {room.conversation_id} to send receipts for")
    racers = room.members[:devices]
    extras = [await _extra_connection(run, d.device_id) for d in racers]
    plan: list[tuple[LeanConnection, dict[str, Any]]] = []
    expected: dict[str, tuple[int, int]] = {}
    for device, extra in zip(racers, extras, strict=True):
        seqs = [rng.randint(1, head) for _ in range(per_device)]
        reads = [rng.randint(1, head) for _ in range(per_device // 2)]
        expected[device.device_id] = (max(seqs + reads), max(reads))
        frames = [("delivered", s) for s in seqs] + [("read", s) for s in reads]
        rng.shuffle(frames)
        for i, (kind, s) in enumerate(frames):
            conn = _conn(run, device.device_id) if i % 2 else extra
            plan.append(
                (
                    conn,
                    {
                        "type": "receipt",
                        "conversation_id": room.conversation_id,
                        "kind": kind,
                        "seq": s,
                    },
                )
            )
    try:
        replies = await asyncio.gather(*(c.request(f) for c, f in plan))
    finally:
        for extra in extras:
            await extra.close()
    refused = [r for r in replies if r.get("type") != "ack"]
    if refused:
        raise AssertionError(f"receipts refused: {refused[:5]}")
    stored = await _cursors(dsn, room.conversation_id, list(expected))
    wrong = {d: (stored.get(d), want) for d, want in expected.items() if stored.get(d) != want}
    if wrong:
        raise AssertionError(
            f"cursors (delivered_upto, read_upto) not at the maximum sent: "
            f"device: (stored, expected) {wrong}"
        )
    return {"devices": len(expected), "receipts": len(plan), "cursors": stored}


async def _cursors(
    dsn: str, conversation_id: str, devices: list[str]
) -> dict[str, tuple[int, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT device_id, delivered_upto, read_upto FROM device_cursors "
            "WHERE conversation_id = $1 AND device_id = ANY($2::text[])",
            conversation_id,
            devices,
        )
    finally:
        await conn.close()
    return {r["device_id"]: (r["delivered_upto"], r["read_upto"]) for r in rows}
