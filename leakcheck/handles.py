"""Handles: what exists before setup and after teardown, item by item.

A snapshot lists descriptors (with their targets), Python threads, OS
threads, child processes and files created while recording. Comparing two
snapshots names every handle left behind, with the stack that created it
when the audit hook saw the creation. On an event loop, :func:`leaked_tasks`
names the tasks and ``call_later`` timers a check left pending: they must be
found before the loop closes, since closing it cancels them and hides the leak.

Real libraries release lazily (aiosqlite joins its worker thread after
``close()`` returns; a closed server frees its socket a tick later), so
:func:`settle` retries the comparison with a short backoff, as goleak does.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gc
import os
import re
import sys
import sysconfig
import threading
import time
import traceback
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Callable

import psutil

from .results import LeakedHandle

__all__ = [
    "RECORDER",
    "Allowlist",
    "HandleSnapshot",
    "Recorder",
    "diff_snapshots",
    "fd_targets",
    "leaked_tasks",
    "scheduled_timers",
    "settle",
]

#: pytest's own frames say nothing about where a handle was made.
_TEST_RUNNER = re.compile(r"[\\/](?:_pytest|pluggy|xdist|execnet)[\\/]")
_CREATE_FLAGS = os.O_CREAT | getattr(os, "O_TMPFILE", 0)
_STACK_LIMIT = 12


def _creation_stack() -> str:
    # Drop leakcheck's own frames (the hook, the recorder) from the stack.
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f
        for f in traceback.extract_stack(limit=_STACK_LIMIT + 6)
        if not f.filename.startswith(here) and not _TEST_RUNNER.search(f.filename)
    ]
    return "".join(traceback.format_list(frames[-_STACK_LIMIT:]))


class Recorder:
    """The process-wide audit hook, idle unless a leak check is recording.

    ``sys.addaudithook`` cannot be undone, so the hook is installed once and
    returns at once while ``depth`` is 0. While recording it keeps the paths
    of files and directories created (and drops removed ones) and the stack
    that started each thread.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.created: dict[str, str] = {}  # path -> creating stack
        self.excluded: list[str] = []  # path prefixes never recorded (pytest's tmp dirs, reports)
        self.thread_stacks: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        #: descriptors the harness itself opened for good (memray's first Tracker keeps a pipe)
        self.harness_fds: set[tuple[int, str]] = set()
        #: called with each thread started while recording (attribution links a thread to its starter)
        self.thread_listeners: list[Callable[[threading.Thread], None]] = []
        self._installed = False

    def install(self) -> None:
        """Add the audit hook and the thread-start wrapper (once per process)."""
        if self._installed:
            return
        sys.addaudithook(self._hook)
        # Thread starts raise no audit event before 3.12 (and 3.13 renamed the
        # primitive), so wrap whichever module-level starter threading uses.
        for attr in ("_start_new_thread", "_start_joinable_thread"):
            original = getattr(threading, attr, None)
            if original is not None and not getattr(original, "_leakcheck", False):
                setattr(threading, attr, self._wrap_thread_start(original))
        self._installed = True

    def _wrap_thread_start(self, original: Callable[..., object]) -> Callable[..., object]:
        def start(function: object, *args: object, **kwargs: object) -> object:
            if self.depth:
                owner = getattr(function, "__self__", None)
                if isinstance(owner, threading.Thread):
                    self.thread_stacks[owner] = _creation_stack()
                    for listener in self.thread_listeners:
                        listener(owner)
            return original(function, *args, **kwargs)

        start._leakcheck = True  # type: ignore[attr-defined]
        return start

    def start(self, exclude: Iterable[str] = ()) -> None:
        """Begin recording (nests); paths under ``exclude`` are ignored."""
        self.install()
        if self.depth == 0:
            self.created.clear()
            self.excluded = [os.path.abspath(p) for p in exclude]
        self.depth += 1

    def stop(self) -> None:
        """End one level of recording; the records stay readable until the next start."""
        self.depth = max(0, self.depth - 1)

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.depth:
            return
        if event == "open":
            self._on_open(args)
        elif event in ("os.remove", "os.rmdir", "shutil.rmtree"):
            self._forget(args[0])
        elif event == "os.rename":
            self._forget(args[0])
            self._remember(args[1])
        elif event == "sqlite3.connect":
            # sqlite creates its database file in C, with no "open" event of its own.
            db = args[0]
            name = os.fsdecode(db) if isinstance(db, (str, bytes, os.PathLike)) else ""
            if name not in ("", ":memory:") and not name.startswith("file:") and not os.path.exists(name):
                self._remember(name)
        elif event == "os.mkdir" and isinstance(args[0], (str, bytes, os.PathLike)) and not os.path.exists(args[0]):
            self._remember(args[0])

    def _on_open(self, args: tuple[object, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if not isinstance(path, (str, bytes, os.PathLike)):
            return  # an fd, not a path
        creates = (isinstance(mode, str) and any(c in mode for c in "wxa")) or (
            isinstance(flags, int) and flags & _CREATE_FLAGS
        )
        if creates and not os.path.exists(path):
            self._remember(path)

    def _normalise(self, path: object) -> str | None:
        try:
            text = os.fsdecode(path)  # type: ignore[arg-type]
        except TypeError:
            return None
        full = os.path.abspath(text)
        if "__pycache__" in full or any(full.startswith(p) for p in self.excluded):
            return None
        return full

    def _remember(self, path: object) -> None:
        full = self._normalise(path)
        if full is not None and full not in self.created:
            self.created[full] = _creation_stack()

    def _forget(self, path: object) -> None:
        full = self._normalise(path)
        if full is None:
            return
        self.created.pop(full, None)
        prefix = full + os.sep
        for p in [p for p in self.created if p.startswith(prefix)]:
            del self.created[p]

    def live_created_count(self) -> int:
        """Created paths still on disk; forgets the ones gone (C code deletes without audit events)."""
        gone = [p for p in self.created if not os.path.lexists(p)]
        for p in gone:
            del self.created[p]
        return len(self.created)


#: The one recorder of this process.
RECORDER = Recorder()


@dataclass(frozen=True)
class Allowlist:
    """Handles the user says are expected, as fnmatch patterns."""

    threads: tuple[str, ...] = ()  #: thread names
    tasks: tuple[str, ...] = ()  #: task names or coroutine qualified names
    files: tuple[str, ...] = ()  #: paths

    def allows(self, handle: LeakedHandle, key: str) -> bool:
        """True when ``key`` (a name or path) of ``handle`` matches a pattern of its kind."""
        patterns = {"thread": self.threads, "task": self.tasks, "file": self.files}.get(handle.kind, ())
        return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def fd_targets() -> dict[int, str]:
    """Open descriptors and what they point at (a path, ``socket:[inode]``, ``pipe:[inode]``)."""
    if os.path.isdir("/proc/self/fd"):
        targets = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                targets[int(name)] = os.readlink(f"/proc/self/fd/{name}")
            except OSError:  # the listdir's own fd, closed by now
                pass
        return targets
    try:
        return {f.fd: f.path for f in psutil.Process().open_files()}
    except (OSError, psutil.Error):  # no fd list on this platform
        return {}


def _socket_addresses() -> dict[int, str]:
    try:
        conns = psutil.Process().net_connections(kind="all")
    except (OSError, psutil.Error):  # AccessDenied, or no support on this platform
        return {}
    out = {}
    for c in conns:
        if c.fd is None or c.fd < 0:
            continue
        laddr = c.laddr if isinstance(c.laddr, str) else ":".join(map(str, c.laddr)) if c.laddr else "-"
        raddr = c.raddr if isinstance(c.raddr, str) else ":".join(map(str, c.raddr)) if c.raddr else ""
        desc = f"{c.type.name.lower() if hasattr(c.type, 'name') else 'socket'} {laddr}"
        if raddr:
            desc += f" -> {raddr}"
        if c.status and c.status != "NONE":
            desc += f" ({c.status})"
        out[c.fd] = desc
    return out


def _children() -> dict[int, str]:
    from .probes.handle_counts import child_pids  # the probes import this module: on first use

    pids = child_pids()
    try:
        if pids is None:
            kids = psutil.Process().children(recursive=False)
        else:
            kids = [child for child in map(_process, pids) if child is not None]
    except (OSError, psutil.Error):  # no access
        return {}
    out = {}
    for child in kids:
        status: str
        try:
            status = child.status()
        except psutil.Error:  # the child ended between listing and reading
            status = "gone"
        try:
            cmd = " ".join(child.cmdline()) or child.name()
        except psutil.Error:  # a zombie has no command line left, only its name
            try:
                cmd = f"{child.name()} (exited, never waited for)"
            except psutil.Error:  # the child is gone altogether
                cmd = "?"
        out[child.pid] = f"pid {child.pid} [{status}] {cmd}"
    return out


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:  # reaped between listing and looking
        return None


def _native_tids() -> set[int]:
    if os.path.isdir("/proc/self/task"):
        return {int(t) for t in os.listdir("/proc/self/task")}
    return set()


def _still_running(tids: set[int] | frozenset[int], wait: float = 0.1) -> set[int]:
    """The ``tids`` that still exist after up to ``wait`` seconds.

    A joined thread (ours, or the user's) has left ``threading`` but its OS thread
    takes a moment more to exit: seen in that moment it is no native leak.
    """
    deadline = time.monotonic() + wait
    left = set(tids)
    while left:
        left = {tid for tid in left if os.path.exists(f"/proc/self/task/{tid}")}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    return left


@dataclass(frozen=True)
class HandleSnapshot:
    """The handles of this process at one moment."""

    fds: frozenset[tuple[int, str]]
    threads: tuple[threading.Thread, ...]
    tids: frozenset[int]
    children: frozenset[tuple[int, str]]
    files: frozenset[str]

    @classmethod
    def take(cls) -> HandleSnapshot:
        """Read every kind of handle now."""
        return cls(
            fds=frozenset(fd_targets().items()),
            threads=tuple(threading.enumerate()),
            tids=frozenset(_native_tids()),
            children=frozenset((pid, desc.split("] ", 1)[-1]) for pid, desc in _children().items()),
            files=frozenset(p for p in RECORDER.created if os.path.lexists(p)),
        )


def diff_snapshots(
    before: HandleSnapshot, after: HandleSnapshot, allow: Allowlist = Allowlist()
) -> tuple[LeakedHandle, ...]:
    """Handles present in ``after`` and not in ``before``, less the allowed ones."""
    leaked: list[LeakedHandle] = []
    new_fds = sorted(after.fds - before.fds - RECORDER.harness_fds)
    sockets = _socket_addresses() if any(t.startswith("socket:") for _, t in new_fds) else {}
    for fd, target in new_fds:
        desc = sockets.get(fd, target)
        leaked.append(LeakedHandle("fd", f"fd {fd} -> {desc}"))
    known = {id(t) for t in before.threads}
    python_tids = set()
    for t in after.threads:
        python_tids.add(getattr(t, "native_id", None))
        if id(t) in known or not t.is_alive():
            continue
        handle = LeakedHandle(
            "thread",
            f"{t.name!r} ({type(t).__name__}, daemon={t.daemon}, target={_target_name(t)})",
            RECORDER.thread_stacks.get(t, ""),
        )
        if not allow.allows(handle, t.name):
            leaked.append(handle)
    for tid in sorted(_still_running(after.tids - before.tids - python_tids)):
        leaked.append(LeakedHandle("thread", f"native thread tid {tid} (started by C code)"))
    known_pids = {pid for pid, _ in before.children}
    for pid, cmd in sorted(c for c in after.children if c[0] not in known_pids):
        leaked.append(LeakedHandle("child", f"pid {pid}: {cmd}"))
    for path in sorted(after.files - before.files):
        handle = LeakedHandle("file", path, RECORDER.created.get(path, ""))
        if not allow.allows(handle, path):
            leaked.append(handle)
    return _with_origins(leaked)


_FRAME_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_INSTALLED = re.compile(r"[\\/](?:site|dist)-packages[\\/]")
_NOT_USER = tuple(
    sorted(
        {p + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_paths().get(key))}
    )
)


def _origin(stack: str) -> str:
    """The innermost frame of a formatted ``stack`` outside the standard library and installed packages."""
    frames = [m for m in map(_FRAME_LINE.match, stack.splitlines()) if m is not None]
    mine = [
        m
        for m in frames
        if not m["file"].startswith(_NOT_USER) and not m["file"].startswith("<") and not _INSTALLED.search(m["file"])
    ]
    chosen = (mine or frames)[-1:] if frames else []
    if not chosen:
        return ""
    m = chosen[0]
    path = m["file"]
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return f"{path if rel.startswith('..') else rel}:{m['line']} in {m['func']}"


def _with_origins(handles: Iterable[LeakedHandle]) -> tuple[LeakedHandle, ...]:
    return tuple(h if not h.stack or h.origin else replace(h, origin=_origin(h.stack)) for h in handles)


def _target_name(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    if target is None:
        return type(thread).run.__qualname__
    return getattr(target, "__qualname__", repr(target))


def settle(before: HandleSnapshot, allow: Allowlist = Allowlist(), *, grace: float = 1.0) -> tuple[LeakedHandle, ...]:
    """Compare now with ``before``, retrying with backoff for up to ``grace`` seconds.

    Returns the handles still left after the grace period (empty when clean).
    """
    deadline = time.monotonic() + grace
    # Usually nothing is left: then no full collection (~10 ms in a big process) is needed to say so.
    if not diff_snapshots(before, HandleSnapshot.take(), allow):
        return ()
    delay = 0.005
    while True:
        gc.collect()  # a dropped file object closes its fd when collected
        leaked = diff_snapshots(before, HandleSnapshot.take(), allow)
        if not leaked or time.monotonic() >= deadline:
            return leaked
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay *= 2


# -- asyncio: tasks and timers left pending on the loop ---------------------


def scheduled_timers(loop: asyncio.AbstractEventLoop | None) -> set[asyncio.TimerHandle]:
    """The loop's ``call_later`` handles now (none without a loop): a baseline for :func:`leaked_tasks`."""
    # private, but the only view of pending call_later()s
    return set(getattr(loop, "_scheduled", ())) if loop is not None else set()


def _pending_tasks(baseline: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and t not in baseline and not t.done()]


def _pending_timers(loop: asyncio.AbstractEventLoop, baseline: set[asyncio.TimerHandle]) -> list[asyncio.TimerHandle]:
    scheduled = getattr(loop, "_scheduled", ())  # in the loop's order, unlike scheduled_timers()
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


async def leaked_tasks(
    baseline: set[asyncio.Task[Any]], timers: set[asyncio.TimerHandle], allow: Allowlist, *, grace: float
) -> list[LeakedHandle]:
    """Tasks and timers pending on the running loop that were not in the baselines.

    Tasks get up to ``grace`` seconds to finish, with backoff; tasks matching
    ``allow.tasks`` (by task name or coroutine name) are expected to stay.
    """
    deadline = time.monotonic() + grace
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
    return list(_with_origins(leaked))
