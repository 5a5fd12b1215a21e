"""Prometheus metrics of one server (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric the server exports on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.connections = Gauge("ccs_connections", "Authenticated WebSocket sessions", registry=r)
        self.messages = Counter(
            "ccs_messages_total", "Messages stored by this node", ["source"], registry=r
        )
        self.duplicates = Counter(
            "ccs_duplicate_sends_total", "Idempotent retries answered", registry=r
        )
        self.send_latency = Histogram(
            "ccs_send_latency_seconds",
            "send received -> ack queued",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "ccs_deliveries_total", "message frames offered to sessions", registry=r
        )
        self.notifications = Counter(
            "ccs_notifications_total", "database notifications handled", registry=r
        )
        self.gaps_repaired = Counter(
            "ccs_gaps_repaired_total",
            "seqs delivered by the repair sweep after a lost notification",
            registry=r,
        )
        self.presence_repairs = Counter(
            "ccs_presence_repairs_total",
            "devices stored online with no session here and no grace period running, set offline",
            registry=r,
        )
        self.repair_sweeps = Counter(
            "ccs_repair_sweeps_total",
            "repair sweeps completed (periodic, and after the listener reconnects)",
            registry=r,
        )
        self.listener_up = Gauge(
            "ccs_listener_connected", "1 while the LISTEN connection is up", registry=r
        )
        self.listener_reconnects = Counter(
            "ccs_listener_reconnects_total", "LISTEN connection re-established", registry=r
        )
        self.errors = Counter("ccs_errors_total", "error frames sent", ["code"], registry=r)
        self.slow_consumers = Counter(
            "ccs_slow_consumer_closes_total", "closes with 4001", registry=r
        )
        self.presence_changes = Counter(
            "ccs_presence_changes_total", "presence broadcasts", registry=r
        )
        self.receipts = Counter("ccs_receipts_total", "receipts stored", ["kind"], registry=r)
