"""Test support for the reference server: the kit's server starter, a fixture API, a WS client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from ccskit.api import CcsApi
from ccskit.client import DeviceClient, wait_until
from ccskit.config import PROJECT_ROOT, KitConfig, database_url_for, scaled, ws_url_for
from ccskit.fixtures import Fixtures
from ccskit.server import ServerProcess as KitServerProcess
from ccskit.tokens import mint_token
from websockets.asyncio.client import ClientConnection

ROOT = PROJECT_ROOT
SECRET = "ccs-test-secret-0123456789abcdef"
ADMIN_DSN = database_url_for("postgres")
# The server's token settings are the kit's defaults; only the secret is the tests' own.
TOKENS = replace(KitConfig.from_env(), token_secret=SECRET)


def t(seconds: float) -> float:
    """A timeout scaled for slow machines (the kit's one scaling, ``CCS_TIMEOUT_SCALE``)."""
    return scaled(seconds)


class ServerProcess:
    """A reference server node for one test: the kit's own starter
    (:class:`ccskit.server.ServerProcess`), driven from async tests."""

    def __init__(self, dsn: str, workdir: Path, name: str, **overrides: str) -> None:
        self.dsn = dsn
        self.name = name
        self.log_file = workdir / f"{name}.log"
        self.process = KitServerProcess(
            env={
                "DATABASE_URL": dsn,
                "CCS_NODE_ID": name,
                "CCS_TOKEN_SECRET": SECRET,
                "CCS_LOG_FILE": str(self.log_file),
                "CCS_REPAIR_INTERVAL_MS": "200",
                "CCS_PRESENCE_GRACE_MS": "300",
                # small pools: the shared PostgreSQL's 100 connections serve every job on the box
                "CCS_DB_POOL_SIZE": "4",
                **overrides,
            },
            log_dir=workdir,
        )

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def base(self) -> str:
        return self.process.base_url

    @property
    def ws_url(self) -> str:
        return ws_url_for(self.base)

    async def start(self) -> ServerProcess:
        """Start on a free port and wait until ``/health`` answers 200."""
        await asyncio.to_thread(self.process.start, t(20))
        return self

    async def stop(self) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        return await asyncio.to_thread(self.process.stop, t(10))

    async def wait_exit(self, within: float = 10) -> int:
        """Exit code of the process once it has ended (after a signal sent by the test)."""
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, t(within))

    def token(
        self, user: str, device: str | None = None, ttl: int = 3600, admin: bool = False
    ) -> str:
        return mint_token(user, device, admin=admin, ttl_s=ttl, config=TOKENS)


_ids = itertools.count(1)
ANY_STATUS = tuple(range(100, 600))  # the tests judge the status themselves


