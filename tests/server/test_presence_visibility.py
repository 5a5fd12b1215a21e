"""Who may read presence: the same rule over REST as over the WebSocket ``presence_query``.

A device sees the users it shares a conversation with (itself included). A stranger is answered
exactly like an unknown user (offline, no devices): the reply does not even say whether the user
exists. Admin tokens see everyone.
"""

from __future__ import annotations

from typing import Any

from .support import Api, Client, ServerProcess

NOBODY = {"status": "offline", "devices": []}


async def _rest(api: Api, user: str, token: str | None = None) -> tuple[int, Any]:
    return await api.call("GET", f"/v1/users/{user}/presence", token=token)


async def test_rest_presence_tells_strangers_nothing(server: ServerProcess, api: Api) -> None:
    """A stranger's device token reads no status, device ids, last seen or node id."""
    alice, (a1,) = await api.user("alice")
    bob, (b1,) = await api.user("bob")
    eve, (e1,) = await api.user("eve")
    await api.conversation(alice, bob)
    online = await Client.open(server, alice, a1)
    eve_token = server.token(eve, e1)

    status, seen = await _rest(api, alice, token=eve_token)
    assert status == 200 and {k: seen[k] for k in NOBODY} == NOBODY, seen
    unknown = api.uid("nobody")
    status, none = await _rest(api, unknown, token=eve_token)
    assert status == 200 and {k: none[k] for k in NOBODY} == NOBODY, none
    assert seen.keys() == none.keys(), (seen, none)  # same shape: existence is not revealed
    ws_eve = await Client.open(server, eve, e1)
    query = await ws_eve.request({"type": "presence_query", "user_ids": [alice]})
    assert query["users"][alice] == NOBODY, query  # the WebSocket rule, unchanged

    status, shared = await _rest(api, alice, token=server.token(bob, b1))
    assert status == 200 and shared["status"] == "online", shared
    assert [d["device_id"] for d in shared["devices"]] == [a1], shared
    status, own = await _rest(api, alice, token=server.token(alice, a1))
    assert status == 200 and own["status"] == "online", own
    status, full = await _rest(api, alice)  # admin
    assert status == 200 and full["devices"][0]["node_id"] == server.name, full
    await ws_eve.close()
    await online.close()


async def test_rest_presence_needs_a_device_or_admin_token(server: ServerProcess, api: Api) -> None:
    alice, _ = await api.user("alice")
    status, body = await _rest(api, alice, token=server.token(alice))  # no device claim
    assert (status, body["code"]) == (401, "auth_failed"), body
