"""Handlers of authenticated client commands (protocol.md section 4); each returns ack fields."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import validate as v
from .errors import WireError, bad_request, forbidden
from .frames import dumps, iso, message_dict
from .hub import Hub
from .session import Session

Handler = Callable[[Hub, Session, dict[str, Any]], Awaitable[dict[str, Any]]]


async def do_send(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Store the message (idempotently) and ack after commit."""
    t0 = time.perf_counter()
    conv = v.ident(frame, "conversation_id")
    cmid = v.client_msg_id(frame)
    body = v.body_json(frame, hub.settings.max_body_bytes, dumps)
    res = await hub.store.send(conv, sess.user_id, sess.device_id, cmid, body)
    ack = send_outcome(hub, res.outcome, res.row, "ws")
    hub.metrics.send_latency.observe(time.perf_counter() - t0)
    return ack


def send_outcome(hub: Hub, outcome: str, row: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """Turn a ``ccs_send`` outcome into ack fields or the matching wire error."""
    if outcome == "forbidden":
        raise forbidden()
    assert row is not None
    if outcome == "idempotency_conflict":
        raise WireError(
            "idempotency_conflict",
            "client_msg_id was already used with a different body or conversation",
        )
    duplicate = outcome == "duplicate"
    if duplicate:
        hub.metrics.duplicates.inc()
    else:
        hub.remember(row)
        hub.metrics.messages.labels(source).inc()
    return {
        "message_id": row["id"],
        "conversation_id": row["conversation_id"],
        "seq": row["seq"],
        "client_msg_id": row["client_msg_id"],
        "duplicate": duplicate,
        "created_at": iso(row["created_at"]),
    }


async def _edit(hub: Hub, sess: Session, frame: dict[str, Any], delete: bool) -> dict[str, Any]:
    conv = v.ident(frame, "conversation_id")
    seq = v.seq(frame, "seq", minimum=1)
    expected = v.seq(frame, "expected_version", minimum=1)
    body = None if delete else v.body_json(frame, hub.settings.max_body_bytes, dumps)
    assert seq is not None and expected is not None
    res = await hub.store.edit(conv, sess.user_id, seq, expected, body, delete)
    return edit_outcome(hub, res.outcome, res.row)


def edit_outcome(hub: Hub, outcome: str, row: dict[str, Any] | None) -> dict[str, Any]:
    """Turn a ``ccs_edit`` outcome into ack fields or the matching wire error."""
    if outcome == "forbidden":
        raise forbidden()
    if outcome == "not_found":
        raise WireError("not_found", "no message with this seq")
    assert row is not None
    if outcome == "conflict":
        current = {
            "version": row["version"],
            "deleted": row["deleted"],
            "body": message_dict(row)["body"],
        }
        raise WireError("conflict", "expected_version is not the current version", current=current)
    hub.remember(row)
    return {
        "message_id": row["id"],
        "conversation_id": row["conversation_id"],
        "seq": row["seq"],
        "version": row["version"],
    }


async def do_edit(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Replace the body if ``expected_version`` is current."""
    return await _edit(hub, sess, frame, delete=False)


async def do_delete(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Tombstone the message if ``expected_version`` is current."""
    return await _edit(hub, sess, frame, delete=True)


async def do_receipt(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Move delivered/read cursors forward and tell the other member devices."""
    conv = v.ident(frame, "conversation_id")
    kind = frame.get("kind")
    if kind not in ("delivered", "read"):
        raise bad_request("kind must be 'delivered' or 'read'")
    seq = v.seq(frame, "seq", minimum=1)
    assert seq is not None
    res = await hub.store.receipt(conv, sess.user_id, sess.device_id, kind, seq)
    if res.outcome == "forbidden":
        raise forbidden()
    if res.outcome == "out_of_range":
        raise WireError("out_of_range", "seq is above the conversation head")
    assert res.row is not None
    hub.metrics.receipts.labels(kind).inc()
    if res.row["changed"]:
        await hub.publish_receipt(conv, sess.user_id, sess.device_id, res.row)
    return {
        "conversation_id": conv,
        "delivered_upto": res.row["delivered_upto"],
        "read_upto": res.row["read_upto"],
        "changed": res.row["changed"],
    }


async def do_history(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """A page of stored messages (ascending seq)."""
    conv = v.ident(frame, "conversation_id")
    after = v.seq(frame, "after_seq", required=False)
    before = v.seq(frame, "before_seq", required=False)
    limit = v.limit(frame.get("limit"))
    page = await hub.store.history(conv, sess.user_id, after, before, limit)
    if page is None:
        raise forbidden()
    rows, has_more = page
    return {
        "conversation_id": conv,
        "messages": [message_dict(r) for r in rows],
        "has_more": has_more,
    }


async def do_subscribe(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Check access and return the head; membership already routes live traffic."""
    conv = v.ident(frame, "conversation_id")
    head = await hub.store.is_member(conv, sess.user_id)
    if head is None:
        raise forbidden()
    return {"conversation_id": conv, "head_seq": head}


async def do_presence(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Set this device online or away."""
    status = frame.get("status")
    if status not in ("online", "away"):
        raise bad_request("status must be 'online' or 'away'")
    await hub.device_online(sess, status)
    return {"status": status}


async def do_presence_query(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Presence of up to 100 users."""
    users = frame.get("user_ids")
    if not isinstance(users, list) or len(users) > 100:
        raise bad_request("user_ids must be a list of at most 100 user ids")
    for user in users:
        if not isinstance(user, str) or not v.ID_RE.match(user):
            raise bad_request("user_ids must contain user ids")
    wanted = list(dict.fromkeys(users))
    # Only users sharing a conversation with the asker are looked up; anyone else is reported
    # exactly like an unknown user (offline, no devices), so the reply leaks nothing.
    visible = set(await hub.store.audience(sess.user_id))
    found = await hub.presence.presence_of([u for u in wanted if u in visible])
    for user in wanted:
        found.setdefault(user, {"status": "offline", "devices": []})
    out = {
        user: {
            "status": summary["status"],
            "devices": [
                {
                    "device_id": d["device_id"],
                    "status": d["status"],
                    "last_seen": iso(d["last_seen"]),
                }
                for d in summary["devices"]
            ],
        }
        for user, summary in found.items()
    }
    return {"users": out}


async def do_ping(hub: Hub, sess: Session, frame: dict[str, Any]) -> dict[str, Any]:
    """Application-level ping."""
    return {}


HANDLERS: dict[str, Handler] = {
    "send": do_send,
    "edit": do_edit,
    "delete": do_delete,
    "receipt": do_receipt,
    "history": do_history,
    "subscribe": do_subscribe,
    "presence": do_presence,
    "presence_query": do_presence_query,
    "ping": do_ping,
}
