#!/usr/bin/env python3
"""The one entry point for running the CCS suites (like Robot Framework's ``atest/run.py``).

Fixes the defaults once: output in ``results/`` (output.xml, log.html, report.html, xunit.xml,
server logs in ``server/``, metrics, performance report), log level ``DEBUG:INFO``, the metrics
listener, the ``stress`` and ``fault`` tags excluded unless asked for. Starts ONE reference server
(unless ``SUT_URL`` is set; from ``CCS_SERVER_PATH`` when set) and hands its URL to every
robot/pabot process. Says how it ran in the reports' metadata (the metrics listener adds tags,
server version, kit commit and machine) and writes the performance and conformance reports.
Exit code = robot's (pabot's).

    python scripts/run_suites.py                          # functional suites
    python scripts/run_suites.py --suite message_flow     # one suite, by name
    python scripts/run_suites.py --pabot 2                # in parallel, one merged report
    python scripts/run_suites.py --only stress            # just the stress tag
    python scripts/run_suites.py --include seed-1.2       # any robot/pabot option passes through
    python scripts/run_suites.py -i smoke suites/04_hostile   # ... and so do suite paths

Options the runner does not know go to robot/pabot unchanged, with their values; the rest are
suite paths. Including a tag the runner would exclude (``--include stress``) or naming tests
(``--test``) lifts the default exclusion. ``--`` is accepted and ignored.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ccskit.server import ServerProcess, ServerStartError, server_checkout
from robot.model.tags import TagPatterns
from robot.run import USAGE
from robot.utils.argumentparser import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXCLUDES = ("stress", "fault")
FAST_FAULT_TAG = "fast-fault"
LISTENER = ROOT / "keywords" / "CCSMetricsListener.py"
REPORT = ROOT / "scripts" / "report.py"
CONFORMANCE = ROOT / "scripts" / "conformance.py"
# Keeps each hostile run in one process (its log check needs every token the suite handed out)
# and lets the error-recovery suite start only when everything else has finished.
PABOT_ORDERING = ROOT / "suites" / "pabot-ordering.txt"

#: The runner's own options and how many values each takes.
RUNNER_OPTIONS = {
    "--pabot": 1,
    "--suite": 1,
    "--only": 1,
    "--include-all": 0,
    "--include-fast-faults": 0,
    "--outputdir": 1,
    "-d": 1,
    "--loglevel": 1,
    "-L": 1,
    "--testlevelsplit": 0,
    "--no-report": 0,
    "-h": 0,
    "--help": 0,
}
#: pabot's own options that take values (``--ordering`` and ``--command`` are handled apart).
PABOT_VALUE_OPTIONS = {
    "--hive", "--processes", "--resourcefile", "--pabotlibhost", "--pabotlibport",
    "--pabotprerunmodifier", "--processtimeout", "--suitesfrom", "--artifacts", "--shard",
    "--pabotconsole",
}  # fmt: skip


def _robot_option_spec() -> tuple[set[str], set[str], list[str]]:
    """Robot's options: short letters taking a value, long names taking a value, all long names."""
    parser = ArgumentParser(USAGE)
    shorts = parser._short_opts  # e.g. "F:I:N:...TL:X." - a colon marks a value
    short_values = {shorts[i] for i in range(len(shorts) - 1) if shorts[i + 1] == ":"}
    longs = [name.rstrip("=") for name in parser._long_opts]
    long_values = {name.rstrip("=") for name in parser._long_opts if name.endswith("=")}
    return short_values, long_values, longs


SHORT_VALUE, LONG_VALUE, LONG_NAMES = _robot_option_spec()


@dataclass
class Passthrough:
    """What goes to robot/pabot unchanged: options with their values, and suite paths."""

    options: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def values_of(self, *names: str) -> list[str]:
        """Values given to ``names`` (``-i x``, ``--include x``, ``--include=x``, ``-ix``)."""
        found, opts, i = [], self.options, 0
        while i < len(opts):
            name, eq, value = opts[i].partition("=")
            if name in names and eq:
                found.append(value)
            elif name in names and i + 1 < len(opts):
                found.append(opts[i + 1])
                i += 1
            elif any(len(n) == 2 and opts[i].startswith(n) and len(opts[i]) > 2 for n in names):
                found.append(opts[i][2:])
            i += 1
        return found

    def has(self, *names: str) -> bool:
        return any(o.partition("=")[0] in names for o in self.options)


