"""Reference CCS device client (asyncio), reusable outside Robot Framework.

One :class:`DeviceClient` is one device speaking docs/protocol.md over one WebSocket at a time.
It records every received frame with receive timestamps, keeps per conversation the last ``seq``
seen (for ``hello.resume``) and an outbox of sends not yet acknowledged (re-sent with the same
``client_msg_id`` after a reconnect), and answers ``wait_for`` queries over what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import timing
from .closecodes import describe_close, may_reconnect
from .frames import Frame, describe_match, format_frames, matches

REPLY_TYPES = ("ack", "error", "welcome")


class ClientError(AssertionError):
    """A failed expectation about a device; the message is meant for the test log."""

    ROBOT_SUPPRESS_NAME = True  # Robot shows the message alone, not "ClientError: ..."


class ConnectRefused(ClientError):
    """The server refused the WebSocket upgrade with an HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DeviceClosed(ClientError):
    """The connection closed while a reply was awaited."""


@dataclass
class OutboxEntry:
    """A ``send`` not yet acknowledged: kept for a re-send with the same key."""

    conversation_id: str
    client_msg_id: str
    body: Any
    first_sent_mono: float
    attempts: int = 1


@dataclass
class ReconnectPolicy:
    """Exponential backoff with full jitter, capped, bounded in attempts and time."""

    base_s: float = 0.05
    cap_s: float = 1.0
    max_attempts: int = 100
    give_up_after_s: float = 60.0
    open_timeout_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in ``[0, min(cap, base * 2**attempt)]`` (AWS backoff)."""
        return random.uniform(0.0, min(self.cap_s, self.base_s * 2 ** min(attempt, 20)))


@dataclass
class ReconnectRecord:
    """One automatic reconnect: why it started, where it landed, what the server recovered."""

    t: float  # epoch seconds when the connection was lost
    close_code: int | None
    ok: bool
    url: str = ""
    node_id: str = ""
    attempts: int = 0
    downtime_s: float = 0.0
    recovered: dict[str, bool] = field(default_factory=dict)
    resent: int = 0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SendRecord:
    """One reply to a ``send`` (ack or error), for the traffic driver and the checker."""

    client_msg_id: str
    conversation_id: str
    kind: str  # "ack" or the error code
    wall: float
    message_id: int | None = None
    seq: int | None = None
    duplicate: bool = False
    latency_s: float = 0.0  # from the send to this reply


class DeviceClient:
    """One device: connection, recorded frames, last seq per conversation, outbox.

    With a :class:`ReconnectPolicy` the client reconnects by itself after a reconnectable
    close (see :func:`reconnectable`), trying ``urls`` in turn (fail-over to the next node),
    resumes from its last seq per conversation and re-sends its outbox with the same keys.
    """

    def __init__(
        self,
        alias: str,
        url: str,
        token: str,
        *,
        user_id: str = "",
        device_id: str = "",
        token_in: str = "hello",
    ) -> None:
        self.alias = alias
        self.url = url
        self.token = token
        self.user_id = user_id
        self.device_id = device_id
        self.token_in = token_in
        self.frames: list[Frame] = []
        self.connection_start = 0
        self.mark = 0
        self.last_seq: dict[str, int] = {}
        self.outbox: dict[str, OutboxEntry] = {}
        self.welcome: dict[str, Any] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.connections = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._refs = itertools.count(1)
        self._cmids = itertools.count(1)
        self.urls: list[str] = [url]
        self.policy: ReconnectPolicy | None = None
        self.reconnects: list[ReconnectRecord] = []
        #: ``(client_msg_id, conversation_id, body)`` of every new send, in first-send order.
        self.attempt_log: list[tuple[str, str, Any]] = []
        self.send_log: list[SendRecord] = []
        #: The ``resume`` map of every hello this client sent (empty when none was named).
        self.hello_resumes: list[dict[str, int]] = []
        self._closing = False
        self._reconnecting = False
        self._reconnector: asyncio.Task[None] | None = None

    # ----- state -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None and self.close_code is None and self._reader is not None

    def state(self) -> str:
        """``open`` or ``closed with 4001 slow consumer`` (for failure messages)."""
        if self._ws is None and self.connections == 0:
            return "never connected"
        if self.connected:
            return "open"
        return f"closed with {describe_close(self.close_code, self.close_reason)}"

    def context(self, last: int = 10) -> str:
        """Connection state plus the last frames this device saw."""
        return (
            f"connection of '{self.alias}': {self.state()}\n"
            f"last {last} frames '{self.alias}' saw (of {len(self.frames)}):\n"
            f"{format_frames(self.frames, last)}"
        )

    def next_ref(self, prefix: str = "r") -> str:
        return f"{prefix}{next(self._refs)}"

    def next_client_msg_id(self) -> str:
        return f"{self.device_id or self.alias}-m{next(self._cmids)}-{time.time_ns() % 10**9}"

    # ----- connecting ------------------------------------------------------------------------
    async def open(
        self, resume: Mapping[str, int] | bool | None = None, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Connect and say ``hello``; returns ``welcome`` or raises with the error frame.

        ``resume=True`` names every conversation's last seen seq; a mapping names its own.
        """
        await self.connect(timeout_s)
        hello: dict[str, Any] = {"type": "hello", "ref": self.next_ref("h")}
        if self.token_in == "hello":
            hello["token"] = self.token
        resume_map = dict(self.last_seq) if resume is True else dict(resume or {})
        if resume_map:
            hello["resume"] = resume_map
        self.hello_resumes.append(resume_map)
        reply = await self.request(hello, timeout_s)
        if reply.get("type") != "welcome":
            raise ClientError(
                f"'{self.alias}' expected welcome after hello, got {json.dumps(reply)}\n"
                + self.context()
            )
        self.welcome = reply
        return reply

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Open the WebSocket and start recording frames, without saying ``hello``."""
        if self.connected:
            raise ClientError(f"'{self.alias}' is already connected")
        self.attach(await self._dial(timeout_s))

    def attach(self, ws: ClientConnection) -> None:
        """Adopt an open WebSocket (one upgraded by hand) and record what it receives."""
        self._closing = False
        self._ws = ws
        self.connections += 1
        self.close_code, self.close_reason = None, ""
        self.connection_start = self.mark = len(self.frames)
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))

    @property
    def connection(self) -> ClientConnection | None:
        """The current WebSocket (for tests that write raw bytes or close it by hand)."""
        return self._ws

    @property
    def reader(self) -> asyncio.Task[None] | None:
        """The task recording received frames (cancelling it makes a device that stops reading)."""
        return self._reader

    async def _dial(self, timeout_s: float) -> ClientConnection:
        url, headers = self.url, {}
        if self.token_in == "header":
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.token_in == "query":
            url = f"{url}?token={self.token}"
        try:
            # permessage-deflate off: it triples memory per connection for nothing here.
            return await connect(
                url,
                additional_headers=headers,
                compression=None,
                open_timeout=timeout_s,
                max_size=2**24,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace")[:300] if exc.response.body else ""
            raise ConnectRefused(
                f"'{self.alias}' upgrade refused with HTTP {status}: {body}", status
            ) from None

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._record(raw)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = ws.close_code if ws.close_code is not None else 1006
            self.close_reason = ws.close_reason or ""
            closed = DeviceClosed(
                f"'{self.alias}' connection closed with "
                f"{describe_close(self.close_code, self.close_reason)}"
            )
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(closed)
            self._pending.clear()
            self._notify()
            if self._should_reconnect():
                loop = asyncio.get_running_loop()
                self._reconnector = loop.create_task(self._reconnect_loop(self.close_code))

    def _record(self, raw: str | bytes) -> None:
        mono, wall = time.monotonic(), time.time()
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = None
        frame = Frame(len(self.frames), data, text, mono, wall)
        self.frames.append(frame)
        if data is not None:
            self._apply(data)
        self._notify()

    def _apply(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "welcome" and self.policy is not None:
            self._track_conversations(data.get("conversations"))
        if kind == "message" and isinstance(data.get("seq"), int):
            conv = str(data.get("conversation_id"))
            self.last_seq[conv] = max(self.last_seq.get(conv, 0), data["seq"])
        if kind in REPLY_TYPES and isinstance(data.get("ref"), str):
            future = self._pending.pop(data["ref"], None)
            if future is not None and not future.done():
                future.set_result(data)

    def _track_conversations(self, conversations: Any) -> None:
        # A reconnect must name every conversation, also those not heard from yet: otherwise
        # the server would resume it from the stored cursor, which may lie behind the replay.
        if not isinstance(conversations, dict):
            return
        for conv, info in conversations.items():
            if isinstance(info, dict) and isinstance(info.get("from_seq"), int):
                self.last_seq.setdefault(str(conv), info["from_seq"])

    def _notify(self) -> None:
        # Waiters hold the old event; a fresh one is armed for the next frame.
        self._changed.set()
        self._changed = asyncio.Event()

    # ----- sending ---------------------------------------------------------------------------
    async def request(self, frame: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a command frame (a ``ref`` is added when missing) and return its reply."""
        ws = self._require_ws()
        ref = frame.setdefault("ref", self.next_ref())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            # The reader may not have recorded the close yet: report it the same way.
            self._pending.pop(ref, None)
            raise DeviceClosed(
                f"'{self.alias}' connection closed while sending {frame.get('type')} ref={ref}"
            ) from None
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            self._pending.pop(ref, None)
            raise ClientError(
                f"'{self.alias}' expected a reply to {frame.get('type')} ref={ref} within "
                f"{timeout_s:.1f} s, none came\n" + self.context()
            ) from None

    async def send_message(
        self,
        conversation_id: str,
        body: Any,
        client_msg_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """``send`` a message; returns the reply (``ack`` or ``error``), keeps the outbox."""
        cmid = client_msg_id or self.next_client_msg_id()
        entry = self.outbox.get(cmid)
        if entry is None:
            entry = OutboxEntry(conversation_id, cmid, body, time.monotonic(), 0)
            self.outbox[cmid] = entry
            self.attempt_log.append((cmid, conversation_id, body))
        entry.attempts += 1
        timing.mark_sent(conversation_id, cmid)
        frame = {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": cmid,
            "body": body,
        }
        started = time.monotonic()
        reply = await self.request(frame, timeout_s)
        self._log_reply(cmid, conversation_id, reply, time.monotonic() - started)
        if reply.get("type") == "ack" or not reply.get("retryable", False):
            # Acked, or refused for good: either way a re-send would not help.
            self.outbox.pop(cmid, None)
        return reply

    def _log_reply(
        self, cmid: str, conversation_id: str, reply: dict[str, Any], latency_s: float
    ) -> None:
        is_ack = reply.get("type") == "ack"
        self.send_log.append(
            SendRecord(
                cmid,
                conversation_id,
                "ack" if is_ack else str(reply.get("code")),
                time.time(),
                reply.get("message_id") if is_ack else None,
                reply.get("seq") if is_ack else None,
                bool(reply.get("duplicate")),
                round(latency_s, 4),
            )
        )

    async def resend_outbox(
        self, timeout_s: float = 10.0, stop_on_error: bool = False
    ) -> list[dict[str, Any]]:
        """Re-send every unacknowledged message with its original ``client_msg_id``.

        With ``stop_on_error`` the first reply that is not an ``ack`` ends the flush, so a
        later message is never stored before an earlier one still waiting for its retry (P3).
        """
        replies = []
        for entry in list(self.outbox.values()):
            reply = await self.send_message(
                entry.conversation_id, entry.body, entry.client_msg_id, timeout_s
            )
            replies.append(reply)
            if stop_on_error and reply.get("type") != "ack":
                break
        return replies

    async def send_raw(self, payload: str | bytes) -> None:
        """Send a frame exactly as given (text or binary), no ``ref`` bookkeeping."""
        await self._require_ws().send(payload)

    def _require_ws(self) -> ClientConnection:
        if self._ws is None or not self.connected:
            raise ClientError(f"'{self.alias}' is not connected ({self.state()})")
        return self._ws

    # ----- reconnecting ----------------------------------------------------------------------
    def enable_reconnect(
        self, urls: Sequence[str] | None = None, policy: ReconnectPolicy | None = None
    ) -> None:
        """Reconnect by itself from now on, trying ``urls`` in turn (default: the current URL)."""
        self.urls = list(urls or [self.url])
        self.url = self.urls[0] if self.url not in self.urls else self.url
        self.policy = policy or ReconnectPolicy()

    def _should_reconnect(self) -> bool:
        return (
            self.policy is not None
            and not self._closing
            and not self._reconnecting
            and may_reconnect(self.close_code)
        )

    async def _reconnect_loop(self, close_code: int | None) -> None:
        """Dial with backoff until hello succeeds, then resume and flush the outbox."""
        assert self.policy is not None
        policy, lost_wall, lost = self.policy, time.time(), time.monotonic()
        self._reconnecting = True
        record = ReconnectRecord(lost_wall, close_code, False)
        try:
            while not self._closing and record.attempts < policy.max_attempts:
                if time.monotonic() - lost > policy.give_up_after_s:
                    break
                await asyncio.sleep(policy.delay(record.attempts))
                record.attempts += 1
                if await self._reconnect_once(record, policy.open_timeout_s):
                    record.ok, record.downtime_s = True, round(time.monotonic() - lost, 3)
                    return
                # Fail over: the next attempt goes to the next node of the list.
                self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            record.error = record.error or "gave up"
        finally:
            self._reconnecting = False
            if not record.ok:
                record.downtime_s = round(time.monotonic() - lost, 3)
            self.reconnects.append(record)
            self._notify()

    async def _reconnect_once(self, record: ReconnectRecord, timeout_s: float) -> bool:
        """One attempt at ``self.url``: hello with resume, then the outbox in order."""
        try:
            welcome = await self.open(resume=True, timeout_s=timeout_s)
            replies = await self.resend_outbox(timeout_s * 2, stop_on_error=True)
        except (OSError, ClientError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
            record.error = f"{self.url}: {type(exc).__name__}: {str(exc)[:200]}"
            await self._discard()
            return False
        convs = welcome.get("conversations") or {}
        record.url, record.node_id = self.url, str(welcome.get("node_id", ""))
        record.recovered = {
            str(c): bool(i.get("recovered")) for c, i in convs.items() if isinstance(i, dict)
        }
        record.resent = len(replies)
        return True

    async def _discard(self) -> None:
        """Forget a half-open connection of a failed attempt (no reconnect from its reader)."""
        ws, reader = self._ws, self._reader
        self._ws = None
        if ws is not None:
            ws.transport.abort()
        if reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(reader), 2.0)

    def _settled(self) -> bool:
        return self.connected and not self._reconnecting

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until the connection is open and no reconnect is in progress."""
        if not await wait_until([self], self._settled, timeout_s):
            raise ClientError(
                f"'{self.alias}' expected to be connected within {timeout_s:.1f} s "
                f"(reconnects: {[r.as_dict() for r in self.reconnects[-3:]]})\n" + self.context()
            )

    async def wait_reconnects(self, count: int, timeout_s: float) -> ReconnectRecord:
        """Wait until ``count`` automatic reconnects ended; returns the last one."""
        if not await wait_until([self], lambda: len(self.reconnects) >= count, timeout_s):
            raise ClientError(
                f"'{self.alias}' expected {count} reconnect(s) within {timeout_s:.1f} s, "
                f"saw {len(self.reconnects)}; reconnecting now: {self._reconnecting}\n"
                + self.context()
            )
        return self.reconnects[count - 1]

    # ----- waiting ---------------------------------------------------------------------------
    def find(
        self, frame_type: str | None, fields: Mapping[str, Any], since: int | None = None
    ) -> list[Frame]:
        """Frames since ``since`` (default: the mark) that match."""
        start = self.mark if since is None else since
        return [f for f in self.frames[start:] if matches(f, frame_type, fields)]

    async def wait_for(
        self,
        frame_type: str | None,
        fields: Mapping[str, Any],
        timeout_s: float,
        since: int | None = None,
    ) -> Frame:
        """First matching frame since ``since`` (default: the mark), waiting ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        scan = self.mark if since is None else since
        while True:
            for frame in self.frames[scan:]:
                if matches(frame, frame_type, fields):
                    return frame
            scan = len(self.frames)
            remaining = deadline - loop.time()
            if remaining <= 0 or (self.close_code is not None and self._reader_done()):
                raise ClientError(
                    f"'{self.alias}' expected {describe_match(frame_type, fields)} within "
                    f"{timeout_s:.1f} s, saw none\n" + self.context()
                )
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def _reader_done(self) -> bool:
        return self._reader is None or self._reader.done()

    # ----- closing ---------------------------------------------------------------------------
    async def close(self, code: int = 1000, reason: str = "", timeout_s: float = 5.0) -> None:
        """Clean close handshake; waits for the reader to record the close."""
        self._closing = True  # an intentional close is never followed by a reconnect
        reconnector, self._reconnector = self._reconnector, None
        if reconnector is not None and not reconnector.done():
            reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reconnector
        ws, reader = self._ws, self._reader
        if ws is None:
            return
        await ws.close(code, reason)
        if reader is not None:
            await asyncio.wait_for(asyncio.shield(reader), timeout_s)
        self._ws = None

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (a phone losing its network)."""
        ws, reader = self._ws, self._reader
        if ws is None:
            return
        ws.transport.abort()
        if reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(reader), 5.0)
            except TimeoutError:
                reader.cancel()
        if self._ws is ws:  # a reconnect may already have opened a new connection
            self._ws = None


async def wait_until(
    clients: Iterable[DeviceClient], predicate: Callable[[], bool], timeout_s: float
) -> bool:
    """Waits on the loop until ``predicate()`` holds, checking it again whenever one of
    ``clients`` records a frame or changes state; returns whether it held in time.

    State that device clients change (acks, errors, frames) is judged here, on their loop,
    instead of a ``time.sleep`` poll from another thread.
    """
    watched = list(clients)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        waits = [asyncio.ensure_future(c._changed.wait()) for c in watched]
        try:
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
    return True
