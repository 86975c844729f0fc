"""Leak suites over a Things 3-style SQLite stack.

``scenarios`` is a package so that pytest's default (prepend) import mode puts
the repository root on ``sys.path`` and every suite imports the subject under
test the same way: ``from scenarios.things3 import Pool, queries``.
"""
