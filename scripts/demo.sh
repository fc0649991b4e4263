#!/usr/bin/env bash
# The README demo, in one command, on a fresh Debian 12 machine (run as root, or as a user
# that already has erlang-nox, rebar3 and python3-venv installed):
#
#   scripts/demo.sh            start 3 local nodes of fixture 1.0.0 (no Docker), connect,
#                              show readiness, upgrade them to 2.0.0 (sync_nodes barrier in
#                              the relup), print the per-node report, stop the cluster
#   scripts/demo.sh --keep     same, then leave the cluster running to try the CLI on it
#
# What it does: installs the missing system packages (apt, by package name), creates the
# virtualenv .venv with erlbridge[cli] if needed, builds the fixture releases with
# scripts/build-fixtures.sh (skipped when up to date), then runs `python -m erlbridge.demo`.
# Environment: ERLBRIDGE_VENV (default: <repo>/.venv), ERLBRIDGE_FIXTURES
# (default: <repo>/_build/fixtures).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${ERLBRIDGE_VENV:-$repo/.venv}
fixtures=${ERLBRIDGE_FIXTURES:-$repo/_build/fixtures}

missing=()
command -v erl >/dev/null 2>&1 || missing+=(erlang-nox erlang-dev)
command -v rebar3 >/dev/null 2>&1 || missing+=(rebar3)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ! -x "$venv/bin/python" ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "demo: please install: ${missing[*]} (or run this script as root)" >&2
    exit 2
  fi
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating the virtualenv $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import erlbridge.cli, rich' >/dev/null 2>&1; then
  echo "== installing erlbridge[cli] into $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$repo[cli]"
fi

echo "== building the fixture releases into $fixtures"
"$repo/scripts/build-fixtures.sh" "$fixtures"

echo "== running the demo"
exec "$venv/bin/python" -m erlbridge.demo --fixtures "$fixtures" "$@"
