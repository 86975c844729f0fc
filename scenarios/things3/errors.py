"""The errors raised by :class:`~.pool.Pool`, each naming the database it concerns."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PoolClosed", "PoolError", "PoolTimeout"]


class PoolError(Exception):
    """Base class of the errors a :class:`Pool` raises; ``path`` is its database."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class PoolClosed(PoolError):
    """The pool was closed (or is closing) and hands out no more connections."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, f"pool for {path} is closed; open a new Pool to query it again")


class PoolTimeout(PoolError, TimeoutError):
    """No connection became free within the acquire timeout."""

    def __init__(self, path: Path, timeout: float, max_size: int, waiting: int) -> None:
        super().__init__(
            path,
            f"no connection to {path.name} became free within {timeout:g} s: all {max_size}"
            f" are checked out and {waiting} other task(s) are waiting; release connections"
            " sooner, or raise max_size or acquire_timeout",
        )
        self.timeout = timeout
