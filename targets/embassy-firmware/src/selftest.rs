//! The self-test scenario: a telemetry publisher on amps-embassy (driver task + self-test
//! task sharing one `Client`), the responder task, and the virtual clock.
//!
//! Phases: log on and subscribe; 8 readings on a healthy link (persisted and delivered back);
//! the link is cut, 8 more go into the wire and are lost, heartbeat silence ends the
//! connection; 8 more while disconnected (reconnects refused, backoff); the link comes back:
//! reconnect, replay, all 24 persisted exactly once; `publish_flush`, `close`.

use core::cell::Cell;

use amps_core::codec::CommandKind;
use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectionState, Event, FixedStorage, HeartbeatConfig,
    Limits, PublishError,
};
use amps_embassy::{Buffers, Client, Driver, EmbassyClock, Options};
use amps_embassy_firmware::link::{Connector, Net};
use amps_embassy_firmware::{responder, telemetry};
use cortex_m::singleton;
use critical_section::Mutex;
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, with_deadline};

/// Readings per phase (3 phases: healthy link, cut link, disconnected).
pub const PER_PHASE: u32 = 8;
const TOPIC: &str = "telemetry";

type Storage = FixedStorage<8, 2>;
type AmpsClient = Client<NoopRawMutex, Storage, EmbassyClock>;

/// What the event handler and the driver saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Highest sequence the client saw persisted.
    pub persisted: u64,
    /// Deliveries of the telemetry subscription (the client's own readings, via the
    /// responder).
    pub deliveries: u32,
    /// Deliveries whose payload did not carry the expected next `seq`.
    pub out_of_order: u32,
    /// Logons that completed recovery.
    pub recoveries: u32,
    /// Connections lost.
    pub disconnects: u32,
    /// The subscription and its ack.
    sub: Option<CommandId>,
    sub_acked: bool,
    /// The final publish_flush and whether it completed.
    flush: Option<CommandId>,
    flushed: bool,
    next_delivery: u32,
    /// The driver returned (after `close`), with this many connect attempts.
    driver_done: bool,
    /// Connect attempts, from the driver's counters.
    pub connects: u32,
    connect_failures: u32,
}

/// Why the self-test failed (printed with `Debug` on the semihosting console).
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // the fields are read through `Debug` only
pub enum Failure {
    /// A step did not finish within its virtual-time limit.
    Timeout(&'static str, Report),
    /// A publish was refused.
    Publish(PublishError),
    /// A command was refused.
    Command(CommandError),
    /// A reading did not fit its buffer.
    Encode,
    /// The final checks (report, responder tally).
    Verdict(Report, responder::Tally),
}

static REPORT: Mutex<Cell<Report>> = Mutex::new(Cell::new(Report {
    persisted: 0,
    deliveries: 0,
    out_of_order: 0,
    recoveries: 0,
    disconnects: 0,
    sub: None,
    sub_acked: false,
    flush: None,
    flushed: false,
    next_delivery: 1,
    driver_done: false,
    connects: 0,
    connect_failures: 0,
}));
static OUTCOME: Mutex<Cell<Option<Result<Report, Failure>>>> = Mutex::new(Cell::new(None));
/// The report changed.
static CHANGED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn report() -> Report {
    critical_section::with(|cs| REPORT.borrow(cs).get())
}

fn update(f: impl FnOnce(&mut Report)) {
    critical_section::with(|cs| {
        let cell = REPORT.borrow(cs);
        let mut r = cell.get();
        f(&mut r);
        cell.set(r);
    });
    CHANGED.signal(());
}

/// Whether the self-test task finished.
pub fn finished() -> bool {
    critical_section::with(|cs| OUTCOME.borrow(cs).get().is_some())
}

/// Its outcome.
pub fn outcome() -> Option<Result<Report, Failure>> {
    critical_section::with(|cs| OUTCOME.borrow(cs).get())
}

/// The event handler: runs in the driver task, copies what the self-test checks.
fn on_event(event: Event<'_>) {
    update(|r| match event {
        Event::Persisted { up_to } => r.persisted = up_to,
        Event::Delivery(d) if Some(d.id) == r.sub && d.kind() == CommandKind::Publish => {
            r.deliveries += 1;
            match telemetry::seq_of(d.data()) {
                Some(s) if s == r.next_delivery => r.next_delivery += 1,
                _ => r.out_of_order += 1,
            }
        }
        Event::Completed { id, .. } if Some(id) == r.sub => r.sub_acked = true,
        Event::Completed { id, .. } if Some(id) == r.flush => r.flushed = true,
        Event::State(ConnectionState::Resubscribed) => r.recoveries += 1,
        Event::State(ConnectionState::Disconnected) => r.disconnects += 1,
        _ => {}
    });
}

#[embassy_executor::task]
async fn driver_task(client: &'static AmpsClient, net: &'static Net) {
    let mut driver: Driver<'static, _, _, _, _> =
        Driver::new(client, Connector(net), Options::new());
    let stats = driver.run(on_event).await;
    update(|r| {
        r.driver_done = true;
        r.connects = stats.connects;
        r.connect_failures = stats.connect_failures;
    });
}

#[embassy_executor::task]
async fn selftest_task(client: &'static AmpsClient, net: &'static Net) {
    let outcome = scenario(client, net).await;
    critical_section::with(|cs| OUTCOME.borrow(cs).set(Some(outcome)));
}

/// Build the client over static buffers and spawn its driver and the self-test.
pub fn spawn(spawner: Spawner, net: &'static Net) -> Result<(), &'static str> {
    // Heartbeats every second, exponential reconnect backoff, a 4 KiB / 32 message publish
    // window, frames up to 1 KiB: the same session as targets/bare-metal's.
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
    let missing = "static buffers";
    let buffers = Buffers {
        rx: singleton!(: [u8; 1028] = [0; 1028]).ok_or(missing)?,
        tx: singleton!(: [u8; 512] = [0; 512]).ok_or(missing)?,
        scratch: singleton!(: [u8; 128] = [0; 128]).ok_or(missing)?,
        arena: singleton!(: [u8; 128] = [0; 128]).ok_or(missing)?,
        ack_batch: &mut [], // no queue subscriptions: each ack, if any, goes out at once
        publish_store: singleton!(: [u8; 4096] = [0; 4096]).ok_or(missing)?,
        publish_window: 32,
        bookmark_store: singleton!(: [u8; 64] = [0; 64]).ok_or(missing)?,
    };
    let session = buffers
        .session::<8, 2>(&config)
        .map_err(|_| "session config")?;
    let client: &'static AmpsClient =
        singleton!(: AmpsClient = Client::new(session, EmbassyClock)).ok_or(missing)?;
    spawner.spawn(driver_task(client, net).map_err(|_| "spawn driver")?);
    spawner.spawn(selftest_task(client, net).map_err(|_| "spawn self-test")?);
    Ok(())
}

/// Wait (in virtual time) until `done` holds for the report.
async fn until(
    what: &'static str,
    limit: Duration,
    done: impl Fn(&Report) -> bool,
) -> Result<(), Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let r = report();
        if done(&r) {
            return Ok(());
        }
        if with_deadline(deadline, CHANGED.wait()).await.is_err() {
            return Err(Failure::Timeout(what, report()));
        }
    }
}

