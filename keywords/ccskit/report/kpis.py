"""The KPIs the seed plan names, each measured from this run's data or "not measured in this run".

A KPI is found by the names keyword libraries record under (naming rules in this package's
``__init__``): latency KPIs pool the samples of their category (``stats.CATEGORIES``),
throughput and reliability KPIs take the highest/lowest test figure whose name and unit match,
and error recovery time falls back to the fault timeline (fault injected → service back).
Nothing is ever estimated: no matching data means "not measured in this run".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from . import stats

TIME_UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}


@dataclass(frozen=True)
class KpiSpec:
    key: str
    group: str
    label: str
    better: str  # "lower" or "higher": the direction of a regression
    unit: str
    name_pattern: re.Pattern[str] | None = None
    unit_ok: Callable[[str], bool] = lambda unit: True
    category: str | None = None  # latency KPIs: the sample category they read
    aggregate: str = "max"  # how several test figures become one KPI value
    target: tuple[str, float] | None = None  # seed plan target (op, value)
    target_text: str = ""
    # Latency KPIs: the statistic the target bounds ("mean" or "max"). Each test's figure is that
    # statistic of its samples (or a figure it recorded under that statistic's name), never a
    # percentile: an average target is compared with averages only.
    statistic: str = "mean"
    what: str = ""  # what a test must record for this KPI (said when nothing did)


def _is_rate(unit: str) -> bool:
    return unit.endswith("/s") or unit in {"Hz", "per_s"}


def _is_time(unit: str) -> bool:
    return unit in TIME_UNITS


def _is_pct(unit: str) -> bool:
    return unit in {"%", "pct", "percent"}


def _is_count(unit: str) -> bool:
    return not (_is_time(unit) or _is_rate(unit) or _is_pct(unit) or unit in {"MiB", "B", "KiB"})


SPECS: tuple[KpiSpec, ...] = (
    KpiSpec(
        "db_query_time",
        "Latency",
        "Database query time",
        "lower",
        "ms",
        category="db",
        target=("<=", 200.0),
        target_text="seed: ≤ 200 ms average (compared with each test's average)",
        what="database operation samples (db_*_ms) or a db_*_avg_ms figure",
    ),
    KpiSpec(
        "ws_delivery_time",
        "Latency",
        "WebSocket delivery time",
        "lower",
        "ms",
        category="ws",
        target=("<=", 50.0),
        target_text="seed: ≤ 50 ms average (compared with each test's average)",
        what="WebSocket delivery samples (ws_*_ms, delivery_*_ms) or a ws_*_avg_ms figure",
    ),
    KpiSpec(
        "e2e_duration",
        "Latency",
        "End-to-end duration",
        "lower",
        "ms",
        category="e2e",
        target=("<=", 1000.0),
        target_text="seed: every cross-device delivery within 1 s (each test's max)",
        statistic="max",
        what="end-to-end or cross-node samples (e2e_*_ms, cross_node_*_ms) or a *_max_ms figure",
    ),
    KpiSpec(
        "messages_per_s",
        "Throughput",
        "Messages per second",
        "higher",
        "msg/s",
        re.compile(r"(msgs?|messages?|deliver\w*|sends?)[ _]?(per[ _]?s|rate)|throughput", re.I),
        _is_rate,
        what="a messages_per_s figure (msg/s) or a throughput series",
    ),
    KpiSpec(
        "connection_capacity",
        "Throughput",
        "Concurrent connection capacity",
        "higher",
        "connections",
        re.compile(
            r"^(?!.*(db|database|pool)).*(concurrent|connections?([ _](held|open|capacity))?$)",
            re.I,
        ),
        _is_count,
        target=(">=", 100.0),
        target_text="seed: 100+ connections",
        what="a concurrent_connections figure (connections)",
    ),
    KpiSpec(
        "transaction_rate",
        "Throughput",
        "Database transaction rate",
        "higher",
        "tx/s",
        re.compile(r"(^|[ _])tx|transaction|(commits?|inserts?|writes?)[ _]?per[ _]?s", re.I),
        _is_rate,
        what="a db_tx_per_s figure (tx/s)",
    ),
    KpiSpec(
        "connection_uptime",
        "Reliability",
        "Connection uptime",
        "higher",
        "%",
        re.compile(r"uptime", re.I),
        _is_pct,
        aggregate="min",
        what="a connection_uptime_pct figure (%)",
    ),
    KpiSpec(
        "delivery_success",
        "Reliability",
        "Message delivery success rate",
        "higher",
        "%",
        re.compile(r"deliver\w*[ _](success|ok|rate|pct)|success[ _]rate", re.I),
        _is_pct,
        aggregate="min",
        target=(">=", 100.0),
        target_text="seed: no data loss (100 %)",
        what="a delivery_success_pct figure (%)",
    ),
    KpiSpec(
        "error_recovery_time",
        "Reliability",
        "Error recovery time",
        "lower",
        "s",
        re.compile(r"recover", re.I),
        _is_time,
        what="a recovery_time_s figure or a fault injected → recovered pair",
    ),
)


@dataclass
class KpiResult:
    spec: KpiSpec
    value: float | None = None
    detail: str = ""
    sources: list[str] = field(default_factory=list)
    test: str = ""  # the test the value came from ("" when it came from a timeline)
    figure: str = ""  # the sample or figure name of that test the value is
    method: str = ""  # how the value was chosen: two runs compare only on the same method
    notes: list[str] = field(default_factory=list)  # secondary lines (p99, asserted-only worst)
    reason: str = ""  # why not measured (always set when value is None)

    @property
    def basis(self) -> tuple[str, ...]:
        """What the value was computed from: two runs compare only on the same basis."""
        return (self.method, *sorted(self.sources))

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def meets_target(self) -> bool | None:
        if self.value is None or self.spec.target is None:
            return None
        op, limit = self.spec.target
        return self.value <= limit if op == "<=" else self.value >= limit


@dataclass(frozen=True)
class LatencyFigure:
    """One test's latency figure for a KPI: a statistic of its samples or a figure it recorded."""

    test: str
    suite: str
    name: str  # sample or figure name
    value: float  # ms
    count: int | None  # samples behind it (None: a recorded figure)
    asserted: bool  # the test checked it against a threshold
    p99: float | None = None  # the test's p99 of the same samples, when their count supports it

    @property
    def source(self) -> str:
        if self.count is None:
            return f"figure {self.name}"
        return f"{self.name}, n={self.count:,}"


