"""The one-page HTML report: KPIs, scenario rows, charts, fault timeline, benchmark, changes.

Honesty rules the page keeps (each has a test in ``tests/kit/test_report.py``):

- a KPI tile shows the worst figure any test of the run measured, names that test, and the same
  figure appears in the section below it (the latency table marks the row a tile came from);
- an average target is compared with averages only; percentiles are shown only when the sample
  count supports them (``stats.PERCENTILE_RULE``, stated on the page);
- "not measured" always says why (what would record it, and what this run left out);
- the header says what the run covered: tags, what was left out, server and version, commit,
  machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from . import bench, charts, coverage, kpis, runinfo, stats
from .compare import Change, Comparison, StatusChange

CSS = (Path(__file__).with_name("report.css")).read_text(encoding="utf-8")
NOT_MEASURED = "not measured in this run"
KPI_MARK = "★"
OPS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "="}


@dataclass
class PageInput:
    run: dict[str, Any]
    comparison: Comparison | None = None
    bench: dict[str, Any] | None = None
    bench_path: str = ""
    limit_pct: float = 20.0
    # Earlier runs (newest first), to say which tests measured a KPI this run did not.
    history: list[dict[str, Any]] | None = None


def _utc(epoch: float | None) -> str:
    if not epoch:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _pct_text(change: Change) -> str:
    delta = change.delta_pct
    if delta is None:
        return f"{stats.fmt(change.before)} → {stats.fmt(change.after)}"
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f"{arrow} {abs(delta):.0f} %"


def change_badge(change: Change | None) -> str:
    """A short 'vs previous' badge: red when regressed, green when clearly better."""
    if change is None:
        return ""
    css = "reg" if change.regressed else "imp" if change.improved else "same"
    title = f"previous {stats.fmt(change.before, change.unit)}"
    word = " regression" if change.regressed else ""
    return f'<span class="delta {css}" title="{escape(title)}">{_pct_text(change)}{word}</span>'


def render(data: PageInput) -> str:
    """The whole page as one self-contained HTML document."""
    run = data.run
    kpi_results = kpis.evaluate(run)
    left = coverage.left_out(run)
    explain_unmeasured(kpi_results, left, data.history or [], run)
    episodes = kpis.fault_recoveries(run.get("faults", []))
    pooled = stats.by_category(run.get("samples", {}))
    parts = [
        _header(run, data, left, kpi_results),
        _kpi_section(kpi_results, data.comparison, bench.kpi_lines(data.bench)),
        _changes(data.comparison, data.limit_pct),
        _scenario_section(run, data.comparison, _kpi_rows(kpi_results)),
        _latency_section(run, pooled, kpi_results),
        _timeline_section(run, episodes, left),
        bench.section(data.bench, Path(data.bench_path)),
        _footer(run),
    ]
    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CCS performance &amp; reliability report</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _counts(run: dict[str, Any]) -> dict[str, int]:
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for test in run.get("tests", []):
        if test.get("kind") != "suite":
            counts[test.get("status", "FAIL")] = counts.get(test.get("status", "FAIL"), 0) + 1
    return counts


def _figure_counts(run: dict[str, Any]) -> tuple[int, int]:
    judged = [
        m for t in run.get("tests", []) for m in t.get("metrics", []) if m.get("passed") is not None
    ]
    return sum(1 for m in judged if m["passed"]), len(judged)


def explain_unmeasured(
    results: list[kpis.KpiResult],
    left: coverage.LeftOut,
    history: list[dict[str, Any]],
    run: dict[str, Any] | None = None,
) -> None:
    """Complete each unmeasured KPI's reason: which tests measured it before and why they did not
    now (from ``history``, newest first), else the tests that failed and what this run left out."""
    earlier = {}
    for old in history:
        for kpi in kpis.evaluate(old):
            if kpi.measured and kpi.test and kpi.spec.key not in earlier:
                earlier[kpi.spec.key] = (kpi.test, str(old.get("run", {}).get("id")))
    tests = [t for t in (run or {}).get("tests", []) if t.get("kind") != "suite"]
    failed = [str(t.get("test")) for t in tests if t.get("status") == "FAIL"]
    for kpi in results:
        if kpi.measured:
            continue
        if kpi.spec.key in earlier:
            test, run_id = earlier[kpi.spec.key]
            kpi.reason += (
                f"; measured by “{test}” in run {run_id}, which {_why_absent(test, left, tests)}"
            )
            continue
        if failed:
            named = ", ".join(f"“{name}”" for name in failed[:2])
            more = f" and {len(failed) - 2} more" if len(failed) > 2 else ""
            kpi.reason += f"; failed, so perhaps stopped before recording it: {named}{more}"
        if left.groups:
            kpi.reason += f"; this run left out {coverage.summary_text(left).split(': ', 1)[1]}"


def _why_absent(test: str, left: coverage.LeftOut, tests: list[dict[str, Any]]) -> str:
    for entry in tests:
        if entry.get("test") == test and entry.get("status") != "PASS":
            verb = "failed" if entry.get("status") == "FAIL" else "was skipped"
            return f"{verb} in this run before recording it"
    for reason, names in left.groups.items():
        if any(name.endswith(f".{test}") for name in names):
            return f"this run did not run: {reason}"
    return "ran here without recording it"


def _meta_rows(run: dict[str, Any], left: coverage.LeftOut) -> str:
    info = run.get("run", {})
    include, exclude = runinfo.selection_text(info.get("selection"))
    if info.get("selection") is None:
        include = exclude = "unknown (these metrics files do not record the tag selection)"
    rows = [
        ("Tags included", include),
        ("Tags excluded", exclude),
        ("Left out", coverage.summary_text(left)),
        ("Server under test", runinfo.server_text(info.get("server"))),
        ("Kit commit", str(info.get("commit") or "unknown")),
        ("Machine", runinfo.machine_text(info.get("machine"))),
        (
            "Tools",
            f"Robot Framework {info.get('robot_version') or '?'} · Python "
            f"{info.get('python') or '?'}{' · pabot' if info.get('pabot') else ''}",
        ),
    ]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="runmeta">{cells}</table>'


def _header(
    run: dict[str, Any], data: PageInput, left: coverage.LeftOut, kpi_results: list[kpis.KpiResult]
) -> str:
    info = run.get("run", {})
    counts = _counts(run)
    ok, judged = _figure_counts(run)
    started, ended = info.get("started"), info.get("ended")
    duration = f"{ended - started:,.0f} s" if started and ended else "—"
    verdict = "fail" if counts["FAIL"] or ok < judged else "pass"
    regressions = len(data.comparison.regressions()) if data.comparison else None
    chips = [
        f'<span class="chip pass">{counts["PASS"]} passed</span>',
        f'<span class="chip {"fail" if counts["FAIL"] else "muted"}">'
        f"{counts['FAIL']} failed</span>",
    ]
    if counts["SKIP"]:
        chips.append(f'<span class="chip muted">{counts["SKIP"]} skipped</span>')
    if left.groups:
        chips.append(
            f'<span class="chip warn">{left.count} of {left.total} tests not run '
            "(see Left out)</span>"
        )
    chips.append(
        f'<span class="chip {"pass" if ok == judged else "fail"}">{ok}/{judged} figures '
        "within threshold</span>"
    )
    missed = [k for k in kpi_results if k.meets_target is False]
    if missed:
        chips.append(
            f'<span class="chip fail">{len(missed)} '
            f"{'KPIs miss' if len(missed) != 1 else 'KPI misses'} the seed target</span>"
        )
    if regressions is not None:
        css = "fail" if regressions else "pass"
        chips.append(
            f'<span class="chip {css}">{regressions} regression'
            f"{'s' if regressions != 1 else ''} vs previous run</span>"
        )
    else:
        chips.append('<span class="chip muted">no previous run to compare</span>')
    processes = len(info.get("processes", []))
    return (
        f'<header class="{verdict}"><h1>CCS performance &amp; reliability report</h1>'
        f'<p class="meta">Run <code>{escape(str(info.get("id")))}</code> · started '
        f"{_utc(started)} · {duration} · {processes} robot process{'es' if processes != 1 else ''}"
        f"</p>"
        f'<p class="chips">{"".join(chips)}</p>{_meta_rows(run, left)}</header>'
    )


def _changes(comparison: Comparison | None, limit_pct: float) -> str:
    if comparison is None:
        return ""
    prev = comparison.previous_run
    regressions = comparison.regressions()
    improvements = comparison.improvements()
    head = (
        f'<h2>Change since previous run</h2><p class="meta">Compared with run '
        f"<code>{escape(str(prev.get('id')))}</code> started {_utc(prev.get('started'))} "
        f"({comparison.tests_before} test entries, {comparison.tests_shared} also in this run). "
        f"A figure more than {limit_pct:g} % worse is a regression.</p>"
    )
    if not regressions and not improvements:
        return (
            f'<section id="changes">{head}<p>No figure changed by more than {limit_pct:g} %.'
            "</p></section>"
        )
    figures = sorted(
        (c for c in regressions if isinstance(c, Change)), key=lambda c: -(c.worse_pct or 0.0)
    )
    rows = [_status_row(c) for c in regressions if isinstance(c, StatusChange)]
    rows += [_change_row(c, "reg") for c in figures]
    rows += [_change_row(c, "imp") for c in improvements[:10]]
    table = (
        '<table class="changes"><tr><th></th><th>Figure</th><th class="num">Previous</th>'
        f'<th class="num">Now</th><th class="num">Change</th></tr>{"".join(rows)}</table>'
    )
    return f'<section id="changes">{head}{table}</section>'


def _status_row(change: StatusChange) -> str:
    return (
        f'<tr class="reg"><td><b>REGRESSION</b></td><td>{escape(change.label)}: test status</td>'
        f'<td class="num">{change.before}</td><td class="num">{change.after}</td><td></td></tr>'
    )


def _change_row(change: Change, css: str) -> str:
    word = "REGRESSION" if css == "reg" else "better"
    return (
        f'<tr class="{css}"><td><b>{word}</b></td><td>{escape(change.label)}</td>'
        f'<td class="num">{stats.fmt(change.before, change.unit)}</td>'
        f'<td class="num">{stats.fmt(change.after, change.unit)}</td>'
        f'<td class="num">{_pct_text(change)}</td></tr>'
    )


def _kpi_section(
    results: list[kpis.KpiResult], comparison: Comparison | None, bench_lines: dict[str, str]
) -> str:
    groups: dict[str, list[str]] = {}
    for kpi in results:
        change = comparison.kpis.get(kpi.spec.key) if comparison else None
        card = _kpi_card(kpi, change, bench_lines.get(kpi.spec.key, ""))
        groups.setdefault(kpi.spec.group, []).append(card)
    columns = "".join(
        f'<div class="kpi-group"><h3>{escape(g)}</h3>{"".join(cards)}</div>'
        for g, cards in groups.items()
    )
    return (
        '<section id="kpis"><h2>Key performance indicators</h2><p class="meta">Latency and '
        "reliability tiles show the worst figure any test of this run measured; capacity tiles "
        "(messages, connections, transactions per second) show the highest any test demonstrated. "
        f"Each names the test it came from, and {KPI_MARK} marks that figure in the scenarios or "
        "the latency table below.</p>"
        f'<div class="kpis">{columns}</div></section>'
    )


def _kpi_card(kpi: kpis.KpiResult, change: Change | None, bench_line: str) -> str:
    spec = kpi.spec
    extra = f'<div class="bench-line">{escape(bench_line)}</div>' if bench_line else ""
    if not kpi.measured:
        return (
            f'<div class="kpi none" data-kpi="{spec.key}"><div class="label">{escape(spec.label)}'
            "</div>"
            f'<div class="value">{NOT_MEASURED}</div>'
            f'<div class="detail">why: {escape(kpi.reason)}</div>'
            f'<div class="target">{escape(spec.target_text)}</div>{extra}</div>'
        )
    meets = kpi.meets_target
    css = "ok" if meets else "bad" if meets is False else "info"
    mark = " ✓" if meets else " ✗" if meets is False else ""
    notes = "".join(f'<div class="detail note">{escape(n)}</div>' for n in kpi.notes)
    return (
        f'<div class="kpi {css}" data-kpi="{spec.key}"><div class="label">{escape(spec.label)}'
        f'</div><div class="value">{stats.fmt(kpi.value)} <small>{escape(spec.unit)}</small>'
        f"{change_badge(change)}</div>"
        f'<div class="detail">{escape(kpi.detail)}</div>{notes}'
        f'<div class="target">{escape(spec.target_text)}{mark}</div>{extra}</div>'
    )


def _row_status(test: dict[str, Any], regressed: bool) -> str:
    failed_figure = any(m.get("passed") is False for m in test.get("metrics", []))
    status = test.get("status")
    if status == "FAIL":
        return "fail"
    if status == "SKIP":
        return "skip"
    return "warn" if failed_figure or regressed else "pass"


GROUP_MIN = 4  # this many passing figures with one first word read better as one line


def _tile_mark(tiles: list[str]) -> str:
    if not tiles:
        return ""
    return (
        f' <b class="kpimark" title="the value of a KPI tile">{KPI_MARK} '
        f"{escape(', '.join(tiles))}</b>"
    )


def _figure_line(metric: dict[str, Any], change: Change | None, tiles: list[str]) -> str:
    passed = metric.get("passed")
    css = "ok" if passed else "bad" if passed is False else "info"
    unit = metric.get("unit", "")
    limit = ""
    if metric.get("threshold") is not None:
        limit = (
            f' <span class="thr">{OPS.get(metric.get("op", ""), "")} '
            f"{stats.fmt(metric['threshold'], unit)}</span>"
        )
    return (
        f'<div class="fig {css}"><span class="name">{escape(metric["name"])}</span> '
        f"<b>{stats.fmt(metric['value'], unit)}</b>{limit}{change_badge(change)}"
        f"{_tile_mark(tiles)}</div>"
    )


def _group_line(word: str, group: list[dict[str, Any]]) -> str:
    """``checker: all 8 within threshold`` with the values small: a green row stays short."""
    values = " · ".join(
        f"{escape(m['name'][len(word) + 1 :])} {stats.fmt(m['value'])}" for m in group
    )
    return (
        f'<div class="fig ok"><span class="name">{escape(word)} …</span> '
        f"<b>all {len(group)} within threshold</b> "
        f'<span class="thr">({values}, {escape(group[0].get("unit", ""))})</span></div>'
    )


def _figure_cell(
    test: dict[str, Any], comparison: Comparison | None, marks: dict[tuple[str, str], list[str]]
) -> tuple[str, bool]:
    metrics = test.get("metrics", [])
    changes = {}
    for metric in metrics:
        key = (test.get("suite", ""), test.get("test", ""), metric.get("name", ""))
        changes[metric.get("name")] = comparison.figures.get(key) if comparison else None
    regressed = any(c is not None and c.regressed for c in changes.values())
    groups: dict[str, list[dict[str, Any]]] = {}
    for metric in metrics:
        groups.setdefault(str(metric.get("name", "")).split(" ")[0], []).append(metric)
    lines, done = [], set()
    for metric in metrics:
        word = str(metric.get("name", "")).split(" ")[0]
        group = groups[word]
        quiet = all(
            m.get("passed") is True
            and not _flagged(changes[m["name"]])
            and (str(test.get("test")), m["name"]) not in marks
            for m in group
        )
        if " " in metric.get("name", "") and len(group) >= GROUP_MIN and quiet:
            if word not in done:
                lines.append(_group_line(word, group))
                done.add(word)
            continue
        tiles = marks.get((str(test.get("test")), str(metric.get("name"))), [])
        lines.append(_figure_line(metric, changes[metric.get("name")], tiles))
    return "".join(lines) or '<span class="muted">no figures</span>', regressed


def _flagged(change: Change | None) -> bool:
    return change is not None and (change.regressed or change.improved)


def _scenario_row(
    test: dict[str, Any], comparison: Comparison | None, marks: dict[tuple[str, str], list[str]]
) -> str:
    figures, regressed = _figure_cell(test, comparison, marks)
    css = _row_status(test, regressed)
    status_change = (
        comparison.statuses.get((test.get("suite", ""), test.get("test", "")))
        if comparison
        else None
    )
    label = test.get("status", "?") + (" · regressed" if regressed else "")
    if status_change is not None:
        label += f" (was {status_change.before})"
    message = f'<div class="msg">{escape(test["message"])}</div>' if test.get("message") else ""
    tags = " ".join(f'<span class="tag">{escape(t)}</span>' for t in test.get("tags", []))
    return (
        f'<tr class="{css}"><td class="status">{escape(label)}</td>'
        f'<td><div class="suite">{escape(test.get("suite", ""))}</div>'
        f'<div class="test">{escape(test.get("test", ""))}</div>{tags}{message}</td>'
        f'<td>{figures}</td><td class="num">{stats.fmt(test.get("elapsed_s"), "s")}</td></tr>'
    )


def _scenario_section(
    run: dict[str, Any], comparison: Comparison | None, marks: dict[tuple[str, str], list[str]]
) -> str:
    tests = run.get("tests", [])
    if not tests:
        return (
            '<section id="scenarios"><h2>Scenarios</h2>'
            f'<p class="none">No test ran: {NOT_MEASURED}.</p></section>'
        )
    shown = [t for t in tests if t.get("metrics") or t.get("status") != "PASS"]
    quiet = [t for t in tests if t not in shown]
    head = (
        "<thead><tr><th>Status</th><th>Scenario</th><th>Figures vs thresholds</th>"
        "<th>Time</th></tr></thead>"
    )
    rows = "".join(_scenario_row(t, comparison, marks) for t in shown)
    table = f'<table class="scenarios">{head}<tbody>{rows}</tbody></table>' if shown else ""
    rest = ""
    if quiet:
        items = "".join(
            f"<li>{escape(t.get('suite', ''))} › {escape(t.get('test', ''))}</li>" for t in quiet
        )
        rest = (
            f"<details><summary>{len(quiet)} more passed test{'s' if len(quiet) != 1 else ''}"
            f' without measured figures</summary><ul class="quiet">{items}</ul></details>'
        )
    return (
        f'<section id="scenarios"><h2>Scenarios</h2><p class="meta">One row per test that '
        f"measured something or did not pass. Green: passed and within thresholds; amber: "
        f"passed but a figure missed its threshold or regressed; red: failed.</p>{table}{rest}"
        "</section>"
    )


def _kpi_rows(results: list[kpis.KpiResult]) -> dict[tuple[str, str], list[str]]:
    """(test, sample or figure name) -> labels of the KPI tiles whose value is that row's."""
    marks: dict[tuple[str, str], list[str]] = {}
    for kpi in results:
        if kpi.measured and kpi.test:
            marks.setdefault((kpi.test, kpi.figure), []).append(kpi.spec.label)
    return marks


