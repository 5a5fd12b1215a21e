"""The ``/ws`` endpoint: upgrade checks, the ``hello`` handshake and the command loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from . import PROTOCOL_VERSION
from . import validate as v
from .auth import Identity, authenticate
from .commands import HANDLERS
from .errors import CloseCode, WireError, bad_request
from .frames import dumps
from .limits import TokenBucket, loads_strict, safe_ref, top_level_string
from .node import NODE_KEY, Node
from .session import Session
from .wsguard import GuardedWebSocketResponse

log = logging.getLogger("ccs.ws")

CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class Reject(Exception):
    """Refuse the connection: an error frame (if any) then a close code."""

    def __init__(self, error: WireError | None, code: int, ref: Any = None) -> None:
        super().__init__(code)
        self.error, self.code, self.ref = error, code, ref


def parse(text: str) -> dict[str, Any]:
    """Decode one text frame into a command dict with a valid ``ref`` and string ``type``."""
    frame = loads_strict(text)  # NaN, lone surrogates, deep nesting: refused at the edge
    if not isinstance(frame, dict):
        raise WireError("invalid_json", "frame must be a JSON object")
    ref = frame.get("ref")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
        raise bad_request("ref must be a string of 1-64 characters")
    if not isinstance(frame.get("type"), str):
        raise WireError("bad_request", "type must be a string", ref=ref)
    return frame


def ref_of(text: str) -> Any:
    """Best-effort ``ref`` of a frame that failed validation (None if unknowable).

    A frame too deep (or otherwise too odd) for the decoder still has a readable top-level
    ``ref``: the client matches the error to its command only if it is echoed.
    """
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        ref = top_level_string(text, "ref")
    else:
        ref = frame.get("ref") if isinstance(frame, dict) else None
    # an unencodable ref echoed in the error frame would kill the connection's writer
    return safe_ref(ref)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade checks (origin, token, caps) then the connection's life."""
    node = request.app[NODE_KEY]
    s = node.settings
    origin = request.headers.get("Origin")
    if s.allowed_origins and origin is not None and origin not in s.allowed_origins:
        return _http_error(403, "forbidden", "origin not allowed")
    identity = None
    token = _upgrade_token(request)
    if token is not None:
        try:
            identity = await authenticate(s, node.store, token)
        except WireError as err:
            # 401 for a bad token; a database outage is 503 (retryable), not the client's fault
            status = err.http_status if err.retryable else 401
            return _http_error(status, err.code, err.message)
        if node.hub.connections_of(identity.user_id) >= s.max_connections_per_user:
            return _http_error(429, "rate_limited", "too many connections for this user")
    # aiohttp refuses a message whose size *equals* max_msg_size; §7-c refuses only larger ones
    # (the guard already refuses a frame over max_frame_bytes from its header).
    ws = GuardedWebSocketResponse(  # refuses unmasked client frames (1002)
        autoping=False, max_msg_size=s.max_frame_bytes + 1, compress=False, timeout=2.0
    )
    await ws.prepare(request)
    await Connection(node, ws, identity).run()
    await ws.linger()  # a refused oversize frame: let the client read its 1009 first
    return ws


def _upgrade_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query.get("token")


def _http_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "retryable": status in (429, 503)}, status=status
    )


def hello_gate(node: Node) -> asyncio.Semaphore:
    """At most ``db_pool_size`` hellos do their database work at once; the rest wait here.

    A hello makes several queries in a row; in a burst of thousands the pool's own queue grows
    until waiting for a connection outlasts the database deadline, and welcomed devices are then
    closed with 1012 because their presence write timed out. Waiting at this gate does not count
    against any deadline, so a burst is served at the pool's pace instead of being refused."""
    if node.hello_gate is None:
        node.hello_gate = asyncio.Semaphore(max(1, node.settings.db_pool_size))
    return node.hello_gate


