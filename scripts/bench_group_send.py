"""Throughput and latency of the server's group-committed sends, without WebSockets.

Drives ``PgStore.send`` (ccs_server/group_send.py) directly: ``--senders`` concurrent senders,
``--per-conversation`` of them sharing each conversation, each sending one message at a time
(the next after its ack, as a connection does). Every send must be ``created``. Prints sends/s,
p50/p99 send->ack and how the sends were grouped. Runs on a database of its own, created and
dropped on the server of ``BENCH_ADMIN_DSN`` (default: the kit's login on database ``postgres``).

To compare two server trees, run the same command with ``PYTHONPATH=<tree>`` (a directory holding
a ``ccs_server`` package) alternately, several times: a shared machine's noise is larger than
most differences.

    python scripts/bench_group_send.py --senders 200 --per-conversation 10
    PYTHONPATH=/tmp/old python scripts/bench_group_send.py --senders 2000 --per-conversation 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
from ccskit.config import admin_database_url, database_url_for
from ccskit.percentile import percentile

from ccs_server import group_send
from ccs_server.pg_migrations import apply_migrations
from ccs_server.pg_store import PgStore

ADMIN_DSN = admin_database_url()


@dataclass
class Batches:
    """Sizes and durations of the group statements (recorded around ``GroupSender._write``)."""

    sizes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def record_on(self, sender: group_send.GroupSender) -> None:
        """Wrap ``sender``'s batch writer so every batch is measured."""
        write = sender._write

        async def measured(items: list[group_send._Item]) -> None:
            started = time.perf_counter()
            try:
                await write(items)
            finally:
                self.sizes.append(len(items))
                self.seconds.append(time.perf_counter() - started)

        sender._write = measured  # type: ignore[method-assign]

    def summary(self) -> str:
        if not self.sizes:
            return "no batches"
        return (
            f"{len(self.sizes)} batches, mean size {statistics.mean(self.sizes):.1f}"
            f" (max {max(self.sizes)}), batch p50 {statistics.median(self.seconds) * 1000:.1f} ms"
        )


async def seed(dsn: str, senders: int, per_conversation: int) -> None:
    """Users u1..uN with devices d1..dN; conversation c<k> holds ``per_conversation`` users."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute(
            "INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, $1) g", senders
        )
        await conn.execute(
            "INSERT INTO devices (id, user_id) SELECT 'd' || g, 'u' || g"
            " FROM generate_series(1, $1) g",
            senders,
        )
        await conn.execute(
            "INSERT INTO conversations (id) SELECT 'c' || g FROM generate_series(1, $1) g",
            -(-senders // per_conversation),
        )
        await conn.execute(
            "INSERT INTO conversation_members (conversation_id, user_id)"
            " SELECT 'c' || (1 + (g - 1) / $2::int), 'u' || g FROM generate_series(1, $1) g",
            senders,
            per_conversation,
        )
    finally:
        await conn.close()


async def drive(store: PgStore, args: argparse.Namespace) -> tuple[list[float], float]:
    """Every sender sends ``sends // senders`` messages one after the other; returns the
    send->ack times and the wall time."""
    per_sender = args.sends // args.senders
    latencies: list[float] = []

    async def sender(i: int) -> None:
        conv = f"c{1 + (i - 1) // args.per_conversation}"
        for n in range(per_sender):
            started = time.perf_counter()
            result = await store.send(conv, f"u{i}", f"d{i}", f"m{n}", '{"n":1}')
            latencies.append(time.perf_counter() - started)
            if result.outcome != "created":
                raise AssertionError(f"sender {i} message {n}: expected created, got {result}")

    started = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(1, args.senders + 1)))
    return latencies, time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    name = f"ccs_bench_group_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = database_url_for(name, ADMIN_DSN)
    try:
        await seed(dsn, args.senders, args.per_conversation)
        async with PgStore.open(dsn, args.pool, args.timeout, "bench-group") as store:
            batches = Batches()
            batches.record_on(store.group)
            latencies, took = await drive(store, args)
        ms = [s * 1000 for s in latencies]
        print(
            f"{args.label}: {len(ms)} sends by {args.senders} senders"
            f" ({args.per_conversation} per conversation): {len(ms) / took:.0f}/s,"
            f" p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms;"
            f" {batches.summary()}"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--per-conversation", type=int, default=10)
    p.add_argument("--sends", type=int, default=20_000, help="in total")
    p.add_argument("--pool", type=int, default=10, help="database pool size (the server's default)")
    p.add_argument("--timeout", type=float, default=5.0, help="database deadline, seconds")
    p.add_argument("--label", default="group send", help="names the run in the output line")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
