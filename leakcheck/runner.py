"""Running a step many times: warm-up, sampled iterations, verdicts, cleanup.

One measuring loop serves sync and async steps: it is written as a
coroutine, and for sync steps that coroutine never suspends, so it is driven
to completion with a single ``send`` and no event loop. Async steps run on
the running loop (:func:`run_async`) or on a loop leakcheck creates and
closes (:func:`run`), after checking for pending tasks and timers first,
since closing a loop cancels them and would hide the leak.

The harness must not read as a leak: readings go into ``array`` buffers
allocated before the baseline, garbage collection is frozen for everything
that existed before it (``gc.freeze``) so each sample's collection only
walks new objects, and interpreter caches are cleared before each sample.
"""

from __future__ import annotations

import array
import asyncio
import gc
import inspect
import math
import os
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

from .cleanup import clear_interpreter_caches
from .config import Settings
from .errors import LeakcheckError, ScenarioError
from .handles import RECORDER, Allowlist, HandleSnapshot, fd_targets, settle
from .probes import Probe, make_probes
from .results import Attribution, CheckResult, Finding, LeakedHandle, Series, Verdict
from .verdict import Judgement, judge

__all__ = ["Hooks", "is_async_callable", "repeat", "run", "run_async"]

Callback = Callable[..., Any]

#: Fewest samples a first pass takes, however slow sampling is next to the step.
MIN_SAMPLES = 20
#: Share of the step's time that sampling may cost when k is chosen for us.
SAMPLING_BUDGET = 0.15
#: Most samples one verdict looks at: Mann–Kendall is O(n²), and a longer run
#: is judged over an even subsample of its readings.
MAX_JUDGED = 400
#: Measuring past the usual spans stops once the process grew this much since
#: the baseline: growth that large is not in doubt, and the machine is shared.
EXTEND_RSS_LIMIT = 256 * 2**20


