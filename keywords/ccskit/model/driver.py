"""The real side of a walk: fixtures, device connections, REST calls and SQL on a live server.

Every method performs one action with the kit's own protocol code (``DeviceClient`` on the
shared loop thread, ``CcsApi``, ``CcsDb``, ``mint_token``) and returns what the server answered;
judging the answer is ``observe``'s job.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from ..api import ApiError, CcsApi
from ..client import ClientError, ConnectRefused, DeviceClient, wait_until
from ..config import ws_url_for
from ..db import CcsDb
from ..ids import unique_id
from ..loop import shared_loop
from ..tokens import mint_token
from .state import MEMBER_CATEGORY, MESSAGE_CATEGORY, RECEIPT_CATEGORY, body_key

REPLY_TIMEOUT_S = 5.0


def rest_client(base_url: str) -> CcsApi:
    """The kit's REST client; walks keep their own fixture names, so its registry stays empty."""
    if "fixtures" in inspect.signature(CcsApi).parameters:
        from ..fixtures import Fixtures

        return CcsApi(base_url, Fixtures())  # type: ignore[call-arg,unused-ignore]
    return CcsApi(base_url)  # type: ignore[call-arg,unused-ignore]


@dataclass
class Reply:
    """A command's reply frame (``None`` when none came) and the close code that followed."""

    frame: dict[str, Any] | None
    close: int | None = None
    ref: str | None = None
    status: int | None = None  # HTTP status for REST actions


@dataclass
class Fixture:
    """Logical names of a walk (``u0``, ``u0-d1``, ``c0``) and their real unique ids."""

    ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, real: str) -> str:
        self.ids[name], self.names[real] = real, name
        return real


