"""Robot Framework listener (API v3) that writes this process's measured figures to a JSON file.

Usage::

    robot --listener keywords/CCSMetricsListener.py --outputdir results suites/
    robot --listener keywords/CCSMetricsListener.py:/path/to/metrics/folder ...

At each test end it attaches what keyword libraries recorded with ``ccskit.metrics.recorder``
(figures with units, thresholds and pass/fail) to the test's name, suite, tags, status and times.
Figures recorded in a suite setup or teardown go to a ``Suite Setup / Teardown`` entry of that
suite. The file ``metrics-<pid>.json`` (schema in ``ccskit.metrics``) is rewritten at each suite end
and at close, with the process's samples, series and fault timeline; pabot runs one robot process
per item, each writes its own file and ``scripts/merge_metrics.py`` merges them.

Where the file goes: the listener argument, else ``CCS_METRICS_DIR``, else ``<output dir>/metrics``
(for pabot the folder above ``pabot_results``, so every worker writes next to the others).
The server's RSS and CPU are sampled in a background thread whenever its PID is known
(``ctx.target.pid`` of the ``CCS`` library, ``CCS_SERVER_PID``, or the process listening on a
local ``SUT_URL``); under pabot only the workers of pool 0 sample. Runs are told apart by
``CCS_RUN_ID`` (set it in the runner so pabot workers share it); without it the pabot parent
process, or this process, names the run. The top suite gets a ``Performance report`` metadata link
to ``performance-report.html`` unless the runner set one with ``--metadata``, and the run's
metadata (tags included and excluded, what the selection left out, the kit's commit, the machine
and the server under test with its version) so ``report.html`` says what "all passed" covered.
Each test entry carries a summary of the latency samples recorded during that test, so the report
can name the test a figure came from.
"""

from __future__ import annotations

import copy
import os
import platform
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from ccskit.metrics import Metric, recorder
from ccskit.report import coverage, runinfo, sampler, stats, store

SUITE_ENTRY = "Suite Setup / Teardown"
REPORT_LINK_NAME = "Performance report"
REPORT_LINK = "[performance-report.html|performance-report.html] (written by make report)"
WRITE_EVERY_S = 5.0
META_INCLUDED = "Tags included"
META_EXCLUDED = "Tags excluded"
META_LEFT_OUT = "Left out"
META_COMMIT = "Kit commit"
META_MACHINE = "Machine"
META_SERVER = "Server under test"


def _epoch(moment: datetime | None) -> float | None:
    # Robot's times are naive local times; timestamp() reads them as local, which is right.
    return moment.timestamp() if moment is not None else None


def _variable(name: str) -> Any:
    try:
        from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

        return BuiltIn().get_variable_value(name)
    except (ImportError, RobotNotRunningError):
        return None


def metrics_folder(argument: str, output_dir: str | None) -> Path:
    """Where this process writes: argument, ``CCS_METRICS_DIR``, or next to the run's output."""
    if argument:
        return Path(argument)
    if os.environ.get("CCS_METRICS_DIR"):
        return Path(os.environ["CCS_METRICS_DIR"])
    base = Path(output_dir) if output_dir else Path("results")
    parts = base.resolve().parts
    if "pabot_results" in parts:
        base = Path(*parts[: parts.index("pabot_results")])
    return base / "metrics"


def run_id(started: float) -> str:
    """``CCS_RUN_ID``, else the pabot parent process, else this process: shared by one run."""
    if os.environ.get("CCS_RUN_ID"):
        return os.environ["CCS_RUN_ID"]
    try:
        for parent in psutil.Process().parents():
            if any("pabot" in part for part in parent.cmdline()):
                return f"pabot-{parent.pid}-{int(parent.create_time())}"
    except psutil.Error:
        pass
    return f"robot-{os.getpid()}-{int(started)}"


