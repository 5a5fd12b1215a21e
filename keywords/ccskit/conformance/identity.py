"""What a conformance report is about: the server that was tested and the kit that tested it."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[3]
# Written by the metrics listener: "<url> · version <v> (<source>) · health <h>".
LISTENER_KEY = "Server under test"


def kit_commit(root: Path = KIT_ROOT) -> str:
    """``git rev-parse HEAD`` of the kit, noting uncommitted changes; ``unknown`` outside git."""
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (with uncommitted changes)" if dirty else "") if commit else "unknown"


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def from_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """URL, version and health of the tested server from a run's top-level metadata.

    Reads what the metrics listener writes under ``Server under test``; a run may instead name
    ``Server`` and ``Server version`` with ``--metadata``. Unknown parts are left out.
    """
    found = {"url": metadata.get("Server", ""), "version": metadata.get("Server version", "")}
    parts = [part.strip() for part in metadata.get(LISTENER_KEY, "").split(" · ")]
    if len(parts) >= 2 and "://" in parts[0]:
        found["url"] = parts[0]
        version = parts[1].removeprefix("version ").split(" (")[0].split(" — ")[0].strip()
        found["version"] = "" if version == "unknown" else version
        if len(parts) >= 3:
            found["health"] = parts[2].removeprefix("health ")
    return {key: value for key, value in found.items() if value}


def ask_server(url: str, timeout: float = 5.0) -> dict[str, str]:
    """URL, version (``info.version`` of ``/openapi.json``) and health of a live server."""
    found = {"url": url}
    base = url.rstrip("/")
    api = _get_json(f"{base}/openapi.json", timeout)
    info = api.get("info") if api else None
    version = info.get("version") if isinstance(info, dict) else None
    if version:
        found["version"] = str(version)
    health = _get_json(f"{base}/health", timeout)
    if health:
        found["health"] = str(health.get("status", "?"))
    return found


def _get_json(url: str, timeout: float) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a degraded /health still carries its document
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def server_identity(
    metadata: Mapping[str, str], server: str | None = None, sut_url: str | None = None
) -> dict[str, str]:
    """Who was tested: ``server`` asked live when given, else the run's metadata, else the bare
    ``sut_url``; every field ``unknown`` that nothing told."""
    identity = {"url": "", "version": "", "health": ""}
    identity.update(from_metadata(metadata))
    if server:
        identity.update(ask_server(server))
    elif not identity["url"] and sut_url:
        identity["url"] = sut_url
    return {key: value or "unknown" for key, value in identity.items()}
