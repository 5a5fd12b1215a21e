"""The one object the kit's keyword classes share: :class:`KitContext`.

The ``CCS`` library (``keywords/CCS.py``) creates one context and hands it to every keyword
class, the way SeleniumLibrary's keyword classes share ``ctx``. A keyword class keeps its own
private state (its raw connections, its fleets) and reaches anything another area owns only
through the context: the server under test, the fixture names, the device clients, the event
loop, the fault kit, the database link and the metrics recorder. Nothing here is a module global
and nothing is passed through the process environment: the environment is read once, into
:attr:`KitContext.config`.
"""

from __future__ import annotations

import atexit
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from .api import CcsApi
from .client import DeviceClient
from .config import KitConfig, scale_timeout, ws_url_for
from .db import CcsDb
from .fixtures import Fixtures
from .hostile import HostileSession
from .loop import LoopThread, shared_loop
from .metrics import Recorder, recorder
from .server import Nodes

if TYPE_CHECKING:
    from .faults.kit import FaultKit


@dataclass
class Target:
    """The server under test: set by the server keywords, read by every other area."""

    default_url: str = ""
    base_url: str = ""
    pid: int | None = None

    @property
    def ws_url(self) -> str:
        return ws_url_for(self.require())

    def require(self) -> str:
        """Base URL of the server under test; fails when none was started or attached."""
        if not self.base_url:
            if not self.default_url:
                raise AssertionError(
                    "No server under test: run 'Start Or Attach Server' first "
                    "or set SUT_URL=http://host:port"
                )
            self.base_url = self.default_url
        return self.base_url


class DevicePool:
    """Named device clients (``alice-phone`` …), connected or closed, with their frames."""

    def __init__(self) -> None:
        self.clients: dict[str, DeviceClient] = {}

    def __contains__(self, alias: object) -> bool:
        return alias in self.clients

    def get(self, alias: str) -> DeviceClient | None:
        return self.clients.get(alias)

    def client(self, alias: str) -> DeviceClient:
        """The client called ``alias``; fails with the known names."""
        if alias not in self.clients:
            known = ", ".join(sorted(self.clients)) or "none"
            raise AssertionError(f"no device called '{alias}' was connected (known: {known})")
        return self.clients[alias]

    def add(self, client: DeviceClient) -> DeviceClient:
        self.clients[client.alias] = client
        return client


@dataclass
class KitContext:
    """Everything the keyword classes share, created once per ``CCS`` library instance."""

    config: KitConfig = field(default_factory=KitConfig.from_env)
    fixtures: Fixtures = field(default_factory=Fixtures)
    nodes: Nodes = field(default_factory=Nodes)
    devices: DevicePool = field(default_factory=DevicePool)
    metrics: Recorder = field(default_factory=lambda: recorder)
    hostile: HostileSession = field(default_factory=HostileSession)
    target: Target = field(init=False)
    _database_url: str = field(default="", init=False)
    _api: CcsApi | None = field(default=None, init=False)
    _db: CcsDb | None = field(default=None, init=False)
    _faults: FaultKit | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.target = Target(default_url=self.config.sut_url)
        # An interrupted run must not leave server nodes or private services behind.
        atexit.register(self.close)

    # ----- the event loop -----------------------------------------------------------------------
    @property
    def loop(self) -> LoopThread:
        """The one loop thread of the process: device clients, proxies, the bystander."""
        return shared_loop()

    # ----- timeouts -----------------------------------------------------------------------------
    def scaled(self, timeout: timedelta | float) -> float:
        """Seconds of ``timeout`` times ``CCS_TIMEOUT_SCALE``: every wait of the kit uses it."""
        return scale_timeout(timeout, self.config.timeout_scale)

    # ----- REST ---------------------------------------------------------------------------------
    @property
    def api(self) -> CcsApi:
        """REST client of the current server under test (a new one when the target moves)."""
        base = self.target.require()
        if self._api is None or self._api.base_url != base:
            self._api = CcsApi(base, self.fixtures)
        return self._api

    # ----- the database the checks read ---------------------------------------------------------
    @property
    def database_url(self) -> str:
        """The database the kit's SQL checks read: ``DATABASE_URL``, or what `use_database` set."""
        return self._database_url or self.config.database_url

    def use_database(self, url: str | None) -> str:
        """Points the kit's SQL at ``url`` (``None``: back to ``DATABASE_URL``); returns it."""
        self._database_url = url or ""
        self.close_db()
        return self.database_url

    @property
    def db(self) -> CcsDb:
        """The kit's one SQL connection (psycopg2, autocommit) to :attr:`database_url`."""
        if self._db is None or self._db.database_url != self.database_url:
            self.close_db()
            self._db = CcsDb(self.database_url)
        return self._db

    def close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    # ----- faults -------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultKit:
        """Private services, proxies, paused processes and the fault timeline."""
        if self._faults is None:
            from .faults.kit import FaultKit  # only fault suites pay for its imports

            self._faults = FaultKit()
        return self._faults

    def close(self) -> None:
        """Last resort at interpreter exit: stop nodes and private services still running."""
        with contextlib.suppress(Exception):
            self.nodes.stop_all(timeout=3)
        if self._faults is not None:
            with contextlib.suppress(Exception):
                self._faults.stop_all()
        self.close_db()
