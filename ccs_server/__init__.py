"""Reference CCS server: WebSocket + REST messaging backed by PostgreSQL (protocol 1.0)."""

PROTOCOL_VERSION = "1.0"
