"""P1/P12: the reply to a write tells the truth about what was stored.

``unavailable`` means nothing was stored and nothing will be: the transaction never received
COMMIT. ``outcome_unknown`` means the connection failed while COMMIT was in flight; a retry with
the same ``client_msg_id`` then says which it was. Each case under a real fault: a table lock held
past ``CCS_DB_TIMEOUT_MS``, a backend killed while it waits on that lock, and a backend killed
while its COMMIT waits (for a synchronous standby that never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from ccskit.faults.postgres import PrivatePostgres

from .conftest import RUN, ServerFactory
from .support import Api, Client, ServerProcess, alice_and_bob, t

SEND_IN_LOCK = "wait_event_type = 'Lock' AND query LIKE '%ccs_send%'"
# a send's commit waiting for the standby (an explicit COMMIT, or an autocommitted statement)
COMMIT_IN_SYNCREP = "wait_event = 'SyncRep' AND (query = 'COMMIT' OR query LIKE '%ccs_send%')"


@contextlib.asynccontextmanager
async def messages_locked(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """``LOCK TABLE messages`` held by another session until the block ends."""
    conn = await asyncpg.connect(dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def node_backends(conn: asyncpg.Connection, node: str, where: str) -> list[int]:
    """Pids of the node's pool backends matching ``where`` (pg_stat_activity)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND " + where,
        f"ccs-pool {node}",
    )
    return [r["pid"] for r in rows]


