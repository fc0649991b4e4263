#!/usr/bin/env bash
# Build the realistic release `shop` (erlang_fixtures/shop/) in versions 1.0.0 and
# 2.0.0, with two third-party libraries (getopt, cowlib) built from their upstream
# sources as Debian ships them (the `.orig.tar.gz` of the source packages
# erlang-getopt and erlang-cowlib). Their sources are fetched here, never committed;
# their licences go into the release (`licenses/`).
#
# Usage: scripts/build-realistic.sh [OTP...]     e.g.  scripts/build-realistic.sh 25 27 29
#   With no argument: the machine's OTP only. An OTP other than the machine's is built
#   inside the image erlbridge-base:otpNN (scripts/build-base-images.sh), from the
#   same sources.
# Output, per OTP (_build/realistic/otpNN/):
#   shop-1.0.0/, shop-2.0.0/   relx release directories (as _build/default/rel/shop),
#                              each holding one version; 2.0.0 has no appup and no relup
#   shop-1.0.0.tar.gz, shop-2.0.0.tar.gz   `rebar3 tar` tarballs (erts included)
#   MANIFEST                   inputs hash, OTP, rebar3, versions
# Downloads are cached in _build/realistic/sources/; nothing is rebuilt when an
# output's MANIFEST records the same inputs.
# Environment: REALISTIC_OUT (default _build/realistic).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
packages=(erlang-getopt erlang-cowlib)
versions=(1.0.0 2.0.0)

# -- fetching the upstream sources ------------------------------------------------------

# A private apt directory whose deb-src entries are the machine's own apt sources
# (so no mirror is named here), then `apt-get source --download-only` per package.
fetch_sources() {
  local dir=$1 missing=()
  mkdir -p "$dir"
  for p in "${packages[@]}"; do
    compgen -G "$dir/${p}_*.orig.tar.*" >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local apt="$dir/.apt"
  rm -rf "$apt"
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial"
  local f n=0
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$apt/sources.list.d/$n.sources"; n=$((n + 1))
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "$f" >"$apt/sources.list.d/$n.list"; n=$((n + 1))
  done
  local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
              -o "Acquire::Check-Valid-Until=false" -o "APT::Sandbox::User=root" -q)
  echo "fetching Debian source packages: ${missing[*]}"
  apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log"; return 1; }
  # The Debian patch tarball may be absent from the mirror (apt then exits non-zero);
  # the upstream .orig.tar.gz, verified against the signed index, is what we need.
  (cd "$dir" && apt-get "${opts[@]}" source --download-only "${missing[@]}" >"$apt/source.log" 2>&1) || true
  for p in "${missing[@]}"; do
    compgen -G "$dir/${p}_*.orig.tar.*" >/dev/null || { cat "$apt/source.log"; echo "no upstream tarball for $p" >&2; return 1; }
  done
  rm -rf "$apt" "$dir"/*.debian.tar.* 2>/dev/null || true
}

# -- building (runs on the machine or inside a base image) ------------------------------

# build_here SRC_DIR OUT_DIR: the shop sources and the fetched tarballs are in SRC_DIR.
build_here() {
  local src=$1 out=$2 work
  work=$(mktemp -d /tmp/erlbridge-shop.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  cp -r "$src/shop/." "$work/"
  mkdir -p "$work/third_party" "$work/licenses"
  local p tarball top app lic
  for p in "${packages[@]}"; do
    tarball=$(compgen -G "$src/sources/${p}_*.orig.tar.*" | sed -n 1p)
    top=$(tar -tzf "$tarball" | sed -n 1p | cut -d/ -f1)
    tar -xzf "$tarball" -C "$work/third_party"
    app=$(sed -nE 's/^[[:space:]]*\{application,[[:space:]]*([a-z_]+).*/\1/p' \
          "$work/third_party/$top"/src/*.app.src | sed -n 1p)
    mv "$work/third_party/$top" "$work/third_party/$app"
    # Upstream build files for other tools are not used: rebar3 builds src/ as is.
    rm -f "$work/third_party/$app/rebar.lock"
    for lic in "$work/third_party/$app"/LICENSE*; do
      [ -f "$lic" ] && cp "$lic" "$work/licenses/$app-$(basename "$lic")"
    done
    echo "$app: $(basename "$tarball")" >>"$work/licenses/SOURCES"
  done
  cd "$work"
  local rel=_build/default/rel/shop v
  mkdir -p "$out"
  for v in "${versions[@]}"; do
    echo "== shop $v"
    # Nothing of the previous version may leak into this one: a removed module's beam
    # would stay in _build/default/lib/shop/ebin, and rel/ would keep both releases.
    rm -rf _build/default/lib/shop _build/default/lib/shop_catalog "$rel"
    SHOP_VSN=$v rebar3 release >build.log 2>&1 || { cat build.log; return 1; }
    SHOP_VSN=$v rebar3 tar -n shop -v "$v" >build.log 2>&1 || { cat build.log; return 1; }
    rm -rf "$out/shop-$v" "$out/shop-$v.tar.gz"
    mv "$rel/shop-$v.tar.gz" "$out/shop-$v.tar.gz"
    cp -a "$rel" "$out/shop-$v"
  done
  {
    echo "otp=$(erl -noshell -eval 'io:format("~s-~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().')"
    echo "rebar3=$(rebar3 version 2>/dev/null | sed -n 1p)"
    echo "versions=${versions[*]}"
    cat licenses/SOURCES
  } >"$out/BUILD"
}

if [ "${1:-}" = "--inside" ]; then
  # Called inside a base image: /src holds the inputs, $2 is the output directory.
  build_here /src "$2"
  exit 0
fi

out_root=${REALISTIC_OUT:-$repo/_build/realistic}
mkdir -p "$out_root" && out_root=$(cd "$out_root" && pwd)
machine_otp=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null || true)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("$machine_otp")
fetch_sources "$out_root/sources"

# The inputs of a build: the shop sources, this script, the upstream tarballs.
inputs=$(mktemp -d /tmp/erlbridge-shop-src.XXXXXX)
trap 'rm -rf "$inputs"' EXIT
cp -r "$repo/erlang_fixtures/shop" "$inputs/shop"
mkdir -p "$inputs/sources" "$inputs/scripts"
cp "$out_root/sources"/*.orig.tar.* "$inputs/sources/"
cp "$0" "$inputs/scripts/build-realistic.sh"
inputs_hash=$(cd "$inputs" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)

for otp in "${targets[@]}"; do
  out="$out_root/otp$otp"
  if [ -f "$out/MANIFEST" ] && grep -qx "inputs=$inputs_hash" "$out/MANIFEST" \
     && [ -f "$out/shop-2.0.0.tar.gz" ]; then
    echo "shop release for OTP $otp up to date in $out (inputs $inputs_hash)"
    continue
  fi
  start=$SECONDS
  rm -rf "$out"
  mkdir -p "$out"
  if [ "$otp" = "$machine_otp" ]; then
    build_here "$inputs" "$out"
  else
    image="erlbridge-base:otp$otp"
    docker image inspect "$image" >/dev/null 2>&1 \
      || { echo "image $image not found (run scripts/build-base-images.sh $otp)" >&2; exit 1; }
    docker run --rm --network none -v "$inputs:/src:ro" -v "$out:/out" "$image" \
      bash /src/scripts/build-realistic.sh --inside /out
  fi
  { echo "inputs=$inputs_hash"; cat "$out/BUILD"; } >"$out/MANIFEST"
  rm -f "$out/BUILD"
  echo "shop release for OTP $otp built in $out in $((SECONDS - start)) s"
done
