"""The figures of a distributed run, with their thresholds, in the kit's metrics format.

One list serves both callers: the Robot library records them with ``ccskit.metrics.recorder``
(so the listener puts them in ``results/metrics.json``), and ``make distributed`` writes them as a
metrics file of its own (same schema, ``results/metrics/metrics-distributed-<pid>.json``) that
``make report`` merges like a robot process's file.
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from ..checker import ANOMALIES
from ..metrics import Metric
from ..report.store import write_json

# The seed's criteria (resources/stress.resource) for what a distributed run measures too.
DELIVERY_AVG_MS = 50.0
SYNC_P99_MS = 1000.0
ACK_AVG_MS = 200.0
#: Figures whose threshold is a timing requirement (noisy on a shared machine), as opposed to
#: correctness (anomalies, devices online, deliveries): the keywords assert them separately.
TIMING = frozenset(
    {"distributed_delivery_avg_ms", "distributed_delivery_p99_ms", "distributed_ack_avg_ms"}
)


def _finite(value: Any) -> float:
    number = float(value or 0.0)
    return number if math.isfinite(number) else 0.0


def metrics(outcome: dict[str, Any]) -> list[Metric]:
    """Every figure of ``outcome`` (the master's results file) with unit and threshold."""
    totals, counts = outcome["totals"], outcome["check"]["counts"]
    delivery, ack = outcome["delivery_ms"], outcome["ack_ms"]
    expected = totals.get("expected_deliveries") or 0
    success = 100.0 * totals["deliveries"] / expected if expected else 100.0
    out = [Metric(f"distributed_{a}", counts[a], "messages", 0, "<=") for a in ANOMALIES]
    out += [
        Metric("distributed_workers", outcome["workers"], "processes"),
        Metric(
            "distributed_devices_connected", totals["connected"], "devices", totals["devices"], ">="
        ),
        Metric("distributed_connect_failures", totals["connect_failed"], "devices", 0, "<="),
        Metric("distributed_connect_refusals", totals["connect_refusals"], "refusals"),
        Metric("distributed_connect_errors_retried", totals["connect_errors_retried"], "errors"),
        Metric("distributed_connect_per_s", round(totals["connect_per_s"], 1), "devices/s"),
        Metric("distributed_unexpected_closes", totals["closes"], "closes", 0, "<="),
        Metric("distributed_unanswered_sends", totals["unanswered"], "sends", 0, "<="),
        Metric("distributed_attempted", totals["attempted"], "messages"),
        Metric("distributed_acked_msgs_per_s", round(totals["acked_per_s"], 1), "msgs/s"),
        Metric("distributed_deliveries_per_s", round(totals["deliveries_per_s"], 1), "msgs/s"),
        Metric("distributed_delivery_success_pct", round(success, 3), "%", 100.0, ">="),
        Metric(
            "distributed_delivery_avg_ms",
            round(_finite(delivery["avg"]), 3),
            "ms",
            DELIVERY_AVG_MS,
            "<=",
        ),
        Metric("distributed_delivery_p50_ms", round(_finite(delivery["p50"]), 3), "ms"),
        Metric(
            "distributed_delivery_p99_ms",
            round(_finite(delivery["p99"]), 3),
            "ms",
            SYNC_P99_MS,
            "<=",
        ),
        Metric("distributed_ack_avg_ms", round(_finite(ack["avg"]), 3), "ms", ACK_AVG_MS, "<="),
        Metric("distributed_ack_p99_ms", round(_finite(ack["p99"]), 3), "ms"),
    ]
    for name, entry in outcome.get("locust", {}).items():
        key = name.replace("->", "_to_").replace(" ", "_")
        out.append(Metric(f"locust_{key}_count", entry["count"], "requests"))
        out.append(Metric(f"locust_{key}_failures", entry["failures"], "requests"))
        out.append(Metric(f"locust_{key}_p99_ms", _finite(entry["p99_ms"]), "ms"))
    return out


def write_metrics_file(
    outcome: dict[str, Any], folder: Path, test: str, run_id: str | None = None
) -> Path:
    """``folder/metrics-distributed-<pid>.json`` in the listener's schema (one test entry)."""
    figures = metrics(outcome)
    failed = [m for m in figures if m.passed is False]
    started, ended = outcome.get("started") or time.time(), outcome.get("ended") or time.time()
    doc = {
        "run": {
            "id": run_id or os.environ.get("CCS_RUN_ID") or f"distributed-{int(started)}",
            "pid": os.getpid(),
            "host": platform.node(),
            "started": started,
            "ended": ended,
        },
        "tests": [
            {
                "suite": "Distributed Load",
                "test": test,
                "tags": ["distributed", "stress"],
                "status": "PASS" if outcome["ok"] and not failed else "FAIL",
                "start": started,
                "end": ended,
                "metrics": [m.as_dict() for m in figures],
            }
        ],
        "samples": {
            "distributed_delivery_ms": {
                "unit": "ms",
                "values": [round(v, 3) for v in outcome.get("delivery_ms_sample", [])],
            }
        },
        "series": {},
        "faults": [],
    }
    path = folder / f"metrics-distributed-{os.getpid()}.json"
    write_json(path, doc)
    return path
