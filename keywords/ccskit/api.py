"""REST client for docs/protocol.md section 8, with fixture helpers that name what they create."""

from __future__ import annotations

import time
from typing import Any

import requests

from . import timing
from .fixtures import Fixtures
from .ids import unique_id
from .tokens import mint_token


class ApiError(AssertionError):
    """An HTTP call answered with an unexpected status."""

    ROBOT_SUPPRESS_NAME = True


class CcsApi:
    """Thin ``requests`` wrapper; every call returns the decoded JSON (or ``None``)."""

    def __init__(self, base_url: str, fixtures: Fixtures, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.fixtures = fixtures
        self.timeout = timeout
        self.session = requests.Session()
        self._admin: str | None = None

    def admin_token(self) -> str:
        if self._admin is None:
            self._admin = mint_token("kit-admin", admin=True)
        return self._admin

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200, 201, 204),
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin_token()}"}
        response = self.session.request(
            method,
            self.base_url + path,
            headers=headers,
            json=json,
            params=params,
            timeout=self.timeout,
        )
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text[:500]
        if response.status_code not in expect:
            raise ApiError(
                f"{method} {path}: expected HTTP {'/'.join(map(str, expect))}, "
                f"got {response.status_code} {body!r}"
            )
        return response.status_code, body

    # ----- fixtures --------------------------------------------------------------------------
    def create_user(self, name: str) -> str:
        user_id = unique_id(name)
        self.call("POST", "/v1/users", json={"user_id": user_id, "display_name": name})
        self.fixtures.users[name] = user_id
        return user_id

    def create_device(self, user_name: str, device_name: str) -> str:
        user_id = self.fixtures.user(user_name)
        device_id = unique_id(device_name)
        self.call(
            "POST",
            f"/v1/users/{user_id}/devices",
            json={"device_id": device_id, "name": device_name},
        )
        self.fixtures.devices[device_name] = (user_id, device_id)
        return device_id

    def create_conversation(self, name: str, member_names: list[str]) -> str:
        conv_id = unique_id(name)
        members = [self.fixtures.user(m) for m in member_names]
        self.call(
            "POST",
            "/v1/conversations",
            json={"conversation_id": conv_id, "title": name, "members": members},
        )
        self.fixtures.conversations[name] = conv_id
        return conv_id

    def add_member(self, conv_id: str, user_id: str) -> None:
        self.call("POST", f"/v1/conversations/{conv_id}/members", json={"user_id": user_id})

    def remove_member(self, conv_id: str, user_id: str) -> None:
        self.call("DELETE", f"/v1/conversations/{conv_id}/members/{user_id}")

    # ----- messages --------------------------------------------------------------------------
    def post_message(
        self, device_name: str, conv_id: str, body: Any, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        user_id, device_id = self.fixtures.device(device_name)
        cmid = client_msg_id or unique_id(f"{device_name}-api")
        token = mint_token(user_id, device_id)
        timing.mark_sent(conv_id, cmid, time.monotonic())
        _, message = self.call(
            "POST",
            f"/v1/conversations/{conv_id}/messages",
            token=token,
            json={"client_msg_id": cmid, "body": body},
            expect=(200, 201),
        )
        return dict(message)

    def message_status(self, device_name: str, conv_id: str, seq: int) -> dict[str, Any]:
        user_id, device_id = self.fixtures.device(device_name)
        _, status = self.call(
            "GET",
            f"/v1/conversations/{conv_id}/messages/{seq}/status",
            token=mint_token(user_id, device_id),
        )
        return dict(status)

    def presence(self, user_id: str) -> dict[str, Any]:
        _, presence = self.call("GET", f"/v1/users/{user_id}/presence")
        return dict(presence)
