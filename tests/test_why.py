"""Why it leaks: the user's line first, what keeps it alive, one entry per kind of handle.

Each seeded leak lives in a user module (``app.py`` in the test's own temp dir)
that calls through a library: ``fakelib`` under a ``site-packages`` folder,
or the real aiosqlite. Clean look-alikes must get no chain and no site.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import leakcheck
from leakcheck.attribution.retention import RetentionWatch
from leakcheck.results import CheckResult, Verdict

FAKELIB = """
import threading

def build(cls, uid):
    obj = cls.__new__(cls)
    obj.__dict__.update(uid=uid, payload=[uid] * 30)  # LIBALLOC
    return obj

def spawn(gate, name):
    thread = threading.Thread(target=_work, args=(gate,), name=name, daemon=True)
    thread.start()
    return thread

def _work(gate):
    buffer = [bytearray(256) for _ in range(4)]
    gate.wait()
    return buffer
"""

APP = """
import threading
import fakelib

_USERS = {}
GATE = threading.Event()
COUNTER = [0]


class User:
    pass


def register(uid):
    _USERS[uid] = fakelib.build(User, uid)  # REGISTER


def step():
    COUNTER[0] += 1
    register(COUNTER[0])


def start_poller():
    fakelib.spawn(GATE, "poller")  # START


def thread_step():
    start_poller()


_CACHE = {}


def cached_step():
    COUNTER[0] += 1
    _CACHE[COUNTER[0] % 50] = [COUNTER[0]] * 30


_MEMO = {}


def memo_step():
    COUNTER[0] += 1
    _MEMO[f"request-{COUNTER[0]}"] = (COUNTER[0], "x")


_BATCH = []


def sawtooth_step():
    _BATCH.append([0] * 30)
    if len(_BATCH) >= 10:
        _BATCH.clear()
"""

ASYNC_APP = """
import aiosqlite

CONNS = []


async def handle_request(path):
    conn = await aiosqlite.connect(path)  # CONNECT
    CONNS.append(conn)


async def close_all(_=None):
    while CONNS:
        await CONNS.pop().close()
