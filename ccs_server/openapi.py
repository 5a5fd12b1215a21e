"""The OpenAPI 3.1 document served at ``/openapi.json`` (kept beside the routes in rest.py)."""

from __future__ import annotations

from typing import Any

from . import PROTOCOL_VERSION
from .errors import ERROR_CODES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(
    summary: str,
    ok: str,
    schema: dict[str, Any] | None = None,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    secured: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {
                "description": "success",
                **({"content": {"application/json": {"schema": schema}}} if schema else {}),
            },
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": _ref("Error")}},
            },
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if params:
        op["parameters"] = params
    if not secured:
        op["security"] = []
    return op


def _path(name: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": typ}}


def _query(name: str, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum:
        schema.update(minimum=1, maximum=maximum)
    return {"name": name, "in": "query", "required": False, "schema": schema}


ID = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}
CONV, SEQ, USER = _path("conversation_id"), _path("seq", "integer"), _path("user_id")

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "CCS reference server",
        "version": PROTOCOL_VERSION,
        "description": "REST side of the CCS protocol; the WebSocket side is /ws "
        "(docs/protocol.md).",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "message", "retryable"],
                "properties": {
                    "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean"},
                },
            },
            "NewUser": {
                "type": "object",
                "required": ["user_id"],
                "properties": {"user_id": ID, "display_name": {"type": "string"}},
            },
            "NewDevice": {
                "type": "object",
                "required": ["device_id"],
                "properties": {"device_id": ID, "name": {"type": "string"}},
            },
            "NewConversation": {
                "type": "object",
                "required": ["conversation_id"],
                "properties": {
                    "conversation_id": ID,
                    "title": {"type": "string"},
                    "members": {"type": "array", "items": ID},
                },
            },
            "NewMember": {"type": "object", "required": ["user_id"], "properties": {"user_id": ID}},
            "NewMessage": {
                "type": "object",
                "required": ["client_msg_id", "body"],
                "properties": {
                    "client_msg_id": {"type": "string", "minLength": 1, "maxLength": 128},
                    "body": {},
                },
            },
            "EditMessage": {
                "type": "object",
                "required": ["expected_version"],
                "properties": {
                    "expected_version": {"type": "integer", "minimum": 1},
                    "body": {},
                    "deleted": {"type": "boolean"},
                },
            },
            "Message": {
                "type": "object",
                "properties": {
                    "message_id": {"type": "integer"},
                    "conversation_id": ID,
                    "seq": {"type": "integer"},
                    "sender_user_id": ID,
                    "sender_device_id": {"type": ["string", "null"]},
                    "client_msg_id": {"type": ["string", "null"]},
                    "body": {},
                    "version": {"type": "integer"},
                    "deleted": {"type": "boolean"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "edited_at": {"type": ["string", "null"], "format": "date-time"},
                    "duplicate": {"type": "boolean"},
                },
            },
            "Page": {
                "type": "object",
                "properties": {
                    "messages": {"type": "array", "items": _ref("Message")},
                    "has_more": {"type": "boolean"},
                },
            },
            "Status": {
                "type": "object",
                "properties": {
                    "message_id": {"type": "integer"},
                    "seq": {"type": "integer"},
                    "devices": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "device_id": ID,
                                "user_id": ID,
                                "delivered": {"type": "boolean"},
                                "read": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
            "Presence": {
                "type": "object",
                "properties": {
                    "user_id": ID,
                    "status": {"enum": ["online", "away", "offline"]},
                    "devices": {"type": "array", "items": {"type": "object"}},
                },
            },
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"enum": ["ok", "degraded"]},
                    "node_id": {"type": "string"},
                    "database": {"type": "string"},
                    "listener": {"type": "string"},
                    "redis": {"type": "string"},
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/users": {"post": _op("Create a user (admin)", "201", body="NewUser")},
        "/v1/users/{user_id}/devices": {
            "post": _op("Register a device (admin)", "201", body="NewDevice", params=[USER])
        },
        "/v1/users/{user_id}/presence": {
            "get": _op("Presence of a user", "200", _ref("Presence"), params=[USER])
        },
        "/v1/conversations": {
            "post": _op("Create a conversation (admin)", "201", body="NewConversation")
        },
        "/v1/conversations/{conversation_id}/members": {
            "post": _op("Add a member (admin)", "201", body="NewMember", params=[CONV])
        },
        "/v1/conversations/{conversation_id}/members/{user_id}": {
            "delete": _op("Remove a member (admin)", "204", params=[CONV, USER])
        },
        "/v1/conversations/{conversation_id}/messages": {
            "post": _op(
                "Send a message (device token); 200 when duplicate",
                "201",
                _ref("Message"),
                body="NewMessage",
                params=[CONV],
            ),
            "get": _op(
                "Page history",
                "200",
                _ref("Page"),
                params=[CONV, _query("after_seq"), _query("before_seq"), _query("limit", 100)],
            ),
        },
        "/v1/conversations/{conversation_id}/messages/{seq}": {
            "patch": _op(
                "Edit or delete with expected_version (device token)",
                "200",
                body="EditMessage",
                params=[CONV, SEQ],
            )
        },
        "/v1/conversations/{conversation_id}/messages/{seq}/status": {
            "get": _op(
                "Delivery/read status per member device", "200", _ref("Status"), params=[CONV, SEQ]
            )
        },
        "/health": {"get": _op("Health (503 when degraded)", "200", _ref("Health"), secured=False)},
        "/metrics": {"get": _op("Prometheus metrics", "200", secured=False)},
        "/openapi.json": {"get": _op("This document", "200", secured=False)},
    },
}
