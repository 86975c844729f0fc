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
from .hints import close_matches
from .probes import DEFAULT_PROBES, PROBES
from .units import format_size, parse_size

__all__ = [
    "ATTRIBUTION_MODES",
    "MODES",
    "OPTIONS",
    "PROFILES",
    "Option",
    "Settings",
    "add_options",
    "marker_errors",
    "resolve",
]

MODES = ("check", "once", "skip", "repeat")
#: Named sets of defaults. A profile fills in only what no layer names: a marker
#: keyword, flag or ini key still wins. ``nightly`` measures every test for at
#: least 5 s (up to 20,000 iterations), so a leak that starts after ~1,000 calls
#: is reached; ``default`` stays as cheap as a clean test can be.
PROFILES: Mapping[str, Mapping[str, Any]] = {
    "default": {},
    "nightly": {"min_time": 5.0, "extend_time": 30.0, "max_iterations": 20_000},
}
ATTRIBUTION_MODES = ("auto", "tracemalloc", "memray", "both", "off")


@dataclass(frozen=True)
class Settings:
    """Everything one leak check needs to know; build with :func:`resolve` or directly."""

    iterations: int = 200  #: measured iterations after the warm-up (the first pass)
    warmup: int = 20  #: iterations run first and never judged (lazy init, caches filling)
    max_iterations: int = 0  #: cap when the verdict needs more evidence (0: 20 × iterations)
    #: seconds of measuring after which heap growth is no longer followed past the usual spans
    extend_time: float = 10.0
    #: iterations a bounded structure may take to fill: growth is followed to twice this before it fails
    fill_iterations: int = 1000
    min_time: float = 0.0  #: seconds every check measures at least (the nightly profile: 5)
    sample_every: int = 0  #: sample every k iterations (0: chosen from the step's speed)
    probes: tuple[str, ...] = DEFAULT_PROBES
    max_growth: float | None = None  #: bytes per iteration tolerated on the heap measures
    limits: Mapping[str, float] = field(default_factory=dict)  #: per-probe limit overrides
    alpha: float = 0.01  #: significance level of the trend test
    grace: float = 1.0  #: seconds to wait for handles to be released before calling them leaked
    #: seconds a whole check may take before it is stopped as hung (0: no limit)
    timeout: float = 300.0
    allow_threads: tuple[str, ...] = ()  #: fnmatch patterns of thread names expected to outlive the test
    allow_tasks: tuple[str, ...] = ()  #: patterns of task names / coroutine names
    allow_files: tuple[str, ...] = ()  #: patterns of paths
    allow_unclosed: tuple[str, ...] = ()  #: patterns of ResourceWarning / unraisable messages not counted
    attribution: str = "auto"  #: where-it-leaks window: auto, tracemalloc, memray, both, off
    attribution_iterations: int = 50  #: iterations of the attribution window
    tracemalloc_frames: int = 25  #: frames kept per tracemalloc traceback
    #: folders of the user's code, where sites are placed (empty: pytest's rootdir, or the step's module's folder)
    user_paths: tuple[str, ...] = ()
    mode: str = "check"  #: check; once (plain test); skip; repeat (loop, no measuring: for valgrind)
    profile: str = "default"  #: the named defaults applied (see :data:`PROFILES`)

    def __post_init__(self) -> None:
        for name in (
            "iterations",
            "warmup",
            "max_iterations",
            "sample_every",
            "attribution_iterations",
            "fill_iterations",
        ):
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
        if not self.timeout >= 0:  # NaN too
            raise ConfigError("timeout", self.timeout, "expected seconds >= 0 (0: no limit)")
        if self.extend_time < 0:
            raise ConfigError("extend_time", self.extend_time, "expected seconds >= 0")
        for p in self.probes:
            if p not in PROBES:
                raise _unknown_probe("probes", p, "")
        for p in self.limits:
            if p not in PROBES:
                raise _unknown_probe("limits", p, "")
        if self.min_time < 0:
            raise ConfigError("min_time", self.min_time, "expected seconds >= 0")
        if self.profile not in PROFILES:
            raise ConfigError(
                "profile",
                self.profile,
                f"{_did_you_mean(self.profile, list(PROFILES))}expected one of {', '.join(PROFILES)}",
            )
        if self.mode not in MODES:
            raise ConfigError("mode", self.mode, f"{_did_you_mean(self.mode, MODES)}expected one of {', '.join(MODES)}")
        if self.attribution not in ATTRIBUTION_MODES:
            hint = _did_you_mean(self.attribution, ATTRIBUTION_MODES)
            raise ConfigError("attribution", self.attribution, f"{hint}expected one of {', '.join(ATTRIBUTION_MODES)}")

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

    def limit_is_set(self, probe: str) -> bool:
        """True when the user set ``probe``'s limit (``limits`` or ``max_growth``): a tolerance, not a default."""
        return probe in self.limits or (self.max_growth is not None and probe in ("py_traced", "native_heap"))

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


