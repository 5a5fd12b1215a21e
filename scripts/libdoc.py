#!/usr/bin/env python3
"""Render every keyword library and resource file to ``docs/_build/keywords/<name>.html``.

The pages are build output (git-ignored), so a test run leaves the clone clean; ``index.html``
in the same folder links them all.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

from robot.libdoc import libdoc

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_build" / "keywords"


def sources() -> list[Path]:
    """Keyword libraries (not listeners or private modules) and resource files, sorted."""
    libraries = sorted(
        p
        for p in (ROOT / "keywords").glob("*.py")
        if not p.name.startswith("_") and "Listener" not in p.stem
    )
    resources = sorted((ROOT / "resources").glob("*.resource"))
    return [*libraries, *resources]


def write_index(out: Path, pages: list[Path]) -> Path:
    """One page linking every rendered library and resource file."""
    items = "\n".join(
        f'<li><a href="{html.escape(p.name)}">{html.escape(p.stem)}</a></li>' for p in pages
    )
    index = out / "index.html"
    index.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>CCS kit keywords</title></head>"
        f"<body><h1>CCS kit keyword documentation</h1><ul>\n{items}\n</ul></body></html>\n",
        encoding="utf-8",
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT.relative_to(ROOT)}")
    out: Path = parser.parse_args(argv).out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed, pages = 0, []
    for source in sources():
        target = out / f"{source.stem}.html"
        # libdoc returns rc != 0 when a source cannot be parsed; keep rendering the rest.
        rc = libdoc(str(source), str(target), quiet=True)
        print(f"{source.relative_to(ROOT)} -> {target}: {'ok' if rc == 0 else f'FAILED ({rc})'}")
        failed += rc != 0
        if rc == 0:
            pages.append(target)
    print(f"index: {write_index(out, pages)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
