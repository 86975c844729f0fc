"""The pytest plugin, run on generated test files (pytester)."""

from __future__ import annotations

import json

import pytest

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
leak_attribution = off
"""


@pytest.fixture
def pt(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def test_marked_test_runs_many_times_with_fixture_set_up_once(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import pytest

        CALLS = {"setup": 0, "body": 0, "teardown": 0}

        @pytest.fixture
        def resource():
            CALLS["setup"] += 1
            yield []
            CALLS["teardown"] += 1

        @pytest.mark.leak(iterations=30, warmup=4)
        def test_leaky_free(resource):
            CALLS["body"] += 1
            resource.append(1)
            resource.pop()

        def test_unmarked():
            CALLS["plain"] = CALLS.get("plain", 0) + 1

        def test_counts():
            assert CALLS["setup"] == 1 and CALLS["teardown"] == 1, CALLS
            assert CALLS["body"] >= 34, CALLS
            assert CALLS["plain"] == 1, CALLS
        """
    )
    result = pt.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*leakcheck: 1 leak tests, 0 leaking*"])


def test_default_marker_catches_a_leak_naming_measure_and_growth(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.leak
        def test_leaks():
            KEEP.append(bytes(2048))

        @pytest.mark.leak()
        def test_clean():
            bytes(2048)
        """
    )
    result = pt.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_leaks*LEAKING after * iterations (+20 warm-up)*",
            "*LEAK Native heap (malloc in use): unbounded, 2.* KiB/iteration (limit 32 B)*",
            "*leakcheck: 2 leak tests, 1 leaking*",
        ]
    )


def test_teardown_failure_lists_handles_item_by_item(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import socket, threading
        import pytest

        GATE = threading.Event()

        @pytest.fixture
        def server():
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            yield s  # never closed: a leak found after teardown

        @pytest.mark.leak(iterations=10, warmup=1, grace=0.2)
        def test_handles(server):
            if not any(t.name == "stuck-worker" for t in threading.enumerate()):
                threading.Thread(target=GATE.wait, name="stuck-worker", daemon=True).start()

        def test_release():
            GATE.set()
        """
    )
    result = pt.runpytest_subprocess("-W", "ignore::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_handles*left behind after teardown (2 handles):",
            "  fd: fd * -> sock_stream 127.0.0.1:* (LISTEN)",
            "  thread: 'stuck-worker' (Thread, daemon=True, target=Event.wait), started at *.py:16 in test_handles",
            "*item_by_item.py*, in test_handles",
        ],
        consecutive=False,
    )


def test_async_test_with_pytest_asyncio(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import asyncio
        import pytest
        import pytest_asyncio

        RUNS = {"fixture": 0, "body": 0}
        KEEP = []

        @pytest_asyncio.fixture
        async def conn():
            RUNS["fixture"] += 1
            yield {"open": True}

        @pytest.mark.asyncio
        @pytest.mark.leak(iterations=30, warmup=3)
        async def test_clean(conn):
            RUNS["body"] += 1
            await asyncio.sleep(0)

        @pytest.mark.asyncio
        @pytest.mark.leak(iterations=30, warmup=3)
        async def test_task_leak():
            KEEP.append(asyncio.ensure_future(asyncio.Event().wait()))

        def test_counts():
            assert RUNS["fixture"] == 1 and RUNS["body"] >= 33, RUNS
        """
    )
    result = pt.runpytest_subprocess("-p", "asyncio", "-W", "ignore::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LEAK asyncio tasks: unbounded, 1 tasks/iteration*",
            (
                "    * \u00d7 task: Task-*: Event.wait() waiting at *locks.py:*, started at "
                "*test_async_test_with_pytest_asyncio.py:* in test_task_leak"
            ),
            "      created at:",
            "*test_async_test_with_pytest_asyncio.py*, in test_task_leak",
        ]
    )


def test_async_test_without_pytest_asyncio(pt: pytest.Pytester) -> None:
    pt.makeini("[pytest]\nleak_attribution = off\n")
    pt.makepyfile(
        """
        import asyncio
        import pytest

        RUNS = []
        KEEP = []

        @pytest.mark.leak(iterations=30, warmup=3)
        async def test_clean():
            RUNS.append(1)
            await asyncio.sleep(0)

        @pytest.mark.leak(iterations=30, warmup=3)
        async def test_leak():
            KEEP.append(bytes(4096))
            await asyncio.sleep(0)

        def test_ran():
            assert len(RUNS) >= 33
        """
    )
    result = pt.runpytest_subprocess("-p", "no:asyncio")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_leak*LEAKING*", "*LEAK Native heap*"])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "leak(colour='red')",
            ["*colour='red' (leak marker on *::test_bad): unknown keyword of the leak marker; accepted: iterations*"],
        ),
        ("leak(iterations=-5)", ["*iterations=-5*leak marker on test_bad_marker.py::test_bad*must not be negative*"]),
        ("leak(max_growth='12 QB')", ["*max_growth='12 QB'*test_bad*unknown unit 'QB'*"]),
        ("leak(probes=['py_blocks', 'heapz'])", ["*probes='heapz'*test_bad*unknown probe; known probes: py_blocks*"]),
        ("leak(300)", ["*test_bad: the leak marker takes keywords only, got positional (300,)*"]),
    ],
)
def test_bad_marker_arguments_are_usage_errors(pt: pytest.Pytester, marker: str, expected: list[str]) -> None:
    pt.makepyfile(
        test_bad_marker=f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad():
            pass
        """
    )
    result = pt.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: " + line for line in expected])


