"""The node's core: local sessions, database-driven delivery, repair sweep, receipts, presence."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from .config import Settings
from .frames import dumps, iso, message_frame
from .metrics import Metrics
from .ports import Bus, MessageStore, PresenceStore, Row
from .session import Cursor, Session

log = logging.getLogger("ccs.hub")

ROW_CACHE_MAX = 10_000
DISPATCH_BATCH = 500
# longest wait for this node's own send batch before a notified row is fetched instead
OWN_SEND_WAIT_S = 0.25


class Hub:
    """Registry of this node's sessions and the delivery machinery around them."""

    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        presence: PresenceStore,
        bus: Bus,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.store = store
        self.presence = presence
        self.bus = bus
        self.metrics = metrics
        self.by_user: dict[str, set[Session]] = {}
        self.by_conv: dict[str, set[Session]] = {}
        self.by_device: dict[str, set[Session]] = {}
        # rows this node wrote itself, so the notification fan-out needs no refetch
        self.rows: OrderedDict[tuple[str, int], Row] = OrderedDict()
        self.changes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.prev_heads: dict[str, int] = {}
        # newest edit_seq this node has handled / the sweep saw last time, per conversation
        self.seen_edits: dict[str, int] = {}
        self.prev_edits: dict[str, int] = {}
        self.offline_timers: dict[str, asyncio.Task[None]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        # set by graceful shutdown: command loops close their session after the current command
        self.draining = False
        bus.subscribe(self.on_event)

    def start(self) -> None:
        """Start the dispatcher and the periodic repair sweep."""
        self.tasks.append(asyncio.create_task(self._dispatch_loop(), name="dispatcher"))
        self.tasks.append(asyncio.create_task(self._sweep_loop(), name="repair-sweep"))

    async def stop(self) -> None:
        """Cancel background tasks."""
        for task in [*self.tasks, *self.offline_timers.values()]:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # ---- registry ------------------------------------------------------------------------
    def connections_of(self, user: str) -> int:
        """How many sessions ``user`` holds on this node."""
        return len(self.by_user.get(user, ()))

    def connections_total(self) -> int:
        """Sessions on this node."""
        return sum(len(s) for s in self.by_user.values())

    def register(self, sess: Session, convs: dict[str, int]) -> None:
        """Make ``sess`` receive live traffic of ``convs`` (cursors start busy until replay).

        ``convs`` maps each conversation to its ``edit_seq`` as read at hello: edits after it
        whose notification is lost are found by the repair sweep.
        """
        self.by_user.setdefault(sess.user_id, set()).add(sess)
        self.by_device.setdefault(sess.device_id, set()).add(sess)
        for conv, edits in convs.items():
            sess.convs[conv] = Cursor(0, busy=True)
            self.by_conv.setdefault(conv, set()).add(sess)
            self.seen_edits.setdefault(conv, edits)
        self.metrics.connections.set(sum(len(s) for s in self.by_user.values()))

    def unregister(self, sess: Session) -> bool:
        """Forget ``sess``; True if it was the device's last session on this node."""
        _discard(self.by_user, sess.user_id, sess)
        _discard(self.by_device, sess.device_id, sess)
        for conv in list(sess.convs):
            _discard(self.by_conv, conv, sess)
        self.metrics.connections.set(sum(len(s) for s in self.by_user.values()))
        return sess.device_id not in self.by_device

    def remember(self, row: Row) -> None:
        """Keep a row this node just wrote for the coming notification."""
        self.rows[(row["conversation_id"], row["seq"])] = row
        if len(self.rows) > ROW_CACHE_MAX:
            self.rows.popitem(last=False)

    # ---- database -> sockets ----------------------------------------------------------------
    def on_change(self, change: dict[str, Any]) -> None:
        """Called by the listener for every notification (in commit order)."""
        self.changes.put_nowait(change)

    async def _dispatch_loop(self) -> None:
        while True:
            batch = [await self.changes.get()]
            while not self.changes.empty() and len(batch) < DISPATCH_BATCH:
                batch.append(self.changes.get_nowait())
            try:
                await self._dispatch(batch)
            except Exception:
                # a failed fetch is repaired by the sweep; the dispatcher itself must live on
                log.exception("dispatch failed", extra={"batch": len(batch)})

    async def _dispatch(self, batch: list[dict[str, Any]]) -> None:
        rows: dict[tuple[str, int], Row] = {}
        wanted: dict[tuple[str, int], int] = {}  # key -> version the notification announced
        for ch in batch:
            if ch.get("k") != "m" or ch["c"] not in self.by_conv:
                continue
            key = (ch["c"], ch["s"])
            row = self.rows.pop(key, None)
            if row is not None and row["version"] >= ch["v"]:
                rows[key] = row
            elif key not in rows or rows[key]["version"] < ch["v"]:
                wanted[key] = max(wanted.get(key, 0), ch["v"])
        if wanted:
            await self._await_own_sends(wanted, rows)
        missing = list(wanted)
        if missing:
            try:
                fetched = await self.store.fetch_many(missing)
            except Exception:
                # sessions fall back to their own gap fetch, then the sweep; membership events
                # in this batch must still be handled
                log.warning("fetching notified rows failed", exc_info=True)
                fetched = []
            for row in fetched:
                rows[(row["conversation_id"], row["seq"])] = row
        for ch in batch:
            kind = ch.get("k")
            if kind == "m":
                self._deliver(ch, rows.get((ch["c"], ch["s"])))
                edit = ch.get("e")
                if edit is not None and ch["c"] in self.seen_edits:
                    self.seen_edits[ch["c"]] = max(self.seen_edits[ch["c"]], edit)
            elif kind in ("ma", "mr"):
                self._membership(ch)
        self.metrics.notifications.inc(len(batch))

    async def _await_own_sends(
        self, wanted: dict[tuple[str, int], int], rows: dict[tuple[str, int], Row]
    ) -> None:
        """Take from ``wanted`` the rows this node's own sends are about to remember.

        A notification travels on the listener connection and can overtake the result of the
        statement that caused it; the sender remembers the row a moment later. While this node
        has a send batch in flight for one of these conversations, wait for it (bounded) rather
        than fetching the row again.
        """
        # only inserts (version 1) can come from a send batch; edits are written one by one
        convs = {c for (c, _), v in wanted.items() if v == 1}
        # batches started later than now cannot have written an already notified row
        pending = set(self.store.writing(convs))
        deadline = asyncio.get_running_loop().time() + OWN_SEND_WAIT_S
        while pending and convs:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if done:  # the senders of a finished batch have remembered their rows
                self._take_remembered(wanted, rows)
                convs = {c for (c, _), v in wanted.items() if v == 1}

    def _take_remembered(
        self, wanted: dict[tuple[str, int], int], rows: dict[tuple[str, int], Row]
    ) -> None:
        """Move rows now in the cache from ``wanted`` to ``rows``."""
        for key, version in list(wanted.items()):
            row = self.rows.get(key)
            if row is not None and row["version"] >= version:
                rows[key] = self.rows.pop(key)
                del wanted[key]

    def _deliver(self, ch: dict[str, Any], row: Row | None) -> None:
        sessions = self.by_conv.get(ch["c"])
        if not sessions:
            return
        conv, seq = ch["c"], ch["s"]
        if ch["op"] == "I":
            frame = message_frame(row) if row is not None else None
            for sess in list(sessions):
                sess.offer(conv, seq, frame)
            self.metrics.deliveries.inc(len(sessions))
        elif row is not None:
            frame = message_frame(row, "message_updated")
            for sess in list(sessions):
                sess.offer_update(conv, seq, frame)

    def _membership(self, ch: dict[str, Any]) -> None:
        conv, user, head = ch["c"], ch["u"], ch.get("h", 0)
        added = ch["k"] == "ma"
        frame = dumps(
            {
                "type": "member_added" if added else "member_removed",
                "conversation_id": conv,
                "user_id": user,
            }
        )
        for sess in list(self.by_user.get(user, ())):
            if added and conv not in sess.convs:
                sess.convs[conv] = Cursor(head, busy=False)
                self.by_conv.setdefault(conv, set()).add(sess)
            elif not added and conv in sess.convs:
                sess.push(frame)
                del sess.convs[conv]
                _discard(self.by_conv, conv, sess)
        for sess in list(self.by_conv.get(conv, ())):
            sess.push(frame)

    # ---- repair sweep ----------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        interval = self.settings.repair_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.repair(force=False)
            except Exception:
                log.warning("repair sweep failed", exc_info=True)

    async def repair(self, force: bool) -> int:
        """Push what lost notifications missed; return how many messages were repaired.

        A head must be seen by two sweeps in a row before it counts as missed (a notification
        may simply be in flight); ``force`` (after the listener reconnected) skips that wait.
        """
        convs = list(self.by_conv)
        if not convs:
            return 0
        marks = await self.store.marks(convs)
        repaired = 0
        for conv, (head, edits) in marks.items():
            repaired += self._repair_inserts(conv, head, force)
            repaired += await self._repair_edits(conv, edits, force)
        for index in (self.prev_heads, self.prev_edits, self.seen_edits):
            for conv in set(index) - set(marks):
                del index[conv]
        self.metrics.repair_sweeps.inc()
        if repaired:
            self.metrics.gaps_repaired.inc(repaired)
            log.warning("repaired missed notifications", extra={"count": repaired})
        return repaired

    def _repair_inserts(self, conv: str, head: int, force: bool) -> int:
        prev = self.prev_heads.get(conv)
        self.prev_heads[conv] = head
        target = head if force else min(head, prev if prev is not None else 0)
        lag = 0
        for sess in list(self.by_conv.get(conv, ())):
            cur = sess.convs.get(conv)
            if cur is None or cur.busy or cur.pos >= target:
                continue
            lag = max(lag, target - cur.pos)
            sess.catch_up(conv, target)
        return lag

    async def _repair_edits(self, conv: str, edits: int, force: bool) -> int:
        seen = self.seen_edits.get(conv)
        prev = self.prev_edits.get(conv)
        self.prev_edits[conv] = edits
        if seen is None:
            self.seen_edits[conv] = edits  # first look at this conversation: nothing to repair
            return 0
        target = edits if force else min(edits, prev if prev is not None else seen)
        if target <= seen:
            return 0
        rows = await self.store.fetch_edited(conv, seen, target)
        self.seen_edits[conv] = max(self.seen_edits.get(conv, 0), target)
        for row in rows:
            frame = message_frame(row, "message_updated")
            for sess in list(self.by_conv.get(conv, ())):
                sess.offer_update(conv, row["seq"], frame)
        return len(rows)

    # ---- bus events (receipts, presence) ---------------------------------------------------------
    async def on_event(self, event: dict[str, Any]) -> None:
        """Deliver an ephemeral cross-node event to this node's interested sessions."""
        kind = event.get("type")
        if kind == "receipt":
            frame = dumps(event)
            for sess in list(self.by_conv.get(event["conversation_id"], ())):
                if sess.device_id != event["device_id"]:
                    sess.push(frame)
        elif kind == "presence":
            audience = event.pop("audience", None)
            if audience is None:
                audience = await self.store.audience(event["user_id"])
            frame = dumps(event)
            for user in audience:
                for sess in list(self.by_user.get(user, ())):
                    if sess.device_id != event["device_id"]:
                        sess.push(frame)

    async def publish_receipt(self, conv: str, user: str, device: str, row: Row) -> None:
        """Tell every member device (on every node) that a cursor moved."""
        await self.bus.publish(
            {
                "type": "receipt",
                "conversation_id": conv,
                "user_id": user,
                "device_id": device,
                "delivered_upto": row["delivered_upto"],
                "read_upto": row["read_upto"],
            }
        )

    # ---- presence ---------------------------------------------------------------------------
    async def device_online(self, sess: Session, status: str = "online") -> None:
        """Store and broadcast that the device is ``status`` (no broadcast if unchanged)."""
        timer = self.offline_timers.pop(sess.device_id, None)
        if timer is not None:
            timer.cancel()  # reconnected inside the grace period: no offline/online flap
        if await self.presence.set_online(sess.user_id, sess.device_id, status, self.node_id):
            await self._publish_presence(sess.user_id, sess.device_id)

    def device_gone(self, sess: Session) -> None:
        """The device's last local session closed: offline after the grace period."""
        old = self.offline_timers.pop(sess.device_id, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._offline_later(sess.user_id, sess.device_id))
        self.offline_timers[sess.device_id] = task

    async def _offline_later(self, user: str, device: str) -> None:
        try:
            await asyncio.sleep(self.settings.presence_grace_ms / 1000)
            if device in self.by_device:
                return
            if await self.presence.set_offline(device, self.node_id):
                await self._publish_presence(user, device)
        except Exception:
            log.warning("could not store offline presence", extra={"device_id": device})
        finally:
            # held until the offline is stored, so the lease keeper's repair never races it
            if self.offline_timers.get(device) is asyncio.current_task():
                del self.offline_timers[device]

    async def publish_presence(self, user: str, device: str) -> None:
        """Broadcast the device's stored presence (used by the lease keeper, leases.py)."""
        await self._publish_presence(user, device)

    async def _publish_presence(self, user: str, device: str) -> None:
        summary = await self.presence.user_presence(user)
        mine = next((d for d in summary["devices"] if d["device_id"] == device), None)
        if mine is None:
            return
        event = {
            "type": "presence",
            "user_id": user,
            "device_id": device,
            "status": mine["status"],
            "user_status": summary["status"],
            "last_seen": iso(mine["last_seen"]),
        }
        audience = await self.store.audience(user)
        if len(dumps(audience)) < 6000:  # NOTIFY payloads are limited to 8000 bytes
            event["audience"] = audience
        self.metrics.presence_changes.inc()
        await self.bus.publish(event)


def _discard(index: dict[str, set[Session]], key: str, sess: Session) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(sess)
        if not group:
            del index[key]
