"""Node leases and presence reconciliation (P10: a dead node's devices go offline within its lease).

Every node renews a lease every lease/3: a Redis key with a TTL when ``REDIS_URL`` is set, else a
row of the ``nodes`` table (``lease_until`` in database time). Every node also looks at
``device_presence``: a device still ``online``/``away`` on a node whose lease is gone belongs to a
dead node, so it is set offline (one atomic UPDATE: whichever node gets the rows broadcasts) and
``presence offline`` goes to everyone sharing a conversation with its user. Every node records
in ``nodes.lease_store`` where its lease lives and judges only peers of the same store, so a
misconfigured mix (some nodes with Redis, some without) never reaps live devices.

The same loop repairs this node's own presence: writes lost while the database was down
(an offline that was never stored, an online overwritten by a peer that thought this node dead)
are re-applied from the sessions this node actually holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Protocol

from .hub import Hub
from .pg_deadline import BoundedPool
from .redis_bus import RedisLink

log = logging.getLogger("ccs.leases")

LEASE_KEY = "ccs:lease:{}"
# Created once per Redis dataset: if it changes, Redis lost its keys (restart without persistence)
# and every lease is gone at once, which must not look like every peer dying.
EPOCH_KEY = "ccs:lease-epoch"
_RELEASE_LUA = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class LeaseStore(Protocol):
    """Where leases live."""

    kind: str

    async def renew(self, node: str, instance: str, ttl_ms: int) -> bool:
        """Renew; True if the store lost every lease since the last renewal (a restart)."""
        ...

    async def alive(self, nodes: list[str]) -> set[str]: ...
    async def release(self, node: str, instance: str) -> None: ...


class RedisLeases:
    """``SET ccs:lease:<node> <instance> PX <ttl>``; expiry is Redis's job."""

    kind = "redis"

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.epoch: bytes | None = None

    async def renew(self, node: str, instance: str, ttl_ms: int) -> bool:
        """Write (or extend) this node's lease; True if Redis's dataset is new (keys lost)."""
        pipe = self.link.client.pipeline(transaction=False)
        pipe.set(LEASE_KEY.format(node), instance, px=ttl_ms)
        # a fresh value per attempt: the same node recreating it after a second loss must differ
        pipe.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
        pipe.get(EPOCH_KEY)
        *_, epoch = await self.link.call(pipe.execute())
        reset, self.epoch = epoch != self.epoch, epoch
        return bool(reset)

    async def alive(self, nodes: list[str]) -> set[str]:
        """The nodes among ``nodes`` whose lease key still exists.

        If Redis lost its keys since our last renewal, peers have not renewed yet: all count
        as alive until the next renewal notices the new epoch.
        """
        keys = [EPOCH_KEY, *(LEASE_KEY.format(n) for n in nodes)]
        epoch, *values = await self.link.call(self.link.client.mget(keys))
        if epoch is None or epoch != self.epoch:
            return set(nodes)
        return {n for n, val in zip(nodes, values, strict=True) if val is not None}

    async def release(self, node: str, instance: str) -> None:
        """Delete the lease if it is still ours (a restarted node may already own the name)."""
        await self.link.call(
            self.link.client.eval(_RELEASE_LUA, 1, LEASE_KEY.format(node), instance)
        )


class PgLeases:
    """The ``nodes`` table (migration 0003), used when no Redis is configured."""

    kind = "postgres"

    def __init__(self, pool: BoundedPool, timeout_s: float) -> None:
        self.pool = pool  # every call bounded as a whole (pg_deadline.py)
        self.timeout = timeout_s

    async def renew(self, node: str, instance: str, ttl_ms: int) -> bool:
        """Upsert ``lease_until = now() + ttl`` (a table never loses leases: never a reset)."""
        await self.pool.execute(
            "INSERT INTO nodes (node_id, instance, lease_until)"
            " VALUES ($1, $2, now() + $3 * interval '1 millisecond')"
            " ON CONFLICT (node_id) DO UPDATE SET instance = EXCLUDED.instance,"
            " lease_until = EXCLUDED.lease_until",
            node,
            instance,
            ttl_ms,
            timeout=self.timeout,
        )
        return False

    async def alive(self, nodes: list[str]) -> set[str]:
        """The nodes among ``nodes`` whose lease has not run out."""
        recs = await self.pool.fetch(
            "SELECT node_id FROM nodes WHERE node_id = ANY($1::text[]) AND lease_until > now()",
            nodes,
            timeout=self.timeout,
        )
        return {r["node_id"] for r in recs}

    async def release(self, node: str, instance: str) -> None:
        """End the lease now if it is still ours (the row stays: peers reap what is left)."""
        await self.pool.execute(
            "UPDATE nodes SET lease_until = now() WHERE node_id = $1 AND instance = $2",
            node,
            instance,
            timeout=self.timeout,
        )


