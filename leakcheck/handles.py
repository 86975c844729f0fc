"""Handles: what exists before setup and after teardown, item by item.

A snapshot lists descriptors (with their targets), Python threads, OS
threads, child processes and files created while recording. Comparing two
snapshots names every handle left behind, with the stack that created it
when the audit hook saw the creation.

Real libraries release lazily (aiosqlite joins its worker thread after
``close()`` returns; a closed server frees its socket a tick later), so
:func:`settle` retries the comparison with a short backoff, as goleak does.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Callable

from .results import LeakedHandle

__all__ = ["RECORDER", "Allowlist", "HandleSnapshot", "Recorder", "diff_snapshots", "settle"]

_CREATE_FLAGS = os.O_CREAT | getattr(os, "O_TMPFILE", 0)
_STACK_LIMIT = 12


def _creation_stack() -> str:
    # Drop leakcheck's own frames (the hook, the recorder) from the stack.
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_stack(limit=_STACK_LIMIT + 6) if not f.filename.startswith(here)]
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
        import psutil

        return {f.fd: f.path for f in psutil.Process().open_files()}
    except (ImportError, OSError, psutil_error()):  # no fd list on this platform
        return {}


def psutil_error() -> type[Exception]:
    """psutil's base exception, or a stand-in that nothing raises when psutil is missing."""
    try:
        import psutil
    except ImportError:
        return _NeverRaised
    return psutil.Error


class _NeverRaised(Exception):
    pass


def _socket_addresses() -> dict[int, str]:
    try:
        import psutil

        conns = psutil.Process().net_connections(kind="all")
    except (ImportError, OSError, psutil_error()):  # AccessDenied, or no support on this platform
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
    try:
        import psutil

        kids = psutil.Process().children(recursive=False)
    except (ImportError, OSError, psutil_error()):  # psutil missing or no access
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


def _native_tids() -> set[int]:
    if os.path.isdir("/proc/self/task"):
        return {int(t) for t in os.listdir("/proc/self/task")}
    return set()


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
    before: HandleSnapshot, after: HandleSnapshot, allow: Allowlist = Allowlist(), kinds: Sequence[str] = ()
) -> tuple[LeakedHandle, ...]:
    """Handles present in ``after`` and not in ``before``, less the allowed ones.

    ``kinds`` limits the check to some of ``fd``, ``thread``, ``child``, ``file``
    (all when empty).
    """
    want = set(kinds) or {"fd", "thread", "child", "file"}
    leaked: list[LeakedHandle] = []
    if "fd" in want:
        new_fds = sorted(after.fds - before.fds - RECORDER.harness_fds)
        sockets = _socket_addresses() if any(t.startswith("socket:") for _, t in new_fds) else {}
        for fd, target in new_fds:
            desc = sockets.get(fd, target)
            leaked.append(LeakedHandle("fd", f"fd {fd} -> {desc}"))
    if "thread" in want:
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
        for tid in sorted(after.tids - before.tids - python_tids):
            leaked.append(LeakedHandle("thread", f"native thread tid {tid} (started by C code)"))
    if "child" in want:
        known_pids = {pid for pid, _ in before.children}
        for pid, cmd in sorted(c for c in after.children if c[0] not in known_pids):
            leaked.append(LeakedHandle("child", f"pid {pid}: {cmd}"))
    if "file" in want:
        for path in sorted(after.files - before.files):
            handle = LeakedHandle("file", path, RECORDER.created.get(path, ""))
            if not allow.allows(handle, path):
                leaked.append(handle)
    return tuple(leaked)


def _target_name(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    if target is None:
        return type(thread).run.__qualname__
    return getattr(target, "__qualname__", repr(target))


def settle(
    before: HandleSnapshot,
    allow: Allowlist = Allowlist(),
    *,
    grace: float = 1.0,
    kinds: Sequence[str] = (),
    wait: Callable[[float], None] = time.sleep,
) -> tuple[LeakedHandle, ...]:
    """Compare now with ``before``, retrying with backoff for up to ``grace`` seconds.

    Returns the handles still left after the grace period (empty when clean).
    """
    import gc

    deadline = time.monotonic() + grace
    delay = 0.005
    while True:
        gc.collect()  # a dropped file object closes its fd when collected
        leaked = diff_snapshots(before, HandleSnapshot.take(), allow, kinds)
        if not leaked or time.monotonic() >= deadline:
            return leaked
        wait(min(delay, max(0.0, deadline - time.monotonic())))
        delay *= 2