def test_bad_cli_flag_is_a_usage_error(pt: pytest.Pytester) -> None:
    pt.makepyfile("def test_x(): pass")
    result = pt.runpytest("--leak-iterations=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*iterations='lots' (--leak-iterations): expected a whole number*"])


@pytest.mark.parametrize(
    ("mode_args", "outcomes"),
    [
        (["--leak-mode=skip"], {"skipped": 1, "passed": 1}),
        (["--leak-mode=once"], {"passed": 2}),
    ],
)
def test_leak_modes(pt: pytest.Pytester, mode_args: list[str], outcomes: dict[str, int]) -> None:
    pt.makepyfile(
        """
        import pytest

        RUNS = []
        KEEP = []

        @pytest.mark.leak
        def test_leaky():
            RUNS.append(1)
            KEEP.append(bytes(4096))

        def test_zz_count(request):
            mode = request.config.getoption("leak_mode")
            assert len(RUNS) == (1 if mode == "once" else 0), RUNS
        """
    )
    result = pt.runpytest_subprocess(*mode_args)
    result.assert_outcomes(**outcomes)


@pytest.mark.parametrize(
    ("marker", "cli", "ini", "expected"),
    [
        ("", [], "", 200),
        ("", [], "leak_iterations = 40", 40),
        ("", ["--leak-iterations=30"], "leak_iterations = 40", 30),
        ("iterations=20", ["--leak-iterations=30"], "leak_iterations = 40", 20),
        ("iterations=20", [], "leak_iterations = 40", 20),
    ],
)
def test_resolution_order_marker_cli_ini_default(
    pt: pytest.Pytester, marker: str, cli: list[str], ini: str, expected: int
) -> None:
    pt.makeini(INI + ini + "\n")
    pt.makepyfile(
        f"""
        import pytest
        from leakcheck.plugin.helpers import _SETTINGS

        @pytest.mark.leak({marker})
        def test_x():
            pass

        def test_read(request):
            item = [i for i in request.session.items if i.name == "test_x"][0]
            assert item.stash[_SETTINGS].iterations == {expected}
        """
    )
    result = pt.runpytest("--leak-mode=skip", *cli)
    result.assert_outcomes(passed=1, skipped=1)


def test_session_fixtures_creating_files_and_threads_do_not_fail_the_first_test(pt: pytest.Pytester) -> None:
    pt.makeconftest(
        """
        import os, tempfile, threading
        import pytest

        @pytest.fixture(scope="session")
        def shared():
            gate = threading.Event()
            t = threading.Thread(target=gate.wait, name="session-worker")
            t.start()
            fd, path = tempfile.mkstemp(prefix="session-file-")
            fh = os.fdopen(fd, "w")
            yield fh
            gate.set()
            t.join()
            fh.close()
            os.unlink(path)
        """
    )
    pt.makepyfile(
        """
        import pytest

        @pytest.mark.leak(iterations=20, warmup=2)
        def test_first(shared):
            pass

        @pytest.mark.leak(iterations=20, warmup=2)
        def test_second(shared):
            pass
        """
    )
    result = pt.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_step_exception_fails_with_its_own_traceback(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import pytest

        N = [0]

        @pytest.mark.leak(iterations=20, warmup=2)
        def test_raises():
            N[0] += 1
            if N[0] == 5:
                raise ZeroDivisionError("fifth call")
        """
    )
    result = pt.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ZeroDivisionError: fifth call*"])


@pytest.mark.slow
def test_xdist_run_writes_one_results_json_with_every_test(pt: pytest.Pytester) -> None:
    pt.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.leak(iterations=30, warmup=3)
        def test_a():
            pass

        @pytest.mark.leak(iterations=30, warmup=3)
        def test_b():
            KEEP.append(bytes(4096))

        @pytest.mark.leak(iterations=30, warmup=3)
        def test_c():
            pass

        def test_plain():
            pass
        """
    )
    report = pt.path / "report"
    result = pt.runpytest_subprocess("-n", "2", f"--leak-report={report}", "-p", "xdist")
    result.assert_outcomes(passed=3, failed=1)
    data = json.loads((report / "results.json").read_text())
    outcomes = {t["id"].split("::")[-1]: t["outcome"] for t in data["tests"]}
    assert outcomes == {"test_a": "passed", "test_b": "leaking", "test_c": "passed"}
    workers = {t["worker"] for t in data["tests"]}
    assert workers <= {"gw0", "gw1"} and None not in workers
    assert (report / "index.html").exists()


def test_the_marker_signature_is_the_option_table() -> None:
    import inspect

    from leakcheck.config import OPTIONS
    from leakcheck.plugin.options import _marker_help, leak

    params = inspect.signature(leak).parameters
    assert list(params) == [o.name for o in OPTIONS if o.marker]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in params.values())
    assert _marker_help().startswith("leak(iterations=..., warmup=...")
