"""The pytest adapter: the ``leak`` marker, ``--leak-*`` options, ``leak_*`` ini keys.

A test marked ``@pytest.mark.leak`` has its body run as one iteration, many
times, by :mod:`leakcheck.runner`; function-scoped fixtures are set up once
around all the iterations. Handles (fds, threads, children, files) are
compared between the start of setup and the end of teardown, less what
wider-scoped fixtures created. Everything else lives in the core modules,
which never import pytest.

Under pytest-xdist each worker attaches its results to the test reports
(``user_properties``), so the controller alone writes one merged report.

``--leak-all`` makes every collected test function (methods, parametrized
cases, ``async def`` tests, ``unittest.TestCase`` methods) a leak test,
except those marked ``no_leak`` or matching an ini ``leak_exclude`` pattern.
Every leak test's first call is a plain one: its outcome is the test's own.
A test that then fails on a later iteration is *not repeatable* (reported,
not a leak; it fails only when it carries an explicit ``leak`` marker, whose
author said it could be repeated), and one whose first call does not fit
``--leak-budget`` many times over is *not judged*. Budgets, shards and the
summary's wording live in :mod:`leakcheck.suite`, the live line in
:mod:`leakcheck.progress`.
"""

from __future__ import annotations

from .options import leak, pytest_addoption, pytest_configure
from .session import LeakPlugin

__all__ = ["LeakPlugin", "leak", "pytest_addoption", "pytest_configure"]
