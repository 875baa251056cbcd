//! The HA client: connect_and_logon with a server chooser, delay strategies and giving up,
//! the recovery states in order, resubscription (handlers and streams), failover between two
//! brokers, a broker killed mid-publish with nothing lost, bookmark subscriptions resumed
//! from the bookmark store, retry_on_disconnect, file-backed stores across a restart of the
//! client, a broker restart, logons dropped or unanswered, flushes cut by a disconnect.

use std::sync::mpsc;
use std::time::Duration;

use amps_e2e::*;
use amps_host::{
    ClientBuilder, Command, ConnectionState as CS, DefaultServerChooser, ErrorKind,
    ExponentialDelay, FixedDelay, bookmark,
};

fn fixed(ms: u64) -> FixedDelay {
    FixedDelay::new(Duration::from_millis(ms))
}

fn ha<A: Api>(prefix: &str, uris: Vec<String>, memory: bool) -> ClientBuilder<A::H> {
    let b = A::ha_builder(prefix).uris(uris).delay_strategy(fixed(50));
    if memory { b.memory_backed() } else { b }
}

const RECOVERY: [CS; 5] = [
    CS::Connected,
    CS::LoggedOn,
    CS::HeartbeatInitiated,
    CS::PublishReplayed,
    CS::Resubscribed,
];

