"""Keywords: model-based random walks (``ccskit.model``) and the node they run against."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn

from ..context import KitContext
from ..model import runner
from ..model.driver import Driver
from ..model.state import Limits
from ..server import ServerProcess

SIXTY_S = timedelta(seconds=60)


class ModelKeywords:
    """Generative testing: random walks of devices, checked step by step against a model.

    A walk creates its own users, devices and conversations, then takes random steps
    (connect, drop, resume, send, retry, edit, delete, receipts, history, presence, membership
    changes, direct SQL inserts, bad tokens), each drawn by Hypothesis and compared with the
    reference model of docs/protocol.md: the reply, the frames of every connected device, the
    rows of the database and the presence answers. A failing walk is shrunk to a minimal one
    and reported as numbered plain-English steps and as a ready-to-paste Robot test.

    | `Start Model Node`                                     |
    | `Run Model Walks` | seed=${MODEL_SEED} | budget=45s    |
    | `Stop Model Node`                                      |
    """

    def __init__(self, ctx: KitContext) -> None:
        self.ctx = ctx
        self._node: ServerProcess | None = None
        self._previous_url = ""
        self._own_node = False

    @keyword
    def start_model_node(self, timeout: timedelta = SIXTY_S) -> str:
        """Starts a node with the model's small limits (replay 3, 3 connections per user,
        8192-byte bodies) and makes it the server under test; returns its base URL.

        ``CCS_SERVER_COMMAND`` and ``CCS_SERVER_PATH`` choose which server is started. With
        ``CCS_MODEL_OWN_NODE=0`` nothing is started and the walks use the current server under
        test (``SUT_URL``); limits it does not announce are then reported as not supported.
        """
        self._previous_url = self.ctx.target.base_url
        if os.environ.get("CCS_MODEL_OWN_NODE", "").lower() in ("0", "false", "no"):
            self._own_node = False
            return self.ctx.target.require()
        self._node = ServerProcess(env=runner.node_env())
        base_url = self._node.start(self.ctx.scaled(timeout))
        self.ctx.target.base_url = base_url
        self._own_node = True
        logger.info(
            f"model node at {base_url} with {runner.NODE_LIMITS} (log {self._node.log_path})"
        )
        return base_url

    @keyword
    def stop_model_node(self) -> None:
        """Stops the model's node and points the kit back at the previous server under test."""
        if self._node is not None:
            self._node.stop()
            self._node = None
        self.ctx.target.base_url = self._previous_url

    @keyword
    def run_model_walks(
        self, seed: str = "", budget: timedelta = SIXTY_S, steps_per_walk: int = 25
    ) -> str:
        """Runs random walks for ``budget`` (``MODEL_BUDGET`` overrides it) from ``seed``
        (empty: ``MODEL_SEED``, else a fresh one); fails with the shrunk reproduction.

        The seed is logged first; ``SEED.BATCH`` replays from the batch that failed. Returns
        the run's summary: walks, steps, steps per rule, actions the target does not support.
        """
        seed = seed or os.environ.get("MODEL_SEED", "") or runner.new_seed()
        seconds = _budget_seconds(os.environ.get("MODEL_BUDGET", ""), budget.total_seconds())
        logger.console(
            f"\nmodel walks: seed {seed}, budget {seconds:.0f} s "
            f"(replay with: make model SEED={seed})"
        )
        logger.info(f"model walks: seed {seed}, budget {seconds:.0f} s")
        base_url = self.ctx.target.require()
        limits, unsupported = runner.limits_of(base_url, self._own_node)
        outdir = Path(BuiltIn().get_variable_value("${OUTPUT DIR}", "results"))
        result = runner.run(
            base_url,
            self.ctx.database_url,
            seed,
            seconds,
            limits,
            outdir,
            steps_per_walk=steps_per_walk,
            unsupported=unsupported,
            scale=self.ctx.config.timeout_scale,
        )
        summary = result.summary()
        logger.info(summary)
        for line in summary.splitlines():
            if line.startswith("NOT SUPPORTED"):
                logger.warn(line)
        if result.failed:
            logger.info(f"ready-to-paste Robot test ({', '.join(result.files)}):\n{result.robot}")
            raise AssertionError(
                f"model walk seed {result.seed} failed (replay: make model "
                f"SEED={result.seed})\n{result.english}\n\n{result.error}"
            )
        return summary

    @keyword
    def model_token(self, device: str, kind: str = "valid") -> str:
        """A device token of ``kind``: ``valid``, ``expired``, ``not-yet-valid``,
        ``bad-signature`` or ``other-users-device`` (signed for another user's device).

        | ${token}= | Model Token | u0-d0 | expired |
        """
        user_id, device_id = self.ctx.fixtures.device(device)
        driver = Driver.__new__(Driver)  # only its token minting is used: no connections
        driver.user_of = {device_id: user_id}
        other = next((d for u, d in self.ctx.fixtures.devices.values() if u != user_id), "")
        return driver.token(device_id, kind, other)

    @keyword
    def model_limits(self) -> Limits:
        """The limits the walks assume for the current server under test."""
        return runner.limits_of(self.ctx.target.require(), self._own_node)[0]


def _budget_seconds(text: str, default: float) -> float:
    """``MODEL_BUDGET`` as ``90``, ``90s``, ``10m`` or ``1h``; ``default`` when empty."""
    text = text.strip().lower()
    if not text:
        return default
    factor = {"s": 1, "m": 60, "h": 3600}.get(text[-1], 1)
    return float(text.rstrip("smh")) * factor