_STAT_NAMES = {"mean": re.compile(r"avg|mean", re.I), "max": re.compile(r"max", re.I)}


def _entries(run: dict[str, Any]) -> list[dict[str, Any]]:
    return list(run.get("tests", []))


def latency_figures(run: dict[str, Any], spec: KpiSpec) -> list[LatencyFigure]:
    """Every test's figure for latency KPI ``spec``: the statistic its target bounds.

    A test's own samples are its figure; a figure it recorded (``ws_delivery_avg_ms``) counts only
    when it kept no samples of that category, and otherwise only says that the test asserted it.
    """
    found = []
    for test in _entries(run):
        from_samples = _sample_figures(test, spec)
        asserted = False
        for metric in test.get("metrics", []):
            figure, unit = str(metric.get("name", "")), str(metric.get("unit", ""))
            if not _is_time(unit) or stats.category_of(figure) != spec.category:
                continue
            if not _STAT_NAMES[spec.statistic].search(figure):
                continue  # a p99 or p50 figure is not an average (nor a maximum)
            checked = metric.get("threshold") is not None
            asserted = asserted or checked
            if not from_samples:
                value = float(metric["value"]) * TIME_UNITS[unit]
                name, suite = str(test.get("test", "?")), str(test.get("suite", ""))
                found.append(LatencyFigure(name, suite, figure, value, None, checked))
        found += [replace(f, asserted=asserted) for f in from_samples]
    return found


def _sample_figures(test: dict[str, Any], spec: KpiSpec) -> list[LatencyFigure]:
    found = []
    for sample, summary in (test.get("samples") or {}).items():
        unit = str(summary.get("unit", ""))
        if not _is_time(unit) or stats.category_of(sample) != spec.category:
            continue
        scale = TIME_UNITS[unit]
        p99 = summary.get("p99")
        found.append(
            LatencyFigure(
                str(test.get("test", "?")),
                str(test.get("suite", "")),
                sample,
                float(summary[spec.statistic]) * scale,
                int(summary.get("count", 0)),
                False,
                None if p99 is None else float(p99) * scale,
            )
        )
    return found


def _latency(run: dict[str, Any], spec: KpiSpec) -> KpiResult:
    figures = latency_figures(run, spec)
    if not figures:
        return _from_pool(run, spec)
    worst = max(figures, key=lambda f: f.value)
    tests = {(f.suite, f.test) for f in figures}
    stat = "average" if spec.statistic == "mean" else "maximum"
    detail = (
        f"worst {stat} of {len(tests)} test{'s' if len(tests) != 1 else ''}: "
        f"“{worst.test}” ({worst.source})"
    )
    notes = []
    asserted = [f for f in figures if f.asserted]
    top = max(asserted, key=lambda f: f.value) if asserted else None
    if top is not None and top.value < worst.value:
        notes.append(
            f"worst among tests asserting it: {stats.fmt(top.value)} ms (“{top.test}”, {top.name})"
        )
    with_p99 = [f for f in figures if f.p99 is not None]
    if with_p99:
        top = max(with_p99, key=lambda f: f.p99 or 0.0)
        notes.append(
            f"worst p99: {stats.fmt(top.p99)} ms (“{top.test}”, n={top.count:,}; "
            "no seed target for p99)"
        )
    return KpiResult(
        spec,
        worst.value,
        detail,
        sorted({f"{f.test}: {f.name}" for f in figures}),
        test=worst.test,
        figure=worst.name,
        method=f"worst test {spec.statistic}",
        notes=notes,
    )


