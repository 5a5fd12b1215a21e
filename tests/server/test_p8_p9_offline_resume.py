"""P8 offline queue and P9 resume: replay before live traffic, no gap, no duplicate, explicit
recovered/truncated flags, malformed resume fails closed."""

from __future__ import annotations

import asyncpg

from .support import Api, Client, ServerProcess, alice_and_bob


async def test_offline_device_gets_backlog_in_order_before_live(
    server: ServerProcess, api: Api, db: asyncpg.Connection
) -> None:
    conv, sender, reader = await alice_and_bob(server, api)
    for i in range(3):
        await sender.send_msg(conv, i)
    await reader.wait_messages(conv, 3)
    await reader.request(
        {"type": "receipt", "conversation_id": conv, "kind": "delivered", "seq": 3}
    )
    await reader.close()
    for i in range(3, 40):  # sent while bob is offline
        await sender.send_msg(conv, i)
    back = await Client.open(server, reader.user, reader.device)
    info = back.welcome["conversations"][conv]
    assert info == {"head_seq": 40, "from_seq": 3, "recovered": True}
    live = await sender.send_msg(conv, "live")
    got = await back.wait_messages(conv, 38)
    assert [m["seq"] for m in got] == [*range(4, 41), live["seq"]]
    welcome_at = back.frames.index(back.welcome)
    first_msg = back.frames.index(got[0])
    assert welcome_at < first_msg
    await sender.close()
    await back.close()


async def test_resume_replays_exactly_what_was_missed(server: ServerProcess, api: Api) -> None:
    user, (d1, d2) = await api.user("res", devices=2)
    conv = await api.conversation(user)
    writer = await Client.open(server, user, d1)
    for i in range(10):
        await writer.send_msg(conv, i)
    resumed = await Client.open(server, user, d2, resume={conv: 6})
    assert resumed.welcome["conversations"][conv] == {
        "head_seq": 10,
        "from_seq": 6,
        "recovered": True,
    }
    got = await resumed.wait_messages(conv, 4)
    await writer.send_msg(conv, "after")
    got = await resumed.wait_messages(conv, 5)
    assert [m["seq"] for m in got] == [7, 8, 9, 10, 11]
    await writer.close()
    await resumed.close()


async def test_resume_reports_ahead_and_forbidden(server: ServerProcess, api: Api) -> None:
    user, (d1,) = await api.user("ahead")
    conv = await api.conversation(user)
    other, _ = await api.user("other")
    foreign = await api.conversation(other)
    writer = await Client.open(server, user, d1, resume={conv: 0})
    await writer.send_msg(conv, "x")
    await writer.close()
    again = await Client.open(server, user, d1, resume={conv: 99, foreign: 0, "no-such": 3})
    convs = again.welcome["conversations"]
    assert convs[conv] == {
        "head_seq": 1,
        "from_seq": 1,
        "recovered": False,
        "reason": "seq_ahead_of_head",
    }
    assert convs[foreign] == convs["no-such"] == {"recovered": False, "reason": "forbidden"}
    await again.close()


async def test_too_many_missed_is_truncated_explicitly(server_factory, api: Api) -> None:
    small = await server_factory(CCS_REPLAY_LIMIT="5")
    user, (d1, d2) = await api.user("trunc", devices=2)
    conv = await api.conversation(user)
    writer = await Client.open(small, user, d1)
    for i in range(12):
        await writer.send_msg(conv, i)
    late = await Client.open(small, user, d2, resume={conv: 2})
    assert late.welcome["conversations"][conv] == {
        "head_seq": 12,
        "from_seq": 7,
        "recovered": False,
        "reason": "too_many_missed",
        "truncated": True,
        "oldest_available_seq": 8,
    }
    got = await late.wait_messages(conv, 5)
    assert [m["seq"] for m in got] == [8, 9, 10, 11, 12]
    await writer.close()
    await late.close()


async def test_malformed_resume_fails_closed(server: ServerProcess, api: Api) -> None:
    user, (d1,) = await api.user("badres")
    conv = await api.conversation(user)
    for bad in ([1], {conv: -1}, {conv: 1.5}, {conv: "abc"}, {conv: 2**64}, {conv: True}):
        client = await Client.open(server, user, d1, hello=False)
        await client.send(
            {"type": "hello", "ref": "h", "token": server.token(user, d1), "resume": bad}
        )
        err = await client.wait_for(lambda f: f.get("type") == "error")
        assert err["code"] == "bad_request", bad
        assert await client.wait_closed() == 4500
