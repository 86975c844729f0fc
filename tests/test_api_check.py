"""leakcheck.check() / check_async(): sync and async callables, result types, errors."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import leakcheck
from leakcheck import CheckResult, Evidence, Finding, ScenarioError, Series, Verdict
from leakcheck.policy import MAX_JUDGED

FAST = {"iterations": 30, "warmup": 3, "attribution": "off"}


def test_sync_step_with_setup_and_teardown() -> None:
    calls: list[str] = []

    def setup() -> dict[str, int]:
        calls.append("setup")
        return {"n": 0}

    def step(state: dict[str, int]) -> None:
        state["n"] += 1

    def teardown(state: dict[str, int]) -> None:
        calls.append(f"teardown {state['n']}")

    result = leakcheck.check(step, setup=setup, teardown=teardown, **FAST)
    assert not result.leaking, str(result)
    assert calls[0] == "setup" and calls[-1].startswith("teardown")
    assert len(calls) == 2
    assert int(calls[-1].split()[1]) >= 30 + 3


def test_async_step_setup_and_teardown_share_one_loop() -> None:
    loops: set[int] = set()

    async def setup() -> list[int]:
        loops.add(id(asyncio.get_running_loop()))
        return []

    async def step(acc: list[int]) -> None:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)

    async def teardown(acc: list[int]) -> None:
        loops.add(id(asyncio.get_running_loop()))

    result = leakcheck.check(step, setup=setup, teardown=teardown, **FAST)
    assert not result.leaking, str(result)
    assert len(loops) == 1
    assert result.finding("tasks").verdict is not Verdict.UNAVAILABLE


def test_async_step_with_sync_setup() -> None:
    async def step(box: list[int]) -> None:
        box.append(1)
        box.pop()

    result = leakcheck.check(step, setup=list, **FAST)
    assert not result.leaking, str(result)


def test_result_types_are_frozen_and_complete() -> None:
    keep: list[object] = []
    result = leakcheck.check(lambda: keep.append(object()), iterations=50, warmup=5, attribution="off")
    assert isinstance(result, CheckResult)
    assert result.leaking
    assert result.iterations >= 50 and result.warmup == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.iterations = 1  # type: ignore[misc]
    leak = result.finding("py_blocks")
    assert isinstance(leak, Finding) and leak in result.leaks
    with pytest.raises(dataclasses.FrozenInstanceError):
        leak.verdict = Verdict.BOUNDED  # type: ignore[misc]
    assert isinstance(leak.evidence, Evidence)
    assert leak.evidence.slope == pytest.approx(leak.growth_per_iteration)
    assert leak.evidence.slope_low <= leak.evidence.slope <= leak.evidence.slope_high
    assert leak.evidence.trend_z > 0 and leak.evidence.trend_p < 0.01
    assert leak.unit == "blocks"
    series = {s.probe: s for s in result.samples}
    assert isinstance(series["py_blocks"], Series)
    s = series["py_blocks"]
    assert s.iterations[0] == 0 and s.iterations[-1] <= result.iterations
    assert len(s.iterations) == len(s.values)
    # A long run is judged over an even subsample of its readings.
    assert leak.evidence.samples == min(len(s.values), MAX_JUDGED)
    text = str(result)
    assert "LEAKING" in text
    assert "Python heap (live blocks): unbounded" in text
    assert "blocks/iteration (limit 0.50 blocks)" in text
    assert f"after {result.iterations} iterations (+5 warm-up)" in text
    assert "Mann-Kendall" in text
    with pytest.raises(KeyError, match="no finding for probe 'nope'"):
        result.finding("nope")
    assert CheckResult.from_dict(result.to_dict()) == result


def test_byte_measures_print_with_byte_units() -> None:
    keep: list[bytes] = []
    result = leakcheck.check(lambda: keep.append(bytes(4096)), iterations=50, warmup=5, attribution="off")
    assert result.finding("native_heap").leaking, str(result)
    assert "KiB/iteration (limit 32 B)" in str(result)


def test_max_growth_lets_a_small_native_growth_through() -> None:
    keep: list[bytes] = []
    step = lambda: keep.append(bytes(600))
    options = {"iterations": 60, "warmup": 5, "attribution": "off", "probes": ["native_heap"]}
    assert leakcheck.check(step, **options).leaking
    relaxed = leakcheck.check(step, max_growth="1 KiB", **options)
    assert not relaxed.leaking, str(relaxed)
    assert relaxed.finding("native_heap").limit == 1024


def test_clean_result_is_not_leaking() -> None:
    result = leakcheck.check(lambda: sum(range(100)), **FAST)
    assert not result.leaking and not result.leaks and not result.handles
    assert str(result).splitlines()[0].endswith("clean after 30 iterations (+3 warm-up)")


def test_step_that_raises_is_a_scenario_error_with_cause() -> None:
    count = [0]

    def step() -> None:
        count[0] += 1
        if count[0] == 7:
            raise KeyError("boom")

    with pytest.raises(ScenarioError) as info:
        leakcheck.check(step, **FAST)
    assert isinstance(info.value.__cause__, KeyError)
    # measured iterations count from 1 after the 3 warm-up ones, as in Series.iterations
    assert info.value.phase == "step" and info.value.iteration == 7 - 3
    assert "KeyError" in str(info.value)


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_setup_or_teardown_that_raises(phase: str) -> None:
    def boom(*_: object) -> None:
        raise OSError("no disk")

    kwargs = {phase: boom}
    with pytest.raises(ScenarioError) as info:
        leakcheck.check(lambda *a: None, **kwargs, **FAST)  # type: ignore[arg-type]
    assert info.value.phase == phase and isinstance(info.value.__cause__, OSError)


def test_async_step_that_raises() -> None:
    async def step() -> None:
        raise ValueError("async boom")

    with pytest.raises(ScenarioError) as info:
        leakcheck.check(step, **FAST)
    assert isinstance(info.value.__cause__, ValueError)


def test_check_with_async_step_inside_a_running_loop_is_a_clear_error() -> None:
    async def step() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        with pytest.raises(leakcheck.LeakcheckError, match="check_async"):
            leakcheck.check(step, **FAST)

    asyncio.run(main())


def test_check_async_runs_on_the_running_loop() -> None:
    async def main() -> CheckResult:
        loop = asyncio.get_running_loop()
        seen = []

        async def step() -> None:
            seen.append(asyncio.get_running_loop() is loop)
            await asyncio.sleep(0)

        result = await leakcheck.check_async(step, **FAST)
        assert all(seen) and seen
        return result

    result = asyncio.run(main())
    assert not result.leaking, str(result)


def test_check_async_catches_a_pending_task() -> None:
    async def main() -> CheckResult:
        keep: list[asyncio.Task[None]] = []

        async def step() -> None:
            keep.append(asyncio.ensure_future(asyncio.Event().wait()))

        try:
            return await leakcheck.check_async(step, **FAST)
        finally:
            for t in keep:
                t.cancel()
            await asyncio.gather(*keep, return_exceptions=True)

    result = asyncio.run(main())
    assert result.finding("tasks").leaking, str(result)
    assert result.handles and result.handles[0].kind == "task"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"iterations": -1}, "iterations=-1 \\(check\\(\\)\\): must not be negative"),
        ({"iterations": 5}, "need at least 10"),
        ({"max_growth": "12 QB"}, "unknown unit 'QB'"),
        ({"probes": ["py_blocks", "nope"]}, "unknown probe; known probes: py_blocks"),
        ({"colour": "red"}, "unknown keyword"),
        ({"step": 3}, None),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict[str, object], match: str | None) -> None:
    if "step" in kwargs:
        with pytest.raises(leakcheck.ConfigError, match="expected a callable"):
            leakcheck.check(3)  # type: ignore[arg-type]
        return
    with pytest.raises(leakcheck.ConfigError, match=match):
        leakcheck.check(lambda: None, **kwargs)  # type: ignore[arg-type]


def test_step_that_raises_during_warm_up_says_so() -> None:
    count = [0]

    def step() -> None:
        count[0] += 1
        if count[0] == 2:
            raise KeyError("early")

    with pytest.raises(ScenarioError, match="the warm-up step raised in iteration 2") as info:
        leakcheck.check(step, **FAST)
    assert info.value.phase == "warm-up step" and info.value.iteration == 2
