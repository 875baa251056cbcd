//! The simulator's invariants (listed in the crate docs), checked during and after every run.

use std::collections::BTreeSet;

use crate::Sim;
use crate::actors::Role;

/// Every bound is respected at every step.
pub(crate) fn bounds(sim: &Sim) -> Result<(), String> {
    for c in &sim.clients {
        let lim = c.session.limits();
        if c.session.pending_commands() > lim.max_commands {
            return Err(format!(
                "{}: {} pending commands > {}",
                c.name,
                c.session.pending_commands(),
                lim.max_commands
            ));
        }
        if c.session.routes() > lim.max_routes {
            return Err(format!(
                "{}: {} routes > {}",
                c.name,
                c.session.routes(),
                lim.max_routes
            ));
        }
        if c.session.unpersisted_count() > lim.publish_window_messages {
            return Err(format!(
                "{}: publish store {} > window {}",
                c.name,
                c.session.unpersisted_count(),
                lim.publish_window_messages
            ));
        }
        if c.session.dropped_events() > 0 {
            return Err(format!("{}: events dropped", c.name));
        }
    }
    Ok(())
}

fn strictly_increasing(v: &[u64]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// At the end: nothing lost, no duplicate or gap, every command done.
pub(crate) fn final_state(sim: &Sim) -> Result<(), String> {
    let mut accepted: Vec<u64> = Vec::new();
    let mut subscriber: Option<(&Vec<u64>, &BTreeSet<u64>)> = None;
    let mut audits: Vec<&Vec<u64>> = Vec::new();
    for c in &sim.clients {
        if !c.open.is_empty() {
            return Err(format!(
                "{}: commands neither completed nor failed: {:?}",
                c.name, c.open
            ));
        }
        match &c.role {
            Role::Publisher(p) => accepted.clone_from(&p.accepted),
            Role::Subscriber(s) => subscriber = Some((&s.got, &s.discarded)),
            Role::Auditor(a) => audits.push(&a.got),
        }
    }
    if !strictly_increasing(&accepted) {
        return Err(format!(
            "publish store sequence numbers not increasing: {accepted:?}"
        ));
    }
    // No publish lost once stored: every accepted sequence is in a broker's log, and no broker
    // logged one twice (sequence dedupe, docs/protocol.md §8.4).
    let mut union = BTreeSet::new();
    for (b, log) in audits.iter().enumerate() {
        if !strictly_increasing(log) {
            return Err(format!(
                "broker {b} logged a sequence twice or out of order: {log:?}"
            ));
        }
        union.extend(log.iter().copied());
    }
    let want: BTreeSet<u64> = accepted.iter().copied().collect();
    if union != want {
        let lost: Vec<_> = want.difference(&union).collect();
        let extra: Vec<_> = union.difference(&want).collect();
        return Err(format!(
            "brokers' logs differ from what was stored: lost {lost:?}, unknown {extra:?}"
        ));
    }
    // The bookmark subscriber that discards: first deliveries follow the log exactly (no gap,
    // no reordering); a message comes again only if it was not yet discarded (checked at
    // delivery); everything was processed in the end.
    if let Some((got, discarded)) = subscriber {
        let log = audits.first().map(|l| l.as_slice()).unwrap_or_default();
        let mut seen = BTreeSet::new();
        let firsts: Vec<u64> = got.iter().copied().filter(|s| seen.insert(*s)).collect();
        if firsts.as_slice() != log {
            return Err(format!(
                "bookmark subscriber's first deliveries {firsts:?} differ from the log {log:?}"
            ));
        }
        if discarded
            .iter()
            .copied()
            .ne(log.iter().copied().collect::<BTreeSet<_>>())
        {
            return Err("bookmark subscriber did not process every logged message".into());
        }
    }
    Ok(())
}
