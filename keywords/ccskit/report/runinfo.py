"""What a run was: the kit's commit, the machine, the tag selection and the server under test.

The listener stores this in each metrics file (``run`` object) and as Robot suite metadata, and the
report prints it in its header, so "all passed" never reads as more coverage than the run had.
Everything here answers ``"unknown"`` (with the reason) rather than guess.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

KIT_ROOT = Path(__file__).resolve().parents[3]
# What scripts/run_suites.py (make run) leaves out unless told otherwise: stated on every report.
RUNNER_DEFAULT_EXCLUDES = ("stress", "fault")
HTTP_TIMEOUT_S = 2.0


def kit_commit(root: Path = KIT_ROOT) -> str:
    """``git rev-parse --short HEAD`` of the kit (``+dirty`` with local edits), else ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if head and dirty else head or "unknown"


def machine() -> dict[str, Any]:
    """Host name, logical cores and memory of this machine."""
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def machine_text(info: dict[str, Any] | None) -> str:
    """``host · 2 cores · 7.8 GiB`` for a header line."""
    if not info:
        return "unknown"
    return (
        f"{info.get('hostname', '?')} · {info.get('cores', '?')} cores · "
        f"{info.get('memory_gib', '?')} GiB"
    )


def tag_selection(options: Any) -> dict[str, list[str]]:
    """Included and excluded tag patterns from Robot's ``&{OPTIONS}`` (empty lists when absent)."""

    def listed(key: str) -> list[str]:
        value = None
        if isinstance(options, dict):
            value = options.get(key)
        elif options is not None:
            value = getattr(options, key, None)
        return [str(v) for v in value] if value else []

    return {"include": listed("include"), "exclude": listed("exclude")}


def _get_json(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 503 still carries the health document
        status, body = exc.code, exc.read()
    doc = json.loads(body.decode("utf-8") or "{}")
    return status, doc if isinstance(doc, dict) else {}


def server_info(base_url: str) -> dict[str, Any]:
    """URL, version and health of the server: ``GET /health``, then ``/openapi.json``'s version.

    A server that says nothing about its version is recorded as ``unknown`` with the reason.
    """
    base = base_url.rstrip("/")
    info: dict[str, Any] = {"url": base, "version": "unknown"}
    try:
        status, health = _get_json(f"{base}/health")
        info["health"] = f"{health.get('status', '?')} (HTTP {status})"
        if health.get("version"):
            info["version"] = str(health["version"])
            info["version_source"] = "GET /health"
        if health.get("node_id"):
            info["node_id"] = str(health["node_id"])
    except (OSError, ValueError) as exc:
        info["health"] = f"unreachable: {exc}"
    if info["version"] == "unknown":
        try:
            _status, spec = _get_json(f"{base}/openapi.json")
            api = spec.get("info", {}) if isinstance(spec.get("info"), dict) else {}
            if api.get("version"):
                info["version"] = str(api["version"])
                info["version_source"] = f"GET /openapi.json ({api.get('title', 'info')})"
        except (OSError, ValueError) as exc:
            info["version_reason"] = f"no version: GET /openapi.json failed ({exc})"
    if info["version"] == "unknown" and "version_reason" not in info:
        info["version_reason"] = "neither GET /health nor GET /openapi.json names a version"
    return info


def server_text(info: dict[str, Any] | None) -> str:
    """``http://127.0.0.1:8080 · version 1.0 (GET /openapi.json …) · health ok`` for a header."""
    if not info or not info.get("url"):
        return "unknown: no test of this run reached a server"
    source = f" ({info['version_source']})" if info.get("version_source") else ""
    reason = f" — {info['version_reason']}" if info.get("version_reason") else ""
    return (
        f"{info['url']} · version {info.get('version', 'unknown')}{source}{reason} · "
        f"health {info.get('health', 'unknown')}"
    )


def selection_text(selection: dict[str, list[str]] | None) -> tuple[str, str]:
    """Human text of the included and excluded tag patterns."""
    selection = selection or {}
    include = ", ".join(selection.get("include", [])) or "all (no --include)"
    exclude = ", ".join(selection.get("exclude", [])) or "none"
    return include, exclude
