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
from dataclasses import dataclass, field
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
    category: str | None = None  # latency KPIs: the sample category they pool
    aggregate: str = "max"  # how several test figures become one KPI value
    target: tuple[str, float] | None = None  # seed plan target (op, value)
    target_text: str = ""
    # Latency KPIs: test figures that carry a threshold and match this are the seed's check as a
    # test asserted it (at nominal load); they win over the pool of every sample, which also
    # holds the load-limit runs.
    asserted: re.Pattern[str] | None = None


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
        asserted=re.compile(r"avg|mean", re.I),
        target=("<=", 200.0),
        target_text="seed: ≤ 200 ms average",
    ),
    KpiSpec(
        "ws_delivery_time",
        "Latency",
        "WebSocket delivery time",
        "lower",
        "ms",
        category="ws",
        asserted=re.compile(r"avg|mean", re.I),
        target=("<=", 50.0),
        target_text="seed: ≤ 50 ms average",
    ),
    KpiSpec(
        "e2e_duration",
        "Latency",
        "End-to-end duration",
        "lower",
        "ms",
        category="e2e",
        asserted=re.compile(r"max|p99|avg|mean", re.I),
        target=("<=", 1000.0),
        target_text="seed: cross-device within 1 s",
    ),
    KpiSpec(
        "messages_per_s",
        "Throughput",
        "Messages per second",
        "higher",
        "msg/s",
        re.compile(r"(msgs?|messages?|deliver\w*|sends?)[ _]?(per[ _]?s|rate)|throughput", re.I),
        _is_rate,
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
    ),
    KpiSpec(
        "transaction_rate",
        "Throughput",
        "Database transaction rate",
        "higher",
        "tx/s",
        re.compile(r"(^|[ _])tx|transaction|(commits?|inserts?|writes?)[ _]?per[ _]?s", re.I),
        _is_rate,
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
    ),
    KpiSpec(
        "error_recovery_time",
        "Reliability",
        "Error recovery time",
        "lower",
        "s",
        re.compile(r"recover", re.I),
        _is_time,
    ),
)


@dataclass
class KpiResult:
    spec: KpiSpec
    value: float | None = None
    detail: str = ""
    sources: list[str] = field(default_factory=list)

    @property
    def basis(self) -> tuple[str, ...]:
        """What the value was computed from: two runs compare only on the same basis."""
        return (self.detail.split(" (")[0].split(";")[0], *sorted(self.sources))

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def meets_target(self) -> bool | None:
        if self.value is None or self.spec.target is None:
            return None
        op, limit = self.spec.target
        return self.value <= limit if op == "<=" else self.value >= limit


def _test_figures(
    run: dict[str, Any], spec: KpiSpec, asserted: bool = False
) -> list[tuple[float, str]]:
    found = []
    for test in run.get("tests", []):
        for metric in test.get("metrics", []):
            name, unit = metric.get("name", ""), str(metric.get("unit", ""))
            if asserted and (
                metric.get("threshold") is None
                or spec.asserted is None
                or not spec.asserted.search(name)
            ):
                continue
            if spec.category is not None:
                hit = _is_time(unit) and stats.category_of(name) == spec.category
                value = metric["value"] * TIME_UNITS.get(unit, 1.0)
            else:
                hit = bool(spec.name_pattern and spec.name_pattern.search(name))
                hit = hit and spec.unit_ok(unit)
                value = metric["value"]
                if spec.unit == "s" and unit in TIME_UNITS:
                    value = value * TIME_UNITS[unit] / 1000.0
            if hit:
                found.append((float(value), f"{test.get('test', '?')}: {name}"))
    return found


def _series_peaks(run: dict[str, Any], spec: KpiSpec) -> list[tuple[float, str]]:
    # Only throughput peaks are KPIs: a gauge series (pool size, open sockets) is not a capacity.
    if spec.name_pattern is None or spec.category is not None or spec.unit_ok is not _is_rate:
        return []
    found = []
    for name, entry in run.get("series", {}).items():
        points = entry.get("points") or []
        if points and spec.name_pattern.search(name) and spec.unit_ok(str(entry.get("unit", ""))):
            pick = max if spec.aggregate == "max" else min
            found.append((float(pick(p[1] for p in points)), f"series {name}"))
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


def _latency(run: dict[str, Any], spec: KpiSpec) -> KpiResult:
    pooled = stats.by_category(run.get("samples", {})).get(spec.category or "", [])
    pool_text = ""
    if pooled:
        s = stats.summarize(pooled)
        pool_text = (
            f"mean of {s['count']:,} samples · p50 {stats.fmt(s['p50'])} · "
            f"p99 {stats.fmt(s['p99'])} · max {stats.fmt(s['max'])} ms"
        )
    checked = _from_figures(spec, _test_figures(run, spec, asserted=True), "asserted figure")
    if checked.measured:
        if pool_text:
            checked.detail += f"; all samples incl. load-limit runs: {pool_text}"
        return checked
    if pooled:
        names = [
            n
            for n in stats.latency_samples(run.get("samples", {}))
            if stats.category_of(n) == spec.category
        ]
        return KpiResult(spec, stats.summarize(pooled)["mean"], pool_text, names)
    return _from_figures(spec, _test_figures(run, spec))


def _from_figures(
    spec: KpiSpec, figures: list[tuple[float, str]], kind: str = "figure"
) -> KpiResult:
    """One KPI value from several test figures: the lowest (uptime, success), else the highest.

    The highest is the capacity a system showed for throughput KPIs and the worst case for latency
    and recovery time, so neither hides a bad figure behind a good one.
    """
    if not figures:
        return KpiResult(spec)
    if spec.aggregate == "min":
        value, source = min(figures, key=lambda f: f[0])
        label = "lowest"
    else:
        value, source = max(figures, key=lambda f: f[0])
        label = "highest" if spec.better == "higher" else "worst"
    plural = "s" if len(figures) != 1 else ""
    detail = f"{label} of {len(figures)} {kind}{plural} ({source})"
    return KpiResult(spec, value, detail, [src for _v, src in figures])


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
        f"longest of {len(spans)} fault(s) in the timeline ({kind})",
        [f"fault {k}" for _v, k in spans],
    )


def evaluate(run: dict[str, Any]) -> list[KpiResult]:
    """Every KPI of :data:`SPECS`, in order, measured from ``run`` (a merged metrics document)."""
    results = []
    for spec in SPECS:
        if spec.category is not None:
            results.append(_latency(run, spec))
        elif spec.key == "error_recovery_time":
            results.append(_recovery(run, spec))
        else:
            figures = _test_figures(run, spec) + _series_peaks(run, spec)
            results.append(_from_figures(spec, figures))
    return results
