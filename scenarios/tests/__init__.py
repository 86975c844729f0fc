"""Tests of the example app itself (pool, queries, cache, database generator, faults).

They carry no ``leak`` marker: ``pytest -m leak scenarios/`` deselects them, and
the README's plain ``pytest`` runs them (``scenarios/tests`` is in ``testpaths``).
A package, so they import as ``scenarios.tests.…`` and share no module names
with ``tests/``.
"""
