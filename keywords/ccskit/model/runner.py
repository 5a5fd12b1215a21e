"""Run model walks for a seed and a time budget; keep the shrunk reproduction of a failure.

A run is a series of batches; batch ``i`` of seed ``S`` is Hypothesis' seed ``S * 1000 + i``,
so ``S`` replays the whole run and ``S.i`` starts at batch ``i`` (the one that failed).
"""

from __future__ import annotations

import os
import secrets
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import Flaky
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import run_state_machine_as_test

from ..client import DeviceClient
from ..ids import unique_id
from ..loop import shared_loop
from ..server import ServerProcess
from ..tokens import mint_token
from .driver import rest_client
from .machine import ENV, ModelWalk
from .state import OPEN_QUESTIONS, Limits

#: The model's own node: limits small enough that a short walk reaches every one of them.
NODE_LIMITS = {
    "CCS_REPLAY_LIMIT": "3",
    "CCS_MAX_CONNECTIONS_PER_USER": "3",
    "CCS_MAX_BODY_BYTES": "8192",
    "CCS_PRESENCE_GRACE_MS": "100",
    "CCS_HEARTBEAT_INTERVAL_MS": "500",
    "CCS_HEARTBEAT_TIMEOUT_MS": "2000",
}


@dataclass
class RunResult:
    """What a run did and, when a walk failed, its shrunk reproduction."""

    seed: str
    batches: int = 0
    walks: int = 0
    steps: int = 0
    seconds: float = 0.0
    failed: bool = False
    english: str = ""
    robot: str = ""
    error: str = ""
    used: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rules = ", ".join(f"{k} {v}" for k, v in sorted(self.used.items()))
        text = (
            f"model run seed {self.seed}: {self.walks} walks, {self.steps} steps in "
            f"{self.seconds:.1f} s ({self.batches} batches); steps per rule: {rules}"
        )
        for action, why in sorted(self.unsupported.items()):
            text += f"\nNOT SUPPORTED by the target: {action} ({why})"
        text += "\nopen questions the model tolerates: " + "; ".join(OPEN_QUESTIONS.values())
        return text


def new_seed() -> str:
    return str(secrets.randbelow(10**6))


def parse_seed(text: str) -> tuple[int, int]:
    """``"1234"`` -> (1234, 0); ``"1234.7"`` -> (1234, 7): batch 7 of seed 1234."""
    base, _, batch = str(text).partition(".")
    return int(base), int(batch or 0)


def limits_of(base_url: str, own_node: bool) -> tuple[Limits, dict[str, str]]:
    """The target's limits: announced in ``welcome.limits``, plus what the kit configured."""
    from ..config import ws_url_for

    unsupported: dict[str, str] = {}
    api = rest_client(base_url)
    user, device = unique_id("m-probe"), unique_id("m-probe-d")
    api.call("POST", "/v1/users", json={"user_id": user})
    api.call("POST", f"/v1/users/{user}/devices", json={"device_id": device})
    client = DeviceClient("model-probe", ws_url_for(base_url), mint_token(user, device))
    announced: dict[str, Any] = {}
    try:
        shared_loop().run(client.open(timeout_s=5.0), 10.0)
    finally:
        shared_loop().run(client.close(), 10.0)
    for frame in client.frames:
        if frame.type == "welcome" and frame.data:
            announced = frame.data.get("limits") or {}
    if own_node:
        replay: int | None = int(NODE_LIMITS["CCS_REPLAY_LIMIT"])
        cap: int | None = int(NODE_LIMITS["CCS_MAX_CONNECTIONS_PER_USER"])
    else:
        replay = int(os.environ["CCS_REPLAY_LIMIT"]) if os.environ.get("CCS_REPLAY_LIMIT") else None
        cap_env = os.environ.get("CCS_MAX_CONNECTIONS_PER_USER")
        cap = int(cap_env) if cap_env else None
        if replay is None:
            unsupported["resume at the replay limit"] = "set CCS_REPLAY_LIMIT to the target's"
        if cap is None:
            unsupported["connection cap"] = "set CCS_MAX_CONNECTIONS_PER_USER to the target's"
    limits = Limits(
        max_body_bytes=int(announced.get("max_body_bytes", NODE_LIMITS["CCS_MAX_BODY_BYTES"])),
        max_frame_bytes=int(announced.get("max_frame_bytes", 65536)),
        history_limit_max=int(announced.get("history_limit_max", 100)),
        replay_limit=replay,
        max_connections_per_user=cap,
        offline_after_drop_s=3.0 if own_node else 25.0,
    )
    return limits, unsupported


