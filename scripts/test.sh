#!/usr/bin/env bash
# usage: bash scripts/test.sh
# The one test command, on a fresh machine or your own. In order:
#   1. installs the outside peers, idempotently: the Python `websockets` library
#      in a venv under target/py (exported as SOCKEYE_PYTHON for the interop
#      tests); Node's `ws` and `playwright-core` in target/node (npm ci from
#      scripts/node/package-lock.json); Debian's `chromium` (apt-get, as root only);
#      and, when an adapter is listed below, Autobahn|Testsuite via
#      $SOCKEYE_SHARED/autobahn/setup.sh (SOCKEYE_SHARED defaults to ../shared
#      beside the repository);
#   2. cargo test --workspace --no-fail-fast (unit, integration and doc tests,
#      the fuzz corpus replay, the bench crate's tests; every test binary runs);
#   3. permessage-deflate interop (scripts/interop.sh): Python `websockets` and
#      Node `ws` clients against the tokio echo_server and servers against its
#      autobahn_client / client --compress, every window-bits and takeover
#      variant; headless Chromium against the echo_server. One step per suite;
#   4. the browser demo (scripts/node/demo_test.mjs): headless Chromium against
#      sockeye-demo (chat between two pages, close codes and reasons, a killed and
#      restarted server, a heartbeat, wss:// over HTTP/2), SOCKEYE_DEMO_TEST=0 skips it;
#   5. Autobahn conformance, both directions, for each adapter listed in
#      AUTOBAHN_ADAPTERS (scripts/autobahn.sh, each direction sharded over
#      AB_SHARDS=2 wstest processes). By default every case except most of the
#      permessage-deflate ones: 349 of 517, i.e. all of 1-10 and, of 12.* and
#      13.*, sizes 1, 2, 4 and 11 of 12.* and 1, 3, 4 and 12 of 13.* (every
#      parameter set, small messages and one fragmented larger one; the full 12/13
#      push ~11 GB through Autobahn's Python per direction: ~25 min per direction
#      here). SOCKEYE_AUTOBAHN_FULL=1 runs all 517 cases (~50 min per adapter; best
#      one adapter at a time: SOCKEYE_AUTOBAHN_FULL=1 bash scripts/autobahn.sh tokio).
#      12.*/13.* must negotiate compression: UNIMPLEMENTED fails them
#      (AB_REQUIRE_COMPRESSION=0 accepts it).
# Every step runs even if an earlier one failed; the exit status is non-zero if
# any failed, and the last line is `summary: N passed, N failed, N skipped`.
# Env: SOCKEYE_SHARED, SOCKEYE_AUTOBAHN_ADAPTERS (overrides the list below;
# empty skips Autobahn), SOCKEYE_AUTOBAHN_BUDGET (seconds for all Autobahn runs,
# default 900, or 21600 with SOCKEYE_AUTOBAHN_FULL=1), SOCKEYE_AUTOBAHN_FULL=1,
# SOCKEYE_INTEROP=0 (skips step 3), SOCKEYE_INTEROP_PEER (see scripts/interop.sh),
# SOCKEYE_DEMO_TEST=0 (skips step 4), SOCKEYE_CHROMIUM (default /usr/bin/chromium),
# CI=true (a missing peer is a failure, not a skip), AB_TIMEOUT, AB_SHARDS,
# AB_EXCLUDE and AB_REQUIRE_COMPRESSION (passed to the Autobahn harness).
set -euo pipefail

# Adapters checked with Autobahn|Testsuite (both directions), each by its echo_server
# and autobahn_client examples; `axum` is sockeye-hyper's axum echo route, tested as a
# server only.
AUTOBAHN_ADAPTERS="tokio smol mio axum"

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))
cd "$ROOT"
SHARED=${SOCKEYE_SHARED:-$ROOT/../shared}
ADAPTERS=${SOCKEYE_AUTOBAHN_ADAPTERS-$AUTOBAHN_ADAPTERS}
IN_CI=false; [ "${CI:-}" = true ] && IN_CI=true
LOGS=$ROOT/target/test-logs
mkdir -p "$LOGS"
start=$SECONDS
section() { printf '\n=== %s  [scripts/test.sh, %ds]\n' "$*" "$((SECONDS - start))"; }

