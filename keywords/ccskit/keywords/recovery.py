"""Keywords: live traffic during a fault, and the consistency check after it."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import requests
from robot.api import logger
from robot.api.deco import keyword

from ..checker import check
from ..client import DeviceClient, wait_until
from ..context import KitContext
from ..counters import counter_value, wait_for_counter
from ..db import CcsDb
from ..faults.backends import find_backends
from ..percentile import latency_summary
from ..recovery import LiveTraffic, TrafficPlan, conversation_head, stored_rows
from .devices import measure_delivery


class RecoveryKeywords:
    """Live traffic through the reference client while a fault happens, then the checker.

    A few devices (connected with `Connect Resilient Device`) send at a modest,
    steady rate; every message is retried from the client's outbox with the same key until it
    is acknowledged. Afterwards `Live Traffic Should Be Consistent` reads the database and runs
    the consistency checker: zero lost, unexpected, duplicated, mismatched, out of order,
    sender order, gaps and missing per device.

    | `Start Live Traffic` | team-room | alice-laptop | bob-tablet | receivers=${all} |
    | `Wait For Acknowledged Sends` | 20 |
    | `Kill PostgreSQL` |
    | `Stop Live Traffic` |
    | `Live Traffic Should Be Consistent` |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._traffic: LiveTraffic | None = None
        self._terminated_listeners: dict[str, set[int]] = {}

    def _clients(self, aliases: list[str]) -> list[DeviceClient]:
        return [self.ctx.devices.client(a) for a in aliases]

    def _wait(self, clients: list[DeviceClient], predicate: Any, seconds: float) -> bool:
        """Waits on the loop for ``predicate`` over state the ``clients`` change."""
        return bool(self.ctx.loop.run(wait_until(clients, predicate, seconds), seconds + 5))

    @property
    def traffic(self) -> LiveTraffic:
        if self._traffic is None:
            raise AssertionError("no live traffic was started (use 'Start Live Traffic')")
        return self._traffic

    # ----- driving ---------------------------------------------------------------------------
    @keyword
    def start_live_traffic(
        self,
        conversation: str,
        *senders: str,
        receivers: list[str] | None = None,
        rate: float = 30.0,
        max_messages: int = 1500,
        max_time: timedelta = timedelta(seconds=90),
    ) -> None:
        """Starts ``senders`` sending to ``conversation`` at ``rate`` messages/s in total, at
        most ``max_messages`` and ``max_time``. ``receivers`` (default: the senders) are the
        devices whose received frames the checker judges.

        | Start Live Traffic | team-room | alice-laptop | bob-tablet | rate=30 |
        """
        if self._traffic is not None and self._traffic.running:
            raise AssertionError("live traffic is already running; stop it first")
        conv = self.ctx.fixtures.conversation(conversation)
        plan = TrafficPlan(conv, rate, max_messages, self.ctx.scaled(max_time))
        names = list(receivers or senders)
        traffic = LiveTraffic(plan, self._clients(list(senders)), self._clients(names))
        traffic.start_head = conversation_head(self.ctx.db, conv)
        self.ctx.loop.run(traffic.start(), 10)
        self._traffic = traffic
        logger.info(f"live traffic to {conv} from {senders} at {rate}/s, receivers {names}")

    @keyword
    def wait_for_acknowledged_sends(
        self, count: int, timeout: timedelta = timedelta(seconds=20)
    ) -> int:
        """Waits until ``count`` more sends were acknowledged than when this keyword started;
        returns the total. Used to prove traffic flows before and after a fault.

        | Wait For Acknowledged Sends | 20 |
        """
        traffic = self.traffic
        target = traffic.acked_count() + count
        seconds = self.ctx.scaled(timeout)
        if not self._wait(traffic.senders, lambda: traffic.acked_count() >= target, seconds):
            raise AssertionError(
                f"expected {count} more acknowledged sends within {seconds:.1f} s, "
                f"got {traffic.acked_count() - target + count}; {traffic.summary()}"
            )
        return traffic.acked_count()

    @keyword
    def wait_for_send_errors(
        self, code: str = "unavailable", count: int = 1, timeout: timedelta = timedelta(seconds=10)
    ) -> list[dict[str, Any]]:
        """Waits until senders got ``count`` replies with error ``code``; returns them as
        ``{device, client_msg_id, t, latency_s}`` (``latency_s``: from the send to the error).

        | Wait For Send Errors | unavailable | timeout=5s |
        """
        traffic, seconds = self.traffic, self.ctx.scaled(timeout)
        if not self._wait(traffic.senders, lambda: len(traffic.errors_of(code)) >= count, seconds):
            raise AssertionError(
                f"expected {count} send(s) answered with error '{code}' within "
                f"{seconds:.1f} s; replies so far {traffic.summary()}"
            )
        return [
            {"device": d, "client_msg_id": m, "t": t, "latency_s": lat}
            for d, m, t, lat in self.traffic.errors_of(code)
        ]

    @keyword
    def stop_live_traffic(self, drain: timedelta = timedelta(seconds=20)) -> dict[str, Any]:
        """Stops new sends and lets every sender flush its outbox for up to ``drain``;
        returns ``{attempted, acked_unique, unacked, replies, seconds}`` and records them."""
        seconds = self.ctx.scaled(drain)
        summary = self.ctx.loop.run(self.traffic.stop(seconds), seconds + 30)
        logger.info(f"live traffic stopped: {json.dumps(summary)}")
        self._mark_first_acks()
        if summary["crashes"]:
            raise AssertionError(f"live traffic senders crashed: {summary['crashes']}")
        self.ctx.metrics.record("traffic attempted", summary["attempted"], "messages")
        self.ctx.metrics.record(
            "traffic unacked after drain", summary["unacked"], "messages", 0, "<="
        )
        return summary

    def _mark_first_acks(self) -> None:
        """Put the first acknowledged send after each recovery on the fault timeline, so the
        report's fault timeline shows it for every fault, not only where a test asserted it."""
        timeline = [e.as_dict() for e in self.ctx.faults.timeline.events(None)]
        for i, event in enumerate(timeline):
            if event["event"] != "recovered":
                continue
            later = (e for e in timeline[i + 1 :] if e["kind"] == event["kind"])
            following = next(later, None)
            if following is not None and following["event"] == "first_ack":
                continue
            first = self.traffic.first_ack_after(event["t"])
            if first is not None and (following is None or first < following["t"]):
                detail = f"{first - event['t']:.3f} s after recovery (live traffic)"
                self.ctx.faults.timeline.record(event["kind"], "first_ack", detail, first)

    @keyword
    def stop_live_traffic_if_running(self) -> None:
        """Teardown helper: stops traffic without draining, never fails."""
        if self._traffic is not None and self._traffic.running:
            try:
                self.ctx.loop.run(self._traffic.stop(0.0), 30)
            except Exception as exc:  # teardown must go on
                logger.warn(f"stopping live traffic failed: {exc}")

    # ----- checking --------------------------------------------------------------------------
    @keyword
    def every_send_should_be_acknowledged(self) -> None:
        """Fails if any sender still holds an unacknowledged message in its outbox."""
        left = self.traffic.unacked_keys()
        if left:
            raise AssertionError(
                f"expected every send to be acknowledged after retries, still in outboxes: "
                f"{ {k: v[:5] for k, v in left.items()} } ({self.traffic.summary()})"
            )

    @keyword
    def live_traffic_should_be_consistent(
        self, database_url: str | None = None, settle: timedelta = timedelta(seconds=10)
    ) -> dict[str, Any]:
        """Reads the conversation's rows and runs the consistency checker over attempts, acks,
        rows and every receiver's frames; fails unless every anomaly count is zero.

        Messages committed just before the traffic stopped may still be on their way: the check
        waits up to ``settle`` for every receiver to hold every stored message (an event with
        a timeout, not a pause); whatever is still absent then counts as ``missing``.
        Returns the checker's ``{ok, counts, examples, info}``; each count is recorded as a
        metric with threshold 0.
        """
        traffic = self.traffic
        rows = stored_rows(self._db(database_url), traffic.plan.conversation_id)
        seconds = self.ctx.scaled(settle)
        self._wait(traffic.receivers, lambda: not traffic.undelivered(rows), seconds)
        late = traffic.undelivered(rows)
        if late:
            logger.info(f"still undelivered after {seconds:.0f} s: {late}")
        result = check(traffic.history(rows))
        logger.info(f"checker: {result.summary()}")
        for anomaly, value in result.counts.items():
            self.ctx.metrics.record(f"checker {anomaly}", value, "messages", 0, "<=")
        if not result.ok:
            raise AssertionError(f"consistency check failed:\n{result.describe()}")
        if result.info.get("acked", 0) == 0:
            raise AssertionError(f"the checker saw no acknowledged message: {result.summary()}")
        return result.as_dict()

    @keyword
    def recovery_time_should_be_at_most(
        self,
        kind: str,
        limit: timedelta = timedelta(seconds=5),
        timeout: timedelta = timedelta(seconds=30),
        devices: list[str] | None = None,
    ) -> float:
        """Seconds from the last ``recovered`` event of fault ``kind`` (the fault timeline) to
        the first acknowledged send after it; records the figure (metric ``recovery_time_s``)
        and a ``first_ack`` timeline event, and fails above ``limit``.

        ``devices`` limits the count to the senders the fault cut off (say, the clients of the
        node whose database link stalled), so traffic that never stopped does not hide a slow
        recovery.

        | Restart PostgreSQL |
        | Recovery Time Should Be At Most | db_kill | 5 s |
        """
        timeline = self.ctx.faults.timeline
        events = [e for e in timeline.events(kind) if e.event == "recovered"]
        if not events:
            raise AssertionError(f"no 'recovered' event of fault '{kind}' on the timeline")
        back, traffic = events[-1].t, self.traffic
        wait_s = self.ctx.scaled(timeout)
        self._wait(
            traffic.senders, lambda: traffic.first_ack_after(back, devices) is not None, wait_s
        )
        first = traffic.first_ack_after(back, devices)
        if first is None:
            raise AssertionError(
                f"no send was acknowledged within {wait_s:.0f} s after '{kind}' "
                f"recovered; {traffic.summary()}"
            )
        seconds = round(first - back, 3)
        timeline.record(kind, "first_ack", f"{seconds:.3f} s after recovery", first)
        limit_s = limit.total_seconds()
        self.ctx.metrics.record("recovery_time_s", seconds, "s", limit_s, "<=")
        logger.info(f"'{kind}': first acknowledged send {seconds:.3f} s after recovery")
        if seconds > limit_s:
            raise AssertionError(
                f"expected the first acknowledged send within {limit_s:.1f} s after '{kind}' "
                f"recovered, it took {seconds:.3f} s"
            )
        return seconds

    @keyword
    def refused_sends_should_be_stored_once(
        self, code: str = "unavailable", database_url: str | None = None
    ) -> int:
        """Every message first answered with error ``code`` was retried from the outbox and is
        now stored exactly once under its original key; returns how many were checked.
        Fails when no send was refused, since the check would then prove nothing.
        """
        refused = {(d, m) for d, m, _, _ in self.traffic.errors_of(code)}
        if not refused:
            raise AssertionError(f"no send was answered with '{code}': the fault missed them")
        devices = {c.alias: c.device_id for c in self.traffic.senders}
        db = self._db(database_url)
        sql = (
            "SELECT count(*) AS n FROM messages WHERE sender_device_id = %s AND client_msg_id = %s"
        )
        wrong = []
        for alias, cmid in sorted(refused):
            count = int(db.rows(sql, (devices[alias], cmid))[0]["n"])
            if count != 1:
                wrong.append(f"{alias}/{cmid} stored {count} times")
        if wrong:
            raise AssertionError(f"refused sends not stored exactly once after retry: {wrong}")
        logger.info(f"{len(refused)} sends refused with '{code}' were retried and stored once")
        self.ctx.metrics.record(f"sends refused with {code} then stored", len(refused), "messages")
        return len(refused)

    @keyword
    def cross_node_delivery_should_be_within(
        self,
        conversation: str,
        client_msg_ids: list[str],
        devices: list[str],
        limit_ms: float = 1000.0,
        timeout: timedelta = timedelta(seconds=5),
    ) -> dict[str, float]:
        """Waits for every message at every device, records each latency (sample
        ``cross_node_latency_ms``) and the p50/p99/max, and fails if any exceeds ``limit_ms``.

        | Cross Node Delivery Should Be Within | team-room | ${SENT_IDS} | ${devices} | 1000 |
        """
        values = [
            measure_delivery(self.ctx, d, conversation, m, timeout, "cross_node_latency_ms")
            for d in devices
            for m in client_msg_ids
        ]
        summary = latency_summary(values)
        self.ctx.metrics.record("cross_node_latency_p50_ms", summary["p50_ms"], "ms")
        self.ctx.metrics.record(
            "cross_node_latency_p99_ms", summary["p99_ms"], "ms", limit_ms, "<="
        )
        logger.info(
            f"cross-node delivery latency of {int(summary['count'])} deliveries: p50 "
            f"{summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, "
            f"max {summary['max_ms']:.1f} ms"
        )
        if summary["max_ms"] > limit_ms:
            raise AssertionError(
                f"expected every cross-node delivery within {limit_ms:.0f} ms, worst was "
                f"{summary['max_ms']:.1f} ms ({summary})"
            )
        return summary

    @keyword
    def node_health_should_report(
        self, name: str, field: str, value: str, timeout: timedelta = timedelta(seconds=10)
    ) -> dict[str, Any]:
        """Waits until ``GET /health`` of node ``name`` has ``field`` equal to ``value``.

        | Node Health Should Report | node-1 | redis | ok |
        """
        url = f"{self.ctx.nodes(name).base_url}/health"
        seconds = self.ctx.scaled(timeout)
        deadline = time.monotonic() + seconds
        last: Any = "no answer"
        while time.monotonic() < deadline:
            try:
                last = requests.get(url, timeout=2).json()
                if str(last.get(field)) == value:
                    return dict(last)
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.1)  # polling another process's endpoint: there is no event to wait on
        raise AssertionError(
            f"expected {url} to report {field}={value!r} within {seconds:.0f} s, "
            f"last answer: {last}"
        )

    @keyword
    def node_should_finish_repair_sweeps(
        self, name: str, count: int = 2, timeout: timedelta = timedelta(seconds=10)
    ) -> int:
        """Waits until node ``name`` finishes ``count`` more repair sweeps (``/metrics``
        ``ccs_repair_sweeps_total``) than when called; returns the new total.

        Two sweeps guarantee one that started after the call, so every conversation its
        devices joined before the call has been looked at once: an edit the node misses
        afterwards is one its next sweep must find.
        """
        base = self.ctx.nodes(name).base_url
        start = counter_value(base, "ccs_repair_sweeps_total") or 0.0
        seconds = self.ctx.scaled(timeout)
        held, now = wait_for_counter(
            base, "ccs_repair_sweeps_total", lambda v: v >= start + count, seconds
        )
        if not held:
            raise AssertionError(
                f"expected node '{name}' to finish {count} repair sweeps within {seconds:.0f} s, "
                f"ccs_repair_sweeps_total went {start:.0f} -> {now}"
            )
        return int(now or 0)

    @keyword
    def terminate_listener_of_node(self, name: str, server: str = "pg") -> list[int]:
        """``pg_terminate_backend`` of the LISTEN connection of node ``name``, found by its
        ``application_name`` (``ccs-listener <node>``); returns the terminated PIDs.

        The reference listener probes its connection with ``SELECT 1``, so its last statement
        is not always ``LISTEN``: the application name is the reliable mark. Recorded on the
        timeline as ``db_listener_terminated``.
        """
        kit = self.ctx.faults
        pids = kit.terminate_backends(server, 1, application_name=f"ccs-listener {name}")
        kit.timeline.record("db_listener_terminated", "injected", f"{name} pids {pids}")
        self._terminated_listeners[name] = set(pids)
        return pids

    @keyword
    def node_should_listen_again(
        self, name: str, server: str = "pg", timeout: timedelta = timedelta(seconds=10)
    ) -> int:
        """Waits until node ``name`` holds a new LISTEN connection (a PID other than the one
        terminated) and its ``/health`` says ``listener: listening``; returns the new PID and
        records ``recovered`` for ``db_listener_terminated``."""
        dsn = self.ctx.faults.admin_dsn(server)
        old = self._terminated_listeners.get(name, set())
        seconds = self.ctx.scaled(timeout)
        deadline = time.monotonic() + seconds
        fresh: list[int] = []
        while time.monotonic() < deadline:
            found = find_backends(dsn, application_name=f"ccs-listener {name}")
            fresh = [b.pid for b in found if b.pid not in old]
            if fresh:
                break
            time.sleep(0.05)  # polling pg_stat_activity: there is no event to wait on
        if not fresh:
            raise AssertionError(
                f"node '{name}' did not open a new LISTEN connection within "
                f"{seconds:.0f} s (terminated: {sorted(old)})"
            )
        self.node_health_should_report(name, "listener", "listening", timeout)
        self.ctx.faults.timeline.record(
            "db_listener_terminated", "recovered", f"{name} pid {fresh[0]}"
        )
        return fresh[0]

    def _db(self, database_url: str | None) -> CcsDb:
        """The kit's SQL link, or one to ``database_url`` when a keyword names another."""
        if not database_url or database_url == self.ctx.database_url:
            return self.ctx.db
        return CcsDb(database_url)
