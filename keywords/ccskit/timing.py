"""When each message left its origin, so any receiver can compute send->receive latency.

Keys are ``(conversation_id, client_msg_id)``; values are ``time.monotonic()`` readings taken in
this process just before the message was handed to the server (WebSocket send, REST call or
direct INSERT), so they compare with the receive timestamps of :class:`ccskit.frames.Frame`.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_sent: dict[tuple[str, str], float] = {}


def mark_sent(conversation_id: str, client_msg_id: str, mono: float | None = None) -> float:
    stamp = time.monotonic() if mono is None else mono
    with _lock:
        _sent[(conversation_id, client_msg_id)] = stamp
    return stamp


def sent_at(conversation_id: str, client_msg_id: str) -> float | None:
    with _lock:
        return _sent.get((conversation_id, client_msg_id))
