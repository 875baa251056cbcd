//! Queue consumption (issue 6 item 1): `message.ack()` batched by the client, auto-ack when
//! the next message is taken, cancel when a handler fails, and expire.

mod common;
use amps_tokio::{AckHow, Client, ClientEvent, Command, StreamOptions};
use common::*;

async fn consumer(b: &amps_broker::ServerHandle, name: &str, batch: u32, auto: bool) -> Client {
    let c = Client::builder(name)
        .ack_batch_size(batch)
        .auto_ack(auto)
        .build()
        .unwrap();
    within(c.connect(&uri(b))).await.unwrap();
    within(c.logon()).await.unwrap();
    c
}

async fn fill(b: &amps_broker::ServerHandle, n: usize) {
    let p = client(b, "producer").await;
    for i in 0..n {
        p.publish("jobs", format!(r#"{{"job":{i}}}"#).as_bytes())
            .await
            .unwrap();
    }
    within(p.flush()).await.unwrap();
}

/// Messages left in the queue `jobs` (available or leased). `inspect` blocks the calling
/// thread until the engine task answers, so step out of the runtime's way.
fn depth(b: &amps_broker::ServerHandle) -> usize {
    tokio::task::block_in_place(|| b.inspect(|e| e.queue_depth("jobs")))
        .flatten()
        .unwrap_or(usize::MAX)
}

/// Wait until the queue is empty.
async fn drained(b: &amps_broker::ServerHandle) {
    within(async {
        while depth(b) != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_batched_and_drain_the_queue() {
    let b = broker().await;
    fill(&b, 10).await;
    let c = consumer(&b, "w", 4, false).await;
    let mut s = within(c.execute(Command::subscribe("jobs").options("max_backlog=10")))
        .await
        .unwrap();
    for _ in 0..10 {
        let m = next(&mut s).await;
        assert!(m.is_queue_message());
        m.ack();
        m.ack(); // at most once per message
    }
    // Batches are capped by the backlog the broker granted (its queue allows 2), so every
    // ack went out without waiting for the ack timeout.
    drained(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_and_cancel_on_handler_failure() {
    let b = broker().await;
    fill(&b, 4).await;
    let c = consumer(&b, "auto", 1, true).await;
    let mut events = c.events();
    let s = within(c.execute(Command::subscribe("jobs").options("max_backlog=2")))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let worker = tokio::spawn(async move {
        s.process(|m| {
            let body = text(m);
            seen.push(body.clone());
            let fail =
                body.contains("\"job\":1}") && seen.iter().filter(|b| **b == body).count() == 1;
            async move {
                if fail {
                    Err("job 1 failed once")
                } else {
                    Ok(())
                }
            }
        })
        .await
    });
    let e = wait_event(&mut events, |e| matches!(e, ClientEvent::HandlerError(_))).await;
    assert!(matches!(e, ClientEvent::HandlerError(t) if t.contains("job 1")));
    // The cancelled job comes back and is processed; then the queue is empty.
    drained(&b).await;
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_and_auto_ack_on_next() {
    let b = broker().await;
    fill(&b, 3).await;
    let c = consumer(&b, "x", 1, false).await;
    let opts = StreamOptions {
        auto_ack: Some(true),
        ..StreamOptions::default()
    };
    let mut s = within(c.execute_with(Command::subscribe("jobs").options("max_backlog=3"), opts))
        .await
        .unwrap();
    let first = next(&mut s).await;
    first.ack_with(AckHow::Expire);
    let _second = next(&mut s).await; // auto-acked when the third is taken
    let _third = next(&mut s).await;
    drop(s); // the third is auto-acked when the stream ends
    within(c.flush()).await.unwrap();
    drained(&b).await;
}
