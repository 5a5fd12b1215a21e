"""`NothingHealed`: a test without a fault fails when the server repaired deliveries during it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from ccskit.context import KitContext
from ccskit.counters import counter_value
from ccskit.healing import NothingHealed
from robot.result import TestCase as RobotTest


class _Metrics(http.server.BaseHTTPRequestHandler):
    repaired = 0.0
    presence_repaired = 0.0

    def do_GET(self) -> None:
        body = (
            "# TYPE ccs_gaps_repaired_total counter\n"
            f"ccs_gaps_repaired_total {type(self).repaired}\n"
            "# TYPE ccs_presence_repairs_total counter\n"
            f"ccs_presence_repairs_total {type(self).presence_repaired}\n"
        ).encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Metrics.repaired = _Metrics.presence_repaired = 0.0
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _run(watch: NothingHealed, tags: list[str], repaired_during: float) -> RobotTest:
    result = RobotTest(name="t", tags=tags, status="PASS")
    watch.start_test(None, result)
    _Metrics.repaired += repaired_during
    watch.end_test(None, result)
    return result


def _watch(url: str) -> NothingHealed:
    ctx = KitContext()
    ctx.target.base_url = url
    return NothingHealed(ctx)


def test_a_repair_during_a_test_without_a_fault_fails_it(server: str) -> None:
    result = _run(_watch(server), ["seed-1.1"], repaired_during=2)
    assert result.status == "FAIL"
    assert "its repair sweep delivered 2 message(s)" in result.message
    assert "ccs_gaps_repaired_total 0 -> 2" in result.message


def test_a_presence_repair_during_a_test_without_a_fault_fails_it(server: str) -> None:
    watch = _watch(server)
    result = RobotTest(name="t", tags=["seed-1.2"], status="PASS")
    watch.start_test(None, result)
    _Metrics.presence_repaired += 1
    watch.end_test(None, result)
    assert result.status == "FAIL"
    assert "its lease keeper set 1 device(s) offline" in result.message
    assert "ccs_presence_repairs_total 0 -> 1" in result.message
    assert "repair sweep" not in result.message


def test_no_repair_leaves_the_test_passing(server: str) -> None:
    assert _run(_watch(server), ["seed-1.1"], repaired_during=0).status == "PASS"


@pytest.mark.parametrize("tag", ["fault", "stress"])
def test_fault_and_stress_tests_may_need_repairs(server: str, tag: str) -> None:
    assert _run(_watch(server), [tag], repaired_during=3).status == "PASS"


def test_a_failed_test_keeps_its_own_message(server: str) -> None:
    watch = _watch(server)
    result = RobotTest(name="t", status="FAIL", message="the real fault")
    watch.start_test(None, result)
    _Metrics.repaired += 1
    watch.end_test(None, result)
    assert (result.status, result.message) == ("FAIL", "the real fault")


def test_a_server_without_the_counter_is_not_checked(server: str) -> None:
    assert counter_value(server + "/nothing-here", "ccs_gaps_repaired_total") is None
    assert _run(_watch(server + "/nothing-here"), [], repaired_during=1).status == "PASS"