class CCSMetricsListener:
    """Attach recorded figures to tests and write ``metrics-<pid>.json`` (listener API v3)."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, folder: str = "") -> None:
        self._argument = folder
        self._path: Path | None = None
        self._run: dict[str, Any] = {}
        self._tests: list[dict[str, Any]] = []
        self._suite_metrics: dict[str, list[Metric]] = {}
        self._suite_samples: dict[str, dict[str, dict[str, Any]]] = {}
        self._last_write = 0.0

    def start_suite(self, data: Any, result: Any) -> None:
        if self._path is None:
            self._begin(data)
            self._describe(data, result)
        self._park_leftovers(result.full_name)

    def start_test(self, data: Any, result: Any) -> None:
        # Anything recorded before this test started belongs to the suite setup.
        self._park_leftovers(result.parent.full_name)

    def end_test(self, data: Any, result: Any) -> None:
        entry = self._entry(result, result.parent.full_name, result.name, recorder.take_current())
        entry["samples"] = _sample_summaries(recorder.take_current_samples())
        self._tests.append(entry)
        self._note_server()

    def end_suite(self, data: Any, result: Any) -> None:
        self._park_leftovers(result.full_name)
        parked = self._suite_metrics.pop(result.full_name, [])
        parked_samples = self._suite_samples.pop(result.full_name, {})
        if parked or parked_samples:
            entry = self._entry(result, result.full_name, SUITE_ENTRY, parked)
            entry["kind"] = "suite"
            entry["status"] = _fixture_status(result)
            entry["samples"] = _sample_summaries(parked_samples)
            self._tests.append(entry)
        if result.parent is None:
            # The link works from report.html because both pages live in the output folder.
            result.metadata.setdefault(REPORT_LINK_NAME, REPORT_LINK)
            self._note_server()
            result.metadata[META_SERVER] = runinfo.server_text(self._run.get("server"))
        if result.parent is None or time.monotonic() - self._last_write > WRITE_EVERY_S:
            self._write()

    def close(self) -> None:
        sampler.stop_all()
        self._write()

    def _begin(self, data: Any) -> None:
        started = time.time()
        self._path = metrics_folder(self._argument, _variable("${OUTPUT DIR}"))
        self._path = self._path / f"metrics-{os.getpid()}.json"
        self._run = {
            "id": run_id(started),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": started,
            "ended": None,
            "robot_version": _robot_version(),
            "python": platform.python_version(),
            "pabot_pool_id": _variable("${PABOTEXECUTIONPOOLID}"),
            "sources": _sources(data),
            "selection": runinfo.tag_selection(_variable("${OPTIONS}")),
            "commit": runinfo.kit_commit(),
            "machine": runinfo.machine(),
            "server": None,
        }
        # Under pabot only pool 0 samples: every worker watching one server would double the chart.
        if str(self._run["pabot_pool_id"] or 0) == "0":
            # Follows the server's PID as the CCS library sets it (or CCS_SERVER_PID, or whoever
            # listens on a local SUT_URL); idle while unknown.
            sampler.watch(sampler.server_pid(), source=sampler.server_pid)

    def _describe(self, data: Any, result: Any) -> None:
        """Run metadata on the top suite, so robot's own report says what the run covered."""
        include, exclude = runinfo.selection_text(self._run["selection"])
        metadata = {
            META_INCLUDED: include,
            META_EXCLUDED: exclude,
            META_COMMIT: self._run["commit"],
            META_MACHINE: runinfo.machine_text(self._run["machine"]),
        }
        # A pabot worker runs a share of the suites: only the tag selection says what the run left.
        pabot = self._run["pabot_pool_id"] is not None
        selected = None if pabot else {test.full_name for test in data.all_tests}
        gap = coverage.left_out_of(self._run["sources"], selected, self._run["selection"])
        metadata[META_LEFT_OUT] = coverage.summary_text(gap) + (" (by tags)" if pabot else "")
        for name, value in metadata.items():
            result.metadata.setdefault(name, value)

    def _note_server(self) -> None:
        """Ask the server under test for its version once its URL is known (once per process)."""
        if self._run.get("server") is not None:
            return
        url = _server_url()
        if url:
            self._run["server"] = runinfo.server_info(url)

    def _park_leftovers(self, suite: str) -> None:
        leftovers = recorder.take_current()
        if leftovers:
            self._suite_metrics.setdefault(suite, []).extend(leftovers)
        samples = recorder.take_current_samples()
        parked = self._suite_samples.setdefault(suite, {})
        for name, entry in samples.items():
            into = parked.setdefault(name, {"unit": entry["unit"], "values": []})
            into["values"].extend(entry["values"])
        if not parked:
            del self._suite_samples[suite]

    @staticmethod
    def _entry(result: Any, suite: str, name: str, metrics: list[Metric]) -> dict[str, Any]:
        entry = {
            "suite": suite,
            "test": name,
            "id": result.id,
            "tags": [str(tag) for tag in getattr(result, "tags", [])],
            "status": result.status,
            "start": _epoch(result.start_time),
            "end": _epoch(result.end_time),
            "elapsed_s": result.elapsed_time.total_seconds(),
            "metrics": [m.as_dict() for m in metrics],
        }
        if result.status == "FAIL" and result.message:
            entry["message"] = str(result.message)[:500]
        return entry

    def _write(self) -> None:
        if self._path is None:
            return
        self._run["ended"] = time.time()
        # Keyword libraries and samplers append from other threads: copy under the recorder's lock.
        with recorder._lock:
            samples = copy.deepcopy(recorder.samples)
            series = copy.deepcopy(recorder.series)
            faults = copy.deepcopy(recorder.faults)
        doc = {
            "run": self._run,
            "tests": self._tests,
            "samples": samples,
            "series": series,
            "faults": faults,
        }
        store.write_json(self._path, doc)
        self._last_write = time.monotonic()


def _sources(data: Any) -> list[str]:
    """The paths robot was given: the top suite's source, or its children's for several paths."""
    if getattr(data, "source", None):
        return [str(data.source)]
    return [str(child.source) for child in getattr(data, "suites", []) if child.source]


def _server_url() -> str:
    url = getattr(sampler.kit_target(), "base_url", "")
    return str(url) if url else os.environ.get("SUT_URL", "").strip()


def _sample_summaries(samples: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per sample name: unit, count, mean, min, max and the percentiles its count supports."""
    return {
        name: {"unit": entry["unit"], **stats.rounded(stats.summarize(entry["values"]))}
        for name, entry in samples.items()
        if entry.get("values")
    }


def _robot_version() -> str | None:
    try:
        from robot.version import VERSION

        return VERSION
    except ImportError:
        return None


def _fixture_status(suite: Any) -> str:
    """FAIL when the suite's own setup or teardown failed; a failing test is not the fixture's."""
    fixtures = [k for k in (suite.setup, suite.teardown) if k]
    return "FAIL" if any(k.status == "FAIL" for k in fixtures) else "PASS"
