"""The README's promises: two commands, the options table, and `.ci/run` using the test command."""

from __future__ import annotations

import re
from pathlib import Path

from leakcheck.config import OPTIONS
from leakcheck.probes import PROBES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)]


def test_readme_has_exactly_two_copy_paste_commands() -> None:
    blocks = _sh_blocks(README)
    assert len(blocks) == 2, f"README should have exactly two ```sh blocks, found {len(blocks)}: {blocks}"
    main_job, tests = blocks
    for block in blocks:
        assert block.startswith("python3 -m venv .venv && "), block
        assert "\n" not in block, f"each command is one line to copy: {block!r}"
    assert "pytest -m leak scenarios/" in main_job and "--leak-report=" in main_job
    assert "pip install -e '.[dev]'" in tests and tests.endswith(".venv/bin/pytest -n auto")


def test_ci_run_calls_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = _sh_blocks(README)[1]
    lines = [line.strip() for line in ci.splitlines()]
    assert test_command in lines, f".ci/run must run the README test command verbatim: {test_command}"


def test_every_option_is_in_the_options_table() -> None:
    for option in OPTIONS:
        row = f"| `{option.name}` | `{option.flag}` | `{option.ini}` |"
        assert row in README, f"README options table lacks the row for {option.name}: {row}"


def test_every_probe_is_in_the_measures_table() -> None:
    for name, cls in PROBES.items():
        assert f"| `{name}` |" in README, f"README measures table lacks {name}"
        assert f"| {cls.unit} |" in README
