"""What a distributed run loads and which worker holds which device.

The master describes the run once (:class:`RunPlan`), builds the fleet with the kit's own
:func:`ccskit.bench.fleet.make_rooms` / :func:`make_idle`, provisions it through the REST fixture
API and hands every worker its :class:`Share`. Devices are dealt out round robin, so every room
has members on several workers and every message crosses processes (and, with several server
URLs, nodes) on its way from sender to receivers. The fleet is padded with idle devices to a
multiple of the worker count: Locust deals its users round robin too, so every worker then gets
exactly as many Locust users as it holds devices.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..bench.fleet import Device, Fleet, make_idle, make_rooms


@dataclass(frozen=True)
class RunPlan:
    """Everything a worker must know about the run (sent to it as a Locust custom message)."""

    prefix: str
    rooms: int = 10
    members: int = 10
    senders: int | None = None
    """Devices per room that send (all members by default)."""
    idle: int = 0
    """Extra devices in no conversation: connections to hold, no traffic."""
    rate_per_conversation: float = 5.0
    """Messages per second into each room, shared by its senders."""
    receipt_every_s: float = 2.0
    """Each device confirms delivery of what it received this often (0: never)."""
    ws_urls: tuple[str, ...] = ()
    """Server nodes; device *i* connects to ``ws_urls[i % len]``."""
    source_addresses: tuple[str, ...] = ()
    """Loopback addresses the clients bind to (``127.0.0.2`` …) so source ports do not run out."""
    connect_in_flight: int = 200
    """Handshakes in flight per worker (Locust's spawn rate paces the users on top of this)."""
    body_pad: int = 16
    send_after_all_online: bool = False
    """Hold back every send until every device has connected (or failed for good), so a big
    connect phase and the message load do not compete; the master then says go."""

    def as_dict(self) -> dict[str, Any]:
        """Msgpack-friendly form (Locust's custom messages carry msgpack)."""
        data = asdict(self)
        data["ws_urls"] = list(self.ws_urls)
        data["source_addresses"] = list(self.source_addresses)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        values = dict(data)
        values["ws_urls"] = tuple(values.get("ws_urls", ()))
        values["source_addresses"] = tuple(values.get("source_addresses", ()))
        return cls(**values)

    def sender_interval_s(self) -> float:
        """Seconds between two sends of one sender device."""
        per_room = self.members if self.senders is None else self.senders
        if self.rate_per_conversation <= 0 or per_room <= 0:
            return math.inf
        return per_room / self.rate_per_conversation


def build_fleet(plan: RunPlan, workers: int) -> Fleet:
    """The plan's rooms and idle devices, padded with idle devices to a multiple of ``workers``."""
    fleet = make_rooms(plan.prefix, plan.rooms, plan.members, plan.senders)
    total = len(fleet.devices) + plan.idle
    padded = math.ceil(total / workers) * workers if workers > 0 else total
    if padded > len(fleet.devices):
        fleet.devices.extend(make_idle(f"{plan.prefix}-i", padded - len(fleet.devices)).devices)
    return fleet


@dataclass
class Slot:
    """One device as a worker holds it."""

    user_id: str
    device_id: str
    token: str
    ws_url: str
    source_address: str | None
    conversation_id: str | None
    sends: bool

    def as_list(self) -> list[Any]:
        return [
            self.user_id,
            self.device_id,
            self.token,
            self.ws_url,
            self.source_address,
            self.conversation_id,
            self.sends,
        ]

    @classmethod
    def from_list(cls, row: list[Any]) -> Slot:
        return cls(*row)


@dataclass
class Share:
    """The devices one worker holds, in the order its Locust users claim them."""

    worker: int
    plan: RunPlan
    slots: list[Slot] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "plan": self.plan.as_dict(),
            "slots": [s.as_list() for s in self.slots],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Share:
        return cls(
            data["worker"],
            RunPlan.from_dict(data["plan"]),
            [Slot.from_list(row) for row in data["slots"]],
        )


def deal(plan: RunPlan, fleet: Fleet, workers: int) -> list[Share]:
    """Deal the provisioned ``fleet`` (devices with tokens) round robin to ``workers`` shares."""
    if workers < 1:
        raise ValueError(f"a distributed run needs at least one worker, got {workers}")
    if not plan.ws_urls:
        raise ValueError("the plan names no server URL (ws_urls)")
    room_of: dict[str, str] = {}
    senders: set[str] = set()
    for room in fleet.rooms:
        for device in room.members:
            room_of[device.device_id] = room.conversation_id
        senders.update(d.device_id for d in room.senders)
    shares = [Share(w, plan) for w in range(workers)]
    for i, device in enumerate(fleet.devices):
        shares[i % workers].slots.append(_slot(plan, i, device, room_of, senders))
    return shares


def _slot(
    plan: RunPlan, i: int, device: Device, room_of: dict[str, str], senders: set[str]
) -> Slot:
    addresses = plan.source_addresses
    return Slot(
        device.user_id,
        device.device_id,
        device.token,
        plan.ws_urls[i % len(plan.ws_urls)],
        addresses[(i // len(plan.ws_urls)) % len(addresses)] if addresses else None,
        room_of.get(device.device_id),
        device.device_id in senders,
    )
