"""A long-lived thread pool that starts workers lazily, up to max_workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

LEAKS = False
RESOURCE = None
DESCRIPTION = "ThreadPoolExecutor(max_workers=8) created in setup; threads grow to the max, then stop"


def _work(n: int) -> int:
    return sum(range(n))


def setup() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-pool")


def step(pool: ThreadPoolExecutor) -> None:
    futures = [pool.submit(_work, 200) for _ in range(2)]
    for f in futures:
        f.result()


def teardown(pool: ThreadPoolExecutor) -> None:
    pool.shutdown(wait=True)
