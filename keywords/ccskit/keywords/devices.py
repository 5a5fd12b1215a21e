"""Keywords: many named device clients on the kit's background asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from .. import timing
from ..client import ClientError, ConnectRefused, DeviceClient, ReconnectPolicy
from ..closecodes import describe_close
from ..context import KitContext
from ..frames import Frame, describe_match, format_frames
from ..percentile import latency_summary
from ..tokens import mint_token

FIVE_S = timedelta(seconds=5)
ONE_S = timedelta(seconds=1)


class DeviceKeywords:
    """Named CCS device clients (``alice-phone``, ``bob-tablet`` …) over real WebSockets.

    All connections live on the kit's one asyncio loop, running in a daemon thread, so
    heartbeats, presence and background receive keep going during ``Sleep`` or database
    keywords. Every received frame is recorded per device with its receive time (monotonic
    and wall clock); the wait keywords search what a device received since its *mark* (set
    by `Connect Device` and moved by `Mark Frames`).

    Devices are named by their fixture name (see `Create Device`); the name is
    resolved to the real unique ids, and a device token is minted locally. Conversation
    arguments take a fixture name or a real id.

    Failure messages say what was expected, the timeout, and the last frames the device saw
    with the connection state and close code spelled out, e.g. ``closed with 4001 slow
    consumer``. Timeouts are multiplied by ``CCS_TIMEOUT_SCALE``.

    | `Connect Device`  | alice-phone |
    | ${ack}=           | `Send Message` | alice-phone | team-room | hello |
    | `Wait For Frame`  | bob-tablet | message | seq=${ack}[seq] | timeout=5s |
    | `Close All Devices` |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._logged: dict[str, int] = {}

    # ----- helpers ---------------------------------------------------------------------------
    def _run(self, coro: Any, timeout: float) -> Any:
        try:
            return self.ctx.loop.run(coro, timeout + 5.0)
        finally:
            self._flush_log()

    def _device(self, alias: str) -> DeviceClient:
        return self.ctx.devices.client(alias)

    def _flush_log(self) -> None:
        # Frames arrive on the loop thread; they are logged here, from Robot's thread.
        for alias, client in self.ctx.devices.clients.items():
            start = self._logged.get(alias, 0)
            new = client.frames[start:]
            if new:
                logger.debug(f"'{alias}' received:\n{format_frames(new, len(new))}")
                self._logged[alias] = start + len(new)

    def _acked(self, alias: str, reply: dict[str, Any], what: str) -> dict[str, Any]:
        """``reply`` when it is an ack, else a failure naming ``what`` and the device's frames."""
        if reply.get("type") != "ack":
            raise AssertionError(
                f"'{alias}' expected an ack for {what}, got {json.dumps(reply)}\n"
                f"{self._device(alias).context()}"
            )
        return reply

    def _conv(self, conversation: str) -> str:
        return self.ctx.fixtures.conversation(conversation)

    @staticmethod
    def _body(body: Any) -> Any:
        return {"text": body} if isinstance(body, str) else body

    # ----- connecting ------------------------------------------------------------------------
    @keyword
    def connect_device(
        self,
        alias: str,
        resume: bool | dict[str, int] = False,
        timeout: timedelta = FIVE_S,
        user_id: str | None = None,
        device_id: str | None = None,
        token: str | None = None,
        token_in: str = "hello",
        url: str = "",
    ) -> dict[str, Any]:
        """Connects device ``alias`` and completes ``hello``; returns the ``welcome`` frame.

        ``alias`` is a device fixture name; ``user_id``, ``device_id`` and ``token`` override the
        fixture. With ``resume=True`` the hello names, per conversation, the last seq this
        device already saw (reconnect); a dictionary names its own ``{conversation: seq}``;
        otherwise the server resumes from the stored cursor. ``token_in`` is ``hello``,
        ``header`` or ``query``. ``url`` (a WebSocket URL) connects to another server or node
        than the server under test, also for a device that was connected elsewhere before.

        | ${welcome}= | Connect Device | alice-phone |
        | Connect Device | bob-tablet | resume=${True} |
        """
        client = self.ctx.devices.get(alias)
        if client is None:
            if user_id is None or device_id is None:
                user_id, device_id = self.ctx.fixtures.device(alias)
            client = DeviceClient(
                alias,
                self.ctx.target.ws_url,
                token or mint_token(user_id, device_id),
                user_id=user_id,
                device_id=device_id,
                token_in=token_in,
            )
            self.ctx.devices.add(client)
            self._logged[alias] = 0
        if url:
            client.url = url
        seconds = self.ctx.scaled(timeout)
        welcome = self._run(client.open(resume=resume, timeout_s=seconds), seconds)
        logger.info(f"'{alias}' connected as {client.device_id}: {json.dumps(welcome)[:400]}")
        return welcome

    @keyword
    def connect_device_expecting_failure(
        self,
        alias: str,
        timeout: timedelta = FIVE_S,
        user_id: str | None = None,
        device_id: str | None = None,
        token: str | None = None,
        token_in: str = "hello",
        resume: bool | dict[str, int] = False,
    ) -> str:
        """Tries to connect and expects refusal; returns how, e.g. ``HTTP 401`` or
        ``auth_failed, closed with 4501 authentication failed``. Fails if a welcome comes.

        | ${how}= | Connect Device Expecting Failure | alice-phone | token=garbage |
        | Should Start With | ${how} | auth_failed |
        """
        try:
            welcome = self.connect_device(
                alias, resume, timeout, user_id, device_id, token, token_in
            )
        except ConnectRefused as exc:
            return f"HTTP {exc.status}"
        except ClientError:
            client = self._device(alias)
            self.device_close_code(alias, timeout)
            errors = client.find("error", {}, since=client.connection_start)
            code = (errors[-1].data or {}).get("code") if errors else "no error frame"
            return f"{code}, {client.state()}"
        raise AssertionError(
            f"'{alias}' expected the connection to be refused, got welcome {json.dumps(welcome)}"
        )

    @keyword
    def disconnect_device(self, alias: str, timeout: timedelta = FIVE_S) -> None:
        """Closes the connection of ``alias`` cleanly (close code 1000). Recorded frames stay."""
        client = self._device(alias)
        seconds = self.ctx.scaled(timeout)
        self._run(client.close(1000, "bye", seconds), seconds)

    @keyword
    def drop_device(self, alias: str) -> None:
        """Drops the TCP connection of ``alias`` without a close frame (network loss)."""
        self._run(self._device(alias).abort(), 5.0)

    @keyword
    def close_all_devices(self) -> None:
        """Closes every device connection and forgets all devices (teardown keyword)."""
        for alias, client in list(self.ctx.devices.clients.items()):
            try:
                self._run(client.close(1000, "teardown", 5.0), 5.0)
            except Exception as exc:  # teardown must close the rest even if one fails
                logger.warn(f"closing '{alias}' failed: {exc}")
        self.ctx.devices.clients.clear()
        self._logged.clear()

    # ----- reconnecting (Phase 3) ---------------------------------------------------------------
    @keyword
    def connect_resilient_device(
        self,
        alias: str,
        *nodes: str,
        resume: bool = True,
        timeout: timedelta = FIVE_S,
        backoff_cap: timedelta = ONE_S,
    ) -> dict[str, Any]:
        """Connects ``alias`` to the first of ``nodes`` and lets it reconnect by itself.

        ``nodes`` are node names (`Start Reference Node`, ``node-1``) or URLs; after a
        reconnectable close (1001/1006/1011/1012, 4000-4499) the client dials again with
        exponential backoff and full jitter (capped at ``backoff_cap``), moving to the next
        node after each failed attempt, resumes from its last seq per conversation and
        re-sends its outbox with the same ``client_msg_id``. A device already known keeps its
        frames and seqs: connecting it again (``resume=True``) is a reconnect to another
        node. Returns the ``welcome``.

        | Connect Resilient Device | alice-laptop | node-1 | node-2 |
        """
        urls = [self.ctx.nodes.ws_url(n) for n in nodes] or [self.ctx.target.ws_url]
        client = self.ctx.devices.get(alias)
        if client is None:
            user_id, device_id = self.ctx.fixtures.device(alias)
            client = DeviceClient(
                alias, urls[0], mint_token(user_id, device_id), user_id=user_id,
                device_id=device_id,
            )  # fmt: skip
            self.ctx.devices.add(client)
            self._logged[alias] = 0
        client.url = urls[0]
        client.enable_reconnect(urls, ReconnectPolicy(cap_s=self.ctx.scaled(backoff_cap)))
        seconds = self.ctx.scaled(timeout)
        welcome = self._run(client.open(resume=resume, timeout_s=seconds), seconds)
        logger.info(f"'{alias}' connected to {urls[0]} (fail-over {urls[1:]}): {welcome}"[:600])
        return welcome

    @keyword
    def wait_for_reconnect(
        self, alias: str, count: int = 1, timeout: timedelta = timedelta(seconds=20)
    ) -> dict[str, Any]:
        """Waits until ``alias`` ended automatic reconnect number ``count``; returns it and
        fails if it did not succeed.

        The record: ``t`` (epoch of the loss), ``close_code``, ``ok``, ``url``, ``node_id``,
        ``attempts``, ``downtime_s``, ``recovered`` (``{conversation: bool}`` from the
        welcome), ``resent`` (outbox entries re-sent), ``error``.

        | ${r}= | Wait For Reconnect | alice-laptop |
        | Should Be Equal | ${r}[node_id] | node-2 |
        """
        client = self._device(alias)
        seconds = self.ctx.scaled(timeout)
        record = self._run(client.wait_reconnects(count, seconds), seconds).as_dict()
        logger.info(f"'{alias}' reconnect {count}: {record}")
        if not record["ok"]:
            raise AssertionError(f"'{alias}' expected reconnect {count} to succeed: {record}")
        self.ctx.metrics.add_samples("reconnect_downtime_s", [record["downtime_s"]], "s")
        return record

    @keyword
    def disable_reconnect(self, alias: str) -> None:
        """From now on ``alias`` stays closed when its connection is lost (a dead phone)."""
        self._device(alias).policy = None

    @keyword
    def device_reconnects(self, alias: str) -> list[dict[str, Any]]:
        """Every automatic reconnect of ``alias`` so far (see `Wait For Reconnect`)."""
        return [r.as_dict() for r in self._device(alias).reconnects]

    @keyword
    def wait_until_device_connected(self, alias: str, timeout: timedelta = FIVE_S) -> str:
        """Waits until ``alias`` is connected and no reconnect is running; returns the node id
        of its welcome."""
        client = self._device(alias)
        seconds = self.ctx.scaled(timeout)
        self._run(client.wait_connected(seconds), seconds)
        return self.device_node_id(alias)

    @keyword
    def device_node_id(self, alias: str) -> str:
        """``node_id`` of the welcome of the current connection of ``alias``."""
        welcome = self._device(alias).welcome or {}
        return str(welcome.get("node_id", ""))

    # ----- sending ---------------------------------------------------------------------------
    @keyword
    def send_message(
        self,
        alias: str,
        conversation: str,
        body: Any,
        client_msg_id: str | None = None,
        timeout: timedelta = FIVE_S,
    ) -> dict[str, Any]:
        """Sends a message and waits for its ``ack``; returns the ack (``message_id``, ``seq``).

        A string ``body`` is sent as ``{"text": body}``. Fails if the reply is an ``error``.

        | ${ack}= | Send Message | alice-phone | team-room | hello |
        | Should Be Equal As Integers | ${ack}[seq] | 1 |
        """
        reply = self.send_message_expecting_reply(alias, conversation, body, client_msg_id, timeout)
        return self._acked(alias, reply, f"its send to '{conversation}'")

    @keyword
    def send_message_expecting_reply(
        self,
        alias: str,
        conversation: str,
        body: Any,
        client_msg_id: str | None = None,
        timeout: timedelta = FIVE_S,
    ) -> dict[str, Any]:
        """Sends a message and returns the reply as is (``ack`` or ``error``)."""
        client = self._device(alias)
        seconds = self.ctx.scaled(timeout)
        coro = client.send_message(
            self._conv(conversation), self._body(body), client_msg_id, seconds
        )
        return self._run(coro, seconds)

    @keyword
    def send_command(
        self, alias: str, command: str, timeout: timedelta = FIVE_S, **fields: Any
    ) -> dict[str, Any]:
        """Sends any command frame (``ref`` added) and returns its reply (``ack`` or ``error``).

        ``conversation_id`` may be a fixture name. Numeric strings stay strings: use
        ``${3}`` for numbers.

        | ${reply}= | Send Command | bob-tablet | receipt | conversation_id=team-room |
        | ...       | kind=read | seq=${2} |
        """
        client = self._device(alias)
        frame: dict[str, Any] = {"type": command, **fields}
        if "conversation_id" in frame:
            frame["conversation_id"] = self._conv(str(frame["conversation_id"]))
        seconds = self.ctx.scaled(timeout)
        return self._run(client.request(frame, seconds), seconds)

    @keyword
    def send_receipt(
        self, alias: str, conversation: str, kind: str, seq: int, timeout: timedelta = FIVE_S
    ) -> dict[str, Any]:
        """Sends a ``delivered`` or ``read`` receipt up to ``seq``; returns the ack.

        | ${ack}= | Send Receipt | bob-tablet | team-room | read | 3 |
        """
        reply = self.send_command(
            alias, "receipt", timeout, conversation_id=conversation, kind=kind, seq=seq
        )
        return self._acked(alias, reply, f"receipt {kind} seq={seq} in '{conversation}'")

    @keyword
    def send_raw(self, alias: str, payload: str) -> None:
        """Sends ``payload`` as one text frame exactly as given (hostile input)."""
        self._run(self._device(alias).send_raw(payload), 5.0)

    @keyword
    def resend_outbox(self, alias: str, timeout: timedelta = FIVE_S) -> list[dict[str, Any]]:
        """Re-sends every unacknowledged message with its original ``client_msg_id``."""
        seconds = self.ctx.scaled(timeout)
        return self._run(self._device(alias).resend_outbox(seconds), seconds * 10)

    # ----- observing -------------------------------------------------------------------------
    @keyword
    def mark_frames(self, alias: str) -> None:
        """From now on, waits and checks for ``alias`` only look at frames received later."""
        client = self._device(alias)
        client.mark = len(client.frames)

    @keyword
    def wait_for_frame(
        self, alias: str, frame_type: str, timeout: timedelta = FIVE_S, **fields: Any
    ) -> dict[str, Any]:
        """Waits until ``alias`` received a ``frame_type`` frame with the given field values.

        Fields match by equality; Robot's strings also match JSON numbers (``seq=3``),
        booleans (``recovered=true``) and null; dotted names reach inside (``body.text=hi``).
        ``frame_type`` ``*`` matches any type. Frames already received since the mark count.

        | ${frame}= | Wait For Frame | bob-tablet | presence | user_id=${alice} | status=online |
        """
        client = self._device(alias)
        fields = self._resolve_fields(fields)
        seconds = self.ctx.scaled(timeout)
        frame: Frame = self._run(client.wait_for(frame_type, fields, seconds), seconds)
        return dict(frame.data or {})

    @keyword
    def wait_for_message(
        self, alias: str, conversation: str, seq: int, timeout: timedelta = FIVE_S
    ) -> dict[str, Any]:
        """Waits for the ``message`` frame with ``seq`` in ``conversation``; returns it."""
        return self.wait_for_frame(
            alias, "message", timeout, conversation_id=self._conv(conversation), seq=seq
        )

    @keyword
    def should_not_receive_frame(
        self, alias: str, frame_type: str, window: timedelta = ONE_S, **fields: Any
    ) -> None:
        """Fails if ``alias`` receives a matching frame within ``window`` (or did since the mark).

        | Should Not Receive Frame | carol-phone | message | window=1s | conversation_id=team-room |
        """
        client = self._device(alias)
        fields = self._resolve_fields(fields)
        seconds = self.ctx.scaled(window)
        try:
            frame: Frame = self._run(client.wait_for(frame_type, fields, seconds), seconds)
        except ClientError:
            return  # nothing matching arrived: that is the expectation
        raise AssertionError(
            f"'{alias}' expected no {describe_match(frame_type, fields)} within "
            f"{seconds:.1f} s, but received {frame.short()}\n{client.context()}"
        )

    @keyword
    def received_frames(
        self, alias: str, frame_type: str = "*", **fields: Any
    ) -> list[dict[str, Any]]:
        """Frames ``alias`` received since its mark that match (all of them by default)."""
        client = self._device(alias)
        self._flush_log()
        return [dict(f.data or {}) for f in client.find(frame_type, self._resolve_fields(fields))]

    @keyword
    def received_seqs(self, alias: str, conversation: str) -> list[int]:
        """The ``seq`` of every ``message`` frame of ``conversation`` since the mark, in order."""
        conv = self._conv(conversation)
        frames = self._device(alias).find("message", {"conversation_id": conv})
        return [int((f.data or {})["seq"]) for f in frames]

    @keyword
    def messages_should_be_received_in_order(
        self, alias: str, conversation: str, first: int, last: int, timeout: timedelta = FIVE_S
    ) -> None:
        """Waits for seq ``last`` then checks ``alias`` saw exactly ``first`` to ``last`` once each.

        Fails on a gap, a duplicate or a seq out of order, listing what was received.

        | Messages Should Be Received In Order | bob-phone | team-room | 1 | 5 |
        """
        try:
            self.wait_for_message(alias, conversation, last, timeout)
        except ClientError as exc:
            seen = self.received_seqs(alias, conversation)
            raise AssertionError(
                f"'{alias}' expected seqs {first}..{last} of '{conversation}', saw {seen}\n{exc}"
            ) from None
        seen = self.received_seqs(alias, conversation)
        expected = list(range(first, last + 1))
        if seen != expected:
            raise AssertionError(
                f"'{alias}' expected seqs {expected} of '{conversation}' exactly once and in "
                f"order, saw {seen} ({describe_seq_problems(seen, expected)})\n"
                f"{self._device(alias).context()}"
            )

    @keyword
    def no_duplicate_message_should_arrive(self, alias: str, window: timedelta = ONE_S) -> None:
        """Watches ``alias`` for the whole ``window``, then fails if any ``message`` seq of a
        conversation arrived more than once since the mark.

        An in-order check passes the moment the last seq arrives; this one also catches a
        duplicate that comes later (a replay after a reconnect, a second fan-out).

        | `Messages Should Be Received In Order` | bob-phone | team-room | 1 | 5 |
        | No Duplicate Message Should Arrive | bob-phone | window=2s |
        """
        client = self._device(alias)
        seconds = self.ctx.scaled(window)
        self._run(asyncio.sleep(seconds), seconds)
        seen: dict[tuple[str, int], list[Frame]] = {}
        for frame in client.find("message", {}):
            data = frame.data or {}
            key = (str(data.get("conversation_id")), int(data.get("seq", 0)))
            seen.setdefault(key, []).append(frame)
        doubled = [
            f"seq {seq} of '{conv}' {len(frames)} times "
            f"(frames {', '.join(f'#{f.index}' for f in frames)})"
            for (conv, seq), frames in sorted(seen.items())
            if len(frames) > 1
        ]
        if doubled:
            raise AssertionError(
                f"'{alias}' expected each message once, but by the end of a {seconds:.1f} s "
                f"window received {'; '.join(doubled)}\n{client.context()}"
            )
        logger.info(f"'{alias}' received {len(seen)} messages, none twice, in {seconds:.1f} s")

    @keyword
    def delivery_latency(
        self,
        alias: str,
        conversation: str,
        client_msg_id: str,
        timeout: timedelta = FIVE_S,
        metric: str = "delivery_latency_ms",
    ) -> float:
        """Milliseconds from the send of ``client_msg_id`` to its arrival at ``alias``.

        Waits for the message, then records the figure with the metrics recorder as sample
        ``metric``.

        | ${ms}= | Delivery Latency | bob-tablet | team-room | ${ack}[client_msg_id] |
        """
        self._flush_log()
        return measure_delivery(self.ctx, alias, conversation, client_msg_id, timeout, metric)

    @keyword
    def record_delivery_latencies(
        self,
        conversation: str,
        client_msg_ids: list[str],
        devices: list[str],
        limit_ms: float = 1000.0,
        timeout: timedelta = FIVE_S,
    ) -> dict[str, float]:
        """Latency of every message at every device: records samples, p50/max metrics; fails
        when the worst exceeds ``limit_ms``. Returns ``{count, p50_ms, p95_ms, p99_ms, max_ms}``
        (nearest-rank percentiles).

        | Record Delivery Latencies | team-room | ${SENT_IDS} | ${devices} | limit_ms=1000 |
        """
        values = [
            self.delivery_latency(device, conversation, cmid, timeout)
            for device in devices
            for cmid in client_msg_ids
        ]
        summary = latency_summary(values)
        self.ctx.metrics.record("delivery_latency_p50_ms", summary["p50_ms"], "ms")
        self.ctx.metrics.record("delivery_latency_p95_ms", summary["p95_ms"], "ms")
        self.ctx.metrics.record("delivery_latency_max_ms", summary["max_ms"], "ms", limit_ms, "<=")
        if summary["max_ms"] > limit_ms:
            raise AssertionError(
                f"expected every delivery to {', '.join(devices)} within {limit_ms:.0f} ms, "
                f"worst was {summary['max_ms']:.1f} ms ({summary})"
            )
        return summary

    @keyword
    def last_seq_seen(self, alias: str, conversation: str) -> int:
        """The highest seq of ``conversation`` this device has received (0 if none)."""
        return self._device(alias).last_seq.get(self._conv(conversation), 0)

    @keyword
    def outbox_size(self, alias: str) -> int:
        """How many sends of ``alias`` are not acknowledged yet."""
        return len(self._device(alias).outbox)

    @keyword
    def device_close_code(self, alias: str, timeout: timedelta = FIVE_S) -> str:
        """Waits for the connection of ``alias`` to close; returns e.g. ``4001 slow consumer``."""
        client = self._device(alias)
        seconds = self.ctx.scaled(timeout)
        with contextlib.suppress(ClientError):  # wait_for returns early once closed
            self._run(client.wait_for("__closed__", {}, seconds), seconds)
        if client.close_code is None:
            raise AssertionError(
                f"'{alias}' expected its connection to close within {seconds:.1f} s, "
                f"it is still open\n{client.context()}"
            )
        return describe_close(client.close_code, client.close_reason)

    @keyword
    def device_ids(self, alias: str) -> dict[str, str]:
        """``{user_id, device_id}`` of a connected device."""
        client = self._device(alias)
        return {"user_id": client.user_id, "device_id": client.device_id}

    def _resolve_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        if "conversation_id" in fields:
            fields = {**fields, "conversation_id": self._conv(str(fields["conversation_id"]))}
        return fields


