"""Robot Framework library: hostile clients, hand-made frames, a bystander and leak checks."""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import requests
from ccskit import server as nodes_mod
from ccskit.api import registry
from ccskit.client import DeviceClient
from ccskit.config import KitConfig, scaled, target
from ccskit.hostile import Bystander, fingerprint_sql, hostile_token, scan_logs_for_tokens
from ccskit.loop import shared_loop
from ccskit.rawws import OP_BINARY, OP_TEXT, RawWebSocket, RawWsError, encode_frame
from robot.api import logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn

FIVE_S = timedelta(seconds=5)
# Fields an error frame may carry; anything else would be data leaked in a denial.
ERROR_FIELDS = {"type", "ref", "code", "message", "retryable", "retry_after_ms", "current"}
REPLY_TYPES = ("ack", "error", "welcome")
REMOVAL_KEYWORD = (
    'No Message Of "${conversation}" Should Follow The Removal At "${alias}"'
    " Within ${seconds} Seconds"
)


@library(scope="GLOBAL", auto_keywords=False)
class CCSHostile:
    """Hostile inputs against a CCS server, with the proof that nobody else noticed.

    - *Raw connections* (`Open Raw Connection`) are hand-made WebSockets on a TCP socket: they
      send what no client library will (unmasked frames, reserved opcodes, invalid UTF-8,
      oversize frames, any bytes) and stop reading when told to (slow consumer, no pongs).
    - The *bystander* (`Start Bystander`) is a watcher device plus a talker sending a steady
      trickle into the same conversation during the whole barrage; `Bystander Should Have
      Received Everything` proves it saw every message of the conversation once, in order.
    - `Snapshot Stored State` / `Stored State Should Be Unchanged` prove a rejected input
      stored nothing (row counts and version/cursor sums of the suite's own fixtures).
    - Every token handed out here is remembered for `Server Logs Should Not Contain Tokens`.

    Frame texts may name placeholders set with `Set Frame Placeholders` (``$ARENA``) and
    ``$HEAD+1`` (the arena's head seq plus one, read from the database at send time).
    """

    def __init__(self) -> None:
        self._loop = shared_loop()
        self._raw: dict[str, RawWebSocket] = {}
        self._tokens: list[str] = []
        self._bystander: Bystander | None = None
        self._checked_trickle = 0
        self._db: Any = None
        self._snapshot: dict[str, Any] | None = None
        self._placeholders: dict[str, str] = {}

    # ----- helpers ---------------------------------------------------------------------------
    def _run(self, coro: Any, timeout: float) -> Any:
        return self._loop.run(coro, timeout + 5.0)

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self._db is None:
            self._db = psycopg2.connect(KitConfig.from_env().database_url)
            self._db.autocommit = True
        with self._db.cursor() as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []  # a statement without a result (INSERT)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _conn(self, alias: str) -> RawWebSocket:
        if alias not in self._raw:
            raise AssertionError(f"no raw connection called '{alias}' (known: {sorted(self._raw)})")
        return self._raw[alias]

    def _fill(self, text: str) -> str:
        if "$HEAD+1" in text:
            text = text.replace("$HEAD+1", str(self._head(self._placeholders["ARENA"]) + 1))
        for name in sorted(self._placeholders, key=len, reverse=True):
            text = text.replace(f"${name}", self._placeholders[name])
        return text

    def _head(self, conversation: str) -> int:
        rows = self._sql("SELECT head_seq FROM conversations WHERE id = %s", (conversation,))
        if not rows:
            raise AssertionError(f"conversation '{conversation}' is not stored")
        return int(rows[0]["head_seq"])

    # ----- configuration -------------------------------------------------------------------------
    @keyword
    def own_server_configuration_is_possible(self) -> bool:
        """True when the suite may start its own reference node with short timeouts and low
        limits: no ``SUT_URL``, or ``SUT_URL`` is itself a reference server on loopback (the
        runner started it). A team's own server keeps its configuration: False."""
        sut = KitConfig.from_env().sut_url
        if not sut:
            return True
        if os.environ.get("CCS_HOSTILE_OWN_NODE", "").lower() in ("0", "false", "no"):
            return False
        try:
            info = requests.get(f"{sut}/openapi.json", timeout=5).json().get("info", {})
        except (requests.RequestException, ValueError):
            return False
        local = sut.startswith(("http://127.0.0.1:", "http://localhost:"))
        return local and info.get("title") == "CCS reference server"

    @keyword
    def set_frame_placeholders(self, **values: str) -> None:
        """``$NAME`` in frame texts becomes ``values[NAME]`` (conversation fixture names resolve
        to their ids)."""
        for name, value in values.items():
            self._placeholders[name] = registry.conversations.get(value, value)

    # ----- tokens --------------------------------------------------------------------------------
    @keyword
    def hostile_token(self, kind: str, device: str, ttl: timedelta = timedelta(hours=1)) -> str:
        """A token of ``kind`` for device fixture ``device``: valid, malformed, bad_signature,
        alg_none, alg_hs512, expired, not_yet_valid, wrong_audience, wrong_issuer, no_expiry,
        unknown_device, other_users_device (``other_device`` placeholder names the victim)."""
        user, dev = registry.device(device)
        other = registry.devices.get(self._placeholders.get("OTHER_DEVICE", ""), ("", ""))[1]
        token = hostile_token(kind, user, dev, other, int(ttl.total_seconds()))
        self._tokens.append(token)
        return token

    # ----- raw connections ------------------------------------------------------------------
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
        url, headers = target.ws_url, {}
        if token_in == "header":
            headers["Authorization"] = f"Bearer {token}"
        elif token_in == "query":
            url = f"{url}?token={token}"
        conn = RawWebSocket(url, headers)
        self._raw[alias] = conn
        status: int = self._run(self._connect(conn, rcvbuf), 10.0)
        if status == 101 and token_in == "hello":
            hello: dict[str, Any] = {"type": "hello", "ref": "hello", "token": token}
            if resume:
                hello["resume"] = {registry.conversations.get(k, k): v for k, v in resume.items()}
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
        token = self.hostile_token("valid", device)
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
        self._run(self._conn(alias).send_text(self._fill(text)), 5.0)

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
        conn = self._conn(alias)
        if kind.startswith("oversize"):
            # read while sending: the server closes mid-frame, and the reset that follows its
            # close would otherwise discard the close frame before it is read
            self._run(conn.send_while_reading(frames[kind](), 10.0), 10.0)
        else:
            self._run(conn.send_bytes(frames[kind]()), 10.0)

    @keyword
    def raw_send_burst(self, alias: str, text: str, count: int) -> None:
        """Sends ``count`` copies of ``text`` (``$N`` numbered) back to back, reading nothing."""
        conn = self._conn(alias)
        filled = self._fill(text)
        data = b"".join(
            encode_frame(OP_TEXT, filled.replace("$N", str(i)).encode()) for i in range(count)
        )
        self._run(conn.send_bytes(data), 30.0)

    @keyword
    def raw_next_reply(self, alias: str, timeout: timedelta = FIVE_S) -> dict[str, Any]:
        """The next ``ack``/``error``/``welcome`` frame (live traffic in between is skipped)."""
        conn = self._conn(alias)
        seconds = scaled(timeout)
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
        conn = self._conn(alias)
        seconds = scaled(timeout)
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
        conn = self._conn(alias)
        seconds = scaled(timeout)
        try:
            code = self._run(conn.wait_close(seconds), seconds)
        except RawWsError as exc:
            raise AssertionError(f"'{alias}': {exc}") from None
        errors = [json.loads(t).get("code") for t in conn.texts() if '"type":"error"' in t]
        return f"{errors[0] if errors else '-'} {code}"

    @keyword
    def close_raw_connections(self) -> None:
        """Drops every raw connection (test teardown)."""
        for conn in self._raw.values():
            self._run(conn.close(), 5.0)
        self._raw.clear()

    @keyword
    def connection_attempt_outcome(self, device: str, token_kind: str, token_in: str) -> str:
        """Connects as ``device`` with a ``token_kind`` token given ``token_in`` (``header``,
        ``query``, ``hello`` or ``none``: a hello without a token); returns ``HTTP <status>
        <code>`` when the upgrade is refused, else ``<error code> <close code>`` (``welcome``
        when accepted)."""
        token = self.hostile_token(token_kind, device)
        if token_in == "none":
            status = self.open_raw_connection("attempt", "", "none")
            self.raw_send_text("attempt", '{"type":"hello","ref":"h"}')
        else:
            status = self.open_raw_connection("attempt", token, token_in)
        conn = self._conn("attempt")
        if status != 101:
            code = json.loads(conn.response_body or b"{}").get("code", "-")
            return f"HTTP {status} {code}"
        if token_in in ("header", "query"):
            self.raw_send_text("attempt", '{"type":"hello","ref":"h"}')
        reply = self.raw_next_reply("attempt")
        if reply.get("type") == "welcome":
            return "welcome"
        return self.raw_close_code("attempt")

    # ----- bystander ---------------------------------------------------------------------------
    @keyword
    def start_bystander(
        self,
        conversation: str,
        watcher: str,
        talker: str,
        interval: timedelta = timedelta(milliseconds=100),
    ) -> None:
        """Connects ``watcher`` and ``talker`` (device fixtures) and starts the trickle."""
        conv = registry.conversations.get(conversation, conversation)
        clients = []
        for name in (watcher, talker):
            user, dev = registry.device(name)
            token = hostile_token("valid", user, dev)
            self._tokens.append(token)
            clients.append(DeviceClient(name, target.ws_url, token, user_id=user, device_id=dev))
        self._bystander = Bystander(conv, clients[0], clients[1], interval.total_seconds())
        self._run(self._bystander.start(10.0), 10.0)
        self._checked_trickle = 0

    def _by(self) -> Bystander:
        if self._bystander is None:
            raise AssertionError("no bystander was started (Start Bystander)")
        return self._bystander

    @keyword
    def bystander_should_have_received_everything(self, timeout: timedelta = FIVE_S) -> int:
        """The watcher received every message of its conversation up to the stored head, once
        each and in order; the trickle kept being acknowledged. Returns the head."""
        by = self._by()
        head = self._head(by.conversation)
        seconds = scaled(timeout)
        if head:
            try:
                self._run(by.wait_for_seq(head, seconds), seconds)
            except AssertionError as exc:
                raise AssertionError(f"the bystander missed seq {head}: {exc}") from None
        seqs = by.seqs()
        if seqs != list(range(1, len(seqs) + 1)) or len(seqs) < head:
            raise AssertionError(f"the bystander saw seqs {seqs[:50]}... (head {head})")
        if by.trickle.errors:
            raise AssertionError(f"the trickle got errors: {by.trickle.errors[:3]}")
        deadline = time.monotonic() + seconds
        while len(by.trickle.acked) <= self._checked_trickle and time.monotonic() < deadline:
            time.sleep(0.02)  # polling another thread's counter: the trickle's next ack
        if len(by.trickle.acked) <= self._checked_trickle:
            raise AssertionError("the trickle made no progress since the last check")
        self._checked_trickle = len(by.trickle.acked)
        return head

    @keyword
    def bystander_latency_mark(self) -> float:
        """A point in time for `Bystander Max Latency Since`."""
        return time.monotonic()

    @keyword
    def bystander_max_latency_since(self, mark: float) -> float:
        """Worst send-to-watcher latency (ms) of trickle messages sent after ``mark``."""
        values = self._by().latencies_ms(float(mark))
        if not values:
            raise AssertionError("no trickle message reached the bystander since the mark")
        values.sort()
        logger.info(
            f"bystander latency over {len(values)} messages: p50 {values[len(values) // 2]} ms, "
            f"max {values[-1]} ms"
        )
        return values[-1]

    @keyword
    def stop_bystander(self) -> None:
        """Stops the trickle and closes the bystander's devices."""
        if self._bystander is not None:
            self._run(self._bystander.stop(), 15.0)
            self._bystander = None

    # ----- stored state, health, logs ------------------------------------------------------
    def _fingerprint(self) -> dict[str, Any]:
        convs = list(registry.conversations.values())
        devices = [dev for _, dev in registry.devices.values()]
        talker = self._bystander.talker.device_id if self._bystander else ""
        sql, params = fingerprint_sql(convs, devices, talker)
        return self._sql(sql, params)[0]

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
        """Exact stored body texts of ``device``'s messages in ``conversation``, by seq."""
        conv = registry.conversations.get(conversation, conversation)
        dev = registry.device(device)[1]
        rows = self._sql(
            "SELECT body::text AS body FROM messages WHERE conversation_id = %s"
            " AND sender_device_id = %s ORDER BY seq",
            (conv, dev),
        )
        return [r["body"] for r in rows]

    @keyword
    def messages_stored_by(self, device: str) -> int:
        """How many messages ``device`` has stored."""
        dev = registry.device(device)[1]
        rows = self._sql("SELECT count(*) AS n FROM messages WHERE sender_device_id = %s", (dev,))
        return int(rows[0]["n"])

    @keyword
    def server_should_be_alive(self) -> None:
        """``GET /health`` answers 200 and, for a node started here, its process runs."""
        for process in nodes_mod.nodes.values():
            proc = process.proc
            if process.base_url == target.base_url and proc is not None and proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}")
        response = requests.get(f"{target.require()}/health", timeout=scaled(5.0))
        if response.status_code != 200:
            raise AssertionError(f"/health answered {response.status_code}: {response.text}")

    @keyword
    def server_log_files(self, *extra: str) -> list[str]:
        """Log files of the server under test this run can read (nodes started by name, plus
        ``extra`` paths)."""
        paths = [str(p.log_path) for p in nodes_mod.nodes.values() if p.log_path]
        return paths + [p for p in extra if p]

    @keyword
    def server_logs_should_not_contain_tokens(self, *paths: str) -> int:
        """No token handed out here, and nothing JWT-shaped, appears in ``paths``; returns how
        many tokens were checked."""
        files = [Path(p) for p in paths]
        missing = [str(p) for p in files if not p.exists()]
        if not files or missing:
            raise AssertionError(f"log files to scan are missing: {missing or 'none given'}")
        hits = scan_logs_for_tokens(files, self._tokens)
        if hits:
            raise AssertionError("tokens found in server logs:\n" + "\n".join(hits[:10]))
        return len(self._tokens)

    # ----- whole scenarios ---------------------------------------------------------------------
    @keyword
    def hello_outcome(self, device: str, resume_json: str) -> str:
        """Says hello as ``device`` with the ``resume`` map given as JSON text (placeholders
        filled); returns ``welcome <reason|recovered> head=<shown|hidden>`` for the arena entry,
        or ``<error code> <close code>`` when the hello fails."""
        token = self.hostile_token("valid", device)
        self.open_raw_connection("hello", "", "none")
        resume = self._fill(resume_json)
        self.raw_send_text(
            "hello", f'{{"type":"hello","ref":"h","token":"{token}","resume":{resume}}}'
        )
        reply = self.raw_next_reply("hello")
        if reply.get("type") != "welcome":
            return self.raw_close_code("hello")
        convs = reply.get("conversations", {})
        entry: dict[str, Any] = next((convs[k] for k in json.loads(resume) if k in convs), {})
        state = entry.get("reason") or ("recovered" if entry.get("recovered") else "?")
        return f"welcome {state} head={'shown' if 'head_seq' in entry else 'hidden'}"

    @keyword
    def body_should_round_trip_exactly(self, alias: str, body_json: str) -> dict[str, Any]:
        """Sends ``body_json`` (JSON text) as a body on raw connection ``alias``; the ack, the
        stored text, the bystander's copy and ``history`` must all carry the identical value
        (every string equal code point for code point, so byte for byte in UTF-8)."""
        sent = json.loads(body_json)
        cmid = f"exact-{time.time_ns()}"
        frame = {"type": "send", "ref": cmid[:60], "conversation_id": self._placeholders["ARENA"]}
        frame.update(client_msg_id=cmid, body=sent)
        self.raw_send_text(alias, json.dumps(frame))
        ack = self.raw_next_reply(alias)
        if ack.get("type") != "ack":
            raise AssertionError(f"expected the body to be stored, got {json.dumps(ack)}")
        seq = int(ack["seq"])
        stored = self._sql(
            "SELECT body::text AS body FROM messages WHERE conversation_id = %s AND seq = %s",
            (self._placeholders["ARENA"], seq),
        )[0]["body"]
        _same("stored", sent, json.loads(stored))
        by = self._by()
        self._run(by.wait_for_seq(seq, 5.0), 5.0)
        got = by.watcher.find("message", {"conversation_id": by.conversation, "seq": seq}, 0)
        _same("delivered", sent, (got[0].data or {}).get("body"))
        self.raw_send_text(
            alias,
            json.dumps(
                {
                    "type": "history",
                    "ref": "hist",
                    "conversation_id": by.conversation,
                    "after_seq": seq - 1,
                    "limit": 1,
                }
            ),
        )
        page = self.raw_next_reply(alias)
        _same("history", sent, page["messages"][0]["body"])
        return {"seq": seq, "stored": stored}

    @keyword
    def slow_consumer_close_code(
        self, device: str, conversation: str, rows: int = 1000, body_bytes: int = 16000
    ) -> str:
        """A raw connection as ``device`` with a tiny receive buffer stops reading while
        another program inserts ``rows`` big messages into ``conversation``; once the server
        counts a slow consumer (``/metrics``) the socket is drained: returns ``<error> <close
        code>``. The flood must exceed the socket buffers plus the send queue."""
        before = self._slow_consumers()
        arena = registry.conversations.get(conversation, conversation)
        # resume at the head: no backlog, so the flood below is live traffic for this client
        resume = {arena: self._head(arena)}
        token = self.hostile_token("valid", device)
        self.open_raw_connection("slow", token, "hello", 4096, resume)
        self.raw_next_reply("slow")
        user, dev = registry.device(device)
        self._sql(
            "INSERT INTO messages (conversation_id, sender_user_id, sender_device_id,"
            " client_msg_id, body) SELECT %s, %s, %s, 'flood-' || g || '-' || %s,"
            " json_build_object('pad', repeat('x', %s)) FROM generate_series(1, %s) g",
            (arena, user, dev, time.time_ns(), body_bytes, rows),
        )
        deadline = time.monotonic() + scaled(20.0)
        conn = self._conn("slow")
        while self._slow_consumers() <= before and time.monotonic() < deadline:
            # it still writes (so it is not a dead peer for the heartbeat), it only never reads
            self._run(conn.send_text('{"type":"ping","ref":"alive"}'), 5.0)
            time.sleep(0.2)  # polling the server's counter: there is no event to wait on
        if self._slow_consumers() <= before:
            raise AssertionError(f"the server counted no slow consumer after {rows} messages")
        return self.raw_close_code("slow", timedelta(seconds=20))

    def _slow_consumers(self) -> float:
        text = requests.get(f"{target.require()}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith("ccs_slow_consumer_closes_total "):
                return float(line.split()[1])
        return 0.0

    @keyword(REMOVAL_KEYWORD)
    def no_message_should_follow_removal(self, conversation: str, alias: str, seconds: str) -> None:
        """While the trickle goes on for ``seconds``, device ``alias`` (a `CCSDevices` device)
        receives no message of ``conversation`` after its ``member_removed`` frame."""
        devices: Any = BuiltIn().get_library_instance("CCSDevices")
        client = devices.client(alias)
        conv = registry.conversations.get(conversation, conversation)
        acked = len(self._by().trickle.acked)
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            time.sleep(0.05)  # the window itself is the test: traffic must flow meanwhile
        if len(self._by().trickle.acked) <= acked:
            raise AssertionError("the trickle sent nothing during the window: nothing was proven")
        frames = client.find(None, {"conversation_id": conv}, since=0)
        removed = [f.index for f in frames if f.type == "member_removed"]
        late = [f.short(120) for f in frames if f.type == "message" and f.index > removed[0]]
        if late:
            raise AssertionError(f"'{alias}' received after its removal: {late[:3]}")

    @keyword
    def removed_member_on_another_node_receives_nothing_more(
        self, device: str, user: str, conversation: str, ws_url: str, window: float = 1.5
    ) -> int:
        """``device`` listens on the node at ``ws_url`` (another node than the one the REST
        removal goes to); after ``member_removed`` it must receive no message of
        ``conversation`` for ``window`` seconds while the trickle goes on. Returns how many
        messages it received before the removal."""
        conv = registry.conversations.get(conversation, conversation)
        conn = RawWebSocket(ws_url)
        self._raw[f"{device}@other"] = conn
        hello: dict[str, Any] = {"type": "hello", "ref": "h"}
        hello.update(token=self.hostile_token("valid", device), resume={conv: self._head(conv)})
        self._run(conn.connect(), 10.0)
        self._run(conn.send_text(json.dumps(hello)), 5.0)
        before = self._run(self._frames_until(conn, conv, "message", 5.0), 5.0)
        if not before:
            raise AssertionError(f"'{device}' got no live message from the node at {ws_url}")
        BuiltIn().run_keyword("Remove Member", conversation, user)
        if not self._run(self._frames_until(conn, conv, "member_removed", 5.0), 5.0):
            raise AssertionError(f"'{device}' got no member_removed from the node at {ws_url}")
        acked = len(self._by().trickle.acked)
        late = self._run(self._frames_until(conn, conv, "message", window), window)
        if late:
            raise AssertionError(f"'{device}' received after its removal: {late}")
        if len(self._by().trickle.acked) <= acked:
            raise AssertionError("the trickle sent nothing during the window: nothing was proven")
        return len(before)

    @staticmethod
    async def _frames_until(
        conn: RawWebSocket, conv: str, frame_type: str, seconds: float
    ) -> list[dict[str, Any]]:
        """Frames of ``conv`` read until one of ``frame_type`` (returned list ends with it);
        an empty list when none came within ``seconds``."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await conn.read_frame(left)
            except TimeoutError:
                break
            if frame is None:
                raise AssertionError("the other node closed the connection")
            if frame.opcode != OP_TEXT:
                continue
            data = json.loads(frame.text())
            if data.get("conversation_id") == conv:
                seen.append(data)
                if data.get("type") == frame_type:
                    return seen
        return []


def _same(where: str, sent: Any, got: Any) -> None:
    if got != sent or json.dumps(got, ensure_ascii=False) != json.dumps(sent, ensure_ascii=False):
        raise AssertionError(f"{where} body differs: sent {sent!r}, got {got!r}")
