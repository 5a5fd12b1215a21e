"""A private PostgreSQL 15 cluster in a temporary directory, started as a direct child process."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from ccskit.config import scaled
from ccskit.faults.common import FaultError
from ccskit.faults.service import ManagedService

PG_BIN = Path(os.environ.get("CCS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_SUPERUSER = "postgres"

# How PostgreSQL reads its shutdown signals.
STOP_SIGNALS = {
    "smart": signal.SIGTERM,  # waits for every client to disconnect
    "fast": signal.SIGINT,  # rolls back open transactions, disconnects clients
    "immediate": signal.SIGQUIT,  # no shutdown checkpoint; recovery on next start
}


class PrivatePostgres(ManagedService):
    """initdb on first use; ``postgres -D`` as our child so kill -9 hits the real postmaster."""

    name = "postgres"

    def __init__(self, database: str = "ccs", port: int | None = None) -> None:
        super().__init__(port)
        self.database = database
        self.data_dir = self.base_dir / "data"
        self._os_user = PG_SUPERUSER if os.geteuid() == 0 else None
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            raise

    # -- ManagedService -----------------------------------------------------------------
    def _run_as(self) -> str | None:
        # initdb and postgres refuse to run as root.
        return self._os_user

    def _argv(self) -> list[str]:
        return [
            str(PG_BIN / "postgres"),
            *("-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.base_dir)),
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", "max_connections=200", "-c", "shared_buffers=32MB"),
            # Durability stays as in production: the kill -9 tests are about acknowledged rows.
            *("-c", "fsync=on", "-c", "synchronous_commit=on"),
        ]

    def _probe(self) -> bool:
        with psycopg2.connect(self.dsn("postgres"), connect_timeout=2) as conn:
            conn.cursor().execute("SELECT 1")
        conn.close()
        return True

    def _after_first_start(self) -> None:
        conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        finally:
            conn.close()

    # -- PostgreSQL specifics -----------------------------------------------------------
    def _initdb(self) -> None:
        if self._os_user:
            entry = pwd.getpwnam(self._os_user)
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.base_dir, 0o700)
        if not (PG_BIN / "initdb").exists():
            raise FaultError(f"PostgreSQL binaries not found in {PG_BIN}; set CCS_PG_BIN")
        argv = [
            str(PG_BIN / "initdb"),
            *("-D", str(self.data_dir), "-A", "trust", "-U", PG_SUPERUSER),
            *("-E", "UTF8", "--locale=C"),
            # Only process crashes are simulated, never power loss: syncing initdb's files is waste.
            "--no-sync",
        ]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            user=self._os_user,
            group=self._os_user,
            extra_groups=[] if self._os_user else None,
            timeout=scaled(60),
            check=False,
        )
        if done.returncode != 0:
            raise FaultError(f"initdb failed with code {done.returncode}: {done.stderr.strip()}")

    def dsn(self, database: str | None = None) -> str:
        """libpq key/value DSN for ``database`` (default: the server's database)."""
        db = database or self.database
        return f"host=127.0.0.1 port={self.port} user={PG_SUPERUSER} dbname={db}"

    def database_url(self, database: str | None = None, port: int | None = None) -> str:
        """URL for DATABASE_URL; ``port`` lets a proxy in front of the cluster be named instead."""
        return (
            f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port or self.port}/{database or self.database}"
        )

    def stop_mode(self, mode: str = "fast", timeout: float = 30.0) -> int | None:
        try:
            sig = STOP_SIGNALS[mode]
        except KeyError:
            raise FaultError(
                f"stop mode must be one of {sorted(STOP_SIGNALS)}, got {mode!r}"
            ) from None
        return self.stop(sig, timeout)
