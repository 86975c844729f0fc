"""A bounded cache of query results, with optional background warming.

Entries are keyed by the query's name and its arguments, live for ``ttl``
seconds and are evicted least-recently-used beyond ``max_entries``. A warming
task can re-run a fixed set of queries periodically so that the app's main
lists are always served from memory; it stops when the cache is closed or
when its pool closes, whichever comes first. (Upstream's warmer stopped on
neither, which is the ``warmer_never_stopped`` fault.)

Usage::

    async with QueryCache(pool, max_entries=128, ttl=30) as cache:
        cache.start_warming([queries.inbox, partial(queries.logbook, limit=50)], interval=10)
        tasks = await cache.get(queries.logbook, limit=50)
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from . import faults
from .errors import PoolClosed, PoolTimeout
from .pool import Pool

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CacheClosed", "CacheStats", "QueryCache"]

_log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[..., Awaitable[Any]]
"""A query function from :mod:`.queries`: ``await query(pool, *args, **kwargs)``."""


class CacheClosed(RuntimeError):
    """The cache was used after :meth:`QueryCache.close`."""


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was created, and its current size."""

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int


@dataclass
class _Entry:
    value: Any
    expires_at: float


class QueryCache:
    """Cache the results of queries run through ``pool``.

    ``clock`` returns seconds and exists so tests can move time forward; it
    defaults to :func:`time.monotonic`.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        max_entries: int = 128,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError(f"need max_entries >= 1 and ttl > 0, got {max_entries}, {ttl}")
        self.pool = pool
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        # Insertion order doubles as recency order: hits move to the end,
        # evictions pop from the front.
        self._entries: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
        self._calls = itertools.count()
        self._warmer: asyncio.Task[None] | None = None
        self._warmed: asyncio.Event | None = None  # set after the first round, or on stopping
        self._closed = False
        self._hits = self._misses = self._evictions = self._expirations = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        """Hit, miss, eviction and expiration counts, and the number of entries."""
        return CacheStats(self._hits, self._misses, self._evictions, self._expirations, len(self._entries))

    @property
    def warming(self) -> bool:
        """Whether a warming task started by this cache is still running."""
        return self._warmer is not None and not self._warmer.done()

    async def get(self, query: Callable[..., Awaitable[T]], *args: Hashable, **kwargs: Hashable) -> T:
        """Return ``await query(pool, *args, **kwargs)``, from the cache while fresh.

        Two concurrent misses for one key both run the query; the later result
        wins. That is cheaper than coordinating them for read-only lists.
        """
        if self._closed:
            raise CacheClosed("QueryCache.get() after close(); create a new cache")
        key = self._key(query, args, kwargs)
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > self._clock():
            self._entries.move_to_end(key)
            self._hits += 1
            return cast(T, entry.value)
        if entry is not None:
            del self._entries[key]
            self._expirations += 1
        self._misses += 1
        return await self._run_and_store(key, query, args, kwargs)

    async def refresh(self, query: Callable[..., Awaitable[T]], *args: Hashable, **kwargs: Hashable) -> T:
        """Run the query now and cache its result, fresh or not."""
        if self._closed:
            raise CacheClosed("QueryCache.refresh() after close(); create a new cache")
        return await self._run_and_store(self._key(query, args, kwargs), query, args, kwargs)

    def invalidate(self) -> None:
        """Forget every entry, e.g. when the database changed on disk."""
        self._entries.clear()

    def start_warming(
        self, queries: Iterable[Query | functools.partial[Awaitable[Any]]], *, interval: float = 30.0
    ) -> None:
        """Re-run ``queries`` every ``interval`` seconds, keeping their entries fresh.

        Each is a query function or a :func:`functools.partial` of one with its
        arguments, cached under the same key as the equivalent :meth:`get`.
        The task stops on :meth:`close` or when the pool closes.
        """
        if self._closed:
            raise CacheClosed("QueryCache.start_warming() after close()")
        if self.warming:
            raise RuntimeError("this cache is already warming; close it to stop")
        calls = [q if isinstance(q, functools.partial) else functools.partial(q) for q in queries]
        self._warmed = asyncio.Event()
        warm = self._warm_until_closed(calls, interval, self._warmed)
        self._warmer = asyncio.get_running_loop().create_task(warm, name="things3-cache-warmer")

    async def wait_warm(self) -> None:
        """Wait until the warmer has run each of its queries once, or has stopped.

        For a service that wants its main lists in memory before it serves
        (a query that failed in that round is simply not cached yet).
        """
        if self._warmed is None:
            raise RuntimeError("QueryCache.wait_warm() before start_warming()")
        await self._warmed.wait()

    async def close(self) -> None:
        """Drop every entry and stop the warming task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._entries.clear()
        warmer, self._warmer = self._warmer, None
        if warmer is None:
            return
        if faults.enabled("warmer_never_stopped"):
            # FAULT(warmer_never_stopped): the handle is dropped instead of
            # cancelled; the task keeps re-running its queries (and holding
            # this cache) until the pool closes.
            return
        warmer.cancel()
        # gather() rather than awaiting under suppress(CancelledError), which
        # would also swallow a cancellation of close() itself.
        await asyncio.gather(warmer, return_exceptions=True)

    def _key(self, query: Query, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable:
        key = (f"{query.__module__}.{query.__qualname__}", args, tuple(sorted(kwargs.items())))
        if faults.enabled("unbounded_cache"):
            # FAULT(unbounded_cache): a per-call value (upstream: a request id)
            # slips into the key, so no two calls ever share an entry.
            return (*key, next(self._calls))
        return key

    async def _run_and_store(
        self,
        key: Hashable,
        query: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> T:
        value = await query(self.pool, *args, **kwargs)
        self._entries[key] = _Entry(value, self._clock() + self.ttl)
        self._entries.move_to_end(key)
        if faults.enabled("unbounded_cache"):
            # FAULT(unbounded_cache): eviction is skipped; max_entries is ignored.
            return value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self._evictions += 1
        return value

    async def _warm_until_closed(
        self, calls: list[functools.partial[Awaitable[Any]]], interval: float, warmed: asyncio.Event
    ) -> None:
        try:
            while True:
                for call in calls:
                    query, args, kwargs = call.func, call.args, call.keywords
                    try:
                        await self._run_and_store(self._key(query, args, kwargs), query, args, kwargs)
                    except PoolClosed:
                        return
                    except (sqlite3.Error, PoolTimeout):
                        # Transient (a locked database, a busy pool): the entry
                        # stays as it was and the next round tries again.
                        _log.warning("cache warming: %s failed", query.__qualname__, exc_info=True)
                warmed.set()
                if await self.pool.wait_for_close(interval):
                    return
        finally:
            warmed.set()  # nobody waits for a round that will never come
