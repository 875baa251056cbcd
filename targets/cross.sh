# shellcheck shell=bash
# targets/cross.sh — the cross toolchain for targets/run-checks.sh, sourced, not run.
#
# The rustup toolchain on our machines has the host's std only, so the cross builds use
# Debian's packaged Rust instead:
#   - rustc-web / cargo-web (/usr/bin/rustc, /usr/bin/cargo) and rust-web-src, whose std
#     sources let cargo rebuild `core` for bare-metal targets (-Zbuild-std, allowed on a
#     stable compiler by RUSTC_BOOTSTRAP=1);
#   - rust-web-llvm for rust-lld (the bare-metal linker), itself a link to an lld-NN package;
#   - the aarch64 std rlibs through multiarch (libstd-rust-web-dev:arm64, which brings
#     libc6:arm64), gcc-aarch64-linux-gnu as the aarch64 linker, qemu-user to run the result;
#   - qemu-system-arm for the Cortex-M images.
#
# Functions:
#   cross_install LOGDIR   install what is missing (quietly, apt; root), once per machine
#   cross_env              export the variables that point cargo at Debian's toolchain
#   cross_cargo ARGS...    /usr/bin/cargo with that environment
#   cross_aarch64_run BIN ARGS...   run an aarch64 Linux binary under qemu-aarch64

CROSS_PACKAGES=(
  rustc-web cargo-web rust-web-src rust-web-llvm
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6:arm64 libstd-rust-web-dev:arm64
  qemu-user qemu-system-arm
)

# Whether Debian package $1 is installed.
cross_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]
}

# apt-get install the packages given, logging to $CROSS_LOG; fails with the log's tail.
cross_apt() {
  echo "cross: apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
      >>"$CROSS_LOG" 2>&1; then
    tail -n 20 "$CROSS_LOG"
    echo "cross: apt-get install failed (log: $CROSS_LOG)"
    return 1
  fi
}

cross_install() {
  CROSS_LOG=$1/apt.log
  mkdir -p "$1"
  : >"$CROSS_LOG"
  local missing=() p
  # The arm64 packages need the architecture known to dpkg before apt can list them.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [[ $(id -u) -eq 0 ]] || { echo "cross: need root to add the arm64 architecture"; return 1; }
    echo "cross: dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
  fi
  for p in "${CROSS_PACKAGES[@]}"; do
    cross_installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "cross: need root to install ${missing[*]}"; return 1; }
    echo "cross: apt-get update"
    if ! apt-get update -qq >>"$CROSS_LOG" 2>&1; then
      tail -n 20 "$CROSS_LOG"
      echo "cross: apt-get update failed"
      return 1
    fi
    cross_apt "${missing[@]}" || return 1
  fi
  # rust-lld points at /usr/bin/lld-NN, which rust-web-llvm does not pull in.
  if [[ -L /usr/bin/rust-lld && ! -e /usr/bin/rust-lld ]]; then
    cross_apt "$(basename "$(readlink /usr/bin/rust-lld)")" || return 1
  fi
  local tool
  for tool in /usr/bin/cargo /usr/bin/rustc rust-lld aarch64-linux-gnu-gcc qemu-aarch64 \
      qemu-system-arm; do
    command -v "$tool" >/dev/null || { echo "cross: $tool missing after the install"; return 1; }
  done
  [[ -d /usr/lib/rustlib/src/rust/library/core ]] \
    || { echo "cross: no std sources (rust-web-src)"; return 1; }
  [[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ]] \
    || { echo "cross: no aarch64 std (libstd-rust-web-dev:arm64)"; return 1; }
}

cross_env() {
  # Debian's compiler explicitly: rustup's proxies come first in PATH.
  export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  # -Zbuild-std on a stable compiler.
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  # qemu-aarch64 finds the aarch64 loader and glibc of libc6:arm64 in the usual multiarch
  # places; pointing it at the cross prefix instead mixes two glibc builds (threads hang).
  unset QEMU_LD_PREFIX
}

cross_cargo() {
  /usr/bin/cargo "$@"
}

cross_aarch64_run() {
  qemu-aarch64 "$@"
}

# The flags that rebuild `core` for a bare-metal target (no `alloc`: the crates built this way
# must not need an allocator).
CROSS_BUILD_STD=(-Zbuild-std=core -Zbuild-std-features=compiler-builtins-mem)
