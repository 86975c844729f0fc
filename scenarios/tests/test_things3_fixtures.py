"""The fixtures scenarios/conftest.py gives the leak suites, run in a child pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SUITE = textwrap.dedent(
    """
    import os
    import sqlite3
    from pathlib import Path

    import pytest

    from scenarios.things3 import Pool, faults as things3_faults, queries

    def test_database_is_generated_at_the_requested_size(things3_db, record):
        record.write_text(str(things3_db))
        conn = sqlite3.connect(things3_db)
        assert conn.execute("SELECT count(*) FROM TMTask").fetchone() == (120,)
        conn.close()

    def test_database_is_shared_by_the_session(things3_db, record):
        assert record.read_text() == str(things3_db)

    @pytest.mark.asyncio
    async def test_pool_is_open_and_ready(pool):
        assert isinstance(pool, Pool) and not pool.closed
        assert len(await queries.areas(pool)) == 8

    def test_faults_switch_on_for_one_test(faults):
        faults.on("unclosed_cursor")
        assert things3_faults.enabled("unclosed_cursor")
        assert faults.active == {"unclosed_cursor"}

    def test_and_off_again_afterwards():
        assert things3_faults.active() == frozenset()

    @pytest.fixture(scope="session")
    def record():
        return Path(os.environ["RECORD"])
    """
)


def test_conftest_fixtures_work_and_remove_the_database() -> None:
    with tempfile.TemporaryDirectory(prefix="things3-fixtures-") as directory:
        suite = Path(directory) / "test_suite.py"
        suite.write_text(SUITE)
        record = Path(directory) / "database-path.txt"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "THINGS3_TASKS": "120",
            "RECORD": str(record),
        }
        env.pop("THINGS3_FAULTS", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "scenarios.conftest",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:leakcheck",
                "-W",
                "error",
                "-q",
                "--rootdir",
                directory,
                "-o",
                "asyncio_default_fixture_loop_scope=function",
                "-o",
                "asyncio_mode=strict",
                str(suite),
            ],
            check=False,
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "5 passed" in result.stdout
        database = Path(record.read_text())
        assert not database.exists() and not database.parent.exists()
