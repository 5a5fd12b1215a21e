"""Lean load client: many device connections from one process, open-loop sends, full history.

Built for volume, not for conversation: one :class:`LoadRun` holds N WebSocket connections
(``compression=None``; permessage-deflate triples memory per connection) on the caller's event
loop, sends at a fixed rate from a schedule (open loop), and records per message the scheduled,
sent and acknowledged times and, per receiving device, the receive time. Delivery latency is
measured from the *scheduled* send time so a lagging client cannot hide queueing (no coordinated
omission). The records feed :mod:`ccskit.checker`.

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
import itertools
import json
import math
import resource
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .checker import Ack, Attempt, Delivery, Expectation, History, StoredRow, body_hash

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


def mint(
    secret: str,
    user: str,
    device: str | None = None,
    admin: bool = False,
    ttl_s: int = 3600,
    issuer: str = "ccs",
    audience: str = "ccs-clients",
) -> str:
    """An HS256 token as protocol.md section 2 describes (the kit shares the server's secret)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "iat": now,
        "exp": now + ttl_s,
        "iss": issuer,
        "aud": audience,
    }
    if device:
        claims["dev"] = device
    if admin:
        claims["role"] = "admin"
    return jwt.encode(claims, secret, algorithm="HS256")


# --------------------------------------------------------------------------- fleet description


@dataclass(frozen=True, slots=True)
class Device:
    """One device identity and its token."""

    user_id: str
    device_id: str
    token: str = ""


@dataclass(slots=True)
class Room:
    """A conversation, its member users' devices, and which of them send."""

    conversation_id: str
    members: list[Device]
    senders: list[Device]


@dataclass(slots=True)
class Fleet:
    """Every device to connect and every room to load."""

    devices: list[Device]
    rooms: list[Room]


def make_rooms(
    prefix: str, rooms: int, members: int, senders: int | None = None, devices_per_user: int = 1
) -> Fleet:
    """``rooms`` conversations of ``members`` devices each (one user per device by default).

    ``senders`` devices of each room send (all by default). Every device belongs to one room, so a
    message reaches exactly ``members`` devices, the sending connection included.
    """
    if members % devices_per_user:
        raise ValueError("members must be a multiple of devices_per_user")
    fleet = Fleet([], [])
    for r in range(rooms):
        room_devices = [
            Device(f"{prefix}-u{r}-{m // devices_per_user}", f"{prefix}-d{r}-{m}")
            for m in range(members)
        ]
        fleet.devices.extend(room_devices)
        n_send = members if senders is None else senders
        fleet.rooms.append(Room(f"{prefix}-c{r}", room_devices, room_devices[:n_send]))
    return fleet


def make_idle(prefix: str, count: int, devices_per_user: int = 10) -> Fleet:
    """``count`` devices in no conversation: connections to hold, with no presence fan-out."""
    devices = [Device(f"{prefix}-u{i // devices_per_user}", f"{prefix}-d{i}") for i in range(count)]
    return Fleet(devices, [])


async def provision(
    api_url: str,
    secret: str,
    fleet: Fleet,
    concurrency: int = 32,
    timeout_s: float = 120.0,
    issuer: str = "ccs",
    audience: str = "ccs-clients",
) -> Fleet:
    """Create the fleet's users, devices and conversations through the REST API; mint tokens.

    Uses the admin fixture endpoints of protocol.md section 8 (201 expected, 409 tolerated so a
    fleet can be provisioned twice). Returns a fleet whose devices carry tokens.
    """
    admin_token = mint(secret, "ccs-kit-admin", admin=True, issuer=issuer, audience=audience)
    admin = {"Authorization": f"Bearer {admin_token}"}
    limit = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(api_url, headers=admin, timeout=timeout) as http:

        async def post(path: str, payload: dict[str, Any]) -> None:
            async with limit, http.post(path, json=payload) as resp:
                if resp.status not in (200, 201, 409):
                    raise RuntimeError(f"POST {path} -> {resp.status}: {await resp.text()}")

        users = sorted({d.user_id for d in fleet.devices})
        await asyncio.gather(*(post("/v1/users", {"user_id": u}) for u in users))
        await asyncio.gather(
            *(
                post(f"/v1/users/{d.user_id}/devices", {"device_id": d.device_id})
                for d in fleet.devices
            )
        )
        await asyncio.gather(
            *(
                post(
                    "/v1/conversations",
                    {
                        "conversation_id": room.conversation_id,
                        "members": sorted({d.user_id for d in room.members}),
                    },
                )
                for room in fleet.rooms
            )
        )
    tokens = {
        d.device_id: mint(secret, d.user_id, d.device_id, issuer=issuer, audience=audience)
        for d in fleet.devices
    }
    with_tokens = {
        d.device_id: Device(d.user_id, d.device_id, tokens[d.device_id]) for d in fleet.devices
    }
    return Fleet(
        list(with_tokens.values()),
        [
            Room(
                r.conversation_id,
                [with_tokens[d.device_id] for d in r.members],
                [with_tokens[d.device_id] for d in r.senders],
            )
            for r in fleet.rooms
        ],
    )


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


def percentiles(
    values: Sequence[float], points: Iterable[float] = (50, 95, 99)
) -> dict[str, float]:
    """avg, max and the nearest-rank percentiles of ``values`` (empty input gives NaN)."""
    if not values:
        return {"avg": math.nan, "max": math.nan, **{f"p{p:g}": math.nan for p in points}}
    ordered = sorted(values)
    out = {"avg": sum(ordered) / len(ordered), "max": ordered[-1]}
    for p in points:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[f"p{p:g}"] = ordered[rank - 1]
    return out


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
        "device",
        "received",
        "run",
        "ws",
    )

    def __init__(self, run: LoadRun, device: Device) -> None:
        self.run = run
        self.device = device
        self.ws: ClientConnection | None = None
        self.received: list[Received] = []
        self.closed: Closed | None = None
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
        finally:
            if self._wanted:
                self.closed = Closed(
                    self.device.device_id,
                    self.ws.close_code,
                    self.ws.close_reason or "",
                    time.time(),
                )
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


# --------------------------------------------------------------------------- resource sampling


@dataclass(slots=True)
class Sample:
    """One reading of a process."""

    t: float
    rss_mib: float
    cpu_percent: float


class ProcessSampler:
    """Samples a process's RSS and CPU every ``interval_s`` in the background (psutil)."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        self.proc = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        """Read now (CPU is averaged since the previous reading)."""
        with self.proc.oneshot():
            s = Sample(
                time.time(), self.proc.memory_info().rss / 2**20, self.proc.cpu_percent(None)
            )
        self.samples.append(s)
        return s

    def start(self) -> None:
        """Start sampling on the running loop."""
        self.proc.cpu_percent(None)  # prime: the first call always reads 0
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(psutil.Error):
                self.sample()

    async def stop(self) -> list[Sample]:
        """Stop sampling and return every sample."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples
