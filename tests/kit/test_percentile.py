"""Pins the kit's one percentile definition (nearest rank) that keywords, report and bench share."""

from __future__ import annotations

import math

import pytest
from ccskit.percentile import latency_summary, percentile, percentiles


def test_two_samples_p50_is_the_first_and_p51_the_second() -> None:
    assert percentile([20.0, 10.0], 50) == 10.0
    assert percentile([20.0, 10.0], 51) == 20.0
    assert percentile([20.0, 10.0], 100) == 20.0


def test_nearest_rank_is_always_a_measured_value() -> None:
    values = [float(x) for x in range(1, 101)]
    assert [percentile(values, p) for p in (1, 50, 95, 99, 99.9, 100)] == [1, 50, 95, 99, 100, 100]
    assert percentile([1.0, 2.0, 3.0, 4.0], 75) == 3.0  # no interpolation towards 4


def test_percentiles_give_avg_max_and_nan_for_nothing() -> None:
    p = percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["avg"]) == (50, 95, 99, 100, 50.5)
    assert all(math.isnan(v) for v in percentiles([]).values())


def test_latency_summary_uses_the_same_rule_and_refuses_no_values() -> None:
    assert latency_summary([5.0, 1.0]) == {
        "count": 2.0, "p50_ms": 1.0, "p95_ms": 5.0, "p99_ms": 5.0, "max_ms": 5.0,
    }  # fmt: skip
    with pytest.raises(AssertionError, match="no latency"):
        latency_summary([])


def test_p0_is_the_minimum() -> None:
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0


@pytest.mark.parametrize("pct", [-1, 100.1])
def test_percentile_outside_0_100_is_refused(pct: float) -> None:
    with pytest.raises(ValueError, match="percentile must be"):
        percentile([1.0], pct)