PASSED=0 FAILED=0 SKIPPED=0
STEPS=()   # one line per step for the summary
step() { # step ok|FAILED|skipped TEXT
  STEPS+=("$(printf '%-8s %s' "$1" "$2")")
  case $1 in ok) ;; skipped) ;; *) STEP_FAILED=1 ;; esac
}
STEP_FAILED=0

# --- 1. Outside peers -------------------------------------------------------
section "Python peer (websockets) in target/py"
PY=$ROOT/target/py/bin/python
REQ=$ROOT/scripts/requirements-python.txt
if "$PY" -c 'import websockets' 2>/dev/null && cmp -s "$REQ" "$ROOT/target/py/requirements.txt"; then
  echo "already installed: $("$PY" -c 'import websockets; print("websockets", websockets.__version__)')"
elif { rm -rf "$ROOT/target/py" && python3 -m venv "$ROOT/target/py" &&
       "$PY" -m pip install -q --disable-pip-version-check -r "$REQ" &&
       cp "$REQ" "$ROOT/target/py/requirements.txt"; } >"$LOGS/python.log" 2>&1; then
  echo "installed: $("$PY" -c 'import websockets; print("websockets", websockets.__version__)')"
else
  cat "$LOGS/python.log" >&2
  echo "scripts/test.sh: could not install the Python websockets peer (log: $LOGS/python.log)" >&2
fi
if "$PY" -c 'import websockets' 2>/dev/null; then
  export SOCKEYE_PYTHON=$PY
  step ok "python peer: SOCKEYE_PYTHON=$PY"
elif $IN_CI; then
  step FAILED "python peer: not installed (CI needs it)"
else
  echo "WARNING: SOCKEYE_PYTHON is unset: the Python interop tests will be SKIPPED" >&2
  step skipped "python peer: not installed, interop tests skip"
fi

section "Node peers (ws, playwright-core) in target/node"
NODE_LOCK=$ROOT/scripts/node/package-lock.json
NODE_READY=false
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >"$LOGS/node-apt.log" 2>&1 || true
fi
if [ -d "$ROOT/target/node/node_modules/ws" ] && cmp -s "$NODE_LOCK" "$ROOT/target/node/package-lock.json"; then
  echo "already installed: $(cd "$ROOT/target/node" && node -p 'require("ws/package.json").version + " ws, " + require("playwright-core/package.json").version + " playwright-core"')"
  NODE_READY=true
elif command -v npm >/dev/null && { rm -rf "$ROOT/target/node" && mkdir -p "$ROOT/target/node" &&
       cp "$ROOT/scripts/node/package.json" "$NODE_LOCK" "$ROOT/target/node/" &&
       npm ci --prefix "$ROOT/target/node" --no-audit --no-fund; } >"$LOGS/node.log" 2>&1; then
  echo "installed: ws and playwright-core from scripts/node/package-lock.json"
  NODE_READY=true
else
  cat "$LOGS/node.log" 2>/dev/null >&2 || true
  echo "scripts/test.sh: could not install the Node peers (node/npm: $(command -v npm || echo none))" >&2
fi
if $NODE_READY; then step ok "node peers: target/node (ws, playwright-core)"
elif $IN_CI; then step FAILED "node peers: not installed (CI needs them)"
else step skipped "node peers: not installed, their interop suites skip"; fi

section "Chromium (Debian package) for the browser tests (interop, demo)"
if [ -x /usr/bin/chromium ]; then
  echo "already installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
elif [ "$(id -u)" = 0 ] && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$LOGS/chromium.log" 2>&1; then
  echo "installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
