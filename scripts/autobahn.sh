#!/usr/bin/env bash
# usage: bash scripts/autobahn.sh ADAPTER [CASES]
# Autobahn|Testsuite conformance of one Sockeye adapter (tokio, smol, mio), both
# directions, each split into AB_SHARDS wstest processes run side by side, judged
# strictly by scripts/autobahn_check.py:
#   1. cargo build --release -p sockeye-ADAPTER --examples
#   2. our server: one examples/echo_server on a free loopback port, tested by
#      AB_SHARDS run-client.sh (wstest fuzzingclient), each with its share of the
#      cases                                  -> target/autobahn/ADAPTER/server/shard-K
#   3. our client: AB_SHARDS run-server.sh (wstest fuzzingserver), each on its own
#      port with its share of the cases and its own examples/autobahn_client
#                                              -> target/autobahn/ADAPTER/client/shard-K
#   4. the shards' reports merged (scripts/autobahn_shard.py) into server/index.json and
#      client/index.json, then autobahn_check.py on both (also saved as
#      target/autobahn/ADAPTER/check.txt)
# ADAPTER `axum` is sockeye-hyper's axum echo route (examples/axum_echo, feature
# `axum`), tested as a server only: Autobahn's client side speaks HTTP/1.1 to it.
# ADAPTER may also be `python` (the Python `websockets` reference peers in
# scripts/interop/ref_peer.py, target/py) or `node` (the Node `ws` ones in
# scripts/node/ref_peer.mjs, target/node): peers with permessage-deflate on, to check
# this harness and to time the compression cases.
# CASES: comma-separated case patterns ('1.*,2.*', '12.*.1', exact ids). Default:
# `default` (scripts/autobahn_shard.py: every case but the 12.*/13.* ones with large
# messages; 349 of 517), or `*` (all 517) when SOCKEYE_AUTOBAHN_FULL=1.
# Env: SOCKEYE_SHARED (default ../shared beside the repository), AB_SHARDS (wstest
# processes per direction, default 2), AB_TIMEOUT (seconds per direction, default 900, 3600
# with SOCKEYE_AUTOBAHN_FULL=1: the full 12.*/13.* take ~25 min per direction here),
# AB_EXCLUDE (patterns to skip), AB_REQUIRE_COMPRESSION (1: a 12.*/13.* case that comes
# back UNIMPLEMENTED, i.e. permessage-deflate not negotiated, fails; default 1, 0 to
# accept UNIMPLEMENTED there).
# Exit: 0 both directions conform, 1 otherwise, 2 usage.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,29p "$0" >&2; exit 2; }
ADAPTER=$1
if [ "${SOCKEYE_AUTOBAHN_FULL:-0}" = 1 ]; then CASES=${2:-*}; else CASES=${2:-default}; fi
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))
cd "$ROOT"
SHARED=${SOCKEYE_SHARED:-$ROOT/../shared}
AB=$SHARED/autobahn
if [ "${SOCKEYE_AUTOBAHN_FULL:-0}" = 1 ]; then TIMEOUT=${AB_TIMEOUT:-3600}; else TIMEOUT=${AB_TIMEOUT:-900}; fi
SHARDS=${AB_SHARDS:-2}
REQUIRE=${AB_REQUIRE_COMPRESSION:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/target/autobahn/$ADAPTER
mkdir -p "$OUT/bin"
rm -rf "$OUT/server" "$OUT/client" "$OUT/check.txt"

[ -f "$AB/setup.sh" ] || { echo "autobahn.sh: no Autobahn harness at $AB (set SOCKEYE_SHARED)" >&2; exit 1; }
bash "$AB/setup.sh" >"$OUT/setup.log" 2>&1 || { tail -n 30 "$OUT/setup.log" >&2; echo "autobahn.sh: setup.sh failed" >&2; exit 1; }

CLIENT_CMD=()
case $ADAPTER in
  axum)
    PKG=sockeye-hyper-axum
    echo "--- building sockeye-hyper's axum_echo (release)"
    cargo build --release -p sockeye-hyper --features axum --example axum_echo
    cp "$TARGET/release/examples/axum_echo" "$OUT/bin/axum_echo"
    SERVER_CMD=("$OUT/bin/axum_echo") ;;
  python)
    PKG=python-websockets
    [ -x "$ROOT/target/py/bin/python" ] || { echo "autobahn.sh: no target/py (run scripts/test.sh once)" >&2; exit 1; }
    SERVER_CMD=("$ROOT/target/py/bin/python" "$ROOT/scripts/interop/ref_peer.py" serve)
    CLIENT_CMD=("$ROOT/target/py/bin/python" "$ROOT/scripts/interop/ref_peer.py" autobahn-client) ;;
  node)
    PKG=node-ws
    [ -d "$ROOT/target/node/node_modules/ws" ] || { echo "autobahn.sh: no target/node (run scripts/test.sh once)" >&2; exit 1; }
    SERVER_CMD=(node "$ROOT/scripts/node/ref_peer.mjs" serve)
    CLIENT_CMD=(node "$ROOT/scripts/node/ref_peer.mjs" autobahn-client) ;;
  *)
    PKG=sockeye-$ADAPTER
    echo "--- building $PKG examples (release)"
    cargo build --release -p "$PKG" --examples
    # Several adapters have examples with these names and cargo keeps one copy at a
    # time in target/release/examples: copy ours right after building.
    for ex in echo_server autobahn_client; do
      [ -x "$TARGET/release/examples/$ex" ] || { echo "autobahn.sh: $PKG has no example $ex" >&2; exit 1; }
      cp "$TARGET/release/examples/$ex" "$OUT/bin/$ex"
    done
    SERVER_CMD=("$OUT/bin/echo_server")
    CLIENT_CMD=("$OUT/bin/autobahn_client") ;;