def _did_you_mean(value: object, choices: Sequence[str]) -> str:
    """``"did you mean `memray`? "`` when ``value`` is a near miss of one of ``choices``."""
    close = close_matches(value, choices)
    return f"did you mean `{close[0]}`? " if close else ""


def _unknown_probe(name: str, probe: object, source: str) -> ConfigError:
    return ConfigError(
        name, probe, f"unknown probe; {_did_you_mean(probe, list(PROBES))}known probes: {', '.join(PROBES)}", source
    )


def _probe_names(value: object, name: str, source: str) -> tuple[str, ...]:
    names = _names(value, name, source)
    for n in names:
        if n not in PROBES:
            raise _unknown_probe(name, n, source)
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
            raise _unknown_probe(name, probe, source)
        out[str(probe)] = parse_size(limit, name=f"{name}[{probe}]", source=source)
    return out


def _choice(choices: Sequence[str]) -> Callable[[object, str, str], str]:
    def parse(value: object, name: str, source: str) -> str:
        if value not in choices:
            raise ConfigError(
                name, value, f"{_did_you_mean(value, choices)}expected one of {', '.join(choices)}", source
            )
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


def _default(name: str) -> str:
    """The built-in default of the :class:`Settings` field ``name``, as help text shows it."""
    return str(_DEFAULTS[name])


def _probes_default() -> str:
    left_out = [name for name in PROBES if name not in Settings.probes]
    return "all but " + ", ".join(left_out) if left_out else "all"


def _heap_limit(probe: str) -> str:
    return format_size(PROBES[probe].default_limit)


# Help shows the defaults read from Settings and the probes, so it cannot drift from them.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}

