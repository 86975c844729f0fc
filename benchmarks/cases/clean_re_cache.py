"""Regexes compiled through the module-level ``re`` cache from 60 patterns."""

from __future__ import annotations

import itertools
import re

LEAKS = False
RESOURCE = None
DESCRIPTION = "re.match over 60 distinct patterns: the re module cache fills once, then hits"

_patterns = itertools.cycle([rf"^item-{i}-(\d+)$" for i in range(60)])


def step() -> None:
    re.match(next(_patterns), "item-7-42")
