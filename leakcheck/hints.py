"""The fixes error messages suggest: the closest of the accepted names, or some of them.

One place for "did you mean" and for "its tests are a, b and 6 more", so that
markers, ini keys, flags, targets and valgrind's node ids answer a typo alike.
Imports nothing heavy at module level: the valgrind driver loads targets (and
so this module) under memcheck, where every import costs seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["close_matches", "some_of"]

#: Names listed when none is close to what was typed.
LISTED = 8


def close_matches(word: object, choices: Sequence[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``choices`` close to ``word`` (difflib's ratio >= ``cutoff``), closest first."""
    import difflib  # only on an error path

    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)


def some_of(names: Sequence[str], limit: int = LISTED) -> str:
    """``"a, b, c"``, or the first ``limit`` of ``names`` and ``" and N more"``."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{', '.join(names[:limit])}{more}"