def _from_pool(run: dict[str, Any], spec: KpiSpec) -> KpiResult:
    """Files from a listener without per-test samples: the process-wide pool, no test named."""
    names = [
        n
        for n in stats.latency_samples(run.get("samples", {}))
        if stats.category_of(n) == spec.category
    ]
    pooled = stats.by_category(run.get("samples", {})).get(spec.category or "", [])
    if not pooled:
        return KpiResult(spec)
    s = stats.summarize(pooled)
    return KpiResult(
        spec,
        s[spec.statistic],
        f"{spec.statistic} of all {s['count']:,} samples (these metrics files do not say which "
        "test measured them)",
        names,
        method=f"pool {spec.statistic}",
    )


# (value, "test: figure" or "series name", test name or "", figure or series name)
Figure = tuple[float, str, str, str]


def _test_figures(run: dict[str, Any], spec: KpiSpec) -> list[Figure]:
    """(value, "test: figure", test) of every test figure matching a non-latency KPI."""
    found = []
    for test in _entries(run):
        for metric in test.get("metrics", []):
            name, unit = metric.get("name", ""), str(metric.get("unit", ""))
            if not (spec.name_pattern and spec.name_pattern.search(name) and spec.unit_ok(unit)):
                continue
            value = float(metric["value"])
            if spec.unit == "s" and unit in TIME_UNITS:
                value = value * TIME_UNITS[unit] / 1000.0
            test_name = str(test.get("test", "?"))
            found.append((value, f"{test_name}: {name}", test_name, name))
    return found


def _series_peaks(run: dict[str, Any], spec: KpiSpec) -> list[Figure]:
    # Only throughput peaks are KPIs: a gauge series (pool size, open sockets) is not a capacity.
    if spec.name_pattern is None or spec.category is not None or spec.unit_ok is not _is_rate:
        return []
    found = []
    for name, entry in run.get("series", {}).items():
        points = entry.get("points") or []
        if points and spec.name_pattern.search(name) and spec.unit_ok(str(entry.get("unit", ""))):
            pick = max if spec.aggregate == "max" else min
            found.append((float(pick(p[1] for p in points)), f"series {name}", "", name))
    return found


def fault_recoveries(faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair each injected fault with the next 'recovered' and 'first_ack' of the same kind."""
    episodes = []
    for i, event in enumerate(faults):
        if event.get("event") != "injected":
            continue
        episode: dict[str, Any] = {
            "kind": event.get("kind"),
            "injected": event["t"],
            "detail": event.get("detail", ""),
        }
        for later in faults[i + 1 :]:
            if later.get("kind") != event.get("kind"):
                continue
            if later.get("event") == "injected":
                break
            if later.get("event") in ("recovered", "first_ack"):
                episode.setdefault(later["event"], later["t"])
        episodes.append(episode)
    return episodes


def _from_figures(spec: KpiSpec, figures: list[Figure]) -> KpiResult:
    """One KPI value from several test figures: the lowest (uptime, success), else the highest.

    The highest is the capacity a system showed for throughput KPIs and the worst case for
    recovery time, so neither hides a bad figure behind a good one.
    """
    if not figures:
        return KpiResult(spec)
    if spec.aggregate == "min":
        value, source, test, name = min(figures, key=lambda f: f[0])
        label = "lowest (worst)"
    else:
        value, source, test, name = max(figures, key=lambda f: f[0])
        label = "highest shown (capacity)" if spec.better == "higher" else "worst"
    count = len(figures)
    detail = f"{label} of {count} figure{'s' if count != 1 else ''}: {source}"
    sources = [f[1] for f in figures]
    return KpiResult(spec, value, detail, sources, test=test, figure=name, method=label)


def _recovery(run: dict[str, Any], spec: KpiSpec) -> KpiResult:
    result = _from_figures(spec, _test_figures(run, spec))
    if result.measured:
        return result
    spans = [
        (e["recovered"] - e["injected"], e["kind"])
        for e in fault_recoveries(run.get("faults", []))
        if "recovered" in e
    ]
    if not spans:
        return result
    value, kind = max(spans)
    return KpiResult(
        spec,
        value,
        f"longest of {len(spans)} fault(s) in the fault timeline ({kind})",
        [f"fault {k}" for _v, k in spans],
        method="fault timeline",
    )


def evaluate(run: dict[str, Any]) -> list[KpiResult]:
    """Every KPI of :data:`SPECS`, in order, measured from ``run`` (a merged metrics document).

    A KPI nothing measured carries a reason: what a test would have to record for it.
    """
    results = []
    for spec in SPECS:
        if spec.category is not None:
            result = _latency(run, spec)
        elif spec.key == "error_recovery_time":
            result = _recovery(run, spec)
        else:
            result = _from_figures(spec, _test_figures(run, spec) + _series_peaks(run, spec))
        if not result.measured:
            what = spec.what or f"a {spec.label.lower()} figure ({spec.unit})"
            result.reason = f"no test that ran recorded {what}"
        results.append(result)
    return results
