"""Statements joined with the tests that cite them: the static check and the verdict of a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ccskit.conformance.citations import TestRef
from ccskit.conformance.statements import Statement

PASS, FAIL, NOT_RUN, NOT_COVERED = "pass", "fail", "not run", "not covered"
VERDICTS = (PASS, FAIL, NOT_RUN, NOT_COVERED)


@dataclass
class Row:
    """One statement, the tests citing it and the verdict they add up to."""

    statement: Statement
    tests: list[TestRef] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """fail if any citing test failed, pass if one passed, else not run / not covered."""
        if not self.tests:
            return NOT_COVERED
        statuses = {t.status for t in self.tests}
        if "FAIL" in statuses:
            return FAIL
        if "PASS" in statuses:
            return PASS
        return NOT_RUN


@dataclass
class StaticCheck:
    """What the static check found: statements nobody cites and citations of unknown ids."""

    uncovered: list[Statement]
    unknown: dict[str, list[TestRef]]

    @property
    def ok(self) -> bool:
        """True when every statement is cited and every citation resolves."""
        return not self.uncovered and not self.unknown

    def describe(self) -> str:
        """A failure text listing every problem, one per line."""
        lines = []
        if self.uncovered:
            lines.append(f"{len(self.uncovered)} statement(s) cited by no test in suites/:")
            lines += [f"  {s.label}  ({s.section}) {s.text[:90]}" for s in self.uncovered]
        for key, tests in sorted(self.unknown.items()):
            where = ", ".join(f"{t.source}: {t.name}" for t in tests[:5])
            lines.append(f"unknown id {key!r} cited by {where}")
        return "\n".join(lines) or "every statement is cited and every citation resolves"


def static_check(statements: list[Statement], tests: list[TestRef]) -> StaticCheck:
    """Statements that no test cites, and cited ids that no document defines."""
    known = {s.key for s in statements}
    cited: set[str] = set()
    unknown: dict[str, list[TestRef]] = {}
    for test in tests:
        cited |= test.cites
        for key in sorted(test.cites - known):
            unknown.setdefault(key, []).append(test)
    return StaticCheck([s for s in statements if s.key not in cited], unknown)


def merge_run(static: list[TestRef], run: list[TestRef]) -> list[TestRef]:
    """The suite files' tests with the status a run gave them ("NOT RUN" when absent).

    Tests of the run that the suite files do not have (an output of another kit version) are kept
    with their own citations.
    """
    by_key = {t.key: t for t in run}
    merged = []
    for test in static:
        ran = by_key.pop(test.key, None)
        merged.append(
            TestRef(
                name=test.name,
                suite=ran.suite if ran else test.suite,
                source=test.source,
                cites=test.cites | (ran.cites if ran else set()),
                status=ran.status if ran else "NOT RUN",
                message=ran.message if ran else "",
            )
        )
    return merged + list(by_key.values())


def rows(statements: list[Statement], tests: list[TestRef]) -> list[Row]:
    """One row per statement, in document order."""
    by_key = {s.key: Row(s) for s in statements}
    for test in tests:
        for key in test.cites:
            if key in by_key:
                by_key[key].tests.append(test)
    return list(by_key.values())


def summary(table: list[Row]) -> dict[str, int]:
    """Count of statements per verdict, plus the total."""
    counts = {verdict: 0 for verdict in VERDICTS}
    for row in table:
        counts[row.verdict] += 1
    counts["total"] = len(table)
    return counts
