#!/bin/sh
# Smoke test of an installed registry-cleanup (the image in CI, a fresh venv in the tests): both
# commands answer, and a real delete against a scratch registry with deletes enabled removes
# exactly the tag it was given and keeps another tag on the same digest.
#
#   SMOKE_REGISTRY                   host:port of the scratch registry (required)
#   SMOKE_TLS                        enabled | insecure | disabled (default: disabled)
#   SMOKE_USERNAME, SMOKE_PASSWORD   only if that registry wants a login
set -eu

: "${SMOKE_REGISTRY:?set SMOKE_REGISTRY to the scratch registry host:port}"
tls="${SMOKE_TLS:-disabled}"
repo="$SMOKE_REGISTRY/smoke/registry-cleanup"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A private regctl config: never the runner's Docker credentials.
export REGCTL_CONFIG="$work/regctl.json"

registry-cleanup --version
regctl version

regctl registry set --skip-check --tls "$tls" "$SMOKE_REGISTRY"
if [ -n "${SMOKE_USERNAME:-}" ]; then
  printf '%s' "${SMOKE_PASSWORD:?SMOKE_PASSWORD goes with SMOKE_USERNAME}" |
    regctl registry login "$SMOKE_REGISTRY" -u "$SMOKE_USERNAME" --pass-stdin
fi

# One tiny image under two tags that share a digest.
printf 'registry-cleanup smoke test\n' |
  regctl artifact put --artifact-type application/vnd.registry-cleanup.smoke.v1 "$repo:feature-smoke"
regctl image copy "$repo:feature-smoke" "$repo:keep-smoke"
kept="$(regctl image digest "$repo:keep-smoke")"

# A clean environment: in a default-branch pipeline the CI variables would (rightly) make the
# CLI skip the delete, and CI_REGISTRY names another registry than the scratch one.
set -- registry-cleanup delete "$repo:feature-smoke" --tls "$tls" --json
if [ -n "${SMOKE_USERNAME:-}" ]; then
  set -- "$@" --username "$SMOKE_USERNAME" --password-stdin
fi
printf '%s' "${SMOKE_PASSWORD:-}" | env -i PATH="$PATH" HOME="$work" "$@" > "$work/result.json"
cat "$work/result.json"
grep -q '"status": "deleted"' "$work/result.json" || {
  echo "smoke: registry-cleanup did not report the tag as deleted" >&2
  exit 1
}

tags="$(regctl tag ls "$repo")"
if printf '%s\n' "$tags" | grep -qx 'feature-smoke'; then
  echo "smoke: $repo:feature-smoke is still listed after the delete" >&2
  exit 1
fi
if [ "$(regctl image digest "$repo:keep-smoke")" != "$kept" ]; then
  echo "smoke: $repo:keep-smoke lost its image; the delete reached too far" >&2
  exit 1
fi
echo "smoke: ok (deleted feature-smoke, kept keep-smoke at $kept)"
