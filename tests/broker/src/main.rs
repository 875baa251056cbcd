//! `amps-broker`: the TCP server binary.
fn main() {}
