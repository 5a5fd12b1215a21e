"""Keywords: start the reference server and named nodes, or attach to ``SUT_URL``."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import timedelta

import requests
from robot.api import logger
from robot.api.deco import keyword

from ..config import ws_url_for
from ..context import KitContext
from ..counters import counter_value, wait_for_counter
from ..server import ServerProcess, server_checkout, wait_healthy

THIRTY_S = timedelta(seconds=30)
FIVE_S = timedelta(seconds=5)


class ServerKeywords:
    """The server under test: the reference server as a child process, or one given by URL.

    With ``SUT_URL`` set (``http://host:port``) `Start Or Attach Server` checks its health and
    starts nothing: that is how a team aims the suites at its own deployment. Otherwise it
    starts ``python -m ccs_server serve`` on a free port of 127.0.0.1, waits for
    ``GET /health`` 200 and captures its output in ``results/ccs-server-*.log``.

    | ${url}= | `Start Or Attach Server` |
    | ${pid}= | `Server PID` |
    | `Stop Reference Server` |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._process: ServerProcess | None = None

    @keyword
    def start_or_attach_server(self, timeout: timedelta = THIRTY_S) -> str:
        """Uses ``SUT_URL`` if set, else starts the reference server; returns the base URL."""
        sut_url = self.ctx.config.sut_url
        if sut_url:
            wait_healthy(sut_url, self.ctx.scaled(timeout))
            self.ctx.target.base_url, self.ctx.target.pid = sut_url, None
            logger.info(f"Using the server under test at {sut_url} (SUT_URL)")
            return sut_url
        return self.start_reference_server(timeout)

    @keyword
    def start_reference_server(self, timeout: timedelta = THIRTY_S, **env: str) -> str:
        """Starts the reference server with extra environment ``env``; returns its base URL.

        | Start Reference Server | CCS_PRESENCE_GRACE_MS=100 |
        """
        running = self._process is not None and self._process.proc is not None
        if running and self._process.proc.poll() is None:  # type: ignore[union-attr]
            raise AssertionError(f"a reference server already runs at {self.ctx.target.base_url}")
        self._process = ServerProcess(env=dict(env))
        base_url = self._process.start(self.ctx.scaled(timeout))
        self.ctx.target.base_url, self.ctx.target.pid = base_url, self._process.pid
        logger.info(
            f"Reference server started at {base_url} (pid {self._process.pid}, "
            f"log {self._process.log_path})"
        )
        return base_url

    @keyword
    def stop_reference_server(self) -> None:
        """Stops the server this library started (graceful SIGTERM); no-op when attached."""
        if self._process is None:
            return
        code = self._process.stop()
        logger.info(f"Reference server stopped (exit code {code}, log {self._process.log_path})")
        self._process = None
        self.ctx.target.pid = None

    @keyword
    def server_base_url(self) -> str:
        """``http://host:port`` of the server under test."""
        return self.ctx.target.require()

    @keyword
    def server_websocket_url(self) -> str:
        """``ws://host:port/ws`` of the server under test."""
        return ws_url_for(self.ctx.target.require())

    @keyword
    def server_pid(self) -> int:
        """PID of the reference server this library started (fails when attached by URL)."""
        if self._process is None or self._process.pid is None:
            raise AssertionError("no reference server was started here (SUT_URL in use?)")
        return self._process.pid

    @keyword
    def server_log_path(self) -> str:
        """Path of the captured server log (empty when attached by URL)."""
        if self._process is None or self._process.log_path is None:
            return ""
        return str(self._process.log_path)

    # ----- several nodes (Phase 3) -------------------------------------------------------------
    @keyword
    def start_reference_node(self, name: str, timeout: timedelta = THIRTY_S, **env: str) -> str:
        """Starts reference server node ``name`` (``CCS_NODE_ID`` unless ``env`` names one) with
        extra ``env``; returns its base URL. Several nodes may share one ``DATABASE_URL`` (and
        ``REDIS_URL``).

        The package comes from ``CCS_SERVER_PATH`` when set (a modified copy), else from this
        repository. A node started before under the same name restarts on its old port, so
        clients holding its URL find it again.

        | ${url}= | Start Reference Node | node-1 | DATABASE_URL=${db} | REDIS_URL=${redis} |
        """
        old = self.ctx.nodes.started.get(name)
        if old is not None and old.proc is not None and old.proc.poll() is None:
            raise AssertionError(f"node '{name}' already runs at {old.base_url}")
        # An explicit CCS_NODE_ID wins over the name: a node on the shared database needs an id
        # no concurrent run uses, or the runs reap each other's devices as a dead node's.
        merged = {**(old.env if old else {}), "CCS_NODE_ID": name, **env}
        process = ServerProcess(env=merged, cwd=server_checkout(), port=old.port if old else 0)
        base_url = process.start(self.ctx.scaled(timeout))
        self.ctx.nodes.started[name] = process
        logger.info(f"node '{name}' at {base_url} (pid {process.pid}, log {process.log_path})")
        return base_url

    @keyword
    def restart_reference_node(self, name: str, timeout: timedelta = THIRTY_S) -> str:
        """Starts a stopped or killed node again with its environment and port.

        | Kill Process | ${pid} |
        | Restart Reference Node | node-1 |
        """
        process = self.ctx.nodes(name)
        if process.proc is not None and process.proc.poll() is None:
            return process.base_url
        return self.start_reference_node(name, timeout)

    @keyword
    def reference_node_url(self, name: str) -> str:
        """``http://host:port`` of node ``name``."""
        return self.ctx.nodes(name).base_url

    @keyword
    def reference_node_websocket_url(self, name: str) -> str:
        """``ws://host:port/ws`` of node ``name``."""
        return ws_url_for(self.ctx.nodes(name).base_url)

    @keyword
    def reference_node_pid(self, name: str) -> int:
        """PID of node ``name`` (for `Kill Process`)."""
        pid = self.ctx.nodes(name).pid
        if pid is None:
            raise AssertionError(f"node '{name}' has no process")
        return pid

    @keyword
    def reference_node_should_be_running(self, name: str) -> None:
        """Fails unless node ``name`` runs and answers ``/health`` with 200."""
        process = self.ctx.nodes(name)
        if process.proc is None or process.proc.poll() is not None:
            raise AssertionError(f"node '{name}' is not running\n{process.log_tail()}")
        wait_healthy(process.base_url, self.ctx.scaled(10.0), process.proc)

    @keyword
    def use_reference_node(self, name: str) -> str:
        """Makes node ``name`` the server under test of the other libraries (REST fixtures,
        default WebSocket URL); returns its base URL."""
        process = self.ctx.nodes(name)
        self.ctx.target.base_url, self.ctx.target.pid = process.base_url, process.pid
        return process.base_url

    @keyword
    def stop_reference_node(self, name: str, graceful: bool = True) -> int | None:
        """Stops node ``name``: SIGTERM (graceful: 1012 to clients) or SIGKILL; returns the
        exit code. The node stays known, so `Restart Reference Node` can bring it back."""
        process = self.ctx.nodes(name)
        if process.proc is None or process.proc.poll() is not None:
            return process.proc.returncode if process.proc else None
        if graceful:
            return process.stop()
        process.proc.send_signal(signal.SIGKILL)
        return process.proc.wait(10)

    @keyword
    def stop_all_reference_nodes(self) -> None:
        """Stops every node started by name and forgets them (suite teardown)."""
        logs = {name: p.log_path for name, p in self.ctx.nodes.started.items()}
        for name, code in self.ctx.nodes.stop_all().items():
            logger.info(f"node '{name}' stopped (exit code {code}, log {logs[name]})")

    @keyword
    def attach_to_server(self, base_url: str) -> None:
        """Makes ``base_url`` the server under test again (after a multi-node suite)."""
        self.ctx.target.base_url, self.ctx.target.pid = base_url, None

    # ----- configuration and health -------------------------------------------------------
    @keyword
    def own_server_configuration_is_possible(self) -> bool:
        """True when the suite may start its own reference node with short timeouts and low
        limits: no ``SUT_URL``, or ``SUT_URL`` is itself a reference server on loopback (the
        runner started it). A team's own server keeps its configuration: False."""
        sut = self.ctx.config.sut_url
        if not sut:
            return True
        if os.environ.get("CCS_HOSTILE_OWN_NODE", "").lower() in ("0", "false", "no"):
            return False
        try:
            info = requests.get(f"{sut}/openapi.json", timeout=5).json().get("info", {})
        except (requests.RequestException, ValueError):
            return False
        local = sut.startswith(("http://127.0.0.1:", "http://localhost:"))
        return local and info.get("title") == "CCS reference server"

    @keyword
    def server_should_be_alive(self) -> None:
        """``GET /health`` answers 200 and, for a node started here, its process runs."""
        for process in self.ctx.nodes.started.values():
            proc = process.proc
            if (
                process.base_url == self.ctx.target.base_url
                and proc is not None
                and proc.poll() is not None
            ):
                raise AssertionError(f"the server exited with {proc.returncode}")
        response = requests.get(f"{self.ctx.target.require()}/health", timeout=self.ctx.scaled(5.0))
        if response.status_code != 200:
            raise AssertionError(f"/health answered {response.status_code}: {response.text}")

    # ----- metrics ------------------------------------------------------------------------------
    @keyword
    def server_metric(self, name: str) -> float:
        """The value of the unlabelled metric ``name`` (a counter or gauge) on the server under
        test's ``/metrics``; fails when the page or the metric is missing.

        | ${open}= | Server Metric | ccs_connections |
        """
        url = self.ctx.target.require()
        value = counter_value(url, name, timeout_s=self.ctx.scaled(5.0))
        if value is None:
            raise AssertionError(f"expected metric {name} on {url}/metrics, found none")
        return value

    @keyword
    def server_metric_should_fall_to(
        self, name: str, value: float, timeout: timedelta = FIVE_S
    ) -> float:
        """Waits until metric ``name`` is at most ``value``; returns what it read. Fails naming
        the last value read.

        | Server Metric Should Fall To | ccs_connections | ${open - 2} |
        """
        return self._wait_for_metric(
            name, lambda v: v <= float(value), f"fall to {value} or below", timeout
        )

    @keyword
    def server_metric_should_rise_above(
        self, name: str, value: float, timeout: timedelta = FIVE_S
    ) -> float:
        """Waits until metric ``name`` is above ``value``; returns what it read. Fails naming
        the last value read.

        | ${before}= | Server Metric | ccs_gaps_repaired_total |
        | Server Metric Should Rise Above | ccs_gaps_repaired_total | ${before} |
        """
        return self._wait_for_metric(
            name, lambda v: v > float(value), f"rise above {value}", timeout
        )

    def _wait_for_metric(
        self, name: str, done: Callable[[float], bool], wanted: str, timeout: timedelta
    ) -> float:
        url = self.ctx.target.require()
        seconds = self.ctx.scaled(timeout)
        held, last = wait_for_counter(url, name, done, seconds)
        if not held:
            raise AssertionError(
                f"expected {name} on {url}/metrics to {wanted} within {seconds:.0f} s, "
                f"it reads {last}"
            )
        return float(last or 0.0)
