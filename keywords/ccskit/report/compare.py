"""Change against the previous run: per test figure, KPI and latency sample, with regressions.

A change is a regression when the figure got worse by more than ``limit_pct`` percent (default 20):
worse means higher for figures whose threshold is an upper bound (``<=``) or whose unit is a time or
a size, lower for lower bounds (``>=``), rates and percentages. Figures with no direction (``==``,
plain counts without a threshold) are shown but never flagged. A test that passed before and fails
now is always a regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import kpis, stats

DEFAULT_LIMIT_PCT = 20.0
NOISE_FLOOR = {"ms": 1.0, "s": 0.001, "us": 1000.0, "µs": 1000.0}
_LOWER_UNITS = {"ms", "s", "us", "µs", "MiB", "KiB", "B"}


def direction(op: str | None, threshold: float | None, unit: str) -> str | None:
    """``"lower"`` or ``"higher"`` is better, or ``None`` when a change has no good side."""
    if threshold is not None and op in ("<", "<="):
        return "lower"
    if threshold is not None and op in (">", ">="):
        return "higher"
    if threshold is not None:
        return None
    if unit in _LOWER_UNITS:
        return "lower"
    if unit.endswith("/s") or unit in ("%", "pct"):
        return "higher"
    return None


@dataclass
class Change:
    label: str
    before: float
    after: float
    unit: str
    better: str | None
    limit_pct: float = DEFAULT_LIMIT_PCT

    @property
    def delta_pct(self) -> float | None:
        if self.before == 0:
            return None if self.after != 0 else 0.0
        return (self.after - self.before) / abs(self.before) * 100.0

    @property
    def worse_pct(self) -> float | None:
        """How much worse in percent (negative: better); ``None`` without a direction."""
        delta = self.delta_pct
        if delta is None or self.better is None:
            return None
        return delta if self.better == "lower" else -delta

    @property
    def regressed(self) -> bool:
        worse = self.worse_pct
        return worse is not None and worse > self.limit_pct and self._beyond_noise()

    def _beyond_noise(self) -> bool:
        # 0.3 ms -> 0.5 ms is +67 % and nothing a user can see: timings need a real difference too.
        floor = NOISE_FLOOR.get(self.unit, 0.0)
        return abs(self.after - self.before) >= floor

    @property
    def improved(self) -> bool:
        worse = self.worse_pct
        return worse is not None and worse < -self.limit_pct


@dataclass
class StatusChange:
    label: str
    before: str
    after: str

    @property
    def regressed(self) -> bool:
        return self.before == "PASS" and self.after == "FAIL"


def _test_key(test: dict[str, Any]) -> tuple[str, str]:
    return (test.get("suite", ""), test.get("test", ""))


def tests(
    current: dict[str, Any], previous: dict[str, Any], limit_pct: float
) -> tuple[dict[tuple[str, str, str], Change], dict[tuple[str, str], StatusChange]]:
    """Figure changes keyed by (suite, test, metric) and status changes keyed by (suite, test)."""
    before = {_test_key(t): t for t in previous.get("tests", [])}
    changes: dict[tuple[str, str, str], Change] = {}
    statuses: dict[tuple[str, str], StatusChange] = {}
    for test in current.get("tests", []):
        old = before.get(_test_key(test))
        if old is None:
            continue
        if old.get("status") != test.get("status"):
            statuses[_test_key(test)] = StatusChange(
                test.get("test", ""), str(old.get("status")), str(test.get("status"))
            )
        old_metrics = {m.get("name"): m for m in old.get("metrics", [])}
        for metric in test.get("metrics", []):
            prior = old_metrics.get(metric.get("name"))
            if prior is None or prior.get("unit") != metric.get("unit"):
                continue
            better = direction(metric.get("op"), metric.get("threshold"), metric.get("unit", ""))
            changes[(*_test_key(test), metric["name"])] = Change(
                f"{test.get('test')}: {metric['name']}",
                float(prior["value"]),
                float(metric["value"]),
                metric.get("unit", ""),
                better,
                limit_pct,
            )
    return changes, statuses


def kpi_changes(
    current: list[kpis.KpiResult], previous: list[kpis.KpiResult], limit_pct: float
) -> dict[str, Change]:
    """Changes of KPIs measured in both runs from the same figures, keyed by KPI key.

    A KPI taken from other tests or samples than last time (a wider run, a new suite) is a
    different measurement, not a change: comparing it would flag noise as a regression.
    """
    before = {k.spec.key: k for k in previous if k.value is not None}
    out = {}
    for kpi in current:
        old = before.get(kpi.spec.key)
        if kpi.value is not None and old is not None and old.value is not None:
            if old.basis != kpi.basis:
                continue
            out[kpi.spec.key] = Change(
                kpi.spec.label, old.value, kpi.value, kpi.spec.unit, kpi.spec.better, limit_pct
            )
    return out


def latency_changes(
    current: dict[str, Any], previous: dict[str, Any], limit_pct: float
) -> list[Change]:
    """p50 and p99 of every latency sample name measured in both runs with enough samples."""
    now = stats.latency_samples(current.get("samples", {}))
    before = stats.latency_samples(previous.get("samples", {}))
    out = []
    for name in sorted(set(now) & set(before)):
        a, b = stats.summarize(now[name]["values"]), stats.summarize(before[name]["values"])
        for key in ("p50", "p99"):
            if a[key] is not None and b[key] is not None:  # both backed by enough samples
                out.append(Change(f"{name} {key}", b[key], a[key], "ms", "lower", limit_pct))
    return out


@dataclass
class Comparison:
    """Everything the page shows about the previous run."""

    previous_run: dict[str, Any]
    figures: dict[tuple[str, str, str], Change]
    statuses: dict[tuple[str, str], StatusChange]
    kpis: dict[str, Change]
    latency: list[Change]
    tests_before: int = 0  # tests in the previous run
    tests_shared: int = 0  # of which this run ran too

    def regressions(self) -> list[Change | StatusChange]:
        found: list[Change | StatusChange] = [s for s in self.statuses.values() if s.regressed]
        found += [c for c in self.kpis.values() if c.regressed]
        found += [c for c in self.latency if c.regressed]
        found += [c for c in self.figures.values() if c.regressed]
        return found

    def improvements(self) -> list[Change]:
        changes = list(self.kpis.values()) + self.latency + list(self.figures.values())
        return [c for c in changes if c.improved]


def compare(
    current: dict[str, Any], previous: dict[str, Any], limit_pct: float = DEFAULT_LIMIT_PCT
) -> Comparison:
    figures, statuses = tests(current, previous, limit_pct)
    return Comparison(
        previous_run=previous.get("run", {}),
        tests_before=len(previous.get("tests", [])),
        tests_shared=len(
            {_test_key(t) for t in previous.get("tests", [])}
            & {_test_key(t) for t in current.get("tests", [])}
        ),
        figures=figures,
        statuses=statuses,
        kpis=kpi_changes(kpis.evaluate(current), kpis.evaluate(previous), limit_pct),
        latency=latency_changes(current, previous, limit_pct),
    )
