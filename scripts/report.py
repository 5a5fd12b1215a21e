"""Write the one-page performance and reliability report of the latest run.

Usage: ``python scripts/report.py [--results results] [--regression-pct 20] [--fail-on-regression]``

Merges ``<results>/metrics/metrics-*.json`` of the latest run into ``<results>/metrics.json`` (or
reads that file when no process files exist), compares with the newest run kept in
``<results>/history/``, keeps this run there, and writes ``<results>/performance-report.html``: one
self-contained page (inline SVG charts, no external assets). ``<results>/bench.json`` is included
when present. ``--quiet`` prints one line in the style of robot's ``Report:`` line. Exit code: 0
when written, 1 when there is no data, 3 with ``--fail-on-regression``
when a regression was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ccskit.report import compare, page, store


def load_run(results: Path) -> dict[str, Any] | None:
    """The merged latest run: from the per-process files if any, else ``metrics.json``."""
    metrics_dir, merged_path = results / "metrics", results / "metrics.json"
    docs = store.load_process_files(metrics_dir)
    if docs:
        *older, latest = store.runs(docs)
        # Runs nobody made a report of still count as "previous" for the next comparison.
        for run in older:
            store.save_history(store.merge_run(run), results / "history")
        merged = store.merge_run(latest)
        store.write_json(merged_path, merged)
        return merged
    if merged_path.exists():
        return store.read_json(merged_path)
    return None


def load_bench(path: Path) -> dict[str, Any] | None:
    try:
        return store.read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(f"WARN ignoring {path}: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, help="default: <results>/performance-report.html")
    parser.add_argument("--bench", type=Path, help="default: <results>/bench.json")
    parser.add_argument("--regression-pct", type=float, default=compare.DEFAULT_LIMIT_PCT)
    parser.add_argument("--no-history", action="store_true", help="do not keep this run in history")
    parser.add_argument("--fail-on-regression", action="store_true")
    parser.add_argument(
        "--quiet", action="store_true", help="one line like robot's 'Report:' (for make run)"
    )
    args = parser.parse_args(argv)
    run = load_run(args.results)
    if run is None:
        print(
            f"FAIL no metrics in {args.results}/metrics or {args.results}/metrics.json: run "
            "`make run` (robot with --listener keywords/CCSMetricsListener.py) first",
            file=sys.stderr,
        )
        return 1
    history = args.results / "history"
    previous = store.previous_run(history, run)
    earlier = store.recent_runs(history, run)
    if not args.no_history:
        store.save_history(run, history)
    comparison = compare.compare(run, previous, args.regression_pct) if previous else None
    bench_path = args.bench or args.results / "bench.json"
    html = page.render(
        page.PageInput(
            run,
            comparison,
            load_bench(bench_path),
            str(bench_path),
            args.regression_pct,
            history=earlier,
        )
    )
    out = args.out or args.results / "performance-report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    regressions = comparison.regressions() if comparison else []
    if args.quiet:
        flag = f" ({len(regressions)} regression(s) vs previous run)" if regressions else ""
        print(f"Perf:    {out.resolve()}{flag}")
        return 3 if args.fail_on_regression and regressions else 0
    print(
        f"OK  wrote {out} ({len(run.get('tests', []))} test entries, "
        f"{len(regressions)} regression(s) vs previous run"
        f"{'' if comparison else ': none kept yet'})"
    )
    return 3 if args.fail_on_regression and regressions else 0


if __name__ == "__main__":
    sys.exit(main())
