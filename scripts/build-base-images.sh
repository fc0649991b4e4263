#!/usr/bin/env bash
# Build the OTP base images from Debian suites, offline-style: mmdebstrap piped into
# `docker import`. No mirror is named: mmdebstrap reads this machine's apt sources.
# Usage: scripts/build-base-images.sh [25 27 29]   (default: all three)
# Images: erlbridge-base:otp25 / otp27 / otp29; an image that exists is not rebuilt.
set -euo pipefail
versions=("${@:-25 27 29}")
# shellcheck disable=SC2206
versions=(${versions[*]})
suite_for() { case "$1" in 25) echo bookworm;; 27) echo trixie;; 29) echo sid;; *) echo "unknown OTP $1" >&2; return 1;; esac; }
packages_for() { case "$1" in 25) echo erlang-nox,erlang-dev,rebar3,ca-certificates,procps,iproute2;; *) echo erlang-nox,erlang-dev,rebar3,ca-certificates,procps,iproute2;; esac; }
for v in "${versions[@]}"; do
  image="erlbridge-base:otp$v"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image exists"
    continue
  fi
  suite=$(suite_for "$v")
  echo "building $image from Debian $suite"
  start=$SECONDS
  # Check-Valid-Until: the mirror serves snapshots whose Release files have expired.
  mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include="$(packages_for "$v")" "$suite" - \
    | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$image"
  echo "built $image in $((SECONDS - start)) s"
done