@dataclass(frozen=True)
class Hooks:
    """What the caller of the runner adds: where captures go, whether to attribute anyway."""

    capture_dir: Path | None = None  #: per-check folder for flamegraphs (a report was asked for)
    #: run the attribution window even when nothing grew (a report with an explicit attribution mode)
    always_attribute: bool = False
    exclude_paths: tuple[str, ...] = ()  #: never count files under these as left behind
    own_handles: bool = True  #: snapshot fds/threads/children/files around setup and teardown


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions (also behind ``functools.partial``)."""
    while hasattr(fn, "func"):
        fn = fn.func
    call = type(fn).__call__ if callable(fn) and not inspect.isfunction(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


async def _call(fn: Callback | None, *args: Any) -> Any:
    if fn is None:
        return None
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _drive(coro: Awaitable[Any]) -> Any:
    """Run a coroutine that never suspends (the sync path) to its end."""
    it = coro.__await__()
    try:
        it.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()  # type: ignore[attr-defined]
    raise LeakcheckError(
        "a step, setup or teardown returned an awaitable that needs an event loop, "
        "but no callable was async; pass an `async def` function so leakcheck runs a loop"
    )


class _Samples:
    """Readings of every probe, in buffers allocated up front (the heap must not see them)."""

    def __init__(self, probes: Sequence[Probe], capacity: int) -> None:
        self.probes = tuple(probes)
        self.iterations = array.array("q", bytes(8 * capacity))
        self.values = tuple(array.array("d", bytes(8 * capacity)) for _ in probes)
        self.count = 0
        self.capacity = capacity

    def take(self, iteration: int) -> None:
        clear_interpreter_caches()
        gc.collect()
        n = self.count
        if n >= self.capacity:
            return
        values = self.values
        probes = self.probes
        # py_blocks, when present, is first: read it before anything else allocates
        for j in range(len(probes)):
            values[j][n] = probes[j].read()
        self.iterations[n] = iteration
        self.count = n + 1

    def series(self, j: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        n = self.count
        return tuple(self.iterations[:n]), tuple(self.values[j][:n])


def _order(probes: list[Probe]) -> list[Probe]:
    return sorted(probes, key=lambda p: p.name != "py_blocks")


@dataclass
class _Run:
    """The mutable state of one check while it runs."""

    step: Callback
    args: tuple[Any, ...]
    settings: Settings
    hooks: Hooks
    name: str
    notes: list[str] = field(default_factory=list)

    async def iterate(
        self, first: int, last: int, every: int = 0, samples: _Samples | None = None, phase: str = "step"
    ) -> None:
        step, args = self.step, self.args
        for i in range(first, last + 1):
            try:
                result = step(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                raise ScenarioError(phase, i, exc) from exc
            if samples is not None and i % every == 0:
                samples.take(i)

    async def warm_up(self) -> float:
        """Run the warm-up; return the median seconds per iteration."""
        n = max(self.settings.warmup, 3)  # a few timed iterations even with warmup=0
        times = []
        for i in range(1, n + 1):
            t = time.perf_counter()
            await self.iterate(i, i, phase="warm-up step")
            times.append(time.perf_counter() - t)
        times.sort()
        return times[len(times) // 2]

    def choose_every(self, probes: Sequence[Probe], step_time: float) -> int:
        s = self.settings
        if s.sample_every:
            return s.sample_every
        scratch = _Samples(probes, 3)
        t = time.perf_counter()
        for _ in range(3):
            scratch.take(0)
        cost = (time.perf_counter() - t) / 3
        k = math.ceil(cost / (SAMPLING_BUDGET * max(step_time, 1e-9)))
        return max(1, min(k, s.iterations // MIN_SAMPLES or 1))


def _findings(
    probes: Sequence[Probe], skipped: Sequence[Finding], samples: _Samples, s: Settings, done: int
) -> tuple[list[Finding], list[Judgement]]:
    """Judge every probe over all its samples and, once measured longer, span by span.

    An unbounded verdict must replicate on each of the last two spans of
    ``iterations`` on its own: fresh data the first verdict never saw. A
    one-off fill that spills past the warm-up (a ring or cache still filling,
    an lru_cache whose small-int keys give way to allocated ones) shows in one
    span and not the next; a leak shows in every span.
    """
    findings = list(skipped)
    judgements = []
    span = s.iterations
    for j, probe in enumerate(samples.probes):
        x, y = samples.series(j)
        limit = s.limit_for(probe.name)
        jd = judge(*_thinned(x, y), limit, alpha=s.alpha)
        if jd.verdict is Verdict.UNBOUNDED and done > span:
            recent = _judge_span(x, y, done - span, done, limit, s.alpha)
            previous = _judge_span(x, y, done - 2 * span, done - span, limit, s.alpha)
            if recent.verdict is not Verdict.UNBOUNDED:
                verdict = Verdict.BOUNDED if recent.verdict is Verdict.BOUNDED else Verdict.INCONCLUSIVE
                reason = f"grew earlier, but not over the last {span} iterations ({recent.reason})"
                jd = Judgement(verdict, jd.evidence, reason)
            elif previous.verdict is not Verdict.UNBOUNDED:
                reason = f"grew over the last {span} iterations only; measuring longer"
                jd = Judgement(Verdict.INCONCLUSIVE, jd.evidence, reason)
        judgements.append(jd)
        findings.append(
            Finding(probe.name, probe.title, probe.unit, jd.evidence.slope, limit, jd.verdict, jd.evidence, jd.reason)
        )
    return findings, judgements


def _next_target(
    probes: Sequence[Probe],
    judgements: Sequence[Judgement],
    done: int,
    elapsed: float,
    grown: int,
    s: Settings,
) -> int | None:
    """How many iterations to have measured after the next pass, or None to stop.

    The usual spans, one pass at a time: growth is confirmed over twice the
    first pass, an unclear verdict is measured up to five times it. Past
    them, heap growth may still be a fill that outlasts the spans (a ring of
    300 entries, a log buffer cleared every few thousand calls), so it is
    followed further, doubling the run, while measuring has taken less than
    ``extend_time`` seconds: fast steps look many times further than slow
    ones, at little cost. A handle leak is never followed further: counts
    are exact, and each pass would leak more descriptors or threads.
    """
    if done >= s.cap:
        return None
    verdicts = [(p.is_handle, j.verdict) for p, j in zip(probes, judgements)]
    unsure = any(v is Verdict.INCONCLUSIVE for _, v in verdicts)
    growing = any(v is Verdict.UNBOUNDED for _, v in verdicts)
    usual = 5 * s.iterations if unsure else 2 * s.iterations if growing else 0
    if done < usual:
        return min(s.cap, done + s.iterations)
    if any(handle and v is Verdict.UNBOUNDED for handle, v in verdicts):
        return None
    heap_open = any(not handle and v is not Verdict.BOUNDED for handle, v in verdicts)
    if not heap_open or elapsed >= s.extend_time or grown >= EXTEND_RSS_LIMIT:
        return None
    return min(s.cap, 2 * done)


def _rss() -> int:
    """Resident bytes of this process now (0 where unknown)."""
    try:
        return int(psutil.Process().memory_info().rss)
    except (psutil.Error, OSError):
        return 0


def _thinned(x: Sequence[int], y: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most ``MAX_JUDGED`` evenly spread samples, the first and last included."""
    n = len(x)
    if n <= MAX_JUDGED:
        return [float(v) for v in x], list(y)
    idx = sorted({round(k * (n - 1) / (MAX_JUDGED - 1)) for k in range(MAX_JUDGED)})
    return [float(x[i]) for i in idx], [y[i] for i in idx]


