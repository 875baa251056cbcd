//! Quickstart: publish telemetry, watch the hot readings with a content filter, and ask the
//! State of the World which sensors are in alarm, with the async client (amps-tokio).
//!
//! ```text
//! cargo run --release --example quickstart                 # in-process broker, 5000 readings
//! cargo run --release --example quickstart -- --count 200000
//! AMPS_URI=tcp://host:9007/amps/json cargo run --release --example quickstart
//! ```
//!
//! Without `AMPS_URI` it starts an in-process `amps-broker` with a SOW topic `telemetry` keyed
//! by `/sensor`; a server named by `AMPS_URI` needs the same topic.

use std::time::{Duration, Instant};

use amps_broker::config::SowTopic;
use amps_tokio::{Client, CommandKind};

const TOPIC: &str = "telemetry";
const SENSORS: u32 = 16;
/// Readings above this are "hot": the subscription's content filter selects them.
const HOT: u32 = 90;

struct Args {
    count: u32,
}

fn args() -> Result<Args, String> {
    let mut count = 5000;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" | "-n" => {
                let v = it.next().ok_or("--count needs a number")?;
                count = v.parse().map_err(|_| format!("bad --count `{v}`"))?;
            }
            "--help" | "-h" => {
                return Err(
                    "usage: quickstart [--count N]   (AMPS_URI=... to use a server)".into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(Args { count })
}

/// A deterministic reading: temperature 20..=109, alarm when above 100.
fn reading(i: u32) -> (u32, u32, &'static str) {
    let sensor = i % SENSORS;
    let temp = 20 + (i.wrapping_mul(2_654_435_761) >> 7) % 90;
    let status = if temp > 100 { "alarm" } else { "ok" };
    (sensor, temp, status)
}

/// An in-process broker unless `AMPS_URI` names a server; returns the URI and the broker.
async fn server() -> Result<(String, Option<amps_broker::ServerHandle>), String> {
    if let Ok(uri) = std::env::var("AMPS_URI") {
        return Ok((uri, None));
    }
    let mut config = amps_broker::Config::default();
    config.sow.push(SowTopic {
        topic: TOPIC.into(),
        key: vec!["/sensor".into()],
        logged: false,
        expiration: Default::default(),
        message_type: Default::default(),
    });
    let broker =
        amps_broker::Server::start(config, "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
            .await
            .map_err(|e| format!("starting the broker: {e}"))?;
    let uri = format!("tcp://127.0.0.1:{}/amps/json", broker.local_addr().port());
    println!("started an in-process amps-broker at {uri}");
    Ok((uri, Some(broker)))
}

async fn connect(uri: &str, name: &str) -> amps_tokio::Result<Client> {
    let client = Client::new(name)?;
    client.connect(uri).await?;
    client.logon().await?;
    Ok(client)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (uri, _broker) = server().await?;
    let publisher = connect(&uri, "quickstart-publisher").await?;
    let watcher = connect(&uri, "quickstart-watcher").await?;

    // 1. Subscribe with a content filter: only hot readings reach this stream.
    let filter = format!("/temp > {HOT}");
    let mut hot = watcher.subscribe(TOPIC, &filter).await?;
    let expected_hot = (0..args.count).filter(|&i| reading(i).1 > HOT).count();
    println!("subscribed to {TOPIC} with filter `{filter}`");
    // Consume in its own task, so the stream never fills while we publish.
    let consumer = tokio::spawn(async move {
        let mut got = 0usize;
        while got < expected_hot {
            match hot.recv().await {
                Some(Ok(m)) => {
                    got += 1;
                    if got <= 3 {
                        println!("  hot reading: {}", m.data_str().unwrap_or("<binary>"));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(got)
    });

    // 2. Publish telemetry, with a progress line for long runs.
    let started = Instant::now();
    let step = (args.count / 10).max(1);
    for i in 0..args.count {
        let (sensor, temp, status) = reading(i);
        let json =
            format!(r#"{{"sensor":"s{sensor:02}","seq":{i},"temp":{temp},"status":"{status}"}}"#);
        publisher.publish(TOPIC, json.as_bytes()).await?;
        if (i + 1) % step == 0 && args.count >= 10_000 {
            let rate = f64::from(i + 1) / started.elapsed().as_secs_f64();
            println!("  published {}/{} ({rate:.0} msg/s)", i + 1, args.count);
        }
    }
    publisher.flush().await?;
    println!(
        "published {} readings in {:.2?}",
        args.count,
        started.elapsed()
    );

    let got = tokio::time::timeout(Duration::from_secs(60), consumer)
        .await
        .map_err(|_| "timed out waiting for the hot readings")???;
    println!("received {got} hot readings (expected {expected_hot})");

    // 3. Query the State of the World: the latest reading of each sensor in alarm.
    let mut sow = watcher.sow(TOPIC, Some("/status = 'alarm'")).await?;
    let mut alarms = 0;
    while let Some(m) = sow.recv().await {
        let m = m?;
        if m.command() == CommandKind::Sow {
            alarms += 1;
            println!("  in alarm: {}", m.data_str().unwrap_or("<binary>"));
        }
    }
    println!("{alarms} of {SENSORS} sensors are in alarm");

    publisher.close().await?;
    watcher.close().await?;
    if got != expected_hot {
        return Err(format!("expected {expected_hot} hot readings, got {got}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("quickstart failed: {e}");
        std::process::exit(1);
    }
}
