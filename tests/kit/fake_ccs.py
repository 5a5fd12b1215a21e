"""A tiny protocol-shaped WebSocket server for unit tests of the client machinery.

Not a CCS implementation: it answers ``hello`` with ``welcome``, acks ``send`` with the next seq
and broadcasts the message, and obeys a few test-only commands (``push``, ``close_with``,
``hold_acks``) so the client's waiting, ordering and failure paths can be driven precisely.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve


class FakeCcs:
    def __init__(self) -> None:
        self.server: Server | None = None
        self.port = 0
        self.connections: set[ServerConnection] = set()
        self.heads: dict[str, int] = {}
        self.hellos: list[dict[str, Any]] = []
        self.hold_acks = False

    async def start(self) -> None:
        self.server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        try:
            async for raw in ws:
                await self._on_frame(ws, json.loads(raw))
        finally:
            self.connections.discard(ws)

    async def _on_frame(self, ws: ServerConnection, frame: dict[str, Any]) -> None:
        kind, ref = frame.get("type"), frame.get("ref")
        if kind == "hello":
            self.hellos.append(frame)
            await ws.send(json.dumps({"type": "welcome", "ref": ref, "protocol": "1.0"}))
        elif kind == "send":
            if self.hold_acks:
                await ws.send(
                    json.dumps(
                        {"type": "error", "ref": ref, "code": "unavailable", "retryable": True}
                    )
                )
                return
            conv = frame["conversation_id"]
            self.heads[conv] = seq = self.heads.get(conv, 0) + 1
            message = {"conversation_id": conv, "seq": seq, "client_msg_id": frame["client_msg_id"]}
            await ws.send(json.dumps({"type": "ack", "ref": ref, "for": "send", **message}))
            await self.broadcast({"type": "message", "body": frame["body"], **message})
        elif kind == "push":
            # Test-only: the server pushes these frames after a delay, between keywords.
            await asyncio.sleep(frame.get("delay", 0))
            for item in frame["frames"]:
                await ws.send(json.dumps(item))
        elif kind == "close_with":
            await ws.close(frame["code"], frame.get("reason", ""))

    async def broadcast(self, frame: dict[str, Any]) -> None:
        for ws in list(self.connections):
            await ws.send(json.dumps(frame))
