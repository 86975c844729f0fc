"""What every probe is, and the shared shape of the handle counts.

Each probe has a ``name`` (used in settings and results), a ``title`` for
people, a ``unit`` (``"B"`` for bytes, else a count unit), a default limit
(growth per iteration tolerated before an unbounded trend fails the check)
and a ``read()`` that costs microseconds. ``unavailable()`` returns a reason
when the probe cannot work here (no glibc, no tracemalloc, no event loop).

Readings must not allocate anything that outlives the call: the runner
stores them in preallocated arrays so the harness never reads as a leak.
"""

from __future__ import annotations

from typing import Callable, ClassVar

__all__ = ["HandleProbe", "Probe"]


class Probe:
    """One measure read after every sampled iteration."""

    name: ClassVar[str]
    title: ClassVar[str]
    unit: ClassVar[str]
    default_limit: ClassVar[float]
    #: True for counts of handles (fds, threads, ...): exact small integers, no noise
    is_handle: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """Why this probe cannot be read here, or ``None`` when it can."""
        return None

    def read(self) -> float:
        """The current reading."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<probe {self.name}>"


class HandleProbe(Probe):
    """A count of handles (fds, threads, tasks, processes, files).

    Counts are exact and noiseless, so any steady rise is a leak: one handle
    every 50 iterations is already over the limit. Where a count can be read
    several ways (``/proc`` on Linux, psutil elsewhere) the way is chosen once,
    by :meth:`counter`, so a reading pays for no platform test.
    """

    default_limit: ClassVar[float] = 0.02
    is_handle: ClassVar[bool] = True

    def __init__(self) -> None:
        self._count = self.counter()

    def counter(self) -> Callable[[], float]:
        """The function that returns the current count, chosen for this platform."""
        raise NotImplementedError

    def read(self) -> float:
        return self._count()
