#!/usr/bin/env bash
# Lint (Python and the Dockerfile), type-check and run every test. Extra arguments go to pytest.
#   --quick   a local loop: leave out the tests that build the image (pytest marker "image")
#             and those that wait on purpose, build packages or run benchmarks ("slow"), and
#             drive each race of test_sweep_races once instead of three times; refused under
#             CI, which always runs everything
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$root/.tools/bin:$PATH"
ruff check .
ruff format --check .
mypy
hadolint Dockerfile
# The tests start the command as a process hundreds of times a run; where
# PYTHONDONTWRITEBYTECODE is set (as on this machine) each start compiled the package from
# source again (about 25 ms of CPU of every start).
python -m compileall -q entrypoint
# Worker processes (pytest-xdist). Serially the suite spends about half its time waiting
# (registries, regctl, deliberate faults and time-outs), so more workers than the 2 CPUs pay.
# Whole suite under CI on 2 CPUs (2026-12-07): 4 workers 474 s at 826 CPU-s, 6 workers 449 s
# at 851 CPU-s (once the command started warm, the waits were a larger share). TEST_WORKERS
# overrides it (0: no workers, everything in this process). conftest.py keeps a few modules on
# one worker each.
xdist=(-n "${TEST_WORKERS:-6}")
# One collection first, so that the workers find pytest's rewritten test modules cached
# (conftest.py) instead of all rewriting them at once; its errors show in the run itself.
pytest --collect-only -q -p no:xdist >/dev/null 2>&1 || true
if [ "${1:-}" = "--quick" ]; then
  shift
  if [ -n "${CI:-}" ]; then
    echo "test: --quick leaves tests out; CI runs them all" >&2
    exit 2
  fi
  REGISTRY_CLEANUP_QUICK_TESTS=1 exec pytest "${xdist[@]}" -m "not image and not slow" "$@"
fi
exec pytest "${xdist[@]}" "$@"
