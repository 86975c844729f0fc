"""The errors that stop a valgrind run before it starts, and how to get valgrind."""

from __future__ import annotations

from ..errors import ConfigError, LeakcheckError, ToolMissingError

__all__ = ["INSTALL_HINT", "TargetError", "ValgrindError", "ValgrindNotFoundError"]

INSTALL_HINT = (
    "install valgrind with your package manager: `sudo apt-get install valgrind` "
    "(Debian/Ubuntu), `sudo dnf install valgrind` (Fedora), `sudo pacman -S valgrind` "
    "(Arch), `apk add valgrind` (Alpine); on macOS `brew install valgrind` works only on "
    "old Intel releases, so run it in a Linux container instead; or pass `--valgrind "
    "PATH` to name the binary"
)


class ValgrindError(LeakcheckError):
    """Base of the errors that stop a valgrind run before it starts."""

    # Shown as leakcheck.valgrind.ValgrindError, the name users import it by.
    __module__ = "leakcheck.valgrind"


class ValgrindNotFoundError(ToolMissingError, ValgrindError):
    """The valgrind executable is missing; ``valgrind`` holds the name that was looked up.

    A :class:`~leakcheck.ToolMissingError` (``tool == "valgrind"``, ``hint`` says how to
    install it), so the pytest plugin can turn it into a skip with that reason.
    """

    __module__ = "leakcheck.valgrind"

    def __init__(self, valgrind: str) -> None:
        self.valgrind = valgrind
        super().__init__("valgrind", f"looked for {valgrind!r} on PATH; {INSTALL_HINT}")


#: The fix for a target of the wrong shape: what ``leakcheck valgrind`` accepts.
SHAPE_HINT = (
    "give either a zero-argument callable as `path/to/file.py:function` (or `module:function`) "
    "or a pytest node id such as `tests/test_x.py::test_y`"
)


class TargetError(ConfigError, ValgrindError):
    """The target cannot be run: not ``FILE.py:FUNCTION`` or a node id, a missing file, or it does not load.

    ``hint`` is the fix appended to ``problem``: by default what a target looks like;
    ``""`` when ``problem`` names its own fix (a missing function, a test without the marker).
    """

    __module__ = "leakcheck.valgrind"

    def __init__(self, target: str, problem: str, hint: str = SHAPE_HINT) -> None:
        super().__init__("target", target, f"{problem}; {hint}" if hint else problem, "leakcheck valgrind")
