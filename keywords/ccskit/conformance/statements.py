"""The statements a server must honour: protocol statement ids and promises, read from the docs.

A protocol statement is marked ``[§4.2-c]`` in ``docs/protocol.md`` right where it is stated; its
key is ``4.2-c``. A promise is a paragraph opening with ``**P4 — title.**`` in
``docs/guarantees.md``; its key is ``P4``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATEMENT_MARK = re.compile(r"\[§(\d+(?:\.\d+)*-[a-z]{1,3})\]")
PROMISE_MARK = re.compile(r"^\*\*P(\d{1,2}) — ([^*]+?)\.?\*\*\s*(.*)$")
HEADING = re.compile(r"^(#{2,4})\s+(.*)$")
MAX_TEXT = 240


@dataclass(frozen=True)
class Statement:
    """One citable statement: ``key`` (``4.2-c`` or ``P4``), its section and a short text."""

    key: str
    section: str
    text: str
    source: str

    @property
    def label(self) -> str:
        """How a reader writes it: ``§4.2-c`` or ``P4``."""
        return self.key if self.key.startswith("P") else f"§{self.key}"


def _blocks(markdown: str) -> list[tuple[str, str]]:
    """``(section heading, block text)`` per paragraph, list item or table row."""
    section = ""
    blocks: list[tuple[str, str]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append((section, " ".join(current)))
            current.clear()

    in_code = False
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_code = not in_code
            flush()
            continue
        heading = None if in_code else HEADING.match(line)
        if heading:
            flush()
            section = heading.group(2).replace("`", "").strip()
        elif in_code or not line:
            flush()
        elif line.startswith("|"):
            flush()
            current.append(line)
            flush()
        else:
            # a list item starts a block; its indented continuation lines belong to it
            if line.startswith("- "):
                flush()
            current.append(line)
    flush()
    return blocks


def _clean(text: str) -> str:
    text = STATEMENT_MARK.sub("", text)
    text = re.sub(r"\s*\|\s*", " | ", text).strip(" |-")
    text = re.sub(r"[*`]", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


def _statement_text(block: str, start: int) -> str:
    """The sentence(s) a mark closes: from the previous mark (or block start) up to this mark."""
    previous = [m.end() for m in STATEMENT_MARK.finditer(block, 0, start)]
    text = _clean(block[previous[-1] if previous else 0 : start]).lstrip(".;:, ")
    return text or _clean(block)


def protocol_statements(path: Path) -> list[Statement]:
    """Every ``[§…]`` statement of the protocol document, in document order.

    Raises ``ValueError`` when an id is used twice: each statement has exactly one home.
    """
    found: dict[str, Statement] = {}
    for section, block in _blocks(path.read_text(encoding="utf-8")):
        for mark in STATEMENT_MARK.finditer(block):
            key = mark.group(1)
            if key in found:
                raise ValueError(f"{path.name}: statement §{key} is defined twice")
            text = _statement_text(block, mark.start())
            found[key] = Statement(key, section, text, path.name)
    return list(found.values())


def promises(path: Path) -> list[Statement]:
    """The promises ``P1`` … of the guarantees document, in document order."""
    found: list[Statement] = []
    for section, block in _blocks(path.read_text(encoding="utf-8")):
        match = PROMISE_MARK.match(block)
        if match:
            key = f"P{int(match.group(1))}"
            text = _clean(f"{match.group(2)}. {match.group(3)}")
            found.append(Statement(key, section, text, path.name))
    return found


def all_statements(docs: Path) -> list[Statement]:
    """Promises of ``docs/guarantees.md`` then statements of ``docs/protocol.md``."""
    return promises(docs / "guarantees.md") + protocol_statements(docs / "protocol.md")
