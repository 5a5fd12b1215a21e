"""Malformed input gets a clear error and the connection (and a bystander) keeps working;
authentication at the handshake; limits. The full hostile matrix lives in the kit's suites."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import websockets

from ccs_server.auth import mint_token

from .support import SECRET, Api, Client, ServerProcess, alice_and_bob, one_device, t


async def test_malformed_frames_get_errors_and_nothing_breaks(
    server: ServerProcess, api: Api
) -> None:
    conv, bad, bystander = await alice_and_bob(server, api)
    cases = [
        ("not json", "invalid_json"),
        ('{"type": "send"', "invalid_json"),
        ("[1,2]", "invalid_json"),
        ("null", "invalid_json"),
        (json.dumps({"type": "send"}), "bad_request"),
        (json.dumps({"type": "warp", "ref": "u"}), "unknown_type"),
        ("[" * 10000 + "]" * 10000, "bad_request"),
        (
            json.dumps(
                {"type": "send", "ref": "t", "conversation_id": 5, "client_msg_id": "x", "body": 1}
            ),
            "bad_request",
        ),
        (
            json.dumps(
                {
                    "type": "send",
                    "ref": "e",
                    "conversation_id": conv,
                    "client_msg_id": "",
                    "body": 1,
                }
            ),
            "bad_request",
        ),
        (
            json.dumps(
                {
                    "type": "send",
                    "ref": "l",
                    "conversation_id": conv,
                    "client_msg_id": "x" * 129,
                    "body": 1,
                }
            ),
            "too_large",
        ),
        (
            json.dumps(
                {
                    "type": "send",
                    "ref": "n",
                    "conversation_id": conv,
                    "client_msg_id": "a\u0000b",
                    "body": 1,
                }
            ),
            "bad_request",
        ),
        (
            json.dumps(
                {
                    "type": "send",
                    "ref": "b",
                    "conversation_id": conv,
                    "client_msg_id": "big",
                    "body": "x" * 20000,
                }
            ),
            "too_large",
        ),
        (
            json.dumps({"type": "history", "ref": "h", "conversation_id": conv, "limit": "10"}),
            "bad_request",
        ),
        (
            json.dumps({"type": "history", "ref": "h0", "conversation_id": conv, "limit": 101}),
            "bad_request",
        ),
        (
            json.dumps(
                {
                    "type": "send",
                    "ref": "f",
                    "conversation_id": "nope",
                    "client_msg_id": "f",
                    "body": 1,
                }
            ),
            "forbidden",
        ),
    ]
    for text, code in cases:
        mark = len(bad.frames)
        await bad.ws.send(text)
        err = await bad.wait_for(lambda f: f.get("type") == "error", start=mark)
        assert err["code"] == code, (text[:60], err)
        assert set(err) >= {"ref", "code", "message", "retryable"}
    await bad.ws.send(b"\x00\x01")
    err = await bad.wait_for(lambda f: f.get("code") == "binary_not_supported")
    tricky = "'; DROP TABLE messages;-- <script>\u202e 👩‍👩‍👧"
    ack = await bad.send_msg(conv, {"text": tricky})
    assert ack["type"] == "ack"
    got = await bystander.wait_messages(conv, 1)
    assert got[0]["body"] == {"text": tricky}
    await bad.close()
    await bystander.close()


async def test_history_pages(server: ServerProcess, api: Api) -> None:
    conv, client = await one_device(server, api, "hist")
    for i in range(7):
        await client.send_msg(conv, i)
    newest = await client.request({"type": "history", "conversation_id": conv, "limit": 3})
    assert [m["seq"] for m in newest["messages"]] == [5, 6, 7] and newest["has_more"] is True
    older = await client.request(
        {"type": "history", "conversation_id": conv, "before_seq": 5, "limit": 3}
    )
    assert [m["seq"] for m in older["messages"]] == [2, 3, 4]
    after = await client.request({"type": "history", "conversation_id": conv, "after_seq": 5})
    assert [m["seq"] for m in after["messages"]] == [6, 7] and after["has_more"] is False
    status, body = await api.call(
        "GET",
        f"/v1/conversations/{conv}/messages?after_seq=0&limit=2",
        token=server.token(client.user, client.device),
    )
    assert status == 200 and [m["seq"] for m in body["messages"]] == [1, 2]
    status, body = await api.call(
        "GET",
        f"/v1/conversations/{conv}/messages?limit=0",
        token=server.token(client.user, client.device),
    )
    assert status == 400 and body["code"] == "bad_request"
    sub = await client.request({"type": "subscribe", "conversation_id": conv})
    assert sub["head_seq"] == 7
    await client.close()


async def test_upgrade_and_hello_authentication(server: ServerProcess, api: Api) -> None:
    user, (d1,) = await api.user("auth")
    url = server.ws_url
    bad_tokens = {
        "expired": mint_token(SECRET, user, d1, ttl=-10),
        "wrong-secret": mint_token("another-secret-value-0123456789abcdef", user, d1),
        "unknown-device": mint_token(SECRET, user, "ghost"),
        "garbage": "abc.def.ghi",
        "alg-none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0.",
    }
    for name, token in bad_tokens.items():
        try:
            async with websockets.connect(url + "?token=" + token):
                raise AssertionError(f"{name}: upgrade accepted")
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == 401, name
    ok = await websockets.connect(
        url, additional_headers={"Authorization": "Bearer " + server.token(user, d1)}
    )
    await ok.send(json.dumps({"type": "hello", "ref": "h"}))
    welcome = json.loads(await ok.recv())
    assert welcome["type"] == "welcome" and welcome["device_id"] == d1
    await ok.close()
    expired = await Client.open(server, user, d1, hello=False)
    await expired.send({"type": "hello", "ref": "h", "token": bad_tokens["expired"]})
    assert (await expired.wait_for(lambda f: f.get("type") == "error"))["code"] == "token_expired"
    assert await expired.wait_closed() == 4003
    forged = await Client.open(server, user, d1, hello=False)
    await forged.send({"type": "hello", "ref": "h", "token": bad_tokens["wrong-secret"]})
    assert (await forged.wait_for(lambda f: f.get("type") == "error"))["code"] == "auth_failed"
    assert await forged.wait_closed() == 4501
    early = await Client.open(server, user, d1, hello=False)
    await early.send(
        {"type": "send", "ref": "s", "conversation_id": "c", "client_msg_id": "x", "body": 1}
    )
    assert (await early.wait_for(lambda f: f.get("type") == "error"))["code"] == "not_authenticated"
    assert await early.wait_closed() == 4500


async def test_auth_timeout_closes_4502(server_factory, api: Api) -> None:
    node = await server_factory(CCS_AUTH_TIMEOUT_MS="300")
    silent = await Client.open(node, "nobody", "none", hello=False)
    assert await silent.wait_closed(within=3) == 4502


async def test_limits_frame_size_rate_and_connection_cap(server_factory, api: Api) -> None:
    node = await server_factory(
        CCS_MAX_FRAME_BYTES="4096", CCS_SEND_RATE_PER_S="20", CCS_MAX_CONNECTIONS_PER_USER="2"
    )
    user, (d1,) = await api.user("lim")
    conv = await api.conversation(user)
    big = await Client.open(node, user, d1)
    await big.ws.send("x" * 5000)
    assert await big.wait_closed() == 1009
    fast = await Client.open(node, user, d1)
    for i in range(60):
        await fast.send({"type": "ping", "ref": f"p{i}"})
    limited = await fast.wait_for(lambda f: f.get("code") == "rate_limited")
    assert limited["retryable"] is True and limited["retry_after_ms"] > 0
    await fast.close()
    first, second = await Client.open(node, user, d1), await Client.open(node, user, d1)
    async with aiohttp.ClientSession() as http:
        try:
            await http.ws_connect(
                node.ws_url, headers={"Authorization": "Bearer " + node.token(user, d1)}
            )
            raise AssertionError("third connection accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429
    await first.close()
    await second.close()
    assert conv
    await asyncio.sleep(0)


async def test_invalid_utf8_closes_1007_and_server_lives_on(
    server: ServerProcess, api: Api
) -> None:
    user, (d1,) = await api.user("utf")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await ws.send_json({"type": "hello", "ref": "h", "token": server.token(user, d1)})
        await ws.receive_json()  # welcome
        # a text frame whose payload is not UTF-8: the WebSocket layer refuses it
        await ws._writer.send_frame(b"\xff\xfe", aiohttp.WSMsgType.TEXT)  # type: ignore[union-attr]
        async with asyncio.timeout(t(5)):
            async for _msg in ws:
                pass
        assert ws.close_code == 1007
    again = await Client.open(server, user, d1)
    assert (await again.request({"type": "ping"}))["type"] == "ack"
    await again.close()
