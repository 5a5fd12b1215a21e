#!/usr/bin/env python3
"""Mutation testing of the kit: plant each catalogued server defect in a copy of ``ccs_server/``
and record which suite catches it.

The catalogue (``mutation/catalogue/*.toml``) holds one realistic defect per file: the promise(s)
it breaks, the file, an exact ``find`` snippet and its ``replace``. A snippet that is no longer
found exactly once is a *stale* mutation and fails loudly (the server code moved or changed).

    python scripts/mutation.py                      # baseline, then every mutant (make mutation)
    python scripts/mutation.py --check              # every mutation applies to ccs_server/ now
    python scripts/mutation.py --relocate           # ... and fix `file` of snippets that moved
    python scripts/mutation.py --mutants P07-read-cursor-backwards,P09-resume-ignored
    python scripts/mutation.py --suites unit,hostile --full
    python scripts/mutation.py --model-only         # the model suite alone

Each run (baseline and mutants) uses a copy of the server package (``CCS_SERVER_PATH``) and a
fresh database (``DATABASE_URL``), dropped afterwards. Results: ``results/mutation.json`` and
``results/mutation.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ccskit.config import database_url_for

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "mutation" / "catalogue"
SERVER_PACKAGE = "ccs_server"
RESULTS = ROOT / "results"
PROMISES = tuple(f"P{i}" for i in range(1, 19))
REQUIRED = ("id", "promises", "title", "description", "file", "find", "replace")
OPTIONAL = ("origin", "occurrence", "count", "equivalent")


# ---- the catalogue ------------------------------------------------------------------------------
class CatalogueError(ValueError):
    """A catalogue file is malformed: a missing field, an unknown promise, a mutant that cannot
    compile."""


class StaleMutation(LookupError):
    """A mutation's ``find`` snippet is not where the catalogue says, as often as it says."""


@dataclass(frozen=True)
class Mutation:
    """One planted defect of the reference server."""

    id: str
    promises: tuple[str, ...]
    title: str
    description: str
    file: str
    find: str
    replace: str
    source: Path
    origin: str = ""
    occurrence: int = 1  # which occurrence of ``find`` is replaced (1-based)
    count: int = 1  # how many occurrences ``find`` must have in ``file``
    equivalent: str = ""  # why the defect cannot be observed, when the catalogue knows