def node_env() -> dict[str, str]:
    """The model node's environment. Its id is unique: nodes sharing an id on one database take
    each other's devices for their own and repair their presence to offline."""
    return {**NODE_LIMITS, "CCS_NODE_ID": unique_id("model-node")}


def start_node(log_dir: Path) -> ServerProcess:
    """A node of the server under test with the model's limits (``CCS_SERVER_COMMAND`` and
    ``CCS_SERVER_PATH`` choose which server)."""
    node = ServerProcess(env=node_env(), log_dir=log_dir)
    node.start(60.0)
    return node


def run(
    base_url: str,
    database_url: str,
    seed_text: str,
    budget_s: float,
    limits: Limits,
    outdir: Path,
    steps_per_walk: int = 25,
    walks_per_batch: int = 10,
    unsupported: dict[str, str] | None = None,
    scale: float = 1.0,
    shrink_s: int = 120,
) -> RunResult:
    """Walk until the budget is spent or a walk fails (then shrink it and keep the result)."""
    # Every shrinking attempt replays a walk on real sockets: bound the whole search.
    engine.MAX_SHRINKING_SECONDS = shrink_s  # type: ignore[misc]
    base, batch = parse_seed(seed_text)
    result = RunResult(seed=seed_text)
    ENV.base_url, ENV.database_url, ENV.limits, ENV.scale = base_url, database_url, limits, scale
    ENV.unsupported, ENV.used = dict(unsupported or {}), {}
    ENV.last_failure = None
    started = time.monotonic()
    while result.batches == 0 or time.monotonic() - started < budget_s:
        walk_class = type(f"ModelWalk_{base}_{batch}", (ModelWalk,), {})
        seeded = seed(base * 1000 + batch)(walk_class)
        config = settings(
            max_examples=walks_per_batch,
            stateful_step_count=steps_per_walk,
            deadline=None,
            database=None,
            derandomize=False,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            phases=[Phase.generate, Phase.shrink],
            report_multiple_bugs=False,
        )
        walks_before = ENV.walks
        try:
            run_state_machine_as_test(seeded, settings=config)
        except Flaky as exc:
            _failed(result, f"{base}.{batch}", f"the failure did not repeat (flaky): {exc}")
        except Exception as exc:  # any failure of a walk ends the run
            _failed(result, f"{base}.{batch}", "".join(traceback.format_exception_only(exc)))
        result.batches += 1
        result.walks += ENV.walks - walks_before
        batch += 1
        if result.failed:
            break
    result.seconds = time.monotonic() - started
    result.used, result.unsupported = dict(ENV.used), dict(ENV.unsupported)
    result.steps = sum(result.used.values())
    if result.failed:
        _write(result, outdir)
    return result


def _failed(result: RunResult, where: str, error: str) -> None:
    # The last failing walk: after shrinking, the minimal one (even when its replay was flaky).
    walk = ENV.last_failure or ENV.last_walk
    result.failed, result.error = True, error
    result.seed = where
    if walk is not None:
        walk.seed = where
        result.english = walk.english()
        result.robot = walk.robot(f"Model Walk Seed {where} Reproduces")


def _write(result: RunResult, outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"model-failure-{result.seed}"
    Path(f"{stem}.txt").write_text(result.english + "\n\n" + result.error + "\n")
    Path(f"{stem}.robot").write_text(result.robot)
    result.files = [f"{stem}.txt", f"{stem}.robot"]
