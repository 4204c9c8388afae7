#!/usr/bin/env bash
# usage: bash scripts/interop.sh
# permessage-deflate (RFC 7692) interop of Sockeye's tokio examples with independent
# implementations, over loopback, both directions:
#   python-clients   Python `websockets` clients (every window-bits / takeover offer)
#                    against examples/echo_server
#   python-servers   `websockets` servers (every ServerPerMessageDeflateFactory
#                    variant) against examples/autobahn_client (it always offers
#                    compression)
#   python-wscat     a `websockets` server against examples/client --compress
#   node-clients     Node `ws` clients (perMessageDeflate variants) against echo_server
#   node-servers     `ws` servers (the same variants) against autobahn_client
#   chromium         headless Chromium (playwright-core) against echo_server
# Suites: scripts/interop/deflate_python.py, scripts/node/interop_ws.mjs,
# scripts/node/interop_chromium.mjs. Peers: target/py (SOCKEYE_PYTHON), target/node
# (npm ci from scripts/node/package-lock.json) and /usr/bin/chromium, which
# scripts/test.sh installs. A missing peer skips its suites, or fails them when CI=true.
# Writes target/interop/results.txt, one line per suite:
#   NAME: N passed, N failed | NAME: skipped (WHY) | NAME: FAILED (WHY)
# Env: SOCKEYE_INTEROP_PEER = sockeye (default) | python | node: who plays Sockeye's
# part. `python` / `node` put the reference peers of scripts/interop/ref_peer.py /
# scripts/node/ref_peer.mjs (compression on) in its place, to check the harness itself.
# Exit: 0 when no suite failed.
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))
cd "$ROOT"
OUT=$ROOT/target/interop
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PEER=${SOCKEYE_INTEROP_PEER:-sockeye}
IN_CI=false; [ "${CI:-}" = true ] && IN_CI=true
PY=${SOCKEYE_PYTHON:-$ROOT/target/py/bin/python}
mkdir -p "$OUT/bin" "$OUT/logs"
: >"$OUT/results.txt"
result() { echo "$1: $2" >>"$OUT/results.txt"; echo "=> $1: $2"; }
missing() { # missing SUITE WHY
  if $IN_CI; then result "$1" "FAILED ($2; CI needs it)"; else result "$1" "skipped ($2)"; fi
}

case $PEER in
  sockeye)
    echo "--- building sockeye-tokio examples (release)"
    if ! cargo build --release -p sockeye-tokio --examples >"$OUT/logs/build.log" 2>&1; then
      tail -n 30 "$OUT/logs/build.log" >&2
      for s in python-clients python-servers python-wscat node-clients node-servers chromium; do
        result "$s" "FAILED (the tokio examples did not build: $OUT/logs/build.log)"
      done
      exit 1
    fi
    for ex in echo_server autobahn_client client; do cp "$TARGET/release/examples/$ex" "$OUT/bin/$ex"; done
    SERVER_CMD=("$OUT/bin/echo_server")
    CLIENT_CMD=("$OUT/bin/autobahn_client")
    WSCAT_CMD=("$OUT/bin/client" --compress) ;;
  python|node)
    if [ "$PEER" = python ]; then SERVER_CMD=("$PY" "$ROOT/scripts/interop/ref_peer.py" serve)
    else SERVER_CMD=(node "$ROOT/scripts/node/ref_peer.mjs" serve); fi
    CLIENT_CMD=("$PY" "$ROOT/scripts/interop/ref_peer.py" autobahn-client)
    WSCAT_CMD=("$PY" "$ROOT/scripts/interop/ref_peer.py" wscat) ;;
  *) echo "interop.sh: SOCKEYE_INTEROP_PEER must be sockeye, python or node" >&2; exit 2 ;;
esac
echo "--- Sockeye's part played by: $PEER"

SPID=
stop_server() { if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=; fi; }
trap stop_server EXIT
"${SERVER_CMD[@]}" 127.0.0.1:0 >"$OUT/logs/echo_server.log" 2>&1 &
SPID=$!
for _ in $(seq 150); do
  grep -q "listening on" "$OUT/logs/echo_server.log" 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.1
done
URL=ws://$(sed -n 's/^listening on //p' "$OUT/logs/echo_server.log" | head -n1)/
[ "$URL" != "ws:///" ] || { cat "$OUT/logs/echo_server.log" >&2; echo "interop.sh: the echo server did not start" >&2; }

run() { # run SUITE CMD...: its last line is `N passed, N failed`
  local suite=$1; shift
  echo "--- $suite"
  local rc=0
  timeout 600 "$@" >"$OUT/logs/$suite.log" 2>&1 || rc=$?
  cat "$OUT/logs/$suite.log"
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/logs/$suite.log" | tail -n1 || true)
  if [ -n "$line" ]; then result "$suite" "$line"
  else result "$suite" "FAILED (exit $rc, no result line; log: $OUT/logs/$suite.log)"; fi
}

if [ "$URL" = "ws:///" ]; then
  for s in python-clients node-clients chromium; do result "$s" "FAILED (the echo server did not start)"; done
fi
if [ -x "$PY" ] && "$PY" -c 'import websockets' 2>/dev/null; then
  [ "$URL" = "ws:///" ] || run python-clients "$PY" scripts/interop/deflate_python.py clients "$URL"
  run python-servers "$PY" scripts/interop/deflate_python.py servers -- "${CLIENT_CMD[@]}"
  run python-wscat "$PY" scripts/interop/deflate_python.py wscat -- "${WSCAT_CMD[@]}"
else
  for s in python-clients python-servers python-wscat; do missing "$s" "no Python websockets at $PY"; done
fi
if command -v node >/dev/null && [ -d "$ROOT/target/node/node_modules/ws" ]; then
  [ "$URL" = "ws:///" ] || run node-clients node scripts/node/interop_ws.mjs clients "$URL"
  run node-servers node scripts/node/interop_ws.mjs servers -- "${CLIENT_CMD[@]}"
  CHROMIUM=${SOCKEYE_CHROMIUM:-/usr/bin/chromium}
  if [ ! -x "$CHROMIUM" ]; then missing chromium "no Chromium at $CHROMIUM"
  elif [ ! -d "$ROOT/target/node/node_modules/playwright-core" ]; then missing chromium "no playwright-core in target/node"
  elif [ "$URL" != "ws:///" ]; then run chromium node scripts/node/interop_chromium.mjs "$URL"; fi
else
  for s in node-clients node-servers chromium; do missing "$s" "no node or no target/node/node_modules/ws"; done
fi
stop_server
! grep -q -E 'FAILED|[1-9][0-9]* failed$' "$OUT/results.txt"
