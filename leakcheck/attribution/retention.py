"""What keeps it alive: a census of gc-tracked objects, and chains of references from roots.

During the attribution window, :class:`RetentionWatch` counts gc-tracked
objects by type (and the length of every list, dict, set and deque) at four
points: the window's start and after each third. A type (or a container)
grows *in step* when it grew in every third, by a similar amount: a leak. A
cache that fills and stops, or a list cleared now and then, does not.

For a few of the newest objects of the top growing types, and for growing
containers, a breadth-first walk over ``gc.get_referrers`` finds the shortest
chain of references from a *root*: a module global, a class attribute, a
live thread's or task's frame, a signal handler. Each level of the walk is
one ``gc.get_referrers(*frontier)`` call, so the cost is a few heap scans, not
one per object; the walk stops at a time budget and a cap on the objects it
visits, and says so. It holds the objects only while it runs: the result is
text, and every reference is dropped before :meth:`RetentionWatch.finish`
returns.

When an object has more references than its referrers account for
(``sys.getrefcount`` against what ``gc.get_referrers`` finds), something no
Python object holds keeps it alive: a missing ``Py_DECREF`` in native code
(or a native registry such as ``atexit``).
"""

from __future__ import annotations

import array
import asyncio
import collections
import gc
import itertools
import math
import re
import signal
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..results import GrowingType, ReferrerChain, Retention
from .frames import DEFAULT_CODE, CodeMap

__all__ = ["RetentionWatch", "find_chain"]

#: Seconds the chain search may take per check.
BUDGET = 2.0
#: Objects the chain search may visit per check.
NODE_CAP = 50_000
#: Longest chain looked for.
MAX_DEPTH = 12
_SAMPLES = 2  #: objects per growing type a chain is searched for
_TYPES = 2  #: growing types whose objects get chains
_CONTAINERS = (list, dict, set, collections.deque)
_HEAPTYPE = 1 << 9  #: Py_TPFLAGS_HEAPTYPE: a class defined in Python, not C
#: Objects the interpreter holds from C by design: a weakref from its referent's weakref list.
_NATIVELY_HELD = (weakref.ref, weakref.ProxyType, weakref.CallableProxyType)


#: An object's identity without ``id()``: ``id()`` raises the ``builtins.id`` audit event, and
#: with leakcheck's audit hook installed (files left on disk) each call runs a Python function,
#: ~1.4 us. A census takes identities of every container, half a million in a suite's worker:
#: ``object.__hash__`` is the address rotated by four bits (one-to-one), with no audit event.
_oid: Callable[[object], int] = object.__hash__


def _type_name(t: type) -> str:
    module = getattr(t, "__module__", "")
    return t.__qualname__ if module in ("builtins", "") else f"{module}.{t.__qualname__}"


#: One census's containers: their ids, lengths and type ids, as the bytes of arrays of
#: 64-bit ints. A suite's worker holds hundreds of thousands of dicts and lists; dicts of
#: ``id -> len`` cost ~0.1 s a census to build and ~100 B an entry to keep. Bytes are not
#: tracked by the gc (arrays and tuples are), so the census never counts its own bookkeeping.
_Census = tuple[bytes, bytes, bytes]


def _containers(objects: Sequence[Any]) -> _Census:
    return (
        array.array("q", map(_oid, objects)).tobytes(),
        array.array("q", map(len, objects)).tobytes(),
        array.array("q", map(_oid, map(type, objects))).tobytes(),
    )


def _of(ids: bytes, lengths: bytes, kinds: bytes, wanted: set[int]) -> dict[int, tuple[int, int]]:
    """``id -> (length, type id)`` of one census's containers whose ids are in ``wanted``."""
    id_of, length_of, kind_of = memoryview(ids).cast("q"), memoryview(lengths).cast("q"), memoryview(kinds).cast("q")
    at = itertools.compress(range(len(id_of)), map(wanted.__contains__, id_of))
    found = {id_of[i]: (length_of[i], kind_of[i]) for i in at}
    id_of.release()
    length_of.release()
    kind_of.release()
    return found


