"""The progress line without pytest: what fits in the room left, and what a log gets.

The pytest side (drawn around the capture, pytest's own line resumed after log
lines) is in ``test_plugin_suite.py``; rate limits are in ``test_suite.py``.
"""

from __future__ import annotations

import pytest

from leakcheck.progress import LOG_EVERY, ProgressLine, fit

NOTE = "native_heap +4.1 KiB/it, extending"


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        (80, "test_x: iteration 201/400, native_heap +4.1 KiB/it, extending"),
        (61, "test_x: iteration 201/400, native_heap +4.1 KiB/it, extending"),
        (60, "test_x: iteration 201/400, native_heap +4.1 KiB/it"),  # the note's last part goes first
        (50, "test_x: iteration 201/400, native_heap +4.1 KiB/it"),
        (49, "test_x: iteration 201/400"),  # then the whole note: never cut inside a number
        (25, "test_x: iteration 201/400"),
        (24, "iteration 201/400"),  # not even the shortest name: only the count
        (17, "iteration 201/400"),
        (16, "201/400"),
        (7, "201/400"),
        (6, ""),
    ],
)
def test_the_note_gives_way_before_the_name(room: int, expected: str) -> None:
    assert fit("test_x", 201, 400, NOTE, room) == expected


def test_a_long_name_loses_its_middle_and_keeps_its_start_and_parameters() -> None:
    name = "test_parse_a_document[" + "x" * 40 + "-unicode]"
    text = fit(name, 5, 200, NOTE, 40)
    assert text == "test_parse...x-unicode]: iteration 5/200"
    assert len(text) <= 40
    # the shortest name worth showing, and one character less
    assert fit(name, 5, 200, "", 8 + len("...: iteration 5/200")) == "test...ode]: iteration 5/200"
    assert fit(name, 5, 200, "", 7 + len("...: iteration 5/200")) == "iteration 5/200"


def test_at_80_columns_under_verbose_the_name_stays() -> None:
    """The report that started this: ``... 201/400, native_heap +4.1 KiB/it, extending``."""
    out: list[str] = []
    prefix = "tests/test_api.py::test_parse_document "  # what pytest -v wrote before the line
    line = ProgressLine(out.append, tty=True, verbose=True, width=lambda: 80 - len(prefix), clock=lambda: 0.0)
    line.start("test_parse_document")
    line.update(201, 400, NOTE)
    assert out == [" test_parse_document: iteration 201/400"]
    assert len(prefix + out[0]) < 80


def test_when_nothing_fits_any_more_the_line_is_erased() -> None:
    out: list[str] = []
    room = [40]
    now = [0.0]
    line = ProgressLine(out.append, tty=True, verbose=True, width=lambda: room[0], clock=lambda: now[0])
    line.start("test_x")
    line.update(1, 200)
    assert out == [" test_x: iteration 1/200"]
    room[0] = 5  # the terminal was narrowed
    now[0] += 1
    line.update(2, 200)
    assert out[-1] == "\b" * 24 + " " * 24 + "\b" * 24
    now[0] += 1
    line.update(3, 200)
    assert len(out) == 2  # nothing on screen, nothing to draw
    line.finish()
    assert len(out) == 2


def test_a_log_gets_whole_lines_and_the_caller_resumes_its_own_after_them() -> None:
    out: list[str] = []
    resumed: list[str] = []
    now = [0.0]
    line = ProgressLine(out.append, tty=False, clock=lambda: now[0], resume=lambda: resumed.append("resumed"))
    line.start("test_x")
    for done in (10, 20):
        now[0] += LOG_EVERY
        line.update(done, 200, NOTE if done == 20 else "")
    assert out == [
        "[leakcheck] test_x: iteration 10/200\n",
        "[leakcheck] test_x: iteration 20/200, native_heap +4.1 KiB/it, extending\n",  # never cut in a log
    ]
    line.finish()
    assert resumed == ["resumed"]
    line.start("test_short")  # a test that wrote no line leaves the caller's line alone
    line.finish()
    assert resumed == ["resumed"]


def test_a_terminal_line_needs_no_resuming() -> None:
    resumed: list[str] = []
    line = ProgressLine([].append, tty=True, verbose=True, clock=lambda: 0.0, resume=lambda: resumed.append("resumed"))
    line.start("test_x")
    line.update(1, 200)
    line.finish()
    assert resumed == []
