"""Field validation for commands and REST bodies; failures are ``bad_request`` or ``too_large``."""

from __future__ import annotations

import re
from typing import Any

from .errors import WireError, bad_request

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_SEQ = 2**63 - 1


def ident(frame: dict[str, Any], name: str) -> str:
    """A user/device/conversation id field."""
    value = frame.get(name)
    if not isinstance(value, str) or not ID_RE.match(value):
        raise bad_request(f"{name} must be a string of 1-64 characters [A-Za-z0-9_.:-]")
    return value


def optional_text(frame: dict[str, Any], name: str) -> str | None:
    """A free-text field that may be absent or null."""
    value = frame.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def seq(frame: dict[str, Any], name: str, minimum: int = 0, required: bool = True) -> int | None:
    """A non-negative 63-bit integer (booleans are not integers here)."""
    value = frame.get(name)
    if value is None and not required:
        return None
    if type(value) is not int or not minimum <= value <= MAX_SEQ:
        raise bad_request(f"{name} must be an integer in {minimum}..2^63-1")
    return value


def client_msg_id(frame: dict[str, Any]) -> str:
    """1-128 characters, no NUL."""
    value = frame.get("client_msg_id")
    if not isinstance(value, str) or not value:
        raise bad_request("client_msg_id must be a non-empty string")
    if len(value) > 128:
        raise WireError("too_large", "client_msg_id is longer than 128 characters")
    if "\x00" in value:
        raise bad_request("client_msg_id must not contain NUL")
    return value


def body_json(frame: dict[str, Any], max_bytes: int, dumps: Any) -> str:
    """The body serialised for storage; too_large past ``max_bytes``."""
    if "body" not in frame:
        raise bad_request("body is required")
    text: str = dumps(frame["body"])
    # NUL is fine: bodies are stored as exact json text (migration 0004), not jsonb
    if len(text.encode()) > max_bytes:
        raise WireError("too_large", f"body exceeds {max_bytes} bytes")
    return text


def limit(value: Any, default: int = 50, maximum: int = 100) -> int:
    """History page size 1..maximum (integers only, no strings)."""
    if value is None:
        return default
    if type(value) is not int or not 1 <= value <= maximum:
        raise bad_request(f"limit must be an integer in 1..{maximum}")
    return value


def query_int(raw: str | None, name: str, minimum: int = 0, maximum: int = MAX_SEQ) -> int | None:
    """An integer query parameter of the REST API."""
    if raw is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):
        raise bad_request(f"{name} must be an integer")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise bad_request(f"{name} must be in {minimum}..{maximum}")
    return value
