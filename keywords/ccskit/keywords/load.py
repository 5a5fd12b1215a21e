"""Keywords: load from many lean device connections, and the consistency checker."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import psutil
from robot.api import logger
from robot.api.deco import keyword

from ..bench import races, reliability
from ..bench.monitor import CommitSampler, ServerMonitor, listening_pid, server_db_connections
from ..checker import ANOMALIES, CheckResult, check, history_from_clients
from ..context import KitContext
from ..ids import unique_id
from ..load import Fleet, LoadRun, PhaseStats, make_idle, make_rooms, provision, raise_fd_limit
from ..loop import LoopThread
from ..percentile import percentiles
from ..recovery import stored_rows

TWO_MIN = timedelta(minutes=2)


class LoadKeywords:
    """Volume: fleets of lean device connections, open-loop sends, and end-to-end checks.

    A *fleet* is a named set of devices provisioned through the REST API: rooms (conversations)
    of ``members`` devices, or idle devices that only hold a connection. One process holds
    thousands of connections (permessage-deflate off). `Send Load` sends at a fixed rate from a
    schedule and measures delivery latency from the *scheduled* time, send->ack time, and
    throughput. `Check Load Consistency` compares what was attempted, acknowledged, stored
    and received (a Jepsen-style set check) and fails on any lost, unexpected, duplicated,
    mismatched, out-of-order, gap or missing message; its counts are recorded as metrics.

    | `Create Load Fleet`      | hot  | rooms=1 | members=50 |
    | `Connect Load Fleet`     | hot  |
    | ${stats}=                | `Send Load` | hot | rate=500 | duration=5s |
    | `Check Load Consistency` | hot  |
    | `Disconnect Load Fleet`  | hot  |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        # A loop of its own (on uvloop): thousands of lean connections must not slow the
        # device clients on the kit's shared loop.
        self._loop = LoopThread("ccs-load-loop", fast=True)
        self._fleets: dict[str, LoadRun] = {}
        self._monitor: ServerMonitor | None = None
        raise_fd_limit()

    # ----- helpers ---------------------------------------------------------------------------
    def _run(self, coro: Any, timeout: float) -> Any:
        return self._loop.run(coro, timeout)

    def _fleet(self, name: str) -> LoadRun:
        if name not in self._fleets:
            known = ", ".join(sorted(self._fleets)) or "none"
            raise AssertionError(f"no load fleet called '{name}' (known: {known})")
        return self._fleets[name]

    def _room(self, name: str, index: int) -> Any:
        rooms = self._fleet(name).fleet.rooms
        if not 0 <= index < len(rooms):
            raise AssertionError(f"fleet '{name}' has {len(rooms)} rooms, no room {index}")
        return rooms[index]

    def _provision(self, name: str, fleet: Fleet, timeout: timedelta) -> LoadRun:
        cfg = self.ctx.config
        seconds = self.ctx.scaled(timeout)
        ready = self._run(
            provision(
                self.ctx.target.require(),
                cfg.token_secret,
                fleet,
                timeout_s=seconds,
                issuer=cfg.token_issuer,
                audience=cfg.token_audience,
            ),
            seconds + 5,
        )
        run = LoadRun(self.ctx.target.ws_url, ready)
        self._fleets[name] = run
        logger.info(f"fleet '{name}': {len(ready.devices)} devices, {len(ready.rooms)} rooms")
        return run

    # ----- fleets ----------------------------------------------------------------------------
    @keyword
    def create_load_fleet(
        self,
        name: str,
        rooms: int = 10,
        members: int = 10,
        senders: int | None = None,
        devices_per_user: int = 1,
        timeout: timedelta = TWO_MIN,
    ) -> int:
        """Provisions ``rooms`` conversations of ``members`` devices; returns the device count.

        ``senders`` devices per room send (all by default). ``devices_per_user=2`` gives each
        user two devices in the room, so every message also syncs to the sender's other device.
        """
        prefix = unique_id(name)
        fleet = make_rooms(prefix, rooms, members, senders, devices_per_user)
        return len(self._provision(name, fleet, timeout).fleet.devices)

    @keyword
    def create_idle_fleet(self, name: str, count: int, timeout: timedelta = TWO_MIN) -> int:
        """Provisions ``count`` devices in no conversation, only to hold connections."""
        return len(self._provision(name, make_idle(unique_id(name), count), timeout).fleet.devices)

    @keyword
    def connect_load_fleet(self, name: str, timeout: timedelta = TWO_MIN) -> int:
        """Connects every device of ``name`` (200 handshakes in flight); fails if any fails.

        Returns the number of live connections; logs the handshake rate.
        """
        run, seconds = self._fleet(name), self.ctx.scaled(timeout)
        stats = self._run(run.connect(timeout_s=seconds), seconds + 5)
        logger.info(
            f"fleet '{name}': {stats.connected}/{stats.wanted} connected in "
            f"{stats.seconds:.1f} s ({stats.per_s:.0f}/s)"
        )
        if stats.failed:
            raise AssertionError(
                f"{stats.failed} of {stats.wanted} connections of '{name}' failed: {stats.errors}"
            )
        return run.live

    @keyword
    def live_load_connections(self, *names: str) -> int:
        """Open connections of the named fleets right now."""
        return sum(self._fleet(n).live for n in names)

    @keyword
    def no_load_connection_should_have_closed(self, *names: str) -> None:
        """Fails if the server closed any connection of the named fleets (with the close codes)."""
        closes = [c for n in names for c in self._fleet(n).closes]
        if closes:
            shown = ", ".join(f"{c.device_id}: {c.code} {c.reason}" for c in closes[:10])
            raise AssertionError(f"{len(closes)} connections closed unexpectedly: {shown}")

    @keyword
    def disconnect_load_fleet(self, name: str) -> None:
        """Closes every connection of ``name`` on purpose; its records stay for checks."""
        self._run(self._fleet(name).disconnect(), 120)

    @keyword
    def disconnect_all_load_fleets(self) -> None:
        """Closes every fleet and forgets them (test teardown): their records go too."""
        for run in self._fleets.values():
            self._run(run.disconnect(), 120)
        self._fleets.clear()

    # ----- sending ---------------------------------------------------------------------------
    @keyword
    def send_load(
        self,
        name: str,
        rate: float,
        duration: timedelta | None = None,
        count: int | None = None,
        drain: timedelta = timedelta(seconds=15),
    ) -> dict[str, Any]:
        """Sends at ``rate`` msgs/s for ``duration`` (or ``count`` messages), then waits for acks
        and deliveries up to ``drain``. Returns the phase figures (``acked``, ``errors``,
        ``ack_rate_per_s``, ``delivery_ms`` and ``ack_ms`` with avg/p50/p95/p99/max ...).

        Sends are scheduled, never gated on acks; latency counts from the scheduled time.
        """
        run = self._fleet(name)
        seconds = duration.total_seconds() if duration else None
        planned = seconds if seconds is not None else (count or 0) / rate
        commits = CommitSampler(self.ctx.database_url)
        self._run(self._start(commits), 10)
        stats: PhaseStats = self._run(
            run.send_phase(rate, seconds, count, drain_timeout_s=self.ctx.scaled(drain)),
            planned + self.ctx.scaled(drain) + 30,
        )
        result = {**stats.as_dict(), "db_transactions_per_s": self._tx_rate(run, stats, commits)}
        logger.info(f"fleet '{name}' phase {stats.phase}: {json.dumps(result, default=str)}")
        # Sample names follow the report's rules (ccskit.report): ws_* delivery, db_* operation.
        self.ctx.metrics.add_samples("ws_delivery_ms", self._latencies(run, stats.phase), "ms")
        self.ctx.metrics.add_samples("db_op_ms", self._ack_times(run, stats.phase), "ms")
        self.ctx.metrics.add_point("throughput_msgs_per_s", stats.ack_rate_per_s, "msg/s")
        for point in reliability.latency_timeline(run, stats.phase):
            self.ctx.metrics.add_point("ws_delivery_p50_ms", point.p50_ms, "ms", point.t)
            self.ctx.metrics.add_point("ws_delivery_p99_ms", point.p99_ms, "ms", point.t)
        return result

    @staticmethod
    async def _start(sampler: CommitSampler) -> None:
        sampler.start()

    def _tx_rate(self, run: LoadRun, stats: PhaseStats, sampler: CommitSampler) -> float | None:
        """Committed transactions per second of the database while the phase was sending
        (None, logged, when the phase was too short or pg_stat_database unreadable)."""
        try:
            self._run(sampler.stop(), 15)
        except Exception as exc:  # the load itself must not fail for want of a statistic
            logger.warn(f"pg_stat_database not readable, no transaction rate: {exc!r}")
            return None
        sched = [r.t_sched for r in run.sent if r.phase == stats.phase]
        if not sched:
            return None
        rate = sampler.rate_between(min(sched) + run.epoch_offset, max(sched) + run.epoch_offset)
        if rate is None:
            logger.info("send phase too short for a database transaction rate (needs > 3 s)")
        return rate

    @staticmethod
    def _ack_times(run: LoadRun, phase: int) -> list[float]:
        return [(r.t_ack - r.t_sent) * 1000 for r in run.sent if r.phase == phase and r.seq]

    @staticmethod
    def _latencies(run: LoadRun, phase: int) -> list[float]:
        return [
            (m.t_recv - rec.t_sched) * 1000
            for c in run.conns.values()
            for m in c.received
            if (rec := run.by_key.get((m.sender_device_id, m.client_msg_id))) is not None
            and rec.phase == phase
        ]

    @keyword
    def cross_device_sync_ms(self, name: str) -> dict[str, float]:
        """Latency (ms) from scheduled send to arrival on the sender's *other* devices.

        Needs a fleet made with ``devices_per_user`` >= 2.
        """
        run = self._fleet(name)
        owner = {d.device_id: d.user_id for d in run.fleet.devices}
        values = [
            (m.t_recv - rec.t_sched) * 1000
            for device_id, c in run.conns.items()
            for m in c.received
            if (rec := run.by_key.get((m.sender_device_id, m.client_msg_id))) is not None
            and device_id != rec.device_id
            and owner.get(device_id) == owner.get(rec.device_id)
        ]
        if not values:
            raise AssertionError(f"fleet '{name}' saw no message reach a sender's other device")
        return {**percentiles(values), "count": float(len(values))}

    # ----- checks ----------------------------------------------------------------------------
    @keyword
    def check_load_consistency(self, *names: str) -> dict[str, Any]:
        """Checks attempted vs acknowledged vs stored vs received for the named fleets.

        Logs and records every anomaly count (threshold 0) and fails unless all are zero:
        lost, unexpected, duplicated, mismatched, out_of_order, sender_order, gaps, missing.
        """
        results = []
        for name in names:
            run = self._fleet(name)
            # Race keywords do not drain: let their deliveries land before judging "missing".
            self._run(run.wait_for_deliveries(self.ctx.scaled(5.0)), self.ctx.scaled(5.0) + 5)
            stored = stored_rows(self.ctx.db, *run.conversation_ids)
            results.append((f"fleet '{name}'", check(run.history(stored))))
        return self._judge(results)

    @keyword
    def check_consistency_of_devices(
        self, *devices: str, conversations: str, expect_from: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Runs the consistency checker over connected devices (by alias) for the given
        conversations (comma-separated fixture names or ids); fails on any anomaly.

        The named devices must include every sender of those conversations: a stored message
        nobody named attempted counts as unexpected. Each device must have received every
        stored message (from ``expect_from[conversation]`` on, default all), each once and in
        order, across its reconnects. Bodies are not compared.

        | Check Consistency Of Devices | alice-phone | bob-tablet | conversations=team-room |
        """
        clients = [self.ctx.devices.client(d) for d in devices]
        fixtures = self.ctx.fixtures
        convs = fixtures.conversations_of(conversations)
        expect = {fixtures.conversation(k): int(v) for k, v in (expect_from or {}).items()}
        stored = stored_rows(self.ctx.db, *convs)
        result = check(history_from_clients(clients, stored, convs, expect))
        return self._judge([("devices", result)])

    def _judge(self, results: list[tuple[str, CheckResult]]) -> dict[str, Any]:
        """Log and record every anomaly count (threshold 0); fail unless all are zero."""
        for name, result in results:
            logger.info(f"{name}: {result.summary()}")
        totals = {a: sum(r.counts[a] for _, r in results) for a in ANOMALIES}
        for anomaly, value in totals.items():
            self.ctx.metrics.record(f"checker {anomaly}", value, "messages", 0, "<=")
        failed = [f"'{n}': {r.describe()}" for n, r in results if not r.ok]
        if failed:
            raise AssertionError("consistency check failed:\n" + "\n".join(failed))
        return {"counts": totals, "info": [r.info for _, r in results]}

    @keyword
    def all_members_should_see_the_same_order(self, name: str) -> int:
        """Every connected member of each room received the room's messages in one identical
        order; returns how many devices were compared."""
        run, compared = self._fleet(name), 0
        for room in run.fleet.rooms:
            streams = {
                d.device_id: [
                    (m.seq, m.message_id)
                    for m in run.conns[d.device_id].received
                    if m.conversation_id == room.conversation_id
                ]
                for d in room.members
                if d.device_id in run.conns
            }
            reference_id, reference = next(iter(streams.items()))
            for device_id, stream in streams.items():
                if stream != reference:
                    diff = next(
                        (
                            i
                            for i, (a, b) in enumerate(zip(stream, reference, strict=False))
                            if a != b
                        ),
                        min(len(stream), len(reference)),
                    )
                    raise AssertionError(
                        f"{device_id} and {reference_id} disagree on {room.conversation_id} at "
                        f"position {diff}: {stream[diff : diff + 3]} vs "
                        f"{reference[diff : diff + 3]}"
                    )
                compared += 1
        return compared

    # ----- reliability -----------------------------------------------------------------------
    @keyword
    def connection_uptime_pct(self, *names: str) -> float:
        """Percent of the time the held connections of the named fleets were open, of the time
        they should have been (from each one's welcome until now; a close the kit did not ask
        for stops its clock). 100 means no connection dropped."""
        up = reliability.uptime(self._fleet(n) for n in names)
        if not up.connections:
            raise AssertionError(f"fleets {names} hold no connection: no uptime to measure")
        logger.info(
            f"uptime of {up.connections} connections: {up.open_s:,.1f} of {up.wanted_s:,.1f} "
            f"connection-seconds open ({up.pct:.4f} %), {up.closed} closed unexpectedly"
        )
        return up.pct

    @keyword
    def delivery_success_pct(self, *names: str) -> float:
        """Percent of the expected deliveries that arrived: every send attempted into a room
        in a send phase, owed once to each held member device connected before it was
        scheduled. A refused send, a lost message or a dropped member lowers it."""
        success = reliability.delivery_success(self._fleet(n) for n in names)
        if not success.expected:
            raise AssertionError(f"fleets {names} expected no delivery: nothing to measure")
        logger.info(success.describe())
        return success.pct

    # ----- races (Test 2.1) ------------------------------------------------------------------
    @keyword
    def retry_same_key_concurrently(
        self, name: str, copies: int = 6, connections: int = 2, room: int = 0
    ) -> dict[str, Any]:
        """One device sends one key ``copies`` times at once over ``connections`` sockets;
        fails unless all are acks of one message with exactly one not marked duplicate."""
        run = self._fleet(name)
        outcome = self._run(
            races.retry_same_key(run, self._room(name, room), copies, connections), 60
        )
        logger.info(f"same-key race: {outcome}")
        return outcome

    @keyword
    def edit_same_message_concurrently(
        self, name: str, editors: int = 2, room: int = 0
    ) -> dict[str, Any]:
        """``editors`` devices edit one message with the same expected version at once; fails
        unless exactly one wins and each other gets ``conflict`` with the winner's version/body."""
        outcome = self._run(races.edit_race(self._fleet(name), self._room(name, room), editors), 60)
        logger.info(f"edit race: {outcome}")
        return outcome

    @keyword
    def race_receipts(
        self, name: str, devices: int = 3, per_device: int = 20, room: int = 0
    ) -> dict[str, Any]:
        """Devices fire shuffled receipts over two sockets each; fails unless every device's
        stored cursors end at the maximum it sent."""
        dsn = self.ctx.database_url
        outcome = self._run(
            races.receipt_race(self._fleet(name), self._room(name, room), dsn, devices, per_device),
            60,
        )
        logger.info(f"receipt race: {outcome}")
        return outcome

    # ----- figures ---------------------------------------------------------------------------
    @keyword
    def record_figure(
        self, name: str, value: float, unit: str, op: str = "", threshold: float | None = None
    ) -> float:
        """Records a measured figure for the report, beside its threshold when given, and fails
        when the figure misses it.

        | Record Figure | ws_delivery_avg_ms | ${avg} | ms | < | 50 |
        | Record Figure | messages_per_s     | ${rate} | msg/s |
        """
        metric = self.ctx.metrics.record(name, value, unit, threshold, op or "<=")
        shown = f"{name} = {value:.3f} {unit}"
        if threshold is None:
            logger.info(shown)
            return float(value)
        verdict = "meets" if metric.passed else "MISSES"
        logger.info(f"{shown} {verdict} threshold {metric.op} {threshold:g} {unit}")
        if not metric.passed:
            raise AssertionError(f"{shown}, expected {metric.op} {threshold:g} {unit}")
        return float(value)

    # ----- server resources ------------------------------------------------------------------
    @keyword
    def server_process_id(self) -> int:
        """PID of the server under test: the started reference server, or the local process
        listening on the port of ``SUT_URL``. Fails when the server is not on this machine."""
        if self.ctx.target.pid:
            return self.ctx.target.pid
        port = urlsplit(self.ctx.target.require()).port or 80
        pid = listening_pid(port)
        if pid is None:
            raise AssertionError(f"no local process listens on port {port}: cannot sample it")
        return pid

    @keyword
    def start_server_monitor(self, interval: timedelta = timedelta(milliseconds=500)) -> int:
        """Samples the server's RSS, CPU and PostgreSQL connections in the background."""
        pid = self.server_process_id()
        self._monitor = ServerMonitor(pid, self.ctx.database_url, interval.total_seconds())

        async def start() -> None:
            assert self._monitor is not None
            self._monitor.start()

        self._run(start(), 10)
        return pid

    @keyword
    def stop_server_monitor(self) -> dict[str, Any]:
        """Stops sampling; records the RSS/CPU series and returns peak and end figures."""
        if self._monitor is None:
            raise AssertionError("Start Server Monitor was not called")
        report = self._run(self._monitor.stop(), 30)
        self._monitor = None
        for s in report.samples:
            self.ctx.metrics.add_point("server_rss_mib", s.rss_mib, "MiB", s.t)
            self.ctx.metrics.add_point("server_cpu_pct", s.cpu_percent, "%", s.t)
        for t, n in report.db_connections:
            self.ctx.metrics.add_point("server_db_connections", n, "connections", t)
        summary = report.summary()
        logger.info(f"server monitor: {summary}")
        return summary

    @keyword
    def server_rss_mib(self) -> float:
        """The server's resident memory now, in MiB."""
        return float(psutil.Process(self.server_process_id()).memory_info().rss / 2**20)

    @keyword
    def server_database_connections(self) -> list[dict[str, Any]]:
        """``pg_stat_activity`` rows that belong to the server process (pool + listener)."""
        return self._run(server_db_connections(self.ctx.database_url, self.server_process_id()), 30)