class Connection:
    """One WebSocket from upgrade to close."""

    def __init__(self, node: Node, ws: web.WebSocketResponse, identity: Identity | None) -> None:
        self.node = node
        self.ws = ws
        self.identity = identity
        self.last_rx = time.monotonic()
        self.session: Session | None = None

    async def run(self) -> None:
        """Handshake, then commands until the socket closes; always clean up."""
        beat = asyncio.create_task(self._heartbeat())
        try:
            self.session = await self._handshake()
            if self.session is not None:
                await self._serve(self.session)
        except Reject as rej:
            await self._reject(rej)
        except Exception:
            log.exception("connection failed")
        finally:
            beat.cancel()
            if self.session is not None:
                sess = self.session
                if sess.closed and not sess.writer.done():
                    # let the queued error frame and close frame go out first
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(sess.writer), 3.0)
                self._cleanup(sess)
            if not self.ws.closed:
                with contextlib.suppress(Exception):
                    await self.ws.close()

    async def _reject(self, rej: Reject) -> None:
        with contextlib.suppress(Exception):
            if rej.error is not None:
                self.node.metrics.errors.labels(rej.error.code).inc()
                await self.ws.send_str(dumps(rej.error.frame(rej.ref)))
            await self.ws.close(code=rej.code, message=b"")

    async def _heartbeat(self) -> None:
        """Ping every interval; silence past the timeout means the peer is gone: 4004."""
        s = self.node.settings
        interval, timeout = s.heartbeat_interval_ms / 1000, s.heartbeat_timeout_ms / 1000
        while not self.ws.closed:
            await asyncio.sleep(min(interval, timeout / 2))
            if time.monotonic() - self.last_rx > timeout:
                log.info("heartbeat timeout")
                if self.session is not None:
                    self.session.abort(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                else:
                    await self.ws.close(code=CloseCode.HEARTBEAT_TIMEOUT)
                return
            with contextlib.suppress(Exception):
                await self.ws.ping()

    async def _receive(self, wait_s: float | None = None) -> str | None:
        """Next text frame; None when the socket closes. Answers pings itself."""
        while True:
            msg = await self.ws.receive(timeout=wait_s)
            self.last_rx = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                return msg.data  # type: ignore[no-any-return]
            if msg.type == WSMsgType.PING:
                await self.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                continue
            elif msg.type == WSMsgType.BINARY:
                raise WireError("binary_not_supported", "binary frames are not supported")
            elif msg.type in CLOSING:
                return None

    # ---- handshake ------------------------------------------------------------------------
    async def _handshake(self) -> Session | None:
        s = self.node.settings
        deadline = time.monotonic() + s.auth_timeout_ms / 1000
        try:
            text = await self._receive(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise Reject(None, CloseCode.AUTH_TIMEOUT) from None
        except WireError as err:
            raise Reject(err, CloseCode.BAD_REQUEST) from None
        if text is None:
            return None
        try:
            frame = parse(text)
        except WireError as err:
            raise Reject(err, CloseCode.BAD_REQUEST, err.extra.pop("ref", ref_of(text))) from None
        ref = frame["ref"]
        if frame["type"] != "hello":
            raise Reject(
                WireError("not_authenticated", "send hello first"), CloseCode.BAD_REQUEST, ref
            )
        async with hello_gate(self.node):
            return await self._hello(frame, ref)

    async def _hello(self, frame: dict[str, Any], ref: str) -> Session:
        node, s = self.node, self.node.settings
        resume = frame.get("resume", {})
        if resume is None:
            resume = {}
        if not isinstance(resume, dict) or not all(
            isinstance(k, str) and type(val) is int and 0 <= val <= v.MAX_SEQ
            for k, val in resume.items()
        ):
            raise Reject(
                bad_request("resume must map conversation ids to integers 0..2^63-1"),
                CloseCode.BAD_REQUEST,
                ref,
            )
        identity = self.identity
        if "token" in frame or identity is None:
            try:
                identity = await authenticate(s, node.store, frame.get("token"))
            except WireError as err:
                code = (
                    CloseCode.TOKEN_EXPIRED
                    if err.code == "token_expired"
                    else CloseCode.AUTH_FAILED
                )
                if err.code == "unavailable":
                    code = CloseCode.SERVICE_RESTART
                raise Reject(err, code, ref) from None
        assert identity is not None and identity.device_id is not None
        if node.hub.connections_of(identity.user_id) >= s.max_connections_per_user:
            raise Reject(
                WireError("rate_limited", "too many connections for this user"),
                CloseCode.TOO_MANY_CONNECTIONS,
                ref,
            )
        try:
            return await self._start_session(identity, identity.device_id, ref, resume)
        except WireError as err:
            # e.g. the database went away mid-hello: say so, and let the client come back
            code = CloseCode.SERVICE_RESTART if err.retryable else CloseCode.BAD_REQUEST
            raise Reject(err, code, ref) from None

    async def _start_session(
        self, ident: Identity, device: str, ref: str, resume: dict[str, int]
    ) -> Session:
        node, s, hub = self.node, self.node.settings, self.node.hub
        states = await node.store.session_state(ident.user_id, device)
        sess = Session(hub, self.ws, uuid.uuid4().hex, ident.user_id, device, s.send_queue_max)
        hub.register(sess, {st.conversation_id: st.edit_seq for st in states})
        try:
            return await self._open_session(sess, ident, device, ref, resume, states)
        except BaseException:
            # not handed to run() yet, so run()'s cleanup would never forget it
            sess.writer.cancel()
            self._cleanup(sess)
            raise

    async def _open_session(
        self,
        sess: Session,
        ident: Identity,
        device: str,
        ref: str,
        resume: dict[str, int],
        states: list[Any],
    ) -> Session:
        node, s, hub = self.node, self.node.settings, self.node.hub
        # read heads again after registering: anything committed later is notified to us
        heads = await node.store.heads([st.conversation_id for st in states]) if states else {}
        convs: dict[str, dict[str, Any]] = {}
        starts: dict[str, int] = {}
        for st in states:
            info, start = _resume_info(
                st.head_seq,
                resume.get(st.conversation_id),
                st.delivered_upto,
                s.replay_limit,
                st.join_seq,
            )
            convs[st.conversation_id] = info
            starts[st.conversation_id] = start
        for conv in resume:
            if conv not in convs:
                convs[conv] = {"recovered": False, "reason": "forbidden"}
        sess.push(
            dumps(
                {
                    "type": "welcome",
                    "ref": ref,
                    "protocol": PROTOCOL_VERSION,
                    "node_id": s.node_id,
                    "session_id": sess.id,
                    "user_id": ident.user_id,
                    "device_id": device,
                    "heartbeat_interval_ms": s.heartbeat_interval_ms,
                    "limits": {
                        "max_frame_bytes": s.max_frame_bytes,
                        "max_body_bytes": s.max_body_bytes,
                        "send_rate_per_s": s.send_rate_per_s,
                        "history_limit_max": 100,
                    },
                    "conversations": convs,
                }
            )
        )
        for conv, start in starts.items():
            cur = sess.convs[conv]
            cur.pos, cur.busy = start, False
            sess.catch_up(conv, max(cur.target, heads.get(conv, 0)))
        try:
            await hub.device_online(sess)
        except Exception as exc:
            # The welcome is out, so an outage now must not end the session; the lease keeper
            # stores the presence again once the database answers.
            log.warning(
                "could not store or broadcast presence",
                extra={"device_id": device, "error": type(exc).__name__},
            )
        delay = ident.expires_at - time.time()
        sess.expiry = asyncio.get_running_loop().call_later(max(0.0, delay), self._expire, sess)
        log.info(
            "session started",
            extra={"user_id": ident.user_id, "device_id": device, "session": sess.id},
        )
        return sess

    def _expire(self, sess: Session) -> None:
        if not sess.closed:
            sess.push(dumps(WireError("token_expired", "token expired").frame(None)))
            sess.close(CloseCode.TOKEN_EXPIRED, "token expired")

    # ---- command loop -----------------------------------------------------------------------
    async def _serve(self, sess: Session) -> None:
        bucket = TokenBucket(self.node.settings.send_rate_per_s)
        while not sess.closed:
            try:
                text = await self._receive()
            except WireError as err:
                self._error(sess, err, None)
                continue
            if text is None:
                return
            if sess.closed or self.node.hub.draining:
                # never run a command whose ack could not be sent: the client retries it elsewhere
                sess.close(CloseCode.SERVICE_RESTART, "service restart")
                return
            wait = bucket.take()
            if wait:
                self._error(
                    sess,
                    WireError(
                        "rate_limited", "too many frames", retry_after_ms=int(wait * 1000) + 1
                    ),
                    ref_of(text),
                )
                if bucket.strikes > bucket.rate:
                    sess.close(CloseCode.RATE_LIMITED, "rate limited repeatedly")
                continue
            sess.in_command = True
            try:
                await self._command(sess, text)
            finally:
                sess.in_command = False
            if self.node.hub.draining:
                # graceful shutdown: the ack is queued, close after it (see shutdown.py)
                sess.close(CloseCode.SERVICE_RESTART, "service restart")

    async def _command(self, sess: Session, text: str) -> None:
        ref = None
        try:
            frame = parse(text)
            ref = frame["ref"]
            kind = frame["type"]
            handler = HANDLERS.get(kind)
            if handler is None:
                if kind == "hello":
                    raise bad_request("already authenticated")
                raise WireError("unknown_type", "unknown frame type")
            fields = await handler(self.node.hub, sess, frame)
            sess.push(dumps({"type": "ack", "ref": ref, "for": kind, **fields}))
        except WireError as err:
            self._error(sess, err, err.extra.pop("ref", ref if ref is not None else ref_of(text)))
        except Exception:
            log.exception("command failed")
            self._error(sess, WireError("internal", "unexpected server error"), ref)

    def _error(self, sess: Session, err: WireError, ref: Any) -> None:
        self.node.metrics.errors.labels(err.code).inc()
        sess.push(dumps(err.frame(ref)))

    def _cleanup(self, sess: Session) -> None:
        sess.closed = True
        if sess.expiry is not None:
            sess.expiry.cancel()
        hub = self.node.hub
        if hub.unregister(sess):
            hub.device_gone(sess)
        if not sess.writer.done():
            sess.writer.cancel()
        for task in list(sess.tasks):
            task.cancel()
        log.info("session ended", extra={"session": sess.id, "close_code": self.ws.close_code})


def _resume_info(
    head: int, resume: int | None, delivered: int, limit: int, joined: int = 0
) -> tuple[dict[str, Any], int]:
    """The welcome entry of one conversation and the seq after which replay starts.

    Replay never starts before ``joined`` (the head when the user became a member): messages
    from before it were never the member's to receive, so they are not "missed" either.
    """
    if resume is not None and resume > head:
        return {
            "head_seq": head,
            "from_seq": head,
            "recovered": False,
            "reason": "seq_ahead_of_head",
        }, head
    start = resume if resume is not None else min(delivered, head)
    start = max(start, min(joined, head))
    if head - start > limit:
        start = head - limit
        return {
            "head_seq": head,
            "from_seq": start,
            "recovered": False,
            "reason": "too_many_missed",
            "truncated": True,
            "oldest_available_seq": start + 1,
        }, start
    return {"head_seq": head, "from_seq": start, "recovered": True}, start
