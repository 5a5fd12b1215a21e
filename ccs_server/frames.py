"""Encoding of server frames. A broadcast frame is encoded once and shared by every recipient."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .ports import Row

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON text."""
    return _dumps(obj)


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z suffix, or None."""
    if ts is None:
        return None
    return ts.isoformat().replace("+00:00", "Z")


def message_meta(row: Row) -> dict[str, Any]:
    """The message fields of protocol.md section 1, without the body."""
    return {
        "message_id": row["id"],
        "conversation_id": row["conversation_id"],
        "seq": row["seq"],
        "sender_user_id": row["sender_user_id"],
        "sender_device_id": row["sender_device_id"],
        "client_msg_id": row["client_msg_id"],
        "version": row["version"],
        "deleted": row["deleted"],
        "created_at": iso(row["created_at"]),
        "edited_at": iso(row["edited_at"]),
    }


def message_dict(row: Row) -> dict[str, Any]:
    """A message as a JSON-ready dict (body parsed from the stored jsonb text)."""
    out = message_meta(row)
    out["body"] = None if row["body"] is None else json.loads(row["body"])
    return out


def message_frame(row: Row, frame_type: str = "message") -> str:
    """A ``message``/``message_updated`` frame; the stored jsonb text is spliced in unparsed."""
    meta = message_meta(row)
    head = _dumps({"type": frame_type, **meta})
    return head[:-1] + ',"body":' + (row["body"] if row["body"] is not None else "null") + "}"
