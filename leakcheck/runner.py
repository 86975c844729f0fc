"""Running a step many times: warm-up, sampled iterations, verdicts, cleanup.

One measuring loop serves sync and async steps: it is written as a
coroutine, and for sync steps that coroutine never suspends, so it is driven
to completion with a single ``send`` and no event loop (:mod:`leakcheck.aio`).
Async steps run on the running loop (:func:`run_async`) or on a loop
leakcheck creates and closes (:func:`run`), after checking for pending tasks
and timers first (:func:`leakcheck.handles.leaked_tasks`), since closing a
loop cancels them and would hide the leak. How long to measure, and which
spans a verdict must hold on, is :mod:`leakcheck.policy`'s to decide.

The harness must not read as a leak: readings go into ``array`` buffers
allocated before the baseline, garbage collection is frozen for everything
that existed before it (``gc.freeze``) so each sample's collection only
walks new objects, and interpreter caches are cleared before each sample.
"""

from __future__ import annotations

import array
import asyncio
import dataclasses
import gc
import inspect
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psutil

from .aio import call, drive, in_running_loop, is_async_callable, run_on_new_loop
from .cleanup import clear_interpreter_caches
from .config import Settings
from .errors import LeakcheckError, ScenarioError, StepTimeoutError
from .handles import (
    RECORDER,
    Allowlist,
    HandleSnapshot,
    fd_targets,
    leaked_tasks,
    scheduled_timers,
    settle,
)
from .policy import judge_replicated, next_target
from .probes import Probe, make_probes
from .probes.procfs import begin_sample, end_sample
from .probes.unclosed import RECORDER as UNCLOSED
from .results import (
    HANDLE_PROBES,
    Attribution,
    CheckResult,
    Finding,
    LeakedHandle,
    Series,
    UnclosedResource,
    Verdict,
    group_handles,
)
from .units import format_size
from .verdict import Judgement
from .watchdog import Interrupted, Watchdog

if TYPE_CHECKING:
    from .attribution import CodeMap
    from .results import Retention

__all__ = ["CheckContext", "run", "run_async"]

Callback = Callable[..., Any]

#: Fewest samples a first pass takes, however slow sampling is next to the step.
MIN_SAMPLES = 20
#: Share of the step's time that sampling may cost when k is chosen for us.
SAMPLING_BUDGET = 0.15


@dataclass(frozen=True)
class CheckContext:
    """The caller's context for one check: where captures go, whether to attribute anyway, who owns handles."""

    capture_dir: Path | None = None  #: per-check folder for flamegraphs (a report was asked for)
    #: run the attribution window even when nothing grew (a report with an explicit attribution mode)
    always_attribute: bool = False
    #: snapshot fds/threads/children/files around setup and teardown (the plugin does it itself)
    own_handles: bool = True
    #: called after every sample with (iterations done, current target, note such as "py_blocks +2.0/it,
    #: extending"); it must return quickly and keep nothing (see :class:`leakcheck.progress.ProgressLine`)
    progress: Callable[[int, int, str], None] | None = None
    #: the report folder the captures go under: leakcheck's own files, never "left behind"
    report_dir: Path | None = None
    #: called with the verdict (no attribution yet) before an attribution window opens, so a
    #: tracer that crashes the process (memray's can) cannot take the verdict with it
    on_verdict: Callable[[CheckResult], None] | None = None

    def excluded_paths(self) -> list[str]:
        """Folders whose files the check writes itself (report, captures): not the step's to clean up."""
        return [str(p) for p in (self.report_dir, self.capture_dir) if p is not None]

    #: folders of the user's code when the settings name none (the plugin: pytest's rootdir)
    user_paths: tuple[str, ...] = ()
    #: what `leakcheck valgrind` runs to re-check this test (a pytest node id, ``FILE.py:FUNCTION``)
    valgrind_target: str = ""
    #: keep a leaking check's memray capture in capture_dir instead of rendering its flamegraph
    #: (seconds each): the report renders the worst few (``--leak-flamegraphs``)
    defer_flamegraph: bool = False
    #: asked with a Python-heap leak's severity whether to run memray for its flamegraph alone:
    #: None yes, else the note why not (:class:`leakcheck.suite.FlamegraphQuota`); unset: always
    flamegraph_quota: Callable[[float], str | None] | None = None


