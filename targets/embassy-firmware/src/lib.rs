//! The Embassy firmware's building blocks, shared by the self-test image (`src/main.rs`) and
//! the embassy-net example (`examples/embassy_net`): a virtual clock for embassy-time with the
//! executor loop that drives it, the in-image link and the responder.
#![no_std]

pub mod link;
pub mod responder;
pub mod telemetry;
pub mod vtime;
