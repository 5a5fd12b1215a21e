"""``pg_terminate_backend`` of a server's pooled and LISTEN connections.

An idle LISTEN connection shows in ``pg_stat_activity`` as ``state = 'idle'``,
``wait_event = 'ClientRead'`` and, as its last statement, ``query = 'LISTEN "channel"'``
(checked with asyncpg's ``add_listener`` on PostgreSQL 15). A listener that has run another
statement since (the reference server probes its listener with ``SELECT 1``) looks like a pool
connection, so a backend also counts as a listener when its application name says so: the
reference server names it ``ccs-listener <node>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2

from ccskit.config import scaled
from ccskit.faults.common import FaultError, wait_until

OWN_APPLICATION_NAME = "ccs-faults"

_SELECT = """
SELECT pid, datname, application_name, state, query
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
   AND backend_type = 'client backend'
   AND application_name <> %(own)s
"""
_BY_APP = " AND application_name = %(app)s"
_BY_DB = " AND datname = %(db)s"
_LISTENERS = (
    " AND ((state = 'idle' AND query ILIKE 'LISTEN%%') OR application_name ILIKE 'ccs-listener%%')"
)


@dataclass(frozen=True)
class Backend:
    pid: int
    database: str
    application_name: str
    state: str
    query: str


def _with_admin(dsn: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(dsn, connect_timeout=5, application_name=OWN_APPLICATION_NAME)
    conn.autocommit = True
    return conn


def find_backends(
    dsn: str,
    database: str | None = None,
    application_name: str | None = None,
    listeners_only: bool = False,
) -> list[Backend]:
    """Client backends matching every given filter, never our own admin connections."""
    query = _SELECT
    params = {"own": OWN_APPLICATION_NAME, "db": database, "app": application_name}
    if database is not None:
        query += _BY_DB
    if application_name is not None:
        query += _BY_APP
    if listeners_only:
        query += _LISTENERS
    conn = _with_admin(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query + " ORDER BY pid", params)
            return [Backend(*row) for row in cur.fetchall()]
    finally:
        conn.close()


def terminate(dsn: str, backends: list[Backend], timeout: float = 10.0) -> list[int]:
    """``pg_terminate_backend`` each backend and wait until it is gone; returns the pids."""
    pids = [b.pid for b in backends]
    if not pids:
        return []
    conn = _with_admin(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))

            def gone() -> bool | None:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
                return True if cur.fetchone()[0] == 0 else None

            wait_until(gone, scaled(timeout), f"backends {pids} to exit after pg_terminate_backend")
    finally:
        conn.close()
    return pids


def require_some(found: list[Backend], what: str, minimum: int) -> None:
    """A fault that hits nothing proves nothing: fail unless at least ``minimum`` matched."""
    if len(found) < minimum:
        raise FaultError(f"expected at least {minimum} {what} to terminate, found {len(found)}")
