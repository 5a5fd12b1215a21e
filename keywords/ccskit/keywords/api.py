"""Keywords: the CCS REST API and fixtures with ids unique per run and process."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from ..api import CcsApi
from ..context import KitContext
from ..ids import unique_id
from ..tokens import mint_token


class ApiKeywords:
    """REST calls to the server under test and the fixtures tests stand on.

    Fixtures have a *name* chosen by the test (``alice``, ``alice-phone``, ``team-room``) and a
    real id unique per run, per pabot process and per call (``alice-3fa9c1p1q4-17``), so tests
    never collide and need no cleanup. Later keywords accept the name (or the real id); an
    unknown name fails with the list of known ones. Tokens are minted locally with
    ``CCS_TOKEN_SECRET`` (HS256); fixture endpoints use an admin token, message endpoints a
    token of the device named.

    | `Create User` | alice |
    | `Create Device` | alice | alice-phone |
    | `Create Conversation` | team-room | alice | bob |
    | ${msg}= | `Post Message` | alice-phone | team-room | hello |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx

    @property
    def api(self) -> CcsApi:
        return self.ctx.api

    def _conv(self, conversation: str) -> str:
        return self.ctx.fixtures.conversation(conversation)

    @keyword
    def create_user(self, name: str) -> str:
        """Creates a user with a unique id starting with ``name``; returns the id."""
        user_id = self.api.create_user(name)
        logger.info(f"user '{name}' is {user_id}")
        return user_id

    @keyword
    def create_device(self, user: str, name: str) -> str:
        """Creates device ``name`` for user fixture ``user``; returns the device id."""
        device_id = self.api.create_device(user, name)
        logger.info(f"device '{name}' of '{user}' is {device_id}")
        return device_id

    @keyword
    def create_conversation(self, name: str, *members: str) -> str:
        """Creates conversation ``name`` with the given user fixtures as members; returns its id.

        | Create Conversation | team-room | alice | bob |
        """
        conv_id = self.api.create_conversation(name, list(members))
        logger.info(f"conversation '{name}' is {conv_id} with members {', '.join(members)}")
        return conv_id

    @keyword
    def add_member(self, conversation: str, user: str) -> None:
        """Adds user fixture ``user`` to ``conversation``."""
        self.api.add_member(self._conv(conversation), self.ctx.fixtures.user(user))

    @keyword
    def remove_member(self, conversation: str, user: str) -> None:
        """Removes user fixture ``user`` from ``conversation``."""
        self.api.remove_member(self._conv(conversation), self.ctx.fixtures.user(user))

    @keyword
    def user_id(self, name: str) -> str:
        """The real id of user fixture ``name``."""
        return self.ctx.fixtures.user(name)

    @keyword
    def device_id(self, name: str) -> str:
        """The real id of device fixture ``name``."""
        return self.ctx.fixtures.device(name)[1]

    @keyword
    def device_ids_of_fixture(self, name: str) -> dict[str, str]:
        """``{user_id, device_id}`` of device fixture ``name``."""
        user_id, device_id = self.ctx.fixtures.device(name)
        return {"user_id": user_id, "device_id": device_id}

    @keyword
    def conversation_id(self, name: str) -> str:
        """The real id of conversation fixture ``name`` (a known real id is returned as is)."""
        return self._conv(name)

    @keyword
    def unique_name(self, prefix: str) -> str:
        """A fresh id ``<prefix>-<run>-<n>`` (e.g. a ``client_msg_id``)."""
        return unique_id(prefix)

    @keyword
    def post_message(
        self, device: str, conversation: str, body: Any, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        """Creates a message through ``POST /v1/conversations/{id}/messages`` as ``device``.

        A string ``body`` is sent as ``{"text": body}``; returns the created message
        (``message_id``, ``seq``, ``client_msg_id`` …).

        | ${msg}= | Post Message | alice-phone | team-room | hello |
        """
        payload = {"text": body} if isinstance(body, str) else body
        message = self.api.post_message(device, self._conv(conversation), payload, client_msg_id)
        logger.info(f"POST message by '{device}' -> seq {message.get('seq')}")
        return message

    @keyword
    def message_status(self, device: str, conversation: str, seq: int) -> dict[str, Any]:
        """``GET …/messages/{seq}/status`` as ``device``: delivered/read per member device."""
        return self.api.message_status(device, self._conv(conversation), seq)

    @keyword
    def device_status_of_message(
        self, viewer: str, conversation: str, seq: int, device: str
    ) -> dict[str, Any]:
        """The ``{device_id, delivered, read}`` entry of ``device`` in the status of message
        ``seq`` of ``conversation``.

        ``viewer`` is the device fixture whose token asks for the status (``GET
        …/messages/{seq}/status``): it must be a member device of the conversation, or the call
        is forbidden. ``device`` is the member device whose entry is returned; the two may be
        the same device.

        | ${entry}= | Device Status Of Message | alice-phone | team-room | 1 | bob-tablet |
        | Should Be True | ${entry}[read] |
        """
        status = self.message_status(viewer, conversation, seq)
        device_id = self.ctx.fixtures.device(device)[1]
        for entry in status.get("devices", []):
            if entry.get("device_id") == device_id:
                return dict(entry)
        raise AssertionError(
            f"expected device '{device}' ({device_id}) in the status of seq {seq}, saw {status}"
        )

    @keyword
    def presence_of_user(self, user: str) -> dict[str, Any]:
        """``GET /v1/users/{id}/presence`` for user fixture ``user``."""
        return self.api.presence(self.ctx.fixtures.user(user))

    @keyword
    def mint_token(
        self, user: str, device: str | None = None, admin: bool = False, ttl: int = 3600
    ) -> str:
        """A signed HS256 token for a user (and device) fixture, by name or real id."""
        user_id = self.ctx.fixtures.user(user)
        device_id = self.ctx.fixtures.device_id(device) if device else None
        return mint_token(user_id, device_id, admin=admin, ttl_s=ttl)

    @keyword
    def call_api(
        self,
        method: str,
        path: str,
        body: Any = None,
        expected_status: int = 200,
        token: str | None = None,
    ) -> Any:
        """Any REST call; fails unless the status is ``expected_status``; returns the JSON."""
        _, result = self.api.call(method, path, token=token, json=body, expect=(expected_status,))
        return result
