//! The embassy-net wiring example shown in the crate documentation is a copy
//! (`doc/embassy_net.rs`, so the published package documents itself) of the firmware example
//! CI builds for a board target (`targets/embassy-firmware/examples/embassy_net/main.rs`).
//! The two must stay identical.

use std::path::Path;

#[test]
fn documented_wiring_is_the_firmware_example() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::fs::read_to_string(crate_dir.join("doc/embassy_net.rs"))
        .expect("doc/embassy_net.rs is part of the crate");
    let firmware = crate_dir.join("../../targets/embassy-firmware");
    if !firmware.is_dir() {
        // Built from the published package: the firmware is not there to compare with.
        eprintln!("no targets/embassy-firmware beside this crate: nothing to compare");
        return;
    }
    let original = std::fs::read_to_string(firmware.join("examples/embassy_net/main.rs"))
        .expect("the firmware's embassy_net example");
    assert!(
        copy == original,
        "doc/embassy_net.rs differs from targets/embassy-firmware/examples/embassy_net/main.rs: \
         copy the firmware example over the doc copy"
    );
}
