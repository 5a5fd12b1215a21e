"""P18 observability: health, metrics, OpenAPI, structured logs that never contain tokens."""

from __future__ import annotations

import json
import logging

from ccs_server.auth import mint_token
from ccs_server.logs import JsonFormatter, redact

from .support import SECRET, Api, Client, ServerProcess, one_device


async def test_health_metrics_and_openapi(server: ServerProcess, api: Api) -> None:
    async with api.http.get(server.base + "/health") as resp:
        assert resp.status == 200
        health = await resp.json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["listener"] == "listening" and health["node_id"] == server.name
    conv, client = await one_device(server, api, "obs")
    await client.send_msg(conv, 1)
    async with api.http.get(server.base + "/metrics") as resp:
        text = await resp.text()
    for name in (
        "ccs_connections",
        "ccs_messages_total",
        "ccs_send_latency_seconds_bucket",
        "ccs_gaps_repaired_total",
        "ccs_repair_sweeps_total",
        "ccs_presence_repairs_total",
        "ccs_listener_connected",
        "ccs_deliveries_total",
    ):
        assert name in text, name
    assert 'ccs_messages_total{source="ws"}' in text
    async with api.http.get(server.base + "/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/conversations/{conversation_id}/messages/{seq}/status" in doc["paths"]
    await client.close()


async def test_logs_are_json_and_never_contain_tokens(server: ServerProcess, api: Api) -> None:
    user, (d1,) = await api.user("logs")
    token = server.token(user, d1)
    client = await Client.open(server, user, d1)
    await client.send({"type": "hello", "ref": "again", "token": token})
    await client.wait_for(lambda f: f.get("ref") == "again")
    async with api.http.get(server.base + "/v1/users/x/presence?token=" + token) as resp:
        assert resp.status == 401
    bad = await Client.open(server, user, d1, hello=False)
    await bad.send({"type": "hello", "ref": "h", "token": token + "tampered"})
    await bad.wait_closed()
    await client.close()
    lines = server.log_file.read_text().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)
    assert not any(token.split(".")[2] in line for line in lines)
    assert not any(token in line for line in lines)


def test_redaction_removes_tokens_from_any_log_text() -> None:
    """Even if a token reaches a log call (a header dump, a URL), the formatter scrubs it."""
    token = mint_token(SECRET, "alice", "alice-phone")
    record = logging.makeLogRecord(
        {
            "msg": "upgrade GET /ws?token=%s",
            "args": (token,),
            "levelname": "INFO",
            "header": "Bearer " + token,
        }
    )
    line = JsonFormatter().format(record)
    assert token not in line and token.split(".")[1] not in line
    assert "[redacted]" in line
    assert redact("/ws?token=opaque-value&x=1") == "/ws?token=[redacted]&x=1"