class PresenceKeeper:
    """Renews this node's lease, reaps dead nodes' devices, repairs this node's own presence."""

    def __init__(self, hub: Hub, leases: LeaseStore, lease_ms: int) -> None:
        self.hub = hub
        self.presence = hub.presence
        self.leases = leases
        self.lease_ms = lease_ms
        self.node_id = hub.node_id
        self.instance = uuid.uuid4().hex
        # monotonic time since which renewals succeed without a miss (None: failing right now)
        self.healthy_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the heartbeat loop in the background."""
        self._task = asyncio.create_task(self._run(), name="presence-keeper")

    async def register(self) -> None:
        """Record this node and where its lease lives (peers judge only same-store nodes)."""
        await self.presence.register_node(
            self.node_id, self.instance, self.lease_ms, self.leases.kind
        )

    async def stop(self, release: bool = True) -> None:
        """Stop renewing; ``release`` deletes the lease so peers need not wait for it to expire."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if release:
            try:
                await self.leases.release(self.node_id, self.instance)
            except Exception:
                log.warning("could not release the node lease (it will expire)")

    async def _run(self) -> None:
        period = self.lease_ms / 3000
        while True:
            await asyncio.sleep(period)
            await self.tick()

    async def tick(self) -> None:
        """One heartbeat: renew, then repair own presence, then reap dead nodes (never raises)."""
        try:
            reset = await self.leases.renew(self.node_id, self.instance, self.lease_ms)
        except Exception as exc:
            if self.healthy_since is not None:
                log.warning("lease renewal failed", extra={"error": type(exc).__name__})
            self.healthy_since = None
        else:
            if self.healthy_since is None or reset:
                # peers need a whole lease to renew theirs before a missing one means "dead"
                self.healthy_since = time.monotonic()
        for step in (self.repair_own, self.reap_dead):
            try:
                await step()
            except Exception as exc:
                log.info("presence step failed", extra={"step": step.__name__, "error": repr(exc)})

    async def repair_own(self) -> None:
        """Make stored presence match the sessions this node holds."""
        hub = self.hub
        for device, user in await self.presence.online_on(self.node_id):
            if device in hub.by_device or device in hub.offline_timers:
                continue  # connected here, or its grace period is still running
            if await self.presence.set_offline(device, self.node_id):
                hub.metrics.presence_repairs.inc()
                await hub.publish_presence(user, device)
        if not hub.by_device:
            return
        known = await self.presence.statuses(list(hub.by_device))
        for device, sessions in list(hub.by_device.items()):
            if known.get(device, "offline") != "offline" or not sessions:
                continue
            user = next(iter(sessions)).user_id
            if await self.presence.set_online(user, device, "online", self.node_id):
                log.info("presence re-applied", extra={"device_id": device})
                await hub.publish_presence(user, device)

    async def reap_dead(self) -> None:
        """Offline every device held by a node whose lease is gone.

        Only once our own renewals have succeeded for a whole lease: after a Redis restart (keys
        lost) or a lease store outage, live peers need that long to renew theirs.
        """
        if self.healthy_since is None:
            return
        if time.monotonic() - self.healthy_since < self.lease_ms / 1000:
            return
        nodes = await self.presence.nodes_holding_devices(self.node_id, self.leases.kind)
        if not nodes:
            return
        alive = await self.leases.alive(nodes)
        for node in nodes:
            if node not in alive:
                await self.reap_node(node)

    async def reap_node(self, node: str) -> int:
        """Set ``node``'s devices offline and broadcast each; returns how many changed."""
        recs = await self.presence.offline_node(node)
        if recs:
            log.warning(
                "devices of a node without lease set offline",
                extra={"node": node, "devices": len(recs)},
            )
        for device, user in recs:
            await self.hub.publish_presence(user, device)
        return len(recs)
