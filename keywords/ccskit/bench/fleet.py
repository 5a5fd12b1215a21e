"""Who a load connects: devices, rooms (conversations) and their provisioning over REST."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from ..config import KitConfig
from ..tokens import mint_token


def mint(
    secret: str,
    user: str,
    device: str | None = None,
    admin: bool = False,
    ttl_s: int = 3600,
    issuer: str = "ccs",
    audience: str = "ccs-clients",
) -> str:
    """The kit's token (``ccskit.tokens``) signed with an explicit secret, issuer and audience."""
    config = replace(
        KitConfig.from_env(), token_secret=secret, token_issuer=issuer, token_audience=audience
    )
    return mint_token(user, device, admin=admin, ttl_s=ttl_s, config=config)


@dataclass(frozen=True, slots=True)
class Device:
    """One device identity and its token."""

    user_id: str
    device_id: str
    token: str = ""


@dataclass(slots=True)
class Room:
    """A conversation, its member users' devices, and which of them send."""

    conversation_id: str
    members: list[Device]
    senders: list[Device]


@dataclass(slots=True)
class Fleet:
    """Every device to connect and every room to load."""

    devices: list[Device]
    rooms: list[Room]


def make_rooms(
    prefix: str, rooms: int, members: int, senders: int | None = None, devices_per_user: int = 1
) -> Fleet:
    """``rooms`` conversations of ``members`` devices each (one user per device by default).

    ``senders`` devices of each room send (all by default). Every device belongs to one room, so a
    message reaches exactly ``members`` devices, the sending connection included.
    """
    if members % devices_per_user:
        raise ValueError("members must be a multiple of devices_per_user")
    fleet = Fleet([], [])
    for r in range(rooms):
        room_devices = [
            Device(f"{prefix}-u{r}-{m // devices_per_user}", f"{prefix}-d{r}-{m}")
            for m in range(members)
        ]
        fleet.devices.extend(room_devices)
        n_send = members if senders is None else senders
        fleet.rooms.append(Room(f"{prefix}-c{r}", room_devices, room_devices[:n_send]))
    return fleet


def make_idle(prefix: str, count: int, devices_per_user: int = 10) -> Fleet:
    """``count`` devices in no conversation: connections to hold, with no presence fan-out."""
    devices = [Device(f"{prefix}-u{i // devices_per_user}", f"{prefix}-d{i}") for i in range(count)]
    return Fleet(devices, [])


async def provision(
    api_url: str,
    secret: str,
    fleet: Fleet,
    concurrency: int = 32,
    timeout_s: float = 120.0,
    issuer: str = "ccs",
    audience: str = "ccs-clients",
) -> Fleet:
    """Create the fleet's users, devices and conversations through the REST API; mint tokens.

    Uses the admin fixture endpoints of protocol.md section 8 (201 expected, 409 tolerated so a
    fleet can be provisioned twice). Returns a fleet whose devices carry tokens.
    """
    admin_token = mint(secret, "ccs-kit-admin", admin=True, issuer=issuer, audience=audience)
    admin = {"Authorization": f"Bearer {admin_token}"}
    limit = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(api_url, headers=admin, timeout=timeout) as http:

        async def post(path: str, payload: dict[str, Any]) -> None:
            async with limit, http.post(path, json=payload) as resp:
                if resp.status not in (200, 201, 409):
                    raise RuntimeError(f"POST {path} -> {resp.status}: {await resp.text()}")

        users = sorted({d.user_id for d in fleet.devices})
        await asyncio.gather(*(post("/v1/users", {"user_id": u}) for u in users))
        await asyncio.gather(
            *(
                post(f"/v1/users/{d.user_id}/devices", {"device_id": d.device_id})
                for d in fleet.devices
            )
        )
        await asyncio.gather(
            *(
                post(
                    "/v1/conversations",
                    {
                        "conversation_id": room.conversation_id,
                        "members": sorted({d.user_id for d in room.members}),
                    },
                )
                for room in fleet.rooms
            )
        )
    tokens = {
        d.device_id: mint(secret, d.user_id, d.device_id, issuer=issuer, audience=audience)
        for d in fleet.devices
    }
    with_tokens = {
        d.device_id: Device(d.user_id, d.device_id, tokens[d.device_id]) for d in fleet.devices
    }
    return Fleet(
        list(with_tokens.values()),
        [
            Room(
                r.conversation_id,
                [with_tokens[d.device_id] for d in r.members],
                [with_tokens[d.device_id] for d in r.senders],
            )
            for r in fleet.rooms
        ],
    )
