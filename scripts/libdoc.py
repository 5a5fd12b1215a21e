#!/usr/bin/env python3
"""Render every keyword library and resource file to ``docs/keywords/<name>.html``."""

from __future__ import annotations

import sys
from pathlib import Path

from robot.libdoc import libdoc

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "keywords"


def sources() -> list[Path]:
    libraries = sorted(
        p
        for p in (ROOT / "keywords").glob("*.py")
        if not p.name.startswith("_") and "Listener" not in p.stem
    )
    resources = sorted((ROOT / "resources").glob("*.resource"))
    return [*libraries, *resources]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    failed = 0
    for source in sources():
        target = OUT / f"{source.stem}.html"
        # libdoc returns rc != 0 when a source cannot be parsed; keep rendering the rest.
        rc = libdoc(str(source), str(target), quiet=True)
        status = "ok" if rc == 0 else f"FAILED ({rc})"
        print(f"{source.relative_to(ROOT)} -> {target.relative_to(ROOT)}: {status}")
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
