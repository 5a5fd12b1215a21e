"""Reference CCS server: WebSocket + REST messaging backed by PostgreSQL (protocol 1.1)."""

PROTOCOL_VERSION = "1.1"