def _latency_table(run: dict[str, Any], results: list[kpis.KpiResult]) -> str:
    """One row per test and latency sample name: the figures the latency tiles are taken from."""
    marks = _kpi_rows(results)
    rows = []
    for test in run.get("tests", []):
        for name, s in sorted((test.get("samples") or {}).items()):
            scale = kpis.TIME_UNITS.get(str(s.get("unit", "")))
            if scale is None:
                continue
            tiles = marks.get((str(test.get("test")), name), [])
            flag = _tile_mark(tiles)
            cells = "".join(
                f'<td class="num">{_ms(s.get(k), scale)}</td>'
                for k in ("mean", "p50", "p90", "p99", "p99.9", "max")
            )
            rows.append(
                f"<tr{' class=kpirow' if tiles else ''}><td>{escape(str(test.get('test')))}{flag}"
                f"</td><td>{escape(name)}</td><td>{stats.category_label(stats.category_of(name))}"
                f'</td><td class="num">{int(s.get("count", 0)):,}</td>{cells}</tr>'
            )
    if not rows:
        return ""
    head = (
        "<tr><th>Test</th><th>Samples</th><th>Category</th><th>n</th><th>mean</th><th>p50</th>"
        "<th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )
    return (
        '<h3>By test</h3><table class="samples"><caption>all figures in ms; '
        f"{KPI_MARK} marks the row a KPI tile shows; “n too small”: see the rule above</caption>"
        f"{head}{''.join(rows)}</table>"
    )


def _ms(value: Any, scale: float) -> str:
    if value is None:
        return '<span class="muted" title="see the percentile rule">n too small</span>'
    return stats.fmt(float(value) * scale)


def _latency_section(
    run: dict[str, Any], pooled: dict[str, list[float]], results: list[kpis.KpiResult]
) -> str:
    latency = [k for k in results if k.spec.category is not None]
    missing = "".join(
        f'<p class="none">{escape(k.spec.label)}: {NOT_MEASURED} — {escape(k.reason)}.</p>'
        for k in latency
        if not k.measured
    )
    rule = f'<p class="meta">{escape(stats.PERCENTILE_RULE)}</p>'
    table = _latency_table(run, results)
    dist = charts.latency_distribution(pooled)
    bounds = {
        k.spec.category: (k.spec.target[1], f"seed: every delivery ≤ {k.spec.target[1]:g} ms")
        for k in latency
        if k.spec.statistic == "max" and k.spec.target and k.spec.category
    }
    pct = charts.percentile_chart(pooled, bounds)
    charts_html = ""
    if dist is not None:
        averages = ", ".join(
            f"{k.spec.label} {stats.fmt(k.spec.target[1])} ms"
            for k in latency
            if k.spec.statistic == "mean" and k.spec.target
        )
        charts_html = (
            f"<h3>Distribution (all samples of the run, pooled per category)</h3>{dist}"
            "<h3>By percentile (all samples of the run, pooled per category)</h3>"
            f'<p class="meta">Average targets ({escape(averages)}) bound averages, not '
            "percentiles: they are compared in the tiles and the table, not drawn here.</p>"
            f"{pct}"
        )
    return f'<section id="latency"><h2>Latency</h2>{missing}{rule}{table}{charts_html}</section>'


def _fault_table(
    run: dict[str, Any], episodes: list[dict[str, Any]], left: coverage.LeftOut
) -> str:
    if not episodes:
        fault = left.reason_for_tag("fault")
        why = (
            f"fault suites not run in this run: {fault}"
            if fault
            else "no test that ran injected a fault (recorded with fault_event)"
        )
        return f'<p class="none">Fault timeline: {NOT_MEASURED} — {escape(why)}.</p>'
    origin = float(run.get("run", {}).get("started") or episodes[0]["injected"])
    rows = []
    for e in episodes:
        back = e.get("recovered")
        ack = e.get("first_ack")
        rows.append(
            f"<tr><td>{escape(str(e.get('kind')))}</td><td>{escape(e.get('detail', ''))}</td>"
            f'<td class="num">{e["injected"] - origin:,.2f} s</td>'
            f'<td class="num">{_after(back, e["injected"])}</td>'
            f'<td class="num">{_after(ack, e["injected"])}</td></tr>'
        )
    head = (
        '<tr><th>Fault</th><th>Detail</th><th class="num">Injected at</th>'
        '<th class="num">Service back after</th><th class="num">First acknowledged send after'
        "</th></tr>"
    )
    return f'<table class="faults">{head}{"".join(rows)}</table>'


def _after(moment: float | None, start: float) -> str:
    return "not recorded" if moment is None else f"{moment - start:,.2f} s"


def _timeline_section(
    run: dict[str, Any], episodes: list[dict[str, Any]], left: coverage.LeftOut
) -> str:
    chart = charts.timeline(run, episodes)
    flat = charts.flat_series(run)
    kinds = {
        stats.series_kind(name, str(entry.get("unit", "")))
        for name, entry in run.get("series", {}).items()
        if entry.get("points")
    }
    wanted = {
        "rate": ("throughput over time", "no test that ran recorded a …/s series (load tests do)"),
        "memory": ("server RSS", "the server's PID was never known to the sampler"),
        "cpu": ("server CPU", "the server's PID was never known to the sampler"),
    }
    stress = left.reason_for_tag("stress")
    notes = []
    for kind, (label, why) in wanted.items():
        if kind not in kinds:
            if kind == "rate" and stress:
                why = f"stress suites not run in this run: {stress}"
            notes.append(f"{label}: {NOT_MEASURED} — {why}.")
    for name, value, unit, count in flat:
        notes.append(
            f"{name} stayed at {stats.fmt(value, unit)} in all {count:,} points (not drawn: a flat "
            "line says nothing more)."
        )
    note = "".join(f'<p class="none">{escape(n)}</p>' for n in notes)
    return (
        f'<section id="timeline"><h2>Over time, with the fault timeline</h2>{note}'
        f"{chart or ''}{_fault_table(run, episodes, left)}</section>"
    )


def _footer(run: dict[str, Any]) -> str:
    files = [p.get("file") for p in run.get("run", {}).get("processes", []) if p.get("file")]
    return (
        "<footer>Generated by <code>scripts/report.py</code> at "
        f"{_utc(time.time())} from {len(files)} metrics file{'s' if len(files) != 1 else ''} "
        "written by <code>keywords/CCSMetricsListener.py</code>. Every figure and chart comes "
        "from this run's measurements; anything not measured is said so.</footer>"
    )
