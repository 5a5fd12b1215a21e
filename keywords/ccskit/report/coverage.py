"""What a run left out, and why: the tests in its suite files that did not run.

The run's suite sources and tag selection come from the listener (``run.sources``,
``run.selection``). The sources are parsed again without any selection, and every test that has no
entry in the run is explained: excluded by a tag, not included by ``--include``, or not selected
(``--suite``/``--test``, a pabot split). A run that left out nothing says so, too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXCLUDED = "excluded by tag {tag}"
NOT_INCLUDED = "not matching --include {patterns}"
NOT_SELECTED = "not selected (--suite/--test or another selection)"


@dataclass
class LeftOut:
    """Tests of the sources that did not run, grouped by reason (``{reason: [full names]}``)."""

    total: int = 0  # tests in the sources
    ran: int = 0
    groups: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""  # why nothing could be said (sources missing, parse error)

    @property
    def count(self) -> int:
        return sum(len(names) for names in self.groups.values())

    def reason_for_tag(self, tag: str) -> str | None:
        """The reason text when tests carrying ``tag`` were left out, else ``None``."""
        key = EXCLUDED.format(tag=tag)
        return key if key in self.groups else None


def _matcher(patterns: list[str]) -> Any:
    from robot.model import TagPatterns

    return TagPatterns(patterns)


def _reason(tags: list[str], include: list[str], exclude: list[str]) -> str:
    for pattern in exclude:
        if _matcher([pattern]).match(tags):
            return EXCLUDED.format(tag=pattern)
    if include and not _matcher(include).match(tags):
        return NOT_INCLUDED.format(patterns=" OR ".join(include))
    return NOT_SELECTED


def _all_tests(sources: list[str]) -> list[tuple[str, list[str]]]:
    from robot.running import TestSuiteBuilder

    suite = TestSuiteBuilder().build(*sources)
    return [(test.full_name, [str(t) for t in test.tags]) for test in suite.all_tests]


def left_out(run: dict[str, Any]) -> LeftOut:
    """The tests of the run's sources that have no entry in the run, grouped by reason."""
    info = run.get("run", {})
    ran = {
        f"{t.get('suite', '')}.{t.get('test', '')}"
        for t in run.get("tests", [])
        if t.get("kind") != "suite"
    }
    return left_out_of(info.get("sources") or [], ran, info.get("selection") or {})


def left_out_of(
    sources: list[str], ran: set[str] | None, selection: dict[str, list[str]]
) -> LeftOut:
    """The tests of ``sources`` whose full names are not in ``ran``, grouped by reason.

    ``ran=None`` judges by the tag selection alone (a pabot worker sees only its own share of
    the suites, but every worker had the same tags).
    """
    sources = [s for s in sources if s]
    if not sources:
        return LeftOut(error="the metrics files name no suite sources (older listener)")
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        return LeftOut(error=f"suite sources no longer exist: {', '.join(missing)}")
    try:
        every = _all_tests(sources)
    except Exception as exc:  # any parse failure is reported, never fatal
        return LeftOut(error=f"could not parse {', '.join(sources)}: {exc}")
    include, exclude = selection.get("include", []), selection.get("exclude", [])
    result = LeftOut(total=len(every))
    for name, tags in every:
        reason = _reason(tags, include, exclude)
        if name in ran if ran is not None else reason == NOT_SELECTED:
            result.ran += 1
        else:
            result.groups.setdefault(reason, []).append(name)
    return result


def summary_text(result: LeftOut) -> str:
    """One line: ``35 of 157 tests left out: 20 excluded by tag stress, 15 …``."""
    if result.error:
        return f"unknown ({result.error})"
    if not result.groups:
        return f"nothing: all {result.total} tests of the suite sources ran"
    parts = [
        f"{len(names)} test{'s' if len(names) != 1 else ''} {reason}"
        for reason, names in sorted(result.groups.items(), key=lambda kv: -len(kv[1]))
    ]
    return f"{result.count} of {result.total} tests left out: {'; '.join(parts)}"
