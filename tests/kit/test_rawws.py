"""The hand-made WebSocket client: frame bytes per RFC 6455, and a real aiohttp peer's answers."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web
from ccskit.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    RawWebSocket,
    ServerFrame,
    close_payload,
    encode_frame,
)


def unmask(frame: bytes) -> tuple[int, bool, bytes]:
    """(first byte, masked, payload) of a frame of at most 125 bytes."""
    masked = bool(frame[1] & 0x80)
    length = frame[1] & 0x7F
    if not masked:
        return frame[0], False, frame[2 : 2 + length]
    key, data = frame[2:6], frame[6 : 6 + length]
    return frame[0], True, bytes(b ^ key[i % 4] for i, b in enumerate(data))


def test_a_client_frame_is_masked_and_decodes_back() -> None:
    first, masked, payload = unmask(encode_frame(OP_TEXT, b"hello"))
    assert (first, masked, payload) == (0x81, True, b"hello")


def test_an_unmasked_frame_has_the_mask_bit_clear() -> None:
    frame = encode_frame(OP_TEXT, b"hi", mask=False)
    assert frame == b"\x81\x02hi"


def test_rsv_bits_fin_and_opcode_are_where_rfc_6455_puts_them() -> None:
    frame = encode_frame(0x3, b"", rsv=4, fin=False, mask=False)
    assert frame[0] == 0b0100_0011


@pytest.mark.parametrize(("size", "marker", "header"), [(126, 126, 4), (70_000, 127, 10)])
def test_extended_lengths(size: int, marker: int, header: int) -> None:
    frame = encode_frame(OP_BINARY, b"x" * size, mask=False)
    assert frame[1] == marker
    fmt = "!H" if marker == 126 else "!Q"
    assert struct.unpack(fmt, frame[2:header])[0] == size
    assert len(frame) == header + size


def test_a_length_override_announces_what_is_not_sent() -> None:
    frame = encode_frame(OP_TEXT, b"", length_override=1 << 30, mask=False)
    assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == 1 << 30 and len(frame) == 10


def test_close_frames_carry_their_code() -> None:
    assert ServerFrame(OP_CLOSE, close_payload(4001, "slow")).close_code == 4001
    assert ServerFrame(OP_CLOSE, b"").close_code is None
    assert ServerFrame(OP_TEXT, close_payload(1000)).close_code is None


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=1000)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(json.dumps({"echo": msg.data}))
    return ws


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A real aiohttp WebSocket echo server on a free port of 127.0.0.1."""
    app = web.Application()
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()


async def test_upgrade_then_text_round_trip(echo_url: str) -> None:
    conn = RawWebSocket(echo_url)
    assert await conn.connect() == 101
    await conn.send_text("héllo")
    frame = await conn.read_frame(5)
    assert frame is not None and json.loads(frame.text()) == {"echo": "héllo"}
    await conn.close()


async def test_a_refused_upgrade_reports_its_status(echo_url: str) -> None:
    conn = RawWebSocket(echo_url.replace("/ws", "/nowhere"))
    assert await conn.connect() == 404
    await conn.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (encode_frame(0x3, b"x"), 1002),  # reserved opcode
        (encode_frame(OP_TEXT, b"\xc3\x28"), 1007),  # invalid UTF-8
        (encode_frame(OP_TEXT, b"x" * 2000), 1009),  # over the peer's 1000-byte limit
    ],
)
async def test_malformed_frames_get_the_peers_close_code(
    echo_url: str, frame: bytes, code: int
) -> None:
    conn = RawWebSocket(echo_url)
    await conn.connect()
    assert await conn.send_while_reading(frame, 5) == code
    assert await conn.wait_close(1) == code  # remembered, not read twice
    await conn.close()