def load_mutation(path: Path) -> Mutation:
    """Read and validate one catalogue file; raises CatalogueError naming the file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path.name}: not valid TOML: {exc}") from None
    missing = [key for key in REQUIRED if not data.get(key)]
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        raise CatalogueError(f"{path.name}: missing fields {missing}, unknown fields {unknown}")
    if data["id"] != path.stem:
        raise CatalogueError(f"{path.name}: id {data['id']!r} differs from the file name")
    promises = tuple(data["promises"])
    bad = [p for p in promises if p not in PROMISES]
    if bad:
        raise CatalogueError(f"{path.name}: unknown promises {bad} (expected P1..P18)")
    if not data["file"].startswith(f"{SERVER_PACKAGE}/"):
        raise CatalogueError(f"{path.name}: file {data['file']!r} is not under {SERVER_PACKAGE}/")
    if data["find"] == data["replace"]:
        raise CatalogueError(f"{path.name}: find and replace are identical")
    find, replace = data["find"], data["replace"]
    if find.endswith("\n") and replace.endswith("\n"):
        # a snippet's last line may be followed by a comment the catalogue does not care about
        find, replace = find[:-1], replace[:-1]
    count, occurrence = int(data.get("count", 1)), int(data.get("occurrence", 1))
    if not 1 <= occurrence <= count:
        raise CatalogueError(f"{path.name}: occurrence {occurrence} not in 1..count ({count})")
    return Mutation(
        id=data["id"],
        promises=promises,
        title=data["title"].strip(),
        description=" ".join(data["description"].split()),
        file=data["file"],
        find=find,
        replace=replace,
        source=path,
        origin=data.get("origin", ""),
        occurrence=occurrence,
        count=count,
        equivalent=data.get("equivalent", ""),
    )


def load_catalogue(directory: Path = CATALOGUE) -> list[Mutation]:
    """Every mutation of ``directory`` in file-name order (ids are unique by construction)."""
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise CatalogueError(f"no *.toml mutations in {directory}")
    return [load_mutation(path) for path in paths]


def select(mutations: Sequence[Mutation], ids: Iterable[str]) -> list[Mutation]:
    """The mutations named in ``ids`` (all when empty); unknown ids fail with the known ones."""
    wanted = [i.strip() for i in ids if i.strip()]
    if not wanted:
        return list(mutations)
    by_id = {m.id: m for m in mutations}
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        raise CatalogueError(f"unknown mutation ids {unknown}; known: {sorted(by_id)}")
    return [by_id[i] for i in wanted]


def interleave(mutations: Sequence[Mutation]) -> list[Mutation]:
    """Round robin over the first promise (P1, P2, ..., P18, P1, ...): a run cut short still
    covers every promise."""
    groups: dict[str, list[Mutation]] = {}
    for m in mutations:
        groups.setdefault(m.promises[0], []).append(m)
    queues = [groups[p] for p in PROMISES if p in groups]
    out: list[Mutation] = []
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def mutate_text(mutation: Mutation, text: str) -> str:
    """``text`` with the mutation's occurrence of ``find`` replaced; StaleMutation otherwise."""
    found = text.count(mutation.find)
    if found != mutation.count:
        raise StaleMutation(
            f"stale mutation {mutation.id}: `find` occurs {found} times in {mutation.file} "
            f"(expected {mutation.count}); snippet:\n{mutation.find}"
        )
    start = -1
    for _ in range(mutation.occurrence):
        start = text.index(mutation.find, start + 1)
    return text[:start] + mutation.replace + text[start + len(mutation.find) :]


def apply(mutation: Mutation, root: Path) -> Path:
    """Plant ``mutation`` in the server package under ``root``; returns the changed file.

    Raises StaleMutation (with the files where the snippet now lives) or CatalogueError when
    the mutated Python no longer compiles: a mutant must be a defect, not a crash at import.
    """
    target = root / mutation.file
    if not target.is_file():
        raise StaleMutation(
            f"stale mutation {mutation.id}: {mutation.file} does not exist"
            + _moved_hint(mutation, root)
        )
    try:
        mutated = mutate_text(mutation, target.read_text(encoding="utf-8"))
    except StaleMutation as exc:
        raise StaleMutation(f"{exc}{_moved_hint(mutation, root)}") from None
    if target.suffix == ".py":
        try:
            compile(mutated, str(target), "exec")
        except SyntaxError as exc:
            raise CatalogueError(
                f"{mutation.id}: the mutated file does not compile: {exc}"
            ) from None
    target.write_text(mutated, encoding="utf-8")
    return target


def locate(mutation: Mutation, root: Path) -> list[str]:
    """Files of the server package under ``root`` holding ``find`` exactly ``count`` times."""
    hits = []
    for path in sorted((root / SERVER_PACKAGE).rglob("*")):
        if path.suffix not in (".py", ".sql") or "__pycache__" in path.parts:
            continue
        if path.read_text(encoding="utf-8").count(mutation.find) == mutation.count:
            hits.append(path.relative_to(root).as_posix())
    return hits


def _moved_hint(mutation: Mutation, root: Path) -> str:
    elsewhere = [f for f in locate(mutation, root) if f != mutation.file]
    if not elsewhere:
        return "\n(the snippet is found nowhere else: update `find` to the current code)"
    return f"\n(the snippet now lives in {elsewhere}: `--relocate` updates `file`)"


