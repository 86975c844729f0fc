"""Clearing the interpreter's own caches before a sample.

The re, typing, struct, linecache, urllib, strptime, fnmatch and ABC caches
fill as code runs and would read as the user's leak. CPython's refleak
hunter clears them between runs (``Lib/test/libregrtest/utils.py:
clear_caches`` and ``refleak.py: dash_R_cleanup``); we clear the same before
every sample, and the runner collects garbage so reference cycles never read
as growth.

Only caches that are bounded by design are cleared, since clearing one only
removes noise: ``re`` (512 patterns), ``typing`` (lru caches), ``struct``
(100 formats), ``fnmatch`` (an lru cache), ``_strptime`` (a handful of
formats), ``urllib.parse`` (bounded), ``linecache`` (one entry per source
file), the ABC subclass caches and the type attribute cache. The
``__warningregistry__`` of each module is *not* cleared, unlike regrtest: it
keeps one entry per distinct warning text, so a warning whose message is new
on every call grows it without bound in a real process (bpo-27535), and
that is a leak to report. A fixed message adds one entry, once.
"""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["clear_interpreter_caches"]


#: Each sample clears these; found once (a lookup per name on every sample cost more than the clearing).
_ABC_CLEARS: tuple[Callable[[], None], ...] = ()


def _clear_abc_caches() -> None:
    global _ABC_CLEARS
    if not _ABC_CLEARS:
        import abc
        import collections.abc

        # Only the ABCs that stdlib code checks against all the time; walking
        # every subclass of every ABC (as regrtest does) costs milliseconds.
        _ABC_CLEARS = tuple(
            obj._abc_caches_clear  # type: ignore[attr-defined]
            for obj in (getattr(collections.abc, name, None) for name in collections.abc.__all__)
            if isinstance(obj, abc.ABCMeta)
        )
    for clear in _ABC_CLEARS:
        clear()


def clear_interpreter_caches() -> None:
    """Empty the stdlib caches that are bounded by design but fill with use (see the module doc)."""
    modules = sys.modules
    re = modules.get("re")
    if re is not None:
        re.purge()
    typing = modules.get("typing")
    if typing is not None:
        for cleanup in getattr(typing, "_cleanups", ()):
            cleanup()
    struct = modules.get("struct")
    if struct is not None:
        struct._clearcache()
    linecache = modules.get("linecache")
    if linecache is not None:
        linecache.clearcache()
    urllib_parse = modules.get("urllib.parse")
    if urllib_parse is not None:
        urllib_parse.clear_cache()
    strptime = modules.get("_strptime")
    if strptime is not None:
        strptime._regex_cache.clear()
    fnmatch = modules.get("fnmatch")
    if fnmatch is not None and hasattr(fnmatch, "_compile_pattern"):
        fnmatch._compile_pattern.cache_clear()
    _clear_abc_caches()
    sys._clear_type_cache()
