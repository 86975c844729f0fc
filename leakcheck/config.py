"""Settings of a leak check, and the one table of options behind every layer.

Resolution order, the same everywhere: marker keyword → ``--leak-*`` CLI flag
→ ``leak_*`` ini key → built-in default. :data:`OPTIONS` drives the pytest
options, the ini keys, the CLI flags and the marker's accepted keywords, so
they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfigError
from .probes import DEFAULT_PROBES, PROBES
from .units import parse_size

__all__ = ["ATTRIBUTION_MODES", "MODES", "OPTIONS", "Option", "Settings", "add_options", "resolve"]

MODES = ("check", "once", "skip", "repeat")
ATTRIBUTION_MODES = ("auto", "tracemalloc", "memray", "both", "off")


@dataclass(frozen=True)
class Settings:
    """Everything one leak check needs to know; build with :func:`resolve` or directly."""

    iterations: int = 200  #: measured iterations after the warm-up (the first pass)
    warmup: int = 20  #: iterations run first and never judged (lazy init, caches filling)
    max_iterations: int = 0  #: cap when the verdict needs more evidence (0: 20 × iterations)
    #: seconds of measuring after which heap growth is no longer followed past the usual spans
    extend_time: float = 2.0
    sample_every: int = 0  #: sample every k iterations (0: chosen from the step's speed)
    probes: tuple[str, ...] = DEFAULT_PROBES
    max_growth: float | None = None  #: bytes per iteration tolerated on the heap measures
    limits: Mapping[str, float] = field(default_factory=dict)  #: per-probe limit overrides
    alpha: float = 0.01  #: significance level of the trend test
    grace: float = 1.0  #: seconds to wait for handles to be released before calling them leaked
    allow_threads: tuple[str, ...] = ()  #: fnmatch patterns of thread names expected to outlive the test
    allow_tasks: tuple[str, ...] = ()  #: patterns of task names / coroutine names
    allow_files: tuple[str, ...] = ()  #: patterns of paths
    attribution: str = "auto"  #: where-it-leaks window: auto, tracemalloc, memray, both, off
    attribution_iterations: int = 50  #: iterations of the attribution window
    tracemalloc_frames: int = 25  #: frames kept per tracemalloc traceback
    mode: str = "check"  #: check; once (plain test); skip; repeat (loop, no measuring: for valgrind)

    def __post_init__(self) -> None:
        for name in ("iterations", "warmup", "max_iterations", "sample_every", "attribution_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "expected a whole number >= 0")
        if self.iterations < 10 and self.mode == "check":
            raise ConfigError("iterations", self.iterations, "need at least 10 to judge a trend")
        if self.tracemalloc_frames < 1:
            raise ConfigError("tracemalloc_frames", self.tracemalloc_frames, "expected >= 1")
        if not 0 < self.alpha < 1:
            raise ConfigError("alpha", self.alpha, "expected a probability between 0 and 1")
        if self.grace < 0:
            raise ConfigError("grace", self.grace, "expected seconds >= 0")
        if self.extend_time < 0:
            raise ConfigError("extend_time", self.extend_time, "expected seconds >= 0")
        for p in self.probes:
            if p not in PROBES:
                raise ConfigError("probes", p, f"unknown probe; known probes: {', '.join(PROBES)}")
        for p in self.limits:
            if p not in PROBES:
                raise ConfigError("limits", p, f"unknown probe; known probes: {', '.join(PROBES)}")
        if self.mode not in MODES:
            raise ConfigError("mode", self.mode, f"expected one of {', '.join(MODES)}")
        if self.attribution not in ATTRIBUTION_MODES:
            raise ConfigError("attribution", self.attribution, f"expected one of {', '.join(ATTRIBUTION_MODES)}")

    @property
    def cap(self) -> int:
        """The most measured iterations a check may run."""
        return max(self.max_iterations or 20 * self.iterations, self.iterations)

    def limit_for(self, probe: str) -> float:
        """The growth per iteration tolerated for ``probe``."""
        if probe in self.limits:
            return self.limits[probe]
        cls = PROBES[probe]
        if self.max_growth is not None and cls.unit == "B" and probe in ("py_traced", "native_heap"):
            return self.max_growth
        return cls.default_limit

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


# -- parsing of raw values (from the command line, ini files, markers) -----


def _int(value: object, name: str, source: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(name, value, "expected a whole number", source)
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        result = int(value)
    else:
        raise ConfigError(name, value, "expected a whole number", source)
    if result < 0:
        raise ConfigError(name, value, "must not be negative", source)
    return result


def _float(value: object, name: str, source: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError  # noqa: TRY004 - a bool is not a number here: same message as a bad string
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(name, value, "expected a number", source) from None


def _names(value: object, name: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.replace("\n", ",").split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        raise ConfigError(name, value, "expected a list of names or a comma-separated string", source)
    return tuple(v for v in items if v)


def _probe_names(value: object, name: str, source: str) -> tuple[str, ...]:
    names = _names(value, name, source)
    for n in names:
        if n not in PROBES:
            raise ConfigError(name, n, f"unknown probe; known probes: {', '.join(PROBES)}", source)
    return names


def _limits(value: object, name: str, source: str) -> dict[str, float]:
    if isinstance(value, str):
        pairs = [item.split("=", 1) for item in _names(value, name, source)]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(name, value, "expected probe=limit pairs, e.g. 'rss=64 KiB,fds=0.1'", source)
        mapping: Mapping[object, object] = {k.strip(): v.strip() for k, v in pairs}
    elif isinstance(value, Mapping):
        mapping = value
    else:
        raise ConfigError(name, value, "expected a mapping of probe name to limit", source)
    out = {}
    for probe, limit in mapping.items():
        if probe not in PROBES:
            raise ConfigError(name, probe, f"unknown probe; known probes: {', '.join(PROBES)}", source)
        out[str(probe)] = parse_size(limit, name=f"{name}[{probe}]", source=source)
    return out


def _choice(choices: Sequence[str]) -> Callable[[object, str, str], str]:
    def parse(value: object, name: str, source: str) -> str:
        if value not in choices:
            raise ConfigError(name, value, f"expected one of {', '.join(choices)}", source)
        return str(value)

    return parse


def _size(value: object, name: str, source: str) -> float:
    return parse_size(value, name=name, source=source)


@dataclass(frozen=True)
class Option:
    """One setting as exposed on every layer (marker kwarg, CLI flag, ini key)."""

    name: str  #: the :class:`Settings` field and marker keyword
    parse: Callable[[object, str, str], Any]
    help: str
    metavar: str = ""
    marker: bool = True  #: accepted as a marker keyword

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--leak-iterations``."""
        return "--leak-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini key, e.g. ``leak_iterations``."""
        return "leak_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("iterations", _int, "Measured iterations per leak test after the warm-up (default 200)", "N"),
    Option("warmup", _int, "Iterations run first and never judged (default 20)", "N"),
    Option("max_iterations", _int, "Cap on iterations when the verdict needs more evidence (default 20 x iterations)", "N"),
    Option("extend_time", _float, "Seconds of measuring after which heap growth is not followed past twice the iterations (default 2.0)", "SECONDS"),
    Option("sample_every", _int, "Sample every K iterations (default: chosen from the step's speed)", "K"),
    Option("probes", _probe_names, f"Comma-separated measures to take (default all but uss; known: {', '.join(PROBES)})", "NAMES"),
    Option("max_growth", _size, "Heap growth per iteration tolerated, e.g. '512 B' or '1 KiB' (default 32 B native, 64 B traced)", "SIZE"),
    Option("limits", _limits, "Per-measure limits per iteration, e.g. 'rss=64 KiB,py_blocks=2'", "PROBE=LIMIT,..."),
    Option("alpha", _float, "Significance level of the trend test (default 0.01)", "P"),
    Option("grace", _float, "Seconds to wait for handles to be released after teardown (default 1.0)", "SECONDS"),
    Option("allow_threads", _names, "Thread name patterns expected to outlive a test", "PATTERNS"),
    Option("allow_tasks", _names, "asyncio task or coroutine name patterns expected to stay pending", "PATTERNS"),
    Option("allow_files", _names, "Path patterns of files a test may leave on disk", "PATTERNS"),
    Option("attribution", _choice(ATTRIBUTION_MODES), "Where-it-leaks window: auto, tracemalloc, memray, both or off (default auto)", "MODE"),
    Option("attribution_iterations", _int, "Iterations of the attribution window (default 50)", "N"),
    Option("tracemalloc_frames", _int, "Frames kept per traceback in attribution (default 25)", "N"),
    Option("mode", _choice(MODES), "check (default); once: run leak tests as plain tests; skip; repeat: loop without measuring (for valgrind)", "MODE"),
)
_BY_NAME = {o.name: o for o in OPTIONS}


