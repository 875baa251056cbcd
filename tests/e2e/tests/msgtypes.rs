//! Message types other than JSON end to end: FIX and NVFIX payloads built with the owned
//! builders, filtered by the broker on their fields and taken apart on receipt; a composite
//! message (a JSON part and a binary part) over the binary message type.

use amps_e2e::*;
use amps_host::msgtypes::{CompositeMessage, CompositeParser, FixMessage, FixShredder};

fn connect_as<A: Api>(b: &amps_broker::ServerHandle, prefix: &str, mt: &str) -> A {
    let c = A::build(A::builder(prefix));
    c.connect(&format!("tcp://{}/amps/{mt}", b.local_addr()))
        .expect("connect");
    c.logon().expect("logon");
    c
}

fn fix_payloads_are_built_filtered_and_shredded<A: Api>() {
    let b = broker();
    let c: A = connect_as(&b, "fix", "fix");
    let mut s = c.subscribe("fix-orders", Some("/55 = 'MSFT'")).unwrap();
    for (sym, qty) in [("IBM", "5"), ("MSFT", "10")] {
        let mut m = FixMessage::new();
        m.append(55, sym).unwrap().append(38, qty).unwrap();
        c.publish("fix-orders", &m).unwrap();
    }
    let got = s.next_msg();
    let fields: Vec<_> = FixShredder::new(got.data()).collect();
    assert_eq!(fields, [(&b"55"[..], &b"MSFT"[..]), (b"38", b"10")]);
    c.flush().unwrap();
    assert_eq!(s.len(), 0, "IBM was filtered out");
    c.close().unwrap();
}

fn nvfix_payloads_are_built_filtered_and_shredded<A: Api>() {
    let b = broker();
    let c: A = connect_as(&b, "nvfix", "nvfix");
    let mut s = c.subscribe("nv-orders", Some("/side = 'buy'")).unwrap();
    for side in ["sell", "buy"] {
        let mut m = FixMessage::new();
        m.append_str("side", side)
            .unwrap()
            .append_str("sym", "MSFT")
            .unwrap();
        c.publish("nv-orders", m.into_bytes()).unwrap();
    }
    let got = s.next_msg();
    let f = FixShredder::new(got.data()).to_map();
    assert_eq!(f.get(&b"side"[..]), Some(&&b"buy"[..]));
    assert_eq!(f.get(&b"sym"[..]), Some(&&b"MSFT"[..]));
    c.close().unwrap();
}

fn composite_messages_keep_their_parts<A: Api>() {
    let b = broker();
    let c: A = connect_as(&b, "composite", "binary");
    let mut s = c.subscribe("blobs", None).unwrap();
    let blob: Vec<u8> = (0..=255).collect();
    let mut m = CompositeMessage::new();
    m.append(br#"{"id":7}"#).unwrap().append(&blob).unwrap();
    c.publish("blobs", &m).unwrap();
    let got = s.next_msg();
    let parts: Vec<&[u8]> = CompositeParser::new(got.data())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parts, [&br#"{"id":7}"#[..], &blob[..]]);
    c.close().unwrap();
}

suite!(
    fix_payloads_are_built_filtered_and_shredded,
    nvfix_payloads_are_built_filtered_and_shredded,
    composite_messages_keep_their_parts,
);