esac

# The shards: one line of case ids each.
mapfile -t PARTS < <(python3 "$ROOT/scripts/autobahn_shard.py" split "$SHARDS" "$CASES" "${AB_EXCLUDE:-}")
[ "${#PARTS[@]}" -gt 0 ] || { echo "autobahn.sh: no case selected by '$CASES' minus '${AB_EXCLUDE:-}'" >&2; exit 1; }
NCASES=$(python3 "$ROOT/scripts/autobahn_shard.py" ids "$CASES" "${AB_EXCLUDE:-}" | wc -l)
echo "--- $NCASES cases ($CASES) in ${#PARTS[@]} shards"
# Free loopback ports, all held at once so that no two are the same.
free_ports() { python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"; }

SPID=; JOBS=()
cleanup() {
  for p in "${JOBS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${JOBS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=; fi
}
trap cleanup EXIT

echo "--- $PKG as server: echo_server under ${#PARTS[@]} wstest fuzzingclient"
PORT=$(free_ports 1)  # $(...) waits for python to let the port go
"${SERVER_CMD[@]}" "127.0.0.1:$PORT" >"$OUT/echo_server.log" 2>&1 &
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
t0=$SECONDS; JOBS=(); SHARD_DIRS=()
for k in "${!PARTS[@]}"; do
  SHARD_DIRS+=("$OUT/server/shard-$k")
  AB_AGENT=$PKG AB_EXCLUDE= AB_TIMEOUT=$TIMEOUT bash "$AB/run-client.sh" "127.0.0.1:$PORT" \
    "$OUT/server/shard-$k" "${PARTS[$k]}" >"$OUT/server-shard-$k.log" 2>&1 &
  JOBS+=($!)
done
for p in "${JOBS[@]}"; do wait "$p" || true; done; JOBS=()
echo "server direction: $((SECONDS - t0))s wall for $NCASES cases"
kill -0 "$SPID" 2>/dev/null || echo "autobahn.sh: WARNING: echo_server died during the run (log: $OUT/echo_server.log)" >&2
kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=
python3 "$ROOT/scripts/autobahn_shard.py" merge "$OUT/server" "${SHARD_DIRS[@]}" || true
python3 "$AB/summarize.py" --durations "$OUT/server" >"$OUT/server/summary.txt" 2>&1 || true
grep -v '^  ' "$OUT/server/summary.txt" || true

if [ "${#CLIENT_CMD[@]}" -eq 0 ]; then
  echo "--- $PKG has no client: the server direction only"
  echo "--- strict check (scripts/autobahn_check.py)"
  FLAGS=(); [ "$REQUIRE" = 1 ] && FLAGS=(--require-compression)
  rc=0
  python3 "$ROOT/scripts/autobahn_check.py" "${FLAGS[@]}" --expect "$NCASES" --label "$PKG server" "$OUT/server" \
    | tee "$OUT/check.txt" || rc=${PIPESTATUS[0]}
  exit "$rc"
fi

echo "--- $PKG as client: autobahn_client under ${#PARTS[@]} wstest fuzzingserver"
read -r -a PORTS <<<"$(free_ports "${#PARTS[@]}")"
t0=$SECONDS; JOBS=(); SHARD_DIRS=()
for k in "${!PARTS[@]}"; do
  SHARD_DIRS+=("$OUT/client/shard-$k")
  AB_EXCLUDE= AB_TIMEOUT=$TIMEOUT bash "$AB/run-server.sh" "${PORTS[$k]}" "$OUT/client/shard-$k" "${PARTS[$k]}" -- \
    "${CLIENT_CMD[@]}" "ws://127.0.0.1:${PORTS[$k]}" "$PKG" >"$OUT/client-shard-$k.log" 2>&1 &
  JOBS+=($!)
done
for p in "${JOBS[@]}"; do wait "$p" || true; done; JOBS=()
echo "client direction: $((SECONDS - t0))s wall for $NCASES cases"
python3 "$ROOT/scripts/autobahn_shard.py" merge "$OUT/client" "${SHARD_DIRS[@]}" || true
python3 "$AB/summarize.py" --durations "$OUT/client" >"$OUT/client/summary.txt" 2>&1 || true
grep -v '^  ' "$OUT/client/summary.txt" || true

echo "--- strict check (scripts/autobahn_check.py)"
FLAGS=(); [ "$REQUIRE" = 1 ] && FLAGS=(--require-compression)
rc=0
python3 "$ROOT/scripts/autobahn_check.py" "${FLAGS[@]}" --expect "$NCASES" --label "$PKG server" "$OUT/server" \
  --label "$PKG client" "$OUT/client" | tee "$OUT/check.txt" || rc=${PIPESTATUS[0]}
exit "$rc"
