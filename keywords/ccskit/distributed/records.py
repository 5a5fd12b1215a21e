"""Per-message records on the wire between workers and master, and the checker's input from them.

A worker exports its :class:`~ccskit.distributed.fleet.WorkerFleet` as plain lists (Locust's
custom messages carry msgpack), in parts of at most :data:`ROWS_PER_PART` rows so no single
message grows with the run. The master puts the parts of every worker together
(:class:`Collected`) and turns them into the kit's :class:`ccskit.checker.History`; times are
epoch seconds so records of different processes compare (on different machines: as well as their
clocks agree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..checker import Ack, Attempt, Delivery, Expectation, History, StoredRow
from ..load import percentiles
from .device import DeviceConnection
from .fleet import WorkerFleet

ROWS_PER_PART = 20_000

# column order of a "sent" row
SENT_COLUMNS = (
    "device_id",
    "client_msg_id",
    "conversation_id",
    "body_hash",
    "t_sched",
    "t_sent",
    "t_ack",
    "message_id",
    "seq",
    "error",
)


def summary(fleet: WorkerFleet, unanswered: int, behind: dict[str, int]) -> dict[str, Any]:
    """One worker's counts: connects, refusals, closes, reconnects, receipts, what is still open."""
    outcomes = list(fleet.outcomes.values())
    opened = [c.opened_at for c in fleet.conns.values() if c.opened_at]
    return {
        "devices": len(fleet.slots),
        "connected": sum(1 for o in outcomes if o.ok),
        "connect_failed": sum(1 for o in outcomes if not o.ok),
        "connect_refusals": sum(o.refusals for o in outcomes),
        "connect_errors_retried": sum(o.errors for o in outcomes),
        "connect_failures": Counter(o.last_error for o in outcomes if not o.ok).most_common(5),
        "connect_seconds": [round(o.seconds, 4) for o in outcomes if o.ok],
        "connect_first": fleet.connect_first,
        "connect_last": max(opened) if opened else 0.0,
        "live": fleet.live,
        "closes": [[c.device_id, c.code, c.reason[:80]] for c in fleet.closes],
        "reconnects_ok": sum(1 for o in fleet.reconnect_outcomes if o.ok),
        "reconnects_failed": sum(1 for o in fleet.reconnect_outcomes if not o.ok),
        "receipt_answers": dict(fleet.receipt_answers),
        "unanswered": unanswered,
        "behind": len(behind),
        "behind_examples": sorted(behind.items())[:5],
    }


