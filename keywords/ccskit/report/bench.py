"""The benchmark (``results/bench.json`` from ``make bench``) on the report page.

The benchmark is a separate measurement, not part of the suite run: its figures are shown in their
own section and as a second line on the matching KPI cards, always labelled as coming from it.
Unknown keys are shown as they are, so a newer bench.json never breaks the page.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import Any

from . import stats

# KPI key -> (path in bench.json, unit, what it is)
KPI_SOURCES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "db_query_time": (("db_op_ms", "avg"), "ms", "send → ack average"),
    # Latency is only meaningful while the load client is not saturated (see scripts/bench.py).
    "ws_delivery_time": (
        ("delivery_latency_unsaturated_ms", "avg"),
        "ms",
        "delivery average, load client unsaturated",
    ),
    "messages_per_s": (("persisted_msgs_per_s",), "msg/s", "persisted"),
    "connection_capacity": (("max_live_connections",), "connections", "live, one client"),
    "transaction_rate": (("raw_commit_per_s",), "tx/s", "raw INSERT+COMMIT"),
}
SKIP_KEYS = {"sweep"}


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def kpi_lines(doc: dict[str, Any] | None) -> dict[str, str]:
    """A short 'make bench: …' line per KPI the benchmark measured."""
    if not doc:
        return {}
    lines = {}
    for key, (path, unit, what) in KPI_SOURCES.items():
        value = _get(doc, path)
        if value is not None:
            lines[key] = f"make bench: {stats.fmt(value, unit)} ({what})"
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return " · ".join(f"{escape(str(k))} {_cell(v)}" for k, v in value.items())
    if isinstance(value, float):
        return stats.fmt(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


SUMMARY_KEYS = ("avg", "p99")  # what a reader compares; the full summary stays in bench.json


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """Nested latency summaries become 'delivery ms avg' / '… p99' columns; empties disappear."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key} {k}": value[k] for k in SUMMARY_KEYS if k in value})
        elif isinstance(value, bool):
            flat[key] = "yes" if value else "no"
        elif value not in (None, ""):
            flat[key] = value
    return flat


def _sweep_table(rows: Any) -> str:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return ""
    flat = [_flat_row(r) for r in rows]
    columns: list[str] = []
    for row in flat:
        columns += [k for k in row if k not in columns]
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_cell(r.get(c, ""))}</td>' for c in columns) + "</tr>"
        for r in flat
    )
    table = f'<table class="bench sweep"><tr>{head}</tr>{body}</table>'
    return f'<h3>Sweep</h3><div class="wide">{table}</div>'


def section(doc: dict[str, Any] | None, path: Path) -> str:
    """The benchmark section: headline figures with their targets, then the sweep table."""
    if doc is None:
        return (
            f'<section id="bench"><h2>Benchmark</h2><p class="none">{escape(str(path))} not '
            "found: benchmark not measured (run <code>make bench</code>).</p></section>"
        )
    sweep = doc.get("sweep") if isinstance(doc.get("sweep"), dict) else {}
    targets = sweep.get("context", {}).get("targets", {}) if sweep else {}
    rows = "".join(
        f"<tr><td>{escape(key.replace('_', ' '))}</td><td>{_cell(value)}</td>"
        f'<td class="target">{escape(str(targets.get(key, "")))}</td></tr>'
        for key, value in doc.items()
        if key not in SKIP_KEYS
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    return (
        f'<section id="bench"><h2>Benchmark</h2><p class="meta">From <code>{escape(str(path))}'
        f"</code> (<code>make bench</code>, written {when}): a separate measurement, not part of "
        "this suite run.</p>"
        f'<table class="bench"><tr><th>Figure</th><th>Measured</th><th>Target</th></tr>{rows}'
        f"</table>{_sweep_table(sweep.get('rows') if sweep else None)}</section>"
    )
