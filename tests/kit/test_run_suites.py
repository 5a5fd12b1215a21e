"""The runner passes every robot/pabot option through with its value and never takes a value for a
suite path (``make run ROBOT_ARGS="--include seed-1.2"`` and friends)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_suites", ROOT / "scripts" / "run_suites.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


@pytest.mark.parametrize(
    ("argv", "options", "paths"),
    [
        (["--include", "seed-1.2"], ["--include", "seed-1.2"], []),
        (["-i", "seed-1.2"], ["-i", "seed-1.2"], []),
        (["--exclude", "smoke", "-e", "phase-3"], ["--exclude", "smoke", "-e", "phase-3"], []),
        (["--test", "*Receipt*"], ["--test", "*Receipt*"], []),
        (["--", "--include", "smoke"], ["--include", "smoke"], []),
        (["-ismoke", "suites/04_hostile"], ["-ismoke"], [str(ROOT / "suites" / "04_hostile")]),
        (["--include=stress", "--dryrun"], ["--include=stress", "--dryrun"], []),
        (["--incl", "x"], ["--incl", "x"], []),  # robot accepts unique prefixes
        (["-v", "A:1", "--variable", "B:2"], ["-v", "A:1", "--variable", "B:2"], []),
        (
            ["--ordering", "f.txt", "static", "--processes", "3", "suites"],
            ["--ordering", "f.txt", "static", "--processes", "3"],
            [str(ROOT / "suites")],
        ),
        (
            ["--command", "robot", "-x", "--end-command", "no-such-path"],
            ["--command", "robot", "-x", "--end-command"],
            ["no-such-path"],
        ),
    ],
)
def test_robot_options_keep_their_values(
    argv: list[str], options: list[str], paths: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    _, rest = runner.parse(argv)
    assert (rest.options, rest.paths) == (options, paths), f"argv {argv}"


def test_the_runners_own_options_are_not_abbreviated_or_passed_on() -> None:
    args, rest = runner.parse(["--include-all", "-d", "/tmp/x", "--suite", "message_flow"])
    assert (args.include_all, args.outputdir, args.suite) == (True, "/tmp/x", "message_flow")
    assert rest.options == [] and rest.paths == []


@pytest.mark.parametrize(
    ("argv", "excluded"),
    [
        ([], ["stress", "fault"]),
        (["--include", "seed-1.2"], ["stress", "fault"]),
        (["--include", "stress"], ["fault"]),  # asked for by name: not excluded again
        (["-i", "faultORsmoke"], ["stress"]),
        (["--test", "*Memory*"], []),  # naming tests runs them whatever their tags
        (["--include-fast-faults"], ["stress", "faultNOTfast-fault"]),
        (["--include-all"], []),
    ],
)
def test_default_exclusions(argv: list[str], excluded: list[str]) -> None:
    args, rest = runner.parse(argv)
    assert runner.tag_selection(args, rest) == ([], excluded), f"argv {argv}"


def test_options_reach_robot_before_the_paths() -> None:
    args, rest = runner.parse(["-i", "smoke", "suites/01_unit_integration", "-e", "slow"])
    cmd = runner.command(args, rest, {"Runner": "test"})
    assert cmd[-1].endswith("suites/01_unit_integration"), cmd
    assert cmd[-5:-1] == ["-i", "smoke", "-e", "slow"], cmd
    at = cmd.index("--metadata")
    assert cmd[at : at + 2] == ["--metadata", "Runner:test"], cmd


def test_pabot_gets_a_free_pabotlib_port_and_the_ordering_only_for_the_whole_tree() -> None:
    args, rest = runner.parse(["--pabot", "2"])
    whole = runner.command(args, rest, {})
    assert whole[whole.index("--pabotlibport") + 1] == "0"
    assert "--ordering" in whole
    args, rest = runner.parse(["--pabot", "2", "suites/04_hostile"])
    assert "--ordering" not in runner.command(args, rest, {})
