"""A member added to a conversation sees it from the head at the moment it joined (its join point).

Offline or online when added, its devices get only later messages: no replay of older ones, no
``too_many_missed`` for messages that were never theirs. History and message status read by the
member's devices stop at the join point too; an admin token still reads everything.
"""

from __future__ import annotations

from typing import Any

from .conftest import ServerFactory
from .support import Api, Client, ServerProcess


async def _add(api: Api, conv: str, user: str) -> None:
    status, body = await api.call("POST", f"/v1/conversations/{conv}/members", {"user_id": user})
    assert status == 201, body


async def _carol_added_after(
    server: ServerProcess, api: Api, count: int
) -> tuple[str, Client, str, str]:
    """Alice, alone in a new conversation, sends ``count`` messages, then carol is added (not
    connected yet): ``(conv, alice's client, carol, carol's device)``."""
    alice, (a1,) = await api.user("alice")
    carol, (c1,) = await api.user("carol")
    conv = await api.conversation(alice)
    sender = await Client.open(server, alice, a1)
    for i in range(count):
        await sender.send_msg(conv, f"before carol {i}")
    await _add(api, conv, carol)
    return conv, sender, carol, c1


async def _marker(client: Client, api: Api, user: str) -> None:
    """Send and receive a message in a conversation of ``user`` alone: every frame the server
    sent this connection before it has arrived by then (one ordered socket)."""
    conv = await api.conversation(user)
    await client.send_msg(conv, "marker")
    await client.wait_messages(conv, 1)


async def _history(client: Client, conv: str, **bounds: Any) -> tuple[list[int], bool]:
    ack = await client.request({"type": "history", "conversation_id": conv, **bounds})
    assert ack["type"] == "ack", ack
    return [m["seq"] for m in ack["messages"]], ack["has_more"]


async def test_member_added_while_offline_starts_at_the_join_point(
    server: ServerProcess, api: Api
) -> None:
    """Added at head 3 while offline, the device resumes from 3: messages 1-3 are not replayed."""
    conv, sender, carol, c1 = await _carol_added_after(server, api, 3)
    newcomer = await Client.open(server, carol, c1)
    assert newcomer.welcome["conversations"][conv] == {
        "head_seq": 3,
        "from_seq": 3,
        "recovered": True,
    }, newcomer.welcome
    ack = await sender.send_msg(conv, "after carol")
    got = await newcomer.wait_messages(conv, 1)
    await _marker(newcomer, api, carol)
    assert [m["seq"] for m in newcomer.messages(conv)] == [ack["seq"]] == [4], got
    await newcomer.close()
    # a resume below the join point is raised to it, not answered with older messages
    again = await Client.open(server, carol, c1, resume={conv: 0})
    assert again.welcome["conversations"][conv]["from_seq"] == 3, again.welcome
    await _marker(again, api, carol)
    assert [m["seq"] for m in again.messages(conv)] == [4], again.tail()
    await again.close()
    await sender.close()


async def test_pre_join_messages_are_not_missed_ones(
    server_factory: ServerFactory, api: Api
) -> None:
    """More pre-join messages than the replay limit are not missed ones: no ``recovered: false``,
    no ``too_many_missed``."""
    small = await server_factory(CCS_REPLAY_LIMIT="2")
    conv, sender, carol, c1 = await _carol_added_after(small, api, 5)
    newcomer = await Client.open(small, carol, c1)
    assert newcomer.welcome["conversations"][conv] == {
        "head_seq": 5,
        "from_seq": 5,
        "recovered": True,
    }, newcomer.welcome
    await newcomer.close()
    await sender.close()


async def test_history_and_status_stop_at_the_join_point(server: ServerProcess, api: Api) -> None:
    """Decision: history (WS and REST) for a member's device starts after its join point and
    has_more is false there; the status of an older message is not_found; admins read all."""
    conv, sender, carol, c1 = await _carol_added_after(server, api, 3)
    for i in range(2):
        await sender.send_msg(conv, f"after {i}")
    reader = await Client.open(server, carol, c1)
    assert await _history(reader, conv) == ([4, 5], False)
    assert await _history(reader, conv, limit=1) == ([5], True)
    assert await _history(reader, conv, before_seq=5, limit=1) == ([4], False)
    assert await _history(reader, conv, before_seq=4) == ([], False)
    assert await _history(reader, conv, after_seq=0) == ([4, 5], False)
    assert await _history(sender, conv) == ([1, 2, 3, 4, 5], False)  # the author joined at 0

    token = server.token(carol, c1)
    status, page = await api.call("GET", f"/v1/conversations/{conv}/messages", token=token)
    assert status == 200 and [m["seq"] for m in page["messages"]] == [4, 5], page
    assert page["has_more"] is False, page
    status, body = await api.call("GET", f"/v1/conversations/{conv}/messages/3/status", token=token)
    assert (status, body["code"]) == (404, "not_found"), body
    status, body = await api.call("GET", f"/v1/conversations/{conv}/messages/4/status", token=token)
    assert status == 200, body
    status, page = await api.call("GET", f"/v1/conversations/{conv}/messages")  # admin
    assert status == 200 and [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5], page
    await reader.close()
    await sender.close()


async def test_removed_and_added_again_joins_anew(server: ServerProcess, api: Api) -> None:
    alice, (a1,) = await api.user("alice")
    carol, (c1,) = await api.user("carol")
    conv = await api.conversation(alice, carol)
    sender = await Client.open(server, alice, a1)
    await sender.send_msg(conv, "seen by carol")
    status, _ = await api.call("DELETE", f"/v1/conversations/{conv}/members/{carol}")
    assert status == 204
    await sender.send_msg(conv, "while carol was out")
    await _add(api, conv, carol)
    back = await Client.open(server, carol, c1)
    assert back.welcome["conversations"][conv]["from_seq"] == 2, back.welcome
    assert await _history(back, conv) == ([], False)
    await back.close()
    await sender.close()
