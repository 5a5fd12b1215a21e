"""Self-healing must not turn a broken server green: a test with no fault injected fails when
the server under test had to repair lost notifications during it.

The reference server's repair sweep delivers from the table what a lost notification missed
(``ccs_gaps_repaired_total`` on ``/metrics``, protocol §8.6). That sweep is a safety net for real
faults; in a test that injects none, any repair means the server's normal delivery path dropped
something and only the net caught it, a defect the test's own steps cannot see.

:class:`NothingHealed` is a listener of the ``CCS`` library (API v3): it reads the counter of the
server under test when a test starts and again when it ends, and fails a passing test whose
counter grew. Tests tagged ``fault`` or ``stress`` are left alone (faults are expected to need
repairs, and heavy load may delay a notification past a sweep). A server without the counter,
or none known yet, is not checked. Under pabot, processes share one server, so a repair is
blamed on each test running at that time; the message says so.
"""

from __future__ import annotations

from typing import Any

from .context import KitContext
from .counters import counter_value

REPAIRS = "ccs_gaps_repaired_total"
EXEMPT_TAGS = frozenset({"fault", "stress"})


class NothingHealed:
    """Fails a test without a fault during which the server under test repaired deliveries."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._start: tuple[str, float] | None = None

    def start_test(self, data: Any, result: Any) -> None:
        self._start = None
        url = self.ctx.target.base_url
        if not url or EXEMPT_TAGS & {str(t) for t in result.tags}:
            return
        value = counter_value(url, REPAIRS)
        if value is not None:
            self._start = (url, value)

    def end_test(self, data: Any, result: Any) -> None:
        start, self._start = self._start, None
        if start is None or not result.passed:
            return
        url, before = start
        after = counter_value(url, REPAIRS)
        if after is None or after <= before:
            return
        result.status = "FAIL"
        result.message = (
            f"expected no repaired delivery on {url} in a test without a fault, but its repair "
            f"sweep delivered {after - before:.0f} message(s) a lost notification had missed "
            f"({REPAIRS} {before:.0f} -> {after:.0f}): the server's normal delivery path dropped "
            "them (under pabot, a test of another process on the same server may share the blame)"
        )
