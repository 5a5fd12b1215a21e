"""Tests of the metrics pipeline: the listener in a real robot run, the merge of pabot process
files, the report page (scenario rows, KPIs, regression flags) and ``scripts/health.py``."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ccskit.config import database_url_for
from ccskit.metrics import Recorder
from ccskit.report import charts, compare, coverage, kpis, page, runinfo, sampler, stats, store
from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parents[2]

PYTHON = sys.executable
LISTENER = ROOT / "keywords" / "CCSMetricsListener.py"

SUITE = """\
*** Settings ***
Library         probe_lib.py
Suite Setup     Record Setup Figure

*** Test Cases ***
Fast Delivery Passes
    [Tags]    perf    smoke
    Record Delivery    12.5
    Wait For Server Samples

Slow Delivery Fails
    Record Delivery    80
    Fail    delivery took too long

Left Out By Its Tag
    [Tags]    stress
    Fail    excluded by --exclude stress: never runs
"""

LIBRARY = """\
import time
from ccskit.metrics import recorder

def record_setup_figure():
    recorder.record("connect_ms", 3, "ms", 100)

def record_delivery(value):
    recorder.record("ws_delivery_p99_ms", float(value), "ms", 50, "<=")
    recorder.add_samples("ws_delivery_ms", [1.0, 2.0, float(value)], "ms")
    recorder.add_point("throughput_msgs_per_s", 1000.0, "msg/s")
    recorder.fault_event("db_kill", "injected", "kill -9")

def wait_for_server_samples(timeout=20.0):
    # The sampler thread adds points on its own period: wait for them, bounded by the timeout.
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        with recorder._lock:
            points = recorder.series.get("server_rss_mib", {}).get("points", [])
        if len(points) >= 2:
            return
        time.sleep(0.02)
    raise AssertionError("no server_rss_mib samples within %s s" % timeout)
