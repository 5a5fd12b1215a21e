"""WebSocket close codes spelled out for failure messages (docs/protocol.md section 7)."""

from __future__ import annotations

CLOSE_CODES: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1006: "abnormal closure (no close frame)",
    1007: "invalid UTF-8",
    1009: "frame too large",
    1011: "server internal error",
    1012: "service restart",
    4001: "slow consumer",
    4002: "rate limited repeatedly",
    4003: "token expired",
    4004: "heartbeat timeout",
    4005: "too many connections for this user",
    4500: "bad request before authentication",
    4501: "authentication failed",
    4502: "authentication timeout",
    4503: "device revoked",
}


def describe_close(code: int | None, reason: str = "") -> str:
    """``4001`` -> ``"4001 slow consumer"``; adds the server's reason text when it differs."""
    if code is None:
        return "no close code"
    name = CLOSE_CODES.get(code) or _range_name(code)
    text = f"{code} {name}"
    if reason and reason != name:
        text += f" ({reason})"
    return text


def _range_name(code: int) -> str:
    if 4000 <= code < 4500:
        return "reconnect allowed"
    if 4500 <= code < 5000:
        return "do not reconnect"
    return "unknown code"


def may_reconnect(code: int | None) -> bool:
    """Range rule of the protocol: 4000-4499 reconnect allowed, 4500-4999 do not."""
    if code is None:
        return True
    return not (4500 <= code <= 4999 or code in (1002, 1007, 1009))
