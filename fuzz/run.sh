#!/usr/bin/env bash
# Build and run the libFuzzer targets of amps-rs (cargo-fuzz). Installs cargo-fuzz when it is
# missing. Uses the nightly toolchain when rustup has one; without it, the machine's stable
# toolchain builds the targets with RUSTC_BOOTSTRAP=1. Targets are built with debug assertions
# and overflow checks and, by default, without a sanitizer: the crates under test deny
# `unsafe`, and AddressSanitizer made the session and broker targets eight times slower.
#
#   fuzz/run.sh list                   the targets
#   fuzz/run.sh build                  build every target
#   fuzz/run.sh smoke [SECONDS]        every target for SECONDS (default 10) from the checked-in
#                                      corpus, in a throwaway working corpus (what .ci/run does)
#   fuzz/run.sh run TARGET [ARGS...]   one target with libFuzzer ARGS (e.g. -runs=10000000),
#                                      growing fuzz/work/TARGET from fuzz/corpus/TARGET
#   fuzz/run.sh cmin TARGET            merge fuzz/work/TARGET into a minimal fuzz/corpus/TARGET
#
# Environment: FUZZ_SANITIZER=address (nightly only) for AddressSanitizer builds; FUZZ_DEV=1
# builds without optimisation (faster to build, slower to run).
# Crashes are written to fuzz/artifacts/TARGET/ and make the command fail.
set -euo pipefail
cd "$(dirname "$0")"

targets=(frame_decoder header_parser command_roundtrip uri session broker fs_store)

# libFuzzer options per target: longer inputs for the stream-driven targets.
opts_for() {
  local o=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict=amps.dict)
  case "$1" in
    session) o+=(-max_len=8192) ;;
    *) o+=(-max_len=4096) ;;
  esac
  echo "${o[@]}"
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (one time, a few minutes)" >&2
  cargo install cargo-fuzz --version '^0.13' --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep '^nightly' >/dev/null; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
sanitizer="${FUZZ_SANITIZER:-none}"
build_flags=(--sanitizer "$sanitizer" --debug-assertions)
if [[ "${FUZZ_DEV:-}" == 1 ]]; then
  build_flags+=(--dev)
fi

fuzz() { cargo "${toolchain[@]}" fuzz "$@"; }

run_target() {
  local t=$1 work=$2
  shift 2
  mkdir -p "$work" "corpus/$t"
  # shellcheck disable=SC2046
  fuzz run "${build_flags[@]}" "$t" "$work" "corpus/$t" -- $(opts_for "$t") "$@"
}

case "${1:-}" in
  list)
    printf '%s\n' "${targets[@]}"
    ;;
  build)
    fuzz build "${build_flags[@]}"
    ;;
  smoke)
    secs="${2:-10}"
    fuzz build "${build_flags[@]}"
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    for t in "${targets[@]}"; do
      echo "== fuzz smoke: $t (${secs}s)"
      log="$scratch/$t.log"
      status=0
      run_target "$t" "$scratch/$t" -max_total_time="$secs" >"$log" 2>&1 || status=$?
      grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' "$log" || true
      if [[ "$status" != 0 ]]; then
        tail -n 60 "$log" >&2
        echo "fuzz smoke: $t FAILED (exit $status; reproducer under fuzz/artifacts/$t)" >&2
        exit 1
      fi
    done
    ;;
  run)
    t="${2:?usage: run.sh run TARGET [libFuzzer args...]}"
    shift 2
    run_target "$t" "work/$t" "$@"
    ;;
  cmin)
    t="${2:?usage: run.sh cmin TARGET}"
    fresh="$(mktemp -d)"
    # shellcheck disable=SC2046
    fuzz run "${build_flags[@]}" "$t" "$fresh" "corpus/$t" "work/$t" -- -merge=1 $(opts_for "$t")
    rm -rf "corpus/$t"
    mv "$fresh" "corpus/$t"
    ;;
  *)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