"""


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A harmless child process standing in for the server whose RSS/CPU the listener samples."""
    proc = subprocess.Popen([PYTHON, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc
    proc.communicate(timeout=10)


def test_listener_writes_the_process_file_of_a_real_robot_run(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    (tmp_path / "probe.robot").write_text(SUITE)
    (tmp_path / "probe_lib.py").write_text(LIBRARY)
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        "CCS_SERVER_PID": str(sleeper.pid),
        "CCS_SAMPLE_INTERVAL_S": "0.05",
        "CCS_RUN_ID": "run-under-test",
        "PYTHONPATH": str(ROOT / "keywords"),
    }
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "robot",
            "--listener",
            f"{LISTENER}:{metrics_dir}",
            "--outputdir",
            str(tmp_path / "out"),
            "--console",
            "quiet",
            "--exclude",
            "stress",
            str(tmp_path / "probe.robot"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # exactly one test fails on purpose
    files = list(metrics_dir.glob("metrics-*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text())
    assert doc["run"]["id"] == "run-under-test"
    tests = {t["test"]: t for t in doc["tests"]}
    fast, slow = tests["Fast Delivery Passes"], tests["Slow Delivery Fails"]
    assert (fast["status"], slow["status"]) == ("PASS", "FAIL")
    assert fast["suite"] == "Probe" and sorted(fast["tags"]) == ["perf", "smoke"]
    assert fast["metrics"] == [
        {
            "name": "ws_delivery_p99_ms",
            "value": 12.5,
            "unit": "ms",
            "threshold": 50,
            "op": "<=",
            "passed": True,
        }
    ]
    assert slow["metrics"][0]["passed"] is False
    assert slow["message"] == "delivery took too long"
    assert fast["start"] <= fast["end"] <= slow["start"]
    setup = tests["Suite Setup / Teardown"]
    assert [m["name"] for m in setup["metrics"]] == ["connect_ms"]
    assert setup["status"] == "PASS"  # the suite failed through a test, not through its setup
    assert doc["samples"]["ws_delivery_ms"]["values"] == [1.0, 2.0, 12.5, 1.0, 2.0, 80.0]
    assert [f["event"] for f in doc["faults"]] == ["injected", "injected"]
    rss = doc["series"]["server_rss_mib"]["points"]
    assert len(rss) >= 2 and all(value > 1.0 for _t, value in rss)
    # The test's own share of the samples, summarised: the report names the test a figure came from.
    assert fast["samples"]["ws_delivery_ms"] == {
        "unit": "ms", "count": 3, "mean": 5.167, "min": 1.0, "max": 12.5,
        "p50": 2.0, "p90": None, "p95": None, "p99": None, "p99.9": None,
    }  # fmt: skip
    assert slow["samples"]["ws_delivery_ms"]["max"] == 80.0
    run = doc["run"]
    assert run["selection"] == {"include": [], "exclude": ["stress"]}
    assert run["sources"] == [str(tmp_path / "probe.robot")]
    assert run["commit"] and run["machine"]["cores"] >= 1 and run["machine"]["memory_gib"] > 0
    metadata = ExecutionResult(str(tmp_path / "out" / "output.xml")).suite.metadata
    assert metadata["Tags excluded"] == "stress" and metadata["Tags included"].startswith("all")
    assert metadata["Left out"] == "1 of 3 tests left out: 1 test excluded by tag stress"
    assert metadata["Kit commit"] == run["commit"]
    assert metadata["Machine"].endswith(f"{run['machine']['memory_gib']} GiB")
    assert metadata["Server under test"].startswith("unknown: no test of this run reached")


def test_the_server_version_comes_from_the_server_or_says_why_not() -> None:
    with _health_server(200) as url:
        info = runinfo.server_info(url)
    assert info["url"] == url and info["health"] == "ok (HTTP 200)"
    assert info["version"] == "unknown"
    assert info["version_reason"] == "neither GET /health nor GET /openapi.json names a version"
    assert runinfo.server_text(None).startswith("unknown")


def test_pabot_workers_write_next_to_each_other_under_one_run_id(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    for name in ("alpha", "beta"):
        (suites / f"{name}.robot").write_text(SUITE.replace("    Wait For Server Samples\n", ""))
    (suites / "probe_lib.py").write_text(LIBRARY)
    env = {k: v for k, v in os.environ.items() if k not in ("CCS_RUN_ID", "CCS_METRICS_DIR")}
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"  # pabot runs `robot`
    env["PYTHONPATH"] = f"{ROOT / 'keywords'}{os.pathsep}{suites}"
    out = tmp_path / "out"
    done = subprocess.run(
        [PYTHON, "-m", "pabot.pabot", "--processes", "2", "--pabotlibport", "0", "--listener",
         str(LISTENER), "--outputdir", str(out), str(suites)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    files = sorted((out / "metrics").glob("metrics-*.json"))
    assert len(files) == 2, done.stdout + done.stderr
    ids = {json.loads(f.read_text())["run"]["id"] for f in files}
    assert len(ids) == 1 and ids.pop().startswith("pabot-")
    merged = store.merge_folder(out / "metrics")
    suites_seen = sorted({t["suite"] for t in merged["tests"] if t.get("kind") != "suite"})
    assert suites_seen == ["Suites.Alpha", "Suites.Beta"]


def _process_doc(
    run_id: str,
    pid: int,
    start: float,
    tests: list[dict[str, Any]],
    samples: dict[str, Any] | None = None,
    series: dict[str, Any] | None = None,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "run": {"id": run_id, "pid": pid, "started": start, "ended": start + 30},
        "tests": tests,
        "samples": samples or {},
        "series": series or {},
        "faults": faults or [],
    }


def _test(
    suite: str,
    name: str,
    start: float,
    metrics: list[tuple[str, float, str, float | None, str]],
    status: str = "PASS",
) -> dict[str, Any]:
    figures = []
    for fig_name, value, unit, threshold, op in metrics:
        passed = (
            None
            if threshold is None
            else (value <= threshold if op == "<=" else value >= threshold)
        )
        figures.append(
            {
                "name": fig_name,
                "value": value,
                "unit": unit,
                "threshold": threshold,
                "op": op,
                "passed": passed,
            }
        )
    return {
        "suite": suite,
        "test": name,
        "tags": [],
        "status": status,
        "start": start,
        "end": start + 1,
        "elapsed_s": 1.0,
        "metrics": figures,
    }


def test_merge_combines_the_process_files_of_the_latest_run_only(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    store.write_json(
        folder / "metrics-1.json",
        _process_doc(
            "old",
            1,
            1000.0,
            [_test("S", "Stale Test", 1000.0, [])],
            samples={"ws_delivery_ms": {"unit": "ms", "values": [99.0]}},
        ),
    )
    store.write_json(
        folder / "metrics-2.json",
        _process_doc(
            "new",
            2,
            5000.0,
            [_test("S.A", "Second", 5010.0, [])],
            samples={"ws_delivery_ms": {"unit": "ms", "values": [1.0, 2.0]}},
            series={"server_rss_mib": {"unit": "MiB", "points": [[5003.0, 80.0], [5001.0, 79.0]]}},
            faults=[{"t": 5020.0, "kind": "db_kill", "event": "recovered"}],
        ),
    )
    store.write_json(
        folder / "metrics-3.json",
        _process_doc(
            "new",
            3,
            5001.0,
            [_test("S.B", "First", 5002.0, [])],
            samples={"ws_delivery_ms": {"unit": "ms", "values": [3.0]}},
            series={"server_rss_mib": {"unit": "MiB", "points": [[5002.0, 81.0]]}},
            faults=[{"t": 5015.0, "kind": "db_kill", "event": "injected"}],
        ),
    )
    out = tmp_path / "metrics.json"
    done = subprocess.run(
        [
            PYTHON,
            str(ROOT / "scripts" / "merge_metrics.py"),
            "--metrics-dir",
            str(folder),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    merged = json.loads(out.read_text())
    assert merged["run"]["id"] == "new"
    assert [t["test"] for t in merged["tests"]] == ["First", "Second"]
    assert sorted(merged["samples"]["ws_delivery_ms"]["values"]) == [1.0, 2.0, 3.0]
    assert [p[0] for p in merged["series"]["server_rss_mib"]["points"]] == [5001.0, 5002.0, 5003.0]
    assert [f["event"] for f in merged["faults"]] == ["injected", "recovered"]
    assert sorted(p["pid"] for p in merged["run"]["processes"]) == [2, 3]


SCENARIOS = (
    "Fifty Senders Keep One Order",
    "Hundred Connections Stay Open",
    "Database Kill Loses Nothing",
)


def _run_files(folder: Path, run_id: str, start: float, delivery_p99: float, rate: float) -> None:
    tests = [
        _test(
            "Stress.Concurrent",
            SCENARIOS[0],
            start + 1,
            [
                ("ws_delivery_p99_ms", delivery_p99, "ms", 50.0, "<="),
                ("messages_per_s", rate, "msg/s", 100.0, ">="),
            ],
        ),
        _test(
            "Stress.Volume",
            SCENARIOS[1],
            start + 5,
            [("concurrent_connections", 150.0, "connections", 100.0, ">=")],
        ),
        _test("Faults.Database", SCENARIOS[2], start + 9, [], status="FAIL"),
    ]
    faults = [
        {"t": start + 10, "kind": "db_kill", "event": "injected", "detail": "kill -9"},
        {"t": start + 11.5, "kind": "db_kill", "event": "recovered", "detail": ""},
        {"t": start + 12.0, "kind": "db_kill", "event": "first_ack", "detail": ""},
    ]
    samples = {
        "ws_delivery_ms": {
            "unit": "ms",
            "values": [delivery_p99 / 4, delivery_p99 / 2, delivery_p99] * 50,
        }
    }
    series = {
        "server_rss_mib": {"unit": "MiB", "points": [[start + i, 80.0 + i] for i in range(5)]},
        "throughput_msgs_per_s": {"unit": "msg/s", "points": [[start + i, rate] for i in range(5)]},
    }
    store.write_json(
        folder / "metrics-11.json", _process_doc(run_id, 11, start, tests[:2], samples, series)
    )
    store.write_json(
        folder / "metrics-12.json", _process_doc(run_id, 12, start + 1, tests[2:], faults=faults)
    )


def _report(results: Path) -> tuple[int, str]:
    done = subprocess.run(
        [
            PYTHON,
            str(ROOT / "scripts" / "report.py"),
            "--results",
            str(results),
            "--fail-on-regression",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    html = (results / "performance-report.html").read_text() if done.returncode != 1 else ""
    return done.returncode, html


def _history_of(
    results: Path, run_id: str, start: float, delivery_p99: float, rate: float, tmp_path: Path
) -> None:
    folder = tmp_path / f"prev-{run_id}"
    _run_files(folder, run_id, start, delivery_p99, rate)
    store.save_history(store.merge_folder(folder), results / "history")


def test_report_has_every_scenario_row_and_flags_a_regression(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _history_of(results, "previous", 1_000.0, delivery_p99=10.0, rate=1000.0, tmp_path=tmp_path)
    _run_files(results / "metrics", "current", 2_000.0, delivery_p99=15.0, rate=1000.0)
    code, html = _report(results)
    assert code == 3, "a 50 % worse p99 must fail --fail-on-regression"
    rows = re.findall(
        r'<tr class="(\w+)"><td class="status">(.*?)</td>.*?<div class="test">(.*?)<', html
    )
    assert {name for _css, _status, name in rows} == set(SCENARIOS)
    by_name = {name: (css, status) for css, status, name in rows}
    assert by_name[SCENARIOS[0]] == ("warn", "PASS · regressed")
    assert by_name[SCENARIOS[1]] == ("pass", "PASS")
    assert by_name[SCENARIOS[2]][0] == "fail"
    assert re.search(
        r"<b>REGRESSION</b></td><td>Fifty Senders Keep One Order: "
        r"ws_delivery_p99_ms</td><td[^>]*>10 ms</td><td[^>]*>15 ms</td>",
        html,
    )
    assert "Messages per second" in html and "not measured in this run" in html
    assert "Database transaction rate" in html
    assert len(list((results / "history").glob("metrics-*.json"))) == 2
    # One self-contained page: charts inline, nothing fetched from elsewhere.
    assert html.count("<svg") >= 3
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)


def test_report_flags_nothing_when_the_previous_run_was_worse(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _history_of(results, "previous", 1_000.0, delivery_p99=15.0, rate=800.0, tmp_path=tmp_path)
    _run_files(results / "metrics", "current", 2_000.0, delivery_p99=10.0, rate=1000.0)
    code, html = _report(results)
    assert code == 0
    assert "<b>REGRESSION</b>" not in html and "<b>better</b>" in html
    assert "0 regressions vs previous run" in html


def test_an_older_run_left_in_the_metrics_folder_is_the_previous_run(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _run_files(results / "metrics", "older", 1_000.0, delivery_p99=10.0, rate=1000.0)
    for path in (results / "metrics").glob("metrics-*.json"):
        path.rename(path.with_name(path.name.replace("metrics-1", "metrics-9")))
    _run_files(results / "metrics", "newer", 2_000.0, delivery_p99=30.0, rate=1000.0)
    (results / "bench.json").write_text(json.dumps({"persisted_msgs_per_s": 3412.5}))
    code, html = _report(results)
    assert code == 3
    assert "Compared with run <code>older</code>" in html
    assert "make bench: 3,412 msg/s (persisted)" in html
    merged = json.loads((results / "metrics.json").read_text())
    assert merged["run"]["id"] == "newer" and len(merged["tests"]) == 3


def test_report_without_metrics_says_what_to_run(tmp_path: Path) -> None:
    code, _html = _report(tmp_path)
    assert code == 1


def test_kpis_come_from_the_data_or_are_not_measured() -> None:
    run = {
        "tests": [
            _test("S", "T", 0.0, [("concurrent_connections", 120.0, "connections", 100.0, ">=")])
        ],
        "samples": {"db_insert_ms": {"unit": "s", "values": [0.001, 0.003]}},
        "faults": [
            {"t": 10.0, "kind": "redis_stop", "event": "injected"},
            {"t": 12.5, "kind": "redis_stop", "event": "recovered"},
        ],
    }
    results = {k.spec.key: k for k in kpis.evaluate(run)}
    assert results["db_query_time"].value == pytest.approx(2.0)  # seconds became ms
    assert results["connection_capacity"].value == 120.0
    assert results["connection_capacity"].meets_target is True
    assert results["error_recovery_time"].value == pytest.approx(2.5)
    unmeasured = [k for k, r in results.items() if not r.measured]
    assert sorted(unmeasured) == [
        "connection_uptime",
        "delivery_success",
        "e2e_duration",
        "messages_per_s",
        "transaction_rate",
        "ws_delivery_time",
    ]


def _samples(name: str, values: list[float], unit: str = "ms") -> dict[str, Any]:
    """A test entry's per-test sample summary, as the listener writes it."""
    return {name: {"unit": unit, **stats.rounded(stats.summarize(values))}}


def test_a_latency_tile_shows_the_worst_test_of_all_not_the_asserted_one() -> None:
    light = _test("S", "Light Delivery", 0.0, [("ws_delivery_avg_ms", 3.1, "ms", 50.0, "<=")])
    light["samples"] = _samples("delivery_latency_ms", [3.0, 3.1, 3.2])
    hot = _test("Stress", "Hot Room", 5.0, [])  # measured, asserted nothing
    hot["samples"] = _samples("ws_delivery_ms", [10.0] * 150 + [40.0] * 50)
    ws = {k.spec.key: k for k in kpis.evaluate({"tests": [light, hot]})}["ws_delivery_time"]
    assert ws.value == pytest.approx(17.5)  # Hot Room's average, not Light Delivery's 3.1
    assert ws.test == "Hot Room" and "“Hot Room” (ws_delivery_ms, n=200)" in ws.detail
    assert ws.detail.startswith("worst average of 2 tests")
    assert any("asserting it: 3.1 ms (“Light Delivery”" in n for n in ws.notes)
    assert any(n.startswith("worst p99: 40 ms (“Hot Room”, n=200") for n in ws.notes)
    assert ws.meets_target is True
    hot["samples"] = _samples("ws_delivery_ms", [60.0] * 200)
    ws = {k.spec.key: k for k in kpis.evaluate({"tests": [light, hot]})}["ws_delivery_time"]
    assert (ws.value, ws.meets_target) == (60.0, False)


def test_an_average_target_is_compared_with_averages_only() -> None:
    p99_only = _test("S", "Tail", 0.0, [("ws_delivery_p99_ms", 80.0, "ms", None, "<=")])
    result = {k.spec.key: k for k in kpis.evaluate({"tests": [p99_only]})}
    assert not result["ws_delivery_time"].measured  # a p99 is no average
    assert (
        "no test that ran recorded WebSocket delivery samples" in result["ws_delivery_time"].reason
    )
    # The e2e target bounds every delivery, so it takes each test's maximum, never its average.
    cross = _test(
        "E2E", "Cross Node", 0.0, [("cross_node_latency_p99_ms", 90.0, "ms", 1000.0, "<=")]
    )
    cross["samples"] = _samples("cross_node_latency_ms", [10.0, 20.0, 900.0])
    e2e = {k.spec.key: k for k in kpis.evaluate({"tests": [cross]})}["e2e_duration"]
    assert e2e.value == 900.0 and e2e.test == "Cross Node"


def test_the_percentile_chart_draws_no_average_target(tmp_path: Path) -> None:
    hot = _test("Stress", "Hot Room", 5.0, [])
    values = [float(v % 97) for v in range(2000)]
    hot["samples"] = _samples("ws_delivery_ms", values) | _samples("cross_node_latency_ms", values)
    html = page.render(page.PageInput({"tests": [hot], "samples": {
        "ws_delivery_ms": {"unit": "ms", "values": values},
        "cross_node_latency_ms": {"unit": "ms", "values": values},
    }}))  # fmt: skip
    chart = html[html.index("By percentile") :]
    chart = chart[chart.index("<svg") : chart.index("</svg>")]
    assert "every delivery ≤ 1000 ms" in chart  # a bound on the maximum bounds every percentile
    assert "50 ms" not in chart and "seed target" not in chart  # the 50 ms average target


@pytest.mark.parametrize(
    ("before", "after", "op", "regressed"),
    [
        (10.0, 12.1, "<=", True),
        (10.0, 11.9, "<=", False),
        (10.0, 5.0, "<=", False),
        (100.0, 79.0, ">=", True),
        (100.0, 81.0, ">=", False),
        (100.0, 200.0, ">=", False),
    ],
)
def test_regression_is_more_than_20_percent_worse(
    before: float, after: float, op: str, regressed: bool
) -> None:
    better = compare.direction(op, 1.0, "ms")
    assert compare.Change("x", before, after, "ms", better).regressed is regressed


def test_percentiles_of_a_known_distribution() -> None:
    hundred = [float(v) for v in range(100, 0, -1)]  # any order
    assert stats.percentile(sorted(hundred), 50) == pytest.approx(50.0, abs=0.5)
    assert stats.summarize(hundred)["p99"] == pytest.approx(99.0, abs=0.02)


def test_a_percentile_needs_enough_samples() -> None:
    assert [stats.min_samples(p) for p in (50, 90, 99, 99.9)] == [2, 10, 100, 1000]
    assert not stats.has_enough(999, 99.9) and stats.has_enough(1000, 99.9)
    fifty = stats.summarize([float(v) for v in range(50)])
    assert fifty["p90"] is not None and fifty["p99"] is None and fifty["p99.9"] is None
    assert stats.summarize([1.0])["p50"] is None  # one sample has no median worth the name
    test = _test("S", "Fifty Deliveries", 0.0, [])
    test["samples"] = _samples("ws_delivery_ms", [float(v) for v in range(50)])
    html = page.render(page.PageInput({"tests": [test], "samples": {}}))
    assert stats.PERCENTILE_RULE in html.replace("&#x27;", "'")
    row = re.search(r"<tr[^>]*><td>Fifty Deliveries.*?</tr>", html)
    assert row is not None and row.group(0).count("n too small") == 2  # p99 and p99.9


def test_sampler_records_rss_and_cpu_of_a_live_process() -> None:
    target = Recorder()
    probe = sampler.ProcessSampler(os.getpid(), prefix="probe", target=target)
    assert probe.sample_once() is True
    assert target.series["probe_rss_mib"]["points"][0][1] > 1.0
    assert "probe_cpu_pct" in target.series


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SUT_URL")
    }
    full.update(env)
    return subprocess.run(
        [PYTHON, str(ROOT / "scripts" / "health.py"), "--timeout", "3"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_fails_with_a_clear_line_for_a_closed_port() -> None:
    port = _free_port()
    done = _health(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/ccs",
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        }
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"FAIL PostgreSQL 127.0.0.1:{port}/ccs: connection refused — start it with:"
    )
    assert lines[1].startswith(f"FAIL Redis 127.0.0.1:{port}: connection refused — start it")
    assert lines[2].startswith("SKIP Server: SUT_URL not set")


def test_health_passes_against_the_shared_services() -> None:
    url = database_url_for("postgres")
    done = _health({"DATABASE_URL": url})
    assert done.returncode == 0, done.stdout
    where = re.escape(urlsplit(url).netloc.rpartition("@")[2])
    assert re.match(rf"OK   PostgreSQL {where}/postgres \(\d+\.\d+", done.stdout)


@contextlib.contextmanager
def _health_server(status: int) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "status": "ok" if status == 200 else "degraded",
                    "database": "ok" if status == 200 else "down",
                }
            ).encode()
            self.send_response(status if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "code", "prefix"), [(200, 0, "OK   Server"), (503, 1, "FAIL Server")]
)
def test_health_checks_the_server_when_sut_url_is_set(status: int, code: int, prefix: str) -> None:
    with _health_server(status) as url:
        done = _health({"DATABASE_URL": database_url_for("postgres"), "SUT_URL": url})
    assert done.returncode == code, done.stdout
    server_line = done.stdout.splitlines()[2]
    assert server_line.startswith(f"{prefix} {url}")
    assert ("database down" in server_line) == (status == 503)


LISTENING_CHILD = (
    "import socket, sys\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
)


def test_sampler_finds_the_server_listening_on_a_local_sut_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = subprocess.Popen(
        [PYTHON, "-c", LISTENING_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        # Another kit test may have left a server PID behind; it would rightly win over SUT_URL.
        monkeypatch.setattr(sampler, "kit_target", lambda: None)
        monkeypatch.delenv("CCS_SERVER_PID", raising=False)
        monkeypatch.setenv("SUT_URL", f"http://127.0.0.1:{port}")
        assert sampler.server_pid() == child.pid
        monkeypatch.setenv("SUT_URL", f"http://192.0.2.1:{port}")  # not this machine: no guess
        assert sampler.server_pid() is None
    finally:
        child.communicate("", timeout=10)


def test_a_tiny_timing_change_is_not_a_regression() -> None:
    assert not compare.Change("x", 0.3, 0.5, "ms", "lower").regressed  # +67 %, 0.2 ms
    assert compare.Change("x", 3.0, 5.0, "ms", "lower").regressed


def test_kpis_from_different_figures_are_not_compared() -> None:
    def run(tests: list[dict[str, Any]]) -> list[kpis.KpiResult]:
        return kpis.evaluate({"tests": tests})

    steady = _test("S", "Steady", 0.0, [("ws_delivery_avg_ms", 6.0, "ms", 50.0, "<=")])
    other = _test("S", "Other", 0.0, [("ws_delivery_avg_ms", 30.0, "ms", 50.0, "<=")])
    same = compare.kpi_changes(run([other]), run([_test("S", "Other", 0.0, []), steady]), 20)
    assert "ws_delivery_time" not in same  # Steady's figure last time, Other's now
    again = compare.kpi_changes(run([{**steady, "metrics": other["metrics"]}]), run([steady]), 20)
    assert again["ws_delivery_time"].regressed


def test_the_previous_run_is_the_newest_one_that_ran_the_same_tests(tmp_path: Path) -> None:
    def doc(run_id: str, start: float, names: list[str]) -> dict[str, Any]:
        return _process_doc(run_id, 1, start, [_test("S", n, start, []) for n in names])

    history = tmp_path / "history"
    store.write_json(history / "metrics-a.json", doc("full-old", 100.0, ["A", "B", "C"]))
    store.write_json(history / "metrics-b.json", doc("one-suite", 200.0, ["A"]))
    store.write_json(history / "metrics-c.json", doc("unrelated", 250.0, ["Z"]))
    current = doc("full-new", 300.0, ["A", "B", "C"])
    previous = store.previous_run(history, current)
    assert previous is not None and previous["run"]["id"] == "full-old"
    only_a = store.previous_run(history, doc("a-new", 300.0, ["A", "X", "Y"]))
    assert only_a is not None and only_a["run"]["id"] == "one-suite"


def _kpi_cards(html: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="kpi \w+" data-kpi="(\w+)">(.*?)</div></div>', html))


def test_every_tile_agrees_with_the_sections_below_it() -> None:
    cross = _test("E2E", "Cross Node Delivery", 0.0, [])
    cross["samples"] = _samples("cross_node_latency_ms", [12.0, 30.0, 74.0])
    # The test's own summary of the same samples, a hair apart: the samples stay the tile's source.
    hot = _test("Stress", "Hot Room", 5.0, [("ws_delivery_avg_ms", 16.8004, "ms", 50.0, "<=")])
    hot["samples"] = _samples("ws_delivery_ms", [16.8] * 120) | _samples("db_op_ms", [2.0] * 120)
    rate = _test("Stress", "Steady Rate", 9.0, [("messages_per_s", 900.0, "msg/s", None, "<=")])
    slow = _test("Stress", "Slow Rate", 12.0, [("messages_per_s", 40.0, "msg/s", None, "<=")])
    run = {"tests": [cross, hot, rate, slow], "samples": {}}
    html = page.render(page.PageInput(run))
    cards = _kpi_cards(html)
    # A figure-based tile: its figure in the scenario row carries the same mark.
    assert '<div class="value">900 <small>msg/s' in cards["messages_per_s"]
    scenarios = html[html.index('<section id="scenarios">') : html.index('<section id="latency">')]
    assert re.search(
        r"messages_per_s</span> <b>900 msg/s</b>\s*<b[^>]*>★ Messages per second", scenarios
    )
    assert scenarios.count("★") == 1
    latency = html[html.index('<section id="latency">') :]
    latency = latency[: latency.index("</section>")]
    for key, label, value, test in (
        ("e2e_duration", "End-to-end duration", "74", "Cross Node Delivery"),
        ("ws_delivery_time", "WebSocket delivery time", "16.8", "Hot Room"),
        ("db_query_time", "Database query time", "2", "Hot Room"),
    ):
        assert f'<div class="value">{value} <small>ms' in cards[key], cards[key]
        assert f"“{test}”" in cards[key]
        assert f"{label}: not measured" not in latency  # the tile measured it: so does the section
        row = re.search(rf"<tr class=kpirow><td>{test}[^<]*<b[^>]*>★ [^<]*{label}.*?</tr>", latency)
        assert row is not None, f"no ★ row for {label} in the latency table"
        assert f'<td class="num">{value}</td>' in row.group(0)


def _suite_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "flow.robot").write_text(
        "*** Test Cases ***\nLight Delivery\n    No Operation\n"
        "Hot Room\n    [Tags]    stress\n    No Operation\n"
        "Kill The Database\n    [Tags]    fault\n    No Operation\n"
        "Hold Connections\n    No Operation\n"
    )
    return folder


def test_not_measured_always_says_why(tmp_path: Path) -> None:
    folder = _suite_dir(tmp_path)
    light = _test("Suites.Flow", "Light Delivery", 0.0, [])
    held = _test("Suites.Flow", "Hold Connections", 1.0, [], status="FAIL")
    run = {
        "run": {
            "sources": [str(folder)],
            "selection": {"include": [], "exclude": ["stress", "fault"]},
        },
        "tests": [light, held],
        "samples": {},
    }
    hot = _test("Suites.Flow", "Hot Room", 0.0, [("messages_per_s", 900.0, "msg/s", None, "<=")])
    capacity = ("concurrent_connections", 150.0, "connections", 100.0, ">=")
    earlier = {
        "run": {"id": "stress-run"},
        "tests": [hot, _test("Suites.Flow", "Hold Connections", 2.0, [capacity])],
    }
    left = coverage.left_out(run)
    assert left.total == 4 and left.ran == 2
    selection = {"include": [], "exclude": ["stress", "fault"]}
    by_tags = coverage.left_out_of([str(folder)], None, selection)  # what a pabot worker can tell
    assert (by_tags.total, by_tags.ran, by_tags.groups) == (4, 2, left.groups)
    assert left.groups == {
        "excluded by tag stress": ["Suites.Flow.Hot Room"],
        "excluded by tag fault": ["Suites.Flow.Kill The Database"],
    }
    html = page.render(page.PageInput(run, history=[earlier]))
    said = html.count(page.NOT_MEASURED)
    with_reason = len(
        re.findall(re.escape(page.NOT_MEASURED) + r"(</div><div class=\"detail\">why: | — )", html)
    )
    assert said >= 9 and said == with_reason, "a 'not measured' without a reason"
    cards = _kpi_cards(html)
    assert (
        "measured by “Hot Room” in run stress-run, which this run did not run: excluded by "
        "tag stress" in cards["messages_per_s"]
    )
    assert (
        "measured by “Hold Connections” in run stress-run, which failed in this run before "
        "recording it" in cards["connection_capacity"]
    )
    assert "2 tests excluded by tag" not in cards["messages_per_s"]
    uptime = cards["connection_uptime"]  # never measured before: what failed, what was left out
    assert "failed, so perhaps stopped before recording it: “Hold Connections”" in uptime
    assert "1 test excluded by tag stress" in uptime and "1 test excluded by tag fault" in uptime
    assert "fault suites not run in this run: excluded by tag fault" in html
    assert "2 of 4 tests not run" in html  # the header chip: "all passed" is not full coverage
    assert "excluded by tag stress" in html[: html.index('<section id="kpis">')]


def test_a_constant_series_is_named_not_drawn() -> None:
    series = {
        "server_db_connections": {"unit": "connections", "points": [[1.0, 10.0], [2.0, 10.0]]},
        "server_rss_mib": {"unit": "MiB", "points": [[1.0, 80.0], [2.0, 81.0], [3.0, 79.0]]},
    }
    run = {"run": {"started": 0.0}, "tests": [], "samples": {}, "series": series}
    assert charts.flat_series(run) == [("server_db_connections", 10.0, "connections", 2)]
    html = page.render(page.PageInput(run))
    assert "server_db_connections stayed at 10 connections in all 2 points" in html
    timeline = html[html.index('<section id="timeline">') :]
    assert "Server memory (RSS)" in timeline and "server_db_connections</text>" not in timeline
