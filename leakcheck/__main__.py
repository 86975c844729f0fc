"""``python -m leakcheck``: the same as the ``leakcheck`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
