"""The gevent side of the Locust master: provision, deal shares, gather records, run the checker.

At test start the master deals every connected worker its share (provisioned through the REST
fixture API beforehand, for the expected number of workers). When the test stops it runs the
end-of-run protocol of :mod:`ccskit.distributed.worker`: *quiesce* (no send left unanswered),
read the stored rows of the run's conversations, *collect* (every live device caught up with its
room's head, then the records), and runs the kit's consistency checker over the records of all
workers together. The outcome goes to a JSON file (``--ccs-results``) and sets Locust's exit code.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gevent

from ..bench.fleet import Fleet, provision
from ..checker import check
from ..config import KitConfig, ws_url_for
from ..load import fetch_stored, percentiles
from ..report.store import write_json
from .bridge import Bridge
from .plan import RunPlan, build_fleet, deal
from .records import Collected
from .stats import snapshot

log = logging.getLogger("ccs.distributed")

PROVISION_TIMEOUT_S = 600.0
GO_ANYWAY_S = 900.0


class MasterState:
    """One per master process."""

    def __init__(
        self,
        environment: Any,
        plan: RunPlan,
        api_url: str,
        database_url: str,
        results: Path,
        drain_s: float,
    ) -> None:
        self.environment = environment
        self.plan = plan
        self.api_url = api_url
        self.database_url = database_url
        self.results = results
        self.drain_s = drain_s
        self.bridge = Bridge()
        self.fleet: Fleet | None = None
        self.provisioned_for = 0
        self.workers = 0
        self.quiesced: dict[int, int] = {}
        self.collected = Collected()
        self.started = 0.0
        self.outcome: dict[str, Any] | None = None
        self.done: dict[str, int] = {}
        self.go_at = 0.0

    # ----- before the test ---------------------------------------------------------------------
    def prepare(self, workers: int) -> int:
        """Provision the plan's fleet for ``workers`` workers; returns the device count."""
        cfg = KitConfig.from_env()
        fleet = build_fleet(self.plan, workers)
        t0 = time.perf_counter()
        self.fleet = self.bridge.run(
            provision(
                self.api_url,
                cfg.token_secret,
                fleet,
                timeout_s=PROVISION_TIMEOUT_S,
                issuer=cfg.token_issuer,
                audience=cfg.token_audience,
            ),
            PROVISION_TIMEOUT_S,
        )
        self.provisioned_for = workers
        log.info(
            "provisioned %d devices in %d rooms for %d workers in %.1f s: start %d Locust users",
            len(fleet.devices),
            len(fleet.rooms),
            workers,
            time.perf_counter() - t0,
            len(fleet.devices),
        )
        return len(fleet.devices)

    def on_test_start(self, environment: Any, **_: Any) -> None:
        runner = environment.runner
        clients = sorted(runner.clients.all, key=lambda c: runner.get_worker_index(c.id))
        if not clients:
            return
        if self.fleet is None:
            self.prepare(len(clients))
        assert self.fleet is not None
        self.workers = len(clients)
        self.quiesced, self.collected, self.outcome = {}, Collected(), None
        self.done, self.go_at = {}, 0.0
        self.started = time.time()
        for share, client in zip(deal(self.plan, self.fleet, len(clients)), clients, strict=True):
            runner.send_message("ccs:share", share.as_dict(), client.id)

    # ----- after the test ----------------------------------------------------------------------
    def on_quiesced(self, environment: Any, msg: Any, **_: Any) -> None:
        self.quiesced[int(msg.data["worker"])] = int(msg.data["left"])

    def on_records(self, environment: Any, msg: Any, **_: Any) -> None:
        self.collected.add(int(msg.data["worker"]), msg.data)

    def _wait(self, done: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            gevent.sleep(0.1)
        return True

    def on_test_stopping(self, environment: Any, **_: Any) -> None:
        if self.fleet is None or not self.workers or self.outcome is not None:
            return
        runner = environment.runner
        runner.send_message("ccs:quiesce", {"timeout": self.drain_s})
        quiet = self._wait(lambda: len(self.quiesced) >= self.workers, self.drain_s + 15)
        conversations = [r.conversation_id for r in self.fleet.rooms]
        stored = self.bridge.run(fetch_stored(self.database_url, conversations), 120)
        heads: dict[str, int] = defaultdict(int)
        for row in stored:
            heads[row.conversation_id] = max(heads[row.conversation_id], row.seq)
        runner.send_message("ccs:collect", {"heads": dict(heads), "timeout": self.drain_s})
        complete = self._wait(lambda: self.collected.complete(self.workers), self.drain_s + 60)
        self.outcome = self._judge(stored, quiet, complete)
        write_json(self.results, self.outcome)
        log.info("distributed load: %s", self.outcome["check"]["summary"])
        log.info("distributed load: results in %s", self.results)
        if not self.outcome["ok"]:
            environment.process_exit_code = 1

    def _judge(self, stored: list[Any], quiet: bool, complete: bool) -> dict[str, Any]:
        history = self.collected.history(stored)
        result = check(history)
        totals = self.collected.totals()
        delivery, ack = self.collected.latencies_ms()
        expected_deliveries = _expected_deliveries(history)
        problems = []
        if not quiet:
            problems.append(f"only {len(self.quiesced)} of {self.workers} workers quiesced")
        if not complete:
            problems.append(
                f"records of only {sum(w.complete for w in self.collected.workers.values())}"
                f" of {self.workers} workers arrived"
            )
        return {
            "ok": result.ok and not problems,
            "problems": problems,
            "plan": self.plan.as_dict(),
            "workers": self.workers,
            "started": self.started,
            "sending_started": self.go_at or self.started,
            "ended": time.time(),
            "check": {**result.as_dict(), "summary": result.summary(), "text": result.describe()},
            "totals": {**totals, "expected_deliveries": expected_deliveries},
            "delivery_ms": _finite(percentiles(delivery, (50, 95, 99, 99.9))),
            "ack_ms": _finite(percentiles(ack, (50, 95, 99))),
            "delivery_ms_sample": delivery[:: max(1, len(delivery) // 20_000)],
            "locust": snapshot(self.environment.stats),
            "per_worker": {str(k): w.summary for k, w in sorted(self.collected.workers.items())},
        }

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        """Say go once every device is done connecting (plans that wait for that), or once
        ``GO_ANYWAY_S`` passed since the start."""
        if not self.plan.send_after_all_online or self.go_at or self.fleet is None:
            return
        self.done[client_id] = int(data.get("ccs_done", 0))
        done, total = sum(self.done.values()), len(self.fleet.devices)
        if done >= total or (self.started and time.time() - self.started > GO_ANYWAY_S):
            self.go_at = time.time()
            log.info("%d of %d devices done connecting: sending starts", done, total)
            self.environment.runner.send_message("ccs:go", {"t": self.go_at})

    def register(self, runner: Any) -> None:
        self.environment.events.worker_report.add_listener(self.on_worker_report)
        runner.register_message("ccs:quiesced", self.on_quiesced)
        runner.register_message("ccs:records", self.on_records)


def _finite(figures: dict[str, float]) -> dict[str, float | None]:
    """NaN (no sample at all) as null: JSON has no NaN."""
    return {k: (v if v == v else None) for k, v in figures.items()}


def _expected_deliveries(history: Any) -> int:
    """Acked messages times the live members that should have them."""
    acked_per_conv: dict[str, int] = defaultdict(int)
    for ack in history.acks:
        acked_per_conv[ack.conversation_id] += 1
    return sum(
        acked_per_conv.get(e.conversation_id, 0)
        for expectations in history.expectations.values()
        for e in expectations
    )


def plan_from_options(options: Any, host: str) -> RunPlan:
    """The run plan from the locustfile's command-line options (``--ccs-…``)."""
    ws_urls = [u for u in (options.ccs_ws_urls or "").split(",") if u]
    if not ws_urls:
        ws_urls = [ws_url_for(host)]
    return RunPlan(
        prefix=options.ccs_prefix or f"dl{int(time.time()) % 10**7}",
        rooms=options.ccs_rooms,
        members=options.ccs_members,
        senders=options.ccs_senders or None,
        idle=options.ccs_idle,
        rate_per_conversation=options.ccs_rate,
        receipt_every_s=options.ccs_receipt_every,
        ws_urls=tuple(ws_urls),
        source_addresses=tuple(a for a in (options.ccs_source_addresses or "").split(",") if a),
        connect_in_flight=options.ccs_connect_in_flight,
        send_after_all_online=options.ccs_send_after_all_online,
    )
