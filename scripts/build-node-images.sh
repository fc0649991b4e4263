#!/usr/bin/env bash
# Build the node images erlbridge-node:otpNN from the top-level Dockerfile on the
# base images erlbridge-base:otpNN (scripts/build-base-images.sh makes those).
# An image is rebuilt only when its inputs changed: the hash of the Dockerfile,
# the fixture sources, the scripts it copies and the base image id is kept in the
# image label org.erlbridge.inputs.
# Usage: scripts/build-node-images.sh [25 27 29]   (default: all three)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
versions=("${@:-25 27 29}")
# shellcheck disable=SC2206
versions=(${versions[*]})
sources_hash=$(find Dockerfile .dockerignore rebar.config rebar.config.script \
    scripts/build-fixtures.sh scripts/docker-entrypoint.sh \
    erlang_fixtures/apps erlang_fixtures/config -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-32)
for v in "${versions[@]}"; do
  base="erlbridge-base:otp$v"
  image="erlbridge-node:otp$v"
  base_id=$(docker image inspect -f '{{.Id}}' "$base")
  want=$(printf '%s %s' "$sources_hash" "$base_id" | sha256sum | cut -c1-32)
  have=$(docker image inspect -f '{{index .Config.Labels "org.erlbridge.inputs"}}' "$image" 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    echo "node image $image up to date"
    continue
  fi
  echo "building $image on $base"
  start=$SECONDS
  log=$(mktemp)
  if ! docker build -q --build-arg BASE_IMAGE="$base" --label "org.erlbridge.inputs=$want" \
      -t "$image" . >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  echo "built $image in $((SECONDS - start)) s"
done
