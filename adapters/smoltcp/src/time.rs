//! Clock conversions between smoltcp and amps-core.
//!
//! smoltcp's [`smoltcp::time::Instant`] is a signed count of microseconds, amps-core's
//! [`amps_core::Instant`] an unsigned one (the core never reads a clock; the
//! adapter passes the application's `now`). Both count from the same origin here, so the
//! conversion is the identity on non-negative values; negative smoltcp instants (before the
//! application's origin) clamp to zero and core instants beyond `i64::MAX` clamp to the largest
//! smoltcp instant. Neither direction can panic.

use amps_core::{Duration as CoreDuration, Instant as CoreInstant};
use smoltcp::time::{Duration as NetDuration, Instant as NetInstant};

/// smoltcp instant → core instant (negative clamps to zero).
pub fn to_core(t: NetInstant) -> CoreInstant {
    CoreInstant::from_micros(u64::try_from(t.total_micros()).unwrap_or(0))
}

/// Core instant → smoltcp instant (saturating at `i64::MAX` microseconds).
pub fn to_net(t: CoreInstant) -> NetInstant {
    NetInstant::from_micros_const(i64::try_from(t.as_micros()).unwrap_or(i64::MAX))
}

/// smoltcp duration → core duration.
pub fn duration_to_core(d: NetDuration) -> CoreDuration {
    CoreDuration::from_micros(d.total_micros())
}

/// Core duration → smoltcp duration.
pub fn duration_to_net(d: CoreDuration) -> NetDuration {
    NetDuration::from_micros(d.as_micros())
}

/// The earlier of two optional deadlines (`None` means "no deadline").
pub fn earliest(a: Option<NetInstant>, b: Option<NetInstant>) -> Option<NetInstant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps() {
        let t = NetInstant::from_micros(1_234_567_i64);
        assert_eq!(to_net(to_core(t)), t);
        assert_eq!(to_core(NetInstant::from_micros(-5_i64)), CoreInstant::ZERO);
        assert_eq!(to_net(CoreInstant::MAX).total_micros(), i64::MAX);
        let d = NetDuration::from_millis(1500);
        assert_eq!(duration_to_net(duration_to_core(d)), d);
    }

    #[test]
    fn earliest_ignores_missing_deadlines() {
        let a = NetInstant::from_millis(5);
        let b = NetInstant::from_millis(7);
        assert_eq!(earliest(Some(a), Some(b)), Some(a));
        assert_eq!(earliest(None, Some(b)), Some(b));
        assert_eq!(earliest(Some(a), None), Some(a));
        assert_eq!(earliest(None, None), None);
    }
}