def _sizes(types_seen: dict[int, type]) -> tuple[dict[int, int], _Census]:
    """Live gc-tracked objects per type id, and every container's id, length and type id.

    Only ints are stored, so the census's own objects are untracked by the gc
    and never count themselves in the next census. The heap of a process that
    collected a whole suite holds half a million objects and a window takes
    four censuses: types are counted by ``Counter``, containers picked by
    ``compress`` and measured by ``map`` into arrays, all in C.
    """
    objects = gc.get_objects()
    by_type = collections.Counter(map(type, objects))
    counts = {_oid(t): n for t, n in by_type.items()}
    for t in by_type:
        types_seen.setdefault(_oid(t), t)
    container_types = {t for t in by_type if issubclass(t, _CONTAINERS)}
    del by_type
    containers = list(itertools.compress(objects, map(container_types.__contains__, map(type, objects))))
    del objects
    # A dict of str keys and tuples of str/int is untracked by the gc, yet grows as a module global.
    untracked = _untracked_globals()
    for obj in untracked:
        types_seen.setdefault(_oid(type(obj)), type(obj))
    census = _containers(containers + untracked)
    del containers, untracked
    return counts, census


def _untracked_globals() -> list[Any]:
    """Containers the gc does not track that module globals (and class attributes) hold."""
    found = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for value in list(namespace.values()):
            if isinstance(value, _CONTAINERS) and not gc.is_tracked(value):
                found.append(value)
    return found


def _steady(values: Sequence[int], xs: Sequence[int]) -> float:
    """Growth per iteration when every interval grew, by amounts within 2x of each other; else 0."""
    rates = [(values[i + 1] - values[i]) / max(1, xs[i + 1] - xs[i]) for i in range(len(values) - 1)]
    if not rates or min(rates) <= 0 or min(rates) < max(rates) / 2 or min(rates) < 0.05:
        return 0.0
    return (values[-1] - values[0]) / max(1, xs[-1] - xs[0])


class _Roots:
    """What counts as a root, read once per search: module dicts, live frames, signal handlers."""

    def __init__(self, code: CodeMap) -> None:
        self.code = code
        self.modules: dict[int, str] = {}
        self.ignored: set[int] = set()
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            filename = getattr(module, "__file__", None) or ""
            if filename and code.kind(filename) == "harness" or name.split(".")[0] in _HARNESS_MODULES:
                self.ignored.add(_oid(namespace))  # the harness's state is not the user's root
            else:
                self.modules[_oid(namespace)] = name
        self.ignored.add(_oid(sys.modules))
        self.frames: dict[int, str] = {}
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            f: types.FrameType | None = frame
            while f is not None:
                self.frames[_oid(f)] = f"thread {names.get(ident, ident)!r}"
                f = f.f_back
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # no running loop in this thread
            tasks = set()
        for task in tasks:
            coro_frame = getattr(task.get_coro(), "cr_frame", None)
            if coro_frame is not None:
                self.frames[_oid(coro_frame)] = f"task {task.get_name()!r}"
        del tasks
        self.handlers: dict[int, str] = {}
        for signum in signal.valid_signals():
            try:
                handler = signal.getsignal(signum)
            except (ValueError, OSError):  # not a settable signal here
                continue
            if callable(handler):
                self.handlers[_oid(handler)] = f"signal handler of {signal.Signals(signum).name}"


_HARNESS_MODULES = frozenset({"leakcheck", "_pytest", "pytest", "pluggy", "xdist", "execnet", "memray", "tracemalloc"})


def _edge(parent: Any, child: Any) -> str:
    """How ``parent`` refers to ``child``: ``[17]``, ``['key']``, ``.attr``, or its type."""
    if isinstance(parent, dict):
        for key, value in parent.items():
            if value is child:
                return f"[{key!r}]"
            if key is child:
                return "(a key)"
    if isinstance(parent, (list, tuple, collections.deque)):
        for i, value in enumerate(parent):
            if value is child:
                return f"[{i}]"
    if isinstance(parent, (set, frozenset)):
        return "{…}"
    if isinstance(parent, types.CellType):
        return "(closure cell)"
    if isinstance(parent, types.FunctionType):
        closure = parent.__closure__ or ()
        return f"{parent.__qualname__}.__closure__" if any(c is child for c in closure) else f"{parent.__qualname__}(…)"
    if isinstance(parent, types.FrameType):
        for name, value in parent.f_locals.items():
            if value is child:
                return f"local {name!r}"
    namespace = getattr(parent, "__dict__", None)
    if isinstance(namespace, dict):
        for key, value in namespace.items():
            if value is child:
                return f".{key}"
    for name in getattr(type(parent), "__slots__", ()):
        if getattr(parent, name, None) is child:
            return f".{name}"
    return f"({_type_name(type(parent))})"


