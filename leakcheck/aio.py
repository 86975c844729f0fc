"""Sync and async callables behind one interface, for the runner, the plugin and outside tools.

leakcheck writes each loop once, as a coroutine. For sync callables that
coroutine never suspends, so :func:`drive` runs it with a single ``send``
and no event loop; async ones run on the caller's loop or on one
:func:`run_on_new_loop` creates and closes. Only the standard library and
:mod:`leakcheck.errors` are imported here, so a light caller (the valgrind
child driver) can use it without loading the engine.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, Callable

from .errors import LeakcheckError, ScenarioError

__all__ = ["call", "drive", "in_running_loop", "is_async_callable", "repeat", "repeat_async", "run_on_new_loop"]

Callback = Callable[..., Any]


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions (also behind ``functools.partial``)."""
    while hasattr(fn, "func"):
        fn = fn.func
    call = type(fn).__call__ if callable(fn) and not inspect.isfunction(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


async def call(fn: Callback | None, *args: Any) -> Any:
    """Call ``fn`` (nothing when ``None``) and await its result when it is awaitable."""
    if fn is None:
        return None
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def drive(coro: Awaitable[Any]) -> Any:
    """Run a coroutine that never suspends (the sync path) to its end."""
    it = coro.__await__()
    try:
        it.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()  # type: ignore[attr-defined]
    raise LeakcheckError(
        "a step, setup or teardown returned an awaitable that needs an event loop, "
        "but no callable was async; pass an `async def` function so leakcheck runs a loop"
    )


def in_running_loop() -> bool:
    """True when called from code an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_on_new_loop(coro: Awaitable[Any]) -> Any:
    """Run ``coro`` on a fresh event loop, then cancel what it left pending and close the loop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


async def _repeat(step: Callback, n: int) -> None:
    for i in range(1, n + 1):
        try:
            await call(step)
        except Exception as exc:
            raise ScenarioError("step", i, exc) from exc


def repeat(step: Callback, n: int) -> None:
    """Run ``step`` ``n`` times without measuring (for valgrind and other outside tools)."""
    if is_async_callable(step):
        if not in_running_loop():
            run_on_new_loop(_repeat(step, n))
            return
        raise LeakcheckError("repeat() with an async step inside a running loop; await repeat_async()")
    drive(_repeat(step, n))


async def repeat_async(step: Callback, n: int) -> None:
    """Run ``step`` ``n`` times on the running loop without measuring."""
    await _repeat(step, n)
