"""Which test cites which statement: from the suite files (static) or from a run's ``output.xml``.

A test cites a protocol statement with the tag ``spec:4.2-c`` or by writing ``§4.2-c`` (or
``spec:4.2-c``) in its documentation, and a promise with the tag ``P4`` or by naming ``P4`` in its
documentation (``P14-P16`` names three). Tags are compared the way Robot compares them: case, spaces
and underscores do not matter. Suite-wide ``Test Tags`` count for every test of the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot.api import ExecutionResult, TestSuiteBuilder

SPEC_PREFIX = "spec:"
SPEC_KEY = r"\d+(?:\.\d+)*-[a-z]{1,3}(?![a-z])"
DOC_STATEMENT = re.compile(rf"(?:§|\bspec:)({SPEC_KEY})", re.IGNORECASE)
DOC_PROMISE = re.compile(r"\bP(\d{1,2})\b(?:\s*[-–]\s*P(\d{1,2})\b)?")
TAG_PROMISE = re.compile(r"^p(\d{1,2})$")


@dataclass
class TestRef:
    """One test: where it lives, what it cites, and (from a run) its status."""

    name: str
    suite: str
    source: str
    cites: set[str] = field(default_factory=set)
    status: str | None = None
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Identity across the static model and a run: suite file and test name."""
        return (self.source, self.name)


def normalise_tag(tag: str) -> str:
    """Robot's tag normalisation: case, spaces and underscores ignored."""
    return re.sub(r"[\s_]", "", tag).lower()


def keys_in_tag(tag: str) -> set[str]:
    """The statement key a tag cites (``spec:4.2-c`` → ``4.2-c``, ``p4`` → ``P4``), if any."""
    norm = normalise_tag(tag)
    if norm.startswith(SPEC_PREFIX) and re.fullmatch(SPEC_KEY, norm[len(SPEC_PREFIX) :]):
        return {norm[len(SPEC_PREFIX) :]}
    promise = TAG_PROMISE.match(norm)
    return {f"P{int(promise.group(1))}"} if promise else set()


def keys_in_doc(doc: str) -> set[str]:
    """Statement keys and promises named in a documentation text."""
    keys = {m.group(1).lower() for m in DOC_STATEMENT.finditer(doc)}
    for match in DOC_PROMISE.finditer(doc):
        first = int(match.group(1))
        last = int(match.group(2) or first)
        keys.update(f"P{n}" for n in range(first, max(first, last) + 1))
    return keys


def cited_keys(tags: list[str], doc: str) -> set[str]:
    """Everything a test cites through its tags and its documentation."""
    keys = keys_in_doc(doc)
    for tag in tags:
        keys |= keys_in_tag(tag)
    return keys


def _source(suite: Any, root: Path | None) -> str:
    path = Path(str(suite.source)) if suite.source else None
    if path is None:
        return suite.full_name
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _collect(suite: Any, root: Path | None, with_status: bool) -> list[TestRef]:
    refs = []
    for test in suite.all_tests:
        tags = [str(tag) for tag in test.tags]
        ref = TestRef(
            name=test.name,
            suite=test.parent.full_name,
            source=_source(test.parent, root),
            cites=cited_keys(tags, str(test.doc)),
        )
        if with_status:
            ref.status = str(test.status)
            ref.message = str(test.message)[:300]
        refs.append(ref)
    return refs


def tests_in_suites(suites: Path, root: Path | None = None) -> list[TestRef]:
    """Every test in the suite folder (parsed, not run) with the ids it cites."""
    suite = TestSuiteBuilder(allow_empty_suite=True).build(str(suites))
    return _collect(suite, root, with_status=False)


def tests_in_output(output: Path, root: Path | None = None) -> tuple[list[TestRef], dict[str, str]]:
    """The tests of a run with their status, and the top suite's metadata."""
    result = ExecutionResult(str(output))
    metadata = {str(k): str(v) for k, v in result.suite.metadata.items()}
    return _collect(result.suite, root, with_status=True), metadata
