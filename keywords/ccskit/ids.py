"""Fixture ids unique per run, per pabot process and per call: ``<name>-<run>-<n>``."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import threading

_ALLOWED = re.compile(r"[^A-Za-z0-9_.:-]")
_counter = itertools.count(1)
_lock = threading.Lock()


def _run_tag() -> str:
    # pabot gives each process a pool id and each item a queue index; a random part keeps two
    # runs at the same moment (or two machines against one server) apart as well.
    pool = os.environ.get("PABOTEXECUTIONPOOLID", "")
    queue = os.environ.get("PABOTQUEUEINDEX", "")
    pabot = f"p{pool}q{queue}" if (pool or queue) else ""
    return f"{secrets.token_hex(3)}{pabot}"


RUN_TAG = _run_tag()


def unique_id(name: str) -> str:
    """A wire-safe id (<= 64 chars) that starts with ``name`` so logs stay readable."""
    with _lock:
        n = next(_counter)
    suffix = f"-{RUN_TAG}-{n}"
    base = _ALLOWED.sub("_", name)[: 64 - len(suffix)]
    return base + suffix
