"""Process-wide recorder of measured figures, written to ``results/metrics/`` by the listener.

Keyword libraries call :data:`recorder` from Robot's thread; the listener
(``keywords/CCSMetricsListener.py``) attaches what was recorded to the running test and writes one
JSON file per robot process, which ``make report`` merges (pabot runs included).

Schema of one record file (``results/metrics/metrics-<pid>.json``)::

    {"run": {...},
     "tests": [{"suite", "test", "tags", "status", "start", "end",
                "metrics": [{"name", "value", "unit", "threshold", "op", "passed"}],
                "samples": {"<name>": {"unit", "count", "mean", "min", "max", "p50", …}}}],
     "samples": {"<name>": {"unit": "ms", "values": [...]}},
     "series":  {"<name>": {"unit": "MiB", "points": [[epoch_s, value], ...]}},
     "faults":  [{"t": epoch_s, "kind": "db_kill", "event": "injected|recovered|first_ack",
                  "detail": "..."}]}
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass
class Metric:
    name: str
    value: float
    unit: str
    threshold: float | None = None
    op: str = "<="

    @property
    def passed(self) -> bool | None:
        if self.threshold is None:
            return None
        return _OPS[self.op](self.value, self.threshold)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "threshold": self.threshold,
            "op": self.op,
            "passed": self.passed,
        }


@dataclass
class Recorder:
    """Collects figures for the current test and for the whole process."""

    current: list[Metric] = field(default_factory=list)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The samples added since the listener last took them: the current test's share of samples.
    current_samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self,
        name: str,
        value: float,
        unit: str,
        threshold: float | None = None,
        op: str = "<=",
    ) -> Metric:
        if op not in _OPS:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
        metric = Metric(name, float(value), unit, threshold, op)
        with self._lock:
            self.current.append(metric)
        return metric

    def add_samples(self, name: str, values: Iterable[float], unit: str) -> None:
        floats = [float(v) for v in values]
        with self._lock:
            for target in (self.samples, self.current_samples):
                target.setdefault(name, {"unit": unit, "values": []})["values"].extend(floats)

    def add_point(self, name: str, value: float, unit: str, t: float | None = None) -> None:
        with self._lock:
            entry = self.series.setdefault(name, {"unit": unit, "points": []})
            entry["points"].append([time.time() if t is None else t, float(value)])

    def fault_event(self, kind: str, event: str, detail: str = "", t: float | None = None) -> None:
        with self._lock:
            self.faults.append(
                {
                    "t": time.time() if t is None else t,
                    "kind": kind,
                    "event": event,
                    "detail": detail,
                }
            )

    def take_current(self) -> list[Metric]:
        with self._lock:
            taken, self.current = self.current, []
        return taken

    def take_current_samples(self) -> dict[str, dict[str, Any]]:
        """The samples added since the last call (``{name: {"unit", "values"}}``); forgets them."""
        with self._lock:
            taken, self.current_samples = self.current_samples, {}
        return taken


recorder = Recorder()
