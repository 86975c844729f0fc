"""The time limit per check: a hung step is stopped and reported with where it hung; a slow clean one is not."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import leakcheck
from leakcheck import StepTimeoutError, watchdog
from leakcheck.config import resolve

ROOT = Path(__file__).resolve().parent.parent

QUICK = {"iterations": 50, "warmup": 5, "attribution": "off", "grace": 0.0}


def _blocks_after(n: int) -> object:
    calls = [0]

    def hang_step() -> None:
        calls[0] += 1
        if calls[0] > n:
            threading.Event().wait()  # never set: a lost wake-up

    return hang_step


def test_sync_step_that_blocks_after_30_calls_is_reported_as_hung_with_its_line() -> None:
    with pytest.raises(StepTimeoutError) as info:
        leakcheck.check(_blocks_after(30), timeout=2, **QUICK)
    text = str(info.value)
    assert "hung at iteration 31 (step) after 2 s" in text
    assert info.value.iteration == 31 and info.value.phase == "step"
    # The check's own thread comes first, and its stack ends in the step's line.
    first = text.split("stack of the check's thread", 1)[1]
    assert "in hang_step" in first.split("\nthread ", 1)[0]
    assert "threading.Event().wait()" in text


def test_async_step_that_awaits_forever_lists_its_pending_task_chain() -> None:
    calls = [0]

    async def hang_async() -> None:
        calls[0] += 1
        if calls[0] > 30:
            await asyncio.Event().wait()

    with pytest.raises(StepTimeoutError) as info:
        leakcheck.check(hang_async, timeout=2, **QUICK)
    text = str(info.value)
    assert "hung at iteration 31 (step)" in text
    assert "pending tasks of the loop" in text and "(the check, awaiting the step)" in text
    assert "in hang_async" in text and "await asyncio.Event().wait()" in text


def test_step_that_spins_in_python_is_interrupted_too() -> None:
    calls = [0]

    def spin() -> None:
        calls[0] += 1
        if calls[0] > 30:
            while True:
                try:
                    pass
                except Exception:  # noqa: BLE001, S110 - a step that swallows everything must still stop
                    pass

    with pytest.raises(StepTimeoutError, match="hung at iteration 31"):
        leakcheck.check(spin, timeout=2, **QUICK)


def test_clean_step_that_waits_on_events_passes_within_its_limit() -> None:
    """The look-alike: a step that waits every call, but is woken each time."""

    def waits() -> None:
        done = threading.Event()
        t = threading.Thread(target=done.set)
        t.start()
        done.wait()
        t.join()

    result = leakcheck.check(waits, timeout=120, **QUICK)
    assert not result.leaking
    # The limit is per check: a second check in the same process is not interrupted by the first one's watchdog.
    assert not leakcheck.check(waits, timeout=120, **QUICK).leaking


def _spin() -> None:
    while True:
        pass


def _check_on_a_worker_thread(step: Callable[[], None]) -> BaseException | None:
    box: dict[str, BaseException] = {}

    def worker() -> None:
        try:
            leakcheck.check(step, timeout=1, **QUICK)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test's thread
            box["exc"] = exc

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    return box.get("exc")


def _profiled_call_returns() -> bool:
    """Whether a call under ``sys.setprofile`` (as memray's tracker runs one) completes.

    A raised "async exception pending" flag left behind by the watchdog makes it spin
    in C for good; on a daemon thread so a regression fails this test, not the session.
    """
    returned = threading.Event()

    def traced() -> None:
        pass

    def profiled() -> None:
        sys.setprofile(lambda *_: None)
        try:
            traced()
        finally:
            sys.setprofile(None)
        returned.set()

    threading.Thread(target=profiled, daemon=True).start()
    return returned.wait(60)  # a liveness bound, not a timing: it returns in microseconds or never


def test_hang_on_a_worker_thread_is_interrupted_by_an_async_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the main thread no signal can be used: the fallback stops a step that runs Python code.

    In the test process: the watchdog consumes its asynchronous exception when the check
    ends (it never clears one with ``NULL``, which on CPython 3.11 left a flag raised
    that made every later memray window spin), so the process is clean afterwards.
    """
    sent: list[tuple[int, object]] = []
    real = watchdog._set_async_exc

    def spy(ident: int, exc: type[BaseException] | None) -> int:
        sent.append((ident, exc))
        return real(ident, exc)

    monkeypatch.setattr(watchdog, "_set_async_exc", spy)
    assert isinstance(_check_on_a_worker_thread(_spin), StepTimeoutError)
    assert sent and sent[0][1] is watchdog.Interrupted
    # The last word to the worker's thread was the flush, which it took delivery of, and nothing was cleared.
    assert sent[-1][1] is watchdog._Flush and all(exc is not None for _, exc in sent)
    assert len({ident for ident, _ in sent}) == 1
    assert _profiled_call_returns()


def test_a_step_that_swallows_the_interruption_is_interrupted_again() -> None:
    """Held back while the first one lands, a further interruption still comes when the step goes on."""
    swallowed = [0]

    def stubborn() -> None:
        while True:
            try:
                while True:
                    pass
            except watchdog.Interrupted:
                swallowed[0] += 1
                if swallowed[0] > 1:
                    raise

    assert isinstance(_check_on_a_worker_thread(stubborn), StepTimeoutError)
    assert swallowed[0] == 2
    assert _profiled_call_returns()


def test_a_later_check_in_the_same_process_is_not_slowed_by_the_interrupted_one() -> None:
    """The look-alike of the worker-thread hang: a clean check after it runs profiled code as before."""
    assert isinstance(_check_on_a_worker_thread(_spin), StepTimeoutError)
    assert _profiled_call_returns()
    result = leakcheck.check(lambda: None, timeout=120, **QUICK)
    assert not result.leaking


def test_flush_takes_delivery_on_its_own_thread_and_leaves_no_flag_raised() -> None:
    assert watchdog._flush_async_exc()
    for _ in range(1000):  # check points where a leftover exception would land
        pass
    assert _profiled_call_returns()


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_bad_timeout_is_named(value: str) -> None:
    with pytest.raises(leakcheck.ConfigError, match="timeout"):
        resolve({"timeout": value})


def test_no_limit_with_zero() -> None:
    assert resolve({"timeout": "0"}).timeout == 0
    assert resolve(None).timeout == 300


HUNG_TESTS = """
import threading
import pytest

CALLS = [0]

@pytest.mark.leak(iterations=50, warmup=5, timeout=2)
def test_hangs():
    CALLS[0] += 1
    if CALLS[0] > 30:
        threading.Event().wait()

def test_after():
    pass
"""


@pytest.mark.slow
@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_plugin_fails_the_hung_test_and_the_session_goes_on(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makeini("[pytest]\nleak_attribution = off\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(HUNG_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist)
    result.stdout.fnmatch_lines(
        ["*test_hangs: hung at iteration 30 (step) after 2 s*", "*threading.Event().wait()*", "*1 failed, 1 passed*"]
    )
    assert result.ret == 1


def test_cli_check_of_a_hung_step_exits_3_with_the_stack(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(
        "import threading\nN = [0]\n\ndef hangs():\n    N[0] += 1\n    if N[0] > 30:\n        "
        "threading.Event().wait()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "leakcheck",
            "check",
            "steps.py:hangs",
            "--leak-timeout=2",
            "--leak-iterations=50",
            "--leak-warmup=5",
            "--leak-attribution=off",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "steps.py:hangs: hung at iteration 31 (step) after 2 s" in proc.stderr
    assert "in hangs" in proc.stderr