def _prime_judging(probes: Sequence[Probe], skipped: Sequence[Finding], s: Settings) -> None:
    """Judge a made-up series once before the baseline, then drop the verdicts.

    Judging fills the interpreter's free lists (floats, tuples, dicts) and any
    lazy state it touches; done for the first time between two passes, that
    reads as a one-off step of ~100 blocks in the next pass, and a step turns
    a bounded sawtooth into a rising floor.
    """
    n = max(MIN_SAMPLES, 2 * s.iterations // max(1, s.sample_every or 10)) + 1
    scratch = _Samples(probes, n)
    for i in range(n):
        for column in scratch.values:
            column[i] = float(i * (i % 7))
        scratch.iterations[i] = i * 10
    scratch.count = n
    findings, judgements = _findings(probes, skipped, scratch, s, 10 * (n - 1))
    del findings, judgements, scratch


def _judge_span(
    x: Sequence[int], y: Sequence[float], first: int, last: int, limit: float, alpha: float
) -> Judgement:
    """The verdict over the samples taken after iterations ``first`` to ``last``, on their own."""
    idx = [i for i, it in enumerate(x) if first <= it <= last]
    return judge(*_thinned([x[i] for i in idx], [y[i] for i in idx]), limit, alpha=alpha)


def _unavailable(probes: Sequence[Probe]) -> tuple[list[Probe], list[Finding]]:
    usable, skipped = [], []
    for p in probes:
        reason = p.unavailable()
        if reason is None:
            usable.append(p)
        else:
            skipped.append(Finding(p.name, p.title, p.unit, 0.0, p.default_limit, Verdict.UNAVAILABLE, None, reason))
    return usable, skipped


def _pending_tasks(baseline: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and t not in baseline and not t.done()]


def _pending_timers(loop: asyncio.AbstractEventLoop, baseline: set[object]) -> list[asyncio.TimerHandle]:
    scheduled = getattr(loop, "_scheduled", ())  # private, but the only view of pending call_later()s
    return [h for h in scheduled if h not in baseline and not h.cancelled()]


_HERE = os.path.dirname(os.path.abspath(__file__))
_ASYNCIO = os.path.dirname(os.path.abspath(asyncio.__file__))


def _is_machinery(filename: str) -> bool:
    return filename.startswith((_HERE, _ASYNCIO))


def _describe_task(task: asyncio.Task[Any]) -> LeakedHandle:
    coro = task.get_coro()
    qualname = getattr(coro, "__qualname__", repr(coro))
    origin = getattr(coro, "cr_origin", None) or ()
    origin = [o for o in reversed(origin) if not _is_machinery(o[0])]
    created = "".join(f'  File "{f}", line {ln}, in {fn}\n' for f, ln, fn in origin)
    frames = task.get_stack(limit=1)
    where = f" waiting at {frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else ""
    stack = ("created at:\n" + created) if created else ""
    return LeakedHandle("task", f"{task.get_name()}: {qualname}(){where}", stack)


async def _leaked_tasks(baseline: set[asyncio.Task[Any]], timers: set[object], s: Settings) -> list[LeakedHandle]:
    allow = Allowlist(tasks=s.allow_tasks)
    deadline = time.monotonic() + s.grace
    delay = 0.001
    while True:
        for _ in range(3):
            await asyncio.sleep(0)  # let finishing tasks finish
        pending = _pending_tasks(baseline)
        leaked = []
        for t in pending:
            handle = _describe_task(t)
            coro_name = getattr(t.get_coro(), "__qualname__", "")
            if not (allow.allows(handle, t.get_name()) or allow.allows(handle, coro_name)):
                leaked.append(handle)
        if not leaked or time.monotonic() >= deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    loop = asyncio.get_running_loop()
    for h in _pending_timers(loop, timers):
        cb = getattr(h, "_callback", None)
        if getattr(cb, "__module__", "").startswith("asyncio"):
            continue  # a pending sleep's wake-up: its task is reported already
        leaked.append(LeakedHandle("timer", f"call_later({getattr(cb, '__qualname__', cb)!s}) pending"))
    return leaked


async def _attribute(run: _Run, findings: Sequence[Finding]) -> Attribution | None:
    s, hooks = run.settings, run.hooks
    leaking = [f for f in findings if f.leaking]
    # Tracing costs 10-400x the step (tracemalloc on an int-heavy loop is the
    # worst case): only when growth is suspected, unless the user asked.
    suspected = leaking or any(f.verdict is Verdict.INCONCLUSIVE for f in findings)
    if s.attribution == "off" or not (suspected or hooks.always_attribute):
        return None
    try:
        from .attribution import open_window
    except ImportError as exc:  # the attribution package is optional at import time
        return Attribution(notes=(f"attribution unavailable: {exc}",))
    native = [f for f in leaking if f.probe in ("native_heap", "rss", "uss")]
    window = open_window(
        s.attribution,
        iterations=s.attribution_iterations,
        frames=s.tracemalloc_frames,
        capture_dir=hooks.capture_dir,
        # A flamegraph costs seconds: only for what leaks.
        flamegraph=hooks.capture_dir is not None and bool(leaking),
        native_suspected=bool(native),
        native_growth=native[0].growth_per_iteration if native else None,
    )
    step, args = run.step, run.args
    # No user code runs inside the window's own calls: descriptors that appear
    # there and stay open are the tracer's (memray's first Tracker keeps a pipe).
    appeared: set[tuple[int, str]] = set()

    def traced(call: Callable[..., Any], *a: Any) -> Any:
        before = set(fd_targets().items())
        try:
            return call(*a)
        finally:
            appeared.update(set(fd_targets().items()) - before)

    traced(window.start)
    try:
        for i in range(1, s.attribution_iterations + 1):
            result = step(*args)
            if inspect.isawaitable(result):
                await result
            gc.collect()
            traced(window.checkpoint, i)
    finally:
        attribution: Attribution = traced(window.finish, s.attribution_iterations)
        RECORDER.harness_fds |= appeared & set(fd_targets().items())
    return attribution


async def _check(
    step: Callback,
    setup: Callback | None,
    teardown: Callback | None,
    settings: Settings,
    name: str,
    hooks: Hooks,
    is_async: bool,
) -> CheckResult:
    started = time.perf_counter()
    probes = _order(make_probes(settings.probes))
    allow = Allowlist(settings.allow_threads, settings.allow_tasks, settings.allow_files)
    RECORDER.start(exclude=hooks.exclude_paths)
    old_depth = sys.get_coroutine_origin_tracking_depth()
    if is_async:
        sys.set_coroutine_origin_tracking_depth(max(old_depth, 8))
    handles: list[LeakedHandle] = []
    attribution = None
    try:
        before = HandleSnapshot.take() if hooks.own_handles else None
        try:
            value = await _call(setup)
        except Exception as exc:
            raise ScenarioError("setup", None, exc) from exc
        run = _Run(step, () if setup is None else (value,), settings, hooks, name)
        try:
            step_time = await run.warm_up()
            loop = asyncio.get_running_loop() if is_async else None
            task_baseline = set(asyncio.all_tasks()) if loop else set()
            timer_baseline = set(getattr(loop, "_scheduled", ())) if loop else set()
            usable, skipped = _unavailable(probes)
            gc.collect()
            gc.freeze()  # each sample's collection then only walks objects the step made
            try:
                every = run.choose_every(usable, step_time)
                samples = _Samples(usable, settings.cap // every + 2)
                _prime_judging(probes, skipped, settings)
                samples.take(0)
                measuring_since, rss_before = time.perf_counter(), _rss()
                done, target = 0, settings.iterations
                while True:
                    await run.iterate(done + 1, target, every, samples)
                    done = target
                    findings, judgements = _findings(probes, skipped, samples, settings, done)
                    elapsed = time.perf_counter() - measuring_since
                    more = _next_target(
                        samples.probes, judgements, done, elapsed, _rss() - rss_before, settings
                    )
                    if more is None:
                        break
                    # This pass's verdicts must not sit in the heap the next pass measures.
                    del findings, judgements
                    target = more
            finally:
                gc.unfreeze()
            if loop is not None:
                handles.extend(await _leaked_tasks(task_baseline, timer_baseline, settings))
            attribution = await _attribute(run, findings)
        finally:
            try:
                await _call(teardown, *run.args)
            except Exception as exc:
                raise ScenarioError("teardown", None, exc) from exc
    finally:
        RECORDER.stop()
        if is_async:
            sys.set_coroutine_origin_tracking_depth(old_depth)
    if before is not None:
        handles.extend(settle(before, allow, grace=settings.grace))
    return CheckResult(
        name=name,
        iterations=done,
        warmup=settings.warmup,
        findings=tuple(findings),
        samples=tuple(
            Series(p.name, p.unit, *samples.series(j)) for j, p in enumerate(samples.probes)
        ),
        handles=tuple(handles),
        attribution=attribution,
        duration=time.perf_counter() - started,
        notes=tuple(run.notes),
    )


async def run_async(
    step: Callback,
    *,
    settings: Settings,
    name: str = "",
    setup: Callback | None = None,
    teardown: Callback | None = None,
    hooks: Hooks = Hooks(),
) -> CheckResult:
    """Check ``step`` on the running event loop."""
    return await _check(step, setup, teardown, settings, name or _name_of(step), hooks, True)


def run(
    step: Callback,
    *,
    settings: Settings,
    name: str = "",
    setup: Callback | None = None,
    teardown: Callback | None = None,
    hooks: Hooks = Hooks(),
) -> CheckResult:
    """Check ``step``; async callables run on an event loop leakcheck creates and closes."""
    name = name or _name_of(step)
    if not any(is_async_callable(f) for f in (step, setup, teardown) if f is not None):
        result: CheckResult = _drive(_check(step, setup, teardown, settings, name, hooks, False))
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise LeakcheckError(
            "leakcheck.check() was called with an async step inside a running event loop; "
            "use `await leakcheck.check_async(...)` there instead"
        )
    checked: CheckResult = _run_on_new_loop(_check(step, setup, teardown, settings, name, hooks, True))
    return checked


def _run_on_new_loop(coro: Awaitable[Any]) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


async def _repeat(step: Callback, n: int) -> None:
    for i in range(1, n + 1):
        try:
            await _call(step)
        except Exception as exc:
            raise ScenarioError("step", i, exc) from exc


def repeat(step: Callback, n: int) -> None:
    """Run ``step`` ``n`` times without measuring (for valgrind and other outside tools)."""
    if is_async_callable(step):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _run_on_new_loop(_repeat(step, n))
            return
        raise LeakcheckError("repeat() with an async step inside a running loop; await repeat_async()")
    _drive(_repeat(step, n))


async def repeat_async(step: Callback, n: int) -> None:
    """Run ``step`` ``n`` times on the running loop without measuring."""
    await _repeat(step, n)


def _name_of(fn: object) -> str:
    mod = getattr(fn, "__module__", "") or ""
    qual = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{mod}.{qual}" if mod and mod != "__main__" else str(qual)
