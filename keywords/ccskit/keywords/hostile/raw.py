"""Keywords: hand-made WebSockets on a TCP socket, for input no client library would send."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import timedelta
from typing import Any

from robot.api.deco import keyword

from ...context import KitContext
from ...counters import counter_value
from ...hostile import HostileSession, hostile_token
from ...rawws import OP_BINARY, OP_TEXT, RawWebSocket, RawWsError, encode_frame

FIVE_S = timedelta(seconds=5)
# Fields an error frame may carry; anything else would be data leaked in a denial.
ERROR_FIELDS = {"type", "ref", "code", "message", "retryable", "retry_after_ms", "current"}
REPLY_TYPES = ("ack", "error", "welcome")


class RawConnectionKeywords:
    """Raw connections (`Open Raw Connection`) are hand-made WebSockets on a TCP socket: they
    send what no client library will (unmasked frames, reserved opcodes, invalid UTF-8,
    oversize frames, any bytes) and stop reading when told to (slow consumer, no pongs).

    Frame texts may name placeholders set with `Set Frame Placeholders` (``$ARENA``) and
    ``$HEAD+1`` (the head seq plus one of the frame's ``conversation_id``, read from the database
    at send time: a conversation nobody else writes to keeps that boundary exact).
    Every token handed out is remembered for `Server Logs Should Not Contain Tokens`.
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self.session: HostileSession = ctx.hostile

    def _run(self, coro: Any, timeout: float) -> Any:
        return self.ctx.loop.run(coro, timeout + 5.0)

    def _fill(self, text: str) -> str:
        for name in sorted(self.session.placeholders, key=len, reverse=True):
            text = text.replace(f"${name}", self.session.placeholders[name])
        if "$HEAD+1" in text:
            head = conversation_head(self.ctx, _conversation_of(text))
            text = text.replace("$HEAD+1", str(head + 1))
        return text

    @keyword
    def fill_frame_placeholders(self, text: str) -> str:
        """``text`` with its ``$NAME`` placeholders (and ``$HEAD+1``) filled."""
        return self._fill(text)

    @keyword
    def raw_upgrade_error_code(self, alias: str) -> str:
        """The ``code`` of the JSON body of a refused upgrade on ``alias`` (``-`` when none)."""
        body = self.session.conn(alias).response_body or b"{}"
        return str(json.loads(body).get("code", "-"))

    @keyword
    def set_frame_placeholders(self, **values: str) -> None:
        """``$NAME`` in frame texts becomes ``values[NAME]``. A conversation fixture name becomes
        its id; any other value is taken literally (placeholders also carry ids that must not
        exist, and whole JSON values)."""
        conversations = self.ctx.fixtures.conversations
        for name, value in values.items():
            self.session.placeholders[name] = conversations.get(value, value)

    @keyword
    def open_raw_connection(
        self,
        alias: str,
        token: str = "",
        token_in: str = "hello",
        rcvbuf: int = 0,
        resume: dict[str, Any] | None = None,
    ) -> int:
        """Opens a hand-made WebSocket; returns the upgrade's HTTP status (101 when upgraded).

        ``token_in``: ``hello`` (sent in a hello frame right away), ``header``, ``query`` or
        ``none`` (no hello is sent). ``rcvbuf`` shrinks the socket's receive buffer (bytes), so
        a client that stops reading fills up quickly.
        """
        url, headers = self.ctx.target.ws_url, {}
        if token_in == "header":
            headers["Authorization"] = f"Bearer {token}"
        elif token_in == "query":
            url = f"{url}?token={token}"
        conn = RawWebSocket(url, headers)
        self.session.raw[alias] = conn
        status: int = self._run(self._connect(conn, rcvbuf), 10.0)
        if status == 101 and token_in == "hello":
            hello: dict[str, Any] = {"type": "hello", "ref": "hello", "token": token}
            if resume:
                conversation = self.ctx.fixtures.conversation
                hello["resume"] = {conversation(k): v for k, v in resume.items()}
            self._run(conn.send_text(json.dumps(hello)), 5.0)
        return status

    @staticmethod
    async def _connect(conn: RawWebSocket, rcvbuf: int) -> int:
        if rcvbuf:
            # set before connect so the advertised TCP window is small from the start
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            conn.sock = sock
        return await conn.connect()

    @keyword
    def open_authenticated_raw_connection(
        self, alias: str, device: str, resume: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Opens a raw connection as ``device`` with a valid token; returns the welcome."""
        user, dev = self.ctx.fixtures.device(device)
        token = hostile_token("valid", user, dev)
        self.session.tokens.append(token)
        status = self.open_raw_connection(alias, token, "hello", resume=resume)
        if status != 101:
            raise AssertionError(f"'{alias}' upgrade answered HTTP {status}")
        reply = self.raw_next_reply(alias)
        if reply.get("type") != "welcome":
            raise AssertionError(f"'{alias}' expected welcome, got {json.dumps(reply)}")
        return reply

    @keyword
    def raw_send_text(self, alias: str, text: str) -> None:
        """Sends ``text`` (placeholders filled) as one well-formed masked text frame."""
        self._run(self.session.conn(alias).send_text(self._fill(text)), 5.0)

    @keyword
    def raw_send_frame(self, alias: str, kind: str, size: int = 0) -> None:
        """Sends a malformed frame: ``unmasked``, ``reserved_opcode``, ``invalid_utf8``,
        ``rsv_bits``, ``binary``, ``oversize`` (``size`` bytes of valid JSON text) or
        ``oversize_header`` (a header announcing 1 GB, no payload)."""
        ping = b'{"type":"ping","ref":"raw"}'
        frames = {
            "unmasked": lambda: encode_frame(OP_TEXT, ping, mask=False),
            "reserved_opcode": lambda: encode_frame(0x3, ping),
            "invalid_utf8": lambda: encode_frame(OP_TEXT, b'{"type":"ping","ref":"\xc3\x28"}'),
            "rsv_bits": lambda: encode_frame(OP_TEXT, ping, rsv=4),
            "binary": lambda: encode_frame(OP_BINARY, ping),
            "oversize": lambda: encode_frame(
                OP_TEXT, b'{"type":"ping","ref":"r","pad":"' + b"x" * size + b'"}'
            ),
            "oversize_header": lambda: encode_frame(OP_TEXT, b"", length_override=1 << 30),
        }
        if kind not in frames:
            raise AssertionError(f"unknown frame kind '{kind}' (known: {sorted(frames)})")
        conn = self.session.conn(alias)
        if kind.startswith("oversize"):
            # read while sending: the server closes mid-frame, and the reset that follows its
            # close would otherwise discard the close frame before it is read
            self._run(conn.send_while_reading(frames[kind](), 10.0), 10.0)
        else:
            self._run(conn.send_bytes(frames[kind]()), 10.0)

    @keyword
    def raw_send_burst(self, alias: str, text: str, count: int) -> None:
        """Sends ``count`` copies of ``text`` (``$N`` numbered) back to back, reading nothing."""
        conn = self.session.conn(alias)
        filled = self._fill(text)
        data = b"".join(
            encode_frame(OP_TEXT, filled.replace("$N", str(i)).encode()) for i in range(count)
        )
        self._run(conn.send_bytes(data), 30.0)

    @keyword
    def raw_next_reply(self, alias: str, timeout: timedelta = FIVE_S) -> dict[str, Any]:
        """The next ``ack``, ``error`` or ``welcome`` frame (live traffic in between is skipped)."""
        conn = self.session.conn(alias)
        seconds = self.ctx.scaled(timeout)
        return self._run(self._next_reply(conn, seconds), seconds)  # type: ignore[no-any-return]

    @staticmethod
    async def _next_reply(conn: RawWebSocket, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frame = await conn.read_frame(max(0.01, deadline - time.monotonic()))
            if frame is None or frame.close_code is not None or frame.opcode == 0x8:
                code = None if frame is None else frame.close_code
                raise AssertionError(f"connection closed ({code}) before a reply")
            if frame.opcode != OP_TEXT:
                continue
            data = json.loads(frame.text())
            if data.get("type") in REPLY_TYPES:
                return data  # type: ignore[no-any-return]
        raise AssertionError(f"no reply within {seconds:.1f} s")

    @keyword
    def raw_error_should_be(
        self, alias: str, code: str, timeout: timedelta = FIVE_S
    ) -> dict[str, Any]:
        """The next reply must be ``error`` with ``code`` and only the documented fields."""
        reply = self.raw_next_reply(alias, timeout)
        if reply.get("type") != "error" or reply.get("code") != code:
            raise AssertionError(f"'{alias}' expected error {code}, got {json.dumps(reply)}")
        extra = set(reply) - ERROR_FIELDS
        if extra:
            raise AssertionError(f"error frame carries undocumented fields {sorted(extra)}")
        return reply

    @keyword
    def raw_connection_should_still_work(self, alias: str) -> None:
        """An application ping on ``alias`` still gets its ack (the error was in-band only)."""
        self.raw_send_text(alias, '{"type":"ping","ref":"still-there"}')
        reply = self.raw_next_reply(alias)
        if reply.get("type") != "ack" or reply.get("ref") != "still-there":
            raise AssertionError(f"'{alias}' expected the ping's ack, got {json.dumps(reply)}")

    @keyword
    def count_replies_until_close(
        self, alias: str, timeout: timedelta = timedelta(seconds=20)
    ) -> tuple[int, int]:
        """Reads ``alias`` until the server closes; returns ``(send acks, rate_limited errors)``.
        Every ``rate_limited`` error must carry a positive ``retry_after_ms``."""
        conn = self.session.conn(alias)
        seconds = self.ctx.scaled(timeout)
        self._run(conn.wait_close(seconds), seconds)
        acks = limited = 0
        for text in conn.texts():
            data = json.loads(text)
            if data.get("type") == "ack" and data.get("for") == "send":
                acks += 1
            elif data.get("code") == "rate_limited":
                limited += 1
                if not int(data.get("retry_after_ms", 0)) > 0:
                    raise AssertionError(f"rate_limited without retry_after_ms: {text}")
        return acks, limited

    @keyword
    def raw_close_code(self, alias: str, timeout: timedelta = FIVE_S) -> str:
        """Waits for the server's close; returns ``<first error code or -> <close code>``."""
        conn = self.session.conn(alias)
        seconds = self.ctx.scaled(timeout)
        try:
            code = self._run(conn.wait_close(seconds), seconds)
        except RawWsError as exc:
            raise AssertionError(f"'{alias}': {exc}") from None
        errors = [json.loads(t).get("code") for t in conn.texts() if '"type":"error"' in t]
        return f"{errors[0] if errors else '-'} {code}"

    @keyword
    def close_raw_connections(self) -> None:
        """Drops every raw connection (test teardown)."""
        for conn in self.session.raw.values():
            self._run(conn.close(), 5.0)
        self.session.raw.clear()

    @keyword
    def raw_send_body(self, alias: str, body_json: str, conversation: str = "$ARENA") -> int:
        """Sends a message with ``body_json`` (JSON text) as its body into ``conversation``
        (placeholders filled) on ``alias``; fails unless acknowledged; returns its seq."""
        cmid = f"exact-{time.time_ns()}"
        frame = {"type": "send", "ref": cmid[:60], "conversation_id": self._fill(conversation)}
        frame.update(client_msg_id=cmid, body=json.loads(body_json))
        self.raw_send_text(alias, json.dumps(frame))
        ack = self.raw_next_reply(alias)
        if ack.get("type") != "ack":
            raise AssertionError(f"expected the body to be stored, got {json.dumps(ack)}")
        return int(ack["seq"])

    @keyword
    def raw_history_body_of_seq(self, alias: str, seq: int, conversation: str = "$ARENA") -> str:
        """Asks ``history`` for message ``seq`` on ``alias``; returns its body as JSON text."""
        request: dict[str, Any] = {"type": "history", "ref": "hist"}
        request.update(conversation_id=self._fill(conversation), after_seq=int(seq) - 1, limit=1)
        self.raw_send_text(alias, json.dumps(request))
        page = self.raw_next_reply(alias)
        messages = page.get("messages") or []
        if not messages:
            raise AssertionError(f"expected message {seq} in the history page, got {page}")
        return json.dumps(messages[0]["body"], ensure_ascii=False)

    @keyword
    def slow_consumer_closes_counted(self) -> float:
        """The server's ``ccs_slow_consumer_closes_total`` (``/metrics``) right now."""
        url = self.ctx.target.require()
        return counter_value(url, "ccs_slow_consumer_closes_total", timeout_s=5.0) or 0.0

    @keyword
    def keep_writing_until_slow_consumer_counted(
        self, alias: str, before: float, timeout: timedelta = timedelta(seconds=20)
    ) -> None:
        """``alias`` keeps writing pings (so it is no dead peer for the heartbeat) but never
        reads, until the server counts more slow-consumer closes than ``before``."""
        conn = self.session.conn(alias)
        deadline = time.monotonic() + self.ctx.scaled(timeout)
        while self.slow_consumer_closes_counted() <= float(before):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the server counted no slow consumer on '{alias}' within "
                    f"{self.ctx.scaled(timeout):.0f} s"
                )
            self._run(conn.send_text('{"type":"ping","ref":"alive"}'), 5.0)
            time.sleep(0.2)  # polling the server's counter (another process): no event exists


def _conversation_of(text: str) -> str:
    """The ``conversation_id`` a frame text names (``$HEAD+1`` needs one)."""
    found = re.search(r'"conversation_id"\s*:\s*"([^"]+)"', text)
    if found is None:
        raise ValueError(f"$HEAD+1 needs a frame with a conversation_id: {text[:120]}")
    return found.group(1)


def conversation_head(ctx: KitContext, conversation: str) -> int:
    """``head_seq`` of a stored conversation (fails when it is not stored)."""
    rows = ctx.db.rows("SELECT head_seq FROM conversations WHERE id = %s", (conversation,))
    if not rows:
        raise AssertionError(f"conversation '{conversation}' is not stored")
    return int(rows[0]["head_seq"])
