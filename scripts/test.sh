#!/usr/bin/env bash
# erlbridge's test command (README "Run the tests"; .ci/run calls it).
#
# On a fresh Debian machine, as root, it installs what is missing (erlang-nox,
# erlang-dev, erlang-src, rebar3, docker.io, docker-compose, mmdebstrap, python3-venv, gcc,
# python3-dev), creates the venv (.venv, pip install -e '.[dev]', which also builds the
# optional compiled codec), starts dockerd when no engine answers, builds
# the OTP base images and node images (cached), builds the fixture releases, runs the
# linters and the whole pytest suite on both backends (local + docker OTP 25, 27, 29),
# every test with and without the compiled codec (tests/conftest.py), and prints a
# timing summary. The suite also builds erlbridge's wheel, installs it with
# [testing] into a fresh venv and runs plain pytest in a user project outside the
# repository (tests/plugin/test_plugin_wheel.py; needs the erlbridge-base:otp27 image).
#
#   bash scripts/test.sh [pytest args...]
#
# Environment: CI=true makes a missing Erlang/Docker (or any skipped integration test)
# fail the run; ERLBRIDGE_OTP (default 25,27,29) and ERLBRIDGE_ERL_BACKEND (default
# local,docker) select the matrix; ERLBRIDGE_SKIP_LINT=1 skips ruff/mypy/lint-imports.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export ERLBRIDGE_OTP=${ERLBRIDGE_OTP:-25,27,29}
export ERLBRIDGE_ERL_BACKEND=${ERLBRIDGE_ERL_BACKEND:-local,docker}
ci=false
case "${CI:-}" in 1|true|TRUE|yes) ci=true ;; esac

timings=()
run_start=$SECONDS
summary() {
  local rc=$?
  echo
  echo "== timing summary"
  for t in "${timings[@]}"; do echo "  $t"; done
  echo "  total: $((SECONDS - run_start)) s (exit $rc)"
}
trap summary EXIT
step() {
  local name=$1; shift
  echo
  echo "== $name"
  local start=$SECONDS rc=0
  # A subshell with errexit of its own: a failing command inside a step function
  # ends the step (errexit would be ignored in a `cmd || rc=$?` context).
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  timings+=("$(printf '%-22s %5d s%s' "$name:" $((SECONDS - start)) \
      "$([ $rc = 0 ] || echo "  (failed, exit $rc)")")")
  return $rc
}

install_packages() {
  local missing=()
  command -v erl >/dev/null || missing+=(erlang-nox)
  command -v erl_call >/dev/null || missing+=(erlang-nox)
  [ -d /usr/lib/erlang/usr/include ] || missing+=(erlang-dev)
  ls /usr/lib/erlang/lib/sasl-*/src >/dev/null 2>&1 || missing+=(erlang-src)
  command -v rebar3 >/dev/null || missing+=(rebar3)
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
  # a C compiler and Python's headers build the optional compiled codec
  command -v cc >/dev/null || missing+=(gcc)
  python3 -c "import sysconfig, os, sys; sys.exit(not os.path.exists(
    os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null || missing+=(python3-dev)
  if [ ${#missing[@]} -eq 0 ]; then echo "all packages present"; return; fi
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root or install them)" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local stamp=.venv/.erlbridge-dev-stamp
  local want
  # setup.py and the C source too: a change rebuilds the compiled codec in place.
  want=$(cat pyproject.toml setup.py erlbridge/term/_speedups.c | sha256sum | cut -c1-16)
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    echo "$want" >"$stamp"
  else
    echo "venv up to date"
  fi
}

start_docker() {
  if docker info >/dev/null 2>&1; then echo "Docker engine answers"; return; fi
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
    echo "starting dockerd"
    (dockerd >/var/log/dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then echo "Docker engine up"; return; fi
      sleep 1
    done
  fi
  echo "no Docker engine answers" >&2
  if $ci; then return 1; fi
}

build_images() {
  if ! docker info >/dev/null 2>&1; then echo "skipped: no Docker engine"; return; fi
  local versions=${ERLBRIDGE_OTP//,/ }
  # The wheel test's user project (tests/plugin/test_plugin_wheel.py) runs on OTP 27.
  # shellcheck disable=SC2086,SC2046
  bash scripts/build-base-images.sh $(printf '%s\n' $versions 27 | sort -u)
  # shellcheck disable=SC2086
  bash scripts/build-node-images.sh $versions
}

# Release builds live outside the clone, like the Docker images: each build script skips
# what its MANIFEST (a hash of the inputs, OTP included) says is up to date, so a clean
# clone on the same machine rebuilds nothing that did not change. A checkout that already
# has its own _build/NAME keeps it.
cache_dir=${ERLBRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/erlbridge}
cached_build() {  # cached_build NAME: _build/NAME -> $cache_dir/NAME
  mkdir -p "$cache_dir/$1" _build
  if [ ! -e "_build/$1" ] && [ ! -L "_build/$1" ]; then
    ln -s "$cache_dir/$1" "_build/$1"
  fi
}

build_fixtures() {
  cached_build fixtures
  bash scripts/build-fixtures.sh
}

# The shop release (erlang_fixtures/shop/) for the machine's OTP, and for each OTP of
# ERLBRIDGE_OTP in its base image when Docker answers (one build serves both when equal).
build_realistic() {
  local versions=()
  if docker info >/dev/null 2>&1; then
    # shellcheck disable=SC2206
    versions=(${ERLBRIDGE_OTP//,/ })
  fi
  cached_build realistic
  local local_otp
  local_otp=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
  bash scripts/build-realistic.sh "$local_otp" "${versions[@]}"
}

lint() {
  if [ "${ERLBRIDGE_SKIP_LINT:-}" = 1 ]; then echo "skipped"; return; fi
  .venv/bin/ruff check erlbridge tests && .venv/bin/mypy && .venv/bin/lint-imports
}

step "packages" install_packages
step "venv" setup_venv
step "docker engine" start_docker
step "images" build_images
step "fixtures" build_fixtures
step "realistic release" build_realistic
step "lint" lint
# Every test runs with and without the compiled codec (tests/conftest.py): the main run
# takes the OTP 27 variants on the pure codec and the rest compiled; the second pass runs
# every test that has no such variant again, without the compiled codec (except those
# the main run saw run no compiled code: the codec log).
codec_log=$(mktemp /tmp/erlbridge-codec-log.XXXXXX)
step "pytest" .venv/bin/pytest --durations=15 --codec-log="$codec_log" "$@"
step "pytest, pure codec" env ERLBRIDGE_PURE_PYTHON=1 .venv/bin/pytest --codec-pass=pure \
  --codec-log="$codec_log" --durations=10 -q "$@"
rm -f "$codec_log"
