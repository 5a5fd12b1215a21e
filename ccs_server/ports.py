"""Interfaces through which the core reaches storage and the cross-node bus.

PostgreSQL implementations live in ``pg_store.py`` and ``pg_bus.py``; a Redis-backed bus or presence
store can implement the same protocols later without touching the core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Row = dict[str, Any]


@dataclass(frozen=True)
class ConvState:
    """What a device needs to start a session in one conversation."""

    conversation_id: str
    head_seq: int
    delivered_upto: int
    edit_seq: int = 0
    join_seq: int = 0  # head when the user joined: nothing at or before it is delivered


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a stored procedure call plus the message row (when any)."""

    outcome: str
    row: Row | None


class MessageStore(Protocol):
    """Durable messages, cursors, membership and fixtures."""

    async def send(
        self, conv: str, user: str, device: str | None, cmid: str, body_json: str
    ) -> WriteResult: ...
    async def edit(
        self, conv: str, user: str, seq: int, expected: int, body_json: str | None, delete: bool
    ) -> WriteResult: ...
    async def receipt(
        self, conv: str, user: str, device: str, kind: str, seq: int
    ) -> WriteResult: ...
    async def fetch_range(self, conv: str, after: int, upto: int, limit: int) -> list[Row]: ...
    async def fetch_many(self, keys: Sequence[tuple[str, int]]) -> list[Row]: ...
    async def history(
        self, conv: str, user: str | None, after: int | None, before: int | None, limit: int
    ) -> tuple[list[Row], bool] | None: ...
    async def session_state(self, user: str, device: str) -> list[ConvState]: ...
    async def heads(self, convs: Sequence[str]) -> dict[str, int]: ...
    async def marks(self, convs: Sequence[str]) -> dict[str, tuple[int, int]]: ...
    async def fetch_edited(self, conv: str, after: int, upto: int) -> list[Row]: ...
    async def is_member(self, conv: str, user: str) -> int | None: ...
    async def membership(self, conv: str, user: str) -> tuple[int, int] | None: ...
    async def device_owner(self, device: str) -> tuple[str, bool] | None: ...
    async def message_status(self, conv: str, seq: int) -> Row | None: ...
    async def audience(self, user: str) -> list[str]: ...


class PresenceStore(Protocol):
    """Per-device presence with last seen and owning node."""

    async def set_online(self, user: str, device: str, status: str, node: str) -> bool: ...
    async def set_offline(self, device: str, node: str) -> bool: ...
    async def user_presence(self, user: str) -> Row: ...
    async def presence_of(self, users: Sequence[str]) -> dict[str, Row]: ...


EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


class Bus(Protocol):
    """Cross-node fan-out of ephemeral events (receipts, presence). At-most-once."""

    async def publish(self, event: dict[str, Any]) -> None: ...
    def subscribe(self, handler: EventHandler) -> None: ...
