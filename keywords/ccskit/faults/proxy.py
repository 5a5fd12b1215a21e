"""An asyncio TCP proxy that injects network faults between a client and its upstream.

Directions: ``upstream`` is client -> server bytes, ``downstream`` server -> client bytes.
Faults: cut (RST every connection, refuse new ones), stall (hold bytes and new connections, like a
blackhole that TCP will retransmit through once it heals), delay (latency per chunk, throughput
kept), drop (bytes read in one direction are discarded, the stream is corrupted), restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ccskit.config import scaled
from ccskit.faults.common import FaultError, free_port
from ccskit.loop import shared_loop

DIRECTIONS = ("upstream", "downstream")
CHUNK = 65536
QUEUE_CHUNKS = 64  # per direction: at most 4 MiB buffered while stalled or delayed
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 10.0


def parse_directions(direction: str) -> tuple[str, ...]:
    if direction == "both":
        return DIRECTIONS
    if direction in DIRECTIONS:
        return (direction,)
    raise FaultError(f"direction must be 'upstream', 'downstream' or 'both', got {direction!r}")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a peer crash or a firewall reset looks on the wire."""
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class Flow:
    """Fault settings of one direction, read by the pumps for every chunk."""

    delay: float = 0.0
    drop: bool = False
    flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.flowing.set()