"""


def line_of(source: str, marker: str) -> int:
    """The 1-based line of ``source`` ending with ``# marker``."""
    for number, line in enumerate(source.splitlines(), 1):
        if line.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(marker)


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``app`` (the user's module, in its own folder) and ``fakelib`` (an installed library)."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    (site / "fakelib").mkdir(parents=True)
    (site / "fakelib" / "__init__.py").write_text(FAKELIB, encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    (project / "async_app.py").write_text(textwrap.dedent(ASYNC_APP), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.chdir(project)
    for name in ("app", "async_app", "fakelib"):
        sys.modules.pop(name, None)
    modules = {name: importlib.import_module(name) for name in ("app", "async_app", "fakelib")}
    yield {"project": project, **modules}
    app: ModuleType = modules["app"]
    app.GATE.set()  # release any poller threads
    app._USERS.clear()
    for name in ("app", "async_app", "fakelib"):
        sys.modules.pop(name, None)


def _check(step: Any, **options: Any) -> CheckResult:
    options.setdefault("iterations", 100)
    options.setdefault("warmup", 5)
    options.setdefault("attribution", "tracemalloc")
    options.setdefault("grace", 0.05)
    return leakcheck.check(step, **options)


def test_registry_leak_names_the_users_line_via_the_library_and_the_holding_global(user_code):
    app = user_code["app"]
    result = _check(app.step)
    assert result.leaking, str(result)
    att = result.attribution
    assert att is not None and att.sites, str(result)
    top = att.sites[0]
    assert top.location == f"app.py:{line_of(APP, 'REGISTER')}", str(result)
    assert top.via == f"fakelib/__init__.py:{line_of(FAKELIB, 'LIBALLOC')}"
    assert top.user_code
    retention = att.retention
    assert retention is not None, str(result)
    assert retention.types[0].name == "app.User" and retention.types[0].per_iteration == pytest.approx(1, abs=0.1)
    chains = [c.describe() for c in retention.chains]
    assert any(c.startswith("app._USERS (dict) \u2192 [") and c.endswith("\u2192 app.User") for c in chains), chains
    text = str(result)
    assert f"app.py:{line_of(APP, 'REGISTER')} (via fakelib/__init__.py:" in text
    assert "kept alive by app._USERS (dict) \u2192 [" in text
    assert "[tracemalloc] app.py:" in text and "tracemalloc: Python allocations" in text
    # The chain search holds nothing once the check is done.
    refs = [weakref.ref(u) for u in app._USERS.values()]
    app._USERS.clear()
    gc.collect()
    assert all(r() is None for r in refs)
    # results.json keeps it.
    back = CheckResult.from_dict(result.to_dict())
    assert back.attribution is not None and back.attribution.retention == retention


def test_library_only_sites_come_after_the_users(user_code):
    app = user_code["app"]
    result = _check(app.step, user_paths=[str(user_code["project"] / "elsewhere")])
    att = result.attribution
    assert att is not None and att.sites, str(result)
    # With the user's code said to be elsewhere, no site is the user's: the library's line leads.
    assert not any(s.user_code for s in att.sites)
    assert att.sites[0].location == f"fakelib/__init__.py:{line_of(FAKELIB, 'LIBALLOC')}"


def test_thread_leak_is_one_group_started_at_the_users_line(user_code):
    app = user_code["app"]
    result = _check(app.thread_step, iterations=40, probes="threads,py_blocks")
    assert result.leaking and result.finding("threads").leaking, str(result)
    assert len(result.handles) == 1, result.handles
    group = result.handles[0]
    assert group.kind == "thread" and group.count >= 40
    start = f"app.py:{line_of(APP, 'START')} in start_poller"
    assert group.origin == start
    text = str(result)
    assert f"{group.count} \u00d7 thread: 'poller'" in text and f"started at {start}" in text
    # The line that started the thread is the top site, ahead of any allocation site...
    assert text.index(f"started at {start}") < text.index("top growing allocation sites")
    # ...and the thread's own allocations (in the library's worker) are placed there too.
    att = result.attribution
    assert att is not None and att.sites
    assert att.sites[0].location == f"app.py:{line_of(APP, 'START')}", str(result)
    assert text.count("'poller'") == 1  # one entry, not one per thread


def test_aiosqlite_connection_kept_per_request_names_the_users_line_via_aiosqlite(user_code, tmp_path):
    async_app = user_code["async_app"]
    db = str(tmp_path / "db.sqlite")

    async def step() -> None:
        await async_app.handle_request(db)

    async def main() -> CheckResult:
        try:
            return await leakcheck.check_async(
                step,
                iterations=40,
                warmup=3,
                attribution="tracemalloc",
                grace=0.05,
                user_paths=[str(user_code["project"])],
            )
        finally:
            await async_app.close_all()

    result = asyncio.run(main())
    assert result.leaking, str(result)
    att = result.attribution
    assert att is not None and att.sites, str(result)
    connect = f"async_app.py:{line_of(ASYNC_APP, 'CONNECT')}"
    assert att.sites[0].location == connect, str(result)
    assert att.sites[0].via.startswith("aiosqlite/"), att.sites[0]
    assert f"{connect} (via aiosqlite/" in str(result)


@pytest.mark.parametrize("step_name", ["cached_step", "sawtooth_step"])
def test_clean_look_alikes_get_no_chains_and_no_sites(user_code, step_name):
    step = getattr(user_code["app"], step_name)
    result = _check(step, iterations=100)
    assert not result.leaking, str(result)
    assert result.attribution is None or (not result.attribution.sites and result.attribution.retention is None)


def _watch(step: Any, iterations: int = 60, **kwargs: Any) -> Any:
    for _ in range(20):
        step()
    gc.collect()
    watch = RetentionWatch(iterations, **kwargs)
    watch.checkpoint(0)
    for i in range(1, iterations + 1):
        step()
        gc.collect()
        watch.checkpoint(i)
    return watch.finish(iterations)


@pytest.mark.parametrize("step_name", ["cached_step", "sawtooth_step"])
def test_census_sees_no_growth_in_a_bounded_cache_or_a_sawtooth(user_code, step_name):
    assert _watch(getattr(user_code["app"], step_name)) is None


def test_census_and_chain_of_a_registry_with_a_budget(user_code):
    app = user_code["app"]
    retention = _watch(app.step)
    assert retention is not None and retention.chains
    assert retention.chains[0].root_kind == "module global"
    assert retention.seconds < 60  # recorded; the budget below is what bounds it
    starved = _watch(app.step, budget=0.0)
    assert starved.types and not starved.chains
    assert any("stopped at its 0 s budget" in n for n in starved.notes), starved


def test_a_dict_the_gc_does_not_track_is_still_named(user_code):
    # str keys and tuples of ints and strs: the gc untracks such a dict, yet it grows.
    retention = _watch(user_code["app"].memo_step)
    assert retention is not None
    assert [c.describe() for c in retention.chains] == ["app._MEMO (dict, +1.00 items/iteration)"]


class Token:
    """An object a native reference leak keeps alive."""


def test_a_reference_no_object_holds_is_called_a_missing_decref():
    import ctypes

    def step() -> None:
        token = Token()
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(token))  # what a C extension's missing DECREF does

    retention = _watch(step)
    assert retention is not None
    assert retention.types[0].name.endswith("Token")
    assert "no Python object holds" in retention.unheld and "Py_DECREF" in retention.unheld
    assert not retention.chains


def test_a_list_kept_by_the_test_module_is_named(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nleak_attribution = tracemalloc\n")
    pytester.makepyfile(
        test_kept="""
        import pytest

        KEPT = []

        @pytest.mark.leak(iterations=60, warmup=5)
        def test_keeps():
            KEPT.append(bytes(200))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LEAK*",
            "*top growing allocation sites (tracemalloc: Python allocations):",
            "    [[]tracemalloc] test_kept.py:7: *",
            "*kept alive by test_kept.KEPT (list, +1.00 items/iteration)",
        ]
    )


def test_thread_growth_is_one_leak_failure_not_also_a_teardown_error(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nleak_attribution = off\n")
    pytester.makepyfile(
        test_threads="""
        import threading
        import pytest

        GATE = threading.Event()

        def start_poller():
            threading.Thread(target=GATE.wait, name="poller", daemon=True).start()

        @pytest.mark.leak(iterations=30, warmup=2, grace=0.05)
        def test_polls():
            start_poller()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=0)
    result.stdout.fnmatch_lines(
        [
            "*LEAK Python threads*",
            "  left behind (* handles, 1 kinds):",
            (
                "    * \u00d7 thread: 'poller' (Thread, daemon=True, target=Event.wait), started at "
                "test_threads.py:7 in start_poller"
            ),
        ]
    )
    assert "ERROR" not in result.stdout.str()


def test_within_limit_is_said_with_the_limit():
    from conftest import make_check, make_evidence, make_finding

    rising = make_finding(growth=0.2, evidence=make_evidence(0.2))
    assert rising.verdict is Verdict.BOUNDED
    assert "within limit (0.50 blocks)" in rising.describe()
    assert "py_blocks 0.20 blocks (within limit 0.50 blocks)" in str(make_check(findings=(rising,)))


def _flame_nodes(path: Path) -> tuple[list[tuple[str, str, int]], set[str]]:
    """The root's children (name, file, bytes) and every file named in memray's flamegraph page."""
    import json
    import re

    html = path.read_text(encoding="utf-8")
    match = re.search(r"const packed_data = (\{.*?\});\s*\n", html)
    assert match is not None, "memray's page layout changed: no packed_data"
    data = json.loads(match.group(1))
    nodes, strings = data["nodes"], data["strings"]
    children = [
        (strings[nodes["name"][c]], strings[nodes["filename"][c]], nodes["value"][c]) for c in nodes["children"][0]
    ]
    return children, {strings[i] for i in nodes["filename"]}


def test_flamegraph_of_a_list_leak_is_rooted_at_the_step(tmp_path, monkeypatch):
    pytest.importorskip("memray")
    (tmp_path / "leaky.py").write_text("KEPT = []\n\n\ndef step():\n    KEPT.append([0] * 50)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("leaky", None)
    leaky = importlib.import_module("leaky")
    try:
        result = leakcheck.check(leaky.step, iterations=100, warmup=5, attribution="both", report=tmp_path / "rep")
    finally:
        leaky.KEPT.clear()
        sys.modules.pop("leaky", None)
    att = result.attribution
    assert att is not None and att.flamegraph, str(result)
    # A Python list's buffer is on the malloc heap: that is not a reason to run valgrind.
    assert not any("valgrind" in n for n in att.notes), att.notes
    children, files = _flame_nodes(Path(att.flamegraph))
    assert not any(part in f for f in files for part in ("leakcheck", "_pytest", "pluggy", "xdist", "runpy")), files
    widest = max(children, key=lambda c: c[2])
    assert widest[1].endswith("leaky.py") and "KEPT.append" in widest[0], children
    assert widest[2] >= 0.9 * sum(c[2] for c in children), children


def test_harness_frames_are_cut_from_stacks_and_its_own_allocations_dropped(user_code):
    import os as _os

    from leakcheck.attribution import frames as frames_module
    from leakcheck.attribution.flame import trim_stack
    from leakcheck.attribution.frames import CodeMap, clean_stack

    harness = _os.path.join(_os.path.dirname(frames_module.__file__), "x.py")
    stdlib = _os.path.join(_os.path.dirname(_os.__file__), "genericpath.py")
    app = str(user_code["project"] / "app.py")
    code = CodeMap([str(user_code["project"])])
    # The harness listing fds through the standard library: its own allocation, not a site.
    assert clean_stack([(stdlib, 42, "isdir"), (harness, 1, "fd_targets"), (harness, 2, "run")], code) is None
    assert trim_stack([("isdir", stdlib, 42), ("fd_targets", harness, 1)], code) is None
    # The step's allocation: everything above the step (harness, interpreter) is cut.
    stack = [
        ("list_new", "Objects/listobject.c", 1),
        ("step", app, 5),
        ("_PyEval_EvalFrame", "ceval.c", 9),
        ("run", harness, 3),
        ("main", harness, 4),
    ]
    assert trim_stack(stack, code) == (("list_new", "Objects/listobject.c", 1), ("step", app, 5))