fn recovery_states_in_order_and_subscriptions_come_back<A: Api>() {
    let b = broker();
    let c = A::build_ha(
        ha::<A>("ha", vec![uri(&b)], true)
            .heartbeat(Duration::from_secs(5), Duration::from_secs(10)),
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    for s in RECOVERY {
        assert_eq!(recv(&st, "recovery state"), s);
    }
    let (tx, rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("ticks"), move |m| {
        let _ = tx.send(text(m));
    })
    .unwrap();
    let mut stream = c.subscribe("ticks", None).unwrap();
    let p: A = client(&b, "hap");
    p.publish("ticks", "before").unwrap();
    assert_eq!(recv(&rx, "before"), "before");
    assert_eq!(text(&stream.next_msg()), "before");
    b.kill_connections();
    assert_eq!(recv(&st, "Disconnected"), CS::Disconnected);
    for s in RECOVERY {
        assert_eq!(recv(&st, "recovery state after reconnect"), s);
    }
    // Resubscribed means the subscriptions were sent again; a flush after them returns once
    // the server has them.
    c.flush().unwrap();
    let p: A = client(&b, "hap2");
    p.publish("ticks", "after").unwrap();
    assert_eq!(recv(&rx, "after"), "after");
    assert_eq!(
        text(&stream.next_msg()),
        "after",
        "a stream stays open across the outage"
    );
    c.close().unwrap();
    assert_eq!(recv(&st, "Disconnected at close"), CS::Disconnected);
    assert_eq!(recv(&st, "Shutdown"), CS::Shutdown);
}

fn failover_to_the_second_broker<A: Api>() {
    let a = broker();
    let b = broker();
    let c = A::build_ha(ha::<A>("fo", vec![uri(&a), uri(&b)], true));
    let st = states(&c);
    c.connect_and_logon().unwrap();
    let (tx, rx) = mpsc::channel();
    c.execute_async(&Command::subscribe("alerts"), move |m| {
        let _ = tx.send(text(m));
    })
    .unwrap();
    c.publish("alerts", "to-a").unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(recv(&rx, "own publish on a"), "to-a");
    a.shutdown();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    c.flush().unwrap();
    let p: A = client(&b, "fop");
    p.publish("alerts", "on-b").unwrap();
    assert_eq!(recv(&rx, "message from b"), "on-b");
    c.publish("alerts", "to-b").unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(recv(&rx, "own publish on b"), "to-b");
    c.close().unwrap();
}

fn a_broker_killed_mid_publish_loses_nothing<A: Api>() {
    const N: usize = 20_000;
    let b = broker();
    let c = A::build_ha(ha::<A>("mid", vec![uri(&b)], true));
    c.connect_and_logon().unwrap();
    // The connection dies twice while the publishes stream out.
    b.faults(|f| f.close_after(N as u64 / 3));
    let st = states(&c);
    let publisher = {
        let c = c.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                c.publish("events", format!(r#"{{"n":{i}}}"#)).unwrap();
            }
        })
    };
    until(&st, CS::Disconnected);
    b.faults(|f| f.close_after(N as u64 / 3));
    until(&st, CS::Disconnected);
    publisher.join().unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    // Replay the log: every message exactly once, in order.
    let r: A = client(&b, "midr");
    let mut s = r
        .bookmark_subscribe("events", bookmark::EPOCH, None, None)
        .unwrap();
    for i in 0..N {
        assert_eq!(text(&s.next_msg()), format!(r#"{{"n":{i}}}"#));
    }
    r.flush().unwrap();
    assert!(s.is_empty(), "no duplicate");
    c.close().unwrap();
    r.close().unwrap();
}

fn bookmark_subscriptions_resume_from_the_bookmark_store<A: Api>() {
    let b = broker();
    let (sub_tx, sub_rx) = mpsc::channel();
    let c = A::build_ha(
        ha::<A>("bmr", vec![uri(&b)], true).transport_filter(move |dir, bytes| {
            let text = String::from_utf8_lossy(bytes);
            if dir == amps_host::Direction::Outgoing && text.contains(r#""c":"subscribe""#) {
                let _ = sub_tx.send(text.into_owned());
            }
        }),
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    let (tx, rx) = mpsc::channel();
    let cmd = Command::subscribe("events")
        .bookmark(bookmark::MOST_RECENT)
        .sub_id("resume-1");
    c.execute_async(&cmd, move |m| {
        m.discard().unwrap();
        let _ = tx.send((text(m), m.bookmark().unwrap().to_owned()));
    })
    .unwrap();
    // MOST_RECENT never goes on the wire: with an empty store it is EPOCH.
    assert!(recv(&sub_rx, "first subscribe").contains(r#""bm":"0""#));
    let p: A = client(&b, "bmrp");
    for i in 0..5 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    let mut last = String::new();
    for i in 0..5 {
        let (data, bm) = recv(&rx, "live");
        assert_eq!(data, format!("e{i}"));
        last = bm;
    }
    c.flush().unwrap();
    b.kill_connections();
    let p: A = client(&b, "bmrp2");
    for i in 5..10 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    until(&st, CS::Resubscribed);
    // Re-entered from the last discarded message, and exactly what was missed arrives.
    let again = recv(&sub_rx, "resubscribe");
    assert!(again.contains(&format!(r#""bm":"{last}""#)), "{again}");
    for i in 5..10 {
        assert_eq!(recv(&rx, "resumed").0, format!("e{i}"));
    }
    p.flush().unwrap();
    c.flush().unwrap();
    quiet(&rx, Duration::from_millis(50), "duplicate after resume");
    c.close().unwrap();
}

fn retry_on_disconnect_waits_for_the_reconnect_or_fails_fast<A: Api>() {
    let b = broker();
    let c = A::build_ha(ha::<A>("retry", vec![uri(&b)], false).delay_strategy(fixed(300)));
    let st = states(&c);
    c.connect_and_logon().unwrap();
    b.kill_connections();
    until(&st, CS::Disconnected);
    // Default: the command waits for the new connection.
    c.flush().unwrap();
    assert!(c.is_logged_on());
    c.set_retry_on_disconnect(false);
    // The broker goes away: the client keeps trying, and meanwhile commands fail at once.
    b.shutdown();
    until(&st, CS::Disconnected);
    assert_eq!(c.flush().unwrap_err().kind(), ErrorKind::Disconnected);
    assert_eq!(
        c.publish("t", "x").unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    c.close().unwrap();
}

fn delay_strategy_gives_up_and_logon_failures_are_final<A: Api>() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}/amps/json", l.local_addr().unwrap())
    };
    let c = A::build_ha(
        ha::<A>("giveup", vec![dead], false).delay_strategy(
            ExponentialDelay::new(Duration::from_millis(20), 2.0, Duration::from_millis(100))
                .max_retry_time(Duration::from_millis(300)),
        ),
    );
    let st = states(&c);
    let t0 = std::time::Instant::now();
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let seen: Vec<_> = std::iter::from_fn(|| st.recv_timeout(Duration::from_secs(5)).ok())
        .take_while(|s| *s != CS::Shutdown)
        .collect();
    assert!(!seen.contains(&CS::LoggedOn));
    c.close().unwrap();

    let b = broker();
    b.faults(|f| f.refuse_logons = Some("authentication failed".into()));
    let c = A::build_ha(ha::<A>("refused", vec![uri(&b)], false));
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Authentication
    );
    c.close().unwrap();

    // A chooser without servers.
    let c = A::build_ha(
        A::ha_builder("empty").server_chooser(DefaultServerChooser::new(Vec::<String>::new())),
    );
    assert_eq!(
        c.connect_and_logon().unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    c.close().unwrap();
    // No chooser at all.
    let c = A::build_ha(A::ha_builder("nochooser"));
    assert_eq!(c.connect_and_logon().unwrap_err().kind(), ErrorKind::Usage);
    c.close().unwrap();
}

fn a_disconnect_handler_replaces_the_automatic_reconnect<A: Api>() {
    let b = broker();
    let c = A::build_ha(ha::<A>("dhha", vec![uri(&b)], false));
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    let (tx, rx) = mpsc::channel();
    c.set_disconnect_handler(move |_| {
        let _ = tx.send(());
    })
    .unwrap();
    b.kill_connections();
    recv(&rx, "disconnect handler");
    assert_eq!(recv(&st, "Disconnected"), CS::Disconnected);
    let after: Vec<_> =
        std::iter::from_fn(|| st.recv_timeout(Duration::from_millis(300)).ok()).collect();
    assert!(
        !after.contains(&CS::LoggedOn),
        "no automatic reconnect: {after:?}"
    );
    c.close().unwrap();
}

fn file_backed_stores_survive_a_restart_of_the_client<A: Api>() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let (pdir, bfile) = (dir.path().join("publish"), dir.path().join("bookmarks.log"));
    let me = name("file");
    let builder = || {
        ClientBuilder::<A::H>::new(me.clone())
            .uris([uri(&b)])
            .delay_strategy(fixed(60_000))
            .file_backed(&pdir, &bfile)
    };
    // First run: a bookmark subscription processes all but its last message; then the
    // connection drops and the client publishes into its store before it goes away.
    let c = A::build_ha(builder().unwrap());
    let st = states(&c);
    c.connect_and_logon().unwrap();
    let (tx, rx) = mpsc::channel();
    let cmd = Command::subscribe("events")
        .bookmark(bookmark::MOST_RECENT)
        .sub_id("fsub");
    c.execute_async(&cmd, move |m| {
        if m.data() != b"p2" {
            m.discard().unwrap();
        }
        let _ = tx.send(text(m));
    })
    .unwrap();
    let p: A = client(&b, "filep");
    for i in 0..3 {
        p.publish("events", format!("p{i}")).unwrap();
    }
    for i in 0..3 {
        assert_eq!(recv(&rx, "first run"), format!("p{i}"));
    }
    b.kill_connections();
    until(&st, CS::Disconnected);
    for i in 0..50 {
        c.publish("events", format!("u{i}")).unwrap();
    }
    let t0 = std::time::Instant::now();
    while c.unpersisted_count() != 50 {
        assert!(t0.elapsed() < GUARD, "{} stored", c.unpersisted_count());
        std::thread::yield_now();
    }
    c.close().unwrap();

    // Second run: the same name and files.
    let c = A::build_ha(builder().unwrap());
    assert!(
        builder().is_err_and(|e| e.kind() == ErrorKind::Store),
        "a store is used by one client at a time"
    );
    assert_eq!(c.unpersisted_count(), 50, "recovered from the file");
    c.connect_and_logon().unwrap();
    c.publish_flush(GUARD).unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    let (tx, rx) = mpsc::channel();
    c.execute_async(&cmd, move |m| {
        m.discard().unwrap();
        let _ = tx.send(text(m));
    })
    .unwrap();
    // Resumed after the last discarded message: p2 again, then the replayed publishes.
    assert_eq!(recv(&rx, "resumed"), "p2");
    for i in 0..50 {
        assert_eq!(recv(&rx, "replayed publish"), format!("u{i}"));
    }
    c.flush().unwrap();
    quiet(&rx, Duration::from_millis(50), "duplicate");
    c.prune().unwrap();
    c.close().unwrap();
    p.close().unwrap();
}

fn a_broker_restart_keeps_state_and_the_client_carries_on<A: Api>() {
    let b = broker();
    let c = A::build_ha(ha::<A>("restart", vec![uri(&b)], true));
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    c.publish("orders", r#"{"id":"R1","qty":1}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    b.restart();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    // The SOW survived the restart; publishing continues numbered after the server's last.
    c.publish("orders", r#"{"id":"R2","qty":2}"#).unwrap();
    c.publish_flush(GUARD).unwrap();
    let mut got = texts(&sow_records(&c, "orders", None));
    got.sort();
    assert_eq!(got, [r#"{"id":"R1","qty":1}"#, r#"{"id":"R2","qty":2}"#]);
    c.close().unwrap();
}

fn a_logon_that_is_dropped_or_unanswered_is_retried<A: Api>() {
    // The connection closes while the logon is processed: the client reconnects.
    let b = broker();
    b.faults(|f| f.close_after(1));
    let c = A::build_ha(ha::<A>("droplogon", vec![uri(&b)], false));
    let st = states(&c);
    c.connect_and_logon().unwrap();
    assert!(c.is_logged_on());
    until(&st, CS::Disconnected);
    c.close().unwrap();

    // The logon ack comes too late: the attempt times out and a new one succeeds.
    let b = broker();
    b.faults(|f| f.delay_acks = Some(amps_core::Duration::from_millis(2_000)));
    let c = A::build_ha(
        ha::<A>("slowlogon", vec![uri(&b)], false).logon_timeout(Duration::from_millis(300)),
    );
    let st = states(&c);
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.connect_and_logon())
    };
    until(&st, CS::Disconnected);
    b.faults(|f| f.delay_acks = None);
    waiter.join().unwrap().unwrap();
    assert!(c.is_logged_on());
    c.close().unwrap();
}

fn a_flush_cut_by_a_disconnect_completes_after_the_reconnect<A: Api>() {
    let b = broker();
    let (flush_tx, flush_rx) = mpsc::channel();
    let c = A::build_ha(ha::<A>("reflush", vec![uri(&b)], true).transport_filter(
        move |dir, bytes| {
            if dir == amps_host::Direction::Outgoing
                && String::from_utf8_lossy(bytes).contains(r#""c":"flush""#)
            {
                let _ = flush_tx.send(());
            }
        },
    ));
    c.connect_and_logon().unwrap();
    for i in 0..100 {
        c.publish("events", format!("f{i}")).unwrap();
    }
    // The broker holds its acks: the flush is in flight when the connection drops.
    b.faults(|f| f.delay_acks = Some(amps_core::Duration::from_secs(60)));
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.publish_flush(GUARD))
    };
    recv(&flush_rx, "flush sent");
    b.faults(|f| f.delay_acks = None);
    b.kill_connections();
    // Asked again after the reconnect, unless the logon ack already showed every publish
    // persisted (then the store is empty and the flush is done without a round trip).
    waiter.join().unwrap().unwrap();
    assert_eq!(c.unpersisted_count(), 0);
    c.close().unwrap();
}

/// Records what the client asks of it; always 10 ms.
struct Recording(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

impl amps_host::DelayStrategy for Recording {
    fn next_delay(&mut self, _elapsed: Duration) -> Option<Duration> {
        self.0.lock().unwrap().push("delay");
        Some(Duration::from_millis(10))
    }
    fn reset(&mut self) {
        self.0.lock().unwrap().push("reset");
    }
}

fn a_custom_delay_strategy_resets_only_after_a_stable_connection<A: Api>() {
    let b = broker();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = A::build_ha(
        A::ha_builder("stable")
            .uris([uri(&b)])
            .delay_strategy(Recording(log.clone()))
            .stability_window(Duration::from_millis(300)),
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    log.lock().unwrap().clear();
    // Kicked at once, three times: the strategy is asked each time and never reset.
    for _ in 0..3 {
        b.kill_connections();
        until(&st, CS::Disconnected);
        until(&st, CS::Resubscribed);
    }
    assert_eq!(*log.lock().unwrap(), ["delay"; 3]);
    // Up longer than the window: the next outage starts over.
    quiet(
        &st,
        Duration::from_millis(400),
        "state change while connected",
    );
    b.kill_connections();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    assert_eq!(log.lock().unwrap()[3..], ["reset", "delay"]);
    c.close().unwrap();
}

fn plain_streams_end_with_an_error_after_draining<A: Api>() {
    let b = broker();
    let c: A = client(&b, "plainend");
    let p: A = client(&b, "plainendp");
    let mut s = c.subscribe("t", None).unwrap();
    p.publish("t", "one").unwrap();
    p.flush().unwrap();
    assert_eq!(text(&s.next_msg()), "one");
    b.kill_connections();
    let e = s.next_item().expect("an error").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(s.next_item().is_none());
    c.close().unwrap();
}

/// Secrets per server, from the chooser: a server needs its own password.
struct PerServer {
    uris: Vec<String>,
    secrets: Vec<Secret>,
    current: usize,
}

/// An authenticator holding one server's password, logging its calls.
struct Secret(&'static str, std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl amps_host::Authenticator for Secret {
    fn authenticate(
        &mut self,
        user: &str,
        _: &str,
        out: &mut dyn std::fmt::Write,
    ) -> std::fmt::Result {
        self.1.lock().unwrap().push(format!("{user}@{}", self.0));
        out.write_str(self.0)
    }
    fn retry(&mut self, _: &str, token: &str, out: &mut dyn std::fmt::Write) -> std::fmt::Result {
        out.write_str(token)
    }
}

impl amps_host::ServerChooser for PerServer {
    fn current_uri(&self) -> Option<&str> {
        self.uris.get(self.current).map(String::as_str)
    }
    fn report_success(&mut self, _: &str) {}
    fn report_failure(&mut self, _: &str, _: &dyn std::fmt::Display) {
        self.current = (self.current + 1) % self.uris.len();
    }
    fn current_authenticator(&mut self) -> Option<&mut dyn amps_host::Authenticator> {
        self.secrets
            .get_mut(self.current)
            .map(|s| s as &mut dyn amps_host::Authenticator)
    }
}

fn the_chooser_supplies_each_servers_authenticator<A: Api>() {
    use amps_broker::config::User;
    let users = |pw: &str| amps_broker::Config {
        users: vec![User {
            name: "svc".into(),
            password: pw.into(),
            challenge: false,
        }],
        ..config()
    };
    let (first, second) = (
        broker_with(users("first-pw")),
        broker_with(users("second-pw")),
    );
    let at = |b: &amps_broker::ServerHandle| format!("tcp://svc@{}/amps/json", b.local_addr());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let chooser = PerServer {
        uris: vec![at(&first), at(&second)],
        secrets: vec![
            Secret("first-pw", log.clone()),
            Secret("second-pw", log.clone()),
        ],
        current: 0,
    };
    let c = A::build_ha(
        A::ha_builder("per-server")
            .server_chooser(chooser)
            .delay_strategy(fixed(20)),
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    // The first server is lost: the second one's own password gets the client back on.
    first.shutdown();
    until(&st, CS::Disconnected);
    until(&st, CS::LoggedOn);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.first().map(String::as_str),
        Some("svc@first-pw"),
        "{log:?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("svc@second-pw"),
        "{log:?}"
    );
    c.close().unwrap();
}

/// The bookmark store's resume point can be read: empty before anything was discarded, then
/// the bookmark of the last message discarded in order.
fn most_recent_names_the_resume_point<A: Api>() {
    use amps_host::MemoryBookmarkStore;
    let b = broker_with(config());
    let store = MemoryBookmarkStore::<_>::new(vec![0; 1 << 16]);
    let c = A::build(A::builder("recent").bookmark_store(store));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let p: A = client(&b, "recent-pub");
    let mut s = c
        .bookmark_subscribe("events", bookmark::MOST_RECENT, None, Some("r1"))
        .unwrap();
    assert_eq!(c.most_recent("r1").unwrap(), "", "nothing discarded yet");
    for i in 0..3 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    let mut last = String::new();
    for i in 0..3 {
        let m = s.next_msg();
        assert_eq!(text(&m), format!("e{i}"));
        last = m
            .bookmark()
            .expect("a replayable delivery has a bookmark")
            .to_owned();
        m.discard().unwrap();
    }
    // Discards reach the store through the driver: a flush orders after them.
    c.flush().unwrap();
    assert_eq!(c.most_recent("r1").unwrap(), last);
    assert_eq!(c.most_recent("unknown").unwrap(), "");
    c.close().unwrap();
    p.close().unwrap();
}

fn recovery_points_in_a_sow_topic_resume_a_subscription_with_a_new_store<A: Api>() {
    use amps_broker::config::SowTopic;
    use amps_host::{MemoryBookmarkStore, RecoveryPointStore, SowRecoveryPointAdapter};
    let mut cfg = config();
    cfg.sow.push(SowTopic {
        topic: amps_host::RECOVERY_TOPIC.into(),
        key: vec!["/clientName".into(), "/subId".into()],
        logged: false,
        expiration: Default::default(),
        message_type: Default::default(),
    });
    let b = broker_with(cfg);
    // The adapter's own client: never the one whose points it keeps.
    let keeper: A = client(&b, "keeper");
    let me = name("tracked");
    let build = || {
        let adapter = SowRecoveryPointAdapter::new(&keeper, &me).unwrap();
        // A memory store: nothing survives the client but what the adapter keeps.
        let store =
            RecoveryPointStore::new(MemoryBookmarkStore::<_>::new(vec![0; 1 << 16]), adapter)
                .unwrap();
        let c = A::build(ClientBuilder::<A::C>::new(me.clone()).bookmark_store(store));
        c.connect(&uri(&b)).unwrap();
        c.logon().unwrap();
        c
    };
    let p: A = client(&b, "rp-pub");
    let c = build();
    let mut s = c
        .bookmark_subscribe("events", bookmark::MOST_RECENT, None, Some("rp"))
        .unwrap();
    for i in 0..3 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    for i in 0..3 {
        let m = s.next_msg();
        assert_eq!(text(&m), format!("e{i}"));
        m.discard().unwrap();
    }
    // The store has offered the last point to the adapter; the server has it.
    c.sync_stores().unwrap();
    keeper.flush().unwrap();
    c.close().unwrap();
    let saved = sow_records(&keeper, amps_host::RECOVERY_TOPIC, None);
    assert_eq!(saved.len(), 1, "one record per subscription");
    assert!(
        text(&saved[0]).contains(r#""subId":"rp""#),
        "{}",
        text(&saved[0])
    );
    for i in 3..5 {
        p.publish("events", format!("e{i}")).unwrap();
    }
    p.flush().unwrap();
    // A new process: an empty store, the points recovered from the topic.
    let c = build();
    let mut s = c
        .bookmark_subscribe("events", bookmark::MOST_RECENT, None, Some("rp"))
        .unwrap();
    assert_eq!(
        text(&s.next_msg()),
        "e3",
        "resumed after the last discarded message"
    );
    assert_eq!(text(&s.next_msg()), "e4");
    c.close().unwrap();
    keeper.close().unwrap();
    p.close().unwrap();
}

suite!(
    most_recent_names_the_resume_point,
    recovery_points_in_a_sow_topic_resume_a_subscription_with_a_new_store,
    the_chooser_supplies_each_servers_authenticator,
    recovery_states_in_order_and_subscriptions_come_back,
    failover_to_the_second_broker,
    a_broker_killed_mid_publish_loses_nothing,
    bookmark_subscriptions_resume_from_the_bookmark_store,
    retry_on_disconnect_waits_for_the_reconnect_or_fails_fast,
    delay_strategy_gives_up_and_logon_failures_are_final,
    a_disconnect_handler_replaces_the_automatic_reconnect,
    file_backed_stores_survive_a_restart_of_the_client,
    a_broker_restart_keeps_state_and_the_client_carries_on,
    a_logon_that_is_dropped_or_unanswered_is_retried,
    a_flush_cut_by_a_disconnect_completes_after_the_reconnect,
    plain_streams_end_with_an_error_after_draining,
    a_custom_delay_strategy_resets_only_after_a_stable_connection,
);
