"""Self-healing must not turn a broken server green: a test with no fault injected fails when
the server under test had to repair something during it.

The reference server has two safety nets, each counted on ``/metrics`` (protocol §8.6): its repair
sweep delivers from the table what a lost notification missed (``ccs_gaps_repaired_total``), and
its lease keeper sets offline a device stored online that has no session and no grace period
running (``ccs_presence_repairs_total``). They are there for real faults; in a test that injects
none, any repair means the server's normal path dropped something and only the net caught it, a
defect the test's own steps cannot see.

:class:`NothingHealed` is a listener of the ``CCS`` library (API v3): it reads the counters of the
server under test when a test starts and again when it ends, and fails a passing test whose
counters grew. Tests tagged ``fault`` or ``stress`` are left alone (faults are expected to need
repairs, and heavy load may delay a notification past a sweep). A server without the counter,
or none known yet, is not checked. Under pabot, processes share one server, so a repair is
blamed on each test running at that time; the message says so.
"""

from __future__ import annotations

from typing import Any

from .context import KitContext
from .counters import counter_values

#: What each safety net repaired, as the failure message names it.
REPAIRS = {
    "ccs_gaps_repaired_total": "its repair sweep delivered {n} message(s) a lost notification "
    "had missed",
    "ccs_presence_repairs_total": "its lease keeper set {n} device(s) offline that the normal "
    "path had left online",
}
EXEMPT_TAGS = frozenset({"fault", "stress"})


class NothingHealed:
    """Fails a test without a fault during which the server under test repaired deliveries."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._start: tuple[str, dict[str, float]] | None = None

    def start_test(self, data: Any, result: Any) -> None:
        self._start = None
        url = self.ctx.target.base_url
        if not url or EXEMPT_TAGS & {str(t) for t in result.tags}:
            return
        self._start = (url, _read(url))

    def end_test(self, data: Any, result: Any) -> None:
        start, self._start = self._start, None
        if start is None or not result.passed:
            return
        url, before = start
        after = _read(url)
        grown = [
            f"{REPAIRS[name].format(n=f'{after[name] - was:.0f}')} ({name} {was:.0f} -> "
            f"{after[name]:.0f})"
            for name, was in before.items()
            if name in after and after[name] > was
        ]
        if not grown:
            return
        result.status = "FAIL"
        result.message = (
            f"expected no repair on {url} in a test without a fault, but {'; '.join(grown)}: "
            "the server's normal path failed and only its safety net caught it (under pabot, a "
            "test of another process on the same server may share the blame)"
        )


def _read(url: str) -> dict[str, float]:
    """The repair counters ``url`` exposes (a server without them is not checked)."""
    return counter_values(url, REPAIRS)
