"""Parse valgrind memcheck XML output (``--xml=yes --xml-file=...``) into typed records.

Only the parts leakcheck needs are read: the leak records (``<error>`` elements whose
``<kind>`` starts with ``Leak_``), the other memcheck errors (counted and kept for the
report), a ``<fatal_signal>`` if the client crashed, and whether the document was
complete.  A truncated document — valgrind or its client was killed before it could
write ``</valgrindoutput>`` — is parsed as far as it goes and marked incomplete, so the
caller can report a crash rather than a clean run.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LEAK_KINDS",
    "Frame",
    "LossRecord",
    "MemcheckIssue",
    "MemcheckRun",
    "parse_memcheck_xml",
    "parse_memcheck_xml_text",
]

# "256 (16 direct, 240 indirect) bytes in 1 blocks are definitely lost ...": valgrind's
# <leakedbytes> is the total; only the text splits off what the record owns indirectly.
_DIRECT = re.compile(r"^\s*[\d,]+ \(([\d,]+) direct, ([\d,]+) indirect\)")

#: The memcheck leak kinds leakcheck asks valgrind for, most serious first.
LEAK_KINDS: tuple[str, ...] = (
    "Leak_DefinitelyLost",
    "Leak_IndirectlyLost",
    "Leak_PossiblyLost",
)


@dataclass(frozen=True)
class Frame:
    """One native stack frame of a memcheck record, as symbolised by valgrind.

    Any field valgrind could not resolve is ``None``: ``fn`` is missing for stripped
    libraries, ``file``/``line`` without debug information.
    """

    ip: str
    obj: str | None = None
    fn: str | None = None
    dir: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """A run-independent identity: function and object (never the address)."""
        obj = Path(self.obj).name if self.obj else ""
        return (self.fn or "", obj if (self.fn or obj) else self.ip)

    @property
    def location(self) -> str | None:
        """``file:line`` when debug information is available, else ``None``."""
        if self.file is None:
            return None
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        name = self.fn or "???"
        obj = f" [{Path(self.obj).name}]" if self.obj else ""
        loc = self.location
        return f"{name} ({loc}){obj}" if loc else f"{name}{obj}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping of the frame's fields."""
        return {
            "ip": self.ip,
            "obj": self.obj,
            "fn": self.fn,
            "dir": self.dir,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class LossRecord:
    """One memcheck loss record: ``bytes`` in ``blocks`` of one ``kind``, and its stack.

    ``kind`` is one of :data:`LEAK_KINDS`; ``bytes`` are the record's own (direct)
    bytes — ``indirect_bytes`` are those reachable only through it, which valgrind
    also reports as separate ``Leak_IndirectlyLost`` records.  ``frames`` start at the
    allocator (``malloc``, ``calloc``...) and go outwards.  ``suppression`` holds
    valgrind's ready-made suppression text when ``--gen-suppressions`` was on.
    """

    kind: str
    bytes: int
    blocks: int
    frames: tuple[Frame, ...]
    suppression: str | None = field(default=None, compare=False)
    indirect_bytes: int = 0

    @property
    def stack_key(self) -> tuple[tuple[str, str], ...]:
        """The identity used to match this record across runs: kind aside, the stack."""
        return tuple(frame.key for frame in self.frames)

    @property
    def short_kind(self) -> str:
        """``definite``, ``indirect`` or ``possible``."""
        return {
            "Leak_DefinitelyLost": "definite",
            "Leak_IndirectlyLost": "indirect",
            "Leak_PossiblyLost": "possible",
        }.get(self.kind, self.kind)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping of the record, frames included."""
        return {
            "kind": self.kind,
            "bytes": self.bytes,
            "blocks": self.blocks,
            "indirect_bytes": self.indirect_bytes,
            "frames": [frame.to_dict() for frame in self.frames],
        }


@dataclass(frozen=True)
class MemcheckIssue:
    """A memcheck error that is not a leak (invalid read, use of uninitialised value...)."""

    kind: str
    what: str
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping of the issue."""
        return {
            "kind": self.kind,
            "what": self.what,
            "frames": [frame.to_dict() for frame in self.frames],
        }


@dataclass(frozen=True)
class MemcheckRun:
    """Everything leakcheck reads from one memcheck XML file.

    ``complete`` is false when the document stops before ``</valgrindoutput>`` (the
    process was killed, or crashed so hard valgrind could not finish); ``fatal_signal``
    names the signal when valgrind reported one (``SIGSEGV``...).
    """

    records: tuple[LossRecord, ...]
    issues: tuple[MemcheckIssue, ...]
    complete: bool
    fatal_signal: str | None = None
    pid: int | None = None

    def lost(self, kind: str) -> int:
        """Total bytes in all records of ``kind`` (one of :data:`LEAK_KINDS`)."""
        return sum(record.bytes for record in self.records if record.kind == kind)


def _text(element: ET.Element, path: str) -> str | None:
    value = element.findtext(path)
    return value.strip() if value is not None else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


def _frames(element: ET.Element) -> tuple[Frame, ...]:
    stack = element.find("stack")
    if stack is None:
        return ()
    return tuple(
        Frame(
            ip=_text(frame, "ip") or "",
            obj=_text(frame, "obj"),
            fn=_text(frame, "fn"),
            dir=_text(frame, "dir"),
            file=_text(frame, "file"),
            line=_int(_text(frame, "line")),
        )
        for frame in stack.findall("frame")
    )


def _record(error: ET.Element) -> LossRecord | MemcheckIssue | None:
    kind = _text(error, "kind") or ""
    frames = _frames(error)
    if kind.startswith("Leak_"):
        leaked = _int(_text(error, "xwhat/leakedbytes"))
        blocks = _int(_text(error, "xwhat/leakedblocks"))
        if leaked is None:
            return None
        suppression = _text(error, "suppression/rawtext")
        indirect = 0
        split = _DIRECT.match(_text(error, "xwhat/text") or "")
        if split:
            direct, indirect = (int(g.replace(",", "")) for g in split.groups())
            leaked = direct
        return LossRecord(kind, leaked, blocks or 0, frames, suppression, indirect)
    what = _text(error, "what") or _text(error, "xwhat/text") or kind
    return MemcheckIssue(kind, what, frames)


def _collect(elements: Iterable[ET.Element]) -> tuple[list[LossRecord], list[MemcheckIssue]]:
    records: list[LossRecord] = []
    issues: list[MemcheckIssue] = []
    for error in elements:
        item = _record(error)
        if isinstance(item, LossRecord):
            records.append(item)
        elif isinstance(item, MemcheckIssue):
            issues.append(item)
    return records, issues


def parse_memcheck_xml_text(text: str) -> MemcheckRun:
    """Parse memcheck XML given as a string; see :func:`parse_memcheck_xml`."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    errors: list[ET.Element] = []
    fatal_signal: str | None = None
    pid: int | None = None
    complete = False
    events: list[ET.Element] = []
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError:
        pass  # truncated or garbled: keep what was read, report incomplete
    try:
        for event in parser.read_events():
            element = event[-1]  # ("end", element): the only event asked for
            if isinstance(element, ET.Element):
                events.append(element)
    except ET.ParseError:
        pass  # the parser queues its error after the events it could read
    for element in events:
        tag = element.tag
        if tag == "error":
            errors.append(element)
        elif tag == "fatal_signal":
            fatal_signal = _text(element, "signame") or _text(element, "signo") or "unknown"
        elif tag == "pid" and pid is None:
            pid = _int((element.text or "").strip())
        elif tag == "valgrindoutput":
            complete = True
    records, issues = _collect(errors)
    return MemcheckRun(tuple(records), tuple(issues), complete, fatal_signal, pid)


def parse_memcheck_xml(path: str | Path) -> MemcheckRun:
    """Parse the memcheck XML file at ``path`` into a :class:`MemcheckRun`.

    Never raises on a truncated or garbled file: the records read so far are kept and
    ``complete`` is false.  A missing file raises :class:`FileNotFoundError`.
    """
    return parse_memcheck_xml_text(Path(path).read_text(encoding="utf-8", errors="replace"))
