#!/bin/sh
# The compressed size of each platform of a pushed image, as the registry stores it (the sum of
# the layer sizes in that platform's manifest), checked against the budget.
#
#   usage: image-size.sh REF
#   IMAGE_PLATFORMS     platforms to measure (default: "linux/amd64 linux/arm64")
#   IMAGE_BUDGET_BYTES  the most one platform may weigh (default: 35000000, i.e. 35 MB)
#   REGCTL_CONFIG       set up by the caller with access to the registry
#
# Prints one line per platform: PLATFORM DIGEST BYTES. Exits 1 if a platform is over budget.
set -eu

ref="${1:?usage: image-size.sh REF}"
budget="${IMAGE_BUDGET_BYTES:-35000000}"
over=0
for platform in ${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}; do
  digest="$(regctl image digest --platform "$platform" "$ref")"
  layers="$(regctl manifest get --platform "$platform" --format '{{range .Layers}}{{.Size}} {{end}}' "$ref")"
  bytes=0
  for size in $layers; do
    bytes=$((bytes + size))
  done
  echo "$platform $digest $bytes"
  if [ "$bytes" -gt "$budget" ]; then
    echo "image-size: $ref $platform is $bytes bytes compressed, over the budget of $budget" >&2
    over=1
  fi
done
exit "$over"
