"""Robot Framework library: start the reference server, or attach to ``SUT_URL``."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so the kit's package imports by path

from ccskit.config import KitConfig, target, ws_url_for
from ccskit.server import ServerProcess, wait_healthy
from robot.api import logger
from robot.api.deco import keyword, library

THIRTY_S = timedelta(seconds=30)


@library(scope="GLOBAL", auto_keywords=False)
class CCSServer:
    """The server under test: the reference server as a child process, or one given by URL.

    With ``SUT_URL`` set (``http://host:port``) `Start Or Attach Server` checks its health and
    starts nothing: that is how a team aims the suites at its own deployment. Otherwise it
    starts ``python -m ccs_server serve`` on a free port of 127.0.0.1, waits for
    ``GET /health`` 200 and captures its output in ``results/ccs-server-*.log``.

    | ${url}= | `Start Or Attach Server` |
    | ${pid}= | `Server PID` |
    | `Stop Reference Server` |
    """

    def __init__(self) -> None:
        self._process: ServerProcess | None = None

    @keyword
    def start_or_attach_server(self, timeout: timedelta = THIRTY_S) -> str:
        """Uses ``SUT_URL`` if set, else starts the reference server; returns the base URL."""
        sut_url = KitConfig.from_env().sut_url
        if sut_url:
            wait_healthy(sut_url, timeout.total_seconds())
            target.base_url, target.pid = sut_url, None
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
            raise AssertionError(f"a reference server already runs at {target.base_url}")
        self._process = ServerProcess(env=dict(env))
        base_url = self._process.start(timeout.total_seconds())
        target.base_url, target.pid = base_url, self._process.pid
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
        target.pid = None

    @keyword
    def server_base_url(self) -> str:
        """``http://host:port`` of the server under test."""
        return target.require()

    @keyword
    def server_websocket_url(self) -> str:
        """``ws://host:port/ws`` of the server under test."""
        return ws_url_for(target.require())

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
