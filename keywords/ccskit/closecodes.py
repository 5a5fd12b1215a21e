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


#: Codes below 4000 after which a client may reconnect (docs/protocol.md section 7): normal
#: closure, going away, abnormal closure (no close frame), server error, service restart.
RECONNECT_CODES = frozenset({1000, 1001, 1006, 1011, 1012})


def may_reconnect(code: int | None) -> bool:
    """The kit's one reconnect rule (protocol section 7), used by every client of the kit.

    - ``None`` (the connection was lost without a close frame) and the codes of
      :data:`RECONNECT_CODES`: yes. 1000 is a yes because the protocol table says so: the
      reference server never closes with 1000 on its own, so a 1000 a client did not ask for
      means the session ended normally and the client may open a new one. A client that closed
      its connection itself never reconnects, whatever the code (``DeviceClient.close``).
    - 4000-4499: yes (range rule); 4500-4999: no.
    - 1002, 1007, 1009 and any code the protocol does not name: no, since reconnecting cannot
      fix the client's own fault, and a storm of reconnects must not follow a code the kit does
      not understand.
    """
    if code is None:
        return True
    return code in RECONNECT_CODES or 4000 <= code <= 4499
