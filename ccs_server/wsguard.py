"""RFC 6455 checks aiohttp leaves out, and a close that the client actually receives.

- A client frame that is not masked is refused with 1002 (section 5.1): aiohttp's parser
  accepts it.
- A frame announcing more than ``max_frame_bytes`` is refused with 1009 from its header, and the
  rest of it is read and discarded for a moment before the socket closes. Closing a socket with
  unread input makes the kernel send a reset, and the reset could destroy the close frame
  before the client read it: the client saw no close code at all.

:class:`GuardedWebSocketResponse` puts :class:`MaskGuard` in front of aiohttp's parser: it
follows frame boundaries in the byte stream (headers only, payloads are skipped) and fails the
connection exactly as the parser itself does for a reserved opcode.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, web

MASK_KEY_LEN = 4
LINGER_S = 0.5  # longest wait for the rest of a refused frame before the socket closes


class MaskGuard:
    """Byte-stream filter in front of aiohttp's ``WebSocketReader`` (same two methods)."""

    def __init__(self, parser: Any, queue: Any, max_frame: int) -> None:
        self._parser = parser
        self._queue = queue
        self._max_frame = max_frame
        self._head = bytearray()
        self._skip = 0
        #: set once a frame was refused: input is discarded from then on
        self.refused = False
        #: set once a refused frame has fully arrived
        self.settled = asyncio.Event()

    @property
    def mid_frame(self) -> bool:
        """True while the rest of a refused frame is still expected."""
        return self.refused and self._skip > 0

    def feed_eof(self) -> None:
        """End of stream: passed on."""
        self._parser.feed_eof()

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        """Check ``data``'s frame headers, then hand it to the real parser."""
        data = bytes(data)
        if self.refused:
            self._scan(data)  # only to know when the refused frame has fully arrived
            self._settle()
            return False, b""
        problem = self._scan(data)
        if problem is not None:
            self.refused = True
            self._queue.set_exception(WebSocketError(*problem))
            self._settle()
            return False, b""
        result: tuple[bool, bytes] = self._parser.feed_data(data)
        return result

    def _settle(self) -> None:
        if not self.mid_frame:
            self.settled.set()

    def _scan(self, data: bytes) -> tuple[int, str] | None:
        first: tuple[int, str] | None = None
        i, n = 0, len(data)
        while i < n:
            if self._skip:
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                continue
            self._head.append(data[i])
            i += 1
            problem = self._header_done()
            if first is None and not self.refused:
                first = problem
        return first

    def _header_done(self) -> tuple[int, str] | None:
        """Consume a complete frame header; the refusal it deserves, if any."""
        if len(self._head) < 2:
            return None
        masked = bool(self._head[1] & 0x80)
        size = self._head[1] & 0x7F
        ext = 2 if size == 126 else 8 if size == 127 else 0
        if len(self._head) < 2 + ext + (MASK_KEY_LEN if masked else 0):
            return None
        if ext:
            size = int.from_bytes(self._head[2 : 2 + ext], "big")
        self._skip = size
        self._head.clear()
        if not masked:
            return WSCloseCode.PROTOCOL_ERROR, "client frames must be masked"
        if size > self._max_frame:
            return WSCloseCode.MESSAGE_TOO_BIG, f"frame over {self._max_frame} bytes"
        return None


class GuardedWebSocketResponse(web.WebSocketResponse):
    """``WebSocketResponse`` whose incoming byte stream passes :class:`MaskGuard` first."""

    _guard: MaskGuard | None = None

    def _post_start(self, request: web.BaseRequest, protocol: Any, writer: Any) -> None:
        proto: Any = request.protocol
        # bytes that came with the upgrade request must be scanned too, from the first header
        tail, proto._message_tail = proto._message_tail, b""
        super()._post_start(request, protocol, writer)
        self._guard = MaskGuard(self._parser, self._reader, self._max_msg_size)
        proto._payload_parser = self._guard
        if tail:
            self._guard.feed_data(tail)

    async def linger(self) -> None:
        """Before the handler returns (which closes the socket): read the rest of a refused
        frame, at most ``LINGER_S``, so the close frame is not destroyed by a reset."""
        guard = self._guard
        if guard is not None and guard.mid_frame:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(guard.settled.wait(), LINGER_S)

    def _close_transport(self) -> None:
        """Close the socket; after a refused frame, once its rest has been read (bounded)."""
        guard = self._guard
        if guard is None or not guard.mid_frame:
            super()._close_transport()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_S

        def later() -> None:
            if guard.mid_frame and loop.time() < deadline:
                loop.call_later(0.01, later)
            else:
                super(GuardedWebSocketResponse, self)._close_transport()

        loop.call_later(0.01, later)
