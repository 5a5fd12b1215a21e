"""Keywords: what the suite's fixtures have stored, before and after hostile input."""

from __future__ import annotations

import json
import time
from typing import Any

from robot.api.deco import keyword

from ...context import KitContext
from ...hostile import HostileSession, fingerprint_sql
from .raw import conversation_head


class StoredStateKeywords:
    """`Snapshot Stored State` / `Stored State Should Be Unchanged` prove a rejected input
    stored nothing (row counts and version/cursor sums of the suite's own fixtures); the others
    read exact stored values. All SQL goes through the kit's one database link."""

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self.session: HostileSession = ctx.hostile
        self._snapshot: dict[str, Any] | None = None

    def _fingerprint(self) -> dict[str, Any]:
        fixtures = self.ctx.fixtures
        talker = self.session.bystander.talker.device_id if self.session.bystander else ""
        sql, params = fingerprint_sql(
            fixtures.all_conversation_ids(), fixtures.all_device_ids(), talker
        )
        return self.ctx.db.rows(sql, params)[0]

    @keyword
    def snapshot_stored_state(self) -> dict[str, Any]:
        """Remembers what the suite's fixtures have stored (the trickle excluded)."""
        self._snapshot = self._fingerprint()
        return self._snapshot

    @keyword
    def stored_state_should_be_unchanged(self) -> None:
        """Nothing was stored, edited, moved or joined since `Snapshot Stored State`."""
        if self._snapshot is None:
            raise AssertionError("no snapshot was taken (Snapshot Stored State)")
        now = self._fingerprint()
        if now != self._snapshot:
            raise AssertionError(f"stored state changed: before {self._snapshot}, after {now}")

    @keyword
    def stored_bodies_of(self, conversation: str, device: str) -> list[str]:
        """Exact stored body texts of the messages of ``device`` in ``conversation``, by seq."""
        conv = self.ctx.fixtures.conversation(conversation)
        dev = self.ctx.fixtures.device_id(device)
        rows = self.ctx.db.rows(
            "SELECT body::text AS body FROM messages WHERE conversation_id = %s"
            " AND sender_device_id = %s ORDER BY seq",
            (conv, dev),
        )
        return [r["body"] for r in rows]

    @keyword
    def messages_stored_by(self, device: str) -> int:
        """How many messages ``device`` has stored."""
        dev = self.ctx.fixtures.device_id(device)
        sql = "SELECT count(*) AS n FROM messages WHERE sender_device_id = %s"
        rows = self.ctx.db.rows(sql, (dev,))
        return int(rows[0]["n"])

    @keyword
    def conversation_head(self, conversation: str) -> int:
        """``head_seq`` stored for ``conversation`` (a fixture name or its id)."""
        return conversation_head(self.ctx, self.ctx.fixtures.conversation(conversation))

    @keyword
    def stored_body_text_of_seq(self, conversation: str, seq: int) -> str:
        """The stored body of message ``seq`` of ``conversation`` as the database's JSON text."""
        conv = self.ctx.fixtures.conversation(conversation)
        rows = self.ctx.db.rows(
            "SELECT body::text AS body FROM messages WHERE conversation_id = %s AND seq = %s",
            (conv, int(seq)),
        )
        if not rows:
            raise AssertionError(f"no message with seq {seq} is stored in '{conversation}'")
        return str(rows[0]["body"])

    @keyword
    def insert_flood_as_another_program(
        self, conversation: str, device: str, rows: int = 1000, body_bytes: int = 16000
    ) -> None:
        """INSERTs ``rows`` messages of ``body_bytes`` padding each into ``conversation`` as
        ``device``, in one statement (a flood no client could send as fast)."""
        conv = self.ctx.fixtures.conversation(conversation)
        user, dev = self.ctx.fixtures.device(device)
        self.ctx.db.rows(
            "INSERT INTO messages (conversation_id, sender_user_id, sender_device_id,"
            " client_msg_id, body) SELECT %s, %s, %s, 'flood-' || g || '-' || %s,"
            " json_build_object('pad', repeat('x', %s)) FROM generate_series(1, %s) g",
            (conv, user, dev, time.time_ns(), int(body_bytes), int(rows)),
        )

    @keyword
    def body_should_be_identical(self, where: str, sent_json: str, got_json: str) -> None:
        """The JSON texts ``sent_json`` and ``got_json`` hold the identical value: every string
        equal code point for code point, so byte for byte in UTF-8. ``where`` names the copy."""
        sent, got = json.loads(sent_json), json.loads(got_json)
        same_text = json.dumps(got, ensure_ascii=False) == json.dumps(sent, ensure_ascii=False)
        if got != sent or not same_text:
            raise AssertionError(f"{where} body differs: sent {sent!r}, got {got!r}")