def _long_name(option: str) -> str:
    """Robot (getopt) accepts unique prefixes of long options: ``--incl`` is ``--include``."""
    name = option[2:]
    if name in LONG_NAMES:
        return name
    matches = [n for n in LONG_NAMES if n.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def option_width(argv: list[str], i: int) -> int:
    """How many items the option at ``argv[i]`` spans (itself plus its values)."""
    arg = argv[i]
    name, eq, _ = arg.partition("=")
    if eq:
        return 1
    if name == "--command":  # pabot: --command <robot command> --end-command
        return argv.index("--end-command", i) - i + 1 if "--end-command" in argv[i:] else 1
    if name == "--ordering":  # pabot: --ordering FILE [static|dynamic] [skip|run_all]
        width = 2
        while i + width < len(argv) and argv[i + width] in ("static", "dynamic", "skip", "run_all"):
            width += 1
        return width
    if name in PABOT_VALUE_OPTIONS or name.startswith("--argumentfile"):
        return 2
    if name.startswith("--"):
        return 2 if _long_name(name) in LONG_VALUE else 1
    # Short option: "-i tag" takes the next item, "-itag" carries its value.
    return 2 if len(name) == 2 and name[1] in SHORT_VALUE else 1


def split_argv(argv: list[str]) -> tuple[list[str], Passthrough]:
    """The runner's own options, and everything else for robot/pabot (options, then paths)."""
    own, rest = [], Passthrough()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # a bare "--" separates nothing: robot options pass as they are
            i += 1
            continue
        name = arg.partition("=")[0]
        if name in RUNNER_OPTIONS:
            width = 1 if "=" in arg else 1 + RUNNER_OPTIONS[name]
            own += argv[i : i + width]
        elif arg.startswith("-") and arg != "-":
            width = option_width(argv, i)
            rest.options += argv[i : i + width]
        else:
            width = 1
            rest.paths.append(arg)
        i += width
    return own, rest


def parse(argv: list[str]) -> tuple[argparse.Namespace, Passthrough]:
    own, rest = split_argv(argv)
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other option goes to robot/pabot with its value; other items are suite paths.",
        allow_abbrev=False,
    )
    parser.add_argument("--pabot", type=int, metavar="N", help="run with pabot, N processes")
    parser.add_argument("--suite", help="run only this suite (name, e.g. message_flow)")
    parser.add_argument("--only", metavar="TAG", help="run only tests with TAG (e.g. stress)")
    parser.add_argument("--include-all", action="store_true", help="do not exclude stress/fault")
    parser.add_argument(
        "--include-fast-faults",
        action="store_true",
        help=f"also run fault tests tagged {FAST_FAULT_TAG}",
    )
    parser.add_argument("--outputdir", "-d", default=str(ROOT / "results"))
    parser.add_argument("--loglevel", "-L", default="DEBUG:INFO")
    parser.add_argument("--testlevelsplit", action="store_true", help="pabot: split per test")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the performance and conformance reports"
    )
    args = parser.parse_args(own)
    # Paths as the caller meant them, although robot runs from the project root.
    args.outputdir = str(Path(args.outputdir).expanduser().resolve())
    rest.paths = [str(Path(p).resolve()) if Path(p).exists() else p for p in rest.paths]
    return args, rest


def tag_selection(args: argparse.Namespace, rest: Passthrough) -> tuple[list[str], list[str]]:
    """Tags included and excluded by the runner (the user's own go through ``rest``)."""
    if args.only:
        return [args.only], []
    user_includes = rest.values_of("-i", "--include")
    if args.include_all or rest.has("-t", "--test", "--task"):
        return [], []
    excludes = []
    for tag in DEFAULT_EXCLUDES:
        if user_includes and TagPatterns(user_includes).match([tag]):
            continue  # asked for by name: do not exclude it again
        if tag == "fault" and args.include_fast_faults:
            excludes.append(f"faultNOT{FAST_FAULT_TAG}")
        else:
            excludes.append(tag)
    return [], excludes


def robot_options(args: argparse.Namespace, rest: Passthrough) -> list[str]:
    """Options shared by robot and pabot."""
    options = [
        "--outputdir", args.outputdir,
        "--output", "output.xml",
        "--log", "log.html",
        "--report", "report.html",
        "--xunit", "xunit.xml",
        "--loglevel", args.loglevel,
    ]  # fmt: skip
    if LISTENER.exists():
        options += ["--listener", str(LISTENER)]
    if args.suite:
        # Suite names keep their number ("01 Message Flow"); match the rest of the name.
        pattern = args.suite if any(c in args.suite for c in "*?.") else f"*{args.suite}*"
        options += ["--suite", pattern]
    includes, excludes = tag_selection(args, rest)
    for tag in includes:
        options += ["--include", tag]
    for tag in excludes:
        options += ["--exclude", tag]
    return options


