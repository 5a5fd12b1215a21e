"""The CCS library: one shared context, keyword names unique across its keyword classes."""

from __future__ import annotations

import collections
import re
from pathlib import Path

from CCS import CCS
from ccskit.keywords import KEYWORD_CLASSES

KEYWORD_SOURCES = Path(__file__).resolve().parents[2] / "keywords" / "ccskit" / "keywords"


def _normalised(name: str) -> str:
    return re.sub(r"[\s_]", "", name).lower()  # how Robot matches keyword names


def test_every_keyword_class_shares_the_one_context() -> None:
    library = CCS()
    components = library.keywords  # robotlibcore: name -> bound method
    owners = {method.__self__ for method in components.values()}
    assert {type(o) for o in owners} == set(KEYWORD_CLASSES)
    assert all(o.ctx is library.ctx for o in owners)


def test_keyword_names_are_unique_and_documented() -> None:
    library = CCS()
    names = library.get_keyword_names()
    clashes = [n for n, c in collections.Counter(map(_normalised, names)).items() if c > 1]
    assert clashes == []
    undocumented = [n for n in names if not library.get_keyword_documentation(n).strip()]
    assert undocumented == []


def test_keyword_classes_share_state_only_through_the_context() -> None:
    forbidden = ("get_library_instance", "os.environ[", "os.environ.update", "putenv")
    offenders = [
        f"{path.relative_to(KEYWORD_SOURCES)}: {word}"
        for path in KEYWORD_SOURCES.rglob("*.py")
        for word in forbidden
        if word in path.read_text()
    ]
    assert offenders == []
