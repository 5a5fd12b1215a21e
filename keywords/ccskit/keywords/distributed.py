"""Keywords: distributed load on Locust (master + workers), checked by the kit's checker."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from ..config import RESULTS_DIR, ws_url_for
from ..context import KitContext
from ..distributed.figures import TIMING, metrics
from ..distributed.launch import (
    LocustProcesses,
    Options,
    describe,
    run_bound_s,
    start_locust,
    wait_for,
)
from ..load import raise_fd_limit
from ..metrics import Metric


class DistributedKeywords:
    """Load from a Locust master and workers, checked end to end by the kit's consistency checker.

    `Start Distributed Load` starts a Locust master (headless) and ``workers`` worker processes
    on this machine against the server under test. The master provisions rooms of devices through
    the REST fixture API and deals the devices round robin to the workers, so every room has
    members on every worker; each device is a Locust user that connects, says hello (refusals
    retried as the protocol says), sends into its room at a steady rate, confirms delivery and
    reconnects with resume when the server allows it. At the end the master gathers every
    worker's per-message records (Locust custom messages) and runs the checker over all of them
    together with the stored rows.

    | `Start Distributed Load` | ${SUT_URL} | workers=2 | rooms=30 | duration=20s |
    | ${run}= | `Wait For Distributed Load To Finish` |
    | `Distributed Load Should Have Lost Nothing` |
    | `Record Distributed Load Figures` |

    Workers on other machines: see ``docs/distributed-load.md``.
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._procs: LocustProcesses | None = None
        self._opts: Options | None = None
        self._outcome: dict[str, Any] | None = None
        self._bound_s = 0.0
        raise_fd_limit()

    @keyword
    def start_distributed_load(
        self,
        server: str = "",
        workers: int = 2,
        rooms: int = 20,
        members: int = 10,
        rate: float = 5.0,
        duration: timedelta = timedelta(seconds=20),
        idle: int = 0,
        spawn_rate: float = 0.0,
        receipt_every: timedelta = timedelta(seconds=5),
        output: str = "",
        connect_first: bool = True,
    ) -> int:
        """Starts a Locust master and ``workers`` workers against ``server``; returns the devices.

        ``server`` is the base URL (``http://host:port``; default: the server under test).
        ``rooms`` rooms of ``members`` devices (one user each) plus ``idle`` devices that only
        hold a connection;
        every room gets ``rate`` messages per second in all, for ``duration``. ``spawn_rate``
        devices per second connect (default: all at once). Logs and the results file go to
        ``output`` (default ``results/distributed``). With ``connect_first`` no device sends
        until every device is online (the master says go), so delivery latency is measured on
        a steady fleet, not during its connect burst. Does not wait: see
        `Wait For Distributed Load To Finish`.
        """
        if self._procs is not None:
            raise AssertionError("a distributed load is already running: stop it first")
        url = (server or self.ctx.target.require()).rstrip("/")
        folder = Path(output) if output else RESULTS_DIR / "distributed"
        opts = Options(
            workers=workers,
            rooms=rooms,
            members=members,
            idle=idle,
            rate=rate,
            duration_s=duration.total_seconds(),
            spawn_rate=spawn_rate,
            receipt_every_s=receipt_every.total_seconds(),
            results=folder / "results.json",
            logs=folder,
            send_after_all_online=connect_first,
        )
        plan = opts.plan([ws_url_for(url)])
        opts.results.unlink(missing_ok=True)
        self._procs, users = start_locust(opts, plan, url, self.ctx.database_url)
        self._opts, self._outcome = opts, None
        self._bound_s = run_bound_s(opts, users)
        logger.info(
            f"Locust master pid {self._procs.master.pid}, workers "
            f"{[p.pid for p in self._procs.workers]}: {users} devices against {url}"
        )
        return users

    @keyword
    def wait_for_distributed_load_to_finish(
        self, timeout: timedelta | None = None
    ) -> dict[str, Any]:
        """Waits for the master to end (default bound: the run's duration plus provisioning and
        draining time) and returns its outcome: ``ok``, ``check`` (counts, examples), ``totals``,
        ``delivery_ms``, ``ack_ms``, ``locust`` (Locust's own figures per request name)."""
        procs, opts = self._procs, self._opts
        if procs is None or opts is None:
            raise AssertionError("no distributed load was started")
        bound = timeout.total_seconds() if timeout else self._bound_s
        code = wait_for(procs, bound)
        procs.stop()
        self._procs = None
        if code is None:
            raise AssertionError(
                f"the Locust master did not end within {bound:.0f} s:\n{procs.tail(1500)}"
            )
        if not opts.results.exists():
            raise AssertionError(
                f"the Locust master ended with {code} and wrote no results:\n{procs.tail(1500)}"
            )
        outcome: dict[str, Any] = json.loads(opts.results.read_text())
        outcome["master_exit_code"] = code
        self._outcome = outcome
        logger.info(describe(outcome))
        return outcome

    def _require(self) -> dict[str, Any]:
        if self._outcome is None:
            raise AssertionError("no finished distributed load: run the wait keyword first")
        return self._outcome

    @keyword
    def distributed_load_should_have_lost_nothing(self) -> None:
        """Fails unless the checker found no lost, unexpected, duplicated, mismatched,
        out-of-order, gap or missing message over all workers, and every worker reported."""
        outcome = self._require()
        if not outcome["ok"]:
            problems = "\n".join(outcome.get("problems", []))
            raise AssertionError(
                f"distributed load: expected no anomaly over {outcome['workers']} workers, "
                f"got:\n{outcome['check']['text']}\n{problems}".rstrip()
            )

    @keyword
    def every_distributed_device_should_have_come_online(self) -> None:
        """Fails unless every device was welcomed (refusals retried are allowed and logged) and
        none was closed by the server unexpectedly."""
        t = self._require()["totals"]
        if t["connected"] != t["devices"] or t["closes"]:
            raise AssertionError(
                f"expected {t['devices']} devices online and no unexpected close, got "
                f"{t['connected']} online, {t['connect_failed']} failed "
                f"({t['connect_failures']}), {t['closes']} closes ({t['close_examples']})"
            )
        logger.info(f"{t['connect_refusals']} refusals retried, {t['connect_per_s']:.0f}/s")

    @keyword
    def record_distributed_load_figures(self) -> None:
        """Records every figure of the run (``distributed_*`` and Locust's ``locust_*``) with
        its threshold for the report; fails naming each correctness figure (anomalies, devices
        online, closes, unanswered sends, delivery success) beyond its threshold. Timing
        figures are asserted by `Distributed Load Latency Should Meet The Seed's Criteria`."""
        figures = metrics(self._require())
        for m in figures:
            self.ctx.metrics.record(m.name, m.value, m.unit, m.threshold, m.op)
        _fail_beyond([m for m in figures if m.name not in TIMING])

    @keyword("Distributed Load Latency Should Meet The Seed's Criteria")
    def distributed_load_latency_should_meet_the_seeds_criteria(self) -> None:
        """Fails when delivery latency (avg ≤ 50 ms, p99 ≤ 1 s, from the scheduled send time)
        or send->ack time (avg ≤ 200 ms) missed the seed's criteria."""
        _fail_beyond([m for m in metrics(self._require()) if m.name in TIMING])

    @keyword
    def stop_distributed_load(self) -> None:
        """Stops the master and workers if they still run (teardown; by their process ids)."""
        if self._procs is not None:
            self._procs.stop()
            self._procs = None


def _fail_beyond(figures: list[Metric]) -> None:
    failed = [m for m in figures if m.passed is False]
    if failed:
        shown = ", ".join(f"{m.name}={m.value} (wanted {m.op} {m.threshold})" for m in failed)
        raise AssertionError(f"{len(failed)} figures beyond their thresholds: {shown}")
