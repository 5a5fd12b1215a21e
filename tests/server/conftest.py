"""Fixtures: one fresh database per test session (dropped at the end) and real server processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from .support import Api, ServerProcess, create_database, drop_database

RUN = uuid.uuid4().hex[:6]
DB_NAME = f"ccs_server_test_{os.getpid()}_{RUN}"

ServerFactory = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture(scope="session")
async def dsn() -> AsyncIterator[str]:
    """A database of our own for this test session."""
    url = await create_database(DB_NAME)
    try:
        yield url
    finally:
        await drop_database(DB_NAME)


@pytest.fixture(scope="session")
async def server_factory(
    dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerFactory]:
    """Start servers with given settings, cached per settings; all stopped at the end."""
    workdir: Path = tmp_path_factory.mktemp("ccs")
    started: dict[tuple[tuple[str, str], ...], ServerProcess] = {}
    extra: list[ServerProcess] = []

    async def factory(name: str = "", shared: bool = True, **overrides: str) -> ServerProcess:
        key = tuple(sorted(overrides.items()))
        if shared and key in started:
            return started[key]
        proc = ServerProcess(
            dsn, workdir, name or f"node{len(started) + len(extra) + 1}", **overrides
        )
        await proc.start()
        (started.__setitem__(key, proc) if shared else extra.append(proc))
        return proc

    try:
        yield factory
    finally:
        for proc in [*started.values(), *extra]:
            await proc.stop()


@pytest.fixture(scope="session")
async def server(server_factory: ServerFactory) -> ServerProcess:
    """The default server (short repair interval and presence grace for fast tests)."""
    return await server_factory()


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