class Driver:
    """One walk's connections to the server under test, its database and its REST API."""

    def __init__(self, base_url: str, database_url: str, scale: float = 1.0) -> None:
        self.base_url = base_url
        self.ws_url = ws_url_for(base_url)
        self.api = rest_client(base_url)
        self.db = CcsDb(database_url)
        self.loop = shared_loop()
        self.scale = scale
        self.fixture = Fixture()
        self.clients: dict[str, DeviceClient] = {}
        self.user_of: dict[str, str] = {}

    def _run(self, coro: Any, timeout_s: float = REPLY_TIMEOUT_S) -> Any:
        return self.loop.run(coro, timeout_s * self.scale + 2.0)

    # ----- fixtures ----------------------------------------------------------------------------
    def create_user(self, name: str) -> str:
        real = self.fixture.add(name, unique_id(f"m-{name}"))
        self.api.call("POST", "/v1/users", json={"user_id": real, "display_name": name})
        return real

    def create_device(self, user: str, name: str) -> str:
        real = self.fixture.add(name, unique_id(f"m-{name}"))
        user_id = self.fixture.ids[user]
        self.api.call("POST", f"/v1/users/{user_id}/devices", json={"device_id": real})
        self.user_of[real] = user_id
        return real

    def create_conversation(self, name: str, members: list[str]) -> str:
        real = self.fixture.add(name, unique_id(f"m-{name}"))
        self.api.call(
            "POST",
            "/v1/conversations",
            json={"conversation_id": real, "title": name, "members": members},
        )
        return real

    def add_member(self, conversation_id: str, user_id: str) -> int:
        status, _ = self.api.call(
            "POST", f"/v1/conversations/{conversation_id}/members", json={"user_id": user_id}
        )
        return status

    def remove_member(self, conversation_id: str, user_id: str) -> int:
        status, _ = self.api.call(
            "DELETE", f"/v1/conversations/{conversation_id}/members/{user_id}"
        )
        return status

    # ----- tokens ------------------------------------------------------------------------------
    def token(self, device_id: str, kind: str, other_device: str = "") -> str:
        """A token of ``kind``: valid, expired, just-expired (a second ago), not-yet-valid,
        valid-in-5s (``nbf`` five seconds ahead), expires-in-2s, bad-signature,
        other-users-device. The protocol allows no clock leeway (§2-e)."""
        user_id = self.user_of[device_id]
        now = int(time.time())
        if kind in ("expired", "just-expired", "expires-in-2s"):
            ttl = {"expired": -120, "just-expired": -1, "expires-in-2s": 2}[kind]
            return mint_token(user_id, device_id, ttl_s=ttl)
        if kind in ("not-yet-valid", "valid-in-5s"):
            return mint_token(user_id, device_id, nbf=now + (600 if kind == "not-yet-valid" else 5))
        if kind == "bad-signature":
            head, body, _ = mint_token(user_id, device_id).split(".")
            return f"{head}.{body}.{jwt.utils.base64url_encode(b'x' * 32).decode()}"
        if kind == "other-users-device":
            return mint_token(user_id, other_device)
        return mint_token(user_id, device_id)

    # ----- connections -------------------------------------------------------------------------
    def connect(self, device_id: str, token: str, resume: dict[str, Any] | None) -> Reply:
        """Dial and say ``hello``; the reply is ``welcome`` or the error, with its close code."""
        old = self.clients.get(device_id)
        if old is not None and old.connected:
            raise AssertionError(f"walk bug: {device_id} is already connected")
        client = DeviceClient(
            device_id, self.ws_url, token, user_id=self.user_of[device_id], device_id=device_id
        )
        try:
            reply = self._run(client.open(resume=resume or None, timeout_s=REPLY_TIMEOUT_S))
        except ConnectRefused as exc:
            return Reply(None, status=exc.status)
        except ClientError:
            errors = [f.data for f in client.frames if f.type == "error" and f.data]
            self._run(_wait_closed(client, REPLY_TIMEOUT_S))
            return Reply(errors[-1] if errors else None, client.close_code)
        self.clients[device_id] = client
        return Reply(reply, ref=str(reply.get("ref")))

    def wait_closed(self, device_id: str, timeout_s: float) -> Reply:
        """Wait for the server to close ``device_id``; the last error frame and the close code."""
        client = self.clients[device_id]
        self._run(_wait_closed(client, timeout_s), timeout_s)
        start = client.connection_start
        errors = [f.data for f in client.frames[start:] if f.type == "error" and f.data]
        return Reply(errors[-1] if errors else None, client.close_code)

    def disconnect(self, device_id: str, abrupt: bool) -> None:
        client = self.clients[device_id]
        self._run(client.abort() if abrupt else client.close())

    def close_all(self) -> None:
        for client in self.clients.values():
            if client.connected:
                self._run(client.close())
        self.clients.clear()

    def client(self, device_id: str) -> DeviceClient:
        return self.clients[device_id]

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait on the loop until ``predicate()`` holds (checked whenever a device receives a
        frame or changes state); returns whether it did within ``timeout_s``."""
        clients = [c for c in self.clients.values() if c.connected]
        return bool(self._run(wait_until(clients, predicate, timeout_s), timeout_s))

    def mark(self) -> dict[str, int]:
        """How many frames each connected device had received: the start of a step."""
        return {d: len(c.frames) for d, c in self.clients.items() if c.connected}

    # ----- commands ----------------------------------------------------------------------------
    def command(self, device_id: str, frame: dict[str, Any]) -> Reply:
        client = self.clients[device_id]
        frame.setdefault("ref", client.next_ref("w"))
        try:
            reply = self._run(client.request(frame, REPLY_TIMEOUT_S * self.scale))
        except ClientError:
            self._run(_wait_closed(client, 1.0))
            return Reply(None, client.close_code, frame["ref"])
        return Reply(reply, None, frame["ref"])

    def raw_command(self, device_id: str, text: str, ref: str) -> Reply:
        """Send a frame as text (a body the kit cannot encode) and take the next reply."""
        client = self.clients[device_id]
        start = len(client.frames)
        self._run(client.send_raw(text))
        frame = self._run(_next_reply(client, start, REPLY_TIMEOUT_S * self.scale))
        return Reply(frame, client.close_code, ref)

    # ----- REST --------------------------------------------------------------------------------
    def rest(
        self,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        try:
            status, data = self.api.call(
                method, path, token=token, json=body, params=params, expect=tuple(range(200, 600))
            )
        except ApiError as exc:  # pragma: no cover - every status is expected above
            return Reply({"error": str(exc)})
        return Reply(data if isinstance(data, dict) else {"raw": data}, status=status)

    # ----- SQL ---------------------------------------------------------------------------------
    def insert_row(self, conversation_id: str, device_id: str, cmid: str, body: Any) -> int:
        row = self.db.insert_message(
            conversation_id, self.user_of[device_id], device_id, body, client_msg_id=cmid
        )
        return int(row["seq"])

    def update_row(self, conversation_id: str, seq: int, body: Any) -> None:
        """UPDATE a row's body and version as another program would (§5.2-a)."""
        self.db.rows(
            "UPDATE messages SET body = %s::json, version = version + 1, edited_at = now()"
            " WHERE conversation_id = %s AND seq = %s RETURNING id",
            (json.dumps(body), conversation_id, seq),
        )

    def snapshot(self, conversations: list[str], devices: list[str]) -> dict[str, Any]:
        """The rows of the walk's conversations and devices (protocol section 9)."""
        rows = self.db.rows(
            "SELECT conversation_id, seq, sender_device_id, client_msg_id, version, deleted,"
            " body::text AS body FROM messages WHERE conversation_id = ANY(%s)"
            " ORDER BY conversation_id, seq",
            (conversations,),
        )
        messages: dict[str, list[tuple[Any, ...]]] = {c: [] for c in conversations}
        for r in rows:
            body = json.loads(r["body"]) if r["body"] is not None else None
            messages[r["conversation_id"]].append(
                (
                    r["seq"],
                    r["sender_device_id"],
                    r["client_msg_id"],
                    r["version"],
                    r["deleted"],
                    body_key(body),
                )
            )
        heads = {
            r["id"]: r["head_seq"]
            for r in self.db.rows(
                "SELECT id, head_seq FROM conversations WHERE id = ANY(%s)", (conversations,)
            )
        }
        members = {
            (r["conversation_id"], r["user_id"])
            for r in self.db.rows(
                "SELECT conversation_id, user_id FROM conversation_members"
                " WHERE conversation_id = ANY(%s)",
                (conversations,),
            )
        }
        cursors = {
            (r["device_id"], r["conversation_id"]): (r["delivered_upto"], r["read_upto"])
            for r in self.db.rows(
                "SELECT device_id, conversation_id, delivered_upto, read_upto FROM device_cursors"
                " WHERE device_id = ANY(%s)",
                (devices,),
            )
        }
        presence = {
            r["device_id"]: r["status"]
            for r in self.db.rows(
                "SELECT device_id, status FROM device_presence WHERE device_id = ANY(%s)",
                (devices,),
            )
        }
        return {
            "messages": messages,
            "heads": heads,
            "members": members,
            "cursors": cursors,
            "presence": presence,
        }

    def close(self) -> None:
        self.close_all()
        self.db.close()