elif [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: not root, so Debian's chromium is not installed (apt-get install chromium): the browser tests will skip" >&2
else
  tail -n 20 "$LOGS/chromium.log" >&2
fi
if [ -x /usr/bin/chromium ]; then step ok "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
elif $IN_CI; then step FAILED "chromium: not installed (CI needs it)"
else step skipped "chromium: not installed, the browser tests skip"; fi

AUTOBAHN_READY=false
if [ -n "${ADAPTERS// /}" ]; then
  section "Autobahn|Testsuite (for: $ADAPTERS)"
  if [ ! -f "$SHARED/autobahn/setup.sh" ]; then
    echo "scripts/test.sh: $SHARED/autobahn/setup.sh not found (set SOCKEYE_SHARED)" >&2
    if $IN_CI; then step FAILED "autobahn: harness not found at $SHARED/autobahn";
    else step skipped "autobahn: harness not found at $SHARED/autobahn"; fi
  elif bash "$SHARED/autobahn/setup.sh" >"$LOGS/autobahn-setup.log" 2>&1; then
    tail -n 2 "$LOGS/autobahn-setup.log"
    AUTOBAHN_READY=true
  else
    tail -n 30 "$LOGS/autobahn-setup.log" >&2
    step FAILED "autobahn: setup.sh failed (log: $LOGS/autobahn-setup.log)"
  fi
fi

# --- 2. cargo test ----------------------------------------------------------
section "cargo test --workspace --no-fail-fast"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$LOGS/cargo-test.log"
rc=${PIPESTATUS[0]}
set -e
# Sum every `test result:` line (unit, integration and doc-test binaries).
read -r t_pass t_fail t_ign t_bins < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i
    } n++ } END { printf "%d %d %d %d\n", p, f, g, n }' "$LOGS/cargo-test.log")
PASSED=$((PASSED + t_pass)); FAILED=$((FAILED + t_fail)); SKIPPED=$((SKIPPED + t_ign))
if [ "$rc" -eq 0 ]; then
  step ok "cargo test: $t_pass passed, $t_fail failed, $t_ign ignored ($t_bins test binaries)"
else
  # A build failure has no `test result` line: count it as one failure.
  [ "$t_fail" -gt 0 ] || FAILED=$((FAILED + 1))
  step FAILED "cargo test (exit $rc): $t_pass passed, $t_fail failed, $t_ign ignored"
fi

# --- 3. permessage-deflate interop -------------------------------------------
if [ "${SOCKEYE_INTEROP:-1}" = 0 ]; then
  SKIPPED=$((SKIPPED + 1)); step skipped "interop: SOCKEYE_INTEROP=0"
