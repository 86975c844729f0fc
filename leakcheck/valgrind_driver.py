"""Tiny child driver: call ``path/to/file.py:function`` warm-up + N times, then exit.

Run by :mod:`leakcheck.valgrind` under valgrind, as
``python -m leakcheck.valgrind_driver FILE.py:FUNCTION ITERATIONS WARMUP``.  It imports as
little as possible (every import is paid for under valgrind), measures nothing and
judges nothing: memcheck does the measuring.  The function takes no arguments; an
``async def`` function is awaited on one event loop created once for all the calls.

Exit status: 0 after all the calls, 3 when the target cannot be loaded, 4 when a call
raises (the traceback is printed).
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

__all__ = ["load_callable", "main"]

EXIT_LOAD_ERROR = 3
EXIT_CALL_ERROR = 4


def load_callable(spec: str) -> Callable[[], Any]:
    """Import ``FILE.py:FUNCTION`` (the file's directory goes on ``sys.path``) and return it.

    Raises :class:`ValueError` naming the spec when it is malformed or the file or
    function does not exist, :class:`TypeError` when the name is not callable.
    """
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise ValueError(f"target {spec!r} is not of the form path/to/file.py:function")
    path = Path(path_text).resolve()
    if not path.is_file():
        raise ValueError(f"target {spec!r}: no such file {str(path)!r}")
    sys.path.insert(0, str(path.parent))
    module_name = f"_leakcheck_target_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"target {spec!r}: {str(path)!r} cannot be imported as a module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    func = module
    for part in name.split("."):
        try:
            func = getattr(func, part)
        except AttributeError:
            raise ValueError(f"target {spec!r}: {str(path)!r} has no attribute {name!r}") from None
    if not callable(func):
        raise TypeError(f"target {spec!r}: {name!r} is not callable")
    return func


def _run(func: Callable[[], Any], calls: int) -> None:
    if inspect.iscoroutinefunction(func):
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            for _ in range(calls):
                loop.run_until_complete(func())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    else:
        for _ in range(calls):
            func()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``FILE.py:FUNCTION ITERATIONS [WARMUP]``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(
            "usage: python -m leakcheck.valgrind_driver FILE.py:FUNCTION ITERATIONS [WARMUP]",
            file=sys.stderr,
        )
        return 2
    iterations, warmup = int(args[1]), int(args[2]) if len(args) == 3 else 0
    try:
        func = load_callable(args[0])
    except Exception:  # noqa: BLE001 - importing user code may raise anything; report it
        traceback.print_exc()
        return EXIT_LOAD_ERROR
    try:
        _run(func, warmup + iterations)
    except Exception:  # noqa: BLE001 - the target may raise anything; report it
        traceback.print_exc()
        return EXIT_CALL_ERROR
    gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
