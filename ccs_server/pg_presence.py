"""PostgreSQL implementation of ``PresenceStore``: ``device_presence`` and the ``nodes`` table."""

from __future__ import annotations

from collections.abc import Sequence

from .pg_deadline import BoundedPool
from .pg_errors import MappedReads, db_errors
from .ports import Row


class PgPresence(MappedReads):
    """Per-device presence rows; every call bounded by the pool's deadline."""

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool

    async def set_online(self, user: str, device: str, status: str, node: str) -> bool:
        """Store the device as ``status`` on ``node``; True if its stored status changed."""
        rec = await self._fetchrow(
            "WITH old AS (SELECT status FROM device_presence WHERE device_id = $1)"
            " INSERT INTO device_presence (device_id, user_id, status, last_seen, node_id)"
            " VALUES ($1, $2, $3, now(), $4) ON CONFLICT (device_id) DO UPDATE SET"
            " status = EXCLUDED.status, user_id = EXCLUDED.user_id, last_seen = now(),"
            " node_id = EXCLUDED.node_id RETURNING (SELECT status FROM old) AS old_status",
            device,
            user,
            status,
            node,
        )
        return rec is None or rec["old_status"] != status

    async def set_offline(self, device: str, node: str) -> bool:
        """Mark offline unless another node has taken the device over; True if it changed."""
        rec = await self._fetchrow(
            "UPDATE device_presence SET status = 'offline', last_seen = now()"
            " WHERE device_id = $1 AND node_id = $2 AND status <> 'offline' RETURNING device_id",
            device,
            node,
        )
        return rec is not None

    async def user_presence(self, user: str) -> Row:
        """User status (online if any device is, else away if any is, else offline) and devices."""
        return (await self.presence_of([user]))[user]

    async def presence_of(self, users: Sequence[str]) -> dict[str, Row]:
        """``user_presence`` of several users in one query."""
        recs = await self._fetch(
            "SELECT user_id, device_id, status, last_seen, node_id FROM device_presence"
            " WHERE user_id = ANY($1::text[]) ORDER BY user_id, device_id",
            list(users),
        )
        devices: dict[str, list[Row]] = {u: [] for u in users}
        for r in recs:
            row = dict(r)
            devices[row.pop("user_id")].append(row)
        out = {}
        for user, devs in devices.items():
            statuses = {d["status"] for d in devs}
            status = next((s for s in ("online", "away") if s in statuses), "offline")
            out[user] = {"user_id": user, "status": status, "devices": devs}
        return out

    async def online_on(self, node: str) -> list[tuple[str, str]]:
        """``(device_id, user_id)`` of devices stored as not offline on ``node``."""
        recs = await self._fetch(
            "SELECT device_id, user_id FROM device_presence"
            " WHERE node_id = $1 AND status <> 'offline'",
            node,
        )
        return [(r["device_id"], r["user_id"]) for r in recs]

    async def statuses(self, devices: Sequence[str]) -> dict[str, str]:
        """Stored status of each of ``devices`` that has a presence row."""
        recs = await self._fetch(
            "SELECT device_id, status FROM device_presence WHERE device_id = ANY($1::text[])",
            list(devices),
        )
        return {r["device_id"]: r["status"] for r in recs}

    async def offline_node(self, node: str) -> list[tuple[str, str]]:
        """Set every device of ``node`` offline; ``(device_id, user_id)`` of those changed."""
        recs = await self._fetch(
            "UPDATE device_presence SET status = 'offline', last_seen = now()"
            " WHERE node_id = $1 AND status <> 'offline' RETURNING device_id, user_id",
            node,
        )
        return [(r["device_id"], r["user_id"]) for r in recs]

    async def nodes_holding_devices(self, other_than: str, lease_store: str) -> list[str]:
        """Nodes leased in ``lease_store``, other than ``other_than``, with devices online.

        A node judges only peers whose lease lives where its own does (migration 0005).
        """
        recs = await self._fetch(
            "SELECT DISTINCT p.node_id FROM device_presence p"
            " JOIN nodes n ON n.node_id = p.node_id AND n.lease_store = $2"
            " WHERE p.status <> 'offline' AND p.node_id <> $1",
            other_than,
            lease_store,
        )
        return [r["node_id"] for r in recs]

    async def register_node(self, node: str, instance: str, lease_ms: int, kind: str) -> None:
        """Record the node, its running instance and where its lease lives."""
        with db_errors():
            await self.pool.execute(
                "INSERT INTO nodes (node_id, instance, lease_until, lease_store)"
                " VALUES ($1, $2, now() + $3 * interval '1 millisecond', $4)"
                " ON CONFLICT (node_id) DO UPDATE SET instance = EXCLUDED.instance,"
                " lease_until = EXCLUDED.lease_until, lease_store = EXCLUDED.lease_store",
                node,
                instance,
                lease_ms,
                kind,
            )
