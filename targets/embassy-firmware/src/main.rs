//! Embassy firmware self-test: a `no_std`, no-alloc image for thumbv7em-none-eabihf (QEMU
//! `mps2-an386`, Cortex-M4) whose tasks run on embassy-executor with embassy-time: amps-embassy
//! publishes telemetry to the in-image responder over the image's link, survives a cut link,
//! shuts down with `publish_flush` and `close`, and the image exits through semihosting: 0 when
//! the self-test passed, 1 otherwise.
//!
//! Every buffer is a `static` (cortex-m's `singleton!`, task futures in embassy-executor's
//! static task pools), so the image's `.bss` is the whole memory budget; there is no heap.
#![no_std]
#![no_main]
// The size baseline leaves the client side of the self-test unused on purpose.
#![cfg_attr(feature = "baseline", allow(dead_code, unused_imports))]

#[cfg(not(feature = "baseline"))]
mod selftest;

use amps_embassy_firmware::link::Net;
use amps_embassy_firmware::responder::{self, Responder};
use amps_embassy_firmware::vtime;
use cortex_m::singleton;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_executor::raw::Executor;

/// The image's network (client ↔ responder).
static NET: Net = Net::new();

/// Virtual-time limit for the whole run.
const LIMIT_US: u64 = 300_000_000;

#[embassy_executor::task]
async fn responder_task(r: &'static mut Responder) {
    r.serve(&NET).await
}

#[entry]
fn main() -> ! {
    let code = match start() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(what) => {
            hprintln!("amps-embassy-firmware: self-test FAILED: {}", what);
            debug::EXIT_FAILURE
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Spawn the tasks and run the executor until the self-test ends.
fn start() -> Result<(), &'static str> {
    let executor: &'static Executor =
        singleton!(: Executor = Executor::new(core::ptr::null_mut())).ok_or("statics")?;
    let spawner = executor.spawner();
    let r = singleton!(: Responder = Responder::new()).ok_or("statics")?;
    spawner.spawn(responder_task(r).map_err(|_| "spawn responder")?);
    run(executor, spawner)
}

#[cfg(not(feature = "baseline"))]
fn run(executor: &'static Executor, spawner: Spawner) -> Result<(), &'static str> {
    selftest::spawn(spawner, &NET)?;
    let stalled = vtime::run(executor, LIMIT_US, selftest::finished);
    hprintln!("amps-embassy-firmware: responder {:?}", responder::tally());
    if let Err(s) = stalled {
        hprintln!("amps-embassy-firmware: executor stopped: {:?}", s);
    }
    match selftest::outcome() {
        Some(Ok(r)) => {
            hprintln!(
                "amps-embassy-firmware: self-test passed: {} readings persisted, {} delivered in order, flushed, closed ({} ms virtual, {} connects)",
                r.persisted,
                r.deliveries,
                vtime::now_us() / 1000,
                r.connects
            );
            Ok(())
        }
        Some(Err(f)) => {
            hprintln!("amps-embassy-firmware: {:?}", f);
            Err("see above")
        }
        None => Err("did not finish"),
    }
}

/// The size baseline (feature `baseline`): executor, virtual time, link, responder and
/// console, without the AMPS client. Prints the same kind of lines so the console code is in
/// both images.
#[cfg(feature = "baseline")]
fn run(executor: &'static Executor, spawner: Spawner) -> Result<(), &'static str> {
    #[embassy_executor::task]
    async fn idle() {
        embassy_time::Timer::after_secs(1).await;
        let _ = NET.connect();
    }
    spawner.spawn(idle().map_err(|_| "spawn")?);
    let stalled = vtime::run(executor, 2_000_000, || false);
    hprintln!("amps-embassy-firmware: responder {:?}", responder::tally());
    hprintln!("amps-embassy-firmware: {:?} at {} ms", stalled, vtime::now_us() / 1000);
    Err("baseline image: not a self-test")
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("amps-embassy-firmware: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
