"""Start the reference server on a fresh database for measuring.

A thin async wrapper over :class:`ccskit.server.ServerProcess` (the one way the kit starts a
server), adding what a measurement needs: a database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from ..config import PROJECT_ROOT as ROOT
from ..config import admin_database_url, database_url_for
from ..server import ServerProcess


class ReferenceServer:
    """One reference-server process on a free port and its own fresh database.

    ``async with ReferenceServer(...) as srv`` creates the database, starts the server and waits
    (bounded) until ``/health`` answers 200; on exit it stops the process (SIGTERM, then SIGKILL)
    and drops the database.
    """

    def __init__(
        self,
        database: str,
        admin_dsn: str | None = None,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 60.0,
        root: Path = ROOT,
    ) -> None:
        self.database = database
        self.admin_dsn = admin_dsn or admin_database_url()
        self.dsn = database_url_for(database, self.admin_dsn)
        self.ready_timeout_s = ready_timeout_s
        self._dir = tempfile.TemporaryDirectory(prefix="ccs-bench-")
        # the server's own defaults, not the kit's short test windows: measure what ships
        server_env = {"CCS_REPAIR_INTERVAL_MS": "1000", **(env or {}), "DATABASE_URL": self.dsn}
        # another tree (a patched copy) can be measured the same way
        self.process = ServerProcess(env=server_env, log_dir=Path(self._dir.name), cwd=root)

    @property
    def pid(self) -> int:
        """The server's process id (for psutil)."""
        assert self.process.pid is not None
        return self.process.pid

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def log_path(self) -> Path:
        """The server's log (it goes with the temporary folder on exit)."""
        assert self.process.log_path is not None, "server not started"
        return self.process.log_path

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws``."""
        return f"ws://127.0.0.1:{self.port}/ws"

    async def __aenter__(self) -> ReferenceServer:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            f'CREATE DATABASE "{self.database}"',
        )
        try:
            await asyncio.to_thread(self.process.start, self.ready_timeout_s)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output, for error messages."""
        return self.process.log_tail()[-chars:]

    async def stop(self) -> int | None:
        """Graceful shutdown (SIGTERM: every socket is closed with 1012); the exit code."""
        return await asyncio.to_thread(self.process.stop)

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._dir.cleanup()

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()