def export(fleet: WorkerFleet, unanswered: int, behind: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The worker's records in parts: ``sent`` rows, ``recv`` rows, ``expect`` rows, summary."""
    off = fleet.epoch_offset
    sent = [
        [
            r.device_id,
            r.client_msg_id,
            r.conversation_id,
            r.body_hash,
            r.t_sched + off,
            r.t_sent + off if r.t_sent else 0.0,
            r.t_ack + off if r.t_ack else 0.0,
            r.message_id,
            r.seq,
            r.error,
        ]
        for r in fleet.sent
    ]
    recv = [
        [device_id, m.conversation_id, m.seq, m.message_id, m.t_recv + off]
        for device_id, conn in fleet.conns.items()
        for m in conn.received
    ]
    expect = [
        [device_id, conn.slot_conversation]
        for device_id, conn in fleet.conns.items()
        if isinstance(conn, DeviceConnection) and conn.closed is None and conn.slot_conversation
    ]
    kinds: tuple[tuple[str, list[list[Any]]], ...] = (
        ("sent", sent),
        ("recv", recv),
        ("expect", expect),
    )
    parts: list[dict[str, Any]] = [
        {kind: rows[i : i + ROWS_PER_PART]}
        for kind, rows in kinds
        for i in range(0, len(rows), ROWS_PER_PART)
    ]
    parts.append({"summary": summary(fleet, unanswered, behind)})
    for i, part in enumerate(parts):
        part.update(part=i, parts=len(parts))
        yield part


@dataclass
class WorkerRecords:
    """Everything one worker sent back."""

    sent: list[list[Any]] = field(default_factory=list)
    recv: list[list[Any]] = field(default_factory=list)
    expect: list[list[Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    parts_seen: int = 0
    parts: int | None = None

    @property
    def complete(self) -> bool:
        return self.parts is not None and self.parts_seen >= self.parts

    def add(self, part: dict[str, Any]) -> None:
        for kind in ("sent", "recv", "expect"):
            getattr(self, kind).extend(part.get(kind, ()))
        if "summary" in part:
            self.summary = part["summary"]
        self.parts_seen += 1
        self.parts = part["parts"]


@dataclass
class Collected:
    """The records of every worker of one run, keyed by worker index."""

    workers: dict[int, WorkerRecords] = field(default_factory=dict)

    def add(self, worker: int, part: dict[str, Any]) -> None:
        self.workers.setdefault(worker, WorkerRecords()).add(part)

    def complete(self, expected: int) -> bool:
        done = [w for w in self.workers.values() if w.complete]
        return len(done) >= expected

    def rows(self, kind: str) -> Iterator[list[Any]]:
        for w in self.workers.values():
            yield from getattr(w, kind)

    def history(self, stored: list[StoredRow]) -> History:
        """The checker's input over every worker."""
        h = History(stored=list(stored))
        for row in self.rows("sent"):
            device, cmid, conv, bhash = row[0], row[1], row[2], row[3]
            h.attempts.append(Attempt(device, cmid, conv, bhash))
            if row[8]:
                h.acks.append(Ack(device, cmid, conv, row[7], row[8]))
        for device, conv, seq, message_id, _t in self.rows("recv"):
            h.deliveries.setdefault(device, []).append(Delivery(conv, seq, message_id))
        for device, conv in self.rows("expect"):
            h.expectations.setdefault(device, []).append(Expectation(conv))
            h.deliveries.setdefault(device, [])
        return h

    def latencies_ms(self) -> tuple[list[float], list[float]]:
        """(delivery ms from the scheduled send time, send->ack ms) over every worker."""
        sched = {row[7]: row[4] for row in self.rows("sent") if row[8]}
        delivery = [
            (t - sched[mid]) * 1000 for _d, _c, _s, mid, t in self.rows("recv") if mid in sched
        ]
        ack = [(row[6] - row[5]) * 1000 for row in self.rows("sent") if row[8] and row[5]]
        return delivery, ack

    def totals(self) -> dict[str, Any]:
        """Summed worker summaries plus throughput from the records."""
        s = [w.summary for w in self.workers.values()]
        total: dict[str, Any] = {
            k: sum(x.get(k, 0) for x in s)
            for k in (
                "devices",
                "connected",
                "connect_failed",
                "connect_refusals",
                "connect_errors_retried",
                "live",
                "reconnects_ok",
                "reconnects_failed",
                "unanswered",
                "behind",
            )
        }
        total["closes"] = sum(len(x.get("closes", [])) for x in s)
        total["close_examples"] = [c for x in s for c in x.get("closes", [])][:5]
        total["close_codes"] = dict(
            Counter(str(c[1]) for x in s for c in x.get("closes", [])).most_common(8)
        )
        total["connect_failures"] = [f for x in s for f in x.get("connect_failures", [])][:5]
        firsts = [x["connect_first"] for x in s if x.get("connect_first")]
        lasts = [x["connect_last"] for x in s if x.get("connect_last")]
        span = max(lasts) - min(firsts) if firsts and lasts else 0.0
        total["connect_span_s"] = span
        total["connect_per_s"] = total["connected"] / span if span > 0 else 0.0
        total["connect_ms"] = percentiles([v * 1000 for x in s for v in x["connect_seconds"]])
        sent = list(self.rows("sent"))
        acked = [r for r in sent if r[8]]
        total["attempted"], total["acked"] = len(sent), len(acked)
        total["send_errors"] = dict(Counter(r[9] for r in sent if r[9]))
        window = (max(r[6] for r in acked) - min(r[4] for r in acked)) if acked else 0.0
        total["send_window_s"] = window
        total["acked_per_s"] = len(acked) / window if window > 0 else 0.0
        total["deliveries"] = sum(len(w.recv) for w in self.workers.values())
        total["deliveries_per_s"] = total["deliveries"] / window if window > 0 else 0.0
        receipts: Counter[str] = Counter()
        for x in s:
            receipts.update(x.get("receipt_answers", {}))
        total["receipt_answers"] = dict(receipts)
        return total
