#!/usr/bin/env bash
# Build the OTP base images from Debian suites, offline-style: mmdebstrap piped into
# `docker import`. No mirror is named: mmdebstrap reads this machine's apt sources.
# Usage: scripts/build-base-images.sh [25 27 29]   (default: all three)
# Images: erlbridge-base:otp25 / otp27 / otp29 (ERLBRIDGE_BASE_IMAGE overrides the name);
# an image that exists is not rebuilt. Missing images are built in parallel: each build
# is mostly download and unpack, so three at once take little longer than one.
set -euo pipefail
versions=("${@:-25 27 29}")
# shellcheck disable=SC2206
versions=(${versions[*]})
base=${ERLBRIDGE_BASE_IMAGE:-erlbridge-base}
packages=erlang-nox,erlang-dev,rebar3,ca-certificates,procps,iproute2
suite_for() { case "$1" in 25) echo bookworm;; 27) echo trixie;; 29) echo sid;; *) echo "unknown OTP $1" >&2; return 1;; esac; }

build() {
  local v=$1 image=$2 suite start
  suite=$(suite_for "$v")
  start=$SECONDS
  # Check-Valid-Until: the mirror serves snapshots whose Release files have expired.
  mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include="$packages" "$suite" - \
    | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$image"
  echo "built $image from Debian $suite in $((SECONDS - start)) s"
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=() names=()
for v in "${versions[@]}"; do
  suite_for "$v" >/dev/null
  image="$base:otp$v"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image exists"
    continue
  fi
  echo "building $image from Debian $(suite_for "$v") (log follows when done)"
  build "$v" "$image" >"$logs/$v.log" 2>&1 &
  pids+=($!) names+=("$v")
done
failed=0
for i in "${!pids[@]}"; do
  v=${names[$i]}
  if wait "${pids[$i]}"; then
    tail -n 1 "$logs/$v.log"
  else
    echo "building $base:otp$v failed:" >&2
    cat "$logs/$v.log" >&2
    failed=1
  fi
done
exit $failed
