"""A decompressor's error path that loses 256 KiB of native memory on every 200th call."""

from __future__ import annotations

from benchmarks.cases._native import error_path_step

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "256 KiB malloc'd and lost on every 200th call (an error path): a stair-step native leak"

step = error_path_step(200)
