"""A time limit per check: when it passes, say where the step hung and stop it.

A check has no natural end if its step blocks (a deadlock, a lost wake-up), and
a stuck check stalls the whole session without a word. :class:`Watchdog` waits
on an event in a thread of its own; if the check has not ended by its deadline,
it records every thread's stack (the check's thread first) and, for an async
check, the loop's pending tasks, and then interrupts the check:

* an async check is cancelled from the loop (``call_soon_threadsafe``), which
  reaches a step parked in an ``await``;
* otherwise, or if the loop itself is blocked, the check's thread is
  interrupted. On the main thread that is a signal (``SIGALRM`` sent with
  ``pthread_kill``, when no one else handles it): a signal also breaks a
  blocking ``lock.acquire()``, ``sleep`` or ``select``, where an asynchronous
  exception set with ``PyThreadState_SetAsyncExc`` (the fallback, for checks
  on other threads) only lands at the next bytecode the thread runs.

The exception raised, :class:`Interrupted`, derives from ``BaseException`` so
that a step's ``except Exception`` does not swallow it; the runner turns it
into :class:`~leakcheck.StepTimeoutError`. No part of this allocates while the
check runs: the thread sleeps in one ``Event.wait``.

An asynchronous exception is never cleared by passing ``NULL`` to
``PyThreadState_SetAsyncExc``: on CPython 3.11 (and 3.12) every call of it, the
clearing one included, raises the interpreter's "async exception pending" flag,
and only the *delivery* of an exception lowers it. Left raised, the eval loop
enters its pending-work path at every check point for good, and as soon as a
profile or trace function is installed (memray's tracker, coverage, a plain
``sys.setprofile``) the next traced call spins in C forever: every later memray
window of the process "crawled". So when the check ends, the check's own thread
replaces whatever may still be pending with a private exception and catches it
(:func:`_flush_async_exc`): nothing can land later, and the flag is lowered.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import linecache
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Any

from .probes.glibc_heap import BLOCKED_THREADS

__all__ = ["Interrupted", "Watchdog"]

#: Seconds an async check is given to act on its cancellation before its thread is interrupted.
CANCEL_GRACE = 2.0
#: Seconds between further interruptions while the check does not stop.
RETRY_EVERY = 1.0


class Interrupted(BaseException):
    """Raised in a check's thread when its time limit passed (not an ``Exception``, so not swallowed)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        # Made where it lands (an asynchronous one at the first handler it reaches): the watchdog
        # then knows the check is unwinding and holds its next interruption back (see _watch).
        _LANDED.add(threading.get_ident())


#: Threads an :class:`Interrupted` has landed in since their watchdog last sent one.
_LANDED: set[int] = set()


class _Flush(BaseException):
    """Sent by a thread to itself to consume a pending asynchronous exception (see the module's notes)."""


#: Bytecodes run while waiting for the flush to land; it lands at the first check point, this is a backstop.
_FLUSH_SPINS = 100_000


def _set_async_exc(ident: int, exc: type[BaseException] | None) -> int:
    arg = None if exc is None else ctypes.py_object(exc)
    return int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), arg))


def _flush_async_exc() -> bool:
    """Consume any asynchronous exception pending on the calling thread; ``True`` if it was lowered cleanly.

    Delivering one (rather than clearing with ``NULL``) is what lowers the
    interpreter's pending flag, so a later profile function cannot spin on it.
    """
    try:
        if _set_async_exc(threading.get_ident(), _Flush) != 1:
            return False
        for _ in range(_FLUSH_SPINS):  # each backward jump is an eval-breaker check point
            pass
    except _Flush:
        return True
    # Not delivered (no known interpreter does this): do not leave it to land in the caller's code.
    _set_async_exc(threading.get_ident(), None)
    return False


def _format_stack(frame: FrameType | None) -> str:
    return "".join(traceback.format_stack(frame)) if frame is not None else "    (no Python frames)\n"


def _indent(text: str, by: str = "    ") -> str:
    return "".join(by + line + "\n" for line in text.rstrip("\n").splitlines())


