"""A real distributed run: reference server, Locust master and two workers, the checker over all.

Slow-ish (about 20 s): it starts a server on a fresh database and three Locust processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ccskit.distributed.figures import metrics
from ccskit.distributed.launch import Options, describe, run


@pytest.mark.timeout(240)
def test_two_workers_deliver_everything_and_the_figures_agree(tmp_path: Path) -> None:
    opts = Options(
        workers=2,
        rooms=4,
        members=5,
        rate=10.0,
        duration_s=6.0,
        receipt_every_s=1.0,
        drain_s=15.0,
        results=tmp_path / "results.json",
        metrics_dir=None,
        logs=tmp_path,
    )
    outcome = run(opts)
    text = describe(outcome)
    assert outcome["ok"], text
    t = outcome["totals"]
    assert (t["devices"], t["connected"], t["connect_failed"]) == (20, 20, 0), text
    assert t["acked"] == t["attempted"] > 100, text
    # every acked message reached all five members of its room, on both workers
    assert t["deliveries"] == t["expected_deliveries"] == 5 * t["acked"], text
    assert set(outcome["per_worker"]) == {"0", "1"}
    assert all(w["connected"] == 10 for w in outcome["per_worker"].values())
    # Locust's own statistics were fed every delivery and ack before the master read them
    locust = outcome["locust"]
    assert locust["deliver"]["count"] == t["deliveries"], locust
    assert locust["send->ack"]["count"] == t["acked"], locust
    assert locust["connect"]["count"] == 20, locust
    assert t["receipt_answers"].get("ack", 0) > 0, t["receipt_answers"]
    assert outcome["master_exit_code"] == 0
    failed = [m.name for m in metrics(outcome) if m.passed is False]
    assert not [n for n in failed if not n.endswith("_ms")], failed