def _render(path: list[Any], roots: _Roots) -> ReferrerChain:
    """``path`` is root first, target last: ``app._USERS (dict) → [17] → app.User``."""
    if len(path) > 2 and isinstance(path[-1], dict) and getattr(path[-2], "__dict__", None) is path[-1]:
        path = path[:-1]  # an instance's own __dict__ is part of the instance
    root = path[0]
    i = 1
    if _oid(root) in roots.modules:
        head, kind = f"{roots.modules[_oid(root)]}.{_edge(root, path[1])[2:-2]}", "module global"
        i = 2
    elif isinstance(root, type) and len(path) > 2 and path[1] is getattr(root, "__dict__", None):
        head, kind = f"{_type_name(root)}.{_edge(path[1], path[2])[2:-2]}", "class attribute"
        i = 3
    elif isinstance(root, type):
        head, kind = _type_name(root), "class attribute"
    elif _oid(root) in roots.frames:
        where = roots.frames[_oid(root)]
        head = f"{where} in {root.f_code.co_name} {_edge(root, path[1])}"
        kind = "task frame" if where.startswith("task") else "thread frame"
        i = 2
    else:
        head, kind = roots.handlers.get(_oid(root), _type_name(type(root))), "callback"
    if i >= len(path):  # the root itself holds the target: `app.KEPT (list)`
        return ReferrerChain(kind, (f"{head} ({_type_name(type(path[-1]))})",))
    links = [f"{head} ({_type_name(type(path[i - 1]))})"]
    while i < len(path):
        parent, child = path[i - 1], path[i]
        # An instance and its __dict__ read as one step: `.attr`.
        if isinstance(child, dict) and i + 1 < len(path) and getattr(parent, "__dict__", None) is child:
            edge = "." + _edge(child, path[i + 1])[2:-2]
            i += 1
            child = path[i]
        else:
            edge = _edge(parent, child)
        if i == len(path) - 1:
            links.append(edge)
            links.append(_type_name(type(child)))
        else:
            links.append(f"{edge} ({_type_name(type(child))})")
        i += 1
    return ReferrerChain(kind, tuple(links))


def _is_root(obj: Any, roots: _Roots) -> bool:
    oid = _oid(obj)
    return oid in roots.modules or oid in roots.frames or oid in roots.handlers or isinstance(obj, type)


def find_chain(
    target: Any,
    *,
    code: CodeMap = DEFAULT_CODE,
    deadline: float | None = None,
    cap: int = NODE_CAP,
    ignore: Iterable[object] = (),
) -> tuple[ReferrerChain | None, int, str]:
    """The shortest chain from a root to ``target`` (never through an object in ``ignore``),
    the objects visited, and why it stopped early ("" if not)."""
    roots = _Roots(code)
    chain, visited, stopped = _search(target, roots, deadline, cap, set(map(_oid, ignore)))
    del roots
    return chain, visited, stopped


def _search(
    target: Any, roots: _Roots, deadline: float | None, cap: int, ignore: set[int]
) -> tuple[ReferrerChain | None, int, str]:
    parent: dict[int, int] = {}
    seen: dict[int, Any] = {_oid(target): target}
    frontier: list[Any] = [target]
    ignore |= roots.ignored | {_oid(seen), _oid(frontier), _oid(parent)}
    this_frame = sys._getframe()
    try:
        for _depth in range(MAX_DEPTH):
            if deadline is not None and time.perf_counter() > deadline:
                return None, len(seen), "budget"
            if len(seen) > cap:
                return None, len(seen), "cap"
            frontier_ids = {_oid(o) for o in frontier}
            referrers = gc.get_referrers(*frontier)
            ignore.add(_oid(referrers))
            ignore.add(_oid(frontier))
            following: list[Any] = []
            ignore.add(_oid(following))
            for ref in referrers:
                rid = _oid(ref)
                if rid in ignore or rid in seen or ref is this_frame:
                    continue
                if isinstance(ref, types.FrameType) and roots.code.kind(ref.f_code.co_filename) == "harness":
                    continue  # the harness's own frames (this search, the runner) hold nothing of the user's
                child = next((c for c in gc.get_referents(ref) if _oid(c) in frontier_ids), None)
                if child is None:
                    continue
                parent[rid] = _oid(child)
                seen[rid] = ref
                if _is_root(ref, roots):
                    path = [ref]
                    while _oid(path[-1]) != _oid(target):
                        path.append(seen[parent[_oid(path[-1])]])
                    return _render(path, roots), len(seen), ""
                following.append(ref)
            del referrers
            frontier = following
            if not frontier:
                return None, len(seen), ""
        return None, len(seen), ""
    finally:
        del this_frame
        seen.clear()
        frontier = []


