"""The ``ref`` of a command is echoed in its error whenever the frame's top-level ``ref`` is
readable, even when the rest of the frame cannot be decoded (nested past the parser's depth)."""

from __future__ import annotations

import json

from ccs_server.limits import top_level_string

from .support import Api, ServerProcess, one_device

DEPTH = 5000  # well past the JSON parser's nesting limit


def _deep(conv: str, ref: str, ref_first: bool) -> str:
    body = "[" * DEPTH + "]" * DEPTH
    head = f'"type":"send","conversation_id":"{conv}","client_msg_id":"deep-{ref}"'
    if ref_first:
        return f'{{"ref":"{ref}",{head},"body":{body}}}'
    return f'{{{head},"body":{body},"ref":"{ref}"}}'


async def test_too_deep_body_error_echoes_the_ref(server: ServerProcess, api: Api) -> None:
    """A body too deep to parse still gets ``bad_request`` echoing the frame's valid ref."""
    conv, client = await one_device(server, api, "alice")
    for ref, first in (("deep-before", True), ("deep-after", False)):
        await client.ws.send(_deep(conv, ref, first))
        reply = await client.wait_for(lambda f, r=ref: f.get("ref") == r)
        assert (reply["type"], reply["code"], reply["retryable"]) == (
            "error",
            "bad_request",
            False,
        ), reply
    assert (await client.request({"type": "ping"}))["type"] == "ack"  # the connection lives on
    await client.close()


def test_top_level_string_reads_only_the_top_level() -> None:
    nested_ref = json.dumps({"body": {"ref": "inner"}, "type": "send"})
    assert top_level_string(nested_ref, "ref") is None
    assert top_level_string('{"ref":"a","ref":"b"}', "ref") == "b"  # last wins, as json.loads
    assert top_level_string('{"ref": 7}', "ref") is None
    assert top_level_string('{"ref":"caf\\u00e9"}', "ref") == "café"
    assert top_level_string('["ref"]', "ref") is None
    assert top_level_string('{"a":"x\\"ref\\":\\"no\\"","ref":"yes"}', "ref") == "yes"
    assert top_level_string('{"ref":"cut', "ref") is None
