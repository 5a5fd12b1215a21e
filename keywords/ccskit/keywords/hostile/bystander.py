"""Keywords: a bystander that must notice nothing while hostile input hits the server."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from ...client import DeviceClient, wait_until
from ...context import KitContext
from ...hostile import Bystander, HostileSession, hostile_token
from ...percentile import percentile
from ...rawws import OP_TEXT, RawWebSocket
from .raw import conversation_head

FIVE_S = timedelta(seconds=5)
REMOVAL_KEYWORD = (
    'No Message Of "${conversation}" Should Follow The Removal At "${alias}"'
    " Within ${seconds} Seconds"
)


class BystanderKeywords:
    """The *bystander* (`Start Bystander`) is a watcher device plus a talker sending a steady
    trickle into the same conversation during the whole barrage; `Bystander Should Have
    Received Everything` proves it saw every message of the conversation once, in order."""

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self.session: HostileSession = ctx.hostile

    def _run(self, coro: Any, timeout: float) -> Any:
        return self.ctx.loop.run(coro, timeout + 5.0)

    @keyword
    def start_bystander(
        self,
        conversation: str,
        watcher: str,
        talker: str,
        interval: timedelta = timedelta(milliseconds=100),
    ) -> None:
        """Connects ``watcher`` and ``talker`` (device fixtures) and starts the trickle."""
        conv = self.ctx.fixtures.conversation(conversation)
        clients = []
        for name in (watcher, talker):
            user, dev = self.ctx.fixtures.device(name)
            token = hostile_token("valid", user, dev)
            self.session.tokens.append(token)
            clients.append(
                DeviceClient(name, self.ctx.target.ws_url, token, user_id=user, device_id=dev)
            )
        bystander = Bystander(conv, clients[0], clients[1], interval.total_seconds())
        self.session.bystander = bystander
        self._run(bystander.start(self.ctx.scaled(10.0)), self.ctx.scaled(10.0))
        self.session.checked_trickle = 0

    @keyword
    def bystander_should_have_received_everything(self, timeout: timedelta = FIVE_S) -> int:
        """The watcher received every message of its conversation up to the stored head, once
        each and in order; the trickle kept being acknowledged. Returns the head."""
        by = self.session.by()
        head = conversation_head(self.ctx, by.conversation)
        seconds = self.ctx.scaled(timeout)
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
        checked = self.session.checked_trickle

        def progressed() -> bool:
            return len(by.trickle.acked) > checked

        waited = wait_until([by.talker], progressed, seconds)
        if not self._run(waited, seconds):
            raise AssertionError("the trickle made no progress since the last check")
        self.session.checked_trickle = len(by.trickle.acked)
        return head

    @keyword
    def bystander_latency_mark(self) -> float:
        """A point in time for `Bystander Max Latency Since`."""
        return time.monotonic()

    @keyword
    def bystander_max_latency_since(self, mark: float) -> float:
        """Worst send-to-watcher latency (ms) of trickle messages sent after ``mark``."""
        values = self.session.by().latencies_ms(float(mark))
        if not values:
            raise AssertionError("no trickle message reached the bystander since the mark")
        worst = max(values)
        logger.info(
            f"bystander latency over {len(values)} messages: p50 {percentile(values, 50)} ms, "
            f"max {worst} ms"
        )
        return worst

    @keyword
    def bystander_copy_of_seq(self, seq: int, timeout: timedelta = FIVE_S) -> str:
        """Waits until the watcher received message ``seq``; returns its body as JSON text."""
        by, seconds = self.session.by(), self.ctx.scaled(timeout)
        self._run(by.wait_for_seq(int(seq), seconds), seconds)
        got = by.watcher.find("message", {"conversation_id": by.conversation, "seq": int(seq)}, 0)
        return json.dumps((got[0].data or {}).get("body"), ensure_ascii=False)

    @keyword
    def stop_bystander(self) -> None:
        """Stops the trickle and closes the bystander's devices."""
        if self.session.bystander is not None:
            self._run(self.session.bystander.stop(), 15.0)
            self.session.bystander = None

    @keyword(REMOVAL_KEYWORD)
    def no_message_should_follow_removal(self, conversation: str, alias: str, seconds: str) -> None:
        """While the trickle goes on for ``seconds``, device ``alias`` (one of `Connect Device`)
        receives no message of ``conversation`` after its ``member_removed`` frame."""
        client = self.ctx.devices.client(alias)
        conv = self.ctx.fixtures.conversation(conversation)
        acked = len(self.session.by().trickle.acked)
        # The window itself is the test: traffic must flow meanwhile, on the loop.
        self._run(asyncio.sleep(float(seconds)), float(seconds))
        if len(self.session.by().trickle.acked) <= acked:
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
        conv = self.ctx.fixtures.conversation(conversation)
        conn = RawWebSocket(ws_url)
        self.session.raw[f"{device}@other"] = conn
        user_id, device_id = self.ctx.fixtures.device(device)
        token = hostile_token("valid", user_id, device_id)
        self.session.tokens.append(token)
        hello: dict[str, Any] = {"type": "hello", "ref": "h"}
        hello.update(token=token, resume={conv: conversation_head(self.ctx, conv)})
        self._run(conn.connect(), 10.0)
        self._run(conn.send_text(json.dumps(hello)), 5.0)
        before = self._run(self._frames_until(conn, conv, "message", 5.0), 5.0)
        if not before:
            raise AssertionError(f"'{device}' got no live message from the node at {ws_url}")
        self.ctx.api.remove_member(conv, self.ctx.fixtures.user(user))
        if not self._run(self._frames_until(conn, conv, "member_removed", 5.0), 5.0):
            raise AssertionError(f"'{device}' got no member_removed from the node at {ws_url}")
        acked = len(self.session.by().trickle.acked)
        late = self._run(self._frames_until(conn, conv, "message", window), window)
        if late:
            raise AssertionError(f"'{device}' received after its removal: {late}")
        if len(self.session.by().trickle.acked) <= acked:
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
