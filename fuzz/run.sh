#!/usr/bin/env bash
# Runs every fuzz target (the TARGETS list in fuzz/src/lib.rs) for a bounded time each,
# prints the executions per target, and fails if any target crashes.
#
#   fuzz/run.sh [--ci] [SECONDS] [TARGET...]
#
#   --ci      short runs (30 s per target unless SECONDS is given); CI calls this.
#   SECONDS   time per target (default 30 with --ci, 600 otherwise).
#   TARGET    run only these targets.
#
# New inputs go to a scratch corpus ($FUZZ_WORK, default target/fuzz-work), seeded from
# fuzz/corpus/<target>/, so the checked-in corpus stays small; crashes are saved under
# fuzz/artifacts/<target>/. To keep a crash: minimize it (cargo +nightly fuzz tmin), add
# it to fuzz/corpus/<target>/, fix the bug; `cargo test -p sockeye-fuzz` replays it.
#
# Uses `cargo +nightly fuzz` when a nightly toolchain is installed, else
# `cargo fuzz -s none` on stable (no sanitizer: the core has no unsafe code anyway).
# Installs cargo-fuzz if missing.
set -euo pipefail

cd "$(dirname "$0")/.."

ci=0
if [[ "${1:-}" == "--ci" ]]; then
    ci=1
    shift
fi
seconds=""
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
if [[ -z "$seconds" ]]; then
    if [[ $ci == 1 ]]; then seconds=30; else seconds=600; fi
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^ *("\([a-z0-9_]*\)", .*/\1/p' fuzz/src/lib.rs)
fi
if [[ ${#targets[@]} == 0 ]]; then
    echo "fuzz/run.sh: no targets found in fuzz/src/lib.rs" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The core forbids unsafe code: AddressSanitizer would only slow the search down, and
# without it stable works too.
toolchain=()
sanitizer=(-s none)
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
fi

work=${FUZZ_WORK:-target/fuzz-work}
mkdir -p "$work/logs"

echo "fuzz/run.sh: building ${#targets[@]} targets (cargo ${toolchain[*]} fuzz ${sanitizer[*]})"
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}"

dict_for() {
    case "$1" in
        server_request | client_response) echo fuzz/dict/http.dict ;;
        *) echo fuzz/dict/frames.dict ;;
    esac
}

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "fuzz/corpus/$target"
    log="$work/logs/$target.log"
    dict=$(dict_for "$target")
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
    [[ -f "$dict" ]] && args+=(-dict="$dict")
    echo "fuzz/run.sh: $target for ${seconds}s"
    status=0
    cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$target" "$work/$target" "fuzz/corpus/$target" \
        -- "${args[@]}" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [[ -z "$execs" ]]; then
        execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
    fi
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [[ $status != 0 ]]; then
        failed+=("$target")
        summary+=("$(printf '%-20s CRASH after %s executions (log: %s)' "$target" "${execs:-?}" "$log")")
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 20 || true
    else
        summary+=("$(printf '%-20s %12s executions, cov %s, no crash' "$target" "${execs:-?}" "${cov:-?}")")
    fi
done

echo
echo "fuzz/run.sh: ${seconds}s per target"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} != 0 ]]; then
    echo "fuzz/run.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