async def wait_backend(conn: asyncpg.Connection, node: str, where: str) -> int:
    """The first node backend matching ``where``, polled (another process: no event to await)."""
    deadline = time.monotonic() + t(5)
    while time.monotonic() < deadline:
        pids = await node_backends(conn, node, where)
        if pids:
            return pids[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no backend of {node} with {where} within 5 s")


async def wait_gone(conn: asyncpg.Connection, node: str, where: str) -> None:
    """Until no node backend matches ``where`` (polled: another process)."""
    deadline = time.monotonic() + t(10)
    while await node_backends(conn, node, where):
        if time.monotonic() > deadline:
            raise AssertionError(f"backends of {node} with {where} still there after 10 s")
        await asyncio.sleep(0.05)


def retryable_error(reply: dict[str, Any], code: str) -> None:
    """``reply`` is the retryable error ``code`` (an ack here would be a lie)."""
    got = (reply.get("type"), reply.get("code"), reply.get("retryable"))
    assert got == ("error", code, True), f"expected a retryable {code} error, got {reply}"


async def stored(conn: asyncpg.Connection, cmid: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM messages WHERE client_msg_id = $1", cmid))


async def _pair(node: ServerProcess, api: Api) -> tuple[str, Client, Client]:
    """:func:`alice_and_bob` with one message already delivered (the schema and pool are warm)."""
    conv, a, b = await alice_and_bob(node, api)
    assert (await a.send_msg(conv, {"n": 1}, cmid=api.uid("first")))["type"] == "ack"
    await b.wait_messages(conv, 1)
    return conv, a, b


async def _retry_finds_the_commit(conv: str, a: Client, b: Client, key: str, body: Any) -> None:
    """After ``outcome_unknown`` for a send that did commit (as seq 2): the retry is answered
    ``duplicate`` with that seq, and the peer has 1 and 2 exactly once. Closes both clients."""
    retry = await a.send_msg(conv, body, cmid=key)
    assert retry["type"] == "ack" and (retry["duplicate"], retry["seq"]) == (True, 2), retry
    frames = await b.wait_messages(conv, 2)
    assert [m["seq"] for m in frames] == [1, 2], b.tail()
    await a.close()
    await b.close()


async def test_send_during_lock_stall_is_unavailable_and_never_committed_later(
    server_factory: ServerFactory, dsn: str, db: asyncpg.Connection, api: Api
) -> None:
    """``unavailable`` under a lock longer than the deadline means not stored: the send must not
    commit once the lock goes away, so the retry is stored anew, not answered ``duplicate``."""
    node = await server_factory("lockstall", CCS_DB_TIMEOUT_MS="1000")
    api = Api(node, api.http, RUN)
    conv, a, b = await _pair(node, api)
    stalled, after = api.uid("stalled"), api.uid("after")
    async with messages_locked(dsn):
        began = time.monotonic()
        reply = await a.send_msg(conv, {"n": "stalled"}, cmid=stalled)
        took = time.monotonic() - began
        retryable_error(reply, "unavailable")
        assert took < t(2.5), f"unavailable after {took:.2f} s with CCS_DB_TIMEOUT_MS=1000"
        # the statement is gone before the reply: nothing left queued on the lock to commit later
        left = await node_backends(db, "lockstall", SEND_IN_LOCK)
        assert left == [], f"backends {left} still wait on the lock with the unavailable send"
    ack = await a.send_msg(conv, {"n": "after"}, cmid=after)
    assert ack["type"] == "ack" and ack["seq"] == 2, f"the unavailable send took a seq: {ack}"
    assert await stored(db, stalled) == 0, "a send answered unavailable was committed later"
    frames = await b.wait_messages(conv, 2)
    assert [(m["seq"], m["body"]["n"]) for m in frames] == [(1, 1), (2, "after")], b.tail()
    retry = await a.send_msg(conv, {"n": "stalled"}, cmid=stalled)
    assert retry["type"] == "ack" and (retry["duplicate"], retry["seq"]) == (False, 3), retry
    await a.close()
    await b.close()


async def test_backend_killed_before_commit_is_unavailable_at_once(
    server_factory: ServerFactory, dsn: str, db: asyncpg.Connection, api: Api
) -> None:
    """pg_terminate_backend of the backend running the send, while it waits on a lock."""
    node = await server_factory("killsend", CCS_DB_TIMEOUT_MS="5000")
    api = Api(node, api.http, RUN)
    conv, a, b = await _pair(node, api)
    killed = api.uid("killed")
    async with messages_locked(dsn):
        began = time.monotonic()
        reply_task = asyncio.create_task(a.send_msg(conv, {"n": "killed"}, cmid=killed))
        pid = await wait_backend(db, "killsend", SEND_IN_LOCK)
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        reply = await reply_task
        took = time.monotonic() - began
        retryable_error(reply, "unavailable")
        # answered from the kill, not from the 5 s deadline after a second attempt
        assert took < t(2.5), f"unavailable after {took:.2f} s; the kill was at once"
        left = await node_backends(db, "killsend", SEND_IN_LOCK)
        assert left == [], f"backends {left} still wait on the lock with the killed send"
    assert await stored(db, killed) == 0, "a send answered unavailable was committed later"
    retry = await a.send_msg(conv, {"n": "killed"}, cmid=killed)
    assert retry["type"] == "ack" and (retry["duplicate"], retry["seq"]) == (False, 2), retry
    assert [m["seq"] for m in await b.wait_messages(conv, 2)] == [1, 2]
    await a.close()
    await b.close()


@contextlib.asynccontextmanager
async def commits_stalled(
    db: asyncpg.Connection, prefix: str, seconds: float
) -> AsyncIterator[None]:
    """COMMIT of a transaction inserting a message keyed ``prefix...`` sleeps ``seconds`` (a
    deferred constraint trigger): the statement returns at once, its COMMIT is what hangs."""
    await db.execute(
        "CREATE OR REPLACE FUNCTION b_test_commit_stall() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$"
    )
    await db.execute(
        "CREATE CONSTRAINT TRIGGER b_test_commit_stall AFTER INSERT ON messages"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        f" WHEN (NEW.client_msg_id LIKE '{prefix}%') EXECUTE FUNCTION b_test_commit_stall()"
    )
    try:
        yield
    finally:
        await db.execute("DROP TRIGGER IF EXISTS b_test_commit_stall ON messages")
        await db.execute("DROP FUNCTION IF EXISTS b_test_commit_stall()")


async def test_commit_hanging_past_the_deadline_is_outcome_unknown_and_retry_tells(
    server_factory: ServerFactory, db: asyncpg.Connection, api: Api
) -> None:
    """COMMIT still running at the deadline (statement_timeout does not bound a COMMIT): the
    server cannot know, says ``outcome_unknown``; the commit then completes, and the retry with
    the same key answers the original message as a duplicate."""
    node = await server_factory("commitstall", CCS_DB_TIMEOUT_MS="1000")
    api = Api(node, api.http, RUN)
    conv, a, b = await _pair(node, api)
    key = api.uid("slowcommit")
    async with commits_stalled(db, key, 2.0):
        reply = await a.send_msg(conv, {"n": "slow"}, cmid=key)
        retryable_error(reply, "outcome_unknown")
        # the abandoned backend finishes its COMMIT on its own
        await wait_gone(db, "commitstall", "wait_event = 'PgSleep'")
    assert await stored(db, key) == 1
    await _retry_finds_the_commit(conv, a, b, key, {"n": "slow"})


async def _set_standby(pg: PrivatePostgres, conn: asyncpg.Connection, names: str | None) -> None:
    """Make every COMMIT wait for a synchronous standby named ``names`` (None: no waiting).

    Returns once the postmaster has reloaded (a new session sees the value): by then it has
    signalled every backend, which applies the change before its next command.
    """
    if names is None:
        await conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
    else:
        await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
    await conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + t(5)
    seen = None
    while time.monotonic() < deadline:
        probe = await asyncpg.connect(pg.database_url())
        try:
            seen = await probe.fetchval("SHOW synchronous_standby_names")
        finally:
            await probe.close()
        if seen == (names or ""):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"synchronous_standby_names is {seen!r}, expected {names!r}")


async def test_backend_killed_during_commit_is_outcome_unknown_and_retry_tells(
    private_pg: PrivatePostgres, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The connection dies while COMMIT is in flight: the server cannot know, and says so."""
    node = ServerProcess(private_pg.database_url(), tmp_path, "syncrep", CCS_DB_TIMEOUT_MS="4000")
    await node.start()
    admin = await asyncpg.connect(private_pg.database_url())
    try:
        api = Api(node, http, RUN)
        conv, a, b = await _pair(node, api)
        unsure = api.uid("unsure")
        await _set_standby(private_pg, admin, "ghost_standby")
        try:
            reply_task = asyncio.create_task(a.send_msg(conv, {"n": "unsure"}, cmid=unsure))
            pid = await wait_backend(admin, "syncrep", COMMIT_IN_SYNCREP)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            reply = await reply_task
        finally:
            await _set_standby(private_pg, admin, None)
        retryable_error(reply, "outcome_unknown")
        # this time it had committed (locally, before the kill): the retry says so
        assert await stored(admin, unsure) == 1
        await _retry_finds_the_commit(conv, a, b, unsure, {"n": "unsure"})
    finally:
        await admin.close()
        await node.stop()
