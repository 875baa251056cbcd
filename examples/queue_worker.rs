//! A queue worker with the blocking client (amps-std; user guide: "Using queues"): a
//! subscription with a backlog, auto-ack when the handler returns (a failing handler returns
//! its message to the queue), and acks batched by size and by time.
//!
//! ```text
//! cargo run -p amps-examples --example queue_worker
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example queue_worker
//! ```
//!
//! Needs a queue `jobs` (the in-process broker allows 10 unacknowledged messages per
//! subscription).

use std::sync::mpsc;
use std::time::Duration;

use amps_examples::{client_name, server};
use amps_std::{Client, Command};

const JOBS: u32 = 30;

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = amps_broker::Config::default();
    config.queues[0].max_backlog = 10;
    let server = server(config)?;

    // Auto-ack; three acks per sow_delete, or whatever waited 100 ms (a batch smaller than the
    // backlog).
    let worker = Client::builder(client_name("worker"))
        .auto_ack(true)
        .ack_batch_size(3)
        .ack_timeout(Duration::from_millis(100))
        .build()?;
    worker.connect(&server.uri)?;
    worker.logon()?;
    let (tx, rx) = mpsc::channel();
    let mut failed_once = false;
    worker.execute_async(
        &Command::subscribe("jobs").options("max_backlog=10"),
        move |m| -> Result<(), String> {
            let job = String::from_utf8_lossy(m.data()).into_owned();
            if job.contains(r#""job":7,"#) && !failed_once {
                failed_once = true;
                println!("  job 7 failed: back to the queue");
                return Err("transient failure".into());
            }
            let _ = tx.send(job);
            Ok(())
        },
    )?;
    println!("worker subscribed to `jobs` (max_backlog=10, auto-ack, batches of 3)");

    let producer = Client::new(client_name("producer"))?;
    producer.connect(&server.uri)?;
    producer.logon()?;
    for i in 0..JOBS {
        producer.publish(
            "jobs",
            format!(r#"{{"job":{i},"work":"resize image {i}"}}"#),
        )?;
    }
    println!("queued {JOBS} jobs");

    for n in 1..=JOBS {
        let job = rx.recv_timeout(Duration::from_secs(10))?;
        if n <= 3 || n == JOBS {
            println!("  done {n:>2}: {job}");
        }
    }
    println!("all {JOBS} jobs done");
    if let Some(b) = server.broker() {
        // The last batch goes out at the ack timeout: flush until the server processed it.
        let started = std::time::Instant::now();
        let mut left = usize::MAX;
        while left != 0 && started.elapsed() < Duration::from_secs(10) {
            worker.flush()?;
            left = b.inspect(|e| e.queue_depth("jobs")).flatten().unwrap_or(0);
        }
        println!("messages left in the queue: {left}");
        if left != 0 {
            return Err(format!("{left} messages were never acknowledged").into());
        }
    }
    worker.close()?;
    producer.close()?;
    Ok(())
}
