"""The one table of wire error codes (protocol.md section 6) and close codes (section 7)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

# code -> (retryable, HTTP status for REST)
ERROR_CODES: dict[str, tuple[bool, int]] = {
    "bad_request": (False, 400),
    "invalid_json": (False, 400),
    "unknown_type": (False, 400),
    "binary_not_supported": (False, 400),
    "not_authenticated": (False, 401),
    "auth_failed": (False, 401),
    "token_expired": (False, 401),
    "forbidden": (False, 403),
    "too_large": (False, 413),
    "method_not_allowed": (False, 405),
    "unsupported_media_type": (False, 415),
    "idempotency_conflict": (False, 409),
    "conflict": (False, 409),
    "not_found": (False, 404),
    "out_of_range": (False, 400),
    "rate_limited": (True, 429),
    "unavailable": (True, 503),  # nothing was stored
    "outcome_unknown": (True, 503),  # maybe stored: retry with the same client_msg_id
    "internal": (True, 500),
}

# Identical text for "unknown" and "not a member" so a denial leaks nothing.
FORBIDDEN_TEXT = "conversation not found or access denied"


class CloseCode(IntEnum):
    """WebSocket close codes; 4000-4499 may reconnect, 4500-4999 must not."""

    NORMAL = 1000
    TOO_BIG = 1009
    SERVICE_RESTART = 1012
    SLOW_CONSUMER = 4001
    RATE_LIMITED = 4002
    TOKEN_EXPIRED = 4003
    HEARTBEAT_TIMEOUT = 4004
    TOO_MANY_CONNECTIONS = 4005
    BAD_REQUEST = 4500
    AUTH_FAILED = 4501
    AUTH_TIMEOUT = 4502
    DEVICE_REVOKED = 4503


class WireError(Exception):
    """An error reported to the client as ``{type: error, code, message, retryable}``."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def retryable(self) -> bool:
        """Whether the same command may succeed if sent again unchanged."""
        return ERROR_CODES[self.code][0]

    @property
    def http_status(self) -> int:
        """HTTP status used when the error is returned by the REST API."""
        return ERROR_CODES[self.code][1]

    def frame(self, ref: Any) -> dict[str, Any]:
        """The WebSocket error frame for this error."""
        out: dict[str, Any] = {
            "type": "error",
            "ref": ref,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        out.update(self.extra)
        return out

    def body(self) -> dict[str, Any]:
        """The REST error body for this error."""
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        out.update(self.extra)
        return out


def forbidden() -> WireError:
    """The single denial used for unknown conversations and non-members alike."""
    return WireError("forbidden", FORBIDDEN_TEXT)


def bad_request(message: str) -> WireError:
    """Shorthand for a structural/field error."""
    return WireError("bad_request", message)


class StartupError(RuntimeError):
    """The server must not start (not a wire error); the message says why and how to fix it."""
