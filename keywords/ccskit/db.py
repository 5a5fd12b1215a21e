"""psycopg2 helpers for what DatabaseLibrary lacks: LISTEN, writes as another program, dict rows."""

from __future__ import annotations

import json
import select
import time
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from . import timing
from .ids import unique_id


class CcsDb:
    """One autocommit connection to the database the server under test writes to."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.conn = psycopg2.connect(database_url, connect_timeout=5)
        self.conn.autocommit = True
        self._listen_conn: Any = None

    def close(self) -> None:
        self.conn.close()
        if self._listen_conn is not None:
            self._listen_conn.close()
            self._listen_conn = None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Runs parameterised ``sql``; returns its rows as dictionaries (none for a statement
        without a result).

        Fault suites kill and restart the database under the kit: a connection found broken is
        opened again, and a read that failed on a dead connection is retried once on the new
        one (a write is not, since it may have been committed).
        """
        if self.conn.closed:
            self._reconnect()
        try:
            return self._execute(sql, params)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            if not self.conn.closed or not sql.lstrip().upper().startswith("SELECT"):
                raise
            self._reconnect()
            return self._execute(sql, params)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []
            return [dict(r) for r in cur.fetchall()]

    def _reconnect(self) -> None:
        self.conn = psycopg2.connect(self.database_url, connect_timeout=5)
        self.conn.autocommit = True

    def insert_message(
        self,
        conversation_id: str,
        sender_user_id: str,
        sender_device_id: str,
        body: Any,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """INSERT a message the way another program would (seq left to the trigger)."""
        cmid = client_msg_id or unique_id("direct-insert")
        timing.mark_sent(conversation_id, cmid, time.monotonic())
        rows = self.rows(
            "INSERT INTO messages (conversation_id, sender_user_id, sender_device_id,"
            " client_msg_id, body) VALUES (%s, %s, %s, %s, %s::jsonb)"
            " RETURNING id, conversation_id, seq, client_msg_id",
            (conversation_id, sender_user_id, sender_device_id, cmid, json.dumps(body)),
        )
        return rows[0]

    def cursors(self, device_id: str, conversation_id: str) -> dict[str, Any]:
        rows = self.rows(
            "SELECT delivered_upto, read_upto FROM device_cursors"
            " WHERE device_id = %s AND conversation_id = %s",
            (device_id, conversation_id),
        )
        return rows[0] if rows else {"delivered_upto": 0, "read_upto": 0}

    def presence(self, device_id: str) -> dict[str, Any] | None:
        rows = self.rows(
            "SELECT device_id, user_id, status, last_seen, node_id FROM device_presence"
            " WHERE device_id = %s",
            (device_id,),
        )
        return rows[0] if rows else None

    def listen(self, channel: str) -> None:
        """LISTEN on ``channel`` on a dedicated connection."""
        if self._listen_conn is None:
            self._listen_conn = psycopg2.connect(self.database_url)
            self._listen_conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with self._listen_conn.cursor() as cur:
            cur.execute(f"LISTEN {psycopg2.extensions.quote_ident(channel, cur)}")

    def wait_notification(self, channel: str, timeout: float) -> str:
        """Payload of the next NOTIFY on ``channel`` within ``timeout`` seconds."""
        if self._listen_conn is None:
            raise AssertionError(f"not listening on '{channel}': call listen() first")
        deadline = time.monotonic() + timeout
        while True:
            self._listen_conn.poll()
            while self._listen_conn.notifies:
                note = self._listen_conn.notifies.pop(0)
                if note.channel == channel:
                    return str(note.payload)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"expected a NOTIFY on '{channel}' within {timeout:.1f} s, none came"
                )
            select.select([self._listen_conn], [], [], remaining)
