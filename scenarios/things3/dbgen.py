"""Generate a Things 3-shaped SQLite database full of plausible, seeded data.

The same ``seed`` always gives the same database, byte for byte in content, so
a leak seen once can be reproduced. Dates are laid out around a fixed
``today`` (:data:`REFERENCE_DATE` by default) rather than the wall clock for
the same reason; query the database with that date to see full lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import sqlite3
import string
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, Optional

from . import faults
from .schema import DDL, INDEXES, Start, Status, TaskType, pack_date, unpack_date

__all__ = [
    "DATABASE_NAME",
    "REFERENCE_DATE",
    "generate",
    "pack_date",
    "temp_database",
    "unpack_date",
]

DATABASE_NAME: Final = "main.sqlite"
"""The file name Things 3 itself uses, chosen when ``generate`` is given a directory."""

REFERENCE_DATE: Final = dt.date(2024, 6, 3)
"""The default "today" the generated dates are laid out around."""

_UUID_ALPHABET: Final = string.ascii_letters + string.digits

_AREAS: Final = ("Work", "Personal", "Home", "Health", "Finance", "Family", "Learning", "Travel")
_TAGS: Final = (
    ("Errand", "e"),
    ("Home", "h"),
    ("Office", "o"),
    ("Phone", "p"),
    ("Email", None),
    ("Waiting", "w"),
    ("Important", "i"),
    ("Low energy", None),
    ("15 min", None),
    ("1 hour", None),
    ("Deep work", "d"),
    ("Weekend", None),
    ("Someday", None),
    ("Research", None),
    ("Anna", None),
    ("Tom", None),
)
# Tags nested under another tag (Things 3 allows a tag hierarchy): child -> parent.
_TAG_PARENTS: Final = {"15 min": "Low energy", "1 hour": "Deep work", "Anna": "Waiting", "Tom": "Waiting"}

_VERBS: Final = (
    "Call",
    "Email",
    "Book",
    "Buy",
    "Draft",
    "Review",
    "Fix",
    "Plan",
    "Schedule",
    "Renew",
    "Clean",
    "Update",
    "Pay",
    "Prepare",
    "Send",
    "Read",
    "Write",
    "Organise",
    "Order",
    "Return",
    "Pick up",
    "Submit",
    "Research",
    "Back up",
    "Sort out",
    "Follow up on",
)
_OBJECTS: Final = (
    "the dentist",
    "quarterly report",
    "car insurance",
    "team offsite",
    "passport",
    "birthday present for Anna",
    "gym membership",
    "tax return",
    "kitchen tap",
    "flight to Lisbon",
    "budget spreadsheet",
    "photos from the trip",
    "invoice #{n}",
    "pull request #{n}",
    "library books",
    "garden hose",
    "meeting notes",
    "slides for Monday",
    "bike tyres",
    "landlord",
    "electricity bill",
    "recipe for Sunday",
    "conference talk",
    "old laptop",
    "wedding RSVP",
    "doctor's appointment",
    "newsletter",
    "backup drive",
)
_QUALIFIERS: Final = (
    "",
    "",
    "",
    "",
    "before Friday",
    "with Tom",
    "for Mum",
    "again",
    "this week",
    "(urgent)",
    "if it rains",
    "after lunch",
    "on the way home",
)
_NOTE_SENTENCES: Final = (
    "Check the email thread from last week first.",
    "Ask Anna whether she already did this.",
    "Receipts are in the blue folder.",
    "Call before 5 pm, they close early on Fridays.",
    "See https://example.com/help for the form.",
    "Needs the reference number from the last letter.",
    "Keep it short — one page at most.",
    "Use the 20% discount code if it still works.",
    "Not urgent, but don't forget it.",
    "Tom said he'd help with the heavy bits.",
)
_PROJECTS: Final = (
    "Launch the new website",
    "Move to Berlin",
    "Renovate the bathroom",
    "Plan the summer holiday",
    "Learn Spanish",
    "Clear out the garage",
    "Q3 roadmap",
    "Anna's birthday party",
    "Start a book club",
    "New kitchen",
    "Run a half marathon",
    "Switch energy supplier",
)
_HEADINGS: Final = ("Backlog", "Research", "Next steps", "Phase 1", "Phase 2", "Waiting for")
_CHECKLIST: Final = (
    "Find the paperwork",
    "Call ahead",
    "Print two copies",
    "Sign",
    "Pay the fee",
    "Pack charger",
    "Confirm time",
    "Bring ID",
    "Write summary",
    "Send to Tom",
)

_TaskRow = tuple[
    str,
    str,
    str,
    int,
    int,
    int,
    int,
    Optional[int],
    Optional[int],
    Optional[float],
    float,
    float,
    Optional[str],
    Optional[str],
    Optional[str],
    int,
    int,
]


def generate(
    path_or_dir: str | os.PathLike[str],
    *,
    tasks: int = 50_000,
    seed: int = 0,
    today: dt.date = REFERENCE_DATE,
) -> Path:
    """Create a Things 3-style database with ``tasks`` rows in TMTask; return its path.

    ``path_or_dir`` is the database file to create, or an existing directory to
    create :data:`DATABASE_NAME` in. An existing database is never overwritten.
    About 5% of the rows are projects, 2% headings and the rest to-dos, of which
    ~60% are in the logbook, ~10% in the inbox, ~30% tagged and ~10% carry a
    checklist. The database is left in WAL mode, as Things 3 leaves it.
    """
    if tasks < 0:
        raise ValueError(f"tasks must be >= 0, got {tasks}")
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / DATABASE_NAME
    if path.exists():
        raise FileExistsError(f"{path} already exists; generate() never overwrites a database")

    rows = _Generator(random.Random(seed), today).build(tasks)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(DDL)
        # One transaction for the whole load: per-row commits would make
        # 50,000 tasks take minutes instead of about a second.
        with conn:
            conn.executemany("INSERT INTO TMArea VALUES (?, ?, ?, ?)", rows.areas)
            conn.executemany("INSERT INTO TMTag VALUES (?, ?, ?, ?, ?)", rows.tags)
            conn.executemany(f"INSERT INTO TMTask VALUES ({', '.join('?' * 17)})", rows.tasks)
            conn.executemany("INSERT INTO TMTaskTag VALUES (?, ?)", rows.task_tags)
            conn.executemany("INSERT INTO TMChecklistItem VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows.checklist)
        conn.executescript(INDEXES)
        conn.execute("ANALYZE")
    return path


@contextlib.contextmanager
def temp_database(*, tasks: int = 50_000, seed: int = 0) -> Iterator[Path]:
    """Generate a database in a fresh temporary directory; delete it all on exit.

    The database, its ``-wal``/``-shm``/``-journal`` companions and the directory
    are removed one by one rather than with ``rmtree``, so a file someone else
    left in the directory makes the cleanup fail loudly instead of vanishing.
    """
    directory = Path(tempfile.mkdtemp(prefix="things3-"))
    path = directory / DATABASE_NAME
    try:
        generate(path, tasks=tasks, seed=seed)
        yield path
    finally:
        if faults.enabled("temp_db_not_deleted"):
            # FAULT(temp_db_not_deleted): the cleanup is skipped, leaving the
            # database (tens of MB), its WAL/SHM files and the directory behind.
            pass
        else:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            directory.rmdir()


class _Rows:
    """The generated rows, table by table, ready for ``executemany``."""

    def __init__(self) -> None:
        self.areas: list[tuple[str, str, int, int]] = []
        self.tags: list[tuple[str, str, str | None, str | None, int]] = []
        self.tasks: list[_TaskRow] = []
        self.task_tags: list[tuple[str, str]] = []
        self.checklist: list[tuple[str, str, int, float | None, int, str, float, float]] = []


class _Generator:
    """Draws every row from one ``random.Random`` so a seed fixes the whole database."""

    def __init__(self, rng: random.Random, today: dt.date) -> None:
        self.rng = rng
        self.today = today
        self.now = dt.datetime.combine(today, dt.time(18, 0), dt.timezone.utc).timestamp()
        self.rows = _Rows()

    def uuid(self) -> str:
        # Things 3 ids are 22 base62 characters; drawing them from the seeded
        # generator (not uuid4) keeps the database reproducible.
        return "".join(self.rng.choices(_UUID_ALPHABET, k=22))

    def build(self, tasks: int) -> _Rows:
        areas = [self.uuid() for _ in _AREAS]
        self.rows.areas = [
            (uuid, title, int(i < len(_AREAS) - 1), i) for i, (uuid, title) in enumerate(zip(areas, _AREAS))
        ]
        tag_ids = {title: self.uuid() for title, _ in _TAGS}
        self.rows.tags = [
            (tag_ids[title], title, shortcut, tag_ids.get(_TAG_PARENTS.get(title, "")), i)
            for i, (title, shortcut) in enumerate(_TAGS)
        ]
        projects = [self.project(i, areas) for i in range(round(tasks * 0.05))]
        headings = [self.heading(i, projects) for i in range(round(tasks * 0.02) if projects else 0)]
        headings_by_project: dict[str, list[str]] = {}
        for uuid, project in headings:
            headings_by_project.setdefault(project, []).append(uuid)
        for i in range(tasks - len(projects) - len(headings)):
            self.todo(i, areas, projects, headings_by_project, list(tag_ids.values()))
        return self.rows

    def created(self) -> float:
        return self.now - self.rng.uniform(3600, 3 * 365 * 86400)

    def date(self, low: int, high: int) -> int:
        return pack_date(self.today + dt.timedelta(days=self.rng.randint(low, high)))

    def title(self) -> str:
        obj = self.rng.choice(_OBJECTS).format(n=self.rng.randint(100, 9999))
        return " ".join(filter(None, (self.rng.choice(_VERBS), obj, self.rng.choice(_QUALIFIERS))))

    def notes(self) -> str:
        if self.rng.random() < 0.55:
            return ""
        return " ".join(self.rng.sample(_NOTE_SENTENCES, self.rng.randint(1, 3)))

    def project(self, index: int, areas: Sequence[str]) -> str:
        rng = self.rng
        uuid, created = self.uuid(), self.created()
        title = rng.choice(_PROJECTS)
        status = Status.OPEN if rng.random() < 0.7 else Status.COMPLETED
        stop = rng.uniform(created, self.now) if status else None
        deadline = self.date(-10, 120) if rng.random() < 0.2 else None
        area = rng.choice(areas) if rng.random() < 0.8 else None
        self.rows.tasks.append(
            (
                uuid,
                title,
                self.notes(),
                TaskType.PROJECT,
                status,
                0,
                Start.ANYTIME,
                None,
                deadline,
                stop,
                created,
                stop or created,
                None,
                area,
                None,
                0,
                index,
            )
        )
        return uuid

    def heading(self, index: int, projects: Sequence[str]) -> tuple[str, str]:
        uuid, created, project = self.uuid(), self.created(), self.rng.choice(projects)
        self.rows.tasks.append(
            (
                uuid,
                self.rng.choice(_HEADINGS),
                "",
                TaskType.HEADING,
                Status.OPEN,
                0,
                Start.ANYTIME,
                None,
                None,
                None,
                created,
                created,
                project,
                None,
                None,
                0,
                index,
            )
        )
        return uuid, project

    def todo(
        self,
        index: int,
        areas: Sequence[str],
        projects: Sequence[str],
        headings_by_project: dict[str, list[str]],
        tags: Sequence[str],
    ) -> None:
        rng = self.rng
        uuid, created = self.uuid(), self.created()
        start_date: int | None = None
        stop: float | None = None
        today_index = 0
        # Proportions of all to-dos: 52% completed and 8% cancelled (the
        # logbook), then open ones: 10% inbox, 4% today, 4% upcoming (scheduled),
        # 6% someday and the remaining 16% anytime.
        draw = rng.random()
        if draw < 0.60:
            status = Status.COMPLETED if draw < 0.52 else Status.CANCELLED
            start = Start.ANYTIME
            stop = rng.uniform(created, self.now)
        else:
            status = Status.OPEN
            if draw < 0.70:
                start = Start.INBOX
            elif draw < 0.74:
                start, start_date, today_index = Start.ANYTIME, self.date(-14, 0), rng.randint(1, 500)
            elif draw < 0.78:
                start, start_date = Start.SOMEDAY, self.date(1, 60)
            elif draw < 0.84:
                start = Start.SOMEDAY
            else:
                start = Start.ANYTIME

        project = heading = area = None
        if start != Start.INBOX:
            place = rng.random()
            if place < 0.45 and projects:
                project = rng.choice(projects)
                project_headings = headings_by_project.get(project)
                if project_headings and rng.random() < 0.3:
                    heading = rng.choice(project_headings)
            elif place < 0.75:
                area = rng.choice(areas)

        deadline = self.date(-20, 90) if rng.random() < 0.08 else None
        trashed = int(rng.random() < 0.02)
        modified = rng.uniform(created, stop or self.now)
        self.rows.tasks.append(
            (
                uuid,
                self.title(),
                self.notes(),
                TaskType.TODO,
                status,
                trashed,
                start,
                start_date,
                deadline,
                stop,
                created,
                modified,
                project,
                area,
                heading,
                today_index,
                index,
            )
        )
        if rng.random() < 0.30:
            self.rows.task_tags.extend((uuid, tag) for tag in rng.sample(tags, rng.randint(1, 3)))
        if rng.random() < 0.10:
            for position, item in enumerate(rng.sample(_CHECKLIST, rng.randint(2, 6))):
                done = rng.random() < 0.4
                item_stop = rng.uniform(created, self.now) if done else None
                self.rows.checklist.append(
                    (
                        self.uuid(),
                        item,
                        Status.COMPLETED if done else Status.OPEN,
                        item_stop,
                        position,
                        uuid,
                        created,
                        item_stop or created,
                    )
                )
