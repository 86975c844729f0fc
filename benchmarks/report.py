"""Machine facts and the shared ``RESULTS.md``: each script owns one section of it."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["RESULTS", "command_line", "machine_facts", "update_section"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_HEAD = """# Benchmark results

Written by the scripts in `benchmarks/` (each owns one section; re-running a
script replaces its section only). See `benchmarks/README.md` for what each
measures and how the peers are configured.
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=RESULTS.parent, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def machine_facts() -> str:
    """One Markdown bullet list of the facts that decide these figures."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    facts = [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs ({affinity} usable), load average at start {load}",
        f"OS: {platform.platform()}",
        f"leakcheck source: commit {_commit()} (the package is installed editable)",
        f"Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "Versions: "
        + ", ".join(
            f"{d} {_version(d)}" for d in ("leakcheck", "memray", "pytest-memray", "pytest", "pytest-xdist", "psutil")
        ),
    ]
    return "\n".join(f"- {f}" for f in facts)


def command_line() -> str:
    """The command that produced the figures, as one could retype it from the repository root."""
    script = Path(sys.argv[0])
    module = f"benchmarks.{script.stem}" if script.parent.name == "benchmarks" else str(script)
    return "python -m " + " ".join([module, *map(shlex.quote, sys.argv[1:])])


def update_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of ``RESULTS.md`` with ``body``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else _HEAD
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text.rstrip() + "\n", encoding="utf-8")
