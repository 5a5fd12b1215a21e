"""The gevent side of a Locust worker: its share, the device users, and the end-of-run protocol.

Custom messages (master -> worker, all handled concurrently so Locust's own messages go on):

``ccs:share``
    this worker's :class:`~ccskit.distributed.plan.Share`; its Locust users claim the devices in
    order.
``ccs:quiesce``
    stop sending, wait (bounded) until every send is answered; reply ``ccs:quiesced``.
``ccs:collect``
    ``{"heads": {conversation: head_seq}}`` read from the database after quiescing: wait (bounded)
    until every live device holds its room's head, then reply with the records in parts
    (``ccs:records``).
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from .bridge import Bridge
from .fleet import WorkerFleet
from .plan import Share, Slot
from .records import export
from .stats import apply

log = logging.getLogger("ccs.distributed")

QUIESCE_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0


class WorkerState:
    """One per worker process: the bridge, the fleet once the share arrived, and the claims."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.bridge = Bridge()
        self.fleet: WorkerFleet | None = None
        self.share: Share | None = None
        self._claims = itertools.count()
        self._released: list[Slot] = []
        self.go_at = 0.0  # when the master said go (plans that send only once all are online)

    @property
    def index(self) -> int:
        return int(getattr(self.environment.runner, "worker_index", 0))

    def _publish(self, batch: dict[str, Any]) -> None:
        # called on the loop thread: Locust's stats belong to the hub's thread
        self.bridge.notify(apply, self.environment.stats, batch)

    def on_share(self, environment: Any, msg: Any, **_: Any) -> None:
        self.share = Share.from_dict(msg.data)
        self.fleet = WorkerFleet(self.share, self._publish)
        self._claims = itertools.count()
        self.bridge.call(self.fleet.start)
        log.info(
            "worker %s holds %d devices (first %s)",
            self.share.worker,
            len(self.share.slots),
            self.share.slots[0].device_id if self.share.slots else "-",
        )

    def claim(self) -> Slot | None:
        """The next device of the share for a starting Locust user (None when all are taken)."""
        if self.share is None:
            return None
        if self._released:  # Locust stopped a user (a rebalance between workers): reuse it
            return self._released.pop()
        n = next(self._claims)
        return self.share.slots[n] if n < len(self.share.slots) else None

    def release(self, slot: Slot) -> None:
        """A stopped Locust user gives its device back for the next user of this worker."""
        self._released.append(slot)

    def on_quiesce(self, environment: Any, msg: Any, **_: Any) -> None:
        unanswered = 0
        if self.fleet is not None:
            timeout = float((msg.data or {}).get("timeout", QUIESCE_TIMEOUT_S))
            unanswered = self.bridge.run(self.fleet.quiesce(timeout), timeout + 5)
        self.environment.runner.send_message(
            "ccs:quiesced", {"worker": self.share.worker if self.share else -1, "left": unanswered}
        )

    def on_collect(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        worker = self.share.worker if self.share else -1
        fleet = self.fleet
        if fleet is None:
            self.environment.runner.send_message(
                "ccs:records", {"worker": worker, "part": 0, "parts": 1, "summary": {}}
            )
            return
        timeout = float(data.get("timeout", SETTLE_TIMEOUT_S))
        behind = self.bridge.run(fleet.settle(data.get("heads", {}), timeout), timeout + 5)
        unanswered = len(fleet.pending)
        # the settle flushed the last figures to Locust's stats (applied before run() returned);
        # report them now so the master's Locust figures are final when the records arrive
        report = getattr(self.environment.runner, "_send_stats", None)
        if report is not None:
            report()
        for part in export(fleet, unanswered, behind):
            part["worker"] = worker
            self.environment.runner.send_message("ccs:records", part)

    def may_send(self) -> bool:
        """Whether sends may start (always, unless the plan waits for every device)."""
        plan = self.share.plan if self.share else None
        return plan is not None and (not plan.send_after_all_online or self.go_at > 0)

    def on_go(self, environment: Any, msg: Any, **_: Any) -> None:
        self.go_at = time.time()
        log.info("worker: every device is online, sending starts")

    def on_report(self, client_id: str, data: dict[str, Any]) -> None:
        # devices done connecting (welcomed or failed for good): the master's cue to say go
        data["ccs_done"] = len(self.fleet.outcomes) if self.fleet is not None else 0

    def register(self, runner: Any) -> None:
        runner.register_message("ccs:go", self.on_go)
        self.environment.events.report_to_master.add_listener(self.on_report)
        runner.register_message("ccs:share", self.on_share)
        runner.register_message("ccs:quiesce", self.on_quiesce, concurrent=True)
        runner.register_message("ccs:collect", self.on_collect, concurrent=True)

    def shutdown(self) -> None:
        """Close every device on purpose (bounded), then stop the loop."""
        if self.fleet is not None:
            try:
                self.bridge.run(self.fleet.shutdown(), 30)
            except Exception as exc:  # the process is exiting: say so and go on
                log.warning("closing the fleet failed: %r", exc)
        self.bridge.stop()
