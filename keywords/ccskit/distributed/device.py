"""One device of a distributed run: the kit's lean connection plus what a long run needs.

:class:`DeviceConnection` extends :class:`ccskit.load.LeanConnection` (hello, background reader,
fire-and-forget sends, the per-message records the checker reads) with

* refusals retried as the protocol says: an upgrade answered 503/429, or a ``hello`` answered with
  a retryable error (``unavailable``, ``rate_limited``) is a *refusal*, retried with the kit's
  backoff (:class:`ccskit.client.ReconnectPolicy`) and counted apart from failures;
* reconnect after a close the protocol allows (:func:`ccskit.client.reconnectable`), resuming every
  conversation from the last seq received and re-sending unanswered sends with the same key;
* the scheduled send time carried in the body (``t``, epoch seconds) so a receiver on another
  worker computes the delivery latency without the sender's records;
* a source address to bind (``127.0.0.2`` …) so one client host opens more than one address's
  worth of source ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..client import ReconnectPolicy
from ..closecodes import may_reconnect
from ..load import Closed, LeanConnection, Received

try:  # about ten times faster than json.loads on a message frame; optional
    from orjson import loads
except ImportError:  # pragma: no cover - the standard parser gives the same values
    from json import loads  # type: ignore[assignment]

if TYPE_CHECKING:
    from .fleet import WorkerFleet

#: HTTP statuses of the upgrade that mean "come back later" (protocol section 3).
RETRY_STATUSES = frozenset({429, 503})


class Refused(Exception):
    """The server said *retry* (HTTP 503/429 on the upgrade, or a retryable hello error)."""


class Failed(Exception):
    """The server said *no* (or the connection broke) and retrying will not help."""


@dataclass(slots=True)
class Outcome:
    """How getting one device online went."""

    ok: bool
    attempts: int
    refusals: int
    errors: int
    seconds: float
    last_error: str = ""


class DeviceConnection(LeanConnection):
    """A lean connection that retries refusals, reconnects, resumes and confirms delivery."""

    __slots__ = (
        "acked_receipts",
        "last_seq",
        "policy",
        "receipted",
        "reconnects",
        "slot_conversation",
        "source_address",
        "url",
    )

    def __init__(
        self,
        fleet: WorkerFleet,
        device: Any,
        url: str,
        source_address: str | None,
        conversation_id: str | None,
        policy: ReconnectPolicy,
    ) -> None:
        super().__init__(fleet, device)
        self.url = url
        self.source_address = source_address
        self.slot_conversation = conversation_id
        self.policy = policy
        self.last_seq: dict[str, int] = {}
        self.receipted: dict[str, int] = {}
        self.reconnects = 0
        self.acked_receipts = 0

    @property
    def fleet(self) -> WorkerFleet:
        run: WorkerFleet = self.run  # type: ignore[assignment]
        return run

    # ----- getting online ----------------------------------------------------------------------
    async def go_online(self, timeout_s: float) -> Outcome:
        """Connect until welcomed: refusals and network errors retried with backoff (bounded)."""
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        refusals = errors = attempt = 0
        last = ""
        while attempt < self.policy.max_attempts:
            attempt += 1
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                await self._dial(min(remaining, self.policy.open_timeout_s * 2), remaining)
                return Outcome(True, attempt, refusals, errors, time.perf_counter() - t0, last)
            except Refused as exc:
                refusals, last = refusals + 1, str(exc)
            except Failed as exc:
                return Outcome(False, attempt, refusals, errors, time.perf_counter() - t0, str(exc))
            except Exception as exc:  # network, timeout, a handshake cut short: try again
                errors, last = errors + 1, f"{type(exc).__name__}: {exc}"[:160]
            await self._discard()
            await asyncio.sleep(self.policy.delay(attempt))
        return Outcome(False, attempt, refusals, errors, time.perf_counter() - t0, last)

    async def _dial(self, timeout_s: float, welcome_s: float) -> None:
        # The upgrade gets ``timeout_s``; the welcome may take up to ``welcome_s``: a server
        # that queues hellos in a burst answers late, and giving up and dialling again would put
        # a second hello at the back of the queue behind the first (congestion collapse).
        extra: dict[str, Any] = {}
        if self.source_address:
            extra["local_addr"] = (self.source_address, 0)
        try:
            # ping_interval=None: the server pings us and answering is automatic and cheap
            self.ws = await connect(
                self.url,
                compression=None,
                ping_interval=None,
                open_timeout=timeout_s,
                max_size=2**20,
                close_timeout=2,
                **extra,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in RETRY_STATUSES:
                raise Refused(f"upgrade answered HTTP {status}") from None
            raise Failed(f"upgrade answered HTTP {status}") from None
        hello: dict[str, Any] = {"type": "hello", "ref": "h", "token": self.device.token}
        if self.last_seq:
            hello["resume"] = dict(self.last_seq)
        await self.ws.send(json.dumps(hello))
        async with asyncio.timeout(max(timeout_s, welcome_s)):
            while True:
                frame = json.loads(await self.ws.recv())
                kind = frame.get("type")
                if kind == "welcome":
                    break
                if kind == "error":
                    text = f"hello answered {frame.get('code')}: {frame.get('message')}"
                    raise (Refused if frame.get("retryable") else Failed)(text)
        self.opened_at = time.time()
        self.closed = None
        self._reader = asyncio.create_task(self._read(), name=f"read-{self.device.device_id}")

    async def _discard(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        self.ws = None

    # ----- frames ------------------------------------------------------------------------------
    async def _read(self) -> None:
        # the kit's reader (LeanConnection._read) with a faster JSON parser: parsing is most of
        # what the instrument adds to the WebSocket library's own cost per delivered frame
        ws = self.ws
        assert ws is not None
        on_frame, clock = self._on_frame, time.perf_counter
        try:
            async for raw in ws:
                on_frame(loads(raw), clock())
        except ConnectionClosed:
            pass
        except Exception as exc:  # a frame the kit cannot read: stop, and say why
            self._record_close(f"reader failed: {exc!r}")
            raise
        self._record_close(ws.close_reason or "")

    def _on_frame(self, frame: dict[str, Any], t: float) -> None:
        if frame.get("type") == "message":
            self._on_message(frame, t)
            return
        kind = frame.get("type")
        if kind in ("ack", "error") and str(frame.get("ref", "")).startswith("r"):
            self.fleet.on_receipt_answer(kind == "ack", frame)
            return
        if kind == "ack" and frame.get("for") == "send":
            record = self.run.pending.get((self.device.device_id, frame.get("ref")))
            if record is not None:
                self.fleet.on_ack(t - record.t_sent, record)
        elif kind == "error":
            record = self.run.pending.get((self.device.device_id, frame.get("ref")))
            if record is not None:
                self.fleet.on_send_error(str(frame.get("code")), record)
        super()._on_frame(frame, t)

    def _on_message(self, frame: dict[str, Any], t: float) -> None:
        """The kit's record of a delivery (as ``LeanConnection`` keeps it), the resume point and
        the latency from the scheduled time in the body, in one pass (this runs per delivery)."""
        conv, seq = frame["conversation_id"], frame["seq"]
        sender, cmid = frame.get("sender_device_id") or "", frame.get("client_msg_id") or ""
        self.received.append(Received(conv, seq, frame["message_id"], sender, cmid, t))
        if seq > self.last_seq.get(conv, 0):
            self.last_seq[conv] = seq
        fleet = self.run
        fleet.delivered += 1
        body = frame.get("body")
        if type(body) is dict and "t" in body:
            # latency from the scheduled time, counted per whole ms for Locust (fleet.py)
            counts = fleet._deliveries  # type: ignore[attr-defined]
            ms = int((t + fleet.epoch_offset - body["t"]) * 1000 + 0.5)
            counts[ms] = counts.get(ms, 0) + 1
        record = fleet.by_key.get((sender, cmid))
        if record is not None:
            record.deliveries += 1
            fleet.phase_delivered[record.phase] += 1

    async def send_receipt(self, serial: int) -> None:
        """Confirm delivery up to the last seq received in every conversation that moved."""
        ws = self.ws
        if ws is None or self.closed is not None:
            return
        for conv, seq in list(self.last_seq.items()):
            if self.receipted.get(conv, 0) >= seq:
                continue
            self.receipted[conv] = seq
            frame = {
                "type": "receipt",
                "ref": f"r{serial}",
                "conversation_id": conv,
                "kind": "delivered",
                "seq": seq,
            }
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(frame, separators=(",", ":")))

    # ----- losing the connection ---------------------------------------------------------------
    def _record_close(self, reason: str) -> None:
        if not self._wanted or self.closed is not None:
            return
        code = self.ws.close_code if self.ws is not None else None
        self.closed = Closed(self.device.device_id, code, reason, time.time())
        self.run.closes.append(self.closed)
        if may_reconnect(code) and self.fleet.running:
            asyncio.get_running_loop().create_task(self._come_back())

    async def _come_back(self) -> None:
        outcome = await self.go_online(self.policy.give_up_after_s)
        self.fleet.on_reconnect(self, outcome)
        if outcome.ok:
            self.reconnects += 1
            await self.fleet.resend_unanswered(self)
