"""The handle probes: counts of descriptors, threads, tasks, children and files.

Each is a :class:`~leakcheck.probes.base.HandleProbe`; only the count differs.
Naming the handles themselves (which fd, which thread) is
:mod:`leakcheck.handles`'s job, done once after teardown, not per sample.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Callable

import psutil

from ..handles import RECORDER
from .base import HandleProbe
from .procfs import TASKS, read_small, task_ids

__all__ = [
    "AsyncioTasks",
    "ChildProcesses",
    "CreatedFiles",
    "FileDescriptors",
    "OSThreads",
    "PythonThreads",
    "child_pids",
]


def _entry_counter(proc_dir: str, psutil_method: str) -> Callable[[], float]:
    """Count the entries of ``proc_dir`` (Linux); elsewhere ask psutil's ``Process.<psutil_method>()``."""
    if os.path.isdir(proc_dir):
        return lambda: float(len(os.listdir(proc_dir)))
    method = getattr(psutil.Process(), psutil_method)
    return lambda: float(method())


class FileDescriptors(HandleProbe):
    """Open file descriptors (files, sockets, pipes)."""

    name = "fds"
    title = "File descriptors"
    unit = "fds"

    def counter(self) -> Callable[[], float]:
        return _entry_counter("/proc/self/fd", "num_fds")


class PythonThreads(HandleProbe):
    """Live Python threads (``threading.active_count()``)."""

    name = "threads"
    title = "Python threads"
    unit = "threads"

    def counter(self) -> Callable[[], float]:
        return lambda: float(threading.active_count())


class OSThreads(HandleProbe):
    """Threads of the process as the OS sees them, including ones C code started."""

    name = "os_threads"
    title = "OS threads"
    unit = "threads"

    def counter(self) -> Callable[[], float]:
        if os.path.isdir(TASKS):
            return lambda: float(len(task_ids()))
        return _entry_counter(TASKS, "num_threads")


class AsyncioTasks(HandleProbe):
    """Pending asyncio tasks on the running event loop (async steps only)."""

    name = "tasks"
    title = "asyncio tasks"
    unit = "tasks"

    def unavailable(self) -> str | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return "no running event loop (a sync step)"
        return None

    def counter(self) -> Callable[[], float]:
        return lambda: float(len(asyncio.all_tasks()))


def _children_fields() -> list[bytes]:
    fields: list[bytes] = []
    for tid in task_ids():
        try:
            # A thread's children are few; 64 KiB holds ~9,000 pids.
            fields += read_small(f"/proc/self/task/{tid}/children", 65536).split()
        except OSError:  # the thread ended between listdir and open
            pass
    return fields


def _children_from_proc() -> float:
    return float(len(_children_fields()))


def child_pids() -> list[int] | None:
    """Pids of this process's direct children (any thread's), from ``/proc``; None where it has no such file.

    psutil's ``Process.children()`` reads the status of every process on the machine to find them.
    """
    if not os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children"):
        return None
    return [int(pid) for pid in _children_fields()]


class ChildProcesses(HandleProbe):
    """Direct child processes, zombies (never waited for) included."""

    name = "children"
    title = "Child processes"
    unit = "processes"

    def counter(self) -> Callable[[], float]:
        if os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children"):
            return _children_from_proc
        proc = psutil.Process()
        return lambda: float(len(proc.children()))


class CreatedFiles(HandleProbe):
    """Files and directories created while recording and still on disk (via audit hooks)."""

    name = "files"
    title = "Files left on disk"
    unit = "files"

    def counter(self) -> Callable[[], float]:
        return lambda: float(RECORDER.live_created_count())