class _Samples:
    """Readings of every probe, in buffers allocated up front (the heap must not see them)."""

    def __init__(self, probes: Sequence[Probe], capacity: int) -> None:
        self.probes = tuple(probes)
        self.iterations = array.array("q", bytes(8 * capacity))
        self.values = tuple(array.array("d", bytes(8 * capacity)) for _ in probes)
        self.count = 0
        self.capacity = capacity
        self.progress: Callable[[int, int, str], None] | None = None
        self.target = 0
        self.note = ""
        self.spent = 0.0  #: seconds spent sampling, which the measuring-time budgets leave out

    def take(self, iteration: int) -> None:
        started = time.perf_counter()
        clear_interpreter_caches()
        gc.collect()
        n = self.count
        if n >= self.capacity:
            return
        values = self.values
        probes = self.probes
        # py_blocks, when present, is first: read it before anything else allocates
        begin_sample()
        try:
            for j in range(len(probes)):
                values[j][n] = probes[j].read()
        finally:
            end_sample()
        self.iterations[n] = iteration
        self.count = n + 1
        self.spent += time.perf_counter() - started
        if self.progress is not None:
            self.progress(iteration, self.target, self.note)

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
    context: CheckContext
    name: str
    watchdog: Watchdog

    async def iterate(
        self, first: int, last: int, every: int = 0, samples: _Samples | None = None, phase: str = "step"
    ) -> None:
        step, args, watchdog = self.step, self.args, self.watchdog
        watchdog.phase = phase
        for i in range(first, last + 1):
            # Calls counted over every phase: "hung at iteration N" is the Nth call of the step.
            watchdog.iteration = (watchdog.iteration or 0) + 1
            try:
                result = step(*args)
                # None first: the ABC check behind isawaitable() runs cold after every sample.
                if result is not None and inspect.isawaitable(result):
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
    """Judge every probe's samples (by :func:`leakcheck.policy.judge_replicated`), as findings."""
    findings = list(skipped)
    judgements = []
    for j, probe in enumerate(samples.probes):
        x, y = samples.series(j)
        limit = s.limit_for(probe.name)
        jd = judge_replicated(x, y, limit, s, done, slow=not s.limit_is_set(probe.name))
        judgements.append(jd)
        findings.append(
            Finding(probe.name, probe.title, probe.unit, jd.evidence.slope, limit, jd.verdict, jd.evidence, jd.reason)
        )
    return findings, judgements


def _progress_note(findings: Sequence[Finding]) -> str:
    """The measure nearest its limit, for the progress line: ``py_blocks +2.0/it, extending``."""
    judged = [f for f in findings if f.evidence is not None and f.limit > 0]
    if not judged:
        return "extending"
    top = max(judged, key=lambda f: f.growth_per_iteration / f.limit)
    g = top.growth_per_iteration
    size = ("-" if g < 0 else "+") + format_size(abs(g)) if top.unit == "B" else f"{g:+.1f}"
    return f"{top.probe} {size}/it, extending"


def _rss() -> int:
    """Resident bytes of this process now (0 where unknown)."""
    try:
        return int(psutil.Process().memory_info().rss)
    except (psutil.Error, OSError):
        return 0


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
        # One varying column walks every path a varying series takes (the pair slopes are
        # most of the cost); the flat rest walk the flat one, as most measures of a clean step do.
        scratch.values[0][i] = float(i * (i % 7))
        for column in scratch.values[1:]:
            column[i] = 1.0
        scratch.iterations[i] = i * 10
    scratch.count = n
    findings, judgements = _findings(probes, skipped, scratch, s, 10 * (n - 1))
    del findings, judgements, scratch


def _unavailable(probes: Sequence[Probe]) -> tuple[list[Probe], list[Finding]]:
    usable, skipped = [], []
    for p in probes:
        reason = p.unavailable()
        if reason is None:
            usable.append(p)
        else:
            skipped.append(Finding(p.name, p.title, p.unit, 0.0, p.default_limit, Verdict.UNAVAILABLE, None, reason))
    return usable, skipped


def _will_attribute(s: Settings, context: CheckContext, findings: Sequence[Finding]) -> bool:
    # Tracing costs 10-400x the step (tracemalloc on an int-heavy loop is the
    # worst case): only when growth is suspected, unless the user asked.
    suspected = any(f.leaking or f.verdict is Verdict.INCONCLUSIVE for f in findings)
    return s.attribution != "off" and (suspected or context.always_attribute)


