"""Keywords: a write held inside PostgreSQL at a known moment, so a fault strikes it in flight."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from datetime import timedelta
from typing import Any

import psycopg2
from robot.api import logger
from robot.api.deco import keyword

from ..context import KitContext

TEN_S = timedelta(seconds=10)
POLL_S = 0.05  # pg_stat_activity is another process's state: no event to wait on


class InFlightKeywords:
    """`Hold Conversation Row Lock` makes every write to one conversation wait inside the
    database (its seq comes from that row); `Start Sending` sends without waiting for the
    reply; `Wait Until A Server Write Waits On A Lock` proves the send is in flight, inside
    PostgreSQL, before the fault; `Reply To Started Send` then reads what the server answered.

    | Hold Conversation Row Lock | side-room |
    | Start Sending | carol-phone | side-room | hello | key-1 |
    | Wait Until A Server Write Waits On A Lock |
    | Kill PostgreSQL |
    | ${reply}= | Reply To Started Send | carol-phone |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._locks: list[Any] = []
        self._started: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}

    @keyword
    def hold_conversation_row_lock(self, conversation: str) -> None:
        """Another program locks ``conversation``'s row (``FOR UPDATE``, transaction left open)
        in the database the kit's SQL checks use, until `Release Conversation Row Locks`."""
        conv = self.ctx.fixtures.conversation(conversation)
        conn = psycopg2.connect(self.ctx.database_url, application_name="ccs-kit-row-lock")
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conv,))
            if cur.fetchone() is None:
                conn.close()
                raise AssertionError(f"conversation '{conversation}' ({conv}) is not stored")
        self._locks.append(conn)

    @keyword
    def release_conversation_row_locks(self) -> None:
        """Ends every lock of `Hold Conversation Row Lock` (rollback); a connection the
        database already lost (killed, restarted) is just closed."""
        for conn in self._locks:
            try:
                conn.rollback()
            except psycopg2.Error as exc:
                logger.info(f"row lock connection already gone: {exc}")
            conn.close()
        self._locks.clear()

    @keyword
    def start_sending(
        self,
        alias: str,
        conversation: str,
        body: Any,
        client_msg_id: str,
        timeout: timedelta = TEN_S,
    ) -> None:
        """Sends a message from device ``alias`` and returns at once; `Reply To Started Send`
        reads the reply. A string ``body`` is sent as ``{"text": body}``."""
        client = self.ctx.devices.client(alias)
        payload = {"text": body} if isinstance(body, str) else body
        conv = self.ctx.fixtures.conversation(conversation)
        coro = client.send_message(conv, payload, client_msg_id, self.ctx.scaled(timeout))
        self._started[alias] = asyncio.run_coroutine_threadsafe(coro, self.ctx.loop.loop)

    @keyword
    def reply_to_started_send(self, alias: str, timeout: timedelta = TEN_S) -> dict[str, Any]:
        """The reply (``ack`` or ``error``) to the send of `Start Sending` on ``alias``."""
        if alias not in self._started:
            raise AssertionError(f"'{alias}' has no started send (known: {sorted(self._started)})")
        seconds = self.ctx.scaled(timeout)
        try:
            reply = self._started.pop(alias).result(seconds)
        except concurrent.futures.TimeoutError:
            raise AssertionError(
                f"'{alias}' got no reply to its send within {seconds:.1f} s"
            ) from None
        logger.info(f"'{alias}' reply to the started send: {reply}")
        return reply

    @keyword
    def wait_until_a_server_write_waits_on_a_lock(self, timeout: timedelta = TEN_S) -> int:
        """Waits until a backend of a server pool (``application_name`` ``ccs-pool …``) waits
        for a lock in the kit's database; returns its pid."""
        deadline = time.monotonic() + self.ctx.scaled(timeout)
        sql = (
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND wait_event_type = 'Lock' LIMIT 1"
        )
        while time.monotonic() < deadline:
            rows = self.ctx.db.rows(sql, ("ccs-pool%",))
            if rows:
                return int(rows[0]["pid"])
            time.sleep(POLL_S)
        raise AssertionError(
            f"expected a server write waiting on a lock within {self.ctx.scaled(timeout):.1f} s;"
            " none did (was the row lock taken, and the send started?)"
        )
