"""Keywords: one reference server shared by every process of a plain pabot run."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword

from .. import pabot_watchdog
from ..context import KitContext
from ..server import ServerProcess

SIXTY_S = timedelta(seconds=60)


class PabotServerKeywords:
    """Starts the reference server that every process of a plain ``pabot`` run shares.

    ``scripts/run_suites.py --pabot N`` starts one server itself and hands every process its URL.
    A plain ``pabot`` run has no such parent, so the first process that needs a server starts one
    that outlives it; the others attach to it through a PabotLib value, and a small watchdog stops
    it when PabotLib (which lives exactly as long as the pabot run) goes away. The environment
    resource's `The Server Under Test Is Running` does all this; it is not called directly.
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx

    @keyword
    def start_shared_reference_server(self, pabotlib_uri: str, timeout: timedelta = SIXTY_S) -> str:
        """Starts a reference server that stops when the pabot run at ``pabotlib_uri`` ends;
        returns its base URL. Its log goes to ``server/`` in the run's output folder.

        | ${url}= | Start Shared Reference Server | ${PABOTLIBURI} |
        """
        server = ServerProcess()
        url = server.start(timeout.total_seconds())
        watchdog = [
            sys.executable,
            str(Path(pabot_watchdog.__file__)),
            pabotlib_uri,
            str(server.pid),
        ]
        # Its own session: the watchdog must outlive this robot process like the server does.
        subprocess.Popen(
            watchdog,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        logger.info(
            f"Shared reference server for this pabot run at {url} (pid {server.pid}, log "
            f"{server.log_path}); it stops when PabotLib at {pabotlib_uri} goes away"
        )
        return url