OPTIONS: tuple[Option, ...] = (
    Option(
        "iterations",
        _int,
        f"Measured iterations per leak test after the warm-up (default {_default('iterations')})",
        "N",
    ),
    Option("warmup", _int, f"Iterations run first and never judged (default {_default('warmup')})", "N"),
    Option(
        "max_iterations", _int, "Cap on iterations when the verdict needs more evidence (default 20 x iterations)", "N"
    ),
    Option(
        "extend_time",
        _float,
        (
            "Seconds of step time (sampling left out) after which growth is no longer followed past the "
            f"usual spans (default {_default('extend_time')})"
        ),
        "SECONDS",
    ),
    Option(
        "fill_iterations",
        _int,
        (
            "Iterations a bounded structure may take to fill; growth is followed to twice this before it "
            f"fails (default {_default('fill_iterations')})"
        ),
        "N",
    ),
    Option(
        "min_time",
        _float,
        f"Seconds of step time every leak test measures at least (default {_default('min_time')}; nightly profile 5)",
        "SECONDS",
    ),
    Option("sample_every", _int, "Sample every K iterations (default: chosen from the step's speed)", "K"),
    Option(
        "probes",
        _probe_names,
        f"Comma-separated measures to take (default {_probes_default()}; known: {', '.join(PROBES)})",
        "NAMES",
    ),
    Option(
        "max_growth",
        _size,
        (
            "Heap growth per iteration tolerated, e.g. '512 B' or '1 KiB' (default "
            f"{_heap_limit('native_heap')} native, {_heap_limit('py_traced')} traced)"
        ),
        "SIZE",
    ),
    Option("limits", _limits, "Per-measure limits per iteration, e.g. 'rss=64 KiB,py_blocks=2'", "PROBE=LIMIT,..."),
    Option("alpha", _float, f"Significance level of the trend test (default {_default('alpha')})", "P"),
    Option(
        "grace",
        _float,
        f"Seconds to wait for handles to be released after teardown (default {_default('grace')})",
        "SECONDS",
    ),
    Option(
        "timeout",
        _float,
        (
            "Seconds a leak test may run before it fails as hung, with every thread's stack (default "
            f"{_default('timeout')}; 0: no limit)"
        ),
        "SECONDS",
    ),
    Option("allow_threads", _names, "Thread name patterns expected to outlive a test", "PATTERNS"),
    Option("allow_tasks", _names, "asyncio task or coroutine name patterns expected to stay pending", "PATTERNS"),
    Option("allow_files", _names, "Path patterns of files a test may leave on disk", "PATTERNS"),
    Option(
        "allow_unclosed",
        _names,
        "Message patterns of ResourceWarnings and unraisable reports not counted as unclosed resources",
        "PATTERNS",
    ),
    Option(
        "attribution",
        _choice(ATTRIBUTION_MODES),
        f"Where-it-leaks window: auto, tracemalloc, memray, both or off (default {_default('attribution')})",
        "MODE",
    ),
    Option(
        "attribution_iterations",
        _int,
        f"Iterations of the attribution window (default {_default('attribution_iterations')})",
        "N",
    ),
    Option(
        "tracemalloc_frames",
        _int,
        f"Frames kept per traceback in attribution (default {_default('tracemalloc_frames')})",
        "N",
    ),
    Option(
        "user_paths",
        _names,
        (
            "Comma-separated folders of your code: sites are placed at its innermost frame (default: "
            "pytest's rootdir, or the step's module's folder)"
        ),
        "DIRS",
    ),
    Option(
        "profile",
        _choice(tuple(PROFILES)),
        (
            f"Named defaults: {', '.join(PROFILES)} (default {_default('profile')}; nightly: at least 5 s "
            "per test, up to 20000 iterations)"
        ),
        "NAME",
    ),
    Option(
        "mode",
        _choice(MODES),
        (
            f"{_default('mode')} (default); once: run leak tests as plain tests; skip; repeat: loop "
            "without measuring (for valgrind)"
        ),
        "MODE",
    ),
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
            raise _unknown_keyword(key, (marker or {})[key], marker_source)
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
    for key, value in PROFILES[values.get("profile", "default")].items():
        if key not in values:
            values[key] = value
            sources[key] = sources.get("profile", "profile")
    try:
        return Settings(**values)
    except ConfigError as exc:
        if exc.source:
            raise
        raise ConfigError(exc.name, exc.value, exc.problem, sources.get(exc.name, marker_source)) from None


def _unknown_keyword(key: str, value: object, source: str) -> ConfigError:
    names = [o.name for o in OPTIONS if o.marker]
    hint = _did_you_mean(key, names)
    return ConfigError(key, value, f"unknown keyword of the leak marker; {hint}accepted: {', '.join(names)}", source)


def marker_errors(marker: Mapping[str, object], source: str) -> list[ConfigError]:
    """Every problem of the marker keywords ``marker``, not only the first.

    Each keyword is checked on its own (unknown ones get a close-match
    suggestion), so a session can report all its bad markers together;
    :func:`resolve` still checks how the values fit with each other.
    """
    errors = []
    for key, raw in marker.items():
        option = _BY_NAME.get(key)
        if option is None or not option.marker:
            errors.append(_unknown_keyword(key, raw, source))
            continue
        if raw is None or (isinstance(raw, (str, list, tuple)) and len(raw) == 0):
            continue
        try:
            value = option.parse(raw, key, source)
            # The field's own range check (grace >= 0...), on its own; iterations < 10 is fine outside mode check.
            if not (key == "iterations" and marker.get("mode") not in (None, "check")):
                Settings(**{key: value})
        except ConfigError as exc:
            errors.append(exc if exc.source else ConfigError(exc.name, exc.value, exc.problem, source))
    return errors


def add_options(addoption: Callable[..., Any], *, prefix: str = "--leak-") -> None:
    """Register every option with an argparse/pytest ``addoption``; defaults are ``None`` so lower "
    "layers show through."""
    for option in OPTIONS:
        addoption(
            prefix + option.name.replace("_", "-"),
            dest="leak_" + option.name,
            default=None,
            metavar=option.metavar or None,
            help=option.help,
        )
