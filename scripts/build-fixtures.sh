#!/usr/bin/env bash
# Build the fixture releases 1.0.0, 2.0.0 and 2.1.0, the relups between them
# (systools, through `rebar3 relup`) and the release tarballs (erts included),
# with the machine's rebar3 (3.19 .. 3.28) and OTP.
#
# Usage: scripts/build-fixtures.sh [OUTDIR]      (default: _build/fixtures)
# Output: OUTDIR/fixture-1.0.0.tar.gz, fixture-2.0.0.tar.gz, fixture-2.1.0.tar.gz,
#         OUTDIR/relup-2.0.0, relup-2.1.0 (copies, for reading), OUTDIR/MANIFEST.
# The tarballs hold releases/fixture.rel *and* releases/fixture-VSN.rel, so both
# release_handler:unpack_release("fixture") and ("fixture-VSN") accept them.
# Nothing is rebuilt when OUTDIR/MANIFEST records the same inputs hash.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/_build/fixtures}
mkdir -p "$out"
out=$(cd "$out" && pwd)
versions=(1.0.0 2.0.0 2.1.0)

otp=$(erl -noshell -eval 'io:format("~s-~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().')
inputs_hash=$( { echo "$otp"; cd "$repo" && find rebar.config rebar.config.script scripts/build-fixtures.sh \
    erlang_fixtures/apps erlang_fixtures/config -type f | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-16)
if [ -f "$out/MANIFEST" ] && grep -qx "inputs=$inputs_hash" "$out/MANIFEST" \
   && [ -f "$out/fixture-2.1.0.tar.gz" ]; then
  echo "fixtures up to date in $out (inputs $inputs_hash)"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d /tmp/erlbridge-fixtures.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/rebar.config" "$repo/rebar.config.script" "$work/"
mkdir -p "$work/erlang_fixtures"
cp -r "$repo/erlang_fixtures/apps" "$repo/erlang_fixtures/config" "$work/erlang_fixtures/"
cd "$work"
rel=_build/default/rel/fixture
prev=""
for v in "${versions[@]}"; do
  echo "== fixture $v"
  # Applications of the previous version must not leak into this one (a removed
  # module's .beam would stay in _build/default/lib/fixture/ebin).
  rm -rf _build/default/lib/fixture _build/default/lib/fixture_extra
  FIXTURE_VSN=$v rebar3 release >build.log 2>&1 || { cat build.log; exit 1; }
  if [ -n "$prev" ]; then
    FIXTURE_VSN=$v rebar3 relup -n fixture -v "$v" -u "$prev" >build.log 2>&1 || { cat build.log; exit 1; }
    cp "$rel/releases/$v/relup" "$out/relup-$v"
  fi
  FIXTURE_VSN=$v rebar3 tar -n fixture -v "$v" >build.log 2>&1 || { cat build.log; exit 1; }
  # Add releases/fixture-VSN.rel (what unpack_release("fixture-VSN") looks for).
  extra=$(mktemp -d "$work/extra.XXXXXX")
  mkdir -p "$extra/releases"
  cp "$rel/releases/$v/fixture.rel" "$extra/releases/fixture-$v.rel"
  gzip -dc "$rel/fixture-$v.tar.gz" >"$work/fixture-$v.tar"
  tar -rf "$work/fixture-$v.tar" -C "$extra" "releases/fixture-$v.rel"
  gzip -9c "$work/fixture-$v.tar" >"$out/fixture-$v.tar.gz.tmp"
  mv "$out/fixture-$v.tar.gz.tmp" "$out/fixture-$v.tar.gz"
  rm -f "$work/fixture-$v.tar"
  prev=$v
done
{
  echo "inputs=$inputs_hash"
  echo "otp=$otp"
  echo "rebar3=$(rebar3 version 2>/dev/null | head -1)"
  echo "versions=${versions[*]}"
} >"$out/MANIFEST"
echo "fixtures built in $out in $((SECONDS - start)) s"