def relocate(mutation: Mutation, root: Path = ROOT) -> str | None:
    """Rewrite the ``file`` line of a stale mutation whose snippet now lives in one other file."""
    elsewhere = [f for f in locate(mutation, root) if f != mutation.file]
    if len(elsewhere) != 1:
        return None
    text = mutation.source.read_text(encoding="utf-8")
    line = re.compile(r'^file = "[^"]*"$', re.MULTILINE)
    mutation.source.write_text(line.sub(f'file = "{elsewhere[0]}"', text, count=1), "utf-8")
    return elsewhere[0]


def copy_server(dest: Path, source: Path = ROOT) -> Path:
    """Copy the server package of ``source`` into ``dest`` (what ``CCS_SERVER_PATH`` names)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source / SERVER_PACKAGE,
        dest / SERVER_PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return dest


def check(mutations: Sequence[Mutation], fix: bool = False) -> list[str]:
    """Apply every mutation to a fresh copy of ``ccs_server/``; returns the problems found."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="ccs-mutation-check-") as tmp:
        for mutation in mutations:
            copy = copy_server(Path(tmp) / mutation.id)
            try:
                apply(mutation, copy)
            except StaleMutation as exc:
                moved = relocate(mutation) if fix else None
                if moved is None:
                    problems.append(str(exc))
                else:
                    print(f"relocated {mutation.id}: {mutation.file} -> {moved}")
            except CatalogueError as exc:
                problems.append(str(exc))
    return problems


# ---- running the suites against a copy ----------------------------------------------------------
@dataclass(frozen=True)
class Suite:
    """A suite folder of ``suites/`` (``05_model``) and the short key that names it (``model``)."""

    key: str
    folder: str

    @property
    def present(self) -> bool:
        return (ROOT / "suites" / self.folder).is_dir()


# Short keys for the folders of the seed plan; any other folder is named by its name.
KEYS = {"unit_integration": "unit", "end_to_end": "e2e"}
BASELINE_TIMEOUT_S = 900.0  # the unmutated run: generous, it only has to end
MIN_TIMEOUT_S = 60.0  # a mutant's suite run: factor x baseline, at least this


def discover(root: Path = ROOT) -> list[Suite]:
    """Every ``suites/NN_name`` folder, in folder order."""
    suites = []
    for folder in sorted((root / "suites").glob("[0-9][0-9]_*")):
        if folder.is_dir():
            name = folder.name.split("_", 1)[1]
            suites.append(Suite(KEYS.get(name, name), folder.name))
    return suites


MODEL = "model"
NO_START = "the reference server did not start"  # scripts/run_suites.py's words


@dataclass
class SuiteRun:
    """What one suite did against one server copy."""

    suite: str
    outcome: str  # passed | failed | timeout | no-start | missing
    rc: int | None = None
    seconds: float = 0.0
    failed_tests: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def killed(self) -> bool:
        return self.outcome in ("failed", "timeout")


def suites_by_key(keys: Iterable[str], known: Sequence[Suite] | None = None) -> list[Suite]:
    """Suites named by key (all discovered ones when empty); the model suite is named even
    before its folder exists, so a run says it is missing instead of failing."""
    known = list(known) if known is not None else discover()
    if not any(s.key == MODEL for s in known):
        known.append(Suite(MODEL, "05_model"))
    wanted = [k.strip() for k in keys if k.strip()]
    by_key = {s.key: s for s in known}
    unknown = [k for k in wanted if k not in by_key]
    if unknown:
        raise SystemExit(f"mutation: unknown suites {unknown}; known: {list(by_key)}")
    return [by_key[k] for k in wanted] if wanted else known