async def _attribute(run: _Run, findings: Sequence[Finding]) -> Attribution | None:
    s, context = run.settings, run.context
    leaking = [f for f in findings if f.leaking]
    if not _will_attribute(s, context, findings):
        return None
    # Imported on first use: most checks never open a window. (Importing leakcheck.suite at
    # module level shifted the heap enough to turn a clean case's native-heap sawtooth into a
    # "slow leak" at some install paths: keep import-time allocations as they were.)
    from .attribution import CodeMap, open_window, with_retention
    from .suite import severity_of

    # RSS rises with the Python heap too: only the native-heap measure, or RSS/USS growth that
    # no Python-heap measure explains, is native growth (and a reason to suggest valgrind).
    python_heap = any(f.probe in ("py_blocks", "py_traced") for f in leaking)
    native = [f for f in leaking if f.probe == "native_heap"] or (
        [] if python_heap else [f for f in leaking if f.probe in ("rss", "uss")]
    )
    # In auto mode memray may run for the flamegraph alone: then only while among the worst so far
    # (every leak with a capture is ranked; a native or mapped one runs memray anyway).
    quota, mapped = context.flamegraph_quota, any(f.probe == "mapped" for f in leaking)
    ranked = quota is not None and s.attribution == "auto" and context.capture_dir is not None and bool(leaking)
    skipped = quota(severity_of(leaking)) if quota is not None and ranked else None
    skipped = None if native or mapped else skipped
    target = context.valgrind_target or ("" if run.args else _valgrind_target(step_of(run)))
    user_paths = s.user_paths or context.user_paths or _module_folder(step_of(run))
    window = open_window(
        s.attribution,
        iterations=s.attribution_iterations,
        frames=s.tracemalloc_frames,
        capture_dir=context.capture_dir,
        # A flamegraph costs seconds: only for what leaks.
        flamegraph=context.capture_dir is not None and bool(leaking) and skipped is None,
        native_suspected=bool(native),
        native_growth=native[0].growth_per_iteration if native else None,
        mapped_growth=next((f.growth_per_iteration for f in leaking if f.probe == "mapped"), None),
        user_paths=user_paths,
        valgrind_command=f"leakcheck valgrind {target} 5" if target else "",
        defer_flamegraph=context.defer_flamegraph,
    )
    step, args = run.step, run.args
    # No user code runs inside the window's own calls: descriptors that appear
    # there and stay open are the tracer's (memray's first Tracker keeps a pipe).
    appeared: set[tuple[int, str]] = set()

    def traced(fn: Callable[..., Any], *a: Any) -> Any:
        before = set(fd_targets().items())
        try:
            return fn(*a)
        finally:
            appeared.update(set(fd_targets().items()) - before)

    # As in the measuring loop, each iteration's collection walks only what the window made:
    # a full collection of a big process (a suite's worth of collected tests) costs ~0.1 s,
    # many times the step, and the window takes one per iteration. Garbage frozen here was
    # made before the window: no tracer sees it, and the retention census collects it.
    gc.freeze()
    traced(window.start)
    watchdog = run.watchdog
    watchdog.phase = "attribution window"
    try:
        for i in range(1, s.attribution_iterations + 1):
            watchdog.iteration = (watchdog.iteration or 0) + 1
            result = step(*args)
            if inspect.isawaitable(result):
                await result
            gc.collect()
            traced(window.checkpoint, i)
    finally:
        gc.unfreeze()
        attribution: Attribution = traced(window.finish, s.attribution_iterations)
        RECORDER.harness_fds |= appeared & set(fd_targets().items())
    if skipped is not None:
        attribution = dataclasses.replace(attribution, notes=(*attribution.notes, skipped))
    if any(f.probe not in HANDLE_PROBES for f in leaking):
        attribution = with_retention(attribution, await _retention(run, CodeMap(list(user_paths))))
    return attribution


