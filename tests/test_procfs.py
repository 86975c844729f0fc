"""One sample reads each shared /proc file once; outside a sample every reading is fresh."""

from __future__ import annotations

import os
import threading

import pytest

from leakcheck.probes import procfs
from leakcheck.probes.handle_counts import OSThreads
from leakcheck.probes.mapped import MappedMemory
from leakcheck.probes.memory import ResidentMemory

pytestmark = pytest.mark.skipif(not os.path.exists(procfs.STATM), reason="needs /proc/self/statm (Linux)")


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = procfs.read_small

    def counted(path: str, size: int = 4096) -> bytes:
        reads.append(path)
        return real(path, size)

    monkeypatch.setattr(procfs, "read_small", counted)
    return reads


def test_rss_and_mapped_share_one_statm_read_within_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _counting_reads(monkeypatch)
    rss, mapped = ResidentMemory(), MappedMemory()
    procfs.begin_sample()
    try:
        inside = (rss.read(), mapped.read())
    finally:
        procfs.end_sample()
    assert reads.count(procfs.STATM) == 1
    assert inside[0] > 0 and inside[1] >= inside[0]  # the virtual size holds the resident set


def test_outside_a_sample_each_reading_reads_statm_again(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _counting_reads(monkeypatch)
    rss = ResidentMemory()
    procfs.begin_sample()
    procfs.end_sample()
    rss.read()
    rss.read()
    assert reads.count(procfs.STATM) == 2


def test_a_thread_started_after_a_sample_is_counted_by_the_next_one() -> None:
    threads = OSThreads().counter()
    procfs.begin_sample()
    try:
        before = threads()
        release, started = threading.Event(), threading.Event()
        worker = threading.Thread(target=lambda: (started.set(), release.wait()))
        worker.start()
        started.wait()
        assert threads() == before  # the same sample: the listing it already made
    finally:
        procfs.end_sample()
    try:
        procfs.begin_sample()
        try:
            assert threads() == before + 1  # a new sample lists the threads again
        finally:
            procfs.end_sample()
    finally:
        release.set()
        worker.join()
