"""Interfaces through which the core reaches storage and the cross-node bus.

``Hub``, ``Node`` and the request handlers hold these protocols, never a PostgreSQL class (as
centrifuge's ``Node`` holds a ``Broker``): the PostgreSQL implementations (``pg_store.py``,
``pg_presence.py``, ``pg_fixtures.py``, ``pg_bus.py``) are chosen in one place, ``app.py``, so a
Redis presence store or another bus replaces one constructor call there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
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
    """Durable messages, cursors and membership.

    Writes (``send``, ``edit``, ``receipt``) raise ``unavailable`` only when nothing was stored
    and ``outcome_unknown`` when the commit may have happened (see pg_write.py).
    """

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
    def writing(self, convs: Iterable[str]) -> list[asyncio.Future[None]]:
        """Completion of the sends being committed right now that touch any of ``convs``."""
        ...

    async def ping(self) -> bool: ...


class PresenceStore(Protocol):
    """Per-device presence with last seen and owning node, and the registry of nodes."""

    async def set_online(self, user: str, device: str, status: str, node: str) -> bool: ...
    async def set_offline(self, device: str, node: str) -> bool: ...
    async def user_presence(self, user: str) -> Row: ...
    async def presence_of(self, users: Sequence[str]) -> dict[str, Row]: ...
    async def online_on(self, node: str) -> list[tuple[str, str]]:
        """``(device_id, user_id)`` of devices stored as not offline on ``node``."""
        ...

    async def statuses(self, devices: Sequence[str]) -> dict[str, str]: ...
    async def offline_node(self, node: str) -> list[tuple[str, str]]:
        """Set every device of ``node`` offline; ``(device_id, user_id)`` of those changed."""
        ...

    async def nodes_holding_devices(self, other_than: str, lease_store: str) -> list[str]:
        """Nodes (leased in ``lease_store``) other than ``other_than`` with devices online."""
        ...

    async def register_node(self, node: str, instance: str, lease_ms: int, kind: str) -> None: ...


class FixtureStore(Protocol):
    """Users, devices, conversations and members, created through the admin REST API.

    Raise ``conflict`` for what exists already and ``not_found`` for a missing reference.
    """

    async def create_user(self, user: str, display_name: str | None) -> None: ...
    async def create_device(self, user: str, device: str, name: str | None) -> None: ...
    async def create_conversation(
        self, conv: str, title: str | None, members: Sequence[str]
    ) -> None: ...
    async def add_member(self, conv: str, user: str) -> None: ...
    async def remove_member(self, conv: str, user: str) -> bool: ...


EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


class Bus(Protocol):
    """Cross-node fan-out of ephemeral events (receipts, presence). At-most-once."""

    async def publish(self, event: dict[str, Any]) -> None: ...
    def subscribe(self, handler: EventHandler) -> None: ...
