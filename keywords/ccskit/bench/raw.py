"""Raw limits measured in the same run as the benchmark, so the server's figures have a yardstick.

* :func:`ws_echo_rtt`: WebSocket round trip against a trivial echo server in another process.
* :func:`raw_commit`: single-row INSERT + COMMIT rate and latency with asyncpg (the server's driver)
  over as many connections as the server's pool, on a table shaped like ``messages``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import asyncpg
from websockets.asyncio.client import connect

from ..percentile import percentiles

ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for m in ws:
        await ws.send(m)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

RAW_TABLE = (
    "CREATE TABLE raw_msgs (id bigserial PRIMARY KEY, conversation_id text NOT NULL, "
    "seq bigint, client_msg_id text NOT NULL, body jsonb NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())"
)
RAW_NOTIFY = (
    "CREATE FUNCTION raw_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM pg_notify('raw_changes', NEW.id::text); RETURN NULL; END $$; "
    "CREATE TRIGGER raw_notify AFTER INSERT ON raw_msgs FOR EACH ROW EXECUTE FUNCTION raw_notify()"
)
RAW_INSERT = (
    "INSERT INTO raw_msgs (conversation_id, client_msg_id, body) VALUES ($1, $2, $3::jsonb) "
    "RETURNING id"
)


async def ws_echo_rtt(round_trips: int = 3000, warmup: int = 300) -> dict[str, float]:
    """Sequential round trips of a small JSON frame on one connection; milliseconds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO_SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 15))
        frame = json.dumps({"type": "message", "conversation_id": "c", "seq": 1, "body": "x" * 16})
        rtts: list[float] = []
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            for i in range(warmup + round_trips):
                t0 = time.perf_counter()
                await ws.send(frame)
                await ws.recv()
                if i >= warmup:
                    rtts.append((time.perf_counter() - t0) * 1000)
        return {**percentiles(rtts, (50, 99)), "samples": len(rtts)}
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the echo server exits when its stdin closes
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def raw_commit(
    admin_dsn: str,
    dsn: str,
    database: str,
    connections: int = 10,
    seconds: float = 3.0,
    notify: bool = False,
) -> dict[str, Any]:
    """Single-row autocommit inserts from ``connections`` workers for ``seconds``.

    With ``notify`` a row trigger calls ``pg_notify`` as a database-driven delivery path does:
    PostgreSQL then serialises the commits of notifying transactions (one global lock held
    through the WAL flush). Creates ``database`` fresh and drops it afterwards.
    """
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
        setup = await asyncpg.connect(dsn)
        await setup.execute(RAW_TABLE)
        if notify:
            await setup.execute(RAW_NOTIFY)
        await setup.close()
        conns = [await asyncpg.connect(dsn) for _ in range(connections)]
        try:
            await asyncio.gather(*(_insert_for(c, w, 0.3) for w, c in enumerate(conns)))  # warm
            t0 = time.perf_counter()
            lat = await asyncio.gather(*(_insert_for(c, w, seconds) for w, c in enumerate(conns)))
            elapsed = time.perf_counter() - t0
        finally:
            for c in conns:
                await c.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    flat = [x for worker in lat for x in worker]
    return {
        "connections": connections,
        "notify": notify,
        "commits": len(flat),
        "per_s": len(flat) / elapsed,
        "latency_ms": percentiles(flat, (50, 99)),
    }


async def _insert_for(conn: asyncpg.Connection, worker: int, seconds: float) -> list[float]:
    stmt = await conn.prepare(RAW_INSERT)
    body = json.dumps({"n": 0, "pad": "x" * 16})
    lat: list[float] = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        i += 1
        t0 = time.perf_counter()
        await stmt.fetchval(f"c{worker}", f"w{worker}-{i}-{t0}", body)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat
