#!/usr/bin/env bash
# Lint (Python and the Dockerfile), type-check and run every test. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$root/.tools/bin:$PATH"
ruff check .
ruff format --check .
mypy
hadolint Dockerfile
exec pytest "$@"
