"""Merge the per-process metrics files of the latest run into one file.

Usage: ``python scripts/merge_metrics.py [--metrics-dir results/metrics]
[--out results/metrics.json] [--all-runs]``

Each robot process (each pabot worker) writes ``metrics-<pid>.json`` through
``keywords/CCSMetricsListener.py``; files of older runs left in the folder are skipped by run id
unless ``--all-runs`` is given. ``scripts/report.py`` does the same merge itself before drawing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccskit.report import store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics-dir", type=Path, default=Path("results/metrics"))
    parser.add_argument("--out", type=Path, default=Path("results/metrics.json"))
    parser.add_argument(
        "--all-runs", action="store_true", help="merge every file, not the latest run"
    )
    args = parser.parse_args(argv)
    if not any(args.metrics_dir.glob("metrics-*.json")):
        print(
            f"FAIL no metrics-*.json in {args.metrics_dir}: run the suites with "
            "--listener keywords/CCSMetricsListener.py first",
            file=sys.stderr,
        )
        return 1
    merged = store.merge_folder(args.metrics_dir, args.out, every_run=args.all_runs)
    processes = merged["run"]["processes"]
    print(
        f"OK  merged {len(processes)} process file(s) of run {merged['run']['id']} "
        f"({len(merged['tests'])} test entries) into {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
