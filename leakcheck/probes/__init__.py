"""Cheap per-iteration readings, one small class per measure.

:mod:`.base` says what a probe is, :mod:`.memory` holds the heap and process
memory probes, :mod:`.mapped` the virtual size, :mod:`.handle_counts` the
counts of fds, threads, tasks, children and files, :mod:`.unclosed` the
resources the garbage collector had to close, and :mod:`.glibc_heap` what the
native-heap probe needs to know about glibc's allocator. This module names them all: :data:`PROBES`
maps each name to its class, :func:`make_probes` builds them from settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .base import HandleProbe, Probe
from .handle_counts import (
    AsyncioTasks,
    ChildProcesses,
    CreatedFiles,
    FileDescriptors,
    OSThreads,
    PythonThreads,
)
from .mapped import MappedMemory
from .memory import NativeHeap, PythonBlocks, ResidentMemory, TracedBytes, UniqueMemory
from .unclosed import UnclosedResources

__all__ = [
    "DEFAULT_PROBES",
    "PROBES",
    "AsyncioTasks",
    "ChildProcesses",
    "CreatedFiles",
    "FileDescriptors",
    "HandleProbe",
    "MappedMemory",
    "NativeHeap",
    "OSThreads",
    "Probe",
    "PythonBlocks",
    "PythonThreads",
    "ResidentMemory",
    "TracedBytes",
    "UnclosedResources",
    "UniqueMemory",
    "make_probes",
]

PROBES: dict[str, type[Probe]] = {
    cls.name: cls
    for cls in (
        PythonBlocks,
        TracedBytes,
        NativeHeap,
        ResidentMemory,
        UniqueMemory,
        MappedMemory,
        FileDescriptors,
        PythonThreads,
        OSThreads,
        AsyncioTasks,
        ChildProcesses,
        CreatedFiles,
        UnclosedResources,
    )
}

#: Every probe but USS, which costs a millisecond a reading.
DEFAULT_PROBES: tuple[str, ...] = tuple(name for name in PROBES if name != "uss")


def make_probes(names: Sequence[str], *, source: str = "") -> list[Probe]:
    """Instantiate probes by name; :class:`ConfigError` lists the known names for a bad one."""
    probes = []
    for name in names:
        cls = PROBES.get(name)
        if cls is None:
            raise ConfigError("probes", name, f"unknown probe; known probes: {', '.join(PROBES)}", source)
        probes.append(cls())
    return probes
