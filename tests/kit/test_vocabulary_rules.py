"""The robocop rules of the step vocabulary (lint/robocop_vocabulary.py) catch what they name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROBOCOP = Path(sys.executable).with_name("robocop")

BAD_SUITE = """\
*** Settings ***
Documentation       Breaks each vocabulary convention once.


*** Variables ***
${LIMIT}    5


*** Test Cases ***
Bad Steps
    [Documentation]    Each step breaks one convention.
    Given "alice-phone" Has Sent 3 Messages To "team-room"
    Then "bob-tablet" Has Received Messages 1 To 3 Of "team-room"
    And Message "1" Of "team-room" Should Reach    bob-tablet
    And Delivery Latency In "team-room" Should Be Under ${LIMIT} Milliseconds For    bob-tablet


*** Keywords ***
Message "${seq}" Is Quoted
    [Documentation]    A quoted number.
    Log    ${seq}

Device Reads Up To ${seq}
    [Documentation]    A number without a pattern.
    Log    ${seq}

Message ${seq:\\d+} Of "${conversation}" Is Fine
    [Documentation]    Follows the conventions.
    Log    ${seq} ${conversation}
"""


def lint(path: Path) -> list[str]:
    """``CCS..`` findings of robocop with the project's configuration, as ``line:rule``."""
    out = subprocess.run(
        [str(ROBOCOP), "check", "--no-cache", "--config", "pyproject.toml", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    prefix = f"{path}:"
    found = []
    for line in out.splitlines():
        if line.startswith(prefix) and " CCS" in line:
            where, rule = line[len(prefix) :].split(" ")[:2]
            found.append(f"{where.split(':')[0]}:{rule}")
    return found


@pytest.mark.skipif(not ROBOCOP.exists(), reason="robocop is not installed beside python")
def test_each_convention_is_reported_once(tmp_path: Path) -> None:
    suite = tmp_path / "bad.robot"
    suite.write_text(BAD_SUITE)
    assert lint(suite) == [
        "12:CCS01",  # Has Sent -> Sends
        "13:CCS01",  # Has Received -> Should Receive … In Order
        "14:CCS02",  # Message "1"
        "15:CCS03",  # ${LIMIT} in a test's step name
        "19:CCS02",  # "${seq}" in a keyword name
        "23:CCS02",  # ${seq} without \d+
    ]


@pytest.mark.skipif(not ROBOCOP.exists(), reason="robocop is not installed beside python")
def test_the_vocabulary_itself_is_clean() -> None:
    resources = sorted((ROOT / "resources").glob("*.resource"))
    found = [f"{path.name} {hit}" for path in resources for hit in lint(path)]
    assert found == []


def test_the_guides_example_uses_only_existing_steps(tmp_path: Path) -> None:
    """docs/testers-guide.md pastes a run of docs/examples/first_test.robot: a renamed step
    must show here (dry run: every step resolves) and in robocop."""
    example = ROOT / "docs" / "examples" / "first_test.robot"
    dry = subprocess.run(
        [sys.executable, "-m", "robot", "--dryrun", "--outputdir", str(tmp_path), str(example)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dry.returncode == 0, dry.stdout[-2000:]
    assert lint(example) == []
