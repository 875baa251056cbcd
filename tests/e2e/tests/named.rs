//! The named commands with what the Python client takes as keyword arguments ([`Params`]), and
//! their handler forms.

use std::sync::mpsc;
use std::time::Duration;

use amps_e2e::*;
use amps_host::{CommandKind, ErrorKind, Params};

fn publish_orders<A: Api>(c: &A, n: u32) {
    for i in 0..n {
        c.publish("orders", format!(r#"{{"id":{i},"qty":{i}}}"#))
            .unwrap();
    }
    c.flush().unwrap();
}

/// A SOW record or a publish (not a group marker or an ack).
fn is_record(m: &amps_host::Message) -> bool {
    matches!(m.command(), CommandKind::Sow | CommandKind::Publish)
}

fn qty(m: &amps_host::Message) -> u32 {
    let t = text(m);
    let at = t
        .find("\"qty\":")
        .unwrap_or_else(|| panic!("no qty in {t:?} ({:?})", m.command()))
        + 6;
    t[at..]
        .trim_end_matches('}')
        .parse()
        .unwrap_or_else(|_| panic!("{t}"))
}

fn sow_takes_top_n_order_by_and_batch_size<A: Api>() {
    let b = broker();
    let c: A = client(&b, "named-sow");
    publish_orders(&c, 10);
    let p = Params::filter("/qty >= 3")
        .top_n(4)
        .order_by("/qty DESC")
        .batch_size(2);
    let mut s = c.named(CommandKind::Sow, "orders", p).unwrap();
    let q: Vec<u32> = s
        .collect_all()
        .iter()
        .filter(|m| is_record(m))
        .map(qty)
        .collect();
    assert_eq!(q, [9, 8, 7, 6]);
    // The same through sow_and_subscribe: the records, then live publishes.
    let mut s = c
        .named(
            CommandKind::SowAndSubscribe,
            "orders",
            Params::filter("/qty > 7").order_by("/qty"),
        )
        .unwrap();
    let mut next = || loop {
        let m = s.next_msg();
        if is_record(&m) {
            return qty(&m);
        }
    };
    assert_eq!([next(), next()], [8, 9]);
    c.publish("orders", r#"{"id":20,"qty":20}"#).unwrap();
    assert_eq!(next(), 20);
    c.close().unwrap();
}

fn subscribe_takes_a_sub_id_options_and_a_timeout<A: Api>() {
    let b = broker();
    let c: A = client(&b, "named-sub");
    let mut s = c
        .named(
            CommandKind::Subscribe,
            "orders",
            Params::filter("/qty > 1").sub_id("mine"),
        )
        .unwrap();
    assert_eq!(s.sub_id(), "mine");
    publish_orders(&c, 3);
    assert_eq!(qty(&s.next_msg()), 2);
    // A per-command limit: the broker holds its acks, the subscription gives up at once.
    b.faults(|f| f.delay_acks = Some(amps_core::Duration::from_secs(60)));
    let t0 = std::time::Instant::now();
    let e = c
        .named(
            CommandKind::DeltaSubscribe,
            "orders",
            Params::new().timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() < GUARD);
    b.faults(|f| f.delay_acks = None);
    c.close().unwrap();
}

fn sow_delete_takes_a_filter_or_params_and_needs_a_filter<A: Api>() {
    let b = broker();
    let c: A = client(&b, "named-del");
    publish_orders(&c, 5);
    let ack = c
        .sow_delete_params(
            "orders",
            Params::filter("/qty < 2").timeout(Duration::from_secs(5)),
        )
        .unwrap();
    assert_eq!(ack.records_deleted(), Some(2));
    let e = c.sow_delete_params("orders", Params::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    assert_eq!(
        sow_records(&c, "orders", None).len(),
        3,
        "nothing else deleted"
    );
    c.close().unwrap();
}

fn every_named_command_has_a_handler_form<A: Api>() {
    let b = broker();
    let c: A = client(&b, "named-handler");
    publish_orders(&c, 3);
    for kind in [
        CommandKind::Subscribe,
        CommandKind::DeltaSubscribe,
        CommandKind::Sow,
        CommandKind::SowAndSubscribe,
        CommandKind::SowAndDeltaSubscribe,
    ] {
        let (tx, rx) = mpsc::channel();
        let id = c
            .named_with_handler(kind, "orders", Params::filter("/qty = 2"), move |m| {
                if is_record(m) {
                    let _ = tx.send(text(m));
                }
            })
            .unwrap();
        assert!(!id.is_empty());
        if matches!(kind, CommandKind::Subscribe | CommandKind::DeltaSubscribe) {
            c.publish("orders", r#"{"id":2,"qty":2}"#).unwrap();
        }
        let got = recv(&rx, &format!("{kind} through its handler"));
        assert!(got.contains("\"id\":2"), "{kind}: {got}");
        if kind != CommandKind::Sow {
            c.unsubscribe(&id).unwrap();
        }
    }
    c.close().unwrap();
}

suite!(
    sow_takes_top_n_order_by_and_batch_size,
    subscribe_takes_a_sub_id_options_and_a_timeout,
    sow_delete_takes_a_filter_or_params_and_needs_a_filter,
    every_named_command_has_a_handler_form,
);
