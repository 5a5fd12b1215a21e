"""Hostile inputs the server must survive: each test names an input that could crash, stall,
leak or be wrongly refused, and fails if the server mishandles it."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
from ccskit.rawws import OP_CLOSE, OP_TEXT, RawWebSocket, encode_frame

from .support import Api, Client, ServerProcess, alice_and_bob, one_device, t

EXACT_BODIES = [
    {"text": "before\u0000after", "only": "\u0000"},
    {"text": "'; DROP TABLE messages;--", "<script>": "alert(1)</script>"},
    {"text": "abc\u202eexe.txt \U0001f469\u200d\U0001f469\u200d\U0001f467"},
]


async def _raw(server: ServerProcess, user: str, device: str) -> RawWebSocket:
    """A hand-made WebSocket that has said hello (welcome read)."""
    conn = RawWebSocket(server.ws_url)
    assert await conn.connect() == 101
    await conn.send_text(
        json.dumps({"type": "hello", "ref": "h", "token": server.token(user, device)})
    )
    frame = await conn.read_frame(t(5))
    assert frame is not None and json.loads(frame.text())["type"] == "welcome"
    return conn


async def test_unmasked_client_frame_is_closed_with_1002(server: ServerProcess, api: Api) -> None:
    user, (dev,) = await api.user("unmasked")
    conn = await _raw(server, user, dev)
    await conn.send_bytes(encode_frame(OP_TEXT, b'{"type":"ping","ref":"p"}', mask=False))
    assert await conn.wait_close(t(5)) == 1002
    assert not any('"ack"' in text for text in conn.texts()), "the unmasked ping was answered"
    await conn.close()


async def test_a_whole_oversize_frame_still_gets_its_1009(server: ServerProcess, api: Api) -> None:
    """An oversized frame gets a 1009 close the client can read (not a reset over unread input)."""
    user, (dev,) = await api.user("oversize")
    for size in (200_000, 1_000_000, 200_000):
        conn = await _raw(server, user, dev)
        frame = encode_frame(OP_TEXT, b'{"pad":"' + b"x" * size + b'"}')
        assert await conn.send_while_reading(frame, t(5)) == 1009, f"size {size}"
        await conn.close()


async def test_non_finite_numbers_and_lone_surrogates_are_bad_requests(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """NaN, infinities and lone surrogates are the client's fault: ``bad_request``."""
    conv, client = await one_device(server, api, "alice")
    texts = [
        '{"type":"send","ref":"n1","conversation_id":"%s","client_msg_id":"n1","body":NaN}',
        '{"type":"send","ref":"n2","conversation_id":"%s","client_msg_id":"n2","body":-Infinity}',
        '{"type":"send","ref":"n3","conversation_id":"%s","client_msg_id":"n3","body":1e400}',
        '{"type":"send","ref":"n4","conversation_id":"%s","client_msg_id":"n4","body":"\\ud800"}',
        '{"type":"send","ref":"n5","conversation_id":"%s","client_msg_id":"\\udc00","body":1}',
    ]
    for n, text in enumerate(texts, 1):
        await client.ws.send(text % conv)
        ref = f"n{n}"
        reply = await client.wait_for(lambda f: f.get("ref") == ref)  # noqa: B023 - awaited here
        assert (reply["type"], reply["code"]) == ("error", "bad_request"), reply
    assert await db.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv) == 0
    ack = await client.request({"type": "ping"})
    assert ack["type"] == "ack"
    await client.ws.close()


async def test_an_unencodable_ref_does_not_stall_the_connection(
    server: ServerProcess, api: Api
) -> None:
    """An error for a ref that cannot be encoded is still sent (ref null) and the link lives on."""
    alice, (a1,) = await api.user("alice")
    client = await Client.open(server, alice, a1)
    await client.ws.send('{"type":"ping","ref":"\\ud800"}')
    error = await client.wait_for(lambda f: f.get("type") == "error")
    assert error["code"] == "bad_request" and error["ref"] is None
    assert (await client.request({"type": "ping"}, within=3))["type"] == "ack"
    await client.ws.close()