def resolve(
    marker: Mapping[str, object] | None = None,
    cli: Mapping[str, object] | None = None,
    ini: Mapping[str, object] | None = None,
    *,
    marker_source: str = "marker",
) -> Settings:
    """Settings from the three layers, first found wins: marker → CLI → ini → default.

    ``None`` and empty strings count as "not given". Raises :class:`ConfigError`
    naming the setting, the value and where it came from.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in marker or {}:
        if key not in _BY_NAME or not _BY_NAME[key].marker:
            known = ", ".join(o.name for o in OPTIONS if o.marker)
            raise ConfigError(key, (marker or {})[key], f"unknown keyword of the leak marker; accepted: {known}", marker_source)
    for option in OPTIONS:
        for layer, source in ((marker, marker_source), (cli, option.flag), (ini, option.ini)):
            if layer is None:
                continue
            raw = layer.get(option.name)
            if raw is None or (isinstance(raw, (str, list, tuple)) and len(raw) == 0):
                continue
            values[option.name] = option.parse(raw, option.name, source)
            sources[option.name] = source
            break
    try:
        return Settings(**values)
    except ConfigError as exc:
        if exc.source:
            raise
        raise ConfigError(exc.name, exc.value, exc.problem, sources.get(exc.name, marker_source)) from None


def add_options(addoption: Callable[..., Any], *, prefix: str = "--leak-") -> None:
    """Register every option with an argparse/pytest ``addoption``; defaults are ``None`` so lower layers show through."""
    for option in OPTIONS:
        addoption(
            prefix + option.name.replace("_", "-"),
            dest="leak_" + option.name,
            default=None,
            metavar=option.metavar or None,
            help=option.help,
        )
