"""One authenticated device connection: outbound queue, writer task and per-conversation cursors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import CloseCode, WireError
from .frames import message_frame

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("ccs.session")

REPLAY_PAGE = 500
_CLOSING: set[asyncio.Future[bool]] = set()


class Cursor:
    """Delivery state of one conversation on one session.

    ``pos`` is the last seq pushed. While ``busy`` (replay or gap fetch in progress) live traffic
    only raises ``target``, so the fetch task delivers everything in order, then live resumes.
    """

    __slots__ = ("busy", "pending_updates", "pos", "target")

    def __init__(self, pos: int, busy: bool) -> None:
        self.pos = pos
        self.target = pos
        self.busy = busy
        self.pending_updates: dict[int, str] = {}


class Session:
    """An authenticated connection of one device."""

    def __init__(
        self,
        hub: Hub,
        ws: web.WebSocketResponse,
        session_id: str,
        user_id: str,
        device_id: str,
        queue_max: int,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.id = session_id
        self.user_id = user_id
        self.device_id = device_id
        self.convs: dict[str, Cursor] = {}
        self.closed = False
        self.close_code: int | None = None
        self.queue: asyncio.Queue[str | tuple[int, str]] = asyncio.Queue(queue_max)
        # set while the queue is at most half full: replay waits for it (see _replay_room)
        self.room = asyncio.Event()
        self.room.set()
        self.writer = asyncio.create_task(self._write_loop(), name=f"writer-{session_id}")
        self.tasks: set[asyncio.Task[None]] = set()
        self.connected_at = time.monotonic()
        self.expiry: asyncio.TimerHandle | None = None
        # True while a command runs: graceful shutdown lets it finish and queue its ack first
        self.in_command = False

    # ---- outbound -------------------------------------------------------------------------
    def push(self, text: str) -> None:
        """Queue a frame; a full queue means a slow consumer: close it with 4001."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.hub.metrics.slow_consumers.inc()
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (e.g. an error frame) have been written."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        try:
            self.queue.put_nowait((code, reason))
        except asyncio.QueueFull:
            self.closed = False
            self.abort(code, reason)

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping queued frames (the queue itself is the problem)."""
        if self.closed and self.close_code is not None and self.writer.done():
            return
        self.closed = True
        self.close_code = code
        self.writer.cancel()
        # not a session task: cleanup cancels those, and this close must still happen
        task = asyncio.ensure_future(self.ws.close(code=code, message=reason.encode()))
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)

    async def _write_loop(self) -> None:
        ws = self.ws
        try:
            while True:
                item = await self.queue.get()
                if self.queue.qsize() < max(1, self.queue.maxsize // 2):
                    self.room.set()
                if isinstance(item, str):
                    try:
                        await ws.send_str(item)
                    except UnicodeEncodeError:
                        # one unencodable frame must not kill the writer and stall the connection
                        log.warning(
                            "frame not encodable as UTF-8, dropped", extra={"session": self.id}
                        )
                    continue
                await ws.close(code=item[0], message=item[1].encode())
                return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
        except Exception:
            log.exception("writer failed", extra={"session": self.id})

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background task owned by this session (kept referenced until done)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- delivery -------------------------------------------------------------------------
    def offer(self, conv: str, seq: int, frame: str | None) -> None:
        """A committed message ``seq`` exists: push it, drop it, or fetch the gap before it."""
        cur = self.convs.get(conv)
        if cur is None or self.closed:
            return
        if cur.busy:
            cur.target = max(cur.target, seq)
            return
        if seq <= cur.pos:
            return  # already delivered on this connection: never twice
        if seq == cur.pos + 1 and frame is not None:
            self.push(frame)
            cur.pos = seq
            cur.target = max(cur.target, seq)
            return
        self.catch_up(conv, seq)

    def offer_update(self, conv: str, seq: int, frame: str) -> None:
        """An edit/delete: only for messages this connection has already been sent."""
        cur = self.convs.get(conv)
        if cur is None or self.closed:
            return
        if cur.busy:
            cur.pending_updates[seq] = frame
        elif seq <= cur.pos:
            self.push(frame)
        # seq > pos: the message itself will be fetched later, already in its current version

    def catch_up(self, conv: str, target: int) -> None:
        """Fetch and push ``pos+1 .. target`` from the database (replay, gap or repair)."""
        cur = self.convs.get(conv)
        if cur is None or self.closed:
            return
        cur.target = max(cur.target, target)
        if cur.busy or cur.pos >= cur.target:
            return
        cur.busy = True
        self.spawn(self._catch_up(conv, cur))

    async def _replay_room(self) -> None:
        """Replay fills at most half the send queue and then waits for the writer: a backlog
        the server chose to send is paced, not an overflow closing the client with 4001."""
        high = max(1, self.queue.maxsize // 2)
        while self.queue.qsize() >= high and not self.closed:
            self.room.clear()
            await self.room.wait()

    async def _catch_up(self, conv: str, cur: Cursor) -> None:
        store = self.hub.store
        try:
            while cur.pos < cur.target and not self.closed:
                rows = await store.fetch_range(conv, cur.pos, cur.target, REPLAY_PAGE)
                if self.convs.get(conv) is not cur:
                    break  # the member was removed during the fetch: not one more message
                if not rows:
                    cur.pos = cur.target  # a hole (explicit seq typed by hand): nothing to send
                    break
                for row in rows:
                    await self._replay_room()
                    if self.convs.get(conv) is not cur:
                        return  # removed while waiting
                    self.push(message_frame(row))
                    cur.pos = row["seq"]
        except WireError:
            log.warning(
                "catch-up failed; the repair sweep retries",
                extra={"session": self.id, "conversation_id": conv},
            )
        except Exception:
            log.exception("catch-up failed", extra={"session": self.id, "conversation_id": conv})
        finally:
            cur.busy = False
            pending, cur.pending_updates = cur.pending_updates, {}
            for seq in sorted(pending):
                if seq <= cur.pos:
                    self.push(pending[seq])