@contextlib.contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new empty database for one run (migrations come from the mutated copy); dropped after."""
    import psycopg2  # the venv's driver; imported here so --check runs without it

    url = database_url_for(name)
    admin = database_url_for("postgres")

    def admin_sql(sql: str) -> None:
        conn = psycopg2.connect(admin)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def failed_tests(output_xml: Path, limit: int = 5) -> list[str]:
    """Names of failed tests in a Robot output.xml (first ``limit``), empty if unreadable."""
    try:
        tree = ET.parse(output_xml)
    except (OSError, ET.ParseError):
        return []
    names = []
    for test in tree.iter("test"):
        status = test.find("status")
        if status is not None and status.get("status") == "FAIL":
            names.append(test.get("name", "?"))
    return names[:limit]


def run_suite(
    suite: Suite, server_root: Path, outdir: Path, db_url: str, timeout_s: float
) -> SuiteRun:
    """Run one suite through scripts/run_suites.py against the server copy under ``server_root``.

    The run is bounded by ``timeout_s``: past it the whole process group (runner, server, robot)
    is terminated and the outcome is ``timeout``.
    """
    if not suite.present:
        return SuiteRun(suite.key, "missing")
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, str(ROOT / "scripts" / "run_suites.py"), "--include-all",
        "--outputdir", str(outdir), "--suite", f"Suites.{suite.folder}",
        "--", "--consolecolors", "off", "--consolemarkers", "off",
    ]  # fmt: skip
    env = {**os.environ, "CCS_SERVER_PATH": str(server_root), "DATABASE_URL": db_url}
    env.pop("SUT_URL", None)  # always the copy, never a server someone else runs
    log_path = outdir / "console.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc: int | None = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            rc = None
    seconds = round(time.monotonic() - started, 1)
    outcome = "timeout" if rc is None else "passed" if rc == 0 else "failed"
    if outcome == "failed" and NO_START in log_path.read_text("utf-8", errors="replace"):
        outcome = "no-start"  # the mutant crashed at start: a broken catalogue entry, not a kill
    failed = failed_tests(outdir / "output.xml") if outcome == "failed" else []
    if outcome == "failed" and not failed:
        failed = [f"(no test failed: exit code {rc}, see console.log)"]
    return SuiteRun(suite.key, outcome, rc, seconds, failed, str(log_path))


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this script started for one suite, SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# ---- one campaign -------------------------------------------------------------------------------
@dataclass
class Options:
    """How a campaign runs (from the command line)."""

    suites: list[Suite]
    full: bool  # every suite for every mutant, not only until the first kill
    measure_model: bool  # run the model suite even after another suite killed the mutant
    timeout_factor: float
    workdir: Path
    keep: bool


def order_by_baseline(suites: Sequence[Suite], baseline: dict[str, SuiteRun]) -> list[Suite]:
    """Fastest suite first (measured by the baseline), so most kills cost little."""
    return sorted(suites, key=lambda s: baseline[s.key].seconds if s.key in baseline else 1e9)


def suite_timeout(suite: Suite, baseline: dict[str, SuiteRun], factor: float) -> float:
    """``factor`` times the suite's baseline time (at least MIN_TIMEOUT_S); for the baseline
    itself, BASELINE_TIMEOUT_S."""
    measured = baseline.get(suite.key)
    return max(MIN_TIMEOUT_S, factor * measured.seconds) if measured else BASELINE_TIMEOUT_S


def run_copy(
    label: str,
    mutation: Mutation | None,
    opts: Options,
    baseline: dict[str, SuiteRun],
    stop_at_kill: bool,
) -> list[SuiteRun]:
    """Copy the server, plant ``mutation`` (None: baseline) and run the suites in order."""
    work = opts.workdir / label
    copy = copy_server(work / "server")
    if mutation is not None:
        apply(mutation, copy)
    runs: list[SuiteRun] = []
    # the model suite is measured on its own: its kill does not spare the other suites, so the
    # report can say what the kit without it would have caught
    killed = False  # by a suite other than the model suite
    db_name = f"ccs_mut_{os.getpid()}_{re.sub(r'[^a-z0-9]', '_', label.lower())}"[:63]
    with fresh_database(db_name) as db_url:
        for suite in opts.suites:
            if killed and stop_at_kill and not (suite.key == MODEL and opts.measure_model):
                continue
            timeout = suite_timeout(suite, baseline, opts.timeout_factor)
            run = run_suite(suite, copy, work / suite.key, db_url, timeout)
            runs.append(run)
            line = f"  {label:<42} {suite.key:<11} {run.outcome:<8} {run.seconds:6.1f} s"
            print(line, flush=True)
            killed = killed or (run.killed and (suite.key != MODEL or not opts.measure_model))
    if not opts.keep and mutation is not None and any(r.killed for r in runs):
        shutil.rmtree(work, ignore_errors=True)
    return runs


def verdict(mutation: Mutation, runs: Sequence[SuiteRun]) -> dict[str, Any]:
    """The JSON record of one mutant: killed or survived, by which suites and tests."""
    killers = [r for r in runs if r.killed and r.suite != MODEL]
    model = next((r for r in runs if r.suite == MODEL and r.outcome != "missing"), None)
    killed_any = any(r.killed for r in runs)
    status = "killed" if killed_any else "survived"
    if any(r.outcome == "no-start" for r in runs):
        status = "crashed"
    return {
        "id": mutation.id,
        "promises": list(mutation.promises),
        "title": mutation.title,
        "file": mutation.file,
        "origin": mutation.origin,
        "equivalent": mutation.equivalent,
        "status": status,
        "killed_by": [r.suite for r in runs if r.killed],
        "timeouts": [r.suite for r in runs if r.outcome == "timeout"],
        "kit_killed": bool(killers),
        "model": None if model is None else ("killed" if model.killed else "survived"),
        "seconds": round(sum(r.seconds for r in runs), 1),
        "suites": {r.suite: asdict(r) for r in runs},
    }


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Kill ratios of the whole kit and of the model suite alone, and per promise.

    Mutants that crashed at start are catalogue defects: left out of every ratio and listed.
    """
    crashed = [r["id"] for r in records if r["status"] == "crashed"]
    records = [r for r in records if r["status"] != "crashed"]
    total = len(records)
    killed = sum(r["status"] == "killed" for r in records)
    modelled = [r for r in records if r["model"] is not None]
    model_killed = sum(r["model"] == "killed" for r in modelled)
    per_promise: dict[str, dict[str, int]] = {p: {"killed": 0, "total": 0} for p in PROMISES}
    for r in records:
        for p in r["promises"]:
            per_promise[p]["total"] += 1
            per_promise[p]["killed"] += r["status"] == "killed"
    by_suite: dict[str, int] = {}
    for r in records:
        for key in r.get("killed_by", []):
            by_suite[key] = by_suite.get(key, 0) + 1
    without_model = sum(bool(r.get("kit_killed")) for r in records)
    return {
        "mutants": total,
        "crashed_at_start": crashed,
        "killed": killed,
        "survived": total - killed,
        "kill_ratio": _ratio(killed, total),
        "without_model": {"killed": without_model, "kill_ratio": _ratio(without_model, total)},
        "killed_by_suite": by_suite,
        "model": {
            "measured": len(modelled),
            "killed": model_killed,
            "kill_ratio": _ratio(model_killed, len(modelled)),
        },
        "per_promise": per_promise,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


# ---- the report ---------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    """The table of ``results/mutation.md``: one row per mutant, then the figures."""
    s = report["summary"]
    lines = [
        "# Mutation testing of the kit",
        "",
        "Runs: "
        + "; ".join(
            f"`{r['command']}` at {r.get('commit', '?')}, {r['started']}, suites "
            f"{', '.join(r['suites'])}, {r.get('wall_seconds', 0)} s"
            for r in report["runs"]
        ),
        "",
        "| mutant | promises | result | killed by (first failing tests) | model suite | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["mutants"]:
        killers = []
        for key in r["killed_by"]:
            run = r["suites"][key]
            why = "timeout" if run["outcome"] == "timeout" else "; ".join(run["failed_tests"][:2])
            killers.append(f"**{key}**: {why}")
        result = r["status"] + (" (equivalent?)" if r["equivalent"] else "")
        lines.append(
            f"| `{r['id']}` | {' '.join(r['promises'])} | {result} | "
            f"{'<br>'.join(killers) or '—'} | {r['model'] or 'not run'} | {r['seconds']} |"
        )
    ratio = _pct(s["kill_ratio"])
    model = s["model"]
    lines += [
        "",
        f"**Whole kit:** {s['killed']} of {s['mutants']} killed ({ratio}), "
        f"{s['survived']} survived.",
        f"**Model suite alone:** {model['killed']} of {model['measured']} measured mutants killed "
        f"({_pct(model['kill_ratio'])}).",
        f"**Kit without the model suite:** {s['without_model']['killed']} killed "
        f"({_pct(s['without_model']['kill_ratio'])}).",
        "**Kills per suite** (in first-kill mode a suite only sees what faster suites missed): "
        + (", ".join(f"{k} {n}" for k, n in sorted(s["killed_by_suite"].items())) or "none"),
        "",
        "**Survivors:** "
        + (
            ", ".join(f"`{r['id']}`" for r in report["mutants"] if r["status"] == "survived")
            or "none"
        ),
        "",
        "| promise | killed / mutants |",
        "|---|---|",
    ]
    lines += [
        f"| {p} | {c['killed']} / {c['total']} |" for p, c in s["per_promise"].items() if c["total"]
    ]
    return "\n".join(lines) + "\n"


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.1f} %"


def write_report(report: dict[str, Any], results: Path) -> None:
    """``mutation.json`` and ``mutation.md`` under ``results``."""
    results.mkdir(parents=True, exist_ok=True)
    report["summary"] = summarise(report["mutants"])
    (results / "mutation.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    (results / "mutation.md").write_text(markdown(report), "utf-8")


def load_previous(results: Path) -> dict[str, Any] | None:
    """An earlier report to merge into (``--append``), or None."""
    path = results / "mutation.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


# ---- command line -------------------------------------------------------------------------------
def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check every mutation applies")
    parser.add_argument("--relocate", action="store_true", help="--check, fixing moved snippets")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--mutants", default=os.environ.get("MUTANTS", ""), help="id,id,...")
    parser.add_argument(
        "--suites",
        default=os.environ.get("SUITES", ""),
        help="unit,hostile,e2e,stress,model,... (other folders by name)",
    )
    parser.add_argument(
        "--model-only",
        action="store_true",
        default=os.environ.get("MODEL_ONLY", "") not in ("", "0"),
        help="run the model suite alone",
    )
    parser.add_argument("--full", action="store_true", help="every suite for every mutant")
    parser.add_argument(
        "--interleave", action="store_true", help="run mutants round robin over the promises"
    )
    parser.add_argument(
        "--no-model-measure",
        action="store_true",
        help="skip the model suite once another suite killed the mutant",
    )
    parser.add_argument("--append", action="store_true", help="merge into results/mutation.json")
    parser.add_argument(
        "--reuse-baseline",
        action="store_true",
        help="with --append: skip the baseline if the last run measured the same commit green",
    )
    parser.add_argument("--timeout-factor", type=float, default=4.0, help="x baseline seconds")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep copies and suite outputs")
    return parser.parse_args(argv)


def reused_baseline(
    previous: dict[str, Any] | None, suites: Sequence[Suite]
) -> dict[str, SuiteRun] | None:
    """The green baseline of the last run in ``previous`` if it measured the same commit and
    every suite asked for now; None (run a baseline) otherwise."""
    if not previous or not previous.get("runs"):
        return None
    last = previous["runs"][-1]
    seconds = last.get("baseline_seconds", {})
    if last.get("commit") != git_commit() or any(s.key not in seconds for s in suites):
        return None
    print(f"mutation: baseline reused from the run of {last['started']} ({last['commit']})")
    return {s.key: SuiteRun(s.key, "passed", 0, seconds[s.key]) for s in suites}


def git_commit() -> str:
    """The commit of the tree measured (with ``+dirty`` if ccs_server/ has local changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", SERVER_PACKAGE, "mutation", "suites"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+dirty" if dirty else "")


def campaign(args: argparse.Namespace, mutations: list[Mutation]) -> int:
    """Baseline (must be green), then every mutant; writes the report after each mutant."""
    suites = suites_by_key(["model"] if args.model_only else args.suites.split(","))
    missing = [s.key for s in suites if not s.present]
    if missing:
        print(f"mutation: suites not present here, skipped: {missing}")
    workdir = Path(tempfile.mkdtemp(prefix="ccs-mutation-"))
    opts = Options(
        suites=[s for s in suites if s.present],
        full=args.full,
        measure_model=not args.no_model_measure,
        timeout_factor=args.timeout_factor,
        workdir=workdir,
        keep=args.keep,
    )
    if not opts.suites:
        print("mutation: no suite to run", file=sys.stderr)
        return 2
    started = time.time()
    command = "mutation " + " ".join(sys.argv[1:]) if sys.argv[1:] else "mutation"
    previous = load_previous(args.results) if args.append else None
    baseline = reused_baseline(previous, opts.suites) if args.reuse_baseline else None
    if baseline is None:
        print(f"mutation: baseline (no mutation) with suites {[s.key for s in opts.suites]}")
        base_runs = run_copy("baseline", None, opts, {}, stop_at_kill=False)
        red = [r for r in base_runs if r.outcome != "passed"]
        if red:
            for r in red:
                print(f"mutation: baseline {r.suite} {r.outcome}: {r.failed_tests} (log {r.log})")
            print("mutation: the unmutated server is not green: aborting", file=sys.stderr)
            return 3
        baseline = {r.suite: r for r in base_runs}
    opts.suites = order_by_baseline(opts.suites, baseline)
    records = {r["id"]: r for r in previous["mutants"]} if previous else {}
    report: dict[str, Any] = {
        "catalogue": str(CATALOGUE.relative_to(ROOT)),
        "runs": (previous or {}).get("runs", []),
        "mutants": [],
    }
    run_info: dict[str, Any] = {
        "command": command,
        "commit": git_commit(),
        "wall_seconds": 0.0,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "suites": [s.key for s in opts.suites],
        "mode": "model-only" if args.model_only else ("full" if args.full else "first-kill"),
        "baseline_seconds": {k: r.seconds for k, r in baseline.items()},
        "mutants_run": [m.id for m in mutations],
    }
    report["runs"].append(run_info)
    for index, mutation in enumerate(mutations, start=1):
        print(f"[{index}/{len(mutations)}] {mutation.id}: {mutation.title}", flush=True)
        runs = run_copy(mutation.id, mutation, opts, baseline, stop_at_kill=not opts.full)
        records[mutation.id] = verdict(mutation, runs)
        run_info["wall_seconds"] = round(time.time() - started, 1)
        report["mutants"] = [records[k] for k in sorted(records)]
        write_report(report, args.results)
    if not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(markdown(report))
    print(f"mutation: wall time {run_info['wall_seconds']} s; results in {args.results}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        mutations = select(load_catalogue(), args.mutants.split(","))
    except CatalogueError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    if args.interleave:
        mutations = interleave(mutations)
    if args.list:
        for m in mutations:
            print(f"{m.id:<44} {','.join(m.promises):<12} {m.file}")
        return 0
    if args.check or args.relocate:
        problems = check(mutations, fix=args.relocate)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"mutation: {len(mutations) - len(problems)} of {len(mutations)} mutations apply")
        return 1 if problems else 0
    problems = check(mutations)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print("mutation: stale or broken mutations: fix them first (--relocate helps)")
        return 2
    return campaign(args, mutations)


if __name__ == "__main__":
    sys.exit(main())
