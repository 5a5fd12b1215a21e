"""Live traffic for fault tests: a few reference clients sending at a steady, modest rate.

Each sender sends one message at a time and waits for its reply. A message that got a
retryable error (``unavailable``) or whose connection closed before the reply stays in the
client's outbox and is retried, with the same ``client_msg_id``, before any newer message: so
one device's messages are stored in the order it first sent them (P3) even across an outage.
Everything is bounded: a number of messages per sender, a run time, a drain time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .checker import Ack, Attempt, Delivery, Expectation, History, StoredRow, body_hash
from .client import ClientError, DeviceClient
from .db import CcsDb


@dataclass
class TrafficPlan:
    """How much traffic, how fast, for how long."""

    conversation_id: str
    rate_per_s: float = 30.0  # all senders together
    max_messages: int = 2000  # all senders together
    max_seconds: float = 120.0
    send_timeout_s: float = 10.0
    retry_cap_s: float = 0.5


@dataclass
class LiveTraffic:
    """Drives ``senders`` in the background; gathers what is needed for the checker."""

    plan: TrafficPlan
    senders: list[DeviceClient]
    receivers: list[DeviceClient]
    start_head: int = 0
    started_wall: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    _log_start: dict[str, tuple[int, int]] = field(default_factory=dict)
    _frame_start: dict[str, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)  # sender tasks that died of an error
    _stop: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Started and not stopped yet."""
        return self._stop is not None and not self._stop.is_set()

    # ----- running ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Remember where every client's logs stand, then start one task per sender."""
        self.started_wall = time.time()
        for c in self.senders:
            self._log_start[c.alias] = (len(c.attempt_log), len(c.send_log))
        for c in self.receivers:
            self._frame_start[c.alias] = len(c.frames)
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        per_sender = max(1, self.plan.max_messages // len(self.senders))
        interval = len(self.senders) / self.plan.rate_per_s
        deadline = loop.time() + self.plan.max_seconds
        for i, client in enumerate(self.senders):
            task = loop.create_task(self._sender(client, per_sender, interval, deadline, i))
            self._tasks.append(task)

    async def _sender(
        self, client: DeviceClient, count: int, interval: float, deadline: float, index: int
    ) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None
        # Senders start spread over one interval so the total rate is steady.
        await asyncio.sleep(interval * index / max(1, len(self.senders)))
        sent, failures = 0, 0
        while not self._stop.is_set() and loop.time() < deadline:
            if self._pending(client):
                failures = await self._retry(client, failures, deadline)
                continue
            if sent >= count:
                return
            sent += 1
            body = {"text": f"{client.alias} live {sent}", "n": sent}
            await self._send(client, body, None, deadline)
            # Rate pacing (not synchronisation): the plan asks for a steady, modest rate.
            await asyncio.sleep(interval)

    def _pending(self, client: DeviceClient) -> bool:
        return any(e.conversation_id == self.plan.conversation_id for e in client.outbox.values())

    async def _send(
        self, client: DeviceClient, body: Any, cmid: str | None, deadline: float
    ) -> bool:
        """One send (or re-send); True when acknowledged."""
        try:
            if not client.connected:
                await client.wait_connected(max(0.1, deadline - asyncio.get_running_loop().time()))
            reply = await client.send_message(
                self.plan.conversation_id, body, cmid, self.plan.send_timeout_s
            )
        except ClientError:
            self.outcomes["closed_or_timeout"] += 1
            return False
        kind = "ack" if reply.get("type") == "ack" else str(reply.get("code"))
        self.outcomes[kind] += 1
        return kind == "ack"

    async def _retry(self, client: DeviceClient, failures: int, deadline: float) -> int:
        """Re-send the oldest unacknowledged message; back off (full jitter) after a failure."""
        entry = next(
            e for e in client.outbox.values() if e.conversation_id == self.plan.conversation_id
        )
        if failures:
            await asyncio.sleep(random.uniform(0, min(self.plan.retry_cap_s, 0.05 * 2**failures)))
        ok = await self._send(client, entry.body, entry.client_msg_id, deadline)
        if ok:
            self.outcomes["retried_ok"] += 1
        return 0 if ok else min(failures + 1, 10)

    async def stop(self, drain_s: float) -> dict[str, Any]:
        """Stop new sends, let every sender flush its outbox for up to ``drain_s``."""
        assert self._stop is not None
        self._stop.set()
        await asyncio.wait(self._tasks, timeout=self.plan.send_timeout_s + 1)
        # A sender still waiting (for a reconnect, say) must not retry alongside the drain.
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self.crashes = [
            f"{type(r).__name__}: {r}"
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        for client in self.senders:
            failures = 0
            while self._pending(client) and loop.time() < deadline:
                failures = await self._retry(client, failures, deadline)
        return self.summary()

    # ----- observing -------------------------------------------------------------------------
    def acked_count(self) -> int:
        return sum(1 for _ in self._acks())

    def errors_of(self, code: str) -> list[tuple[str, str, float, float]]:
        """``(device, client_msg_id, wall, latency_s)`` of every reply with error ``code``."""
        return [
            (c.alias, r.client_msg_id, r.wall, r.latency_s)
            for c in self.senders
            for r in c.send_log[self._log_start[c.alias][1] :]
            if r.kind == code and r.conversation_id == self.plan.conversation_id
        ]

    def first_ack_after(self, wall: float, devices: list[str] | None = None) -> float | None:
        """Epoch time of the first acknowledgement received at or after ``wall`` (by one of
        ``devices`` if given: the ones the fault cut off)."""
        times = [
            r.wall
            for c, r in self._acks()
            if r.wall >= wall and (devices is None or c.alias in devices)
        ]
        return min(times) if times else None

    def _acks(self) -> Any:
        for c in self.senders:
            for r in c.send_log[self._log_start[c.alias][1] :]:
                if r.kind == "ack" and r.conversation_id == self.plan.conversation_id:
                    yield c, r

    def summary(self) -> dict[str, Any]:
        attempted = sum(len(self._attempts(c)) for c in self.senders)
        unacked = sum(1 for c in self.senders for _ in self._unacked(c))
        return {
            "attempted": attempted,
            "acked_unique": attempted - unacked,
            "unacked": unacked,
            "replies": dict(self.outcomes),
            "crashes": list(self.crashes),
            "seconds": round(time.time() - self.started_wall, 3),
        }

    def _attempts(self, client: DeviceClient) -> list[tuple[str, str, Any]]:
        start = self._log_start[client.alias][0]
        return [a for a in client.attempt_log[start:] if a[1] == self.plan.conversation_id]

    def _unacked(self, client: DeviceClient) -> list[str]:
        return [
            e.client_msg_id
            for e in client.outbox.values()
            if e.conversation_id == self.plan.conversation_id
        ]

    def unacked_keys(self) -> dict[str, list[str]]:
        return {c.alias: self._unacked(c) for c in self.senders if self._unacked(c)}

    # ----- checking --------------------------------------------------------------------------
    def undelivered(self, stored: list[StoredRow]) -> dict[str, list[int]]:
        """Per receiver, the stored seqs of the traffic window it has not received yet."""
        wanted = {r.seq for r in stored if r.seq > self.start_head}
        conv, late = self.plan.conversation_id, {}
        for c in self.receivers:
            frames = c.frames[self._frame_start[c.alias] :]
            got = {
                d.get("seq")
                for d in (f.data or {} for f in frames)
                if d.get("type") == "message" and d.get("conversation_id") == conv
            }
            if wanted - got:
                late[c.alias] = sorted(wanted - got)
        return late

    def history(self, stored: list[StoredRow]) -> History:
        """The checker's input: attempts in first-send order, acks, rows, deliveries."""
        conv = self.plan.conversation_id
        h = History(stored=[r for r in stored if r.seq > self.start_head])
        for c in self.senders:
            for cmid, _, body in self._attempts(c):
                h.attempts.append(Attempt(c.device_id, cmid, conv, body_hash(body)))
        for c, r in self._acks():
            h.acks.append(Ack(c.device_id, r.client_msg_id, conv, int(r.message_id), int(r.seq)))
        for c in self.receivers:
            frames = c.frames[self._frame_start[c.alias] :]
            h.deliveries[c.device_id] = [
                Delivery(conv, int(d["seq"]), int(d["message_id"]))
                for d in (f.data or {} for f in frames)
                if d.get("type") == "message"
                and d.get("conversation_id") == conv
                and int(d.get("seq", 0)) > self.start_head
            ]
            h.expectations[c.device_id] = [Expectation(conv, self.start_head)]
        return h


def conversation_head(db: CcsDb, conversation_id: str) -> int:
    """Highest stored seq of a conversation (0 when empty)."""
    rows = db.rows(
        "SELECT COALESCE(MAX(seq), 0) AS head FROM messages WHERE conversation_id = %s",
        (conversation_id,),
    )
    return int(rows[0]["head"]) if rows else 0


def stored_rows(db: CcsDb, *conversation_ids: str) -> list[StoredRow]:
    """Every row of the conversations as the checker wants them, in seq order."""
    rows = db.rows(
        "SELECT id, conversation_id, seq, sender_device_id, client_msg_id, body, version "
        "FROM messages WHERE conversation_id = ANY(%s) ORDER BY conversation_id, seq",
        (list(conversation_ids),),
    )
    return [
        StoredRow(
            int(r["id"]),
            r["conversation_id"],
            int(r["seq"]),
            r["sender_device_id"] or "",
            r["client_msg_id"] or "",
            body_hash(r["body"]),
            int(r["version"]),
        )
        for r in rows
    ]
