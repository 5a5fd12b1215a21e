"""The mutation catalogue stays usable: every defect applies cleanly to the current server.

A refactor of ``ccs_server/`` that moves or rewrites a catalogued snippet turns this red
("stale mutation"), so the catalogue is updated in the same change instead of rotting.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ccs_mutation", ROOT / "scripts" / "mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


mutation = _load_script()
CATALOGUE = mutation.load_catalogue()


def test_catalogue_has_at_least_40_mutations_over_every_promise() -> None:
    covered = {p for m in CATALOGUE for p in m.promises}
    missing = [p for p in mutation.PROMISES if p not in covered]
    assert len(CATALOGUE) >= 40, f"expected >= 40 mutations, found {len(CATALOGUE)}"
    assert not missing, f"promises without a mutation: {missing}"


@pytest.mark.parametrize("entry", CATALOGUE, ids=[m.id for m in CATALOGUE])
def test_mutation_applies_to_the_current_server(entry: object, tmp_path: Path) -> None:
    copy = mutation.copy_server(tmp_path)
    target = copy / entry.file  # type: ignore[attr-defined]
    before = target.read_text(encoding="utf-8")
    mutation.apply(entry, copy)  # raises StaleMutation with where the snippet went
    after = target.read_text(encoding="utf-8")
    assert after != before, f"{entry.id}: applying changed nothing"  # type: ignore[attr-defined]
    original = (ROOT / entry.file).read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert original == before, "the repository's own ccs_server/ must never be mutated"


def _entry(tmp_path: Path, find: str, replace: str, **extra: object) -> Path:
    lines = [
        'id = "P07-sample"',
        'promises = ["P7"]',
        'title = "sample"',
        'description = "sample"',
        'file = "ccs_server/sample.py"',
        f"find = '''{find}'''",
        f"replace = '''{replace}'''",
        *(f"{key} = {value!r}" for key, value in extra.items()),
    ]
    path = tmp_path / "P07-sample.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _server(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "copy"
    (root / "ccs_server").mkdir(parents=True)
    (root / "ccs_server" / "sample.py").write_text(text, encoding="utf-8")
    return root


def test_a_snippet_found_twice_is_stale(tmp_path: Path) -> None:
    entry = mutation.load_mutation(_entry(tmp_path, "x = 1", "x = 2"))
    root = _server(tmp_path, "x = 1\nx = 1\n")
    with pytest.raises(mutation.StaleMutation, match="occurs 2 times"):
        mutation.apply(entry, root)


def test_a_snippet_that_moved_names_its_new_file(tmp_path: Path) -> None:
    entry = mutation.load_mutation(_entry(tmp_path, "x = 1", "x = 2"))
    root = _server(tmp_path, "y = 1\n")
    (root / "ccs_server" / "moved.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(mutation.StaleMutation, match=r"ccs_server/moved\.py"):
        mutation.apply(entry, root)


def test_the_chosen_occurrence_is_replaced(tmp_path: Path) -> None:
    entry = mutation.load_mutation(_entry(tmp_path, "x = 1", "x = 2", occurrence=2, count=2))
    root = _server(tmp_path, "x = 1\nx = 1\n")
    mutation.apply(entry, root)
    assert (root / "ccs_server" / "sample.py").read_text() == "x = 1\nx = 2\n"


def test_a_mutant_that_does_not_compile_is_refused(tmp_path: Path) -> None:
    entry = mutation.load_mutation(_entry(tmp_path, "x = 1", "x = (1"))
    with pytest.raises(mutation.CatalogueError, match="does not compile"):
        mutation.apply(entry, _server(tmp_path, "x = 1\n"))


def test_an_unknown_promise_is_refused(tmp_path: Path) -> None:
    path = _entry(tmp_path, "x = 1", "x = 2")
    path.write_text(path.read_text().replace('["P7"]', '["P19"]'), encoding="utf-8")
    with pytest.raises(mutation.CatalogueError, match="P19"):
        mutation.load_mutation(path)


def test_the_summary_counts_the_whole_kit_and_the_model_alone() -> None:
    def record(status: str, model: str | None, promises: list[str]) -> dict[str, object]:
        kit = status == "killed" and model != "killed"
        killed_by = (["unit"] if kit else []) + (["model"] if model == "killed" else [])
        return {
            "status": status,
            "model": model,
            "promises": promises,
            "kit_killed": kit,
            "killed_by": killed_by,
        }

    summary = mutation.summarise(
        [
            record("killed", "killed", ["P1"]),
            record("killed", "survived", ["P1", "P2"]),
            record("survived", "survived", ["P2"]),
            record("killed", None, ["P3"]),
        ]
    )
    assert (summary["killed"], summary["survived"], summary["kill_ratio"]) == (3, 1, 0.75)
    assert summary["model"] == {"measured": 3, "killed": 1, "kill_ratio": 0.333}
    assert summary["per_promise"]["P2"] == {"killed": 1, "total": 2}
    assert summary["without_model"] == {"killed": 2, "kill_ratio": 0.5}
    assert summary["killed_by_suite"] == {"unit": 2, "model": 1}


def test_interleaving_covers_every_promise_first() -> None:
    order = mutation.interleave(CATALOGUE)
    first_round = [m.promises[0] for m in order[: len(mutation.PROMISES)]]
    assert sorted(order, key=lambda m: m.id) == sorted(CATALOGUE, key=lambda m: m.id)
    assert first_round == list(mutation.PROMISES), f"first round: {first_round}"


def test_suites_are_discovered_by_folder_with_short_keys(tmp_path: Path) -> None:
    for folder in ("01_unit_integration", "03_end_to_end", "04_hostile", "notes"):
        (tmp_path / "suites" / folder).mkdir(parents=True)
    found = mutation.discover(tmp_path)
    assert [(s.key, s.folder) for s in found] == [
        ("unit", "01_unit_integration"),
        ("e2e", "03_end_to_end"),
        ("hostile", "04_hostile"),
    ]
    chosen = mutation.suites_by_key(["hostile", "model"], found)
    assert [s.key for s in chosen] == ["hostile", "model"]
    with pytest.raises(SystemExit, match="unknown suites"):
        mutation.suites_by_key(["fuzz"], found)
