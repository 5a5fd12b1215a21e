#!/usr/bin/env python3
"""The one entry point for running the CCS suites (like Robot Framework's ``atest/run.py``).

Fixes the defaults once: output in ``results/`` (output.xml, log.html, report.html, xunit.xml),
log level ``DEBUG:INFO``, the metrics listener when present, the ``stress`` and ``fault`` tags
excluded unless asked for. Starts the reference server once (unless ``SUT_URL`` is set) and
hands its URL to every robot/pabot process through ``SUT_URL``. Exit code = robot's.

    python scripts/run_suites.py                       # functional suites
    python scripts/run_suites.py --suite message_flow  # one suite
    python scripts/run_suites.py --pabot 2             # in parallel, one merged report
    python scripts/run_suites.py --only stress         # just the stress tag
    python scripts/run_suites.py -- --include smoke    # anything after is passed to robot
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from ccskit.server import ServerProcess, ServerStartError

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_EXCLUDES = ("stress", "fault")
FAST_FAULT_TAG = "fast-fault"
LISTENER = ROOT / "keywords" / "CCSMetricsListener.py"
# Keeps each hostile run in one process (its log check needs every token the suite handed out)
# and lets the error-recovery suite start only when everything else has finished.
PABOT_ORDERING = ROOT / "suites" / "pabot-ordering.txt"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pabot", type=int, metavar="N", help="run with pabot, N processes")
    parser.add_argument("--suite", help="run only this suite (name, e.g. message_flow)")
    parser.add_argument("--only", metavar="TAG", help="run only tests with TAG (e.g. stress)")
    parser.add_argument("--include-all", action="store_true", help="do not exclude stress/fault")
    parser.add_argument(
        "--include-fast-faults",
        action="store_true",
        help=f"also run fault tests tagged {FAST_FAULT_TAG}",
    )
    parser.add_argument("--outputdir", default=str(ROOT / "results"))
    parser.add_argument("--loglevel", default="DEBUG:INFO")
    parser.add_argument("--testlevelsplit", action="store_true", help="pabot: split per test")
    parser.add_argument("paths", nargs="*", help="suite paths (default: suites/)")
    args, extra = parser.parse_known_args(argv)
    if "--" in extra:
        extra.remove("--")
    return args, extra


def robot_options(args: argparse.Namespace) -> list[str]:
    """Options shared by robot and pabot."""
    options = [
        "--outputdir", args.outputdir,
        "--output", "output.xml",
        "--log", "log.html",
        "--report", "report.html",
        "--xunit", "xunit.xml",
        "--loglevel", args.loglevel,
        "--pythonpath", str(ROOT / "keywords"),  # keyword libraries by name (CCS, CCSDevices...)
    ]  # fmt: skip
    if LISTENER.exists():
        options += ["--listener", str(LISTENER)]
    if args.suite:
        # Suite names keep their number ("01 Message Flow"); match the rest of the name.
        pattern = args.suite if any(c in args.suite for c in "*?.") else f"*{args.suite}*"
        options += ["--suite", pattern]
    if args.only:
        options += ["--include", args.only]
    elif not args.include_all:
        for tag in DEFAULT_EXCLUDES:
            if tag == "fault" and args.include_fast_faults:
                options += ["--exclude", f"faultNOT{FAST_FAULT_TAG}"]
            else:
                options += ["--exclude", tag]
    return options


def command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    if args.pabot:
        # Port 0: two pabot runs on one machine must not fight over PabotLib's default port.
        runner = [sys.executable, "-m", "pabot.pabot", "--processes", str(args.pabot)]
        runner += ["--pabotlibport", "0"]
        if args.testlevelsplit:
            runner.append("--testlevelsplit")
        elif PABOT_ORDERING.exists():
            runner += ["--ordering", str(PABOT_ORDERING), "static"]
    else:
        runner = [sys.executable, "-m", "robot"]
    paths = args.paths or [str(ROOT / "suites")]
    return [*runner, *robot_options(args), *extra, *paths]


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(sys.argv[1:] if argv is None else argv)
    Path(args.outputdir).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # pabot starts "robot" from PATH: make it the one next to this interpreter (the venv's).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # One id for the whole run, so the metrics of every pabot worker merge into one report.
    env.setdefault("CCS_RUN_ID", time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime()))
    server: ServerProcess | None = None
    if env.get("CCS_SERVER_PATH"):
        # Absolute, so every robot/pabot process (started from the root) finds the same copy.
        copy = Path(env["CCS_SERVER_PATH"]).expanduser().resolve()
        if not (copy / "ccs_server" / "__main__.py").is_file():
            print(
                f"run_suites: CCS_SERVER_PATH={copy} holds no ccs_server package", file=sys.stderr
            )
            return 2
        env["CCS_SERVER_PATH"] = os.environ["CCS_SERVER_PATH"] = str(copy)
    if not env.get("SUT_URL"):
        server = ServerProcess(log_dir=Path(args.outputdir) / "server")
        try:
            env["SUT_URL"] = server.start(timeout=60)
        except ServerStartError as exc:
            print(f"run_suites: the reference server did not start: {exc}", file=sys.stderr)
            return 252
        print(
            f"run_suites: reference server at {env['SUT_URL']} from {server.cwd} "
            f"(log {server.log_path})"
        )
    cmd = command(args, extra)
    print("run_suites:", " ".join(cmd), flush=True)
    try:
        return subprocess.call(cmd, cwd=ROOT, env=env)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
