//! What a built client tells about itself and what it lets change (the Python client's
//! getters): logon options changed after the build, the listeners it calls, its stores, an HA
//! client's server chooser and delay strategy (shared with the application).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use amps_e2e::*;
use amps_host::{
    ConnectionState as CS, DelayStrategy, Error, ErrorKind, FixedDelay, MemoryPublishStore,
};

/// The logon frames the client sends, as text.
fn logons<A: Api>(
    b: amps_host::ClientBuilder<A::C>,
) -> (amps_host::ClientBuilder<A::C>, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let b = b.transport_filter(move |dir, bytes| {
        let text = String::from_utf8_lossy(bytes);
        if dir == amps_host::Direction::Outgoing && text.contains(r#""c":"logon""#) {
            let _ = tx.send(text.into_owned());
        }
    });
    (b, rx)
}

fn logon_options_set_after_the_build_go_with_the_next_logon<A: Api>() {
    let b = broker();
    let (builder, sent) = logons::<A>(A::builder("setopts"));
    let c = A::build(builder);
    // Set before the first connection: the first logon carries them.
    c.set_logon_options("ack_conflation=10ms").unwrap();
    assert_eq!(c.logon_options().as_deref(), Some("ack_conflation=10ms"));
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    let first = recv(&sent, "the first logon");
    assert!(first.contains(r#""o":"ack_conflation=10ms""#), "{first}");
    // Changed while logged on: read back at once, sent with the next logon.
    c.set_logon_options("ack_conflation=20ms").unwrap();
    assert_eq!(c.logon_options().as_deref(), Some("ack_conflation=20ms"));
    // Too long: refused like the builder's, and the options in force are kept.
    let e = c.set_logon_options(&"x".repeat(129)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    assert_eq!(c.logon_options().as_deref(), Some("ack_conflation=20ms"));
    c.disconnect().unwrap();
    c.connect(&format!("{}?pretty", uri(&b))).unwrap();
    c.logon().unwrap();
    let second = recv(&sent, "the second logon");
    assert!(
        second.contains(r#""o":"ack_conflation=20ms,pretty""#),
        "{second}"
    );
    // Empty: none; the connection string's `pretty` is still added.
    c.set_logon_options("").unwrap();
    assert_eq!(c.logon_options(), None);
    c.disconnect().unwrap();
    c.connect(&format!("{}?pretty", uri(&b))).unwrap();
    c.logon().unwrap();
    let third = recv(&sent, "the third logon");
    assert!(third.contains(r#""o":"pretty""#), "{third}");
    c.close().unwrap();
    assert_eq!(
        c.set_logon_options("a").unwrap_err().kind(),
        ErrorKind::Disconnected,
        "a closed client refuses"
    );
}

fn an_ha_client_reconnects_with_the_logon_options_set_after_the_build<A: Api>() {
    let b = broker();
    let (tx, sent) = mpsc::channel();
    let c = A::build_ha(
        A::ha_builder("setopts-ha")
            .uris([uri(&b)])
            .delay_strategy(FixedDelay::new(Duration::from_millis(20)))
            .logon_options("ack_conflation=10ms")
            .transport_filter(move |dir, bytes| {
                let text = String::from_utf8_lossy(bytes);
                if dir == amps_host::Direction::Outgoing && text.contains(r#""c":"logon""#) {
                    let _ = tx.send(text.into_owned());
                }
            }),
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    let first = recv(&sent, "the first logon");
    assert!(first.contains(r#""o":"ack_conflation=10ms""#), "{first}");
    c.set_logon_options("ack_conflation=30ms").unwrap();
    until(&st, CS::Resubscribed);
    b.kill_connections();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    let again = recv(&sent, "the logon of the reconnect");
    assert!(again.contains(r#""o":"ack_conflation=30ms""#), "{again}");
    c.close().unwrap();
}

fn listener_getters_return_what_the_client_calls<A: Api>() {
    let b = broker();
    let c: A = client(&b, "listeners");
    assert!(c.exception_listener().is_none());
    assert!(c.disconnect_handler().is_none());
    let (tx, errors) = mpsc::channel();
    c.set_exception_listener(move |e: &Error| {
        let _ = tx.send(e.kind());
    });
    // The getter's listener is the one the client calls: a failing handler reaches it, and so
    // does a call through the getter.
    let listener = c.exception_listener().expect("a listener is set");
    c.execute_async(&amps_host::Command::subscribe("t"), |_m| {
        Err::<(), _>("the handler fails")
    })
    .unwrap();
    let p: A = client(&b, "listenersp");
    p.publish("t", r#"{"a":1}"#).unwrap();
    recv(&errors, "the handler's error");
    listener(&Error::new(ErrorKind::Usage, "through the getter"));
    assert_eq!(recv(&errors, "the getter's call"), ErrorKind::Usage);
    // A new listener can chain the one it replaces.
    let chained = AtomicU32::new(0);
    let chained = Arc::new(chained);
    let seen = chained.clone();
    let previous = c.exception_listener();
    c.set_exception_listener(move |e: &Error| {
        seen.fetch_add(1, Ordering::SeqCst);
        if let Some(p) = &previous {
            p(e);
        }
    });
    c.exception_listener().expect("the new one")(&Error::new(ErrorKind::Usage, "chained"));
    assert_eq!(recv(&errors, "the chained call"), ErrorKind::Usage);
    assert_eq!(chained.load(Ordering::SeqCst), 1);

    // The disconnect handler runs with the client it was set on.
    let (tx, names) = mpsc::channel();
    c.set_disconnect_handler(move |client: &A| {
        let _ = tx.send(client.name());
    })
    .unwrap();
    let handler = c.disconnect_handler().expect("a handler is set");
    handler();
    assert_eq!(recv(&names, "the handler through the getter"), c.name());
    b.kill_connections();
    assert_eq!(recv(&names, "the handler at a disconnect"), c.name());
    c.close().unwrap();
    p.close().unwrap();
}

fn store_getters_describe_the_stores<A: Api>() {
    let b = broker();
    let plain: A = client(&b, "nostores");
    assert_eq!(plain.publish_store(), None);
    assert_eq!(plain.bookmark_store(), None);
    plain.close().unwrap();

    let c = A::build(
        A::builder("pstore")
            .publish_store(MemoryPublishStore::new(vec![0; 1 << 20], 1_000))
            .error_on_publish_gap(true),
    );
    let info = c.publish_store().expect("a publish store");
    assert!(info.kind.contains("MemoryPublishStore"), "{info:?}");
    assert!(info.error_on_publish_gap);
    assert_eq!(info.unpersisted_count, 0);
    assert_eq!(c.bookmark_store(), None);
    c.connect(&uri(&b)).unwrap();
    c.logon().unwrap();
    // Acks withheld: the count the description gives is the client's.
    b.faults(|f| f.withhold_acks = true);
    c.publish("events", r#"{"n":1}"#).unwrap();
    c.publish("events", r#"{"n":2}"#).unwrap();
    assert_eq!(c.publish_store().unwrap().unpersisted_count, 2);
    assert_eq!(c.unpersisted_count(), 2);
    b.faults(|f| f.withhold_acks = false);
    c.close().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ha = A::build_ha(
        A::ha_builder("fstores")
            .file_backed(dir.path().join("pub"), dir.path().join("bookmarks"))
            .unwrap(),
    );
    let p = ha.publish_store().expect("a publish store");
    assert!(p.kind.contains("FilePublishStore"), "{p:?}");
    assert!(!p.error_on_publish_gap, "off by default");
    let bm = ha.bookmark_store().expect("a bookmark store");
    assert!(bm.kind.contains("FileBookmarkStore"), "{bm:?}");
    ha.close().unwrap();
    let mem = A::build_ha(A::ha_builder("mstores").memory_backed());
    assert!(
        mem.publish_store()
            .unwrap()
            .kind
            .contains("MemoryPublishStore")
    );
    assert!(
        mem.bookmark_store()
            .unwrap()
            .kind
            .contains("MemoryBookmarkStore")
    );
    mem.close().unwrap();
}

/// Counts what the client asks; gives up once told to.
struct Counting {
    asked: u32,
    give_up: bool,
}

impl DelayStrategy for Counting {
    fn next_delay(&mut self, _elapsed: Duration) -> Option<Duration> {
        self.asked += 1;
        (!self.give_up).then_some(Duration::from_millis(10))
    }
    fn reset(&mut self) {}
}

fn ha_getters_share_the_chooser_and_the_delay_strategy<A: Api>() {
    let b = broker();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://alice:s3cr3t@{}/amps/json", l.local_addr().unwrap())
    };
    let live = format!("tcp://alice:s3cr3t@{}/amps/json", b.local_addr());
    let c = A::build_ha(
        A::ha_builder("hagetters")
            .uris([dead.clone()])
            .connect_and_logon_timeout(GUARD)
            .delay_strategy(Counting {
                asked: 0,
                give_up: false,
            }),
    );
    let chooser = c.server_chooser().expect("built with uris");
    assert!(
        chooser.kind().contains("DefaultServerChooser"),
        "{chooser:?}"
    );
    let shown = chooser.current_uri().expect("the first server");
    assert!(
        shown.contains("alice") && !shown.contains("s3cr3t"),
        "{shown}"
    );
    assert!(!format!("{chooser:?}").contains("s3cr3t"));
    // A server added through the handle before connecting: the client fails over to it,
    // since the chooser it asks is this one.
    let added = chooser.with_as(|c: &mut amps_host::DefaultServerChooser<Vec<String>>| {
        c.uris_mut().push(live.clone());
        c.uris().len()
    });
    assert_eq!(added, Some(2));
    let delay = c.delay_strategy();
    assert!(delay.kind().contains("Counting"), "{delay:?}");
    assert_eq!(
        delay.with_as(|d: &mut FixedDelay| d.delay),
        None,
        "not a FixedDelay"
    );
    let st = states(&c);
    c.connect_and_logon().unwrap();
    until(&st, CS::Resubscribed);
    // The failure was reported to the shared chooser: it names the live server now.
    let now = chooser.current_uri().expect("a server");
    assert!(now.contains(&b.local_addr().to_string()), "{now}");
    // The client asked the very strategy the handle reaches (once, after the dead server).
    assert_eq!(delay.with_as(|d: &mut Counting| d.asked), Some(1));
    b.kill_connections();
    until(&st, CS::Disconnected);
    until(&st, CS::Resubscribed);
    assert_eq!(delay.with_as(|d: &mut Counting| d.asked), Some(2));
    // A change through the handle applies from the next attempt: this one gives up.
    delay.with_as(|d: &mut Counting| d.give_up = true).unwrap();
    b.kill_connections();
    until(&st, CS::Shutdown);
    assert_eq!(delay.with_as(|d: &mut Counting| d.asked), Some(3));
    c.close().unwrap();
    let none = A::build_ha(A::ha_builder("nochooser"));
    assert!(none.server_chooser().is_none());
    none.close().unwrap();
}

suite!(
    logon_options_set_after_the_build_go_with_the_next_logon,
    an_ha_client_reconnects_with_the_logon_options_set_after_the_build,
    listener_getters_return_what_the_client_calls,
    store_getters_describe_the_stores,
    ha_getters_share_the_chooser_and_the_delay_strategy,
);
