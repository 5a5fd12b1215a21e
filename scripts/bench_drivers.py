"""Compare asyncpg and psycopg 3 (async) on the server's hot path: one INSERT + COMMIT per message.

Usage: ``python scripts/bench_drivers.py [--messages 3000]`` (the kit's ``DATABASE_URL`` login)

Each worker owns one connection and runs single-row inserts in autocommit mode (every statement is
its own committed transaction, like one send). Prints msgs/s and p50/p99 per driver for 1 and 8
connections. Uses a private database ``ccs_bench_drivers`` that it creates and drops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import asyncpg
from ccskit.config import database_url_for
from ccskit.percentile import percentile

try:
    import psycopg
except ImportError:  # psycopg is only needed for this benchmark
    psycopg = None  # type: ignore[assignment]

BENCH_DB = "ccs_bench_drivers"
DDL = (
    "CREATE TABLE IF NOT EXISTS bench_msgs (id bigserial PRIMARY KEY, conv text NOT NULL, "
    "cmid text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
INSERT_ASYNCPG = "INSERT INTO bench_msgs (conv, cmid, body) VALUES ($1, $2, $3::jsonb) RETURNING id"
INSERT_PSYCOPG = "INSERT INTO bench_msgs (conv, cmid, body) VALUES (%s, %s, %s::jsonb) RETURNING id"

Worker = Callable[[int, int], Awaitable[list[float]]]


async def asyncpg_worker(dsn: str, worker: int, count: int) -> list[float]:
    """Insert ``count`` rows on one asyncpg connection; return per-insert latencies in seconds."""
    conn = await asyncpg.connect(dsn)
    stmt = await conn.prepare(INSERT_ASYNCPG)
    lat = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            await stmt.fetchval(f"c{worker}", f"w{worker}-{i}", json.dumps({"text": "hi", "n": i}))
            lat.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return lat


async def psycopg_worker(dsn: str, worker: int, count: int) -> list[float]:
    """Insert ``count`` rows on one psycopg 3 async connection (autocommit, prepared)."""
    assert psycopg is not None
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=0)
    lat = []
    try:
        async with conn.cursor() as cur:
            for i in range(count):
                t0 = time.perf_counter()
                await cur.execute(
                    INSERT_PSYCOPG, (f"c{worker}", f"w{worker}-{i}", json.dumps({"n": i}))
                )
                await cur.fetchone()
                lat.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return lat


async def run(
    name: str, worker: Callable[..., Awaitable[list[float]]], dsn: str, conns: int, total: int
) -> dict[str, float | str | int]:
    """Run ``conns`` workers sharing ``total`` inserts and summarise throughput and latency."""
    per = total // conns
    t0 = time.perf_counter()
    results = await asyncio.gather(*(worker(dsn, w, per) for w in range(conns)))
    elapsed = time.perf_counter() - t0
    lat = sorted(x for r in results for x in r)
    return {
        "driver": name,
        "connections": conns,
        "messages": len(lat),
        "msgs_per_s": round(len(lat) / elapsed),
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
    }


async def main() -> None:
    """Create the bench database, run each driver at 1 and 8 connections, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    admin = await asyncpg.connect(database_url_for("postgres"))
    await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    dsn = database_url_for(BENCH_DB)
    try:
        setup = await asyncpg.connect(dsn)
        await setup.execute(DDL)
        await setup.close()
        drivers: list[tuple[str, Callable[..., Awaitable[list[float]]]]] = [
            ("asyncpg", asyncpg_worker)
        ]
        if psycopg is not None:
            drivers.append(("psycopg3-async", psycopg_worker))
        for conns in (1, 8):
            for name, worker in drivers:
                await run(name, worker, dsn, conns, args.messages // 5)  # warm-up
                print(json.dumps(await run(name, worker, dsn, conns, args.messages)), flush=True)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
