#!/usr/bin/env bash
# Lint (Python and the Dockerfile), type-check and run every test. Extra arguments go to pytest.
#   --quick   a local loop: leave out the tests that build the image (pytest marker "image");
#             refused under CI, which always runs everything
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$root/.tools/bin:$PATH"
ruff check .
ruff format --check .
mypy
hadolint Dockerfile
if [ "${1:-}" = "--quick" ]; then
  shift
  if [ -n "${CI:-}" ]; then
    echo "test: --quick leaves tests out; CI runs them all" >&2
    exit 2
  fi
  exec pytest -m "not image" "$@"
fi
exec pytest "$@"
