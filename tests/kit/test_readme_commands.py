"""Every command in README.md runs as written (a dry run or ``make -n`` where a full run is long).

The commands are read from README.md itself: each line of a ```bash block (with its ``\\``
continuations) and each ``make …`` in the first column of a table. Every one must have a way to
run here (`exercise`), so a command added to the README without one fails this test. Outputs go
to a temporary folder, never to the checkout's ``results/``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ccskit.config import KitConfig
from ccskit.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STAMP = ".venv/.installed"
# Too long (or recursive, for `make test`) to run inside `make test`: make checks the target and
# prints its recipe. Their work is covered elsewhere (their own tests, or the rest of make test).
PRINT_ONLY = (
    "make test",
    "make lint",
    "make bench",
    "make distributed",
    "make mutation",
    "make model",
)
# Suite runs: as written, plus --dryrun and a private output folder.
SUITE_RUNS = ("make run", "make suite", "make stress", "make faults")
# Run for real, as written (fast, and they write nothing tracked).
AS_WRITTEN = ("make health", "make env-up", "make env-down", "make libdoc")
# One README example runs for real, so the reports and logs of a run are checked too.
REAL_RUN = 'make run ROBOT_ARGS="--include seed-1.2"'
# Dry-runs every test of every suite (it finds a keyword that does not exist anywhere); the other
# whole-tree commands dry-run their `smoke` tests too, to stay within about a minute.
FULL_DRYRUN = (
    ".venv/bin/robot --listener keywords/CCSMetricsListener.py --outputdir results suites/"
)
NARROWED = re.compile(r"(^|[\s\"])(-i|--include|-t|--test|NAME=)|suites/\S|make (stress|faults)")
# Drawn from the output of that real run.
REPORTS = ("make report", "make conformance")


def readme_commands(text: str) -> list[str]:
    """Shell commands of the ```bash blocks and ``make …`` cells of the tables, in order."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            command = re.sub(r"\s{2,}#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    for cell in re.findall(r"^\| (`make [^|]*) \|", text, flags=re.M):
        commands += re.findall(r"`(make [^`]+)`", cell)
    return list(dict.fromkeys(commands))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def _make_command(command: str) -> str | None:
    """The ``make …`` part of a command (after any ``VAR=value`` prefixes), if any."""
    match = re.search(r"(?:^|\s)(make\s.*)$", command)
    return match.group(1) if match else None


def _with_robot_args(make: str, extra: str) -> str:
    """``make`` with ``extra`` appended to its ROBOT_ARGS (added when absent)."""
    match = re.search(r'ROBOT_ARGS="([^"]*)"', make)
    if match:
        return make.replace(match.group(0), f'ROBOT_ARGS="{match.group(1)} {extra}"')
    return f'{make} ROBOT_ARGS="{extra}"'


def _dry(command: str, out: Path) -> str:
    """Dry-run options for ``command``: a private output folder, and `smoke` when it selects all."""
    options = f"--dryrun --outputdir {out}"
    if command != FULL_DRYRUN and not NARROWED.search(command):
        options += " --include smoke"
    return options


def exercise(command: str, out: Path) -> str:
    """How ``command`` runs here: as written, dry, or printed by ``make -n``."""
    make = _make_command(command)
    prefix = command[: len(command) - len(make)] if make else ""
    if make:
        make_n = make.replace("make ", f"make -o {STAMP} ", 1)
        target = " ".join(make.split()[:2])
        if target in PRINT_ONLY:
            return prefix + make_n.replace("make ", "make -n ", 1)
        if target in SUITE_RUNS:
            extra = f"--outputdir {out}" if command == REAL_RUN else _dry(command, out)
            return prefix + _with_robot_args(make_n, extra)
        if target in REPORTS:
            return prefix + f"{make_n} RESULTS={out}"
        if target in AS_WRITTEN or target == "make services":
            return prefix + make_n
        raise AssertionError(f"README command {command!r} has no way to run in this test")
    if command.startswith((".venv/bin/robot", ".venv/bin/pabot", ".venv/bin/python scripts/run")):
        dry = re.sub(r"--outputdir \S+", _dry(command, out), command)
        assert dry != command, f"README command {command!r} names no --outputdir"
        return dry
    if command.startswith("mkdir -p /tmp/ccs-copy"):
        return command  # its folder is moved into the test's own by `_placeholders`
    raise AssertionError(f"README command {command!r} has no way to run in this test")


