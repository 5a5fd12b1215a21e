"""Keywords: the kit's SQL link to the server's database, for what DatabaseLibrary lacks."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg2
from robot.api import logger
from robot.api.deco import keyword

from ..context import KitContext
from ..db import CcsDb

NO_WAIT = timedelta(0)
NO_ROW = "no row"
DB_POLL_S = 0.1


class DatabaseKeywords:
    """Direct access to the server's PostgreSQL database beyond DatabaseLibrary's assertions.

    SQL assertions use DatabaseLibrary (see the ``database.resource`` vocabulary); this library
    adds: writing a message the way another program would, reading cursors and presence as
    dictionaries, and LISTEN/NOTIFY. Connects to ``DATABASE_URL``
    (default ``postgresql://postgres@127.0.0.1:5432/ccs``) until `Use Database` points every
    SQL check of the kit elsewhere (a private cluster). Parameterised SQL only.

    | `Connect To CCS Database` |
    | ${row}= | `Insert Message As Another Program` | team-room | alice-phone | hi |
    | ${cursors}= | `Device Cursors` | bob-tablet | team-room |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx

    @property
    def db(self) -> CcsDb:
        return self.ctx.db

    @keyword
    def database_url(self) -> str:
        """The database the kit checks: ``DATABASE_URL``, or the one `Use Database` named."""
        return self.ctx.database_url

    @keyword
    def use_database(self, url: str | None = None) -> str:
        """Points every SQL check of the kit at ``url`` (none: back to ``DATABASE_URL``);
        returns the URL now in use. DatabaseLibrary's own connection is re-opened separately.

        | Use Database | ${private_url} |
        | Use Database | # back to DATABASE_URL |
        """
        return self.ctx.use_database(url)

    @keyword
    def connect_to_ccs_database(self, database_url: str | None = None) -> None:
        """Opens the kit's autocommit connection, on ``database_url`` when given (as
        `Use Database`)."""
        if database_url:
            self.ctx.use_database(database_url)
        _ = self.ctx.db

    @keyword
    def disconnect_from_ccs_database(self) -> None:
        """Closes the kit's SQL connections (the next check opens them again)."""
        self.ctx.close_db()

    @keyword
    def insert_message_as_another_program(
        self, conversation: str, sender_device: str, body: Any, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        """INSERTs a message row directly (seq left to the trigger); returns id and seq.

        | ${row}= | Insert Message As Another Program | team-room | alice-phone | hi |
        """
        user_id, device_id = self.ctx.fixtures.device(sender_device)
        conv = self.ctx.fixtures.conversation(conversation)
        payload = {"text": body} if isinstance(body, str) else body
        row = self.db.insert_message(conv, user_id, device_id, payload, client_msg_id)
        logger.info(f"inserted directly: {row}")
        return row

    @keyword
    def device_cursors(self, device: str, conversation: str) -> dict[str, Any]:
        """``{delivered_upto, read_upto}`` stored for a device in a conversation."""
        device_id = self.ctx.fixtures.device_id(device)
        return self.db.cursors(device_id, self.ctx.fixtures.conversation(conversation))

    @keyword
    def device_presence(self, device: str) -> dict[str, Any]:
        """The ``device_presence`` row of ``device`` as a dictionary (fails if missing)."""
        device_id = self.ctx.fixtures.device_id(device)
        row = self.db.presence(device_id)
        if row is None:
            raise AssertionError(f"expected a device_presence row for '{device}' ({device_id})")
        return row

    @keyword
    def query_as_dictionaries(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Runs parameterised ``sql`` (``%s`` placeholders); returns rows as dictionaries."""
        return self.db.rows(sql, tuple(params))

    @keyword
    def stored_value_should_be(
        self, sql: str, expected: str, *params: Any, what: str = "", timeout: timedelta = NO_WAIT
    ) -> str:
        """Reads ``sql`` (parameterised, ``%s`` placeholders) until its value is ``expected`` or
        ``timeout`` has passed, then fails once, saying what the database holds.

        The value is the first column of the result as a string (several rows: all of them,
        comma-separated; no row: ``no row``). ``what`` states the expectation; the failure
        adds ``expected`` when ``what`` does not show it, then what is stored: ``expected
        "bob-tablet" delivered/read 2/0 in "team-room", but the database holds 1/0 after 5.0 s``.
        The stored value is quoted when ``what`` quotes the expected one. With no ``timeout``
        the value is read once (a check that something was already stored when an event came).
        Intermediate reads are not logged, only the outcome.

        | Stored Value Should Be | SELECT head_seq FROM conversations WHERE id = %s | 3 | ${id} |
        | ... | what=expected head 3 | timeout=5s |
        """
        seconds = self.ctx.scaled(timeout) if timeout else 0.0
        started = time.monotonic()
        while True:
            actual = self._stored_value(sql, params)
            waited = time.monotonic() - started
            shown = f'"{actual}"' if f'"{expected}"' in what and actual != NO_ROW else actual
            if actual == str(expected):
                logger.info(f"{what or sql}: the database holds {shown} ({waited:.1f} s)")
                return actual
            if waited >= seconds:
                break
            time.sleep(DB_POLL_S)
        expectation = what or "expected"
        if str(expected) not in expectation:
            expectation += f" ({expected})"
        when = f"after {waited:.1f} s" if seconds else "when read at once"
        raise AssertionError(f"{expectation}, but the database holds {shown} {when}")

    def _stored_value(self, sql: str, params: tuple[Any, ...]) -> str:
        try:
            rows = self.db.rows(sql, params)
        except psycopg2.Error as exc:  # a fault test may stop the database under the check
            return f"nothing readable ({type(exc).__name__}: {str(exc).strip()})"
        if not rows:
            return NO_ROW
        return ", ".join(str(next(iter(row.values()))) for row in rows)

    @keyword
    def listen_to_channel(self, channel: str) -> None:
        """LISTENs on a NOTIFY ``channel`` on a dedicated connection."""
        self.db.listen(channel)

    @keyword
    def wait_for_notification(self, channel: str, timeout: timedelta = timedelta(seconds=5)) -> str:
        """Payload of the next NOTIFY on ``channel``; fails after ``timeout``."""
        return self.db.wait_notification(channel, self.ctx.scaled(timeout))
