#!/bin/sh
# On a version tag: give the tested per-commit image its release tags and write release-notes.md
# with the digests, for the release job.
#
#   CI_COMMIT_TAG      the version tag, v1.2.3 or 1.2.3
#   CI_COMMIT_SHA      the per-commit image tag
#   IMAGE_REPOSITORY   where the image lives (the .gitlab/ci/image.yml default: $CI_REGISTRY_IMAGE/image)
#   CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD   the registry and the job's credentials
#   REGISTRY_TLS       enabled | insecure | disabled (default: enabled)
#   RELEASE_NOTES      where to write the notes (default: release-notes.md)
#
# :X.Y.Z is written once: a different image already there stops the job. :X.Y and :X move only
# forward, so a patch release of an older line does not pull them back.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
version="${CI_COMMIT_TAG#v}"
if ! printf '%s\n' "$version" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+'; then
  echo "image-promote: '$CI_COMMIT_TAG' is not a version tag like v1.2.3" >&2
  exit 2
fi
major="${version%%.*}"
rest="${version#*.}"
minor="$major.${rest%%.*}"
source="$IMAGE_REPOSITORY:$CI_COMMIT_SHA"
notes="${RELEASE_NOTES:-release-notes.md}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export REGCTL_CONFIG="$work/regctl.json"
regctl registry set --skip-check --tls "${REGISTRY_TLS:-enabled}" "$CI_REGISTRY"
printf '%s' "$CI_REGISTRY_PASSWORD" |
  regctl registry login "$CI_REGISTRY" -u "$CI_REGISTRY_USER" --pass-stdin

digest="$(regctl image digest "$source")"
if released="$(regctl image digest "$IMAGE_REPOSITORY:$version" 2>/dev/null)"; then
  if [ "$released" != "$digest" ]; then
    echo "image-promote: $IMAGE_REPOSITORY:$version is already $released, not $digest; release tags are not rewritten" >&2
    exit 1
  fi
fi
regctl image copy "$source" "$IMAGE_REPOSITORY:$version"
tags="$version"

# The highest released X.Y.Z in a line decides where :X and :X.Y point.
released_versions="$(regctl tag ls "$IMAGE_REPOSITORY" | grep -Ex '[0-9]+\.[0-9]+\.[0-9]+' || true)"
highest() {
  printf '%s\n' "$released_versions" | awk -v line="$1." 'index($0, line) == 1' |
    sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1
}
if [ "$(highest "$minor")" = "$version" ]; then
  regctl image copy "$source" "$IMAGE_REPOSITORY:$minor"
  tags="$tags $minor"
fi
if [ "$(highest "$major")" = "$version" ]; then
  regctl image copy "$source" "$IMAGE_REPOSITORY:$major"
  tags="$tags $major"
fi

IMAGE_BUDGET_BYTES="${IMAGE_BUDGET_BYTES:-35000000}" sh "$here/image-size.sh" "$IMAGE_REPOSITORY@$digest" > "$work/sizes"
{
  echo "## Container image"
  echo
  echo "\`$IMAGE_REPOSITORY:$version\` ($(echo "$tags" | sed 's/ /, /g' | sed "s/[^, ][^, ]*/:&/g"))"
  echo
  echo "| platform | digest | compressed size |"
  echo "| --- | --- | --- |"
  echo "| all (index) | \`$digest\` | |"
  while read -r platform platform_digest bytes; do
    echo "| $platform | \`$platform_digest\` | $bytes bytes |"
  done < "$work/sizes"
  echo
  echo "Pull by digest: \`$IMAGE_REPOSITORY@$digest\`"
} > "$notes"
cat "$notes"