def command(args: argparse.Namespace, rest: Passthrough, metadata: dict[str, str]) -> list[str]:
    if args.pabot:
        # Port 0: two pabot runs on one machine must not fight over PabotLib's default port.
        runner = [sys.executable, "-m", "pabot.pabot", "--processes", str(args.pabot)]
        runner += ["--pabotlibport", "0"]
        if args.testlevelsplit:
            runner.append("--testlevelsplit")
        elif PABOT_ORDERING.exists() and not rest.paths:
            # The ordering file names suites under the top suite "Suites" (the default path).
            runner += ["--ordering", str(PABOT_ORDERING), "static"]
    else:
        runner = [sys.executable, "-m", "robot"]
    meta = [item for name, value in metadata.items() for item in ("--metadata", f"{name}:{value}")]
    paths = rest.paths or [str(ROOT / "suites")]
    return [*runner, *robot_options(args, rest), *meta, *rest.options, *paths]


def run_metadata(
    args: argparse.Namespace, rest: Passthrough, started: ServerProcess | None
) -> dict[str, str]:
    """How this run was made, for robot's report.

    The metrics listener adds what every way of running shares (tags included and excluded, what
    was left out, the server under test and its version, the kit's commit, the machine); the
    runner adds what only it knows: how it ran and where the server's code came from.
    """
    how = f"pabot, {args.pabot} processes" if args.pabot else "robot, one process"
    if started is None:
        origin = "the server at SUT_URL (not started by the kit)"
    else:
        origin = f"one reference server for the whole run, code from {started.cwd}"
    if args.suite:
        how += f", suite {args.suite}"
    return {"Runner": f"scripts/run_suites.py: {how}; {origin}"}


def resolve_server_path(env: dict[str, str]) -> str | None:
    """Absolute ``CCS_SERVER_PATH`` (every process runs from the root); an error text if bad."""
    if not env.get("CCS_SERVER_PATH"):
        return None
    copy = Path(env["CCS_SERVER_PATH"]).expanduser().resolve()
    if not (copy / "ccs_server" / "__main__.py").is_file():
        return f"CCS_SERVER_PATH={copy} holds no ccs_server package"
    env["CCS_SERVER_PATH"] = os.environ["CCS_SERVER_PATH"] = str(copy)
    return None


def write_reports(outputdir: str, env: dict[str, str]) -> None:
    """The performance and conformance reports of this run, next to robot's.

    They never change the exit code: the suites' verdict is robot's.
    """
    for script in (REPORT, CONFORMANCE):
        if script.exists():
            cmd = [sys.executable, str(script), "--results", outputdir, "--quiet"]
            subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv: list[str] | None = None) -> int:
    args, rest = parse(sys.argv[1:] if argv is None else argv)
    Path(args.outputdir).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # pabot starts "robot" from PATH: make it the one next to this interpreter (the venv's).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # One id for the whole run, so the metrics of every pabot worker merge into one report.
    env.setdefault("CCS_RUN_ID", time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime()))
    env["CCS_METRICS_DIR"] = str(Path(args.outputdir) / "metrics")
    problem = resolve_server_path(env)
    if problem:
        print(f"run_suites: {problem}", file=sys.stderr)
        return 2
    server: ServerProcess | None = None
    if not env.get("SUT_URL"):
        server = ServerProcess(log_dir=Path(args.outputdir) / "server", cwd=server_checkout())
        try:
            env["SUT_URL"] = server.start(timeout=60)
        except ServerStartError as exc:
            print(f"run_suites: the reference server did not start: {exc}", file=sys.stderr)
            return 252
        print(f"run_suites: reference server at {env['SUT_URL']} from {server.cwd}")
        print(f"run_suites: server log {server.log_path}")
    metadata = run_metadata(args, rest, server)
    cmd = command(args, rest, metadata)
    print("run_suites:", " ".join(cmd), flush=True)
    try:
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
    finally:
        if server is not None:
            server.stop()
    if not args.no_report and not rest.has("--dryrun"):
        write_reports(args.outputdir, env)
    return rc


if __name__ == "__main__":
    sys.exit(main())