def run_shell(shell: str, timeout: float = 110) -> tuple[subprocess.CompletedProcess[str], float]:
    """``shell`` in bash from the project root, never reading a terminal; result and seconds."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", shell],
        cwd=ROOT,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def check_exit(
    command: str, shell: str, result: subprocess.CompletedProcess[str], s: float
) -> None:
    """The command exited 0, else a failure with what ran, how long, and its last output."""
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
    assert result.returncode == 0, (
        f"README command {command!r} ran as {shell!r}: exit {result.returncode} "
        f"after {s:.1f} s, expected 0; last output:\n{tail}"
    )


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README example that runs for real; its output folder (for make report/conformance)."""
    out = tmp_path_factory.mktemp("readme-real-run")
    shell = exercise(REAL_RUN, out)
    check_exit(REAL_RUN, shell, *run_shell(shell))
    return out


@pytest.fixture(scope="module")
def attached_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A reference server for the README's "another server" example (SUT_URL)."""
    server = ServerProcess(log_dir=tmp_path_factory.mktemp("readme-server"))
    url = server.start(timeout=60)
    yield url
    server.stop()


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Make variables and kit settings from an outer `make test` must not leak into the commands.
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ROBOT_ARGS", "NAME", "RESULTS", "SUT_URL"):
        env.pop(name, None)
    env.pop("CCS_SERVER_PATH", None)
    return env


def _placeholders(command: str, tmp_path: Path, server_url: str) -> str:
    """The "another server" example with this machine's server, database and secret."""
    config = KitConfig.from_env()
    return (
        command.replace("http://ccs.internal:8080", server_url)
        .replace("postgresql://qa@db.internal:5432/ccs", config.database_url)
        .replace("CCS_TOKEN_SECRET=...", f"CCS_TOKEN_SECRET={shlex.quote(config.token_secret)}")
        .replace("/tmp/ccs-copy", str(tmp_path / "copy"))
    )


def test_the_readme_has_commands_of_every_kind() -> None:
    kinds = {c.split()[0] for c in COMMANDS} | {" ".join(c.split()[:2]) for c in COMMANDS}
    assert {"make run", "make test", ".venv/bin/robot", ".venv/bin/pabot"} <= kinds, kinds
    assert REAL_RUN in COMMANDS, f"{REAL_RUN!r} is the example this test runs for real"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if command == REAL_RUN:
        out = request.getfixturevalue("real_run")
        produced = {p.name for p in out.iterdir()}
        expected = {"output.xml", "log.html", "report.html", "performance-report.html", "server"}
        assert expected <= produced, f"{command!r} left {sorted(produced)} in {out}"
        assert any((out / "server").glob("ccs-server-*.log")), f"no server log in {out}/server"
        return
    target = " ".join((_make_command(command) or "").split()[:2])
    out = request.getfixturevalue("real_run") if target in REPORTS else tmp_path / "out"
    if "CCS_SERVER_PATH=" in command:
        shutil.copytree(ROOT / "ccs_server", tmp_path / "copy" / "ccs_server")
    server = request.getfixturevalue("attached_server") if "SUT_URL=" in command else ""
    shell = _placeholders(exercise(command, out), tmp_path, server)
    check_exit(command, shell, *run_shell(shell))


def test_a_copy_named_by_ccs_server_path_is_what_the_runner_starts(tmp_path: Path) -> None:
    """A defect planted in the copy must reach the server the runner starts for the whole run."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "ccs_server", copy / "ccs_server")
    main = copy / "ccs_server" / "__main__.py"
    main.write_text('raise SystemExit("planted defect: the copy ran")\n', encoding="utf-8")
    env = {**_environment(), "CCS_SERVER_PATH": str(copy)}
    runner = [str(ROOT / ".venv/bin/python"), "scripts/run_suites.py", "--dryrun"]
    result = subprocess.run(
        [*runner, "--outputdir", str(tmp_path / "o")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    logs = "".join(p.read_text() for p in (tmp_path / "o" / "server").glob("*.log"))
    assert result.returncode == 252, f"expected 252 (server did not start), got {result.returncode}"
    assert "planted defect: the copy ran" in logs, f"the copy did not run; server log:\n{logs}"
