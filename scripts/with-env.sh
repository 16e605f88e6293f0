#!/usr/bin/env bash
# Runs a command with the project's tools first on PATH: .venv/bin and the regctl we installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$root/.venv/bin:$root/.tools/bin:$PATH"
exec "$@"
