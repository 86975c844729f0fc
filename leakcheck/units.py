"""Parsing and formatting of byte sizes and per-iteration rates."""

from __future__ import annotations

import math
import re

from .errors import ConfigError

__all__ = ["format_quantity", "format_size", "parse_size"]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object, *, name: str = "size", source: str = "") -> float:
    """Return a size in bytes from ``512``, ``"512 B"``, ``"1 KiB"`` or ``"1.5MB"``.

    Raises :class:`ConfigError` naming ``name`` and ``source`` when the value
    is negative, not a number, or has a unit we do not know.
    """
    if isinstance(value, bool):
        raise ConfigError(name, value, "expected a size such as 512, '512 B' or '1 KiB'", source)
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ConfigError(name, value, "a size must be a finite number >= 0", source)
        return float(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = match.group(2).lower()
            if unit in _UNITS:
                return float(match.group(1)) * _UNITS[unit]
            known = "B, KB, MB, GB, KiB, MiB, GiB"
            raise ConfigError(name, value, f"unknown unit {match.group(2)!r}; use one of {known}", source)
    raise ConfigError(name, value, "expected a size such as 512, '512 B' or '1 KiB'", source)


def format_size(num_bytes: float) -> str:
    """Format a byte count for people: ``"412 B"``, ``"10.0 KiB"``, ``"-1.5 MiB"``."""
    sign = "-" if num_bytes < 0 else ""
    value = abs(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "B":
                return f"{sign}{value:.0f} B" if value >= 10 or value == int(value) else f"{sign}{value:.2f} B"
            return f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_quantity(value: float, unit: str) -> str:
    """Format ``value`` in ``unit``: bytes become KiB/MiB, counts keep their unit."""
    if unit == "B":
        return format_size(value)
    if value == int(value):
        return f"{value:.0f} {unit}"
    return f"{value:.2f} {unit}"
