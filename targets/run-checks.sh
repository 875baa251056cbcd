#!/usr/bin/env bash
# targets/run-checks.sh — the cross-target checks, for CI (.ci/run) and by hand.
#
#   1. the no_std crates build for bare metal with build-std (core only, no alloc):
#      amps-core, amps-smoltcp and amps-embassy for thumbv7em-none-eabihf (plain and with
#      defmt), amps-embassy (with embassy-time) for thumbv6m-none-eabi and
#      riscv32imc-unknown-none-elf;
#   2. the telemetry gateway (targets/linux-aarch64) is cross-built for
#      aarch64-unknown-linux-gnu and run under qemu-aarch64 against an amps-broker this script
#      starts on the host's loopback; it must exit 0 (every sample persisted);
#   3. the bare-metal firmware (targets/bare-metal, amps-smoltcp) and the Embassy firmware
#      (targets/embassy-firmware, amps-embassy on embassy-executor) are built and their
#      self-tests run under qemu-system-arm -M mps2-an386; semihosting must report exit 0;
#   4. the embassy-net example (targets/embassy-firmware/examples/embassy_net) builds for
#      thumbv7em-none-eabihf.
#
# The toolchain (Debian's Rust with build-std sources, the aarch64 std, qemu) is installed on
# first use by targets/cross.sh (root, apt). Every check prints PASS or FAIL; the last line is
# "run-checks: N passed, M failed"; the exit status is 0 only if nothing failed.
#
# Environment: GATEWAY_COUNT (default 50), GATEWAY_RATE (samples/s, default 25), QEMU_TIMEOUT
# (seconds per qemu run, default 300), RUN_CHECKS_TARGET_DIR (where the cross builds go,
# default <repo>/target).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${GATEWAY_COUNT:-50}
RATE=${GATEWAY_RATE:-25}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
TARGET_BASE=${RUN_CHECKS_TARGET_DIR:-$ROOT/target}
LOGS=$TARGET_BASE/run-checks
mkdir -p "$LOGS"
T0=$SECONDS
PASS=0
FAIL=0
step() { echo "== run-checks: $* ($((SECONDS - T0))s)"; }
pass() { PASS=$((PASS + 1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
finish() {
  echo "run-checks: done in $((SECONDS - T0))s"
  echo "run-checks: $PASS passed, $FAIL failed"
  [[ $FAIL -eq 0 ]]
}
# The first error lines of a build log.
errors() { grep -E '^error' -A8 "$1" | head -n 30 || tail -n 20 "$1"; }

# shellcheck source=targets/cross.sh
source "$ROOT/targets/cross.sh"

# ------------------------------------------------------------------ tools
step "cross toolchain (targets/cross.sh)"
cross_install "$LOGS" || { echo "FAIL setup: cross toolchain"; exit 2; }
cross_env
echo "    toolchain: $(/usr/bin/rustc -V); $(qemu-system-arm --version | head -n 1)"

# Builds in the main workspace with Debian's compiler go to their own directory, so that they
# and the host builds (rustup's compiler) do not invalidate each other.
XTARGET=$TARGET_BASE/cross

# Run a logged cargo build: LOG-ID LABEL DIR CARGO-ARGS... (PASS/FAIL with the time it
# took; the output goes to $LOGS/LOG-ID.log).
build() {
  local id=$1 label=$2 dir=$3 start=$SECONDS
  shift 3
  if (cd "$dir" && cross_cargo "$@") >"$LOGS/$id.log" 2>&1; then
    pass "$label ($((SECONDS - start))s)"
  else
    errors "$LOGS/$id.log"
    fail "$label (log: $LOGS/$id.log)"
    return 1
  fi
}

# ------------------------------------------------------------------ 1. no_std crates
step "no_std crates for bare-metal targets"
# amps-core is built as their dependency, without default features (no alloc).
build nostd-thumbv7em "amps-core, amps-smoltcp, amps-embassy for thumbv7em-none-eabihf" "$ROOT" \
  build --release --target-dir "$XTARGET" --target thumbv7em-none-eabihf "${CROSS_BUILD_STD[@]}" \
  -p amps-smoltcp -p amps-embassy --features amps-embassy/embassy-time || true
build nostd-thumbv7em-defmt "amps-smoltcp and amps-embassy with defmt for thumbv7em-none-eabihf" "$ROOT" \
  build --release --target-dir "$XTARGET" --target thumbv7em-none-eabihf "${CROSS_BUILD_STD[@]}" \
  -p amps-smoltcp -p amps-embassy --features amps-smoltcp/defmt,amps-embassy/defmt,amps-embassy/embassy-time || true
build nostd-thumbv6m-riscv32 "amps-embassy for thumbv6m-none-eabi and riscv32imc-unknown-none-elf" "$ROOT" \
  build --release --target-dir "$XTARGET" --target thumbv6m-none-eabi \
  --target riscv32imc-unknown-none-elf "${CROSS_BUILD_STD[@]}" \
  -p amps-embassy --features embassy-time || true

# ------------------------------------------------------------------ 2. aarch64 gateway
step "amps-broker on the host's loopback"
(cd "$ROOT" && cargo build -q -p amps-broker) >"$LOGS/broker-build.log" 2>&1 \
  || { tail -n 20 "$LOGS/broker-build.log"; fail "amps-broker host build"; finish; }
BROKER_TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
"$BROKER_TARGET/debug/amps-broker" --listen 127.0.0.1:0 >"$LOGS/broker.log" 2>&1 &
BROKER_PID=$!
STORE=$(mktemp -d)
cleanup() {
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  rm -rf "$STORE"
}
trap cleanup EXIT
# Wait for the broker's "listening on ADDR" line (bounded: 30 s).
ADDR=""
for _ in $(seq 300); do
  ADDR=$(sed -n 's/^amps-broker listening on //p' "$LOGS/broker.log" | head -n 1)
  [[ -n $ADDR ]] && break
  kill -0 "$BROKER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $ADDR ]]; then
  cat "$LOGS/broker.log"
  fail "amps-broker did not start"
else
  step "telemetry gateway for aarch64 under qemu-aarch64 against tcp://$ADDR"
  GW=amps-telemetry-gateway
  if build gateway-build "$GW cross-builds for aarch64-unknown-linux-gnu" "$ROOT" \
      build --target-dir "$XTARGET" --target aarch64-unknown-linux-gnu -p "$GW" --bin "$GW"; then
    start=$SECONDS
    rc=0
    # shellcheck disable=SC2086
    timeout "$QEMU_TIMEOUT" qemu-aarch64 "$XTARGET/aarch64-unknown-linux-gnu/debug/$GW" \
      "tcp://$ADDR/amps/json" --count "$COUNT" --rate "$RATE" --heartbeat 1 --name ci-gateway \
      --store "$STORE/publish" --flush-timeout 60 >"$LOGS/gateway-run.log" 2>&1 || rc=$?
    sed 's/^/    | /' "$LOGS/gateway-run.log" | head -n 20
    if [[ $rc -eq 0 ]] && grep -q "published $COUNT, all persisted" "$LOGS/gateway-run.log"; then
      pass "$GW under qemu-aarch64 ($((SECONDS - start))s)"
    else
      fail "$GW under qemu-aarch64 exited $rc (log: $LOGS/gateway-run.log)"
    fi
  fi
fi

# ------------------------------------------------------------------ 3, 4. firmware images
SIZE=$(command -v llvm-size || command -v llvm-size-22 || true)

# Build and run one firmware image: NAME DIR ELF-NAME (its own workspace and target dir).
firmware() {
  local name=$1 dir=$2 elf=$3
  local tdir=$TARGET_BASE/$name
  local image=$tdir/thumbv7em-none-eabihf/release/$elf
  step "$name for thumbv7em-none-eabihf (build-std, rust-lld)"
  build "$name-build" "$name builds" "$dir" \
    build --release --target-dir "$tdir" "${CROSS_BUILD_STD[@]}" --bin "$elf" || return 0
  [[ -n $SIZE ]] && "$SIZE" -A "$image" | grep -E '^\.(text|rodata|data|bss) ' | sed 's/^/    | /'
  step "$name self-test under qemu-system-arm -M mps2-an386"
  local start=$SECONDS rc=0
  timeout "$QEMU_TIMEOUT" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$image" >"$LOGS/$name-run.log" 2>&1 \
    || rc=$?
  sed 's/^/    | /' "$LOGS/$name-run.log"
  if [[ $rc -eq 0 ]] && grep -q 'self-test passed' "$LOGS/$name-run.log"; then
    pass "$name self-test under qemu-system-arm ($((SECONDS - start))s)"
  else
    fail "$name self-test exited $rc (log: $LOGS/$name-run.log)"
  fi
}

firmware bare-metal "$ROOT/targets/bare-metal" amps-firmware
firmware embassy-firmware "$ROOT/targets/embassy-firmware" amps-embassy-firmware

step "embassy-net example for thumbv7em-none-eabihf"
build embassy-net-example "amps-embassy on an embassy-net TcpSocket (examples/embassy_net) builds" \
  "$ROOT/targets/embassy-firmware" \
  build --release --target-dir "$TARGET_BASE/embassy-firmware" "${CROSS_BUILD_STD[@]}" \
  --example embassy_net || true

finish
