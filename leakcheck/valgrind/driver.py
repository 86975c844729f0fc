"""Tiny child driver: call ``path/to/file.py:function`` warm-up + N times, then exit.

Run by :func:`leakcheck.valgrind.run_valgrind` under valgrind, as
``python -m leakcheck.valgrind.driver FILE.py:FUNCTION ITERATIONS WARMUP``.  It imports
as little as possible (every import is paid for under valgrind), measures nothing and
judges nothing: memcheck does the measuring.  The target is loaded by
:func:`leakcheck.targets.load_callable`, as ``leakcheck check`` loads its step.  The
function takes no arguments; an ``async def`` function is awaited on one event loop
created once for all the calls.

``--check FILE.py:FUNCTION`` only loads the target (run without valgrind, before it,
so that a typo is answered in a second rather than after valgrind's start-up).

Exit status: 0 after all the calls, 2 on a wrong number of arguments, 3 when the target
cannot be loaded, 4 when a call raises (the traceback is printed).  These are the
driver's own, read only by :mod:`leakcheck.valgrind.running` (any non-zero status is a
``failed`` run there), not the statuses of the ``leakcheck`` command.
"""

from __future__ import annotations

import gc
import inspect
import sys
import traceback
from typing import Any, Callable

from ..errors import ConfigError
from ..targets import load_callable

__all__ = ["main"]

EXIT_LOAD_ERROR = 3
EXIT_CALL_ERROR = 4


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


def _check_loads(spec: str) -> int:
    """``--check SPEC``: load the target, call nothing; one line on stderr when it cannot load."""
    try:
        load_callable(spec, source="leakcheck valgrind")
    except ConfigError as exc:
        print(exc.problem, file=sys.stderr)
        return EXIT_LOAD_ERROR
    except Exception as exc:  # noqa: BLE001 - importing user code may raise anything; report it
        frames = traceback.extract_tb(exc.__traceback__)
        ours = load_callable.__code__.co_filename
        user = [f for f in frames if "importlib" not in f.filename and f.filename != ours]
        where = f" at {user[-1].filename}:{user[-1].lineno}" if user and not isinstance(exc, SyntaxError) else ""
        print(
            f"{spec}: importing it raised {type(exc).__name__}: {exc}{where}; fix that, then run it again",
            file=sys.stderr,
        )
        return EXIT_LOAD_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``FILE.py:FUNCTION ITERATIONS [WARMUP]`` (or ``--check SPEC``); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--check":
        return _check_loads(args[1])
    if len(args) not in (2, 3):
        print(
            "usage: python -m leakcheck.valgrind.driver FILE.py:FUNCTION ITERATIONS [WARMUP]",
            file=sys.stderr,
        )
        return 2
    iterations, warmup = int(args[1]), int(args[2]) if len(args) == 3 else 0
    try:
        func = load_callable(args[0], source="leakcheck valgrind")
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
