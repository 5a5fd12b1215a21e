"""The asyncio side of one Locust worker: its share of the fleet, and every record of it.

:class:`WorkerFleet` is a :class:`ccskit.load.LoadRun` (the kit's records: :class:`Sent` per
send, :class:`Received` per delivery, :class:`Closed` per unexpected close) whose devices come
from a :class:`~ccskit.distributed.plan.Share` and whose sends are triggered by Locust users
instead of a schedule. Everything here runs on the bridge's loop thread; what Locust must see
(connects, acks, deliveries, errors) is aggregated here and handed over in batches
(:mod:`ccskit.distributed.stats`), because per-event calls into Locust would cost more than the
frames themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..bench.fleet import Device, Fleet
from ..checker import body_hash
from ..client import ReconnectPolicy
from ..load import LoadRun, Sent
from .device import DeviceConnection, Outcome
from .plan import Share, Slot

GC_YOUNG = 50_000
STATS_EVERY_S = 0.5
"""How often aggregated figures are handed to Locust (its UI refreshes every 2 s)."""


class WorkerFleet(LoadRun):
    """One worker's devices: connect on demand, send on demand, record everything."""

    def __init__(
        self,
        share: Share,
        publish: Callable[[dict[str, Any]], None],
        policy: ReconnectPolicy | None = None,
    ) -> None:
        devices = [Device(s.user_id, s.device_id, s.token) for s in share.slots]
        super().__init__(share.plan.ws_urls[0], Fleet(devices, []), share.plan.body_pad)
        self.share = share
        self.plan = share.plan
        self.slots = {s.device_id: s for s in share.slots}
        self.policy = policy or ReconnectPolicy(give_up_after_s=60.0, max_attempts=50)
        self.running = True
        self.sending = True
        self.outcomes: dict[str, Outcome] = {}
        self.reconnect_outcomes: list[Outcome] = []
        self.receipt_answers: Counter[str] = Counter()
        self.bodies: dict[tuple[str, str], Any] = {}
        self._publish = publish
        self._pending_stats: dict[str, Counter[int]] = {}
        self._pending_errors: Counter[tuple[str, str]] = Counter()
        self._deliveries: dict[int, int] = {}  # latency ms -> count, the hottest counter
        self._limit = asyncio.Semaphore(share.plan.connect_in_flight)
        self._ticker: asyncio.Task[None] | None = None
        self.connect_first = 0.0  # epoch of the first connect attempt (the connect rate's start)

    # ----- figures for Locust ------------------------------------------------------------------
    def _count(self, name: str, ms: float) -> None:
        bucket = self._pending_stats.get(name)
        if bucket is None:
            bucket = self._pending_stats[name] = Counter()
        bucket[round(ms)] += 1

    def on_delivery(self, t_recv: float, t_sched_epoch: float) -> None:
        """A message arrived (``t_recv`` perf_counter); latency from its scheduled send time."""
        counts = self._deliveries
        ms = int((t_recv + self.epoch_offset - t_sched_epoch) * 1000 + 0.5)
        counts[ms] = counts.get(ms, 0) + 1

    def on_ack(self, seconds: float, record: Sent) -> None:
        self._count("send->ack", seconds * 1000)
        self.bodies.pop((record.device_id, record.client_msg_id), None)

    def on_send_error(self, code: str, record: Sent) -> None:
        self._pending_errors[("send->ack", code)] += 1
        self.bodies.pop((record.device_id, record.client_msg_id), None)

    def on_receipt_answer(self, ok: bool, frame: dict[str, Any]) -> None:
        self.receipt_answers["ack" if ok else str(frame.get("code"))] += 1

    def on_reconnect(self, conn: DeviceConnection, outcome: Outcome) -> None:
        self.reconnect_outcomes.append(outcome)
        if outcome.ok:
            self._count("reconnect", outcome.seconds * 1000)
        else:
            self._pending_errors[("reconnect", outcome.last_error[:80])] += 1

    async def _tick(self) -> None:
        serial = 0
        receipt_at = time.perf_counter() + (self.plan.receipt_every_s or 1e9)
        while self.running:
            await asyncio.sleep(STATS_EVERY_S)
            # the records only grow and hold no cycles: keep the collector from walking them
            # again and again (a full pass over millions of records shows up as latency)
            gc.freeze()
            self.flush_stats()
            if self.plan.receipt_every_s and time.perf_counter() >= receipt_at:
                serial += 1
                receipt_at += self.plan.receipt_every_s
                await self._send_receipts(serial)

    def flush_stats(self) -> None:
        """Hand what was counted since the last call to the gevent side (``publish``)."""
        if self._deliveries:
            self._pending_stats["deliver"] = Counter(self._deliveries)
            self._deliveries = {}
        if not self._pending_stats and not self._pending_errors:
            return
        stats, errors = self._pending_stats, self._pending_errors
        self._pending_stats, self._pending_errors = {}, Counter()
        self._publish({"stats": stats, "errors": errors})

    async def _send_receipts(self, serial: int) -> None:
        conns = [c for c in self.conns.values() if isinstance(c, DeviceConnection)]
        for start in range(0, len(conns), 500):  # in slices: never one long stall of the loop
            await asyncio.gather(*(c.send_receipt(serial) for c in conns[start : start + 500]))

    def start(self) -> None:
        """Start the periodic hand-over to Locust and the receipts (call on the loop)."""
        if self._ticker is None:
            # Every delivery leaves a record behind, so the young generation never empties:
            # collect it every 50,000 allocations instead of 700 (records hold no cycles).
            gc.set_threshold(max(gc.get_threshold()[0], GC_YOUNG), *gc.get_threshold()[1:])
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    # ----- devices -----------------------------------------------------------------------------
    async def go_online(self, device_id: str, timeout_s: float) -> Outcome:
        """Connect one device of the share (``connect_in_flight`` handshakes at a time)."""
        if not self.connect_first:
            self.connect_first = time.time()
        slot = self.slots[device_id]
        device = Device(slot.user_id, slot.device_id, slot.token)
        conn = DeviceConnection(
            self, device, slot.ws_url, slot.source_address, slot.conversation_id, self.policy
        )
        async with self._limit:
            outcome = await conn.go_online(timeout_s)
        self.outcomes[device_id] = outcome
        if outcome.ok:
            self.conns[device_id] = conn
            self._count("connect", outcome.seconds * 1000)
        else:
            self._pending_errors[("connect", outcome.last_error[:80])] += 1
            await conn.close()
        return outcome

    async def go_offline(self, device_id: str) -> None:
        """Close one device on purpose (a Locust user stopped): not an unexpected close."""
        conn = self.conns.get(device_id)
        if conn is not None:
            await conn.close()

    def slot(self, device_id: str) -> Slot:
        return self.slots[device_id]

    # ----- sends -------------------------------------------------------------------------------
    def send_from(self, device_id: str, t_sched_epoch: float) -> None:
        """A Locust user's send, due at ``t_sched_epoch``: start it now (call on the loop)."""
        conn = self.conns.get(device_id)
        slot = self.slots[device_id]
        if not isinstance(conn, DeviceConnection):
            return
        if not self.sending or conn.closed is not None or not slot.conversation_id:
            return
        n = next(self._serial)
        body = {"n": n, "t": t_sched_epoch, "pad": self.body_pad}
        record = Sent(
            device_id,
            f"m{n}",
            slot.conversation_id,
            body_hash(body),
            1,
            t_sched_epoch - self.epoch_offset,
        )
        self.sent.append(record)
        self.by_key[(device_id, record.client_msg_id)] = record
        self.bodies[(device_id, record.client_msg_id)] = body
        asyncio.get_running_loop().create_task(self._send(conn, record, body))

    async def _send(self, conn: DeviceConnection, record: Sent, body: Any) -> None:
        try:
            await conn.send(record, body)
        except Exception:
            # closed under us: the send stays unanswered and is re-sent after the reconnect
            record.t_sent = 0.0

    async def resend_unanswered(self, conn: DeviceConnection) -> None:
        """After a reconnect: every send of this device without an answer, same key and body."""
        device_id = conn.device.device_id
        stale = [(k, r) for k, r in self.pending.items() if k[0] == device_id]
        for key, _ in stale:
            self.pending.pop(key, None)
        todo = [r for _, r in stale]
        todo += [
            r
            for r in self.sent
            if r.device_id == device_id and not r.t_sent and not r.seq and not r.error
        ]
        for record in sorted(todo, key=lambda r: r.t_sched):
            body = self.bodies.get((device_id, record.client_msg_id))
            if body is not None:
                await self._send(conn, record, body)

    # ----- the end of the run ------------------------------------------------------------------
    async def quiesce(self, timeout_s: float) -> int:
        """Stop sending and wait (bounded) until every send is answered; the unanswered count."""
        self.sending = False
        await _poll(lambda: not self.pending, timeout_s)
        return len(self.pending)

    def behind(self, heads: dict[str, int]) -> dict[str, int]:
        """Live devices that have not yet received their conversation's head: device -> gap."""
        gaps = {}
        for device_id, conn in self.conns.items():
            if not isinstance(conn, DeviceConnection) or conn.closed is not None:
                continue
            conv = conn.slot_conversation
            if conv and heads.get(conv, 0) > conn.last_seq.get(conv, 0):
                gaps[device_id] = heads[conv] - conn.last_seq.get(conv, 0)
        return gaps

    async def settle(self, heads: dict[str, int], timeout_s: float) -> dict[str, int]:
        """Wait (bounded) until every live device has every stored message of its room."""
        await _poll(lambda: not self.behind(heads), timeout_s)
        self.flush_stats()
        return self.behind(heads)

    async def shutdown(self) -> None:
        """Close every device on purpose and stop the ticker."""
        self.running = False
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
        await self.disconnect()


POLL_S = 0.05


async def _poll(done: Callable[[], bool], timeout_s: float) -> bool:
    """Check ``done`` every 50 ms for at most ``timeout_s``; whether it came true."""
    for _ in range(max(1, int(timeout_s / POLL_S))):
        if done():
            return True
        await asyncio.sleep(POLL_S)
    return done()
