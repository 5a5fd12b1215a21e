"""Reference CCS device client (asyncio), reusable outside Robot Framework.

One :class:`DeviceClient` is one device speaking docs/protocol.md over one WebSocket at a time.
It records every received frame with receive timestamps, keeps per conversation the last ``seq``
seen (for ``hello.resume``) and an outbox of sends not yet acknowledged (re-sent with the same
``client_msg_id`` after a reconnect), and answers ``wait_for`` queries over what it received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from . import timing
from .closecodes import describe_close
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


class DeviceClient:
    """One device: connection, recorded frames, last seq per conversation, outbox."""

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
        if self.connected:
            raise ClientError(f"'{self.alias}' is already connected")
        self._ws = await self._dial(timeout_s)
        self.connections += 1
        self.close_code, self.close_reason = None, ""
        self.connection_start = self.mark = len(self.frames)
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(self._ws))
        hello: dict[str, Any] = {"type": "hello", "ref": self.next_ref("h")}
        if self.token_in == "hello":
            hello["token"] = self.token
        resume_map = dict(self.last_seq) if resume is True else dict(resume or {})
        if resume_map:
            hello["resume"] = resume_map
        reply = await self.request(hello, timeout_s)
        if reply.get("type") != "welcome":
            raise ClientError(
                f"'{self.alias}' expected welcome after hello, got {json.dumps(reply)}\n"
                + self.context()
            )
        self.welcome = reply
        return reply

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
        if kind == "message" and isinstance(data.get("seq"), int):
            conv = str(data.get("conversation_id"))
            self.last_seq[conv] = max(self.last_seq.get(conv, 0), data["seq"])
        if kind in REPLY_TYPES and isinstance(data.get("ref"), str):
            future = self._pending.pop(data["ref"], None)
            if future is not None and not future.done():
                future.set_result(data)

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
        await ws.send(json.dumps(frame))
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
        entry.attempts += 1
        timing.mark_sent(conversation_id, cmid)
        frame = {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": cmid,
            "body": body,
        }
        reply = await self.request(frame, timeout_s)
        if reply.get("type") == "ack" or not reply.get("retryable", False):
            # Acked, or refused for good: either way a re-send would not help.
            self.outbox.pop(cmid, None)
        return reply

    async def resend_outbox(self, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Re-send every unacknowledged message with its original ``client_msg_id``."""
        replies = []
        for entry in list(self.outbox.values()):
            replies.append(
                await self.send_message(
                    entry.conversation_id, entry.body, entry.client_msg_id, timeout_s
                )
            )
        return replies

    async def send_raw(self, payload: str | bytes) -> None:
        """Send a frame exactly as given (text or binary), no ``ref`` bookkeeping."""
        await self._require_ws().send(payload)

    def _require_ws(self) -> ClientConnection:
        if self._ws is None or not self.connected:
            raise ClientError(f"'{self.alias}' is not connected ({self.state()})")
        return self._ws

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
        self._ws = None
