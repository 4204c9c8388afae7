#!/usr/bin/env bash
# usage: benches/compare.sh [--quick] [--reps N] [--scenarios LIST] [--servers LIST] ...
# The end-to-end echo and fan-out comparison in one command: builds the peer echo and
# broadcast servers, the load generator and the Sockeye echo_server and
# broadcast_server examples (release), then runs
# target/release/compare (all options: benches/compare.sh --help). Prints a
# markdown table per scenario and writes it to target/bench-results/latest.md.
# Loopback only; every server is started and killed by the harness itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p sockeye-benches --bins
exec "$TARGET/release/compare" "$@"
