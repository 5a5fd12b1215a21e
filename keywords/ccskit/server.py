"""Start the reference server as a child process on a free port, or attach to ``SUT_URL``."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import requests

from .config import PROJECT_ROOT, RESULTS_DIR, KitConfig, ws_url_for

# Short windows so presence and liveness tests stay fast; a team pointing the kit at its own
# deployment sets SUT_URL instead and these are not used.
FAST_DEFAULTS = {
    "CCS_PRESENCE_GRACE_MS": "300",
    "CCS_REPAIR_INTERVAL_MS": "500",
    "CCS_LOG_LEVEL": "INFO",
}


class ServerStartError(RuntimeError):
    """The reference server did not become ready."""


def server_command(python: str) -> list[str]:
    """How a node is started: ``CCS_SERVER_COMMAND`` (any server that honours the environment
    contract of docs/architecture.md) or the reference server of this checkout."""
    custom = os.environ.get("CCS_SERVER_COMMAND", "").strip()
    return shlex.split(custom) if custom else [python, "-m", "ccs_server", "serve"]


def ensure_database(database_url: str) -> None:
    """Create the server's database if missing (the server expects it to exist)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or "ccs"
    admin_url = parts._replace(path="/postgres").geturl()
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                # another process may create it at the same moment
                with contextlib.suppress(psycopg2.errors.DuplicateDatabase):
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def wait_healthy(
    base_url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``GET /health`` until 200, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(f"server exited with code {proc.returncode} before ready")
        try:
            response = requests.get(f"{base_url}/health", timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)  # polling an external process: there is no event to wait on
    raise ServerStartError(f"GET {base_url}/health not 200 within {timeout:.0f} s (last: {last})")


def default_log_dir() -> Path:
    """``server/`` in robot's output folder while robot runs (under pabot, the folder above
    ``pabot_results``), so server logs follow ``--outputdir``; else ``results/server``."""
    try:
        from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

        output_dir = BuiltIn().get_variable_value("${OUTPUT DIR}")
    except (ImportError, RobotNotRunningError):
        output_dir = None
    if not output_dir:
        return RESULTS_DIR / "server"
    parts = Path(output_dir).parts
    if "pabot_results" in parts:
        return Path(*parts[: parts.index("pabot_results")]) / "server"
    return Path(output_dir) / "server"


@dataclass
class ServerProcess:
    """A reference server child process and where its log goes."""

    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: default_log_dir())
    python: str = sys.executable
    cwd: Path = field(default_factory=lambda: server_checkout())  # CCS_SERVER_PATH or here
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    log_path: Path | None = None
    port: int = 0  # 0: a free port; a node restarted after a kill keeps its old one

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 30.0) -> str:
        """Start on a free port; returns the base URL once ``/health`` answers 200."""
        config = KitConfig.from_env()
        ensure_database(self.env.get("DATABASE_URL", config.database_url))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port_file = Path(tempfile.mkstemp(prefix="ccs-port-", dir=self.log_dir)[1])
        port_file.write_text("")
        command = server_command(self.python)
        if self.port == 0 and os.environ.get("CCS_SERVER_COMMAND"):
            # Another server may not write CCS_PORT_FILE: give it a port and watch that one.
            from .faults.common import free_port

            self.port = free_port()
        env = {**os.environ, **FAST_DEFAULTS, **self.env}
        env.update(CCS_HOST="127.0.0.1", CCS_PORT=str(self.port), CCS_PORT_FILE=str(port_file))
        env.setdefault("DATABASE_URL", config.database_url)
        env.setdefault("CCS_TOKEN_SECRET", config.token_secret)
        name = env.get("CCS_NODE_ID", "server")
        self.log_path = self.log_dir / f"ccs-{name}-{os.getpid()}-{time.time_ns() // 10**6}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.port = self._wait_port(port_file, timeout)
            self.base_url = f"http://127.0.0.1:{self.port}"
            wait_healthy(self.base_url, timeout, self.proc)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"{exc}\nlog {self.log_path}:\n{self.log_tail()}") from None
        finally:
            port_file.unlink(missing_ok=True)
        return self.base_url

    def _wait_port(self, port_file: Path, timeout: float) -> int:
        if self.port:
            return self.port  # fixed beforehand (a restart, or a server started by command)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = port_file.read_text().strip()
            if text.isdigit():
                return int(text)
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerStartError(f"server exited with code {self.proc.returncode}")
            time.sleep(0.05)  # the port file is written by another process
        raise ServerStartError(f"no port written to {port_file} within {timeout:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def server_checkout() -> Path:
    """Directory whose ``ccs_server`` package is started: ``CCS_SERVER_PATH`` or this repository.

    Pointing it at a modified copy (say, one that acks before commit) shows which suite turns red.
    """
    return Path(os.environ.get("CCS_SERVER_PATH") or PROJECT_ROOT)


class Nodes:
    """Reference server nodes started by name (``node-1``, ``node-2``) for multi-node suites."""

    def __init__(self) -> None:
        self.started: dict[str, ServerProcess] = {}

    def __call__(self, name: str) -> ServerProcess:
        """The node started as ``name``; fails with the known names."""
        try:
            return self.started[name]
        except KeyError:
            known = sorted(self.started)
            raise AssertionError(
                f"no reference node '{name}' was started (known: {known})"
            ) from None

    def ws_url(self, name_or_url: str) -> str:
        """WebSocket URL of a node name, or of a given ``http(s)://``/``ws(s)://`` URL."""
        if name_or_url.startswith(("ws://", "wss://")):
            return name_or_url
        if name_or_url.startswith(("http://", "https://")):
            return ws_url_for(name_or_url)
        return ws_url_for(self(name_or_url).base_url)

    def stop_all(self, timeout: float = 10.0) -> dict[str, int | None]:
        """Stops every node and forgets them; returns each one's exit code."""
        codes = {name: process.stop(timeout) for name, process in self.started.items()}
        self.started.clear()
        return codes
