"""Seeded leaks and clean look-alikes shared by leakcheck's own tests.

Each trap is a :class:`Trap`: a ``step`` run once per iteration, with an
optional ``setup`` (its return value is passed to ``step`` and ``teardown``)
and ``teardown``. ``LEAKS`` must be caught, each by the measure named in
``measure``; ``CLEAN`` must pass. Every call builds fresh state, so a trap can
run many times in one process.
"""
