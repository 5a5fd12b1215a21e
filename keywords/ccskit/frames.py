"""Received frames with their timestamps, and the matching rules the wait keywords use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Frame:
    """One text frame as received: parsed JSON (or ``None``), raw text and when it arrived."""

    index: int
    data: dict[str, Any] | None
    raw: str
    mono: float
    wall: float

    @property
    def type(self) -> str | None:
        return self.data.get("type") if self.data else None

    def short(self, limit: int = 300) -> str:
        text = self.raw if len(self.raw) <= limit else self.raw[: limit - 3] + "..."
        return f"#{self.index} {text}"


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted ``path`` (``body.text``) or a sentinel when absent."""
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def values_equal(actual: Any, expected: Any) -> bool:
    """Equality that lets Robot's string arguments match JSON numbers, booleans and null."""
    if actual is _MISSING:
        return False
    if actual == expected and type(actual) is type(expected):
        return True
    if isinstance(expected, str):
        if isinstance(actual, str):
            return actual == expected
        return json.dumps(actual) == expected or str(actual) == expected
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return bool(actual == expected)


def matches(frame: Frame, frame_type: str | None, fields: Mapping[str, Any]) -> bool:
    """True when ``frame`` has ``frame_type`` (``None``/``*`` = any) and every field value."""
    if frame.data is None:
        return False
    if frame_type not in (None, "", "*") and frame.data.get("type") != frame_type:
        return False
    return all(values_equal(lookup(frame.data, k), v) for k, v in fields.items())


def describe_match(frame_type: str | None, fields: Mapping[str, Any]) -> str:
    """``message {conversation_id=c, seq=3}`` for messages."""
    inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{frame_type or 'any frame'} {{{inner}}}" if inner else f"{frame_type or 'any frame'}"


def format_frames(frames: Iterable[Frame], last: int = 10) -> str:
    items = list(frames)[-last:]
    if not items:
        return "    (no frames)"
    return "\n".join("    " + f.short() for f in items)