async def test_bodies_are_stored_and_returned_byte_identical(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    """Bodies ``jsonb`` cannot hold (a NUL, say) are kept and returned as the exact text sent."""
    conv, sender, reader = await alice_and_bob(server, api)
    for n, body in enumerate(EXACT_BODIES, 1):
        ack = await sender.send_msg(conv, body, f"exact-{n}")
        assert ack["type"] == "ack", ack
        stored = await db.fetchval(
            "SELECT body::text FROM messages WHERE conversation_id = $1 AND seq = $2",
            conv,
            ack["seq"],
        )
        assert json.loads(stored) == body
        seq = ack["seq"]
        got = await reader.wait_for(lambda f: f.get("seq") == seq)  # noqa: B023 - awaited here
        assert json.dumps(got["body"], ensure_ascii=False) == json.dumps(body, ensure_ascii=False)
    retry = await sender.send_msg(conv, EXACT_BODIES[0], "exact-1")
    assert retry["type"] == "ack" and retry["duplicate"] is True
    changed = await sender.send_msg(conv, {"text": "before\u0000AFTER"}, "exact-1")
    assert changed["code"] == "idempotency_conflict"
    page = await sender.request({"type": "history", "conversation_id": conv, "limit": 10})
    assert [m["body"] for m in page["messages"]] == EXACT_BODIES
    for client in (sender, reader):
        await client.ws.close()


async def test_presence_of_strangers_is_reported_like_unknown_users(
    server: ServerProcess, api: Api
) -> None:
    """A user sharing no conversation sees a stranger as it would an unknown user."""
    alice, (a1,) = await api.user("alice")
    stranger, (s1,) = await api.user("stranger")
    friend, (f1,) = await api.user("friend")
    await api.conversation(alice, friend)
    online = [await Client.open(server, stranger, s1), await Client.open(server, friend, f1)]
    asker = await Client.open(server, alice, a1)
    ack = await asker.request(
        {"type": "presence_query", "user_ids": [stranger, friend, "no-such-user-x"]}
    )
    users = ack["users"]
    assert users[stranger] == users["no-such-user-x"] == {"status": "offline", "devices": []}
    assert users[friend]["status"] == "online" and users[friend]["devices"]
    for client in [*online, asker]:
        await client.ws.close()


async def test_a_backlog_larger_than_the_send_queue_is_replayed_not_closed(
    server_factory: object, api: Api, db: asyncpg.Connection
) -> None:
    """Replay is paced by the send queue: a backlog over CCS_SEND_QUEUE_MAX reaches a fast reader
    instead of closing it with 4001 right after welcome."""
    small = await server_factory(CCS_SEND_QUEUE_MAX="40")  # type: ignore[operator]
    alice, (a1,) = await api.user("alice")
    conv = await api.conversation(alice)
    await db.execute(
        "INSERT INTO messages (conversation_id, sender_user_id, client_msg_id, body)"
        " SELECT $1, $2, 'bulk-' || g, json_build_object('n', g) FROM generate_series(1, 300) g",
        conv,
        alice,
    )
    client = await Client.open(small, alice, a1)
    await client.wait_for(lambda f: f.get("type") == "message" and f.get("seq") == 300, within=10)
    assert [m["seq"] for m in client.messages(conv)] == list(range(1, 301))
    assert client.close_code is None
    await client.ws.close()


async def test_a_reader_that_stops_reading_is_still_closed_with_4001(
    server_factory: object, api: Api, db: asyncpg.Connection
) -> None:
    """The pacing above must not hide a real slow consumer (live traffic, no reads)."""
    small = await server_factory(CCS_SEND_QUEUE_MAX="40")  # type: ignore[operator]
    alice, (a1,) = await api.user("alice")
    conv = await api.conversation(alice)
    conn = await _raw(small, alice, a1)
    before = await _slow_closes(api, small)
    await db.execute(
        "INSERT INTO messages (conversation_id, sender_user_id, client_msg_id, body)"
        " SELECT $1, $2, 'flood-' || g, json_build_object('pad', repeat('x', 16000))"
        " FROM generate_series(1, 600) g",
        conv,
        alice,
    )
    await _wait_for_slow_close(api, small, before, t(20))
    codes = []
    while (frame := await conn.read_frame(t(5))) is not None:
        if frame.opcode == OP_CLOSE:
            codes.append(frame.close_code)
            break
    assert codes == [4001]
    await conn.close()


async def _wait_for_slow_close(
    api: Api, server: ServerProcess, before: float, within: float
) -> None:
    """Poll the server's counter (an external process: there is no event to await)."""
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.05) + 1):
        if await _slow_closes(api, server) > before or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def _slow_closes(api: Api, server: ServerProcess) -> float:
    async with api.http.get(f"{server.base}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("ccs_slow_consumer_closes_total "):
                return float(line.split()[1])
    return 0.0


async def test_rest_refuses_non_finite_numbers(server: ServerProcess, api: Api) -> None:
    alice, (a1,) = await api.user("alice")
    conv = await api.conversation(alice)
    async with api.http.post(
        f"{server.base}/v1/conversations/{conv}/messages",
        data='{"client_msg_id": "r1", "body": NaN}',
        headers={
            "Authorization": "Bearer " + server.token(alice, a1),
            "Content-Type": "application/json",
        },
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == "bad_request"
