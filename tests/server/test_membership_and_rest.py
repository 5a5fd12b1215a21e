"""Membership is checked at the moment of each action and routes live traffic; REST auth rules."""

from __future__ import annotations

from .support import Api, Client, ServerProcess


async def test_added_member_receives_and_removed_member_stops(
    server: ServerProcess, api: Api
) -> None:
    alice, (a1,) = await api.user("alice")
    carol, (c1,) = await api.user("carol")
    conv = await api.conversation(alice)
    sender = await Client.open(server, alice, a1)
    await sender.send_msg(conv, "before carol")
    newcomer = await Client.open(server, carol, c1)
    status, _ = await api.call("POST", f"/v1/conversations/{conv}/members", {"user_id": carol})
    assert status == 201
    await newcomer.wait_for(
        lambda f: f.get("type") == "member_added" and f["conversation_id"] == conv
    )
    ack = await sender.send_msg(conv, "welcome carol")
    got = await newcomer.wait_messages(conv, 1)
    assert [m["seq"] for m in got] == [ack["seq"]]  # from the head at joining, not history
    status, _ = await api.call("DELETE", f"/v1/conversations/{conv}/members/{carol}")
    assert status == 204
    await newcomer.wait_for(lambda f: f.get("type") == "member_removed")
    denied = await newcomer.send_msg(conv, "let me back")
    assert denied["code"] == "forbidden"
    after = await sender.send_msg(conv, "carol gone")
    await sender.wait_for(lambda f: f.get("type") == "message" and f["seq"] == after["seq"])
    marker_conv = await api.conversation(carol)
    await newcomer.send_msg(marker_conv, "marker")
    await newcomer.wait_messages(marker_conv, 1)  # everything earlier has been delivered by now
    assert [m["seq"] for m in newcomer.messages(conv)] == [ack["seq"]]
    await sender.close()
    await newcomer.close()


async def test_rest_requires_the_right_token(server: ServerProcess, api: Api) -> None:
    user, (d1,) = await api.user("rest")
    conv = await api.conversation(user)
    device_token = server.token(user, d1)
    status, body = await api.call("POST", "/v1/users", {"user_id": "x"}, token=device_token)
    assert status == 403 and body["code"] == "forbidden"
    async with api.http.post(server.base + "/v1/users", json={"user_id": "y"}) as resp:
        assert resp.status == 401
    status, body = await api.call("POST", "/v1/users", {"user_id": user})
    assert status == 409
    status, body = await api.call(
        "POST",
        f"/v1/conversations/{conv}/messages",
        {"client_msg_id": "k", "body": 1},
        token=device_token,
    )
    assert status == 201 and body["seq"] == 1 and body["duplicate"] is False
    status, body = await api.call(
        "POST",
        f"/v1/conversations/{conv}/messages",
        {"client_msg_id": "k", "body": 1},
        token=device_token,
    )
    assert status == 200 and body["duplicate"] is True
    status, body = await api.call(
        "PATCH",
        f"/v1/conversations/{conv}/messages/1",
        {"expected_version": 1, "body": 2},
        token=device_token,
    )
    assert status == 200 and body["version"] == 2
    status, body = await api.call(
        "PATCH",
        f"/v1/conversations/{conv}/messages/1",
        {"expected_version": 1, "body": 3},
        token=device_token,
    )
    assert status == 409 and body["current"]["body"] == 2
    outsider, (o1,) = await api.user("out")
    status, body = await api.call(
        "GET", f"/v1/conversations/{conv}/messages", token=server.token(outsider, o1)
    )
    assert status == 403 and body["code"] == "forbidden"
    status, body = await api.call("POST", "/v1/conversations", {"conversation_id": "bad id!"})
    assert status == 400 and body["code"] == "bad_request"


async def test_fixture_names_must_be_strings_or_absent(server: ServerProcess, api: Api) -> None:
    """A display name, device name or title of another JSON type is refused, and null is not."""
    user = api.uid("named")
    cases = [
        ("/v1/users", {"user_id": user, "display_name": 5}, "display_name"),
        (f"/v1/users/{user}/devices", {"device_id": f"{user}-d0", "name": []}, "name"),
        ("/v1/conversations", {"conversation_id": api.uid("conv"), "title": {}}, "title"),
    ]
    for path, body, field in cases:
        status, reply = await api.call("POST", path, body)
        assert (status, reply["code"]) == (400, "bad_request"), (path, status, reply)
        assert f"{field} must be a string" in reply["message"], (path, reply)
        status, reply = await api.call("POST", path, {**body, field: None})
        assert status == 201, (path, status, reply)
