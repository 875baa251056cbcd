//! Bare-metal telemetry firmware self-test: a `no_std`, no-alloc image for thumbv7em-none-eabihf
//! (QEMU `mps2-an386`, Cortex-M4) that publishes telemetry through amps-smoltcp to an in-image
//! responder over a smoltcp loopback interface, survives a cut link, shuts down with
//! `publish_flush`, and exits through semihosting: 0 when the self-test passed, 1 otherwise.
//!
//! Every buffer is a `static` (cortex-m's `singleton!`), so the image's `.bss` is the whole
//! memory budget; there is no heap.
#![no_std]
#![no_main]
// The size baseline leaves the client side of the self-test unused on purpose.
#![cfg_attr(feature = "baseline", allow(dead_code))]

mod responder;
mod selftest;
mod telemetry;

use amps_smoltcp::loopback::Loopback;
use cortex_m::singleton;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Medium;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use responder::Responder;
use selftest::Failure;

const ADDR: IpAddress = IpAddress::v4(10, 0, 0, 1);

/// A `'static` zeroed byte buffer of `N` bytes (`None` only if one site ran twice).
macro_rules! buffer {
    ($n:expr) => {
        singleton!(: [u8; $n] = [0; $n]).map(|b| &mut b[..])
    };
}

#[entry]
fn main() -> ! {
    let code = match run() {
        Ok(r) => {
            hprintln!(
                "amps-firmware: self-test passed: {} readings persisted, {} delivered in order, flushed, closed ({} ms virtual)",
                r.persisted,
                r.deliveries,
                r.elapsed_ms
            );
            debug::EXIT_SUCCESS
        }
        Err(e) => {
            hprintln!("amps-firmware: self-test FAILED: {:?}", e);
            debug::EXIT_FAILURE
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

/// The network part shared by the self-test and the size baseline: the loopback device, one
/// interface, the responder on two listening sockets (so a reconnect finds a listener while
/// the old connection lingers) and the client's socket.
struct Net {
    device: &'static mut Loopback<8, 576>,
    iface: &'static mut Interface,
    sockets: &'static mut SocketSet<'static>,
    responder: &'static mut Responder<2>,
    client_socket: SocketHandle,
}

fn network() -> Option<Net> {
    let device = singleton!(: Loopback<8, 576> = Loopback::new(Medium::Ip))?;
    let mut cfg = IfaceConfig::new(HardwareAddress::Ip);
    cfg.random_seed = 0x0a4d_5053;
    let iface = singleton!(: Interface = Interface::new(cfg, device, Instant::from_millis(0)))?;
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(ADDR, 8));
    });
    let storage = singleton!(: [SocketStorage<'static>; 3] = [SocketStorage::EMPTY; 3])?;
    let sockets = singleton!(: SocketSet<'static> = SocketSet::new(&mut storage[..]))?;
    let mut socket = |rx: Option<&'static mut [u8]>, tx: Option<&'static mut [u8]>| {
        Some(sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(rx?),
            tcp::SocketBuffer::new(tx?),
        )))
    };
    let client_socket = socket(buffer!(1024), buffer!(1024))?;
    let r1 = socket(buffer!(1024), buffer!(1024))?;
    let r2 = socket(buffer!(1024), buffer!(1024))?;
    let responder = singleton!(: Responder<2> = Responder::new([r1, r2]))?;
    Some(Net {
        device,
        iface,
        sockets,
        responder,
        client_socket,
    })
}

#[cfg(not(feature = "baseline"))]
fn run() -> Result<selftest::Report, Failure> {
    use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
    use amps_core::session::{Config, HeartbeatConfig, Limits};
    use amps_smoltcp::{Buffers, Client, Options};
    use selftest::{Rig, Storage};

    let missing = Failure::Timeout("static buffers");
    let net = network().ok_or(missing)?;
    // The session: heartbeats every second, exponential reconnect backoff, a 4 KiB / 32
    // message publish window (docs/protocol.md §8.4), frames up to 1 KiB.
    let mut config = Config::new("fw-sensor-1");
    config.heartbeat = Some(HeartbeatConfig::new(1));
    config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::new(
        amps_core::Duration::from_millis(100),
        2.0,
        amps_core::Duration::from_secs(2),
    ));
    config.resubscribe = true;
    config.limits = Limits {
        max_frame: 1024,
        ..Limits::small()
    };
    let buffers = Buffers {
        rx: buffer!(1028).ok_or(missing)?,
        tx: buffer!(512).ok_or(missing)?,
        scratch: buffer!(128).ok_or(missing)?,
        arena: buffer!(128).ok_or(missing)?,
        ack_batch: &mut [], // no queue subscriptions: each ack, if any, goes out at once
        publish_store: buffer!(4096).ok_or(missing)?,
        publish_window: 32,
        bookmark_store: buffer!(64).ok_or(missing)?,
    };
    let session = buffers
        .session::<8, 2>(&config)
        .map_err(|_| Failure::Timeout("session config"))?;
    let mut opts = Options::new((ADDR, responder::PORT));
    // A SYN lost on the cut link is given up after 3 s; the backoff then schedules the next.
    opts.tcp_timeout = Some(smoltcp::time::Duration::from_secs(3));
    let client = singleton!(
        : Client<'static, Storage> = Client::new(session, net.client_socket, opts)
    )
    .ok_or(missing)?;

    let report = Rig::new(net.device, net.iface, net.sockets, client, net.responder).run()?;
    let tally = net.responder.tally;
    hprintln!("amps-firmware: responder {:?}", tally);
    let expected = 3 * selftest::PER_PHASE;
    let verdict = tally.accepted == expected
        && tally.gaps == 0
        && tally.errors == 0
        && tally.logons >= 2
        && report.deliveries == selftest::PER_PHASE
        && report.out_of_order == 0
        && report.flushed
        && client.session().unpersisted_count() == 0;
    if verdict {
        Ok(report)
    } else {
        Err(Failure::Timeout("final checks"))
    }
}

/// The size baseline (feature `baseline`): the network and the responder, polled for a while,
/// without the AMPS client. Prints the same lines so the console code is in both images.
#[cfg(feature = "baseline")]
fn run() -> Result<selftest::Report, Failure> {
    let net = network().ok_or(Failure::Timeout("static buffers"))?;
    let mut now = Instant::from_millis(0);
    for _ in 0..1000 {
        net.iface.poll(now, &mut *net.device, &mut *net.sockets);
        net.responder.poll(net.sockets);
        now += smoltcp::time::Duration::from_millis(10);
    }
    hprintln!("amps-firmware: responder {:?}", net.responder.tally);
    let _ = net.client_socket;
    Err(Failure::Timeout("baseline image: not a self-test"))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("amps-firmware: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