def measure_delivery(
    ctx: KitContext,
    alias: str,
    conversation: str,
    client_msg_id: str,
    timeout: timedelta,
    metric: str = "delivery_latency_ms",
) -> float:
    """Waits until device ``alias`` received ``client_msg_id``; records and returns the
    milliseconds from its send (shared by the single-node and cross-node latency keywords)."""
    conv = ctx.fixtures.conversation(conversation)
    sent = timing.sent_at(conv, client_msg_id)
    if sent is None:
        raise AssertionError(f"no send of client_msg_id '{client_msg_id}' was recorded")
    client = ctx.devices.client(alias)
    seconds = ctx.scaled(timeout)
    fields = {"conversation_id": conv, "client_msg_id": client_msg_id}
    frame: Frame = ctx.loop.run(client.wait_for("message", fields, seconds, since=0), seconds + 5)
    latency_ms = round((frame.mono - sent) * 1000.0, 3)
    ctx.metrics.add_samples(metric, [latency_ms], "ms")
    seq = (frame.data or {}).get("seq")
    logger.info(f"'{alias}' received seq {seq} {latency_ms:.1f} ms after its send")
    return latency_ms


def describe_seq_problems(seen: list[int], expected: list[int]) -> str:
    """Names the gaps, duplicates and reorderings between ``seen`` and ``expected``."""
    problems = []
    missing = sorted(set(expected) - set(seen))
    dupes = sorted({s for s in seen if seen.count(s) > 1})
    extra = sorted(set(seen) - set(expected))
    if missing:
        problems.append(f"missing {missing}")
    if dupes:
        problems.append(f"duplicated {dupes}")
    if extra:
        problems.append(f"unexpected {extra}")
    if not problems and seen != sorted(seen):
        problems.append("out of order")
    return ", ".join(problems) or "differs"
