"""``CCSConformance``: raw HTTP requests and database stalls for the protocol conformance suite.

The ``CCS`` library's REST keywords always send well-formed JSON with a valid token; the
conformance suite also needs requests a client should never make (no content type, a wrong
method, a malformed or oversized body) and database conditions a server must answer truthfully
(a lock held on a conversation, a commit that stalls). Both are here, kept apart from the kit's
everyday vocabulary.

*** Settings ***
Library    ../keywords/CCSConformance.py
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg2
import requests
from robot.api.deco import keyword, library

HTTP_TIMEOUT_S = 10.0
COMMIT_STALL_FUNCTION = "ccs_conformance_commit_stall"
COMMIT_STALL_TRIGGER = "ccs_conformance_commit_stall"
BANNER = "CCS listening on "
LOG_FIELDS = ("ts", "level", "logger", "msg")


@library(scope="SUITE", auto_keywords=False)
class CCSConformance:
    """Raw HTTP requests and database stalls (see the module documentation)."""

    def __init__(self) -> None:
        self._locks: dict[str, Any] = {}

    @keyword
    def http_request(
        self,
        base_url: str,
        method: str,
        path: str,
        body: str | None = None,
        content_type: str | None = "application/json",
        token: str | None = None,
    ) -> dict[str, Any]:
        """Sends one request exactly as described and returns what came back.

        ``body`` is sent as given (text, not re-encoded); ``content_type`` ``None`` sends no
        ``Content-Type`` header; ``token`` goes into ``Authorization: Bearer``. Returns
        ``{status, headers, json, text}`` where ``json`` is ``None`` when the answer is not JSON.

        | ${reply}= | HTTP Request | ${base} | PUT | /v1/users | {} |
        | Should Be Equal As Integers | ${reply}[status] | 405 |
        """
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = body.encode("utf-8") if body is not None else None
        response = requests.request(
            method, base_url.rstrip("/") + path, data=data, headers=headers, timeout=HTTP_TIMEOUT_S
        )
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "json": parsed,
            "text": response.text,
        }

    @keyword
    def error_reply_should_be(self, reply: dict[str, Any], status: int, code: str) -> None:
        """``reply`` (from `HTTP Request`) has HTTP ``status`` and the error body of ``code``.

        The error body is the JSON object ``{code, message, retryable}`` (extra fields allowed).
        """
        body = reply["json"]
        shape_ok = (
            isinstance(body, dict)
            and isinstance(body.get("message"), str)
            and isinstance(body.get("retryable"), bool)
        )
        if reply["status"] != int(status) or not shape_ok or body.get("code") != code:
            raise AssertionError(
                f"expected HTTP {status} with error body {{code: {code!r}, message, retryable}}, "
                f"got HTTP {reply['status']} {reply['headers'].get('Content-Type', '')}: "
                f"{reply['text'][:300]}"
            )

    @keyword
    def lock_conversation_row(self, database_url: str, conversation_id: str) -> None:
        """Holds a row lock on ``conversations`` row ``conversation_id`` in an open transaction.

        Every insert into that conversation waits on it (the seq is assigned by updating the
        row), so a send stalls inside the database until `Release Conversation Row Lock`.
        """
        conn = psycopg2.connect(database_url, application_name="ccs-conformance-lock")
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,))
            if cur.fetchone() is None:
                conn.close()
                raise AssertionError(f"conversation {conversation_id!r} is not stored")
        self._locks[conversation_id] = conn

    @keyword
    def release_conversation_row_lock(self, conversation_id: str) -> None:
        """Ends the transaction of `Lock Conversation Row` (rollback); no-op when none is held."""
        conn = self._locks.pop(conversation_id, None)
        if conn is not None:
            conn.rollback()
            conn.close()

    @keyword
    def release_all_conversation_row_locks(self) -> None:
        """Releases every lock this library holds (teardown)."""
        for conversation_id in list(self._locks):
            self.release_conversation_row_lock(conversation_id)

    @keyword
    def stall_commits_of_messages_with_key_prefix(
        self, database_url: str, prefix: str, seconds: float
    ) -> None:
        """Makes the COMMIT of any transaction inserting a message whose ``client_msg_id``
        starts with ``prefix`` take ``seconds`` longer, in the database itself.

        A deferred constraint trigger sleeps at commit time: the insert statement returns at
        once, the commit is what hangs, which is the window where a server cannot know whether
        its write was stored. Only rows with the prefix are affected. Undo with
        `Remove Commit Stall`.
        """
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
            raise ValueError(f"prefix must be an id of [A-Za-z0-9_.:-], got {prefix!r}")
        function = f"""
            CREATE OR REPLACE FUNCTION {COMMIT_STALL_FUNCTION}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_sleep({float(seconds)});
                RETURN NULL;
            END $$"""
        trigger = f"""
            CREATE CONSTRAINT TRIGGER {COMMIT_STALL_TRIGGER} AFTER INSERT ON messages
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN (NEW.client_msg_id LIKE '{prefix}%')
            EXECUTE FUNCTION {COMMIT_STALL_FUNCTION}()"""
        drop = f"DROP TRIGGER IF EXISTS {COMMIT_STALL_TRIGGER} ON messages"
        self._ddl(database_url, [function, drop, trigger])

    @keyword
    def remove_commit_stall(self, database_url: str) -> None:
        """Drops what `Stall Commits Of Messages With Key Prefix` created (teardown)."""
        self._ddl(
            database_url,
            [
                f"DROP TRIGGER IF EXISTS {COMMIT_STALL_TRIGGER} ON messages",
                f"DROP FUNCTION IF EXISTS {COMMIT_STALL_FUNCTION}()",
            ],
        )

    @keyword
    def log_records_should_be_structured(self, *paths: str) -> int:
        """Every log line of ``paths`` is one JSON object with ``ts``, ``level``, ``logger`` and
        ``msg``; returns how many records were checked (fails when there are none).

        The reference server's start-up banner (``CCS listening on …``, written to standard
        output for the kit's port discovery) is not a log record and is skipped.
        """
        checked = 0
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, 1):
                    text = line.strip()
                    if not text or text.startswith(BANNER):
                        continue
                    _check_record(text, f"{path}:{number}")
                    checked += 1
        if not checked:
            raise AssertionError(f"no log record found in {list(paths)}")
        return checked

    @staticmethod
    def _ddl(database_url: str, statements: list[str]) -> None:
        conn = psycopg2.connect(database_url, application_name="ccs-conformance-ddl")
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SET lock_timeout = '5s'")
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()


def _check_record(text: str, where: str) -> None:
    try:
        record = json.loads(text)
    except ValueError:
        raise AssertionError(f"{where}: not a JSON log record: {text[:200]}") from None
    missing = [f for f in LOG_FIELDS if not isinstance(record, dict) or f not in record]
    if missing:
        raise AssertionError(f"{where}: log record without {missing}: {text[:200]}")
