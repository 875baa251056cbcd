//! Message types other than JSON with the blocking client (amps-std): FIX and NVFIX payloads
//! built with `msgtypes::FixMessage`, filtered by the server on their fields and taken apart
//! with `FixShredder`; a composite message (a JSON part and a binary part) built with
//! `CompositeMessage` and split with `CompositeParser`. The message type is chosen by the
//! connection string: `/amps/fix`, `/amps/nvfix`, `/amps/binary`.
//!
//! ```text
//! cargo run -p amps-examples --example message_types
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example message_types
//! ```
//!
//! Uses the topics `fix-orders`, `nvfix-orders` and `blobs` (any topics work); with
//! `AMPS_URI`, the server needs the fix, nvfix and binary message types on the same port.

use std::time::Duration;

use amps_examples::{client_name, server};
use amps_std::msgtypes::{CompositeMessage, CompositeParser, FixMessage, FixShredder};
use amps_std::{Client, Message, MessageStream};

/// `uri` with its message type (the path after `/amps/`) replaced by `mt`.
fn with_message_type(uri: &str, mt: &str) -> String {
    match uri.find("/amps/") {
        Some(i) => {
            let start = i + "/amps/".len();
            let end = uri[start..].find('?').map_or(uri.len(), |j| start + j);
            format!("{}{mt}{}", &uri[..start], &uri[end..])
        }
        None => uri.to_owned(),
    }
}

fn connect(uri: &str, mt: &str) -> amps_std::Result<Client> {
    let client = Client::new(client_name(mt))?;
    client.connect(&with_message_type(uri, mt))?;
    client.logon()?;
    Ok(client)
}

fn next(stream: &mut MessageStream) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(stream
        .recv_timeout(Duration::from_secs(10))?
        .ok_or("the stream ended")?)
}

/// A FIX field list as text, with `|` for the separator.
fn show(fields: FixShredder<'_>) -> String {
    fields
        .map(|(t, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(t),
                String::from_utf8_lossy(v)
            )
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn fix(uri: &str) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect(uri, "fix")?;
    // Tag 55 is the symbol, 54 the side, 38 the quantity.
    let mut msft = c.subscribe("fix-orders", "/55 = 'MSFT'")?;
    for (sym, qty) in [("IBM", "5"), ("MSFT", "10")] {
        let mut order = FixMessage::new();
        order.append(55, sym)?.append(54, "1")?.append(38, qty)?;
        c.publish("fix-orders", &order)?;
    }
    let got = next(&mut msft)?;
    let text = show(FixShredder::new(got.data()));
    println!("FIX, filter /55 = 'MSFT': {text}");
    c.flush()?;
    if text != "55=MSFT|54=1|38=10" || !msft.is_empty() {
        return Err(format!(
            "expected only the MSFT order, got {text} and {} more",
            msft.len()
        )
        .into());
    }
    c.close()?;
    Ok(())
}

fn nvfix(uri: &str) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect(uri, "nvfix")?;
    let mut buys = c.subscribe("nvfix-orders", "/side = 'buy'")?;
    for side in ["sell", "buy"] {
        let mut order = FixMessage::new();
        order
            .append_str("side", side)?
            .append_str("sym", "MSFT")?
            .append_str("qty", "100")?;
        c.publish("nvfix-orders", order.into_bytes())?;
    }
    let got = next(&mut buys)?;
    let fields = FixShredder::new(got.data()).to_map();
    let side = fields.get(&b"side"[..]).map(|v| String::from_utf8_lossy(v));
    println!(
        "NVFIX, filter /side = 'buy': {}",
        show(FixShredder::new(got.data()))
    );
    if side.as_deref() != Some("buy") {
        return Err(format!("expected the buy order, got side {side:?}").into());
    }
    c.close()?;
    Ok(())
}

fn composite(uri: &str) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect(uri, "binary")?;
    let mut blobs = c.subscribe("blobs", None)?;
    let thumbnail: Vec<u8> = (0..=255).collect();
    let mut m = CompositeMessage::new();
    m.append(br#"{"image":"logo.png","width":16}"#)?
        .append(&thumbnail)?;
    c.publish("blobs", &m)?;
    let got = next(&mut blobs)?;
    let parts: Vec<&[u8]> = CompositeParser::new(got.data()).collect::<Result<_, _>>()?;
    println!(
        "composite over binary: {} parts: {} and {} bytes of binary",
        parts.len(),
        String::from_utf8_lossy(parts.first().copied().unwrap_or_default()),
        parts.get(1).map_or(0, |p| p.len())
    );
    if parts.len() != 2 || parts[1] != thumbnail.as_slice() {
        return Err("the composite message's parts changed on the way".into());
    }
    c.close()?;
    Ok(())
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = server(amps_broker::Config::default())?;
    fix(&server.uri)?;
    nvfix(&server.uri)?;
    composite(&server.uri)?;
    Ok(())
}
