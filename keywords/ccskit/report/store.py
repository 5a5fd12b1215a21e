"""Metrics files on disk: per-process files, the merged run file and the history of runs.

One robot process (one pabot worker) writes ``results/metrics/metrics-<pid>.json`` (schema in
``ccskit.metrics``). :func:`merge_run` combines the files of one run into ``results/metrics.json``;
files of older runs left in the folder are ignored by run id, so a stale file never leaks into a
report. :func:`save_history` keeps a copy per run for the next report's comparison.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

MERGED_FORMAT = "ccs-metrics/1"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` atomically: a reader (the report, another process) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open() honours the umask (mkstemp would make results 0600); pid + thread keep the
    # temporary name unique between pabot workers and threads.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(doc, out, separators=(",", ":"), allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as src:
        doc = json.load(src)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc


def load_process_files(folder: Path) -> list[dict[str, Any]]:
    """All per-process files in ``folder`` (unreadable ones are reported on stderr and skipped)."""
    docs = []
    for path in sorted(folder.glob("metrics-*.json")):
        try:
            doc = read_json(path)
        except (OSError, ValueError) as exc:
            print(f"WARN skipping {path}: {exc}")
            continue
        doc.setdefault("run", {})["file"] = str(path)
        docs.append(doc)
    return docs


def _run_end(doc: dict[str, Any]) -> float:
    run = doc.get("run", {})
    return float(run.get("ended") or run.get("started") or 0.0)


def latest_run(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The files that belong to the run of the most recently finished file."""
    if not docs:
        return []
    newest = max(docs, key=_run_end)
    run_id = newest.get("run", {}).get("id")
    return [d for d in docs if d.get("run", {}).get("id") == run_id]


def runs(docs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The files grouped by run id, oldest run first (by when its last file was written)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for doc in docs:
        groups.setdefault(doc.get("run", {}).get("id"), []).append(doc)
    return sorted(groups.values(), key=lambda group: max(_run_end(d) for d in group))


def _merge_named(target: dict[str, Any], source: dict[str, Any], key: str) -> None:
    for name, entry in source.items():
        into = target.setdefault(name, {"unit": entry.get("unit", ""), key: []})
        into[key].extend(entry.get(key, []))


def merge_run(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the per-process files of one run into one document (same schema, plus processes)."""
    tests: list[dict[str, Any]] = []
    samples: dict[str, Any] = {}
    series: dict[str, Any] = {}
    faults: list[dict[str, Any]] = []
    processes = []
    for doc in docs:
        run = doc.get("run", {})
        processes.append({k: run.get(k) for k in ("pid", "host", "started", "ended", "file")})
        tests.extend(doc.get("tests", []))
        _merge_named(samples, doc.get("samples", {}), "values")
        _merge_named(series, doc.get("series", {}), "points")
        faults.extend(doc.get("faults", []))
    for entry in series.values():
        entry["points"].sort(key=lambda p: p[0])
    tests.sort(key=lambda t: (t.get("start") or 0.0, t.get("suite", ""), t.get("test", "")))
    faults.sort(key=lambda f: f.get("t", 0.0))
    starts = [p["started"] for p in processes if p.get("started")]
    ends = [p["ended"] for p in processes if p.get("ended")]
    first = docs[0].get("run", {}) if docs else {}
    return {
        "format": MERGED_FORMAT,
        "run": {
            "id": first.get("id"),
            "started": min(starts) if starts else None,
            "ended": max(ends) if ends else None,
            "robot_version": first.get("robot_version"),
            "python": first.get("python"),
            "processes": processes,
            **_run_metadata([doc.get("run", {}) for doc in docs]),
        },
        "tests": tests,
        "samples": samples,
        "series": series,
        "faults": faults,
    }


def _run_metadata(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Commit, machine, tag selection, sources and server: the first process that knows them."""
    merged: dict[str, Any] = {}
    for key in ("commit", "machine", "selection", "server"):
        known = [r[key] for r in runs if r.get(key)]
        merged[key] = known[0] if known else None
    sources: list[str] = []
    for run in runs:
        sources += [s for s in run.get("sources") or [] if s not in sources]
    merged["sources"] = sources
    merged["pabot"] = any(r.get("pabot_pool_id") is not None for r in runs)
    return merged


def merge_folder(folder: Path, out: Path | None = None, every_run: bool = False) -> dict[str, Any]:
    """Merge the latest run (or every run) found in ``folder``; write it to ``out`` if given."""
    docs = load_process_files(folder)
    merged = merge_run(docs if every_run else latest_run(docs))
    if out is not None:
        write_json(out, merged)
    return merged


def _stamp(epoch: float | None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch or time.time()))


def save_history(merged: dict[str, Any], folder: Path) -> Path | None:
    """Keep a copy of this run as ``metrics-<UTC start>.json`` unless this run is already kept."""
    run_id = merged.get("run", {}).get("id")
    for path in folder.glob("metrics-*.json"):
        if _history_run_id(path) == run_id:
            return None
    stamp = _stamp(merged.get("run", {}).get("started"))
    path = folder / f"metrics-{stamp}.json"
    for n in range(2, 100):  # two runs started in the same second must not overwrite each other
        if not path.exists():
            break
        path = folder / f"metrics-{stamp}-{n}.json"
    write_json(path, merged)
    return path


def _history_run_id(path: Path) -> str | None:
    try:
        return read_json(path).get("run", {}).get("id")
    except (OSError, ValueError):
        return None


OVERLAP_WANTED = 0.5


def previous_run(folder: Path, current: dict[str, Any]) -> dict[str, Any] | None:
    """The run to compare with: the newest earlier run that ran at least half of this run's tests.

    So ``make stress`` compares with the last stress run and ``make run`` with the last functional
    run; when no earlier run is that similar, the newest earlier run with any test in common.
    """
    run = current.get("run", {})
    started = run.get("started") or time.time()
    names = _test_names(current)
    candidates: list[tuple[float, float, dict[str, Any]]] = []
    for path in folder.glob("metrics-*.json"):
        try:
            doc = read_json(path)
        except (OSError, ValueError):
            continue
        other = doc.get("run", {})
        other_start = other.get("started") or 0.0
        if other.get("id") == run.get("id") or other_start >= started:
            continue
        shared = len(names & _test_names(doc)) / len(names) if names else 0.0
        candidates.append((shared, other_start, doc))
    similar = [c for c in candidates if c[0] >= OVERLAP_WANTED] or [
        c for c in candidates if c[0] > 0
    ]
    return max(similar, key=lambda c: c[1])[2] if similar else None


def _test_names(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t.get("suite", ""), t.get("test", "")) for t in doc.get("tests", [])}


def recent_runs(folder: Path, current: dict[str, Any], limit: int = 10) -> list[dict[str, Any]]:
    """Up to ``limit`` kept runs other than ``current``, newest first (unreadable ones skipped)."""
    run_id = current.get("run", {}).get("id")
    docs = []
    for path in sorted(folder.glob("metrics-*.json"), reverse=True)[: limit + 1]:
        try:
            doc = read_json(path)
        except (OSError, ValueError):
            continue
        if doc.get("run", {}).get("id") != run_id:
            docs.append(doc)
    docs.sort(key=lambda d: -(d.get("run", {}).get("started") or 0.0))
    return docs[:limit]