def _unheld(obj: Any) -> int:
    """References to ``obj`` that no object found by ``gc.get_referrers`` accounts for."""
    # getrefcount's argument, this frame's `obj`, and the caller's list of samples
    own = 3
    held = 0
    for ref in gc.get_referrers(obj):
        if isinstance(ref, types.FrameType):  # this frame's and the caller's locals: counted in `own`
            continue
        held += sum(1 for c in gc.get_referents(ref) if c is obj)
    held -= 1  # the caller's list of samples is one of the referrers
    return max(0, sys.getrefcount(obj) - own - held)


def _newest(objects: Sequence[Any], per_type: int) -> list[Any]:
    """The last ``per_type`` objects of each type in ``objects``, newest first.

    A function of its own, so no loop variable outlives it: a stray reference
    would read as one no Python object holds.
    """
    picked: dict[type, int] = {}
    newest = []
    for obj in reversed(objects):
        t = type(obj)
        if picked.get(t, 0) < per_type:
            picked[t] = picked.get(t, 0) + 1
            newest.append(obj)
    return newest


class RetentionWatch:
    """Census at four points of a window, then chains for the newest objects of growing types."""

    def __init__(
        self, iterations: int, *, code: CodeMap = DEFAULT_CODE, budget: float = BUDGET, cap: int = NODE_CAP
    ) -> None:
        self.iterations = max(1, iterations)
        self.code = code
        self.budget = budget
        self.cap = cap
        self._points = sorted({0} | {round(self.iterations * j / 3) for j in (1, 2, 3)})
        self._xs: list[int] = []
        self._counts: list[dict[int, int]] = []
        # three lists of bytes, not a list of tuples: a tuple would be a gc-tracked object per census
        self._ids: list[bytes] = []
        self._lengths: list[bytes] = []
        self._kinds: list[bytes] = []
        self._types: dict[int, type] = {}
        self._seconds = 0.0

    def wants(self, iteration: int) -> bool:
        """Whether ``iteration`` is one of the window's four points not yet counted."""
        return iteration in self._points and iteration not in self._xs

    def checkpoint(self, iteration: int) -> None:
        """Take a census when ``iteration`` is one of the window's four points (0 is the start)."""
        if not self.wants(iteration):
            return
        began = time.perf_counter()
        counts, (ids, lengths, kinds) = _sizes(self._types)
        self._xs.append(iteration)
        self._counts.append(counts)
        self._ids.append(ids)
        self._lengths.append(lengths)
        self._kinds.append(kinds)
        self._seconds += time.perf_counter() - began

    def finish(self, iterations: int) -> Retention | None:
        """The growing types, chains and unheld references; ``None`` when nothing grew in step."""
        self.checkpoint(iterations)
        began = time.perf_counter()
        try:
            return self._finish()
        finally:
            self._counts.clear()
            self._ids.clear()
            self._lengths.clear()
            self._kinds.clear()
            self._types.clear()
            gc.collect()
            self._seconds += time.perf_counter() - began

    def _finish(self) -> Retention | None:
        if len(self._counts) < 3:
            return None
        xs = self._xs
        growing: list[tuple[type, float]] = []
        for tid in self._counts[-1]:
            rate = _steady([c.get(tid, 0) for c in self._counts], xs)
            if rate > 0:
                growing.append((self._types[tid], rate))
        # The user's own classes first, then libraries', then the standard library's; types
        # written in C (locks, weakrefs, a User's __dict__) grow along with them but say less.
        growing.sort(key=lambda g: (self._rank(g[0]), -g[1]))
        containers: list[tuple[int, float]] = []
        # Growing by 0.5 items an iteration or more, from any length: at least that long by now.
        shortest = math.ceil(0.5 * (xs[-1] - xs[0]))
        last_ids, last_lengths = memoryview(self._ids[-1]).cast("q"), memoryview(self._lengths[-1]).cast("q")
        long_enough = set(itertools.compress(last_ids, map(shortest.__le__, last_lengths)))
        last_ids.release()
        last_lengths.release()
        seen = [_of(*c, long_enough) for c in zip(self._ids, self._lengths, self._kinds)]
        for cid, (_, tid) in seen[-1].items():
            if any(s.get(cid, (0, -1))[1] != tid for s in seen):
                continue
            rate = _steady([s[cid][0] for s in seen], xs)
            if rate >= 0.5:
                containers.append((cid, rate))
        del seen, long_enough
        containers.sort(key=lambda c: -c[1])
        self._ids.clear()
        self._lengths.clear()
        self._kinds.clear()
        if not growing and not containers:
            return None
        types_out = tuple(GrowingType(_type_name(t), round(r, 3)) for t, r in growing[:8])
        wanted = {t for t, _ in growing[:_TYPES]}
        container_ids = {cid for cid, _ in containers[:2]}
        samples: list[Any] = []
        objects = gc.get_objects()
        # Picked out in C (the heap may hold half a million objects), then walked newest
        # first: promoted objects are appended.
        of_types = list(itertools.compress(objects, map(wanted.__contains__, map(type, objects))))
        grown = [
            obj
            for obj in itertools.compress(objects, map(container_ids.__contains__, map(_oid, objects)))
            if isinstance(obj, _CONTAINERS)
        ]
        del objects
        samples.extend(_newest(of_types, _SAMPLES))
        picked = {_oid(obj) for obj in samples}
        grown = [obj for obj in grown if _oid(obj) not in picked]  # already a sample of its type
        container_ids.difference_update(map(_oid, grown))
        grown.reverse()
        grown.extend(obj for obj in _untracked_globals() if _oid(obj) in container_ids)
        samples.extend(grown)  # containers last: a chain to what they hold says more
        del of_types, grown
        rates = dict(containers)
        return self._explain(samples, rates, types_out)

    def _rank(self, t: type) -> int:
        if not t.__flags__ & _HEAPTYPE:
            return 3
        module = sys.modules.get(t.__module__)
        filename = getattr(module, "__file__", None) or ""
        kind = self.code.kind(filename) if filename else "stdlib"
        return {"user": 0, "library": 1}.get(kind, 2)

    def _explain(self, samples: list[Any], rates: dict[int, float], types_out: tuple[GrowingType, ...]) -> Retention:
        deadline = time.perf_counter() + self.budget
        chains: list[ReferrerChain] = []
        notes: list[str] = []
        shapes: set[tuple[str, ...]] = set()
        visited = 0
        stopped = ""
        no_chain: list[str] = []
        unheld_types: list[str] = []
        roots = _Roots(self.code)
        ignore = {_oid(samples), _oid(rates)}
        for k in range(len(samples)):
            obj = samples[k]
            if stopped:
                break
            chain, n, stopped = _search(obj, roots, deadline, self.cap - visited, set(ignore))
            visited += n
            if chain is not None:
                if _oid(obj) in rates:  # a growing container: say how fast
                    links = list(chain.links)
                    if len(links) > 1 and links[-2].endswith(f"({links[-1]})"):
                        links.pop()  # `app.KEPT (list)` already names it
                    rate = f"+{rates[_oid(obj)]:.2f} items/iteration"
                    links[-1] = links[-1][:-1] + f", {rate})" if links[-1].endswith(")") else f"{links[-1]} ({rate})"
                    chain = ReferrerChain(chain.root_kind, tuple(links))
                    if any(c.links[0] == chain.links[0].split(",")[0] + ")" for c in chains):
                        continue  # the chain to what it holds already names it
                shape = tuple(re.sub(r"\[[^\]]*\]", "[]", link) for link in chain.links)
                if shape not in shapes:
                    shapes.add(shape)
                    chains.append(chain)
            elif not stopped:
                name = _type_name(type(obj))
                if not isinstance(obj, _NATIVELY_HELD) and _unheld(obj) > 0:
                    unheld_types.append(name)
                else:
                    no_chain.append(name)
            del obj
        del roots
        samples.clear()
        if stopped == "budget":
            notes.append(f"the search for chains stopped at its {self.budget:g} s budget ({visited} objects visited)")
        elif stopped == "cap":
            notes.append(f"the search for chains stopped at its cap of {self.cap} objects visited")
        unheld = ""
        if unheld_types:
            names = ", ".join(dict.fromkeys(unheld_types))
            unheld = (
                f"{names}: kept alive by a reference no Python object holds \u2014 "
                "a missing Py_DECREF in native code (or a native registry such as atexit)"
            )
        if no_chain and not chains:
            notes.append(
                f"no chain from a module global, class attribute, live frame or signal handler "
                f"to {', '.join(dict.fromkeys(no_chain))} within {MAX_DEPTH} steps"
            )
        return Retention(
            types=types_out, chains=tuple(chains), unheld=unheld, notes=tuple(notes), seconds=round(self._seconds, 4)
        )