else
  section "permessage-deflate interop: bash scripts/interop.sh"
  set +e
  bash "$ROOT/scripts/interop.sh" 2>&1 | tee "$LOGS/interop.log"
  set -e
  results=$ROOT/target/interop/results.txt
  [ -s "$results" ] || echo "interop: FAILED (scripts/interop.sh wrote no results)" >"$results"
  while IFS= read -r l; do
    suite=${l%%:*}; what=${l#*: }
    if [[ $what =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
      PASSED=$((PASSED + BASH_REMATCH[1])); FAILED=$((FAILED + BASH_REMATCH[2]))
      if [ "${BASH_REMATCH[2]}" = 0 ]; then step ok "interop $suite: $what"
      else step FAILED "interop $suite: $what (log: target/interop/logs/$suite.log)"; fi
    elif [[ $what == skipped* ]]; then
      SKIPPED=$((SKIPPED + 1)); step skipped "interop $suite: $what"
    else
      FAILED=$((FAILED + 1)); step FAILED "interop $suite: $what"
    fi
  done <"$results"
fi

# --- 4. The browser demo -----------------------------------------------------
# scripts/node/demo_test.mjs: headless Chromium against the demo (demo/, sockeye-demo):
# two pages chatting, a close with code and reason, a killed server (1006) and the
# pages' reconnect when it returns, a frozen one (heartbeat), a shutdown (1001), and
# wss:// over HTTP/2 via HTTPS, checked from the server's /stats (~20 s).
if [ "${SOCKEYE_DEMO_TEST:-1}" = 0 ]; then
  SKIPPED=$((SKIPPED + 1)); step skipped "browser demo: SOCKEYE_DEMO_TEST=0"
else
  section "browser demo: node scripts/node/demo_test.mjs (headless Chromium against sockeye-demo)"
  CHROMIUM=${SOCKEYE_CHROMIUM:-/usr/bin/chromium}
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  demo_missing() {
    if $IN_CI; then FAILED=$((FAILED + 1)); step FAILED "browser demo: $1 (CI needs it)"
    else SKIPPED=$((SKIPPED + 1)); step skipped "browser demo: $1"; fi
  }
  if ! $NODE_READY || [ ! -d "$ROOT/target/node/node_modules/playwright-core" ]; then
    demo_missing "no playwright-core in target/node"
  elif [ ! -x "$CHROMIUM" ]; then
    demo_missing "no Chromium at $CHROMIUM"
  # `cargo test --workspace` above built the demo's binary for its own tests (same
  # features, same profile): this only makes sure it is there and fresh.
  elif ! cargo test --workspace --no-run >"$LOGS/demo-build.log" 2>&1; then
    tail -n 30 "$LOGS/demo-build.log" >&2
    FAILED=$((FAILED + 1)); step FAILED "browser demo: sockeye-demo did not build (log: $LOGS/demo-build.log)"
  else
    set +e
    timeout 150 node "$ROOT/scripts/node/demo_test.mjs" "$TARGET/debug/sockeye-demo" 2>&1 | tee "$LOGS/demo.log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/demo.log" | tail -n1 || true)
    took=$(sed -n 's/^time: //p' "$LOGS/demo.log" | tail -n1)
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
      PASSED=$((PASSED + BASH_REMATCH[1])); FAILED=$((FAILED + BASH_REMATCH[2]))
    else
      FAILED=$((FAILED + 1))
    fi
    if [ "$rc" -eq 0 ] && [ -n "$line" ]; then step ok "browser demo: $line ($took)"
    else step FAILED "browser demo (exit $rc): ${line:-no result line} (log: $LOGS/demo.log)"; fi
  fi
fi

# --- 5. Autobahn conformance ------------------------------------------------
# The default subset (349 cases) took 72-75 s per direction against Node `ws` with
# compression (AB_SHARDS=2 wstest processes, 2 busy cores); a hanging peer is cut off
# by AB_TIMEOUT (per direction, at most 300 s here, 3600 s with SOCKEYE_AUTOBAHN_FULL=1)
# and all adapters together stay within SOCKEYE_AUTOBAHN_BUDGET seconds.
FULL=${SOCKEYE_AUTOBAHN_FULL:-0}
if [ "$FULL" = 1 ]; then cap=3600; default_budget=21600; else cap=300; default_budget=900; fi
budget_end=$((SECONDS + ${SOCKEYE_AUTOBAHN_BUDGET:-$default_budget}))
for a in $ADAPTERS; do
  # Directions checked: axum has no client.
  dirs=2; roles="server and client conform"
  [ "$a" = axum ] && { dirs=1; roles="server conforms"; }
  $AUTOBAHN_READY || { SKIPPED=$((SKIPPED + dirs)); continue; }
  left=$((budget_end - SECONDS))
  if [ "$left" -lt 60 ]; then
    FAILED=$((FAILED + dirs)); step FAILED "autobahn sockeye-$a: not run, SOCKEYE_AUTOBAHN_BUDGET used up"
    continue
  fi
  per_direction=$((left / 2 < cap ? left / 2 : cap))
  section "Autobahn: sockeye-$a, both directions ($([ "$FULL" = 1 ] && echo 'all 517 cases' || echo 'default subset'))"
  set +e
  AB_TIMEOUT=${AB_TIMEOUT:-$per_direction} bash "$ROOT/scripts/autobahn.sh" "$a" 2>&1 | tee "$LOGS/autobahn-$a.log"
  rc=${PIPESTATUS[0]}
  set -e
  # One verdict line per direction ("... => ok" / "=> FAILED") in check.txt.
  check=$ROOT/target/autobahn/$a/check.txt
  ok=$(grep -c '=> ok$' "$check" 2>/dev/null || true)
  ok=${ok:-0}; [ "$rc" -eq 0 ] || [ "$ok" -lt "$dirs" ] || ok=$((dirs - 1))
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + dirs - ok))
  if [ "$rc" -eq 0 ]; then
    step ok "autobahn sockeye-$a: $roles"
  else
    step FAILED "autobahn sockeye-$a (log: $LOGS/autobahn-$a.log)"
  fi
  while IFS= read -r l; do STEPS+=("         $l"); done < <(grep ' cases | ' "$check" 2>/dev/null || true)
done
[ -n "${ADAPTERS// /}" ] || step skipped "autobahn: no adapter enabled (AUTOBAHN_ADAPTERS in scripts/test.sh)"

# --- Summary ----------------------------------------------------------------
section "summary"
for s in "${STEPS[@]}"; do echo "$s"; done
[ "$STEP_FAILED" -eq 0 ] || [ "$FAILED" -gt 0 ] || FAILED=1
line="summary: $PASSED passed, $FAILED failed, $SKIPPED skipped"
echo "$line" >"$ROOT/target/test-summary.txt"
echo "$line"
[ "$STEP_FAILED" -eq 0 ] && [ "$FAILED" -eq 0 ]
