#!/usr/bin/env bash
# Starts `cocoon demo --serve` (the whole network on a local devnet), waits for its gateway line, runs the
# official OpenAI SDKs (Python and Node) against the gateway, and always stops the demo by PID.
#
# Usage: run.sh COCOON_BIN PYTHON [extra `cocoon demo` args, e.g. --fixed-engine]
# Env:   COCOON_SDK_READY_TIMEOUT  seconds to wait for the gateway line (default 300)
#        COCOON_SDK_STRICT=0       report known gaps as skipped instead of failing (default 1:
#                                  both gaps found so far, the extra usage chunk and the lost 413, are fixed)
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 COCOON_BIN PYTHON [demo args...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
python=$2
shift 2
ready_timeout=${COCOON_SDK_READY_TIMEOUT:-300}
export COCOON_SDK_STRICT=${COCOON_SDK_STRICT:-1}

[ -x "$bin" ] || { echo "sdk-compat: no cocoon binary at $bin" >&2; exit 2; }
[ -x "$python" ] || { echo "sdk-compat: no python at $python (run make setup)" >&2; exit 2; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/cocoon-sdk-compat.XXXXXX")
demo_pid=
devnet_pids=
url=

children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' ' ' || true; }

stop_demo() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    devnet_pids="$devnet_pids $(children_of "$demo_pid")"
    # Once serving, SIGINT is the demo's Ctrl-C: it drains, stops its daemons and its devnet, then
    # exits. Before that it has no handler, and a background job of a script ignores SIGINT, so a demo
    # still starting gets SIGTERM; one that does not go in time gets SIGKILL.
    local signals="TERM KILL"
    [ -n "$url" ] && signals="INT TERM KILL"
    for sig in $signals; do
      [ "$sig" = INT ] || echo "sdk-compat: stopping demo $demo_pid with SIG$sig" >&2
      kill -"$sig" "$demo_pid" 2>/dev/null || true
      for _ in $(seq 1 150); do
        kill -0 "$demo_pid" 2>/dev/null || break 2
        sleep 0.1
      done
    done
    wait "$demo_pid" 2>/dev/null || true
  fi
  # The devnet runs in its own process group and exits when its parent goes; make sure of it.
  for p in $devnet_pids; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    fi
  done
  if [ "$status" -ne 0 ]; then
    echo "sdk-compat: demo stderr (last 40 lines):" >&2
    tail -n 40 "$logs/demo.err" >&2 || true
  fi
  rm -rf "$logs"
  exit "$status"
}
trap stop_demo EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything here is local: no request (the demo's to its devnet, the SDKs' to the gateway) may go
# through an HTTP proxy from the environment.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
echo "sdk-compat: starting $bin demo --serve $*"
: >"$logs/demo.out"
"$bin" demo --serve "$@" >"$logs/demo.out" 2>"$logs/demo.err" </dev/null &
demo_pid=$!

deadline=$((SECONDS + ready_timeout))
while [ -z "$url" ]; do
  url=$(sed -n 's/^gateway: \(http:\/\/127\.0\.0\.1:[0-9]*\/v1\)$/\1/p' "$logs/demo.out" || true)
  [ -n "$url" ] && break
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "sdk-compat: the demo exited before printing its gateway line" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "sdk-compat: no gateway line after ${ready_timeout}s" >&2
    exit 1
  fi
  sleep 0.2
done
devnet_pids=$(children_of "$demo_pid")
echo "sdk-compat: gateway $url (demo pid $demo_pid)"

rc=0
"$python" -u "$here/check_python.py" "$url" | tee "$logs/python.out" || rc=1
node "$here/check_node.mjs" "$url" | tee "$logs/node.out" || rc=1
# One closing line over both SDKs: "N passed, N failed, N skipped".
total() { sed -n "s/^sdk-[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\\$1/p" "$logs"/python.out "$logs"/node.out | awk '{s+=$1} END {print s+0}'; }
passed=$(total 1)
failed=$(total 2)
skipped=$(total 3)
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
[ "$rc" -eq 0 ] || echo "sdk-compat: FAILED (see the FAIL lines above)" >&2
echo "sdk-compat: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
