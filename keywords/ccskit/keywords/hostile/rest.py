"""Keywords: REST requests no well-behaved client sends, and the checks of their refusal."""

from __future__ import annotations

from typing import Any

import requests
from robot.api.deco import keyword

from ...context import KitContext
from ...hostile import HostileSession
from ...ids import unique_id
from ...tokens import mint_token

HTTP_TIMEOUT_S = 15.0
REQUEST_LIMIT = 1024 * 1024  # the reference server's REST body limit (protocol §8.1)
ERROR_BODY_FIELDS = {"code", "message", "retryable"}
RETRYABLE_CODES = {"rate_limited", "unavailable", "outcome_unknown", "internal"}
# Where a fresh id of a refused request would land if the server had stored it anyway.
FRESH_ID_SQL = (
    "SELECT (SELECT count(*) FROM users WHERE id = %s)"
    " + (SELECT count(*) FROM devices WHERE id = %s)"
    " + (SELECT count(*) FROM conversations WHERE id = %s)"
    " + (SELECT count(*) FROM conversation_members WHERE user_id = %s)"
    " + (SELECT count(*) FROM messages WHERE client_msg_id = %s) AS n"
)


class RestInputKeywords:
    """`Raw REST Request` sends a request exactly as written: any method and path, any
    ``Content-Type`` (or none), any body text. `REST Error Should Be` checks the refusal
    against protocol §6/§8.1 and `Fresh Id Should Not Be Stored` proves the refused request
    stored nothing under the id it carried.

    Paths and bodies may name the frame placeholders (`Set Frame Placeholders`) and three of
    their own: ``$NEW`` (an id made fresh for this request), ``$USER_EVE``-style
    ``$USER_<NAME>`` (the real id of user fixture ``name``, lower-cased) and ``$OVER_LIMIT``
    (a string of one byte more than the 1 MiB request limit).
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self.session: HostileSession = ctx.hostile

    def _fill(self, text: str, fresh: str) -> str:
        text = text.replace("$NEW", fresh).replace("$OVER_LIMIT", "x" * (REQUEST_LIMIT + 1))
        for name, user_id in self.ctx.fixtures.users.items():
            text = text.replace(f"$USER_{name.upper()}", user_id)
        for name in sorted(self.session.placeholders, key=len, reverse=True):
            text = text.replace(f"${name}", self.session.placeholders[name])
        return text

    def _token(self, caller: str) -> str | None:
        if caller == "none":
            return None
        if caller == "admin":
            token = mint_token("kit-admin", admin=True)
        else:
            user, device = self.ctx.fixtures.device(caller)
            token = mint_token(user, device)
        self.session.tokens.append(token)  # scanned for in the server logs later
        return token

    @keyword("Raw REST Request")
    def raw_rest_request(
        self,
        caller: str,
        method: str,
        path: str,
        body: str = "",
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Sends one REST request exactly as described; returns what came back.

        ``caller``: ``admin`` (an admin token), ``none`` (no ``Authorization``) or a device
        fixture (its token). ``body`` is sent as UTF-8 text (an empty one sends no body);
        ``content_type`` ``NONE`` sends no ``Content-Type`` header. Returns ``{status,
        headers, json, text, request, fresh_id}``: ``json`` is ``None`` when the answer is not
        JSON, ``request`` names what was sent, ``fresh_id`` is what ``$NEW`` became.

        | ${reply}= | Raw REST Request | admin | PUT | /v1/users | {"user_id": "$NEW"} |
        | REST Error Should Be | ${reply} | 405 | method_not_allowed |
        """
        fresh = unique_id("rest-new")
        url = self.ctx.target.require().rstrip("/") + self._fill(path, fresh)
        headers = {}
        if content_type.upper() != "NONE":
            headers["Content-Type"] = content_type
        token = self._token(caller)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = self._fill(body, fresh).encode("utf-8") if body else None
        response = requests.request(method, url, data=data, headers=headers, timeout=HTTP_TIMEOUT_S)
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        size = len(data) if data else 0
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "json": parsed,
            "text": response.text[:300],
            "request": f"{method} {path} as {caller}, Content-Type {content_type}, {size} bytes",
            "fresh_id": fresh,
        }

    @keyword("REST Error Should Be")
    def rest_error_should_be(self, reply: dict[str, Any], status: int, code: str) -> None:
        """``reply`` (from `Raw REST Request`) is HTTP ``status`` with a JSON body of exactly
        ``{code, message, retryable}``: ``code`` as given, a non-empty message, ``retryable``
        as protocol §6 gives it. A 405 must carry an ``Allow`` header that leaves out the
        method refused."""
        body = reply["json"]
        problems = []
        if reply["status"] != int(status):
            problems.append(f"status {reply['status']}")
        if not isinstance(body, dict):
            problems.append("a body that is not a JSON object")
        else:
            problems += _error_body_problems(body, code)
        if int(status) == 405:
            problems += _allow_problems(reply)
        if problems:
            raise AssertionError(
                f"{reply['request']}: expected HTTP {status} with {{code: {code!r}, message, "
                f"retryable}}, got {', '.join(problems)}; "
                f"{reply['headers'].get('Content-Type', 'no Content-Type')}: {reply['text']}"
            )

    @keyword
    def fresh_id_should_not_be_stored(self, reply: dict[str, Any]) -> None:
        """No user, device, conversation, membership or message key carries the ``$NEW`` id
        of the request that gave ``reply``."""
        rows = self.ctx.db.rows(FRESH_ID_SQL, (reply["fresh_id"],) * 5)
        if int(rows[0]["n"]):
            raise AssertionError(
                f"{reply['request']} was refused, yet {rows[0]['n']} row(s) carry its id "
                f"{reply['fresh_id']!r}"
            )


def _error_body_problems(body: dict[str, Any], code: str) -> list[str]:
    problems = []
    if body.get("code") != code:
        problems.append(f"code {body.get('code')!r}")
    if not isinstance(body.get("message"), str) or not body.get("message"):
        problems.append("no message")
    if body.get("retryable") is not (code in RETRYABLE_CODES):
        problems.append(f"retryable {body.get('retryable')!r}")
    extra = set(body) - ERROR_BODY_FIELDS
    if extra:
        problems.append(f"undocumented fields {sorted(extra)}")
    return problems


def _allow_problems(reply: dict[str, Any]) -> list[str]:
    allow = reply["headers"].get("Allow", "")
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    refused = reply["request"].split(" ", 1)[0].upper()
    if not methods:
        return ["no Allow header"]
    if refused in methods:
        return [f"Allow {allow!r} naming the refused {refused}"]
    return []
