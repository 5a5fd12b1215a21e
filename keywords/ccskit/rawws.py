"""A WebSocket client written by hand on a TCP socket, for frames no library will send.

Proper client libraries refuse to send an unmasked client frame, a reserved opcode, invalid
UTF-8 in a text frame or a frame over the peer's limit; a hostile-input suite needs exactly
those (RFC 6455 sections 5.1-5.6). This module builds the upgrade request and every frame
byte by byte and reads the server's answer: the HTTP status of the upgrade, frames, and the
close code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
MAX_READ = 16 * 1024 * 1024  # never buffer more than this from one server frame


class RawWsError(AssertionError):
    """The server did not answer as a WebSocket server would (or not in time)."""


@dataclass
class ServerFrame:
    """One frame read from the server."""

    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None when absent or not a close frame)."""
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])

    def text(self) -> str:
        """Payload decoded as UTF-8 (replacement characters for bad bytes)."""
        return self.payload.decode("utf-8", "replace")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    length_override: int | None = None,
) -> bytes:
    """One frame's bytes. ``mask=False`` makes the unmasked client frame servers must refuse;
    ``rsv`` sets the RSV1-3 bits (0-7); ``length_override`` announces a length other than the
    payload's (a header promising an oversize frame)."""
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    length = len(payload) if length_override is None else length_override
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame."""
    return struct.pack("!H", code) + reason.encode()


@dataclass
class RawWebSocket:
    """One hand-made WebSocket connection (asyncio streams)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    status: int = 0
    response_body: bytes = b""
    frames: list[ServerFrame] = field(default_factory=list)
    #: an unconnected socket to use (e.g. with a small SO_RCVBUF); None: a default one
    sock: socket.socket | None = None

    async def connect(self, timeout_s: float = 5.0) -> int:
        """Open TCP and send the upgrade; return the HTTP status (101 when upgraded)."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if self.sock is not None:
            self.sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(self.sock, (host, port)), timeout_s)
            opening = asyncio.open_connection(sock=self.sock)
        else:
            opening = asyncio.open_connection(host, port)
        reader, writer = await asyncio.wait_for(opening, timeout_s)
        self.reader, self.writer = reader, writer
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        if self.status != 101:
            self.response_body = await self._read_body(header_lines, timeout_s)
        return self.status

    async def _read_body(self, header_lines: list[str], timeout_s: float) -> bytes:
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if not length or self.reader is None:
            return b""
        return await asyncio.wait_for(self.reader.readexactly(length), timeout_s)

    async def send_bytes(self, data: bytes) -> None:
        """Write ``data`` to the socket exactly as given."""
        writer = self._require_writer()
        writer.write(data)
        # the server may close as soon as it has seen enough; the close is the answer
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def send_while_reading(self, data: bytes, timeout_s: float = 10.0) -> int | None:
        """Send ``data`` while reading the answer; returns the close code (None: no close
        frame before the connection ended). For frames the server rejects part-way."""
        closing = asyncio.ensure_future(self.wait_close(timeout_s))
        await self.send_bytes(data)
        return await closing

    async def send_frame(self, opcode: int, payload: bytes, **options: object) -> None:
        """Build a frame with :func:`encode_frame` options and send it."""
        await self.send_bytes(encode_frame(opcode, payload, **options))  # type: ignore[arg-type]

    async def send_text(self, text: str) -> None:
        """A well-formed masked text frame."""
        await self.send_frame(OP_TEXT, text.encode())

    async def read_frame(self, timeout_s: float = 5.0) -> ServerFrame | None:
        """The next server frame; None when the TCP connection ended."""
        reader = self.reader
        if reader is None:
            raise RawWsError("not connected")
        try:
            head = await asyncio.wait_for(reader.readexactly(2), timeout_s)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            if length > MAX_READ:
                raise RawWsError(f"server announced a {length}-byte frame")
            payload = await asyncio.wait_for(reader.readexactly(length), timeout_s)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        frame = ServerFrame(head[0] & 0x0F, payload, bool(head[0] & 0x80))
        self.frames.append(frame)
        return frame

    async def wait_close(self, timeout_s: float = 5.0) -> int | None:
        """Read until the server's close frame; return its code (None: TCP ended without one).

        Raises :class:`RawWsError` when neither happens within ``timeout_s``.
        """
        done = next((f for f in self.frames if f.opcode == OP_CLOSE), None)
        if done is not None:
            return done.close_code
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise RawWsError(f"the server did not close within {timeout_s:.1f} s")
            try:
                frame = await self.read_frame(left)
            except TimeoutError:
                raise RawWsError(f"the server did not close within {timeout_s:.1f} s") from None
            if frame is None:
                return None
            if frame.opcode == OP_CLOSE:
                return frame.close_code

    def texts(self) -> list[str]:
        """Text payloads received so far (error frames before a close, for example)."""
        return [f.text() for f in self.frames if f.opcode == OP_TEXT]

    async def close(self) -> None:
        """Drop the TCP connection (no close handshake: the socket may already be closed)."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 2.0)
            self.writer = None

    def _require_writer(self) -> asyncio.StreamWriter:
        if self.writer is None:
            raise RawWsError("not connected")
        return self.writer
