"""Lean load client: many device connections from one process, open-loop sends, full history.

Built for volume, not for conversation: one :class:`LoadRun` holds N WebSocket connections
(``compression=None``; permessage-deflate triples memory per connection) on the caller's event
loop, sends at a fixed rate from a schedule (open loop), and records per message the scheduled,
sent and acknowledged times and, per receiving device, the receive time. Delivery latency is
measured from the *scheduled* send time so a lagging client cannot hide queueing (no coordinated
omission). The records feed :mod:`ccskit.checker`. Fleets (who connects, which rooms) are
described and provisioned by :mod:`ccskit.bench.fleet`.

Everything is bounded: message counts, phase durations, drain and connect timeouts.

Example (inside a coroutine)::

    fleet = await provision(api_url, secret, make_rooms("run1", rooms=10, members=10))
    run = LoadRun(ws_url, fleet)
    await run.connect()
    stats = await run.send_phase(rate_per_s=500, duration_s=5)
    history = run.history(await fetch_stored(dsn, run.conversation_ids))
    await run.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .bench.fleet import Device, Fleet, Room, make_idle, make_rooms, mint, provision
from .checker import Ack, Attempt, Delivery, Expectation, History, StoredRow, body_hash
from .percentile import percentiles

__all__ = [
    "Device",
    "Fleet",
    "LoadRun",
    "Room",
    "fetch_stored",
    "make_idle",
    "make_rooms",
    "mint",
    "percentiles",
    "provision",
    "raise_fd_limit",
]

CONNECT_IN_FLIGHT = 200
"""Handshakes in flight while connecting a fleet (about 2,000 handshakes/s here)."""


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file soft limit towards ``wanted`` (capped by the hard limit).

    10,000 connections need 10,000 descriptors; children (a server started by the kit) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class Sent:
    """One send: its times (``time.perf_counter`` seconds) and outcome."""

    device_id: str
    client_msg_id: str
    conversation_id: str
    body_hash: str
    phase: int
    t_sched: float
    t_sent: float = 0.0
    t_ack: float = 0.0
    message_id: int = 0
    seq: int = 0
    error: str = ""
    deliveries: int = 0


@dataclass(slots=True)
class Received:
    """One ``message`` frame on one device."""

    conversation_id: str
    seq: int
    message_id: int
    sender_device_id: str
    client_msg_id: str
    t_recv: float


@dataclass(slots=True)
class Closed:
    """A connection the server (or the network) closed while the kit still wanted it."""

    device_id: str
    code: int | None
    reason: str
    t: float


@dataclass(slots=True)
class PhaseStats:
    """What one send phase achieved."""

    phase: int
    offered_rate_per_s: float
    attempted: int
    acked: int
    errors: dict[str, int]
    send_window_s: float
    ack_rate_per_s: float
    deliveries: int
    expected_deliveries: int
    delivery_ms: dict[str, float]
    ack_ms: dict[str, float]
    max_send_lag_ms: float
    drained: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- connections


class LeanConnection:
    """One device's WebSocket: hello, a reader task, and fire-and-forget sends."""

    __slots__ = (
        "_reader",
        "_refs",
        "_waiters",
        "_wanted",
        "closed",
        "counted",
        "device",
        "opened_at",
        "received",
        "run",
        "ws",
    )

    def __init__(self, run: LoadRun, device: Device, counted: bool = True) -> None:
        self.run = run
        self.device = device
        # An extra socket of a device (a race) must not make its room look fully delivered.
        self.counted = counted
        self.ws: ClientConnection | None = None
        self.received: list[Received] = []
        self.closed: Closed | None = None
        self.opened_at = 0.0  # epoch seconds of the welcome; 0 until then (uptime counts from it)
        self._refs = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._wanted = True

    async def open(self, url: str, timeout_s: float) -> None:
        """Connect, say hello, wait for welcome, then read in the background."""
        # ping_interval=None: the server pings us; answering is automatic and cheap.
        self.ws = await connect(
            url,
            compression=None,
            ping_interval=None,
            open_timeout=timeout_s,
            max_size=2**20,
            close_timeout=2,
        )
        await self.ws.send(json.dumps({"type": "hello", "ref": "h", "token": self.device.token}))
        async with asyncio.timeout(timeout_s):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("type") == "welcome":
                    break
                if frame.get("type") == "error":
                    raise RuntimeError(f"{self.device.device_id}: hello refused: {frame}")
        self.opened_at = time.time()
        self._reader = asyncio.create_task(self._read(), name=f"read-{self.device.device_id}")

    async def send(self, record: Sent, body: Any) -> None:
        """Send one message; the reader matches the ack by ``ref``."""
        assert self.ws is not None
        ref = f"s{next(self._refs)}"
        self.run.pending[(self.device.device_id, ref)] = record
        frame = {
            "type": "send",
            "ref": ref,
            "conversation_id": record.conversation_id,
            "client_msg_id": record.client_msg_id,
            "body": body,
        }
        record.t_sent = time.perf_counter()
        try:
            await self.ws.send(json.dumps(frame, separators=(",", ":")))
        except ConnectionClosed:
            self.run.pending.pop((self.device.device_id, ref), None)
            raise

    async def request(self, frame: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a command and return its reply (``ack`` or ``error`` frame)."""
        assert self.ws is not None
        ref = f"q{next(self._refs)}"
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ref] = waiter
        try:
            await self.ws.send(json.dumps({**frame, "ref": ref}))
            async with asyncio.timeout(timeout_s):
                return await waiter
        finally:
            self._waiters.pop(ref, None)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self._on_frame(json.loads(raw), time.perf_counter())
        except ConnectionClosed:
            pass
        except Exception as exc:  # a frame the kit cannot read: stop, and say why
            self._record_close(f"reader failed: {exc!r}")
            raise
        self._record_close(self.ws.close_reason or "")

    def _record_close(self, reason: str) -> None:
        if self._wanted and self.closed is None:
            assert self.ws is not None
            self.closed = Closed(self.device.device_id, self.ws.close_code, reason, time.time())
            self.run.closes.append(self.closed)

    def _on_frame(self, frame: dict[str, Any], t: float) -> None:
        kind = frame.get("type")
        run = self.run
        if kind == "message":
            sender, cmid = frame.get("sender_device_id") or "", frame.get("client_msg_id") or ""
            self.received.append(
                Received(
                    frame["conversation_id"], frame["seq"], frame["message_id"], sender, cmid, t
                )
            )
            if not self.counted:
                return
            run.delivered += 1
            record = run.by_key.get((sender, cmid))
            if record is not None:
                record.deliveries += 1
                run.phase_delivered[record.phase] += 1
        elif kind in ("ack", "error"):
            waiter = self._waiters.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(frame)
                return
            record = run.pending.pop((self.device.device_id, frame.get("ref")), None)
            if record is None:
                return
            record.t_ack = t
            run.phase_answered[record.phase] += 1
            if kind == "ack":
                record.message_id, record.seq = frame["message_id"], frame["seq"]
                self.run.acked += 1
            else:
                record.error = str(frame.get("code"))
                self.run.failed += 1

    async def close(self) -> None:
        """Close on purpose (not counted as an unexpected close)."""
        self._wanted = False
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)


# --------------------------------------------------------------------------- the run


@dataclass(slots=True)
class ConnectStats:
    """How connecting a fleet went."""

    wanted: int
    connected: int
    failed: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        """Handshakes (upgrade + hello + welcome) per second."""
        return self.connected / self.seconds if self.seconds else 0.0


class LoadRun:
    """A fleet of lean connections and everything they sent and received."""

    def __init__(self, ws_url: str, fleet: Fleet, body_pad: int = 16) -> None:
        self.ws_url = ws_url
        self.fleet = fleet
        self.body_pad = "x" * body_pad
        self.conns: dict[str, LeanConnection] = {}
        self.pending: dict[tuple[str, Any], Sent] = {}
        self.sent: list[Sent] = []
        self.by_key: dict[tuple[str, str], Sent] = {}
        self.phase_answered: Counter[int] = Counter()
        self.phase_delivered: Counter[int] = Counter()
        self.closes: list[Closed] = []
        self.acked = 0
        self.failed = 0
        self.delivered = 0
        # Records keep perf_counter times; this turns them into epoch seconds for the report.
        self.epoch_offset = time.time() - time.perf_counter()
        self._phases = itertools.count(1)
        self._serial = itertools.count(1)

    @property
    def conversation_ids(self) -> list[str]:
        """The rooms' conversation ids."""
        return [r.conversation_id for r in self.fleet.rooms]

    @property
    def live(self) -> int:
        """Connections that are open right now."""
        return sum(
            1
            for c in self.conns.values()
            if c.ws is not None and c.closed is None and c.ws.close_code is None
        )

    async def connect(
        self,
        devices: Sequence[Device] | None = None,
        timeout_s: float = 120.0,
        in_flight: int = CONNECT_IN_FLIGHT,
    ) -> ConnectStats:
        """Connect ``devices`` (all of the fleet by default), ``in_flight`` handshakes at a time."""
        todo = [d for d in (devices or self.fleet.devices) if d.device_id not in self.conns]
        limit = asyncio.Semaphore(in_flight)
        errors: Counter[str] = Counter()
        per_conn = max(10.0, timeout_s / 4)

        async def one(device: Device) -> None:
            conn = LeanConnection(self, device)
            async with limit:
                try:
                    await conn.open(self.ws_url, per_conn)
                except Exception as exc:  # counted and reported, the fleet goes on
                    errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                    await conn.close()
                    return
            self.conns[device.device_id] = conn

        t0 = time.perf_counter()
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(one(d) for d in todo))
        seconds = time.perf_counter() - t0
        return ConnectStats(
            len(todo), len(todo) - sum(errors.values()), sum(errors.values()), seconds, dict(errors)
        )

    async def disconnect(self, devices: Sequence[Device] | None = None) -> None:
        """Close ``devices`` (all by default) on purpose."""
        ids = [d.device_id for d in devices] if devices is not None else list(self.conns)
        conns = [self.conns.pop(i) for i in ids if i in self.conns]
        for start in range(0, len(conns), 500):
            await asyncio.gather(*(c.close() for c in conns[start : start + 500]))

    close = disconnect

    async def send_phase(
        self,
        rate_per_s: float,
        duration_s: float | None = None,
        count: int | None = None,
        drain_timeout_s: float = 10.0,
    ) -> PhaseStats:
        """Send at ``rate_per_s`` for ``duration_s`` (or ``count`` messages), then drain.

        Message *i* is scheduled at ``t0 + i / rate`` and goes to room ``i mod rooms`` from that
        room's senders in turn. Sends never wait for acks (open loop); if the client falls behind
        the schedule, the lag shows in the latencies because they start at the scheduled time.
        """
        if count is None:
            if duration_s is None:
                raise ValueError("give duration_s or count")
            count = max(1, round(rate_per_s * duration_s))
        phase = next(self._phases)
        plan = self._plan(count)
        # Earlier phases leave hundreds of thousands of records; a full GC pass over them in the
        # middle of a phase would show up as delivery latency. Freeze them out of the collector.
        gc.collect()
        gc.freeze()
        records: list[Sent] = []
        t0 = time.perf_counter() + 0.02
        max_lag = 0.0
        for i, (room, sender) in enumerate(plan):
            t_sched = t0 + i / rate_per_s
            delay = t_sched - time.perf_counter()
            if delay > 0.001:  # finer sleeps cost more than they buy: send what is due together
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.perf_counter() - t_sched)
            conn = self.conns.get(sender.device_id)
            if conn is None or conn.closed is not None:
                continue
            n = next(self._serial)
            body = {"n": n, "pad": self.body_pad}
            record = Sent(
                sender.device_id,
                f"p{phase}-{n}",
                room.conversation_id,
                body_hash(body),
                phase,
                t_sched,
            )
            records.append(record)
            self.by_key[(record.device_id, record.client_msg_id)] = record
            try:
                await conn.send(record, body)
            except ConnectionClosed as exc:
                record.error = f"closed {exc.rcvd.code if exc.rcvd else None}"
                self.phase_answered[phase] += 1
        self.sent.extend(records)
        members = {
            r.conversation_id: sum(1 for d in r.members if d.device_id in self.conns)
            for r in self.fleet.rooms
        }
        drained = await self._drain(phase, records, members, drain_timeout_s)
        return self._phase_stats(phase, rate_per_s, records, members, max_lag, drained)

    def _plan(self, count: int) -> list[tuple[Room, Device]]:
        rooms = self.fleet.rooms
        if not rooms:
            raise ValueError("this fleet has no rooms to send to")
        turns = [itertools.cycle(r.senders) for r in rooms]
        return [(rooms[i % len(rooms)], next(turns[i % len(rooms)])) for i in range(count)]

    async def _drain(
        self, phase: int, records: Sequence[Sent], members: dict[str, int], timeout_s: float
    ) -> bool:
        """Wait (bounded) until every send is answered and every acked message delivered."""
        deadline = time.perf_counter() + timeout_s
        target: int | None = None
        while time.perf_counter() < deadline:
            if target is None and self.phase_answered[phase] >= len(records):
                target = self._delivery_count_target(records, members)
            if target is not None and self.phase_delivered[phase] >= target:
                return True
            await asyncio.sleep(0.02)
        return False

    async def wait_for_deliveries(self, timeout_s: float = 10.0) -> bool:
        """Wait (bounded) until every acked message reached every connected member of its room.

        For sends made outside :meth:`send_phase` (races); returns False on timeout.
        """
        members = {
            r.conversation_id: sum(1 for d in r.members if d.device_id in self.conns)
            for r in self.fleet.rooms
        }
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if all(r.deliveries >= members.get(r.conversation_id, 0) for r in self.sent if r.seq):
                return True
            await asyncio.sleep(0.02)
        return False

    @staticmethod
    def _delivery_count_target(records: Sequence[Sent], members: dict[str, int]) -> int:
        return sum(members.get(r.conversation_id, 0) for r in records if r.seq)

    def _phase_stats(
        self,
        phase: int,
        rate: float,
        records: Sequence[Sent],
        members: dict[str, int],
        max_lag: float,
        drained: bool,
    ) -> PhaseStats:
        by_key = self.by_key
        delivery_ms = [
            (m.t_recv - rec.t_sched) * 1000
            for c in self.conns.values()
            for m in c.received
            if (rec := by_key.get((m.sender_device_id, m.client_msg_id))) is not None
            and rec.phase == phase
        ]
        acked = [r for r in records if r.seq]
        ack_ms = [(r.t_ack - r.t_sent) * 1000 for r in acked]
        first = min((r.t_sched for r in records), default=0.0)
        last_ack = max((r.t_ack for r in acked), default=first)
        window = max(last_ack - first, 1e-9)
        return PhaseStats(
            phase,
            rate,
            len(records),
            len(acked),
            dict(Counter(r.error for r in records if r.error)),
            window,
            len(acked) / window,
            len(delivery_ms),
            self._delivery_count_target(records, members),
            percentiles(delivery_ms),
            percentiles(ack_ms, (50, 99)),
            max_lag * 1000,
            drained,
        )

    def history(self, stored: Sequence[StoredRow]) -> History:
        """The checker's input: attempts, acks, what ``stored`` holds, and every device's stream."""
        h = History(stored=list(stored))
        for r in self.sent:
            h.attempts.append(Attempt(r.device_id, r.client_msg_id, r.conversation_id, r.body_hash))
            if r.seq:
                h.acks.append(
                    Ack(r.device_id, r.client_msg_id, r.conversation_id, r.message_id, r.seq)
                )
        member_of = {d.device_id: r.conversation_id for r in self.fleet.rooms for d in r.members}
        for device_id, conn in self.conns.items():
            h.deliveries[device_id] = [
                Delivery(m.conversation_id, m.seq, m.message_id) for m in conn.received
            ]
            if device_id in member_of and conn.closed is None:
                h.expectations[device_id] = [Expectation(member_of[device_id])]
        return h


async def fetch_stored(dsn: str, conversation_ids: Sequence[str]) -> list[StoredRow]:
    """Rows of ``messages`` for the conversations, as the checker wants them (asyncpg)."""
    import asyncpg  # the kit's SQL checks otherwise use DatabaseLibrary; only load needs asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, conversation_id, seq, sender_device_id, client_msg_id, body::text AS body, "
            "version "
            "FROM messages WHERE conversation_id = ANY($1::text[])",
            list(conversation_ids),
        )
    finally:
        await conn.close()
    return [
        StoredRow(
            r["id"],
            r["conversation_id"],
            r["seq"],
            r["sender_device_id"] or "",
            r["client_msg_id"] or "",
            body_hash(json.loads(r["body"])) if r["body"] is not None else None,
            r["version"],
        )
        for r in rows
    ]
