"""Bad input on the REST side answers with the documented error shape and status.

Every refusal is JSON ``{code, message, retryable}``: unknown path 404 ``not_found``, wrong
method 405 ``method_not_allowed`` (with ``Allow``), a body over the limit 413 ``too_large``,
malformed JSON 400 ``invalid_json``, a content type other than JSON 415
``unsupported_media_type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ccs_server.config import ConfigError, Settings

from .support import Api, ServerProcess

SHAPE = {"code", "message", "retryable"}


def _admin(api: Api) -> dict[str, str]:
    return {"Authorization": "Bearer " + api.server.token("admin", admin=True)}


async def _raw(
    api: Api, method: str, path: str, data: bytes | str | None = None, **headers: str
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    async with api.http.request(
        method, api.server.base + path, data=data, headers={**_admin(api), **headers}
    ) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        body = await resp.json()
        assert body.keys() >= SHAPE and body["retryable"] is False, body
        return resp.status, body, resp.headers


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "allow"),
    [
        ("GET", "/v1/nothing-here", 404, "not_found", None),
        ("POST", "/v2/users", 404, "not_found", None),
        ("GET", "/", 404, "not_found", None),
        ("PUT", "/v1/users", 405, "method_not_allowed", {"POST"}),
        ("DELETE", "/health", 405, "method_not_allowed", {"GET", "HEAD"}),
    ],
)
async def test_unknown_paths_and_wrong_methods(
    api: Api, method: str, path: str, status: int, code: str, allow: set[str] | None
) -> None:
    got, body, headers = await _raw(api, method, path)
    assert (got, body["code"]) == (status, code), body
    if allow is not None:
        assert set(headers.get("Allow", "").split(",")) == allow, headers


async def test_malformed_oversized_and_wrongly_typed_bodies(
    server: ServerProcess, api: Api
) -> None:
    user = api.uid("badbody")
    cases: list[tuple[bytes | str, dict[str, str], int, str]] = [
        ('{"user_id": ', JSON, 400, "invalid_json"),
        ("", JSON, 400, "invalid_json"),
        ("[1, 2]", JSON, 400, "invalid_json"),
        (b'{"user_id": "\xff"}', JSON, 400, "invalid_json"),
        (f'{{"user_id": "{user}"}}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (f'{{"user_id": "{user}"}}', FORM, 415, "unsupported_media_type"),
        ('{"user_id": "x", "pad": "' + "x" * (2 << 20) + '"}', JSON, 413, "too_large"),
    ]
    for data, headers, status, code in cases:
        got, body, _ = await _raw(api, "POST", "/v1/users", data, **headers)
        assert (got, body["code"]) == (status, code), (str(data)[:60], headers, body)
    # the parameters of a JSON content type are fine, and nothing above created the user
    async with api.http.post(
        server.base + "/v1/users",
        data=f'{{"user_id": "{user}"}}',
        headers={**_admin(api), "Content-Type": "application/json; charset=utf-8"},
    ) as resp:
        assert resp.status == 201, await resp.text()


async def test_missing_content_type_is_415(server: ServerProcess, api: Api) -> None:
    async with api.http.post(
        server.base + "/v1/users",
        data=b'{"user_id": "no-type"}',
        headers={**_admin(api), "Content-Type": ""},
        skip_auto_headers=["Content-Type"],
    ) as resp:
        body = await resp.json()
        assert (resp.status, body["code"]) == (415, "unsupported_media_type"), body


def test_token_secret_is_at_least_32_bytes() -> None:
    assert len(Settings().token_secret.encode()) >= 32
    with pytest.raises(ConfigError, match="CCS_TOKEN_SECRET must be at least 32 bytes"):
        Settings.from_env({"CCS_TOKEN_SECRET": "x" * 31})
    assert Settings.from_env({"CCS_TOKEN_SECRET": "x" * 32}).token_secret == "x" * 32
