"""Valgrind memcheck runs, end to end: seeded native leaks caught, clean look-alikes passed.

Slow (each test runs two valgrind children in parallel, ~5-15 s): marked ``slow`` and
skipped when valgrind is not installed.  The C extension is compiled in the test with
the machine's C compiler against this interpreter's headers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from leakcheck.valgrind import INSTALL_HINT, ValgrindReport, run_valgrind

REPO = Path(__file__).resolve().parent.parent
ITERATIONS = 5  # and 10 in the second run; a leak of one block per call shows clearly
WARMUP = 1

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("valgrind") is None, reason=INSTALL_HINT),
]

LEAKY_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

struct node { char *payload; size_t size; };   /* 16 bytes */

/* Each call loses a 16-byte node (definitely lost) that owns a 240-byte payload
   (indirectly lost) -- unless built with -DFIXED. */
static PyObject *
leaky_leak(PyObject *self, PyObject *unused)
{
    struct node *n = malloc(sizeof *n);
    n->size = 240;
    n->payload = malloc(n->size);
    memset(n->payload, 7, n->size);
#ifdef FIXED
    free(n->payload);
    free(n);
#endif
    n = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"leak", leaky_leak, METH_NOARGS, "Allocate a node; lose it unless FIXED."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "leaky", NULL, -1, methods};

PyMODINIT_FUNC PyInit_leaky(void) { return PyModule_Create(&module); }
"""


def build_extension(directory: Path, *, fixed: bool) -> Path:
    """Compile ``leaky`` into ``directory`` (``-g -O0``: symbols and line numbers)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc or cc) to build the test extension")
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "leaky.c"
    source.write_text(LEAKY_C)
    target = directory / f"leaky{sysconfig.get_config_var('EXT_SUFFIX')}"
    command = [
        compiler,
        "-shared",
        "-fPIC",
        "-g",
        "-O0",
        f"-I{sysconfig.get_paths()['include']}",
        *(["-DFIXED"] if fixed else []),
        str(source),
        "-o",
        str(target),
    ]
    subprocess.run(command, check=True, capture_output=True)
    (directory / "target.py").write_text("import leaky\n\n\ndef step():\n    leaky.leak()\n")
    return directory / "target.py"


def check(target: str, **kwargs: object) -> ValgrindReport:
    report = run_valgrind(target, iterations=ITERATIONS, warmup=WARMUP, **kwargs)  # type: ignore[arg-type]
    print(report)  # shown by pytest when an assertion fails
    return report


def test_c_extension_leak_is_caught_with_its_function(tmp_path: Path, private_tmp: Path) -> None:
    target = build_extension(tmp_path / "leak", fixed=False)
    report = check(f"{target}:step")
    assert report.status == "leaking"
    assert report.per_iteration_definite == pytest.approx(16, rel=0.1)
    assert report.per_iteration_indirect == pytest.approx(240, rel=0.1)
    top = report.records[0]
    assert top.kind == "Leak_IndirectlyLost"
    functions = [frame.fn for frame in top.frames]
    assert "leaky_leak" in functions[:3]
    assert any(f.file == "leaky.c" and f.line for f in top.frames)
    assert "leaky_leak (leaky.c:" in str(report)
    assert list(private_tmp.iterdir()) == []  # XML and logs removed on success


def test_fixed_c_extension_is_clean(tmp_path: Path, private_tmp: Path) -> None:
    target = build_extension(tmp_path / "fixed", fixed=True)
    report = check(f"{target}:step")
    assert report.status == "clean"
    assert report.per_iteration_lost == 0 and report.records == ()
    assert list(private_tmp.iterdir()) == []


def test_sqlite_workload_is_clean(tmp_path: Path, private_tmp: Path) -> None:
    target = tmp_path / "sqlite_target.py"
    target.write_text(
        textwrap.dedent(
            """
            import sqlite3

            def step():
                conn = sqlite3.connect(":memory:")
                conn.execute("create table t (id integer primary key, name text)")
                conn.executemany("insert into t (name) values (?)", [("x" * 50,)] * 50)
                assert conn.execute("select count(*), max(name) from t").fetchone()[0] == 50
                conn.close()
            """
        )
    )
    report = check(f"{target}:step")
    assert report.status == "clean"
    assert report.per_iteration_lost == 0


def test_script_reports_ctypes_malloc_leak(tmp_path: Path) -> None:
    target = tmp_path / "ctypes_target.py"
    target.write_text(
        textwrap.dedent(
            """
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            libc.malloc.restype = ctypes.c_void_p
            libc.malloc.argtypes = [ctypes.c_size_t]

            def step():
                libc.malloc(1000)  # the pointer is dropped: 1000 B lost per call
            """
        )
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report_json = tmp_path / "report.json"
    result = subprocess.run(
        [
            str(REPO / "scripts" / "valgrind.sh"),
            f"{target}:step",
            str(ITERATIONS),
            "--warmup",
            str(WARMUP),
            "--json",
            str(report_json),
        ],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHON": sys.executable,
            "TMPDIR": str(tmp),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 1
    assert "valgrind memcheck: LEAKING" in result.stdout
    assert "definitely lost 1000 B/iteration" in result.stdout
    data = json.loads(report_json.read_text())
    assert data["status"] == "leaking"
    assert data["per_iteration_definite"] == pytest.approx(1000, rel=0.05)
    top = data["records"][0]
    assert top["frames"][0]["fn"] == "malloc"
    assert "_ctypes_callproc" in [frame["fn"] for frame in top["frames"]]
    assert list(tmp.iterdir()) == []


def test_crash_is_reported_as_crashed_with_log(tmp_path: Path, private_tmp: Path) -> None:
    target = tmp_path / "crash_target.py"
    target.write_text("import ctypes\n\n\ndef step():\n    ctypes.string_at(0)\n")
    report = check(f"{target}:step")
    assert report.status == "crashed"
    # Without --keep nothing stays behind: the end of the log is quoted instead.
    assert report.log_path is None and list(private_tmp.iterdir()) == []
    assert "SIGSEGV" in str(report) or "signal 11" in str(report)
    assert "pass --keep to keep the whole log" in str(report)
    kept = check(f"{target}:step", keep=True)
    assert kept.status == "crashed"
    assert kept.log_path is not None and Path(kept.log_path).is_file()
    assert f"log kept at {kept.log_path}" in str(kept)


def test_pytest_node_id_target(tmp_path: Path, private_tmp: Path) -> None:
    """A node id runs its test under valgrind through the plugin's ``--leak-mode=repeat``."""
    target = build_extension(tmp_path / "node", fixed=False)
    (target.parent / "test_leaky.py").write_text(
        "import pytest\nimport leaky\n\n\n@pytest.mark.leak\ndef test_leak():\n    leaky.leak()\n"
    )
    report = check("test_leaky.py::test_leak", cwd=target.parent, timeout=300)
    assert report.status == "leaking", report.message
    assert report.per_iteration_definite == pytest.approx(16, rel=0.1)
    assert report.per_iteration_indirect == pytest.approx(240, rel=0.1)
