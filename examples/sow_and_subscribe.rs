//! State of the World and subscribe, atomically, with the blocking client (amps-std; user
//! guide: "SOW and subscribe", the delivery van example): the current position of every
//! active van, then live updates, with out-of-focus notices when a van leaves the filter or is
//! deleted from the SOW.
//!
//! ```text
//! cargo run -p amps-examples --example sow_and_subscribe
//! AMPS_URI=tcp://host:9007/amps/json cargo run -p amps-examples --example sow_and_subscribe
//! ```
//!
//! Needs a SOW topic `van_location` keyed by `/van_id` (the in-process broker has one).

use amps_broker::config::SowTopic;
use amps_examples::{client_name, server};
use amps_std::{Client, Command, CommandKind, MessageStream, options};

fn van(id: u32, status: &str, lat: f64) -> String {
    format!(r#"{{"van_id":{id},"status":"{status}","lat":{lat:.2},"lon":-73.9}}"#)
}

fn next(stream: &mut MessageStream) -> Result<amps_std::Message, Box<dyn std::error::Error>> {
    Ok(stream.next().ok_or("the stream ended")??)
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = amps_broker::Config::default();
    config.sow.push(SowTopic {
        topic: "van_location".into(),
        key: vec!["/van_id".into()],
        logged: false,
        expiration: Default::default(),
        message_type: Default::default(),
    });
    let server = server(config)?;
    let fleet = Client::new(client_name("fleet"))?;
    fleet.connect(&server.uri)?;
    fleet.logon()?;
    for id in 1..=4 {
        fleet.publish(
            "van_location",
            van(id, "active", 40.70 + f64::from(id) / 100.0),
        )?;
    }
    fleet.publish("van_location", van(5, "retired", 40.0))?;
    fleet.flush()?;

    let display = Client::new(client_name("display"))?;
    display.connect(&server.uri)?;
    display.logon()?;
    let mut vans = display.execute(
        &Command::sow_and_subscribe("van_location")
            .filter("/status = 'active'")
            .options(options::OOF),
    )?;
    println!("current active vans:");
    let mut active = 0;
    loop {
        let m = next(&mut vans)?;
        match m.command() {
            CommandKind::Sow => {
                active += 1;
                println!("  {}", m.data_str().unwrap_or(""));
            }
            CommandKind::GroupEnd => break,
            _ => {}
        }
    }

    println!("live updates:");
    fleet.publish("van_location", van(2, "active", 40.75))?; // moves
    fleet.publish("van_location", van(1, "inactive", 40.71))?; // leaves the filter
    let deleted = fleet.sow_delete_by_data("van_location", van(3, "active", 0.0))?; // retired
    let mut out_of_focus = Vec::new();
    for _ in 0..3 {
        let m = next(&mut vans)?;
        match m.command() {
            CommandKind::Oof => {
                let reason = m.reason().unwrap_or("?").to_owned();
                println!("  out of focus ({reason}): {}", m.data_str().unwrap_or(""));
                out_of_focus.push(reason);
            }
            _ => println!("  update: {}", m.data_str().unwrap_or("")),
        }
    }
    let removed = deleted.records_deleted().unwrap_or(0);
    println!("sow_delete_by_data removed {removed} record(s)");
    // Van 1 left the filter (`match`), van 3 was deleted (`deleted`); van 2 only moved.
    out_of_focus.sort();
    if out_of_focus != ["deleted", "match"] || removed != 1 {
        return Err(format!(
            "expected van 1 and 3 out of focus (match, deleted) and 1 record removed, got \
             {out_of_focus:?} and {removed}"
        )
        .into());
    }
    // A server named by AMPS_URI may hold vans of others.
    if server.broker().is_some() && active != 4 {
        return Err(format!("expected the 4 active vans, the query returned {active}").into());
    }
    let all = fleet.sow_delete("van_location", "1=1")?;
    println!(
        "sow_delete of everything removed {} record(s)",
        all.records_deleted().unwrap_or(0)
    );
    display.close()?;
    fleet.close()?;
    Ok(())
}
