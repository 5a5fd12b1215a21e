"""REST API (protocol.md section 8): fixtures, messages, status, presence, health, metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import validate as v
from .auth import Identity, authenticate, verify_token
from .commands import edit_outcome, send_outcome
from .errors import WireError, bad_request, forbidden
from .frames import dumps, iso, message_dict
from .limits import loads_strict
from .node import NODE_KEY, Node
from .openapi import OPENAPI

log = logging.getLogger("ccs.rest")
routes = web.RouteTableDef()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Map WireError to ``{code, message, retryable}`` with its HTTP status; never leak a trace."""
    try:
        return await handler(request)
    except WireError as err:
        return _json(err.body(), err.http_status)
    except web.HTTPException as exc:
        return _http_exception(exc)
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return _json(WireError("internal", "unexpected server error").body(), 500)


# aiohttp's own refusals (routing, body size), answered in the documented error shape
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed on this endpoint"),
    413: ("too_large", "request body too large"),
}


def _http_exception(exc: web.HTTPException) -> web.StreamResponse:
    """The JSON error for an aiohttp HTTP exception (re-raised if it is not an error)."""
    known = HTTP_ERRORS.get(exc.status)
    if known is None:
        if exc.status < 400:
            raise exc
        known = ("bad_request", exc.reason) if exc.status < 500 else ("internal", exc.reason)
    resp = _json(WireError(*known).body(), exc.status)
    if "Allow" in exc.headers:
        resp.headers["Allow"] = exc.headers["Allow"]
    return resp


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


def _token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        raise WireError("not_authenticated", "Authorization: Bearer <token> required")
    return auth[7:].strip()


def _identity(request: web.Request) -> Identity:
    s = _node(request).settings
    return verify_token(_token(request), s.token_secret, s.token_issuer, s.token_audience)


def _admin(request: web.Request) -> Identity:
    ident = _identity(request)
    if not ident.admin:
        raise WireError("forbidden", "admin token required")
    return ident


async def _device(request: web.Request) -> Identity:
    node = _node(request)
    return await authenticate(node.settings, node.store, _token(request))


async def _body(request: web.Request) -> dict[str, Any]:
    # parameters such as charset are allowed; the body must be UTF-8 all the same
    if request.content_type != "application/json":
        raise WireError("unsupported_media_type", "Content-Type must be application/json")
    data = loads_strict(await request.read())  # same edge rules as WebSocket frames
    if not isinstance(data, dict):
        raise WireError("invalid_json", "request body must be a JSON object")
    return data


def _path_id(request: web.Request, name: str) -> str:
    return v.ident(dict(request.match_info), name)


# ---- fixtures ---------------------------------------------------------------------------------
@routes.post("/v1/users")
async def create_user(request: web.Request) -> web.Response:
    """Create a user (admin)."""
    _admin(request)
    data = await _body(request)
    user = v.ident(data, "user_id")
    name = v.optional_text(data, "display_name")
    await _node(request).fixtures.create_user(user, name)
    return _json({"user_id": user}, 201)


@routes.post("/v1/users/{user_id}/devices")
async def create_device(request: web.Request) -> web.Response:
    """Register a device of a user (admin)."""
    _admin(request)
    user = _path_id(request, "user_id")
    data = await _body(request)
    device = v.ident(data, "device_id")
    name = v.optional_text(data, "name")
    await _node(request).fixtures.create_device(user, device, name)
    return _json({"device_id": device, "user_id": user}, 201)


@routes.post("/v1/conversations")
async def create_conversation(request: web.Request) -> web.Response:
    """Create a conversation with members (admin)."""
    _admin(request)
    data = await _body(request)
    conv = v.ident(data, "conversation_id")
    title = v.optional_text(data, "title")
    members = data.get("members", [])
    if not isinstance(members, list) or len(members) > 1000:
        raise bad_request("members must be a list of user ids")
    for m in members:
        v.ident({"user_id": m}, "user_id")
    await _node(request).fixtures.create_conversation(conv, title, members)
    return _json({"conversation_id": conv, "head_seq": 0}, 201)


@routes.post("/v1/conversations/{conversation_id}/members")
async def add_member(request: web.Request) -> web.Response:
    """Add a member (admin); connected devices of the user start receiving the conversation."""
    _admin(request)
    conv = _path_id(request, "conversation_id")
    user = v.ident(await _body(request), "user_id")
    await _node(request).fixtures.add_member(conv, user)
    return _json({"conversation_id": conv, "user_id": user}, 201)


@routes.delete("/v1/conversations/{conversation_id}/members/{user_id}")
async def remove_member(request: web.Request) -> web.Response:
    """Remove a member (admin)."""
    _admin(request)
    conv = _path_id(request, "conversation_id")
    user = _path_id(request, "user_id")
    if not await _node(request).fixtures.remove_member(conv, user):
        raise WireError("not_found", "not a member")
    return web.Response(status=204)


