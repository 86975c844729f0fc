"""An asyncio connection pool over aiosqlite that gives every connection back.

Each aiosqlite connection owns a worker thread and a file descriptor, so a
connection that is neither returned nor closed is a leak of both. The pool
therefore releases on every way out of ``async with pool.acquire()``: normal
exit, an exception in the block, cancellation of the task (also while it is
still waiting for a connection) and a timeout.

Usage::

    pool = await Pool.open(path, max_size=4)
    try:
        async with pool.acquire() as conn:
            rows = await conn.execute_fetchall("SELECT title FROM TMTask LIMIT 5")
    finally:
        await pool.close()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, TypeVar

import aiosqlite

from . import faults
from .errors import PoolClosed, PoolError, PoolTimeout
from .watch import ChangeCallback, poll_for_changes

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Pool", "PoolClosed", "PoolError", "PoolTimeout"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

# What a waiter is handed: a connection, or None meaning "capacity freed up,
# try again" (a connection was discarded, so the waiter may open a new one).
_Handoff = Optional[aiosqlite.Connection]


@dataclass
class _Idle:
    conn: aiosqlite.Connection
    since: float  # loop.time() when the connection was returned


class Pool:
    """A bounded pool of aiosqlite connections to one database file.

    Between ``min_size`` and ``max_size`` connections are open. Connections
    idle for longer than ``idle_timeout`` seconds are closed by
    :meth:`prune_idle` (and by a background task every ``prune_interval``
    seconds, if given to :meth:`open`) until ``min_size`` remain. Prefer
    :meth:`open`; a pool constructed directly opens connections only on demand.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        min_size: int = 1,
        max_size: int = 4,
        acquire_timeout: float = 5.0,
        idle_timeout: float = 300.0,
        health_check: bool = True,
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got min_size={min_size}, max_size={max_size}"
            )
        if acquire_timeout <= 0 or idle_timeout < 0:
            raise ValueError("acquire_timeout must be > 0 and idle_timeout >= 0")
        self.path = Path(path)
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.idle_timeout = idle_timeout
        self.health_check = health_check
        # Idle connections are reused last-in first-out: the most recently used
        # one has the warmest page cache, and the oldest ones drift to the left
        # where prune_idle() finds them.
        self._idle: collections.deque[_Idle] = collections.deque()
        self._in_use: set[aiosqlite.Connection] = set()
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[_Handoff]] = collections.deque()
        self._background: set[asyncio.Task[None]] = set()
        #: closes of pruned connections, shielded from the pruner's cancellation; close() waits for them
        self._pruned_closing: set[asyncio.Future[None]] = set()
        self._closing = asyncio.Event()
        self._closed = asyncio.Event()
        self._drained = asyncio.Event()

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        min_size: int = 1,
        max_size: int = 4,
        acquire_timeout: float = 5.0,
        idle_timeout: float = 300.0,
        health_check: bool = True,
        prune_interval: float | None = None,
    ) -> Pool:
        """Create a pool and open its first ``min_size`` connections."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no database at {path}")
        pool = cls(
            path,
            min_size=min_size,
            max_size=max_size,
            acquire_timeout=acquire_timeout,
            idle_timeout=idle_timeout,
            health_check=health_check,
        )
        try:
            for _ in range(min_size):
                pool._idle.append(_Idle(await pool._connect(), pool._now()))
            if prune_interval is not None:
                pool._spawn(pool._prune_forever(prune_interval), "prune")
        except BaseException:
            await pool.close(timeout=0)
            raise
        return pool

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"size={self.size} idle={self.idle}"
        return f"<Pool {self.path.name} {state} in_use={self.in_use}>"

    @property
    def size(self) -> int:
        """Connections open or being opened, idle or checked out."""
        return len(self._idle) + len(self._in_use) + self._opening

    @property
    def idle(self) -> int:
        """Open connections waiting in the pool."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Connections checked out by :meth:`acquire`."""
        return len(self._in_use)

    @property
    def waiting(self) -> int:
        """Tasks waiting in :meth:`acquire` for a connection to come back."""
        return sum(not waiter.done() for waiter in self._waiters)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closing.is_set()

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[aiosqlite.Connection]:
        """Check a connection out for the ``async with`` block, and always give it back.

        Raise :class:`PoolTimeout` if none is free within ``timeout`` seconds
        (default: the pool's ``acquire_timeout``) and :class:`PoolClosed` once
        the pool is closed.
        """
        conn = await self._checkout(self.acquire_timeout if timeout is None else timeout)
        try:
            yield conn
        except BaseException:
            if faults.enabled("lost_connection_on_error"):
                # FAULT(lost_connection_on_error): the error path skips the
                # release, so the connection stays checked out for ever, open,
                # with its worker thread and file descriptor.
                raise
            self._release(conn)
            raise
        else:
            self._release(conn)

    async def prune_idle(self, *, max_idle: float | None = None) -> int:
        """Close connections idle for ``max_idle`` seconds or more, keeping ``min_size``.

        ``max_idle`` defaults to the pool's ``idle_timeout``. Return how many
        connections were closed.
        """
        max_idle = self.idle_timeout if max_idle is None else max_idle
        now = self._now()
        expired = []
        while self._idle and self.size > self.min_size and now - self._idle[0].since >= max_idle:
            expired.append(self._idle.popleft().conn)
        if expired:
            # Off the idle list already, so no one else would close them: a pruner
            # cancelled mid-close (by close()) must not leave them open, each with its thread.
            closing = asyncio.ensure_future(self._close_pruned(expired))
            self._pruned_closing.add(closing)
            closing.add_done_callback(self._pruned_closing.discard)
            await asyncio.shield(closing)
        return len(expired)

    async def _close_pruned(self, expired: list[aiosqlite.Connection]) -> None:
        for conn in expired:
            await _close_quietly(conn)
            self._hand_off(None)

    def watch_for_changes(self, on_change: ChangeCallback, *, interval: float = 1.0) -> None:
        """Call ``on_change`` whenever the database changes on disk, until the pool closes.

        Use it to invalidate caches: ``pool.watch_for_changes(cache.invalidate)``.
        """
        self._raise_if_closed()
        poll = poll_for_changes(self.path, on_change, interval)
        if faults.enabled("dropped_poll_task"):
            # FAULT(dropped_poll_task): the task handle is dropped, so close()
            # never cancels it and it polls for as long as the event loop runs.
            asyncio.create_task(poll, name=f"things3-watch {self.path.name}")
            return
        self._spawn(poll, f"watch {self.path.name}")

    async def wait_for_close(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`close` is called; return False if ``timeout`` passes first."""
        try:
            await asyncio.wait_for(self._closing.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = 10.0) -> None:
        """Close every connection and stop background tasks; then refuse new checkouts.

        Checked-out connections are waited for up to ``timeout`` seconds (for
        ever if None) and closed anyway after that, which makes their holders'
        next query fail. Waiting acquirers get :class:`PoolClosed`. Calling
        close again waits for the first call to finish.
        """
        if self._closing.is_set():
            await self._closed.wait()
            return
        self._closing.set()
        try:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(PoolClosed(self.path))
            await _cancel_all(self._background)
            await asyncio.gather(*self._pruned_closing, return_exceptions=True)
            if self._in_use:
                try:
                    await asyncio.wait_for(self._drained.wait(), timeout)
                except asyncio.TimeoutError:
                    _log.warning(
                        "%s: closing %d connection(s) still checked out after %g s",
                        self.path.name,
                        len(self._in_use),
                        timeout,
                    )
        finally:
            to_close = list(self._in_use)
            self._in_use.clear()
            if faults.enabled("close_forgets_idle"):
                # FAULT(close_forgets_idle): only checked-out connections are
                # closed; the idle ones stay open in self._idle, each with its
                # worker thread and file descriptor, as long as the Pool lives.
                pass
            else:
                to_close += [entry.conn for entry in self._idle]
                self._idle.clear()
            for conn in to_close:
                await _close_quietly(conn)
            self._closed.set()

    # -- checkout and release ------------------------------------------------

    async def _checkout(self, timeout: float) -> aiosqlite.Connection:
        deadline = self._now() + timeout
        while True:
            self._raise_if_closed()
            conn = await self._take_idle()
            if conn is None and self.size < self.max_size:
                conn = await self._connect()
                if self.closed:  # close() ran while we were connecting
                    await _close_quietly(conn)
                    self._raise_if_closed()
                self._in_use.add(conn)
            if conn is None:
                conn = await self._wait_for_handoff(deadline, timeout)
            if conn is not None:
                return conn

    async def _take_idle(self) -> aiosqlite.Connection | None:
        while self._idle:
            conn = self._idle.pop().conn
            self._in_use.add(conn)
            if not self.health_check:
                return conn
            # The check runs to its end even if this checkout is cancelled: an
            # abandoned check stays queued on the connection's worker thread
            # while the connection goes to the next caller, and under steady
            # cancellation (a warmer started and stopped in a loop) that queue
            # only grows.
            try:
                healthy, cancelled = await _uninterrupted(_is_healthy(conn))
            except BaseException:
                self._release(conn)
                raise
            if healthy and cancelled is None:
                return conn
            if healthy:
                self._release(conn)
            else:
                _log.info("%s: replacing a connection that failed its health check", self.path.name)
                self._in_use.discard(conn)
                _, cancelled_closing = await _uninterrupted(_close_quietly(conn))
                cancelled = cancelled or cancelled_closing
                self._hand_off(None)
            if cancelled is not None:
                raise cancelled
        return None

    async def _wait_for_handoff(self, deadline: float, timeout: float) -> _Handoff:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise PoolTimeout(self.path, timeout, self.max_size, self.waiting)
        waiter: asyncio.Future[_Handoff] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(remaining, self._expire, waiter, timeout)
        try:
            return await waiter
        except asyncio.CancelledError:
            # A connection may have been handed to us in the same loop
            # iteration as we were cancelled; pass it on or it is lost.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is None:
                    self._hand_off(None)
                else:
                    self._release(handed)
            raise
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _expire(self, waiter: asyncio.Future[_Handoff], timeout: float) -> None:
        if not waiter.done():
            others = self.waiting - 1
            waiter.set_exception(PoolTimeout(self.path, timeout, self.max_size, others))

    def _release(self, conn: aiosqlite.Connection) -> None:
        # Synchronous on purpose: a release that awaited could itself be
        # cancelled half-way, which is exactly when releases go missing.
        if conn not in self._in_use:
            return  # already closed by close(timeout=...) after its grace period
        if self.closed:
            self._in_use.remove(conn)
            self._idle.append(_Idle(conn, self._now()))  # close() closes it
            if not self._in_use:
                self._drained.set()
        elif not self._hand_off(conn):
            self._in_use.remove(conn)
            self._idle.append(_Idle(conn, self._now()))

    def _hand_off(self, conn: _Handoff) -> bool:
        """Give ``conn`` (or freed capacity, if None) to the oldest waiter; False if none."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    # -- connections and background work -------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        # Counted while connecting so that concurrent checkouts cannot
        # overshoot max_size; on failure the slot goes to a waiter.
        self._opening += 1
        try:
            conn, cancelled = await _uninterrupted(aiosqlite.connect(self.path))
        except BaseException:
            self._hand_off(None)
            raise
        finally:
            self._opening -= 1
        if cancelled is None:
            return conn
        # The checkout was cancelled while this connection opened. Opening
        # takes milliseconds, and a connection abandoned half-open would keep
        # its worker thread for good, so it was finished and joins the pool.
        if self.closed:
            await _uninterrupted(_close_quietly(conn))
            self._hand_off(None)
        else:
            self._in_use.add(conn)
            self._release(conn)
        raise cancelled

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"things3-{name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _prune_forever(self, interval: float) -> None:
        while not await self.wait_for_close(interval):
            await self.prune_idle()

    def _raise_if_closed(self) -> None:
        if self.closed:
            raise PoolClosed(self.path)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


async def _uninterrupted(aw: Awaitable[T]) -> tuple[T, asyncio.CancelledError | None]:
    """Await ``aw`` to its end even if the calling task is cancelled meanwhile.

    Return its result and the cancellation that arrived, if one did, for the
    caller to raise once the result is somewhere safe (back in the pool, or
    closed). Cancellation is delayed, never lost.
    """
    task = asyncio.ensure_future(aw)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError as exc:
            if task.cancelled():
                raise  # the work itself was cancelled (the loop is shutting down)
            if task.done():
                return task.result(), exc  # finished in the tick we were cancelled
            cancelled = exc


async def _is_healthy(conn: aiosqlite.Connection) -> bool:
    try:
        await conn.execute_fetchall("SELECT 1")
    except (sqlite3.Error, ValueError):  # aiosqlite raises ValueError once closed
        return False
    return True


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    # A connection being thrown away may already be broken; closing must
    # still stop its worker thread, and one bad close must not stop the rest.
    try:
        await conn.close()
    except sqlite3.Error:
        _log.warning("error while closing a connection", exc_info=True)
        conn.stop()


async def _cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    # gather() rather than awaiting each task under suppress(CancelledError):
    # that would also swallow a cancellation of close() itself.
    await asyncio.gather(*tasks, return_exceptions=True)
