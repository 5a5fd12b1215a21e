"""Fixtures: one fresh database per test session (dropped at the end) and real server processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from ccskit.faults.postgres import PrivatePostgres

from .support import Api, ServerProcess, create_database, drop_database, drop_orphaned_databases

RUN = uuid.uuid4().hex[:6]
DB_PREFIX = "ccs_server_test_"
DB_NAME = f"{DB_PREFIX}{os.getpid()}_{RUN}"
_NAMES = itertools.count(2)

ServerFactory = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture(scope="session")
async def dsn() -> AsyncIterator[str]:
    """A database of our own for this test session (and leftovers of killed runs removed)."""
    await drop_orphaned_databases(DB_PREFIX)
    url = await create_database(DB_NAME)
    try:
        yield url
    finally:
        await drop_database(DB_NAME)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Port files and JSON logs of the server processes."""
    return tmp_path_factory.mktemp("ccs")


@pytest.fixture(scope="session")
async def server(dsn: str, workdir: Path) -> AsyncIterator[ServerProcess]:
    """The default server (short repair interval and presence grace for fast tests)."""
    proc = await ServerProcess(dsn, workdir, "node1").start()
    try:
        yield proc
    finally:
        await proc.stop()


@pytest.fixture
async def server_factory(
    dsn: str, workdir: Path, server: ServerProcess
) -> AsyncIterator[ServerFactory]:
    """Start servers with other settings for one test; they are stopped when the test ends.

    The shared PostgreSQL allows 100 connections for every helper and CI job on the machine, so
    no test keeps its special-purpose nodes (each holds a pool and a LISTEN connection) alive.
    ``shared=True`` without settings returns the default server.
    """
    started: list[ServerProcess] = []

    async def factory(name: str = "", shared: bool = True, **overrides: str) -> ServerProcess:
        if shared and not overrides:
            return server
        proc = ServerProcess(dsn, workdir, name or f"node{next(_NAMES)}", **overrides)
        started.append(proc)
        return await proc.start()

    try:
        yield factory
    finally:
        await asyncio.gather(*(proc.stop() for proc in started))


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(server: ServerProcess, http: aiohttp.ClientSession) -> Api:
    """Fixture creation on the default server."""
    return Api(server, http, RUN)


@pytest.fixture(scope="session")
async def db(dsn: str, server: ServerProcess) -> AsyncIterator[asyncpg.Connection]:
    """A direct SQL connection for checks (the server has migrated the schema by now)."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL of the fault kit's that a test may kill, stall or restart."""
    pg = await asyncio.to_thread(PrivatePostgres, "ccs")
    try:
        await asyncio.to_thread(pg.start)
        yield pg
    finally:
        await asyncio.to_thread(pg.teardown)