class Watchdog:
    """Interrupt the check running on this thread if it outlasts ``seconds`` (0: never)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = threading.Event()  #: set once the deadline passed and the stacks are taken
        self.stacks = ""  #: every thread's stack (and pending tasks) at the deadline
        self.phase = "setup"  #: what the check was doing (set by the runner as it goes)
        self.iteration: int | None = None  #: the step's call in progress (warm-up included)
        self._done = threading.Event()
        self._ident = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._old_handler: Any = None
        self._signal = False
        self._lock = threading.Lock()  # no interruption is sent once the check has stopped
        self._async_exc_sent = False

    def start(self) -> None:
        """Arm the limit for the check running on the calling thread (and its loop, if any)."""
        if self.seconds <= 0:
            return
        try:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
        except RuntimeError:
            self._loop = self._task = None
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill"):
            current = signal.getsignal(signal.SIGALRM)
            # Someone else's alarm (pytest-timeout's signal method) is theirs: do not take it over.
            if current in (signal.SIG_DFL, signal.SIG_IGN, None):
                self._old_handler = current
                signal.signal(signal.SIGALRM, self._on_signal)
                self._signal = True
        self._thread = threading.Thread(target=self._watch, name="leakcheck-watchdog", daemon=True)
        self._thread.start()
        # It waits on one event until the check ends; the native-heap samples need not read its cache.
        BLOCKED_THREADS.add(self._thread.ident or 0)

    def stop(self) -> None:
        """Disarm: the check ended (or was interrupted); the thread is joined."""
        with self._lock:
            self._done.set()
        self._settle()
        if self._thread is not None:
            self._thread.join()
            BLOCKED_THREADS.discard(self._thread.ident or 0)
            self._thread = None
        _LANDED.discard(self._ident)
        if self._signal:
            signal.signal(signal.SIGALRM, self._old_handler)
            self._signal = False

    def acknowledge(self) -> None:
        """The check has stopped after firing: no further interruptions."""
        with self._lock:
            self._done.set()
        # A retry sent between the first delivery and now would otherwise land in the runner's error path.
        self._settle()
        if self._task is not None and hasattr(self._task, "uncancel"):
            self._task.uncancel()

    @property
    def async_exc_pending(self) -> bool:
        """Whether an asynchronous exception sent to the check's thread may still be pending (not flushed)."""
        return self._async_exc_sent

    def _settle(self) -> None:
        # Once done is set no interruption is sent, so one flush consumes the last of them.
        if not self._async_exc_sent:
            return
        if threading.get_ident() == self._ident:
            _flush_async_exc()
        else:
            # Another thread cannot take delivery for the check's: clearing is all that is left.
            _set_async_exc(self._ident, None)
        self._async_exc_sent = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.fired.is_set() and not self._done.is_set():
            raise Interrupted

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.stacks = self._snapshot()
        self.fired.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(self._cancel, task)
            except RuntimeError:  # the loop closed meanwhile
                pass
            else:
                if self._done.wait(CANCEL_GRACE):
                    return
        warned = False
        while not self._done.is_set():
            _LANDED.discard(self._ident)
            self._interrupt()
            if self._done.wait(RETRY_EVERY):
                return
            # Landed: the check is unwinding to the runner, or the step swallowed it. A second one
            # sent while it unwinds would cut the runner's cleanup short, so wait for a quiet period.
            while self._ident in _LANDED:
                _LANDED.discard(self._ident)
                if self._done.wait(RETRY_EVERY):
                    return
            if not warned:
                # Stuck where no exception reaches (a C call that holds on): at least say where.
                if sys.__stderr__ is not None:
                    sys.__stderr__.write(
                        f"leakcheck: a check passed its {self.seconds:g} s limit and cannot be "
                        f"interrupted; it hung here:\n{self.stacks}\n"
                    )
                warned = True

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        # Runs on the loop, so on the check's thread: a check that ended meanwhile is left alone.
        if not self._done.is_set():
            task.cancel()

    def _interrupt(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if self._signal:
                signal.pthread_kill(self._ident, signal.SIGALRM)
                return
            self._async_exc_sent = True
            _set_async_exc(self._ident, Interrupted)

    def _snapshot(self) -> str:
        frames = sys._current_frames()
        names = {t.ident: t.name for t in threading.enumerate()}
        out = io.StringIO()
        out.write(f"stack of the check's thread ({names.get(self._ident, self._ident)}):\n")
        out.write(_indent(_format_stack(frames.get(self._ident)), "  "))
        me = threading.get_ident()
        others = [(i, f) for i, f in frames.items() if i not in (self._ident, me)]
        for ident, frame in others:
            out.write(f"thread {names.get(ident, ident)}:\n")
            out.write(_indent(_format_stack(frame), "  "))
        if self._loop is not None:
            out.write(self._pending_tasks())
        return out.getvalue()

    def _pending_tasks(self) -> str:
        assert self._loop is not None
        try:
            tasks = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        except RuntimeError:
            return "pending tasks: (could not be listed)\n"
        # The check's own task first: its await chain ends at the step's line.
        tasks.sort(key=lambda t: t is not self._task)
        out = io.StringIO()
        out.write(f"pending tasks of the loop ({len(tasks)}), each with its await chain:\n")
        for t in tasks:
            label = " (the check, awaiting the step)" if t is self._task else ""
            out.write(f"  {t!r}{label}\n")
            for frame in _await_chain(t.get_coro()):
                out.write(_indent(_format_frame(frame)))
        return out.getvalue()


def _await_chain(coro: object) -> list[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first."""
    frames = []
    seen = 0
    while coro is not None and seen < 50:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        seen += 1
    return frames


def _format_frame(frame: FrameType) -> str:
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return f'File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n    {line}'
