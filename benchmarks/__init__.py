"""Benchmarks of leakcheck against what users would otherwise pick (issue 7).

Run from the repository root, e.g. ``python -m benchmarks.run``; see
``benchmarks/README.md``.
"""
