//! amps-embassy on an embassy-net `TcpSocket`: a sensor that publishes a reading every second
//! and takes commands from a subscription, reconnecting by itself.
//!
//! Built for thumbv7em-none-eabihf by targets/run-checks.sh. On a board, the network device
//! and the time driver come from the HAL and `main` is `#[embassy_executor::main]`; here the
//! firmware crate's loopback device, virtual clock and executor loop stand in (marked below).
#![no_std]
#![no_main]

mod loopback;

use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{Config, ConnectRequest, Event, FixedStorage, HeartbeatConfig};
use amps_embassy::{Buffers, Client, Connect, Driver, EmbassyClock, Options};
use amps_embassy_firmware::{telemetry, vtime};
use cortex_m::singleton;
use cortex_m_rt::entry;
use embassy_executor::Spawner;
use embassy_executor::raw::Executor;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::{
    Config as NetConfig, IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr, Runner, StackResources,
    StaticConfigV4,
};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_time::{Duration, Ticker};

use loopback::Loopback;

/// The AMPS server (an IP literal; add embassy-net's `dns` feature to resolve names).
const SERVER: IpEndpoint = IpEndpoint::new(IpAddress::v4(192, 0, 2, 7), 9007);

/// At most 8 commands awaiting acks and 2 subscriptions.
type Storage = FixedStorage<8, 2>;
/// Shared between the driver task and the sensor task (which may run on different
/// executors or priorities: hence the critical-section mutex).
type AmpsClient = Client<CriticalSectionRawMutex, Storage, EmbassyClock>;

/// Commands for the sensor, copied out of deliveries by the driver's event handler.
static COMMANDS: Channel<CriticalSectionRawMutex, heapless::Vec<u8, 64>, 4> = Channel::new();

/// The connect function: one `TcpSocket` with static buffers, reused for every attempt.
struct TcpConnector {
    socket: TcpSocket<'static>,
}

impl Connect for TcpConnector {
    type Conn<'c> = &'c mut TcpSocket<'static>;
    type Error = ConnectError;

    async fn connect(&mut self, _req: ConnectRequest) -> Result<Self::Conn<'_>, ConnectError> {
        // Whatever the last connection left (a reset after heartbeat silence, a FIN): gone.
        self.socket.abort();
        let _ = self.socket.flush().await;
        // TCP gives up on unacknowledged data after 10 s; AMPS heartbeats notice a silent
        // server sooner.
        self.socket.set_timeout(Some(Duration::from_secs(10)));
        self.socket.set_nagle_enabled(false);
        self.socket.connect(SERVER).await?;
        Ok(&mut self.socket)
    }

    async fn close(conn: &mut Self::Conn<'_>, graceful: bool) {
        if graceful {
            conn.close();
            let _ = conn.flush().await;
        } else {
            conn.abort();
        }
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Loopback>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn amps_task(client: &'static AmpsClient, connector: TcpConnector) {
    let mut driver: Driver<'static, _, _, _, _> = Driver::new(client, connector, Options::new());
    driver
        .run(|event| {
            // Runs in this task with the client locked: copy, hand over, return.
            if let Event::Delivery(d) = event {
                let mut cmd = heapless::Vec::new();
                if cmd.extend_from_slice(d.data()).is_ok() {
                    let _ = COMMANDS.try_send(cmd);
                }
            }
        })
        .await;
}

#[embassy_executor::task]
async fn sensor_task(client: &'static AmpsClient) {
    client.connect().await;
    // Re-entered by the session after every reconnect (`resubscribe`).
    let _ = client.subscribe("commands/sensor-17", None).await;
    let mut ticker = Ticker::every(Duration::from_secs(1));
    let mut seq = 0;
    loop {
        ticker.next().await;
        seq += 1;
        let mut buf = [0u8; 64];
        let Some(n) = telemetry::to_json(&telemetry::sample(seq), &mut buf) else {
            continue;
        };
        // Kept in the publish store until persisted; waits while the window is full.
        let _ = client.publish_wait("telemetry", &buf[..n]).await;
        while let Ok(cmd) = COMMANDS.try_receive() {
            let _ = cmd; // act on the command
        }
    }
}

/// Everything from the network device on: static memory, the stack, the client, the tasks.
fn wiring(spawner: Spawner, device: Loopback) {
    let resources = singleton!(: StackResources<2> = StackResources::new()).unwrap();
    let config = NetConfig::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 17), 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    });
    // Seed from the board's RNG on hardware.
    let (stack, runner) = embassy_net::new(device, config, resources, 0x0a4d_5053);
    spawner.spawn(net_task(runner).unwrap());

    let mut session_config = Config::new("sensor-17");
    session_config.heartbeat = Some(HeartbeatConfig::new(5));
    session_config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::default());
    session_config.resubscribe = true;
    let buffers = Buffers {
        rx: singleton!(: [u8; 1028] = [0; 1028]).unwrap(),
        tx: singleton!(: [u8; 512] = [0; 512]).unwrap(),
        scratch: singleton!(: [u8; 128] = [0; 128]).unwrap(),
        arena: singleton!(: [u8; 256] = [0; 256]).unwrap(),
        ack_batch: singleton!(: [u8; 512] = [0; 512]).unwrap(),
        publish_store: singleton!(: [u8; 4096] = [0; 4096]).unwrap(),
        publish_window: 32,
        bookmark_store: singleton!(: [u8; 64] = [0; 64]).unwrap(),
    };
    let session = buffers.session::<8, 2>(&session_config).unwrap();
    let client = singleton!(: AmpsClient = Client::new(session, EmbassyClock)).unwrap();

    let socket = TcpSocket::new(
        stack,
        singleton!(: [u8; 1024] = [0; 1024]).unwrap(),
        singleton!(: [u8; 1024] = [0; 1024]).unwrap(),
    );
    spawner.spawn(amps_task(client, TcpConnector { socket }).unwrap());
    spawner.spawn(sensor_task(client).unwrap());
}

#[entry]
fn main() -> ! {
    // Stand-in: on a board, `#[embassy_executor::main] async fn main(spawner: Spawner)`
    // (embassy-executor's `platform-cortex-m` and `executor-thread` features), the HAL's init
    // and its network device; here the raw executor on the firmware crate's virtual clock.
    let executor = singleton!(: Executor = Executor::new(core::ptr::null_mut())).unwrap();
    wiring(executor.spawner(), Loopback::new());
    let _ = vtime::run(executor, u64::MAX, || false);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
