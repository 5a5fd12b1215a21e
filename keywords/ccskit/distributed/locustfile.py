"""Locust entry point: the kit's device fleet as Locust users (master + workers, or one process).

Every Locust user is one device: ``on_start`` connects it and says hello (refusals retried as the
protocol says), its task sends into its room at the plan's rate (open loop: the scheduled time
travels in the body, latency counts from it), receipts go out in the background, and a close the
protocol allows is followed by a reconnect with resume. Start as many users as the master logs
("start N Locust users"): one per device. Headless, the kit's launcher does it all::

    python -m ccskit.distributed.launch --workers 2          # what `make distributed` runs

By hand (web UI on http://127.0.0.1:8089 when --headless is left out)::

    locust -f keywords/ccskit/distributed/locustfile.py --master --host http://127.0.0.1:8080 \\
        --ccs-rooms 30 --ccs-members 10 --expect-workers 2 --headless -u 300 -r 300 -t 20s
    locust -f keywords/ccskit/distributed/locustfile.py --worker --master-host 127.0.0.1

Options of the run are given to the master only (``--ccs-…``, see ``locust --help``); workers
receive their share of the fleet, tokens included, from the master.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

from ccskit.config import KitConfig
from ccskit.distributed.master import MasterState, plan_from_options
from ccskit.distributed.plan import Slot
from ccskit.distributed.worker import WorkerState
from ccskit.load import raise_fd_limit

log = logging.getLogger("ccs.distributed")

CONNECT_TIMEOUT_S = 600.0

# Locust declares a worker missing after 3 s without a heartbeat (and a worker gives up on a
# master silent for 60 s). Tens of thousands of handshakes on a machine whose cores the server
# and PostgreSQL share can starve a process for longer than that; a worker declared missing
# stops the whole test. Allow a minute, and five for the master.
locust.runners.HEARTBEAT_LIVENESS = 60
locust.runners.MASTER_HEARTBEAT_TIMEOUT = 300

_master: MasterState | None = None
_worker: WorkerState | None = None


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("CCS device fleet (master only)")
    group.add_argument("--ccs-rooms", type=int, default=10, help="conversations")
    group.add_argument("--ccs-members", type=int, default=10, help="devices per conversation")
    group.add_argument("--ccs-senders", type=int, default=0, help="senders per room (0: all)")
    group.add_argument("--ccs-idle", type=int, default=0, help="extra devices in no room")
    group.add_argument("--ccs-rate", type=float, default=5.0, help="msgs/s per conversation")
    group.add_argument("--ccs-receipt-every", type=float, default=5.0, help="s between receipts")
    group.add_argument("--ccs-ws-urls", default="", help="server nodes, comma separated")
    group.add_argument("--ccs-source-addresses", default="", help="client bind addresses")
    group.add_argument("--ccs-connect-in-flight", type=int, default=200)
    group.add_argument("--ccs-prefix", default="", help="id prefix of users/devices/rooms")
    group.add_argument(
        "--ccs-send-after-all-online", action="store_true", help="connect everyone, then send"
    )
    group.add_argument("--ccs-database-url", default="", help="default: DATABASE_URL")
    group.add_argument("--ccs-drain", type=float, default=30.0, help="s to wait for acks")
    group.add_argument(
        "--ccs-results", default="results/distributed.json", help="where the outcome goes"
    )


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _master, _worker
    raise_fd_limit()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _worker = WorkerState(environment)
        _worker.register(runner)
        return
    options = environment.parsed_options
    if isinstance(runner, MasterRunner) and options is not None:
        _master = MasterState(
            environment,
            plan_from_options(options, environment.host or ""),
            (environment.host or "").rstrip("/"),
            options.ccs_database_url or KitConfig.from_env().database_url,
            Path(options.ccs_results),
            options.ccs_drain,
        )
        _master.register(runner)
        environment.events.test_start.add_listener(_master.on_test_start)
        environment.events.test_stopping.add_listener(_master.on_test_stopping)
        if options.headless and options.expect_workers:
            _master.prepare(options.expect_workers)


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    if _worker is not None:
        _worker.shutdown()


class DeviceUser(User):
    """One device of the fleet: online, steady sends into its room, offline at the end."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.slot: Slot | None = None
        self.interval = 0.0
        self.next_due = 0.0

    def wait_time(self) -> float:
        # a sender's task waits for its own due time; everyone else has nothing to do
        return 0.0 if self.slot is not None and self.slot.sends else 60.0

    def on_start(self) -> None:
        if _worker is None:
            raise RuntimeError("DeviceUser runs on Locust workers (start with --worker)")
        deadline = time.monotonic() + 30
        while _worker.share is None and time.monotonic() < deadline:
            gevent.sleep(0.05)  # the share is sent before the users; this only covers a race
        self.slot = _worker.claim()
        if self.slot is None or _worker.fleet is None:
            return  # more users than devices: this one idles
        outcome = _worker.bridge.run(
            _worker.fleet.go_online(self.slot.device_id, CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S
        )
        if not outcome.ok:
            log.warning("%s never got online: %s", self.slot.device_id, outcome.last_error)
            self.slot = None
            return
        self.interval = _worker.share.plan.sender_interval_s() if _worker.share else 0.0
        # spread the senders of a room over the interval instead of sending all at once
        self.next_due = time.time() + random.uniform(0, min(self.interval, 60.0))

    @task
    def send(self) -> None:
        """Send one message into the device's room, due at the grid time (never waits for acks)."""
        if self.slot is None or not self.slot.sends or _worker is None or _worker.fleet is None:
            return
        if not _worker.may_send():
            gevent.sleep(0.5)  # every device first: the master says go
            self.next_due = time.time() + random.uniform(0, min(self.interval, 60.0))
            return
        # open loop on a fixed grid: each send is due one interval after the previous one was
        # due, whether or not acks came back, so a slow server shows as latency, not fewer sends
        due = self.next_due
        self.next_due = due + self.interval
        delay = due - time.time()
        if delay > 0:
            gevent.sleep(delay)
        _worker.bridge.call(_worker.fleet.send_from, self.slot.device_id, due)

    def on_stop(self) -> None:
        if self.slot is not None and _worker is not None and _worker.fleet is not None:
            _worker.bridge.spawn(_worker.fleet.go_offline, self.slot.device_id)
            # when Locust rebalances users (a worker went missing and came back), another
            # user of this worker takes the device over instead of leaving it offline
            _worker.release(self.slot)
