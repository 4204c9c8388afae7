#!/usr/bin/env bash
# Sockeye on a microcontroller, in QEMU: builds the firmware images of embedded/firmware
# (thumbv7em-none-eabihf, a Cortex-M4 with FPU), runs them on QEMU's mps2-an386 machine
# with a 60 s limit each, checks the transcripts, and prints the size report (Sockeye vs
# embedded-websocket vs the same job without WebSocket).
#
#   bash scripts/embedded.sh
#
# Installs what is missing: QEMU and the ARM binutils (apt-get, as root), the Rust target
# (rustup). Exits non-zero on any failure. Transcripts: embedded/firmware/target/qemu/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n== %s  [embedded.sh, %ds]\n' "$*" $((SECONDS - start)); }

step "tools"
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v arm-none-eabi-size >/dev/null || missing+=(binutils-arm-none-eabi)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
rustup target list --installed | grep -qx thumbv7em-none-eabihf ||
  rustup target add thumbv7em-none-eabihf
qemu-system-arm --version | head -1

step "the adapter builds for thumbv7em-none-eabihf without alloc"
nice -n 10 cargo build -p sockeye-embedded-io --target thumbv7em-none-eabihf

step "firmware images (opt-level s, LTO)"
firmware=embedded/firmware
(cd "$firmware" && nice -n 10 cargo build --release --locked --features ews --bins)

logs=$firmware/target/qemu
mkdir -p "$logs"
failed=0
run_image() {
  local name=$1
  step "QEMU: $name"
  local rc=0
  timeout 60 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -kernel "$firmware/target/thumbv7em-none-eabihf/release/$name" >"$logs/$name.log" 2>&1 || rc=$?
  cat "$logs/$name.log"
  if [ $rc -ne 0 ]; then
    echo "FAILED: $name exited with status $rc (124: the 60 s limit)"
    failed=1
  fi
}
expect() {
  local name=$1
  shift
  for line in "$@"; do
    if ! grep -qxF -- "$line" "$logs/$name.log"; then
      echo "FAILED: $name: missing line: $line"
      failed=1
    fi
  done
}

run_image sockeye
expect sockeye \
  "server: accepted /ws" \
  "client: connected, 101 Switching Protocols" \
  "server: echoed 21 bytes" \
  "client: text echo ok" \
  "server: echoed 200 bytes" \
  "client: binary echo ok (200 bytes)" \
  "server: ping 13 bytes, pong sent" \
  "client: pong ok" \
  'server: close received, code 1000 reason "bye from the client"' \
  "client: close reply received, code 1000" \
  "client: closed cleanly: true" \
  "server: closed cleanly: true" \
  "PASS"
run_image ews
expect ews "client: pong ok" "client: closed cleanly: true" "server: closed cleanly: true" "PASS"
run_image baseline
expect baseline "client: ping echo ok" "PASS"
[ $failed -eq 0 ] || { echo "embedded.sh: FAILED after $((SECONDS - start))s"; exit 1; }

step "size report (thumbv7em-none-eabihf, opt-level = \"s\", LTO, one codegen unit)"
python3 embedded/size_report.py "$firmware" "$logs"
for name in sockeye ews baseline; do echo "$name: $(grep -h "^tasks:" "$logs/$name.log")"; done
grep -h "^sizes:" "$logs/sockeye.log" "$logs/ews.log"

echo
echo "embedded.sh: passed in $((SECONDS - start))s"