async def _retention(run: _Run, code: CodeMap) -> Retention | None:
    """What keeps it alive: the census over a short untraced window of its own, then chains.

    Untraced, because counting half a million objects under tracemalloc costs
    seconds (every count is a traced allocation), and the census needs four points.
    """
    from .attribution import RetentionWatch

    n = run.settings.attribution_iterations
    watch = RetentionWatch(n, code=code)
    step, args = run.step, run.args
    gc.collect()
    watch.checkpoint(0)
    # Frozen between censuses, so each iteration's collection walks only new objects; a
    # census needs every object (frozen ones are invisible to gc.get_objects), so the heap
    # is thawed and fully collected for each of its four points only.
    gc.freeze()
    try:
        for i in range(1, n + 1):
            result = step(*args)
            if inspect.isawaitable(result):
                await result
            gc.collect()
            if watch.wants(i):
                gc.unfreeze()
                gc.collect()
                watch.checkpoint(i)
                gc.freeze()
    finally:
        gc.unfreeze()
    return watch.finish(n)


def step_of(run: _Run) -> Callback:
    """The user's function behind the step (a ``functools.partial`` is unwrapped)."""
    step = run.step
    while hasattr(step, "func") and callable(step.func):
        step = step.func
    unwrapped: Callback = inspect.unwrap(step)
    return unwrapped


def _module_folder(fn: Callback) -> tuple[str, ...]:
    """The folder of ``fn``'s source file: the user's code when nothing else says where it is."""
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:  # a builtin or a callable object without source
        source = None
    return (os.path.dirname(os.path.abspath(source)),) if source else ()


def _valgrind_target(fn: Callback) -> str:
    """``FILE.py:FUNCTION`` for a module-level function, which `leakcheck valgrind` can run; else ""."""
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:  # not a Python function
        return ""
    qualname = getattr(fn, "__qualname__", "")
    if not source or not qualname or "." in qualname or "<" in qualname:
        return ""
    return f"{os.path.relpath(source)}:{qualname}"


async def _check(
    step: Callback,
    setup: Callback | None,
    teardown: Callback | None,
    settings: Settings,
    name: str,
    context: CheckContext,
    is_async: bool,
) -> CheckResult:
    """:func:`_measure` under the check's time limit (:mod:`leakcheck.watchdog`)."""
    watchdog = Watchdog(settings.timeout)
    watchdog.start()
    try:
        return await _measure(step, setup, teardown, settings, name, context, is_async, watchdog)
    except (Interrupted, asyncio.CancelledError):
        if not watchdog.fired.is_set():
            raise
        watchdog.acknowledge()
        raise StepTimeoutError(name, watchdog.phase, watchdog.iteration, settings.timeout, watchdog.stacks) from None
    finally:
        watchdog.stop()


