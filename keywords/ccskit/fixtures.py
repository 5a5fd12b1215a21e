"""Logical fixture names (``alice``, ``alice-phone``, ``team-room``) and the real ids behind them.

Tests name fixtures; the server sees unique ids (``alice-3fa9c1p1q4-17``). Every lookup accepts
a fixture name or a real id this registry handed out, and fails on anything else with the list of
known names: a typo must stop the test here, not reach the server as an id nobody created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

V = TypeVar("V")


class UnknownFixture(AssertionError):
    """A fixture name that was never created in this run."""

    ROBOT_SUPPRESS_NAME = True


@dataclass
class Fixtures:
    """Names chosen by tests -> real ids, per kind (users, devices, conversations)."""

    users: dict[str, str] = field(default_factory=dict)
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (user, device)
    conversations: dict[str, str] = field(default_factory=dict)

    def user(self, name: str) -> str:
        """Real id of user fixture ``name`` (or ``name`` itself when it is such an id)."""
        return _lookup(self.users, name, "user", lambda uid: uid == name)

    def device(self, name: str) -> tuple[str, str]:
        """``(user_id, device_id)`` of device fixture ``name`` (or of that real device id)."""
        return _lookup(self.devices, name, "device", lambda ids: ids[1] == name)

    def device_id(self, name: str) -> str:
        """Real device id of device fixture ``name``."""
        return self.device(name)[1]

    def conversation(self, name: str) -> str:
        """Real id of conversation fixture ``name`` (or ``name`` itself when it is such an id)."""
        return _lookup(self.conversations, name, "conversation", lambda cid: cid == name)

    def conversations_of(self, names: str) -> list[str]:
        """Real ids of comma-separated conversation fixture names."""
        return [self.conversation(n.strip()) for n in names.split(",") if n.strip()]

    def all_conversation_ids(self) -> list[str]:
        return list(self.conversations.values())

    def all_device_ids(self) -> list[str]:
        return [device for _, device in self.devices.values()]


def _lookup(table: dict[str, V], name: str, kind: str, is_real_id: Callable[[V], bool]) -> V:
    if name in table:
        return table[name]
    for value in table.values():
        if is_real_id(value):
            return value
    known = ", ".join(sorted(table)) or "none created yet"
    raise UnknownFixture(f"no {kind} fixture named '{name}' (known names: {known})")
