//! A `#![no_std]` binary is linked without default libraries; `core` still needs `memcmp` and
//! friends, which the C library provides (libc is not Rust's std, so the proof still holds).
fn main() {
    println!("cargo:rustc-link-arg-bins=-lc");
}
