"""Robot Framework library: psycopg2 helpers for what DatabaseLibrary lacks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ccskit.api import registry
from ccskit.config import KitConfig
from ccskit.db import CcsDb
from robot.api import logger
from robot.api.deco import keyword, library


@library(scope="GLOBAL", auto_keywords=False)
class CCSDatabase:
    """Direct access to the server's PostgreSQL database beyond DatabaseLibrary's assertions.

    SQL assertions use DatabaseLibrary (see the ``database.resource`` vocabulary); this library
    adds: writing a message the way another program would, reading cursors and presence as
    dictionaries, and LISTEN/NOTIFY. Connects to ``DATABASE_URL``
    (default ``postgresql://postgres@127.0.0.1:5432/ccs``). Parameterised SQL only.

    | `Connect To CCS Database` |
    | ${row}= | `Insert Message As Another Program` | team-room | alice-phone | hi |
    | ${cursors}= | `Device Cursors` | bob-tablet | team-room |
    """

    def __init__(self) -> None:
        self._db: CcsDb | None = None

    @property
    def db(self) -> CcsDb:
        if self._db is None:
            self.connect_to_ccs_database()
        assert self._db is not None
        return self._db

    @keyword
    def database_url(self) -> str:
        """The ``DATABASE_URL`` the kit checks (the one the server under test writes to)."""
        return KitConfig.from_env().database_url

    @keyword
    def connect_to_ccs_database(self, database_url: str | None = None) -> None:
        """Opens the helper's autocommit connection (idempotent)."""
        if self._db is None:
            self._db = CcsDb(database_url or KitConfig.from_env().database_url)

    @keyword
    def disconnect_from_ccs_database(self) -> None:
        """Closes the helper's connections."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @keyword
    def insert_message_as_another_program(
        self, conversation: str, sender_device: str, body: Any, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        """INSERTs a message row directly (seq left to the trigger); returns id and seq.

        | ${row}= | Insert Message As Another Program | team-room | alice-phone | hi |
        """
        user_id, device_id = registry.device(sender_device)
        conv = registry.conversations.get(conversation, conversation)
        payload = {"text": body} if isinstance(body, str) else body
        row = self.db.insert_message(conv, user_id, device_id, payload, client_msg_id)
        logger.info(f"inserted directly: {row}")
        return row

    @keyword
    def device_cursors(self, device: str, conversation: str) -> dict[str, Any]:
        """``{delivered_upto, read_upto}`` stored for a device in a conversation."""
        device_id = registry.device(device)[1]
        return self.db.cursors(device_id, registry.conversations.get(conversation, conversation))

    @keyword
    def device_presence(self, device: str) -> dict[str, Any]:
        """The ``device_presence`` row of ``device`` as a dictionary (fails if missing)."""
        device_id = registry.device(device)[1]
        row = self.db.presence(device_id)
        if row is None:
            raise AssertionError(f"expected a device_presence row for '{device}' ({device_id})")
        return row

    @keyword
    def query_as_dictionaries(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Runs parameterised ``sql`` (``%s`` placeholders); returns rows as dictionaries."""
        return self.db.rows(sql, tuple(params))

    @keyword
    def listen_to_channel(self, channel: str) -> None:
        """LISTENs on a NOTIFY ``channel`` on a dedicated connection."""
        self.db.listen(channel)

    @keyword
    def wait_for_notification(self, channel: str, timeout: timedelta = timedelta(seconds=5)) -> str:
        """Payload of the next NOTIFY on ``channel``; fails after ``timeout``."""
        return self.db.wait_notification(channel, timeout.total_seconds())