@dataclass
class ProxyStats:
    connections_total: int = 0
    connections_active: int = 0
    connections_reset: int = 0
    upstream_failures: int = 0
    bytes_upstream: int = 0
    bytes_downstream: int = 0
    dropped_upstream: int = 0
    dropped_downstream: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Link:
    """One proxied connection: a client socket, its upstream socket and four pump tasks."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.serve_task = asyncio.current_task()

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)


class TcpProxy:
    """A proxy listening on 127.0.0.1 in front of ``upstream_host:upstream_port``.

    Public methods are synchronous and safe to call from Robot's thread; the work runs on the
    shared :class:`LoopThread`.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, listen_port: int | None = None
    ) -> None:
        if upstream_host not in LOOPBACK:
            raise FaultError(f"the proxy forwards to loopback only, got upstream {upstream_host!r}")
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        # Outside the ephemeral range, so re-listening on it after a cut cannot collide.
        self.port = listen_port or free_port()
        self.stats = ProxyStats()
        self._runner = shared_loop()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flows: dict[str, Flow] = {}
        self._open: asyncio.Event | None = None  # cleared while stalled: new links are held
        self.mode = "pass"
        self._call(self._start(), "proxy start")

    # -- synchronous API ----------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> int:
        """RST every current connection and refuse new ones; returns how many were reset."""
        return self._call(self._cut(), "proxy cut")

    def stall(self, direction: str = "both") -> None:
        self._call(self._stall(parse_directions(direction)), "proxy stall")

    def delay(self, seconds: float, direction: str = "both") -> None:
        if not 0 <= seconds <= 60:
            raise FaultError(f"delay must be between 0 and 60 s, got {seconds}")
        self._call(self._set(parse_directions(direction), "delay", seconds), "proxy delay")

    def drop(self, direction: str) -> None:
        if direction == "both":
            raise FaultError("drop one direction: 'upstream' or 'downstream' (use stall for both)")
        self._call(self._set(parse_directions(direction), "drop", True), "proxy drop")

    def restore(self) -> None:
        self._call(self._restore(), "proxy restore")

    def close(self) -> None:
        self._call(self._close(), "proxy close")

    def snapshot(self) -> dict[str, Any]:
        return {"mode": self.mode, "address": self.address, **self.stats.as_dict()}

    def _call(self, coro: Any, what: str) -> Any:
        try:
            return self._runner.run(coro, scaled(CALL_TIMEOUT), what)
        except TimeoutError as exc:
            raise FaultError(str(exc)) from None

    # -- on the loop --------------------------------------------------------------------
    async def _start(self) -> None:
        self._flows = {d: Flow() for d in DIRECTIONS}
        self._open = asyncio.Event()
        self._open.set()
        await self._listen()

    async def _listen(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True, limit=CHUNK
            )
        except OSError as exc:
            raise FaultError(f"proxy could not listen on 127.0.0.1:{self.port}: {exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> int:
        if self._server is not None:
            # Closing the listener makes new connects fail with ECONNREFUSED, like a dead host.
            self._server.close()
            self._server = None
        links, self._links = list(self._links), set()
        for link in links:
            link.reset()
            if link.serve_task is not None:
                link.serve_task.cancel()  # also ends links still held by a stall
        self.stats.connections_reset += len(links)
        self.mode = "cut"
        return len(links)

    async def _stall(self, directions: tuple[str, ...]) -> None:
        for name in directions:
            self._flows[name].flowing.clear()
        assert self._open is not None
        self._open.clear()
        self.mode = "stall" if len(directions) == 2 else f"stall-{directions[0]}"

    async def _set(self, directions: tuple[str, ...], attr: str, value: Any) -> None:
        for name in directions:
            setattr(self._flows[name], attr, value)
        suffix = "" if len(directions) == 2 else f"-{directions[0]}"
        self.mode = f"{attr}{suffix}"

    async def _restore(self) -> None:
        for flow in self._flows.values():
            flow.delay, flow.drop = 0.0, False
            flow.flowing.set()
        assert self._open is not None
        self._open.set()
        if self._server is None:
            await self._listen()  # same port: clients keep their configured address
        self.mode = "pass"

    async def _close(self) -> None:
        await self._cut()
        self.mode = "closed"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        self.stats.connections_total += 1
        self.stats.connections_active += 1
        try:
            await self._run_link(link, reader)
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            link.reset()
        except asyncio.CancelledError:
            # Cancelled by a cut: end quietly, since asyncio's stream callback (3.11) logs a
            # cancelled handler task as an error.
            link.reset()
        finally:
            self._links.discard(link)
            self.stats.connections_active -= 1

    async def _run_link(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        assert self._open is not None
        await self._open.wait()  # a stalled proxy accepts, then holds the connection silently
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, self.upstream_port, limit=CHUNK),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):
            self.stats.upstream_failures += 1
            _reset(link.client)  # upstream down: the client sees a reset, as if refused
            return
        link.upstream = up_writer
        pumps = [
            self._pump(client_reader, up_writer, "upstream"),
            self._pump(up_reader, link.client, "downstream"),
        ]
        link.tasks = [asyncio.ensure_future(p) for p in pumps]
        results = await asyncio.gather(*link.tasks, return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            link.reset()  # a reset on one side is passed on as a reset to the other
        else:
            link.client.close()
            up_writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        """Move one direction: a reader feeds a bounded queue, a writer applies stall and delay."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)
        feeder = asyncio.ensure_future(self._feed(reader, queue, direction))
        drainer = asyncio.ensure_future(self._drain_queue(queue, writer, direction))
        try:
            # Either side failing (a reset read or write) ends the direction at once.
            await asyncio.wait({feeder, drainer}, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in (feeder, drainer):
                task.cancel()
        for result in await asyncio.gather(feeder, drainer, return_exceptions=True):
            if isinstance(result, Exception):
                raise result

    async def _feed(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        direction: str,
    ) -> None:
        flow = self._flows[direction]
        while data := await reader.read(CHUNK):
            if flow.drop:
                self._count(f"dropped_{direction}", len(data))
                continue
            # The due time is fixed on arrival, so a delay adds latency without cutting throughput.
            await queue.put((time.monotonic() + flow.delay, data))
        await queue.put(None)

    async def _drain_queue(
        self,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        flow = self._flows[direction]
        while (item := await queue.get()) is not None:
            due, data = item
            await flow.flowing.wait()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            self._count(f"bytes_{direction}", len(data))
        if writer.can_write_eof():
            writer.write_eof()  # pass on the half-close; the other direction may still flow

    def _count(self, name: str, amount: int) -> None:
        setattr(self.stats, name, getattr(self.stats, name) + amount)