# ---- messages ---------------------------------------------------------------------------------
@routes.post("/v1/conversations/{conversation_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    """Send a message as the token's device (same rules as the WebSocket ``send``)."""
    ident = await _device(request)
    node = _node(request)
    conv = _path_id(request, "conversation_id")
    data = await _body(request)
    cmid = v.client_msg_id(data)
    body = v.body_json(data, node.settings.max_body_bytes, dumps)
    res = await node.store.send(conv, ident.user_id, ident.device_id, cmid, body)
    ack = send_outcome(node.hub, res.outcome, res.row, "rest")
    assert res.row is not None
    return _json(
        {**message_dict(res.row), "duplicate": ack["duplicate"]}, 200 if ack["duplicate"] else 201
    )


@routes.patch("/v1/conversations/{conversation_id}/messages/{seq}")
async def edit_message(request: web.Request) -> web.Response:
    """Edit (``body``) or delete (``deleted: true``) with ``expected_version``."""
    ident = await _device(request)
    node = _node(request)
    conv = _path_id(request, "conversation_id")
    seq = v.query_int(request.match_info["seq"], "seq", minimum=1)
    data = await _body(request)
    expected = v.seq(data, "expected_version", minimum=1)
    delete = data.get("deleted") is True
    body = None if delete else v.body_json(data, node.settings.max_body_bytes, dumps)
    assert seq is not None and expected is not None
    res = await node.store.edit(conv, ident.user_id, seq, expected, body, delete)
    return _json(edit_outcome(node.hub, res.outcome, res.row))


async def _reader(request: web.Request, conv: str) -> int:
    """Admins may read any conversation, devices only their user's; returns the seq after
    which the reader may see messages (its join point; 0 for admins)."""
    ident = _identity(request)
    if ident.admin:
        return 0
    ident = await _device(request)
    member = await _node(request).store.membership(conv, ident.user_id)
    if member is None:
        raise forbidden()
    return member[1]


@routes.get("/v1/conversations/{conversation_id}/messages")
async def history(request: web.Request) -> web.Response:
    """A page of history: ``after_seq``/``before_seq`` exclusive, ``limit`` 1..100."""
    conv = _path_id(request, "conversation_id")
    ident = _identity(request)
    q = request.query
    after = v.query_int(q.get("after_seq"), "after_seq")
    before = v.query_int(q.get("before_seq"), "before_seq")
    limit = v.query_int(q.get("limit"), "limit", minimum=1, maximum=100) or 50
    user = None if ident.admin else (await _device(request)).user_id
    page = await _node(request).store.history(conv, user, after, before, limit)
    if page is None:
        raise forbidden()
    rows, has_more = page
    return _json(
        {"conversation_id": conv, "messages": [message_dict(r) for r in rows], "has_more": has_more}
    )


@routes.get("/v1/conversations/{conversation_id}/messages/{seq}/status")
async def message_status(request: web.Request) -> web.Response:
    """Per member device: delivered / read for message ``seq``."""
    conv = _path_id(request, "conversation_id")
    seq = v.query_int(request.match_info["seq"], "seq", minimum=1)
    joined = await _reader(request, conv)
    assert seq is not None
    # a message from before the reader joined is not the reader's: as if it did not exist
    status = None if seq <= joined else await _node(request).store.message_status(conv, seq)
    if status is None:
        raise WireError("not_found", "no message with this seq")
    return _json({"conversation_id": conv, **status})


@routes.get("/v1/users/{user_id}/presence")
async def presence(request: web.Request) -> web.Response:
    """A user's presence and devices: admins see anyone, a device only users it shares a
    conversation with (itself included).

    Anyone else is answered exactly like an unknown user (offline, no devices), as
    ``presence_query`` does, so the reply does not even tell whether the user exists.
    """
    user = _path_id(request, "user_id")
    node = _node(request)
    if not _identity(request).admin:
        asker = await _device(request)
        if user not in await node.store.audience(asker.user_id):
            return _json({"user_id": user, "status": "offline", "devices": []})
    summary = await node.presence.user_presence(user)
    for d in summary["devices"]:
        d["last_seen"] = iso(d["last_seen"])
    return _json(summary)


# ---- operations -------------------------------------------------------------------------------
@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """200 when the database answers and the listener is listening, else 503.

    Redis is reported but does not make the node unhealthy: delivery never depends on it.
    """
    node = _node(request)
    db_ok = await node.store.ping()
    listening = node.listener.state == "listening"
    ok = db_ok and listening
    return _json(
        {
            "status": "ok" if ok else "degraded",
            "node_id": node.settings.node_id,
            "database": "ok" if db_ok else "unavailable",
            "listener": node.listener.state,
            "redis": "disabled" if node.redis is None else node.redis.state,
            "connections": node.hub.connections_total(),
        },
        200 if ok else 503,
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    body = generate_latest(_node(request).metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return _json(OPENAPI)
