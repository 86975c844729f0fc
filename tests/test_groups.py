"""Handles left behind group by where they were made, whatever their names; apart when made apart."""

from __future__ import annotations

from leakcheck.groups import group_handles
from leakcheck.results import LeakedHandle


def test_temp_folders_with_random_names_made_at_one_line_are_one_group() -> None:
    names = ["01w4ojwu", "060nfgkq", "x1bkq9aa", "qq7_ab12"]
    made = [LeakedHandle("file", f"/tmp/T/things3-{n}", origin="dbgen.py:246 in temp_database") for n in names]
    inside = [LeakedHandle("file", f"/tmp/T/things3-{n}/main.sqlite", origin="dbgen.py:222 in generate") for n in names]
    groups = group_handles(made + inside)
    assert [g.describe() for g in groups] == [
        "4 \u00d7 file: /tmp/T/things3-*, created at dbgen.py:246 in temp_database",
        "4 \u00d7 file: /tmp/T/things3-*/main.sqlite, created at dbgen.py:222 in generate",
    ]


def test_alike_handles_keep_the_first_description_and_unknown_origins_group_by_pattern() -> None:
    threads = [LeakedHandle("thread", f"'Thread-{i}' (Thread)", origin="app.py:7 in start") for i in range(3)]
    fds = [LeakedHandle("fd", "fd 7 -> /data/a.log"), LeakedHandle("fd", "fd 8 -> /data/a.log")]
    other = [LeakedHandle("fd", "fd 9 -> socket:[123]")]
    groups = group_handles(threads + fds + other)
    assert [g.describe() for g in groups] == [
        "3 \u00d7 thread: 'Thread-0' (Thread), started at app.py:7 in start",
        "2 \u00d7 fd: fd 7 -> /data/a.log",
        "fd: fd 9 -> socket:[123]",
    ]