async fn publish(client: &AmpsClient, seq: u32) -> Result<(), Failure> {
    let mut buf = [0u8; 64];
    let n = telemetry::to_json(&telemetry::sample(seq), &mut buf).ok_or(Failure::Encode)?;
    let data = buf.get(..n).ok_or(Failure::Encode)?;
    // A full window waits for persisted acks (bounded by the phase's limits).
    match with_deadline(
        Instant::now() + Duration::from_secs(5),
        client.publish_wait(TOPIC, data),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failure::Publish(e)),
        Err(_) => Err(Failure::Timeout("publish", report())),
    }
}

async fn scenario(client: &AmpsClient, net: &'static Net) -> Result<Report, Failure> {
    let secs = Duration::from_secs;
    client.connect().await;
    until("logon", secs(5), |r| r.recoveries == 1).await?;
    let sub = client
        .subscribe(TOPIC, None)
        .await
        .map_err(Failure::Command)?;
    update(|r| r.sub = Some(sub));
    until("subscribe", secs(5), |r| r.sub_acked).await?;

    // Phase 1: a healthy link. Every reading is persisted and comes back as a delivery.
    for seq in 1..=PER_PHASE {
        publish(client, seq).await?;
    }
    until("phase 1 persisted", secs(5), |r| {
        r.persisted == u64::from(PER_PHASE) && r.deliveries == PER_PHASE
    })
    .await?;

    // Phase 2: the link is cut. Readings go into the wire and are lost; the publish store
    // keeps them. Heartbeat silence ends the connection.
    net.set_up(false);
    for seq in PER_PHASE + 1..=2 * PER_PHASE {
        publish(client, seq).await?;
    }
    until("link loss noticed", secs(30), |r| r.disconnects >= 1).await?;

    // Phase 3: still cut; readings only go into the store, reconnects are refused (the
    // verdict checks that some were).
    for seq in 2 * PER_PHASE + 1..=3 * PER_PHASE {
        publish(client, seq).await?;
    }
    // The link comes back: reconnect with backoff, log on, replay, re-subscribe.
    net.set_up(true);
    let total = u64::from(3 * PER_PHASE);
    until("recovery", secs(30), |r| {
        r.recoveries == 2 && r.persisted == total
    })
    .await?;

    // Clean shutdown: flush, then close.
    let flush = client
        .publish_flush(amps_core::Duration::from_secs(5))
        .await
        .map_err(Failure::Command)?;
    update(|r| r.flush = Some(flush));
    until("publish_flush", secs(5), |r| r.flushed).await?;
    let unpersisted = client.unpersisted_count().await;
    client.close().await;
    until("close", secs(5), |r| r.driver_done).await?;

    let r = report();
    let t = responder::tally();
    let ok = t.accepted == 3 * PER_PHASE
        && t.gaps == 0
        && t.errors == 0
        && t.logons == 2
        && r.deliveries == PER_PHASE
        && r.out_of_order == 0
        && r.connect_failures >= 1
        && unpersisted == 0;
    if ok { Ok(r) } else { Err(Failure::Verdict(r, t)) }
}
