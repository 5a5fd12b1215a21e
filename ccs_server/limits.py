"""Limits enforced at the edge: strict JSON, echoable refs and the per-connection command rate.

Strict decoding of client JSON: what Python's ``json`` accepts but the wire contract does not.

``json.loads`` accepts ``NaN``/``Infinity`` literals and numbers that overflow to ``inf``,
and decodes ``"\\ud800"`` into a lone surrogate that cannot be encoded as UTF-8 again. Let
through, each would fail later in the database driver or the socket writer (an ``internal``
error, or a connection whose writer dies silently), so they are refused here, at the edge, as
``invalid_json`` or ``bad_request``.
"""

from __future__ import annotations

import json
import math
import time
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from .errors import WireError, bad_request


class _NonFinite(ValueError):
    """A number that is not finite (NaN, Infinity, or a float overflowing to it)."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text[:20])
    return value


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads_strict(text: str | bytes) -> Any:
    """Decode JSON per RFC 8259 with finite numbers and valid Unicode only.

    Raises ``invalid_json`` for text that is not JSON (NaN/Infinity included) and
    ``bad_request`` for nesting past the parser's depth, numbers that are not finite and
    strings holding lone surrogates.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("invalid_json", "request body is not UTF-8") from None
    try:
        value = _decoder.decode(text)
    except RecursionError:
        raise bad_request("JSON nested too deeply") from None
    except _NonFinite:
        raise bad_request("numbers must be finite (no NaN or Infinity)") from None
    except ValueError:
        raise WireError("invalid_json", "frame is not valid JSON") from None
    if "\\u" in text and not is_encodable(value):
        raise bad_request("strings must be valid Unicode (no lone surrogates)")
    return value


def is_encodable(value: Any) -> bool:
    """Whether every string in ``value`` can be encoded as UTF-8 (no lone surrogates).

    The frame arrived as UTF-8, so only ``\\uD800``-``\\uDFFF`` escapes that do not form a
    pair can produce such a string; callers skip the check for text without escapes.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def safe_ref(ref: Any) -> Any:
    """``ref`` if it may be echoed in a reply (1-64 characters, encodable), else None."""
    if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
        return None
    try:
        ref.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return ref


_WS = " \t\n\r"
_OPEN, _CLOSE = "[{", "]}"


def top_level_string(text: str, key: str) -> str | None:
    """The string value of ``key`` in the top-level object of ``text``, without full decoding.

    Used to echo ``ref`` in the error about a frame that could not be decoded as a whole (nested
    past the parser's depth, say): only the top level is walked, nested values are skipped
    iteratively, so the depth of the rest of the frame does not matter. Like ``json.loads``,
    the last occurrence of a duplicated key wins. None if the text is not an object with a
    string under ``key`` or is malformed before that key ends.
    """
    found: str | None = None
    try:
        i = _skip_ws(text, 0)
        if text[i] != "{":
            return None
        i = _skip_ws(text, i + 1)
        while text[i] == '"':
            name, i = scanstring(text, i + 1)
            i = _skip_ws(text, i)
            if text[i] != ":":
                return found
            i = _skip_ws(text, i + 1)
            if name == key:
                found = scanstring(text, i + 1)[0] if text[i] == '"' else None
            i = _skip_ws(text, _skip_value(text, i))
            if text[i] != ",":
                break
            i = _skip_ws(text, i + 1)
    except (IndexError, ValueError):
        pass
    return found


def _skip_ws(text: str, i: int) -> int:
    while text[i] in _WS:
        i += 1
    return i


def _skip_value(text: str, i: int) -> int:
    """Index just past the JSON value starting at ``i`` (any depth, no recursion)."""
    depth = 0
    while True:
        ch = text[i]
        if ch == '"':
            i = scanstring(text, i + 1)[1]
        elif ch in _OPEN:
            depth += 1
            i += 1
        elif ch in _CLOSE:
            if depth == 0:
                return i  # a scalar ended by its parent's bracket
            depth -= 1
            i += 1
        elif depth == 0 and (ch == "," or ch in _WS):
            return i
        else:
            i += 1
        if depth == 0 and (ch == '"' or ch in _CLOSE):
            return i


class TokenBucket:
    """Per-connection command rate limit (burst = rate)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.stamp = rate, rate, time.monotonic()
        self.strikes = 0

    def take(self) -> float:
        """0 if allowed, else seconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return 0.0
        self.strikes += 1
        return (1 - self.tokens) / self.rate
