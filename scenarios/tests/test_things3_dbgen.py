"""The Things 3 database generator: date packing, determinism, proportions, cleanup."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios.things3 import dbgen, faults
from scenarios.things3.dbgen import pack_date, temp_database, unpack_date


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory removed after the test (pytest's tmp_path would keep it around)."""
    with tempfile.TemporaryDirectory(prefix="things3-test-") as directory:
        yield Path(directory)


@pytest.mark.parametrize(
    ("day", "packed"),
    [
        (dt.date(2024, 6, 3), 2024 << 16 | 6 << 12 | 3 << 7),
        (dt.date(1970, 1, 1), 1970 << 16 | 1 << 12 | 1 << 7),
        (dt.date(2099, 12, 31), 2099 << 16 | 12 << 12 | 31 << 7),
    ],
)
def test_pack_date_uses_the_things3_bit_layout(day: dt.date, packed: int) -> None:
    assert pack_date(day) == packed
    assert unpack_date(packed) == day


def test_pack_date_round_trips_and_keeps_order() -> None:
    rng = random.Random(1)
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(40_000)) for _ in range(500)]
    assert [unpack_date(pack_date(day)) for day in days] == days
    assert sorted(days, key=pack_date) == sorted(days)


def test_unpack_date_rejects_an_impossible_day() -> None:
    with pytest.raises(ValueError, match="not a Things 3 packed date"):
        unpack_date(2024 << 16 | 2 << 12 | 30 << 7)


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        lines = list(conn.iterdump())
    conn.close()
    return lines


def test_same_seed_gives_the_same_database(scratch: Path) -> None:
    first = dbgen.generate(scratch / "a.sqlite", tasks=300, seed=7)
    second = dbgen.generate(scratch / "b.sqlite", tasks=300, seed=7)
    other = dbgen.generate(scratch / "c.sqlite", tasks=300, seed=8)
    assert _dump(first) == _dump(second)
    assert _dump(first) != _dump(other)


def test_generate_into_a_directory_uses_the_things3_file_name(scratch: Path) -> None:
    path = dbgen.generate(scratch, tasks=10)
    assert path == scratch / dbgen.DATABASE_NAME
    with pytest.raises(FileExistsError, match="never overwrites"):
        dbgen.generate(scratch, tasks=10)


def test_generated_database_has_realistic_proportions(scratch: Path) -> None:
    path = dbgen.generate(scratch, tasks=5_000, seed=3)
    with sqlite3.connect(path) as conn:

        def count(sql: str) -> int:
            value: int = conn.execute(sql).fetchone()[0]
            return value

        todos = count("SELECT count(*) FROM TMTask WHERE type = 0")
        assert count("SELECT count(*) FROM TMTask") == 5_000
        assert count("SELECT count(*) FROM TMTask WHERE type = 1") == 250
        assert count("SELECT count(*) FROM TMTask WHERE type = 2") == 100
        assert 0.55 < count("SELECT count(*) FROM TMTask WHERE type = 0 AND status IN (2, 3)") / todos < 0.65
        assert 0.07 < count("SELECT count(*) FROM TMTask WHERE type = 0 AND status = 0 AND start = 0") / todos < 0.13
        tagged = count("SELECT count(DISTINCT tasks) FROM TMTaskTag")
        assert 0.25 < tagged / todos < 0.35
        with_checklist = count("SELECT count(DISTINCT task) FROM TMChecklistItem")
        assert 0.07 < with_checklist / todos < 0.13
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        dangling = count(
            "SELECT count(*) FROM TMTask AS t WHERE t.project IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM TMTask AS p WHERE p.uuid = t.project AND p.type = 1)"
        )
        assert dangling == 0
    conn.close()


def test_fifty_thousand_tasks_build(scratch: Path) -> None:
    # How fast is benchmarks' business: a wall-clock bound here fails on a loaded machine.
    dbgen.generate(scratch, tasks=50_000)


def test_temp_database_removes_everything_on_exit() -> None:
    with temp_database(tasks=50) as path:
        # An open connection is what keeps -wal and -shm files on disk.
        conn = sqlite3.connect(path)
        conn.execute("SELECT count(*) FROM TMTask").fetchone()
        assert Path(f"{path}-wal").exists()
        conn.close()
    assert not path.parent.exists()


def test_temp_database_removes_everything_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), temp_database(tasks=10) as path:
        raise RuntimeError
    assert not path.parent.exists()


def test_fault_temp_db_not_deleted_leaves_the_files_behind() -> None:
    with faults.inject("temp_db_not_deleted"), temp_database(tasks=10) as path:
        pass
    try:
        assert path.exists()
    finally:
        for leftover in path.parent.iterdir():
            leftover.unlink()
        path.parent.rmdir()
