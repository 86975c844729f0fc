"""Settings resolution (marker -> CLI -> ini -> default), parse_size, errors."""

from __future__ import annotations

import pytest

from leakcheck import ConfigError, Settings
from leakcheck.config import OPTIONS, resolve
from leakcheck.units import parse_size


@pytest.mark.parametrize(
    ("marker", "cli", "ini", "expected"),
    [
        ({}, {}, {}, 200),
        ({}, {}, {"iterations": "50"}, 50),
        ({}, {"iterations": "70"}, {"iterations": "50"}, 70),
        ({"iterations": 90}, {"iterations": "70"}, {"iterations": "50"}, 90),
        ({"iterations": 90}, {}, {"iterations": "50"}, 90),
        ({}, {"iterations": None}, {"iterations": "50"}, 50),  # an unset flag lets ini through
        ({}, {"iterations": ""}, {"iterations": ""}, 200),  # empty counts as not given
    ],
)
def test_resolution_order(
    marker: dict[str, object], cli: dict[str, object], ini: dict[str, object], expected: int
) -> None:
    assert resolve(marker, cli, ini).iterations == expected


def test_layers_mix_per_setting() -> None:
    s = resolve({"warmup": 5}, {"iterations": "30", "warmup": "9"}, {"max_growth": "1 KiB", "iterations": "10"})
    assert (s.iterations, s.warmup, s.max_growth) == (30, 5, 1024.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (512, 512.0),
        ("512", 512.0),
        ("512 B", 512.0),
        ("1 KiB", 1024.0),
        ("1.5MB", 1.5e6),
        ("2 kb", 2000.0),
        ("1 MiB", 1024.0**2),
        (0, 0.0),
        ("  64b ", 64.0),
    ],
)
def test_parse_size(value: object, expected: float) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("12 QB", "unknown unit 'QB'"),
        (-1, "finite number >= 0"),
        ("-5 B", "expected a size"),
        (True, "expected a size"),
        ("lots", "expected a size"),
        (float("inf"), "finite"),
    ],
)
def test_parse_size_errors(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_size(value, name="max_growth", source="--leak-max-growth")
    assert info.value.name == "max_growth" and info.value.source == "--leak-max-growth"


@pytest.mark.parametrize(
    ("layer", "values", "match"),
    [
        ("marker", {"iterations": -3}, r"iterations=-3 \(marker\): must not be negative"),
        ("cli", {"iterations": "many"}, r"iterations='many' \(--leak-iterations\): expected a whole number"),
        ("ini", {"probes": "py_blocks,heapz"}, r"probes='heapz' \(leak_probes\): unknown probe"),
        ("marker", {"colour": 1}, "unknown keyword of the leak marker; accepted: iterations"),
        ("marker", {"mode": "fast"}, "expected one of check, once, skip, repeat"),
        ("cli", {"limits": "rss"}, "expected probe=limit pairs"),
        ("ini", {"limits": "nope=3"}, "unknown probe"),
        ("marker", {"alpha": 2.0}, "between 0 and 1"),
        ("marker", {"iterations": True}, "expected a whole number"),
    ],
)
def test_errors_name_setting_value_and_source(layer: str, values: dict[str, object], match: str) -> None:
    kwargs = {layer: values}
    with pytest.raises(ConfigError, match=match):
        resolve(**kwargs)  # type: ignore[arg-type]


def test_limits_and_max_growth_apply_to_the_right_probes() -> None:
    s = resolve({"limits": {"rss": "64 KiB", "py_blocks": 2}, "max_growth": "512 B"})
    assert s.limit_for("rss") == 65536 and s.limit_for("py_blocks") == 2
    assert s.limit_for("native_heap") == 512 and s.limit_for("py_traced") == 512
    assert s.limit_for("fds") == 0.02
    assert resolve(cli={"limits": "fds=0.1, rss=1 MiB"}).limits == {"fds": 0.1, "rss": 1024.0**2}


def test_settings_defaults_and_cap() -> None:
    s = Settings()
    assert (s.iterations, s.warmup, s.mode, s.attribution) == (200, 20, "check", "auto")
    assert s.cap == 4000 and Settings(iterations=100, max_iterations=150).cap == 150
    assert s.extend_time == 10.0 and resolve(cli={"extend_time": "0.5"}).extend_time == 0.5
    assert (s.fill_iterations, s.min_time, s.profile) == (1000, 0.0, "default")
    assert Settings(iterations=100, max_iterations=50).cap == 100
    with pytest.raises(ConfigError):
        Settings(iterations=5)
    with pytest.raises(ConfigError, match="extend_time"):
        Settings(extend_time=-1)
    assert Settings(iterations=1, mode="once").iterations == 1


def test_every_option_has_flag_ini_and_help() -> None:
    for o in OPTIONS:
        assert o.flag == "--leak-" + o.name.replace("_", "-")
        assert o.ini == "leak_" + o.name
        assert not o.help.endswith("."), o.help


def test_a_profile_fills_in_only_what_no_layer_names() -> None:
    nightly = resolve(cli={"profile": "nightly"})
    assert (nightly.min_time, nightly.max_iterations, nightly.extend_time) == (5.0, 20_000, 30.0)
    # the marker (or any layer) still beats the profile's value
    mixed = resolve({"min_time": 1.0}, {"profile": "nightly"}, {"max_iterations": "500"})
    assert (mixed.min_time, mixed.max_iterations) == (1.0, 500)
    assert resolve().min_time == 0.0


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="nightly"):
        resolve(cli={"profile": "nigthly"})
