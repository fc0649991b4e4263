#!/bin/sh
# Entry point of the erlbridge-node image: start the installed fixture target
# system (release 1.0.0 at first; whatever release_handler made permanent later).
#
# Environment:
#   NODE_NAME           long node name; "name" alone gets "@<container IP>"
#                       (default: fixture@<container IP>)
#   ERLANG_COOKIE_FILE  file holding the cookie (preferred), or
#   ERLANG_COOKIE       the cookie itself. Either is written to $HOME/.erlang.cookie
#                       (mode 0400); the cookie is never put on a command line.
#   ERL_FLAGS           extra emulator flags (read by erl itself)
#   FIXTURE_CLUSTER     comma-separated node names for the relups' sync_nodes barrier
set -eu
ip=$(hostname -i 2>/dev/null | awk '{print $1}')
[ -n "$ip" ] || ip=127.0.0.1
name=${NODE_NAME:-fixture}
case "$name" in
  *@*) ;;
  *) name="$name@$ip" ;;
esac
export NODE_NAME="$name"

cookie_file="${HOME:-/root}/.erlang.cookie"
if [ -n "${ERLANG_COOKIE_FILE:-}" ]; then
  rm -f "$cookie_file"
  tr -d '\n' <"$ERLANG_COOKIE_FILE" >"$cookie_file"
elif [ -n "${ERLANG_COOKIE:-}" ]; then
  rm -f "$cookie_file"
  printf '%s' "$ERLANG_COOKIE" >"$cookie_file"
elif [ ! -s "$cookie_file" ]; then
  echo "erlbridge-node: set ERLANG_COOKIE_FILE or ERLANG_COOKIE" >&2
  exit 64
fi
chmod 0400 "$cookie_file"
unset ERLANG_COOKIE

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
exec "$FIXTURE_ROOT/bin/fixture" foreground
