#!/usr/bin/env bash
# usage: bash scripts/autobahn.sh ADAPTER [CASES]
# Autobahn|Testsuite conformance of one Sockeye adapter (tokio, smol, mio), both
# directions, judged strictly by scripts/autobahn_check.py:
#   1. cargo build --release -p sockeye-ADAPTER --examples
#   2. our server: examples/echo_server on a free loopback port, tested by
#      run-client.sh (wstest fuzzingclient)      -> target/autobahn/ADAPTER/server
#   3. our client: examples/autobahn_client against run-server.sh
#      (wstest fuzzingserver)                    -> target/autobahn/ADAPTER/client
#   4. autobahn_check.py on both reports (also saved as target/autobahn/ADAPTER/check.txt)
# CASES: comma-separated case patterns (default "*", e.g. '1.*,2.*,5.*').
# Env: SOCKEYE_SHARED (default ../shared beside the repository), AB_TIMEOUT
# (seconds per direction, default 600), AB_EXCLUDE (patterns to skip).
# Exit: 0 both directions conform, 1 otherwise, 2 usage.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,15p "$0" >&2; exit 2; }
ADAPTER=$1; CASES=${2:-*}
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))
cd "$ROOT"
SHARED=${SOCKEYE_SHARED:-$ROOT/../shared}
AB=$SHARED/autobahn
export AB_TIMEOUT=${AB_TIMEOUT:-600}
PKG=sockeye-$ADAPTER
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/target/autobahn/$ADAPTER
mkdir -p "$OUT/bin"
rm -rf "$OUT/server" "$OUT/client" "$OUT/check.txt"

[ -f "$AB/setup.sh" ] || { echo "autobahn.sh: no Autobahn harness at $AB (set SOCKEYE_SHARED)" >&2; exit 1; }
bash "$AB/setup.sh" >"$OUT/setup.log" 2>&1 || { tail -n 30 "$OUT/setup.log" >&2; echo "autobahn.sh: setup.sh failed" >&2; exit 1; }

echo "--- building $PKG examples (release)"
cargo build --release -p "$PKG" --examples
# Several adapters have examples with these names and cargo keeps one copy at a
# time in target/release/examples: copy ours right after building.
for ex in echo_server autobahn_client; do
  [ -x "$TARGET/release/examples/$ex" ] || { echo "autobahn.sh: $PKG has no example $ex" >&2; exit 1; }
  cp "$TARGET/release/examples/$ex" "$OUT/bin/$ex"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SPID=
stop_server() {
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=; fi
}
trap stop_server EXIT

echo "--- $PKG as server: echo_server under wstest fuzzingclient"
PORT=$(free_port)
"$OUT/bin/echo_server" "127.0.0.1:$PORT" >"$OUT/echo_server.log" 2>&1 &
SPID=$!
for _ in $(seq 150); do
  grep -q "listening on" "$OUT/echo_server.log" 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "listening on" "$OUT/echo_server.log"; then
  cat "$OUT/echo_server.log" >&2
  echo "autobahn.sh: echo_server did not print 'listening on' (log: $OUT/echo_server.log)" >&2
  exit 1
fi
AB_AGENT=$PKG bash "$AB/run-client.sh" "127.0.0.1:$PORT" "$OUT/server" "$CASES" || true
kill -0 "$SPID" 2>/dev/null || echo "autobahn.sh: WARNING: echo_server died during the run (log: $OUT/echo_server.log)" >&2
stop_server

echo "--- $PKG as client: autobahn_client under wstest fuzzingserver"
PORT2=$(free_port)
bash "$AB/run-server.sh" "$PORT2" "$OUT/client" "$CASES" -- \
  "$OUT/bin/autobahn_client" "ws://127.0.0.1:$PORT2" "$PKG" || true

echo "--- strict check (scripts/autobahn_check.py)"
rc=0
python3 "$ROOT/scripts/autobahn_check.py" --label "$PKG server" "$OUT/server" \
  --label "$PKG client" "$OUT/client" | tee "$OUT/check.txt" || rc=${PIPESTATUS[0]}
exit "$rc"
