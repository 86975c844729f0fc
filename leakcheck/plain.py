"""JSON-ready values and back: how ``results.json`` writes what JSON has no word for.

Results are frozen dataclasses of enums, tuples and floats; :func:`to_plain`
turns them into dicts, lists and strings, and writes NaN (an unavailable
measure's growth, a slope never computed) as ``null``, which strict JSON
readers accept. :func:`number` and :func:`seconds_or_none` read such fields
back. No results type is imported here, so :mod:`leakcheck.results` can use it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["number", "seconds_or_none", "to_plain"]


def to_plain(value: Any) -> Any:
    """Dataclasses, enums, tuples and mappings to JSON-ready values (NaN as ``None``)."""
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return None
    return value


def number(value: object) -> float:
    """A float from JSON, where NaN was written as ``null``."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def seconds_or_none(value: object) -> float | None:
    """A duration from JSON that may be absent (``null``: not measured)."""
    return None if value is None else float(value)  # type: ignore[arg-type]
