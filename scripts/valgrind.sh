#!/usr/bin/env bash
# Run one leak test under valgrind memcheck and print a short verdict: definitely and
# indirectly lost bytes per iteration, and the top growing loss records with their
# native stacks.
#
#   scripts/valgrind.sh <pytest node id | path/to/file.py:function> [iterations] [options]
#
# Options are those of `leakcheck valgrind --help` (--warmup, --suppressions
# FILE, --focus PATTERN, --valgrind PATH, --keep, --json FILE, ...).
# The python is $PYTHON, else the active virtualenv's, else python3 on PATH.
# Exit status: 0 clean, 1 leaking, 2 usage error or valgrind missing,
# 3 the run crashed, timed out or failed (valgrind's log is kept; its path is printed).
set -euo pipefail

usage() {
    echo "usage: ${0##*/} <pytest node id | path/to/file.py:function> [iterations] [options]" >&2
    echo "       (see: ${0##*/} --help)" >&2
}

if [[ $# -lt 1 ]]; then
    usage
    exit 2
fi

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    python="$VIRTUAL_ENV/bin/python"
elif command -v python3 >/dev/null 2>&1; then
    python="$(command -v python3)"
else
    echo "${0##*/}: error: no python found; set PYTHON=/path/to/python" >&2
    exit 2
fi

# Make the checkout importable even when leakcheck is not installed.
src="${BASH_SOURCE[0]}"
[[ "$src" == */* ]] && src_dir="${src%/*}" || src_dir=.
here="$(cd "$src_dir" && pwd)"
export PYTHONPATH="${here%/scripts}${PYTHONPATH:+:$PYTHONPATH}"

exec "$python" -m leakcheck valgrind "$@"
