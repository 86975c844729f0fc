"""Grouping results for people: handles alike in kind and origin, sites seen by several tools.

A page must not list 470 identical threads, and a line two tools saw is one
place: these helpers make one entry of each, for the failure text, the
per-test page and ``results.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import AllocationSite, LeakedHandle

__all__ = ["TOOL_LABELS", "describe_handle_groups", "group_handles", "handle_count", "site_groups"]


def group_handles(handles: Sequence[LeakedHandle]) -> tuple[LeakedHandle, ...]:
    """One entry per kind and creation site (or description pattern), with a count; largest first.

    Handles made at one known place are one group, whatever their names: a
    temp folder per call has a new random name each time, and is still one
    line to fix. Handles of unknown origin group by description, numbers
    aside (fd 7 / fd 8, ``Thread-12``). A group keeps its first member's
    stack; its description is the members' common pattern (``/tmp/things3-*``).
    """
    groups: dict[tuple[str, str], list[LeakedHandle]] = {}
    for h in handles:
        # The user's line that made it, when known: the outer frames depend on how deep the harness was.
        where = h.origin or h.stack
        groups.setdefault((h.kind, where or re.sub(r"\d+", "N", h.description)), []).append(h)
    out = [
        replace(members[0], description=_pattern([m.description for m in members]), count=sum(m.count for m in members))
        for members in groups.values()
    ]
    return tuple(sorted(out, key=lambda h: -h.count))


def _pattern(descriptions: Sequence[str]) -> str:
    """The first description when all are alike but for numbers, else their common prefix and suffix around ``*``."""
    first = descriptions[0]
    shape = re.sub(r"\d+", "N", first)
    if all(re.sub(r"\d+", "N", d) == shape for d in descriptions):
        return first
    prefix = os.path.commonprefix(list(descriptions))
    suffix = os.path.commonprefix([d[len(prefix) :][::-1] for d in descriptions])[::-1]
    # Random names share letters by chance: the pattern starts and ends at word boundaries.
    prefix = re.sub(r"\w+$", "", prefix)
    suffix = re.sub(r"^\w+", "", suffix)
    return f"{prefix}*{suffix}"


def handle_count(handles: Sequence[LeakedHandle]) -> int:
    """How many handles ``handles`` stand for (groups count their members)."""
    return sum(h.count for h in handles)


def site_groups(sites: Sequence[AllocationSite]) -> list[tuple[AllocationSite, tuple[str, ...]]]:
    """Each place once: the sites of all tools at one ``file:line``, as (the biggest, the tools that saw it).

    The tools' own order is kept (the user's lines first, then by size).
    """
    groups: dict[str, tuple[list[AllocationSite], list[str]]] = {}
    for s in sites:
        key = re.sub(r"(:\d+)(?: in .*)?$", r"\1", s.location)
        members, tools = groups.setdefault(key, ([], []))
        members.append(s)
        if s.source not in tools:
            tools.append(s.source)
    out = []
    for members, tools in groups.values():
        best = max(members, key=lambda m: (m.user_code, m.bytes_per_iteration))
        via = best.via or next((m.via for m in members if m.via), "")
        # The biggest keeps its numbers; the library frame another tool saw is kept with it.
        out.append((replace(best, via=via), tuple(tools)))
    return out


#: What each tool sees, for the label on a site.
TOOL_LABELS = {"tracemalloc": "tracemalloc: Python allocations", "memray": "memray: native and Python"}


def describe_handle_groups(groups: Sequence[LeakedHandle], *, indent: str = "  ", limit: int = 10) -> list[str]:
    """Lines for grouped handles: one per group with its count, and the group's creation stack once."""
    lines = []
    for h in groups[:limit]:
        lines.append(indent + h.describe())
        if h.stack:  # one stack per group, however many handles it stands for
            lines.extend(indent + "  " + s for s in h.stack.rstrip().splitlines()[-12:])
    if len(groups) > limit:
        rest = groups[limit:]
        lines.append(f"{indent}... and {len(rest)} more kinds ({handle_count(rest)} handles)")
    return lines
