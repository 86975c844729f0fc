"""The benchmark corpus loads and declares its ground truth (no measuring here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import corpus

PATHS = corpus.case_paths()


def test_corpus_is_big_enough_and_balanced() -> None:
    cases = [corpus.load_case(p) for p in PATHS]
    assert len(cases) >= 30
    assert sum(c.leaks for c in cases) >= 10
    assert sum(not c.leaks for c in cases) >= 10
    assert {c.resource for c in cases if c.leaks} == set(corpus.RESOURCES)
    assert any(c.is_async and c.leaks for c in cases)
    assert any(c.is_async and not c.leaks for c in cases)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_case_declares_ground_truth(path: Path) -> None:
    case = corpus.load_case(path)
    assert case.name.startswith("leak_" if case.leaks else "clean_")
    assert (case.resource in corpus.RESOURCES) if case.leaks else (case.resource is None)
    assert callable(case.step)


def test_bad_case_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "leak_bad.py"
    bad.write_text("LEAKS = True\nRESOURCE = 'memory'\nDESCRIPTION = 'x'\ndef step():\n    pass\n")
    with pytest.raises(corpus.CaseError, match="RESOURCE"):
        corpus.load_case(bad)