async def _measure(
    step: Callback,
    setup: Callback | None,
    teardown: Callback | None,
    settings: Settings,
    name: str,
    context: CheckContext,
    is_async: bool,
    watchdog: Watchdog,
) -> CheckResult:
    started = time.perf_counter()
    probes = _order(make_probes(settings.probes))
    allow = Allowlist(settings.allow_threads, settings.allow_tasks, settings.allow_files)
    RECORDER.start(exclude=context.excluded_paths())
    old_depth = sys.get_coroutine_origin_tracking_depth()
    if is_async:
        sys.set_coroutine_origin_tracking_depth(max(old_depth, 8))
    handles: list[LeakedHandle] = []
    attribution = None
    unclosed: tuple[UnclosedResource, ...] = ()
    try:
        before = HandleSnapshot.take() if context.own_handles else None
        try:
            value = await call(setup)
        except Exception as exc:
            raise ScenarioError("setup", None, exc) from exc
        run = _Run(step, () if setup is None else (value,), settings, context, name, watchdog)
        try:
            if "unclosed" in settings.probes:
                # From the warm-up on (a ResourceWarning turned error there would skip the
                # finalizer's cleanup), and once: changing the filters clears every registry.
                UNCLOSED.start(settings.allow_unclosed)
            step_time = await run.warm_up()
            loop = asyncio.get_running_loop() if is_async else None
            task_baseline = set(asyncio.all_tasks()) if loop else set()
            timer_baseline = scheduled_timers(loop)
            usable, skipped = _unavailable(probes)
            # The warm-up's garbage is young: a full collection here walked the whole heap
            # (~8 ms in a small process, ~0.1 s in a worker holding a collected suite) for
            # every test. Older garbage is frozen with the rest and is the same in every sample.
            gc.collect(1)
            gc.freeze()  # each sample's collection then only walks objects the step made
            try:
                every = run.choose_every(usable, step_time)
                samples = _Samples(usable, settings.cap // every + 2)
                samples.progress = context.progress
                _prime_judging(probes, skipped, settings)
                UNCLOSED.zero()  # only the measured iterations count; the warm-up's kinds stay known
                samples.take(0)
                rss_before, stepping = _rss(), 0.0
                samples.spent = 0.0  # the baseline's reading is not inside any pass
                done, target = 0, settings.iterations
                samples.target = target
                while True:
                    started = time.perf_counter()
                    await run.iterate(done + 1, target, every, samples)
                    stepping += time.perf_counter() - started
                    done = target
                    findings, judgements = _findings(probes, skipped, samples, settings, done)
                    # The budgets count the step's own time: sampling and judging slow
                    # down under load, and must not decide how far growth is followed.
                    elapsed = max(0.0, stepping - samples.spent)
                    more = next_target(samples.probes, judgements, done, elapsed, _rss() - rss_before, settings)
                    if more is None:
                        break
                    # This pass's verdicts must not sit in the heap the next pass measures.
                    if context.progress is not None:
                        samples.note = _progress_note(findings)
                    del findings, judgements
                    target = samples.target = more
            finally:
                gc.unfreeze()
                UNCLOSED.hold()  # the attribution window only adds where the objects were allocated
            if loop is not None:
                allow_tasks = Allowlist(tasks=settings.allow_tasks)
                handles.extend(await leaked_tasks(task_baseline, timer_baseline, allow_tasks, grace=settings.grace))
            if context.on_verdict is not None and _will_attribute(settings, context, findings):
                context.on_verdict(_result(name, done, settings, findings, samples, handles, None, started))
            attribution = await _attribute(run, findings)
            if UNCLOSED.active:
                unclosed = tuple(
                    UnclosedResource(k.source, k.message, k.count, k.traceback) for k in UNCLOSED.summary()
                )
        finally:
            UNCLOSED.stop()
            # After a hang the teardown is skipped: it would most likely block on what the step holds.
            if not watchdog.fired.is_set():
                watchdog.phase, watchdog.iteration = "teardown", None
                try:
                    await call(teardown, *run.args)
                except Exception as exc:
                    raise ScenarioError("teardown", None, exc) from exc
    finally:
        RECORDER.stop()
        if is_async:
            sys.set_coroutine_origin_tracking_depth(old_depth)
    if before is not None:
        handles.extend(settle(before, allow, grace=settings.grace))
    return _result(name, done, settings, findings, samples, handles, attribution, started, unclosed)


def _result(
    name: str,
    done: int,
    settings: Settings,
    findings: Sequence[Finding],
    samples: _Samples,
    handles: Sequence[LeakedHandle],
    attribution: Attribution | None,
    started: float,
    unclosed: tuple[UnclosedResource, ...] = (),
) -> CheckResult:
    return CheckResult(
        name=name,
        iterations=done,
        warmup=settings.warmup,
        findings=tuple(findings),
        samples=tuple(Series(p.name, p.unit, *samples.series(j)) for j, p in enumerate(samples.probes)),
        handles=group_handles(handles),
        attribution=attribution,
        duration=time.perf_counter() - started,
        unclosed=unclosed,
    )


async def run_async(
    step: Callback,
    *,
    settings: Settings,
    name: str = "",
    setup: Callback | None = None,
    teardown: Callback | None = None,
    context: CheckContext = CheckContext(),
) -> CheckResult:
    """Check ``step`` on the running event loop."""
    return await _check(step, setup, teardown, settings, name or _name_of(step), context, True)


def run(
    step: Callback,
    *,
    settings: Settings,
    name: str = "",
    setup: Callback | None = None,
    teardown: Callback | None = None,
    context: CheckContext = CheckContext(),
) -> CheckResult:
    """Check ``step``; async callables run on an event loop leakcheck creates and closes."""
    name = name or _name_of(step)
    if not any(is_async_callable(f) for f in (step, setup, teardown) if f is not None):
        result: CheckResult = drive(_check(step, setup, teardown, settings, name, context, False))
        return result
    if in_running_loop():
        raise LeakcheckError(
            "leakcheck.check() was called with an async step inside a running event loop; "
            "use `await leakcheck.check_async(...)` there instead"
        )
    checked: CheckResult = run_on_new_loop(_check(step, setup, teardown, settings, name, context, True))
    return checked


def _name_of(fn: object) -> str:
    mod = getattr(fn, "__module__", "") or ""
    qual = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{mod}.{qual}" if mod and mod != "__main__" else str(qual)
