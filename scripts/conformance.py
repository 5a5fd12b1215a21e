"""Conformance report: which promises and protocol statements the last run proved.

Usage: ``python scripts/conformance.py [--output results/output.xml] [--results results]
[--server URL] [--check] [--quiet]``

Reads the statement ids of ``docs/protocol.md`` (``[§4.2-c]``) and the promises of
``docs/guarantees.md`` (``P1`` … ``P18``), the tests of ``suites/`` and the ids they cite (tags
``spec:4.2-c`` / ``P4`` or the same ids in their documentation), and the statuses of a run's
``output.xml``. Writes ``<results>/conformance.json`` and ``<results>/conformance.html``:
statement → citing tests → pass / fail / not run / not covered, with the server's URL and version
(from the run's metadata, or asked of ``--server``) and the kit's commit.

``--check`` runs nothing and reads no results: it exits 1, listing them, when a statement is cited
by no test or a test cites an id that does not exist. Exit code otherwise: 0 when written
(whatever the verdicts), 2 when the output file is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from ccskit.conformance import citations, coverage, identity, page, statements

ROOT = Path(__file__).resolve().parent.parent


def check(args: argparse.Namespace) -> int:
    """The static check: every statement cited, every citation known."""
    known = statements.all_statements(args.docs)
    tests = citations.tests_in_suites(args.suites, ROOT)
    result = coverage.static_check(known, tests)
    print(result.describe())
    return 0 if result.ok else 1


def report(args: argparse.Namespace) -> int:
    """Write the JSON and HTML report for the given output file."""
    output: Path = args.output or args.results / "output.xml"
    if not output.exists():
        print(f"conformance: no results at {output}: run the suites first", file=sys.stderr)
        return 2
    known = statements.all_statements(args.docs)
    static = citations.tests_in_suites(args.suites, ROOT)
    ran, metadata = citations.tests_in_output(output, ROOT)
    table = coverage.rows(known, coverage.merge_run(static, ran))
    run = {
        "output": str(output),
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    server = identity.server_identity(metadata, args.server, os.environ.get("SUT_URL"))
    doc = page.document(table, server, {"commit": identity.kit_commit()}, run)
    json_path, html_path = page.write(doc, args.results)
    counts = doc["summary"]
    line = ", ".join(f"{counts[v]} {v}" for v in coverage.VERDICTS)
    print(f"Conformance: {html_path} ({counts['total']} statements: {line})")
    if not args.quiet:
        print(f"JSON:        {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the check or write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, help="robot output file (default <results>/output.xml)"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--suites", type=Path, default=ROOT / "suites")
    parser.add_argument("--server", help="ask this server for its version instead of the metadata")
    parser.add_argument("--check", action="store_true", help="static check only")
    parser.add_argument("--quiet", action="store_true", help="one line of output")
    args = parser.parse_args(argv)
    return check(args) if args.check else report(args)


if __name__ == "__main__":
    sys.exit(main())
