"""``MODULE:FUNCTION`` and ``path/to/file.py:FUNCTION``: one parser and one loader for both.

``leakcheck check`` loads its step, setup and teardown with :func:`load_callable`,
the valgrind child driver loads its target with it, and
:func:`leakcheck.valgrind.parse_target` classifies a target with
:func:`split_callable`.  The valgrind driver imports this module under memcheck,
where every import is paid for, so it imports only the standard library and
:mod:`leakcheck.errors` (which imports nothing).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .hints import close_matches, some_of

__all__ = ["CallableSpec", "load_callable", "split_callable"]


@dataclass(frozen=True)
class CallableSpec:
    """A parsed ``TARGET:ATTR``: a module name or a file path, and a dotted attribute name."""

    target: str
    attr: str

    @property
    def is_file(self) -> bool:
        """True for ``path/to/file.py`` (or any target with a slash), false for a module name."""
        return self.target.endswith(".py") or "/" in self.target


def split_callable(spec: str, *, source: str = "") -> CallableSpec:
    """Split ``spec`` at its last colon; :class:`ConfigError` when either side is empty."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError("target", spec, "expected MODULE:FUNCTION or path/to/file.py:FUNCTION", source)
    return CallableSpec(target, attr)


def _import_file(spec: str, path: Path, source: str) -> object:
    if not path.is_file():
        raise ConfigError("target", spec, f"no such file: {path}", source)
    # The file's directory goes on sys.path so that it can import its neighbours.
    sys.path.insert(0, str(path.parent))
    # Registered under its stem, like a module imported from that directory, unless
    # that would replace a module already loaded (a target file called queue.py).
    name = path.stem if path.stem not in sys.modules else f"_leakcheck_target_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError("target", spec, f"{str(path)!r} cannot be imported as a module", source)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def _cwd_on_path() -> None:
    """Put the working folder on ``sys.path``, as ``python -m`` does.

    A console script has its own folder there instead, so ``leakcheck check steps:func``
    run beside ``steps.py`` would not find it.
    """
    cwd = os.getcwd()
    if not any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
        sys.path.insert(0, cwd)


def _suggest(owner: object, name: str) -> str:
    """``"; did you mean `clean`?"``, or the callables ``owner`` defines when none is close."""
    own = getattr(owner, "__name__", None)
    names = sorted(
        key
        for key, value in getattr(owner, "__dict__", {}).items()
        if not key.startswith("_") and callable(value) and getattr(value, "__module__", own) == own
    )
    close = close_matches(name, names)
    if close:
        return f"; did you mean `{close[0]}`?"
    return f"; it defines: {some_of(names)}" if names else ""


def load_callable(spec: str, *, source: str = "") -> Callable[..., Any]:
    """The callable that ``package.module:function`` or ``path/to/file.py:function`` names.

    ``source`` says where the spec came from (``"leakcheck check"``) for the error.
    Raises :class:`ConfigError` when the spec is malformed, the file or module cannot
    be imported, the attribute is missing or not callable; any other exception the
    imported code raises propagates unchanged.
    """
    parsed = split_callable(spec, source=source)
    try:
        if parsed.is_file:
            module = _import_file(spec, Path(parsed.target).resolve(), source)
        else:
            _cwd_on_path()
            module = importlib.import_module(parsed.target)
    except ImportError as exc:
        hint = ""
        missing = getattr(exc, "name", None)
        if not parsed.is_file and missing == parsed.target.split(".")[0]:
            stem = parsed.target.split(".")[0]
            hint = f"; run from the folder that holds it, or name the file: path/to/{stem}.py:{parsed.attr}"
        elif missing:
            hint = f"; install {missing!r} for {sys.executable}"
        raise ConfigError("target", spec, f"cannot import {parsed.target!r}: {exc}{hint}", source) from None
    obj: Any = module
    for part in parsed.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            problem = f"{parsed.target!r} has no attribute {parsed.attr!r}{_suggest(obj, part)}"
            raise ConfigError("target", spec, problem, source) from None
    if not callable(obj):
        raise ConfigError("target", spec, "is not callable", source)
    return obj  # type: ignore[no-any-return]
