#!/usr/bin/env bash
# targets/run-checks.sh — the cross-target checks of issue 8 (item 5), for CI (.ci/run).
#
#   1. amps-core (no default features) and amps-smoltcp (plain and with defmt) build for
#      thumbv7em-none-eabihf with build-std, through ../shared/tools/cross-check.sh;
#   2. the telemetry gateway (targets/linux-aarch64) is cross-built for
#      aarch64-unknown-linux-gnu and run under qemu-aarch64 against an amps-broker this script
#      starts on the host's loopback; it must exit 0 (every sample persisted);
#   3. the bare-metal firmware (targets/bare-metal) is built with build-std and rust-lld and its
#      self-test runs under qemu-system-arm -M mps2-an386; semihosting must report exit 0.
#
# Installs what it needs from Debian (root; cross-check.sh installs the toolchain, this script
# adds qemu-system-arm). Every check prints PASS or FAIL; the last line is
# "run-checks: N passed, M failed"; the exit status is 0 only if nothing failed.
#
# Environment: AMPS_SHARED (default ../shared beside the repository), GATEWAY_COUNT (default 50),
# GATEWAY_RATE (samples/s, default 25), QEMU_TIMEOUT (seconds per qemu run, default 300),
# RUN_CHECKS_TARGET_DIR (where the cross builds go, default <repo>/target).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${AMPS_SHARED:-$ROOT/../shared}
# The shared tool when the checkout sits beside ../shared, else the copy vendored in .ci/ (CI
# runs on a fresh clone).
XC=$SHARED/tools/cross-check.sh
[[ -f $XC ]] || XC=$ROOT/.ci/cross-check.sh
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

[[ -f $XC ]] || { echo "FAIL setup: $XC not found (set AMPS_SHARED)"; exit 2; }

# ------------------------------------------------------------------ tools
step "toolchain (cross-check.sh installs Debian's Rust, build-std sources, aarch64 std, qemu-user)"
# qemu-system-arm is the one package cross-check.sh does not install.
if ! command -v qemu-system-arm >/dev/null; then
  step "apt-get install qemu-system-arm"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends qemu-system-arm >"$LOGS/apt.log" 2>&1; then
    apt-get update -qq >>"$LOGS/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends qemu-system-arm >>"$LOGS/apt.log" 2>&1 \
      || { tail -n 20 "$LOGS/apt.log"; echo "FAIL setup: apt-get install qemu-system-arm"; exit 2; }
  fi
fi

# cross-check.sh prints PASS/FAIL lines and a summary; count its verdicts into ours.
xc() {
  local out rc=0
  out=$(bash "$XC" --target-dir "$TARGET_BASE/cross-check" "$@" "$ROOT" 2>&1) || rc=$?
  echo "$out" | grep -vE '^cross-check: [0-9]+ passed' || true
  if [[ $rc -eq 2 ]]; then echo "FAIL setup: cross-check.sh $*"; exit 2; fi
  PASS=$((PASS + $(echo "$out" | grep -c '^PASS' || true)))
  FAIL=$((FAIL + $(echo "$out" | grep -c '^FAIL' || true)))
}

# ------------------------------------------------------------------ 1. no_std crates
step "amps-core and amps-smoltcp for thumbv7em-none-eabihf"
xc --nostd-crate amps-core --nostd-args '--no-default-features'
xc --no-install --nostd-crate amps-smoltcp
xc --no-install --nostd-crate amps-smoltcp --nostd-args '--features defmt'

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
  xc --no-install --timeout "$QEMU_TIMEOUT" --bin amps-telemetry-gateway \
    --bin-package amps-telemetry-gateway \
    --bin-args "tcp://$ADDR/amps/json --count $COUNT --rate $RATE --heartbeat 1 --name ci-gateway --store $STORE/publish --flush-timeout 60" \
    --expect "published $COUNT, all persisted"
fi

# ------------------------------------------------------------------ 3. bare-metal firmware
step "bare-metal firmware for thumbv7em-none-eabihf (build-std, rust-lld)"
FW_TARGET=$TARGET_BASE/bare-metal
ELF=$FW_TARGET/thumbv7em-none-eabihf/release/amps-firmware
start=$SECONDS
if (cd "$ROOT/targets/bare-metal" && env RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo \
      CARGO_TARGET_DIR="$FW_TARGET" /usr/bin/cargo build --release -Zbuild-std=core \
      -Zbuild-std-features=compiler-builtins-mem) >"$LOGS/firmware-build.log" 2>&1; then
  pass "firmware builds for thumbv7em-none-eabihf ($((SECONDS - start))s)"
  SIZE=$(command -v llvm-size || command -v llvm-size-22 || true)
  [[ -n $SIZE ]] && "$SIZE" -A "$ELF" | grep -E '^\.(text|rodata|data|bss) ' | sed 's/^/    | /'
  step "firmware self-test under qemu-system-arm -M mps2-an386"
  start=$SECONDS
  rc=0
  timeout "$QEMU_TIMEOUT" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$ELF" >"$LOGS/firmware-run.log" 2>&1 || rc=$?
  sed 's/^/    | /' "$LOGS/firmware-run.log"
  if [[ $rc -eq 0 ]] && grep -q 'self-test passed' "$LOGS/firmware-run.log"; then
    pass "firmware self-test under qemu-system-arm ($((SECONDS - start))s)"
  else
    fail "firmware self-test exited $rc (log: $LOGS/firmware-run.log)"
  fi
else
  grep -E '^error' -A8 "$LOGS/firmware-build.log" | head -n 30 || tail -n 20 "$LOGS/firmware-build.log"
  fail "firmware build (log: $LOGS/firmware-build.log)"
fi

finish
