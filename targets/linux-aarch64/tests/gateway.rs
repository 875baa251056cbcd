//! The gateway against a real amps-broker on loopback: every sample is persisted and lands
//! in the transaction log once; a store left by an interrupted run is replayed by the next.

use amps_telemetry_gateway::{Args, run};

fn broker() -> amps_broker::ServerHandle {
    amps_broker::ServerHandle::start_blocking(
        amps_broker::Config::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap()
}

fn args(uri: String, store: &std::path::Path, count: u64) -> Args {
    let argv = [
        uri,
        "--count".into(),
        count.to_string(),
        "--rate".into(),
        "0".into(),
        "--topic".into(),
        "events".into(),
        "--name".into(),
        "gw-test".into(),
        "--heartbeat".into(),
        "1".into(),
        "--flush-timeout".into(),
        "10".into(),
        "--store".into(),
        store.display().to_string(),
    ];
    Args::parse(argv, "test").unwrap()
}

/// The `seq` fields of the transaction log's `events` messages, by an EPOCH replay.
fn logged_seqs(uri: &str, expect: usize) -> Vec<u64> {
    let c = amps_std::Client::new("gw-audit").unwrap();
    c.connect(uri).unwrap();
    c.logon().unwrap();
    let stream = c
        .execute(&amps_std::Command::subscribe("events").bookmark("0"))
        .unwrap();
    let mut seqs = Vec::new();
    for m in stream {
        let m = m.unwrap();
        let text = String::from_utf8_lossy(m.data()).into_owned();
        let n: u64 = text
            .trim_start_matches(r#"{"seq":"#)
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        seqs.push(n);
        if seqs.len() >= expect {
            break;
        }
    }
    c.close().unwrap();
    seqs
}

#[test]
fn publishes_everything_and_flushes() {
    let b = broker();
    let uri = format!("tcp://{}/amps/json", b.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let s = run(&args(uri.clone(), dir.path(), 30)).unwrap();
    assert_eq!(s.published, 30);
    assert!(s.all_persisted(), "{s:?}");
    assert_eq!(s.recovered, 0);
    assert_eq!(logged_seqs(&uri, 30), (1..=30).collect::<Vec<_>>());
    b.shutdown();
}

#[test]
fn a_store_held_by_another_instance_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _held = amps_fs::FilePublishStore::open(dir.path(), "gw-test", Default::default()).unwrap();
    // No server is contacted: the store is opened first.
    let a = args("tcp://127.0.0.1:9/amps/json".into(), dir.path(), 1);
    let err = run(&a).unwrap_err();
    assert!(err.to_string().contains("publish store"), "{err}");
}

#[test]
fn a_store_left_by_an_interrupted_run_is_replayed_first() {
    use amps_core::store::PublishStore;
    let b = broker();
    let uri = format!("tcp://{}/amps/json", b.local_addr());
    let dir = tempfile::tempdir().unwrap();
    {
        // A previous run stored samples 101..=103 (sequences 1..=3) and died before the
        // server saw them.
        let mut store =
            amps_fs::FilePublishStore::open(dir.path(), "gw-test", Default::default()).unwrap();
        for (i, n) in (101..=103).enumerate() {
            let seq = i as u64 + 1;
            let payload = format!(r#"{{"seq":{n}}}"#);
            let frame = amps_core::codec::Command::publish("events", payload.as_bytes())
                .seq(seq)
                .ack(amps_core::codec::AckType::Persisted)
                .to_vec()
                .unwrap();
            store.store(seq, &frame).unwrap();
        }
    }
    let s = run(&args(uri.clone(), dir.path(), 2)).unwrap();
    assert_eq!(s.recovered, 3);
    assert!(s.all_persisted(), "{s:?}");
    assert_eq!(logged_seqs(&uri, 5), [101, 102, 103, 1, 2]);
    b.shutdown();
}