def received_streams(client: DeviceClient) -> tuple[dict[tuple[str, str], list[Any]], list[Any]]:
    """What the current connection received: canonical frames per (category, conversation),
    and the presence frames."""
    streams: dict[tuple[str, str], list[Any]] = {}
    presence: list[dict[str, Any]] = []
    for frame in client.frames[client.connection_start :]:
        data = frame.data or {}
        kind, conv = data.get("type"), str(data.get("conversation_id"))
        if kind in ("message", "message_updated"):
            item: tuple[Any, ...] = (
                kind,
                conv,
                data.get("seq"),
                data.get("version"),
                data.get("deleted"),
                body_key(data.get("body")),
            )
            streams.setdefault((MESSAGE_CATEGORY, conv), []).append(item)
        elif kind == "receipt":
            item = (
                kind,
                conv,
                data.get("device_id"),
                data.get("delivered_upto"),
                data.get("read_upto"),
            )
            streams.setdefault((RECEIPT_CATEGORY, conv), []).append(item)
        elif kind in ("member_added", "member_removed"):
            streams.setdefault((MEMBER_CATEGORY, conv), []).append(
                (kind, conv, data.get("user_id"))
            )
        elif kind == "presence":
            presence.append(data)
    return streams, presence


async def _wait_closed(client: DeviceClient, timeout_s: float) -> None:
    await wait_until([client], lambda: client.close_code is not None, timeout_s)


async def _next_reply(client: DeviceClient, start: int, timeout_s: float) -> dict[str, Any] | None:
    def reply() -> dict[str, Any] | None:
        return next(
            (
                f.data
                for f in client.frames[start:]
                if f.type in ("ack", "error") and f.data is not None
            ),
            None,
        )

    await wait_until(
        [client], lambda: reply() is not None or client.close_code is not None, timeout_s
    )
    return reply()
