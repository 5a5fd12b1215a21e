"""The conformance report: a JSON document and one self-contained HTML page rendered from it."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ccskit.conformance.coverage import VERDICTS, Row, summary

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "not run": "#8d6e00", "not covered": "#6a1b9a"}
RAN = ("PASS", "FAIL")
STATUS_CLASS = {"PASS": "pass", "FAIL": "fail", "SKIP": "not run", "NOT RUN": "not run"}
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
h1{font-size:1.5em;margin:0 0 .3em}
h2{font-size:1.15em;margin:1.4em 0 .3em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left}.id{white-space:nowrap;font-family:monospace}
.v{color:#fff;font-weight:600;white-space:nowrap;text-align:center;width:7em}
.tests{font-size:12px}.tests span{display:block}.meta td{border:none;padding:1px 8px 1px 0}
.sections{width:auto;margin:.5em 0 1em}.sections td,.sections th{padding:1px 8px}
.n{text-align:right;font-variant-numeric:tabular-nums}details{color:#666}
.counts span{display:inline-block;padding:4px 10px;margin-right:6px;color:#fff;border-radius:3px}
"""


def document(
    table: list[Row], server: dict[str, str], kit: dict[str, str], run: dict[str, Any]
) -> dict[str, Any]:
    """The JSON form of the report: identity of what was tested, counts, one entry per statement."""
    return {
        "server": server,
        "kit": kit,
        "run": run,
        "summary": summary(table),
        "statements": [
            {
                "id": row.statement.label,
                "key": row.statement.key,
                "document": row.statement.source,
                "section": row.statement.section,
                "text": row.statement.text,
                "verdict": row.verdict,
                "tests": [
                    {
                        "name": t.name,
                        "suite": t.suite,
                        "source": t.source,
                        "status": t.status,
                        "message": t.message,
                    }
                    for t in row.tests
                ],
            }
            for row in table
        ],
    }


def _esc(value: object) -> str:
    return html.escape(str(value))


def _counts(counts: dict[str, int]) -> str:
    spans = [
        f'<span style="background:{COLOURS[v]}">{_esc(v)}: {counts[v]}</span>' for v in VERDICTS
    ]
    return f'<p class="counts"><b>{counts["total"]} statements</b> &nbsp; {"".join(spans)}</p>'


def _test_line(test: dict[str, Any]) -> str:
    colour = COLOURS[STATUS_CLASS.get(str(test["status"]), "not run")]
    why = f"<br><small>{_esc(test['message'][:300])}</small>" if test.get("message") else ""
    return (
        f'<span><b style="color:{colour}">{_esc(test["status"])}</b> '
        f"{_esc(test['name'])} <i>({_esc(test['source'])})</i>{why}</span>"
    )


def _tests_cell(tests: list[dict[str, Any]]) -> str:
    """Tests that ran, in full; the cited tests that did not run folded away."""
    ran = [t for t in tests if t["status"] in RAN]
    idle = [t for t in tests if t["status"] not in RAN]
    cell = "".join(_test_line(t) for t in ran)
    if idle:
        lines = "".join(_test_line(t) for t in idle)
        cell += f"<details><summary>{len(idle)} cited test(s) not run</summary>{lines}</details>"
    return cell or "—"


def _heading(entry: dict[str, Any]) -> str:
    return f"{entry['document']} — {entry['section']}"


def _anchor(heading: str) -> str:
    return "s-" + "".join(ch if ch.isalnum() else "-" for ch in heading.lower())


def _section_summary(statements: list[dict[str, Any]]) -> str:
    """One row per section: how many statements it has, and how many of each verdict."""
    counts: dict[str, dict[str, int]] = {}
    for entry in statements:
        row = counts.setdefault(_heading(entry), dict.fromkeys(VERDICTS, 0))
        row[entry["verdict"]] += 1
    head = "".join(f"<th>{_esc(v)}</th>" for v in VERDICTS)
    rows = []
    for heading, row in counts.items():
        cells = "".join(
            f'<td class="n" style="color:{COLOURS[v] if row[v] else "#bbb"}">{row[v]}</td>'
            for v in VERDICTS
        )
        rows.append(
            f'<tr><td><a href="#{_anchor(heading)}">{_esc(heading)}</a></td>'
            f'<td class="n">{sum(row.values())}</td>{cells}</tr>'
        )
    return (
        f'<table class="sections"><tr><th>section</th><th>statements</th>{head}</tr>'
        f"{''.join(rows)}</table>"
    )


def _section_tables(statements: list[dict[str, Any]]) -> str:
    parts, current = [], None
    for entry in statements:
        heading = _heading(entry)
        if heading != current:
            if current is not None:
                parts.append("</table>")
            current = heading
            parts.append(f'<h2 id="{_anchor(heading)}">{_esc(heading)}</h2><table>')
            parts.append("<tr><th>id</th><th>statement</th><th>verdict</th><th>tests</th></tr>")
        colour = COLOURS[entry["verdict"]]
        parts.append(
            f'<tr id="{_esc(entry["key"])}"><td class="id">{_esc(entry["id"])}</td>'
            f"<td>{_esc(entry['text'])}</td>"
            f'<td class="v" style="background:{colour}">{_esc(entry["verdict"])}</td>'
            f'<td class="tests">{_tests_cell(entry["tests"])}</td></tr>'
        )
    if current is not None:
        parts.append("</table>")
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    """One self-contained page: what was tested, the counts, a summary per section, then a
    table per section."""
    server = doc["server"]
    meta_rows = [
        ("server", server.get("url", "unknown")),
        ("server version", server.get("version", "unknown")),
        ("server health", server.get("health", "unknown")),
        ("kit commit", doc["kit"].get("commit", "unknown")),
        ("results", doc["run"].get("output", "none")),
        ("generated", doc["run"].get("generated", "")),
    ]
    meta = "".join(f"<tr><td><b>{_esc(k)}</b></td><td>{_esc(v)}</td></tr>" for k, v in meta_rows)
    statements = doc["statements"]
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>CCS conformance report</title>'
        f"<style>{CSS}</style></head><body><h1>CCS conformance report</h1>"
        f'<table class="meta">{meta}</table>{_counts(doc["summary"])}'
        "<p>Every promise of <code>docs/guarantees.md</code> and normative statement of "
        "<code>docs/protocol.md</code>, with the tests that cite it. <i>fail</i>: a citing test "
        "failed; <i>pass</i>: none failed and at least one passed; <i>not run</i>: cited, but no "
        "citing test ran; <i>not covered</i>: no test cites it.</p>"
        f"{_section_summary(statements)}{_section_tables(statements)}</body></html>"
    )


def write(doc: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``conformance.json`` and ``conformance.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "conformance.json", folder / "conformance.html"
    json_path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render(doc), encoding="utf-8")
    return json_path, html_path