class Api:
    """Fixture creation through the REST API with an admin token; ids unique per test run.

    Calls go through the kit's REST client (:class:`ccskit.api.CcsApi`), off the event loop.
    ``http`` is the tests' aiohttp session, kept for the health polls they make themselves.
    """

    def __init__(self, server: ServerProcess, http: aiohttp.ClientSession, run: str) -> None:
        self.server = server
        self.http = http
        self.run = run
        self.rest = CcsApi(server.base, Fixtures())
        self.admin_token = server.token("admin", admin=True)

    def uid(self, name: str) -> str:
        return f"{name}-{self.run}-{next(_ids)}"

    async def call(
        self, method: str, path: str, json_body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """Any REST call; returns ``(status, decoded JSON or None)`` whatever the status."""
        return await asyncio.to_thread(
            self.rest.call,
            method,
            path,
            token=token or self.admin_token,
            json=json_body,
            expect=ANY_STATUS,
        )

    async def user(self, name: str, devices: int = 1) -> tuple[str, list[str]]:
        """A user and ``devices`` devices named ``<user>-d<i>``."""
        user = self.uid(name)
        status, _ = await self.call("POST", "/v1/users", {"user_id": user})
        assert status == 201
        devs = []
        for i in range(devices):
            status, _ = await self.call(
                "POST", f"/v1/users/{user}/devices", {"device_id": f"{user}-d{i}"}
            )
            assert status == 201
            devs.append(f"{user}-d{i}")
        return user, devs

    async def conversation(self, *members: str) -> str:
        conv = self.uid("conv")
        status, body = await self.call(
            "POST", "/v1/conversations", {"conversation_id": conv, "members": list(members)}
        )
        assert status == 201, body
        return conv


class _ClosedFlag:
    """``is_set()`` once the server (or the network) closed the connection."""

    def __init__(self, device: DeviceClient) -> None:
        self._device = device

    def is_set(self) -> bool:
        return self._device.close_code is not None


class Client:
    """A device connection for the server tests: the kit's :class:`ccskit.client.DeviceClient`,
    with received frames seen as dictionaries and timeouts in seconds before scaling."""

    def __init__(self, ws: ClientConnection | DeviceClient, user: str, device: str) -> None:
        if isinstance(ws, DeviceClient):
            self.kit = ws
        else:  # a connection upgraded by hand (a token on the upgrade, say)
            self.kit = DeviceClient(device, "", "", user_id=user, device_id=device)
            self.kit.attach(ws)
        self.user = user
        self.device = device
        self.welcome: dict[str, Any] = {}
        self.closed = _ClosedFlag(self.kit)

    @classmethod
    async def open(
        cls,
        server: ServerProcess,
        user: str,
        device: str,
        resume: dict[str, Any] | None = None,
        hello: bool = True,
    ) -> Client:
        kit = DeviceClient(
            device, server.ws_url, server.token(user, device), user_id=user, device_id=device
        )
        client = cls(kit, user, device)
        if hello:
            client.welcome = await kit.open(resume=resume, timeout_s=t(5))
        else:
            await kit.connect(t(5))
        return client

    @property
    def ws(self) -> ClientConnection:
        connection = self.kit.connection
        assert connection is not None, f"'{self.device}' holds no connection"
        return connection

    @property
    def reader(self) -> asyncio.Task[None]:
        reader = self.kit.reader
        assert reader is not None, f"'{self.device}' never connected"
        return reader

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [f.data if f.data is not None else {} for f in self.kit.frames]

    @property
    def close_code(self) -> int | None:
        """The code of the close frame received (None while open or when none came)."""
        code = self.kit.close_code
        return None if code == 1006 else code

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def request(self, frame: dict[str, Any], within: float = 5) -> dict[str, Any]:
        """Send a command and return its ``ack`` or ``error``."""
        return await self.kit.request(frame, t(within))

    async def send_msg(self, conv: str, body: Any, cmid: str | None = None) -> dict[str, Any]:
        cmid = cmid or self.kit.next_client_msg_id()
        return await self.request(
            {"type": "send", "conversation_id": conv, "client_msg_id": cmid, "body": body}
        )

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], within: float = 5, start: int = 0
    ) -> dict[str, Any]:
        """First frame (from index ``start``) matching ``pred``; fail after ``within`` seconds."""
        found: list[dict[str, Any]] = []

        def matched_or_closed() -> bool:
            found[:] = [f for f in self.frames[start:] if pred(f)][:1]
            return bool(found) or self.closed.is_set()

        await wait_until([self.kit], matched_or_closed, t(within))
        if found:
            return found[0]
        if self.closed.is_set():
            raise AssertionError(
                f"closed ({self.close_code}) before match; last frames: {self.tail()}"
            )
        raise AssertionError(f"no matching frame within {within}s; last frames: {self.tail()}")

    def tail(self, count: int = 5) -> str:
        """The last frames, each cut to 200 characters, for failure messages."""
        return "; ".join(f.raw[:200] for f in self.kit.frames[-count:])

    def messages(self, conv: str, kind: str = "message") -> list[dict[str, Any]]:
        return [
            f for f in self.frames if f.get("type") == kind and f.get("conversation_id") == conv
        ]

    async def wait_messages(self, conv: str, count: int, within: float = 5) -> list[dict[str, Any]]:
        """Wait until at least ``count`` message frames of ``conv`` arrived."""
        await self.wait_for(lambda _f: len(self.messages(conv)) >= count, within)
        return self.messages(conv)

    async def wait_closed(self, within: float = 5) -> int | None:
        if not await wait_until([self.kit], self.closed.is_set, t(within)):
            raise TimeoutError(f"'{self.device}' still open after {within} s")
        return self.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed by the server: nothing to undo
            await self.kit.close(1000, "", t(5))


async def one_device(server: ServerProcess, api: Api, name: str) -> tuple[str, Client]:
    """A user alone in a conversation, one device connected: ``(conv, client)``."""
    user, (device,) = await api.user(name)
    conv = await api.conversation(user)
    return conv, await Client.open(server, user, device)


async def alice_and_bob(
    server: ServerProcess, api: Api, bobs_server: ServerProcess | None = None
) -> tuple[str, Client, Client]:
    """Two users in one conversation, one connected device each: ``(conv, alice's, bob's)``.

    Bob connects to ``bobs_server`` when given (another node), else to ``server``."""
    alice, (a1,) = await api.user("alice")
    bob, (b1,) = await api.user("bob")
    conv = await api.conversation(alice, bob)
    a = await Client.open(server, alice, a1)
    return conv, a, await Client.open(bobs_server or server, bob, b1)


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url_for(name)


async def drop_orphaned_databases(prefix: str) -> list[str]:
    """Drop ``<prefix><pid>_*`` databases whose test process is gone (a run killed mid-way)."""
    conn = await asyncpg.connect(ADMIN_DSN)
    dropped = []
    try:
        names = [
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
            )
        ]
        for name in names:
            pid = name[len(prefix) :].split("_", 1)[0]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                dropped.append(name)
    finally:
        await conn.close()
    return dropped


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def wait_health(
    http: aiohttp.ClientSession, node: ServerProcess, want: int, within: float = 20
) -> dict[str, Any]:
    """Poll ``/health`` until it answers ``want`` (each poll itself bounded)."""
    deadline = time.monotonic() + t(within)
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            async with http.get(
                node.base + "/health", timeout=aiohttp.ClientTimeout(total=t(5))
            ) as resp:
                body = await resp.json()
                if resp.status == want:
                    return body
        except TimeoutError:
            body = {"error": "health did not answer within 5 s"}
        await asyncio.sleep(0.1)  # polling another process: there is no event to wait on
    raise AssertionError(f"/health never answered {want}: {body}")
