"""Start the reference server on a fresh database for measuring (``python -m ccs_server serve``)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[3]


class ReferenceServer:
    """One reference-server process on a free port and its own fresh database.

    ``async with ReferenceServer(...) as srv`` creates the database, starts the server with
    ``CCS_PORT=0`` and waits (bounded) until it wrote its port and ``/health`` answers 200; on exit
    it stops the process (SIGTERM, then SIGKILL) and drops the database.
    """

    def __init__(
        self,
        database: str,
        admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 60.0,
        root: Path = ROOT,
    ) -> None:
        self.database = database
        self.admin_dsn = admin_dsn
        self.dsn = admin_dsn.rsplit("/", 1)[0] + f"/{database}"
        self.extra_env = env or {}
        self.ready_timeout_s = ready_timeout_s
        self.root = root  # another tree (a patched copy) can be measured the same way
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._dir = tempfile.TemporaryDirectory(prefix="ccs-bench-")
        self.log_path = Path(self._dir.name) / "server.log"

    @property
    def pid(self) -> int:
        """The server's process id (for psutil)."""
        assert self.proc is not None
        return self.proc.pid

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
        port_file = Path(self._dir.name) / "port"
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "CCS_HOST": "127.0.0.1",
            "CCS_PORT": "0",
            "CCS_PORT_FILE": str(port_file),
            **self.extra_env,
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ccs_server",
            "serve",
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=log,
        )
        log.close()
        try:
            await self._wait_ready(port_file)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_ready(self, port_file: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_tail()}")
                text = _read_port(port_file)
                if text.isdigit():
                    self.port = int(text)
                    try:
                        async with http.get(f"{self.api_url}/health") as resp:
                            if resp.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"server not ready in {self.ready_timeout_s} s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def __aexit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._dir.cleanup()

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()


def _read_port(path: Path) -> str:
    """The port file's content, or "" while the server has not written it."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
