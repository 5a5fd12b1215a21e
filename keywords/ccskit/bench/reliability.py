"""Reliability figures of load runs: connection uptime, delivery success, latency over time.

Computed only from what :class:`ccskit.load.LoadRun` recorded (open/close times of every
connection, every send and every ``message`` frame each device received); nothing is estimated.

- *Connection uptime*: over the connections the kit held (opened and not closed on purpose), the
  seconds they were open divided by the seconds they should have been open (from their welcome
  until now). A close the kit did not ask for stops the clock of that connection.
- *Delivery success*: over every member device still held, the send-phase messages it received
  (each counted once) divided by the messages it should have received: every *attempted* send
  into its room scheduled after the device connected. A refused send, a lost message or a
  dropped member connection all lower it.
- *Delivery latency over time*: per-second p50/p99 of delivery latency (scheduled send ->
  receipt, as :meth:`LoadRun.send_phase` measures it), bucketed by scheduled send time and
  stamped with wall-clock time so the report can lay it beside faults and server samples.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # load.py imports this package: only the type is needed here
    from ccskit.load import LoadRun, Sent

MAX_TIMELINE_POINTS = 300
"""Upper bound of latency points one phase adds to the report (the bucket widens past it)."""


@dataclass(frozen=True, slots=True)
class Uptime:
    """Open seconds against wanted seconds over the held connections."""

    open_s: float
    wanted_s: float
    connections: int
    closed: int

    @property
    def pct(self) -> float:
        """Uptime in percent (NaN when no connection was held)."""
        return 100.0 * self.open_s / self.wanted_s if self.wanted_s > 0 else math.nan


def uptime(runs: Iterable[LoadRun], now: float | None = None) -> Uptime:
    """Uptime of every held connection of ``runs`` up to ``now`` (epoch seconds)."""
    now = time.time() if now is None else now
    open_s = wanted_s = 0.0
    connections = closed = 0
    for run in runs:
        for conn in run.conns.values():
            if not conn.opened_at:
                continue
            connections += 1
            wanted_s += max(0.0, now - conn.opened_at)
            end = now
            if conn.closed is not None:
                closed += 1
                end = min(now, conn.closed.t)
            open_s += max(0.0, end - conn.opened_at)
    return Uptime(open_s, wanted_s, connections, closed)


@dataclass(frozen=True, slots=True)
class DeliverySuccess:
    """Deliveries received against deliveries expected, summed over member devices."""

    received: int
    expected: int
    devices: int
    worst_device: str = ""
    worst_received: int = 0
    worst_expected: int = 0

    @property
    def pct(self) -> float:
        """Success rate in percent (NaN when nothing was expected)."""
        return 100.0 * self.received / self.expected if self.expected else math.nan

    def describe(self) -> str:
        """One line for the log, naming the worst device."""
        text = (
            f"{self.received:,}/{self.expected:,} deliveries on {self.devices} member devices "
            f"({self.pct:.3f} %)"
        )
        if self.worst_received < self.worst_expected:
            text += f"; worst {self.worst_device}: {self.worst_received}/{self.worst_expected}"
        return text


def _phase_sends(run: LoadRun, phases: Collection[int] | None) -> dict[str, list[Sent]]:
    """Send-phase records (races are phase 0 and expect no fan-out count) by conversation."""
    by_room: dict[str, list[Sent]] = defaultdict(list)
    for record in run.sent:
        if record.phase >= 1 and (phases is None or record.phase in phases):
            by_room[record.conversation_id].append(record)
    return by_room


def delivery_success(
    runs: Iterable[LoadRun], phases: Collection[int] | None = None
) -> DeliverySuccess:
    """Delivery success of the send phases (all by default) of ``runs`` per member device."""
    received = expected = devices = 0
    worst: tuple[float, str, int, int] = (math.inf, "", 0, 0)
    for run in runs:
        sends = _phase_sends(run, phases)
        to_epoch = run.epoch_offset
        for room in run.fleet.rooms:
            for device in room.members:
                conn = run.conns.get(device.device_id)
                if conn is None or not conn.counted or not conn.opened_at:
                    continue  # closed on purpose, or never connected: nothing was owed to it
                owed = {
                    (r.device_id, r.client_msg_id)
                    for r in sends.get(room.conversation_id, ())
                    if r.t_sched + to_epoch >= conn.opened_at
                }
                got = len(owed & {(m.sender_device_id, m.client_msg_id) for m in conn.received})
                received, expected, devices = received + got, expected + len(owed), devices + 1
                ratio = got / len(owed) if owed else 1.0
                if ratio < worst[0]:
                    worst = (ratio, device.device_id, got, len(owed))
    return DeliverySuccess(received, expected, devices, worst[1], worst[2], worst[3])


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """Delivery latency of the messages scheduled in one time bucket."""

    t: float  # epoch seconds, middle of the bucket
    p50_ms: float
    p99_ms: float
    count: int


def _nearest_rank(ordered: list[float], pct: float) -> float:
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def latency_timeline(
    run: LoadRun, phase: int, bucket_s: float = 1.0, max_points: int = MAX_TIMELINE_POINTS
) -> list[LatencyPoint]:
    """Per-bucket p50/p99 delivery latency of ``phase``, by scheduled send time (bounded)."""
    by_key = run.by_key
    pairs = [
        (rec.t_sched, (m.t_recv - rec.t_sched) * 1000)
        for c in run.conns.values()
        for m in c.received
        if (rec := by_key.get((m.sender_device_id, m.client_msg_id))) is not None
        and rec.phase == phase
    ]
    if not pairs:
        return []
    start = min(t for t, _ in pairs)
    span = max(t for t, _ in pairs) - start
    width = max(bucket_s, span / max_points)
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, ms in pairs:
        buckets[min(int((t - start) / width), max_points - 1)].append(ms)
    points = []
    for index in sorted(buckets):
        ordered = sorted(buckets[index])
        t = start + (index + 0.5) * width + run.epoch_offset
        points.append(
            LatencyPoint(t, _nearest_rank(ordered, 50), _nearest_rank(ordered, 99), len(ordered))
        )
    return points
