"""Traceability of the contract: every promise and protocol statement is cited by some test in
``suites/``, every cited id exists, and the report tool reads docs, suites and an ``output.xml``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from ccskit.conformance import citations, coverage, identity, page, statements

ROOT = Path(__file__).resolve().parents[2]
DOCS, SUITES = ROOT / "docs", ROOT / "suites"


def test_every_statement_is_cited_by_a_test() -> None:
    result = coverage.static_check(
        statements.all_statements(DOCS), citations.tests_in_suites(SUITES, ROOT)
    )
    assert not result.uncovered, result.describe()


def test_every_cited_id_exists() -> None:
    result = coverage.static_check(
        statements.all_statements(DOCS), citations.tests_in_suites(SUITES, ROOT)
    )
    assert not result.unknown, result.describe()


def test_the_documents_define_every_promise_and_many_statements() -> None:
    keys = [s.key for s in statements.all_statements(DOCS)]
    assert keys[:18] == [f"P{n}" for n in range(1, 19)], keys[:18]
    assert len(keys) == len(set(keys)), "an id is defined twice"


def test_citations_follow_robot_tag_normalisation() -> None:
    assert citations.keys_in_tag("SPEC:4.2-c") == {"4.2-c"}
    assert citations.keys_in_tag("spec: 4.2-c") == {"4.2-c"}
    assert citations.keys_in_tag("p 4") == {"P4"}
    assert citations.keys_in_tag("smoke") == set()
    doc = "Resume fails closed (P9, P14-P16), see §3.1-d and spec:6-a."
    assert citations.keys_in_doc(doc) == {"P9", "P14", "P15", "P16", "3.1-d", "6-a"}


def _write_kit(tmp: Path) -> tuple[Path, Path]:
    docs, suites = tmp / "docs", tmp / "suites"
    docs.mkdir()
    suites.mkdir()
    (docs / "guarantees.md").write_text("## Promises\n\n**P1 — Durable.** Ack after commit.\n")
    (docs / "protocol.md").write_text(
        "## 4. Frames\n\nA send is acked after commit [§4-a]. Edits need a version [§4-b].\n"
        "\n- a deleted message has no body [§4-c]\n"
    )
    (suites / "s.robot").write_text(
        textwrap.dedent(
            """\
            *** Test Cases ***
            Acked
                [Tags]    spec:4-a    P1
                Should Be Equal    1    1
            Edited
                [Documentation]    Checks §4-b.
                Should Be Equal    1    2
            Cites Nothing Known
                [Tags]    spec:9-z
                No Operation
            """
        )
    )
    return docs, suites


def test_static_check_lists_uncovered_and_unknown_ids(tmp_path: Path) -> None:
    docs, suites = _write_kit(tmp_path)
    result = coverage.static_check(
        statements.all_statements(docs), citations.tests_in_suites(suites, tmp_path)
    )
    assert [s.key for s in result.uncovered] == ["4-c"]
    assert list(result.unknown) == ["9-z"]
    assert "§4-c" in result.describe() and "'9-z'" in result.describe()


def test_report_gives_each_statement_the_verdict_of_its_tests(tmp_path: Path) -> None:
    docs, suites = _write_kit(tmp_path)
    out = tmp_path / "out"
    robot = [sys.executable, "-m", "robot", "--outputdir", str(out), "--report", "NONE"]
    robot += [
        "--log",
        "NONE",
        "--metadata",
        "Server:ws://x:1",
        "--test",
        "Acked",
        "--test",
        "Edited",
    ]
    subprocess.run([*robot, str(suites)], capture_output=True, check=False)
    ran, metadata = citations.tests_in_output(out / "output.xml", tmp_path)
    table = coverage.rows(
        statements.all_statements(docs),
        coverage.merge_run(citations.tests_in_suites(suites, tmp_path), ran),
    )
    verdicts = {row.statement.key: row.verdict for row in table}
    assert verdicts == {"P1": "pass", "4-a": "pass", "4-b": "fail", "4-c": "not covered"}
    doc = page.document(table, {"url": metadata["Server"]}, {"commit": "abc"}, {"output": "o"})
    assert doc["summary"] == {"pass": 2, "fail": 1, "not run": 0, "not covered": 1, "total": 4}
    json_path, html_path = page.write(doc, out)
    assert json.loads(json_path.read_text())["statements"][2]["text"] == "Edits need a version"
    assert "ws://x:1" in html_path.read_text() and "§4-c" in html_path.read_text()


def test_server_identity_comes_from_the_listener_metadata() -> None:
    meta = {
        "Server under test": "http://127.0.0.1:8080 · version 1.1 (GET /openapi.json) · health ok"
    }
    assert identity.from_metadata(meta) == {
        "url": "http://127.0.0.1:8080",
        "version": "1.1",
        "health": "ok",
    }
    unknown = {"Server under test": "unknown: no test of this run reached a server"}
    assert identity.server_identity(unknown, sut_url="http://x:1") == {
        "url": "http://x:1",
        "version": "unknown",
        "health": "unknown",
    }


def test_kit_commit_is_a_commit_or_unknown(tmp_path: Path) -> None:
    assert identity.kit_commit(tmp_path) == "unknown"
    assert identity.kit_commit(ROOT).split()[0] != "unknown"
