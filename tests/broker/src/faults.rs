//! Fault hooks for tests: reachable from Rust through [`crate::Engine::faults`] and
//! [`crate::ServerHandle::faults`], and from other processes through the control port
//! ([`Faults::apply_command`]).

use amps_core::Duration;

use crate::engine::ConnId;

/// Faults the broker injects. Plain data: set fields directly or use the helpers. Requests that
/// act on connections ([`Faults::close_all`], [`Faults::close`]) run at the engine's next call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Refuse every logon with this reason (failure ack, then close), e.g.
    /// `authentication failed`.
    pub refuse_logons: Option<String>,
    /// Fail the next publish or delta_publish with this reason (failure `processed` and
    /// `persisted` acks; nothing stored or delivered). Consumed by that publish.
    pub fail_next_publish: Option<String>,
    /// Hold every ack frame this long before it is written (other frames are not delayed).
    pub delay_acks: Option<Duration>,
    /// Drop every ack frame (never sent) while set.
    pub withhold_acks: bool,
    /// Stop heartbeats: no server heartbeats, no answers to `beat`, no silent-client disconnects.
    pub heartbeats_off: bool,
    /// Close the connection that delivers the N-th inbound frame from now (any connection; the
    /// frame is processed first, its replies discarded). Cleared when it fires.
    pub close_after_frames: Option<u64>,
    /// Hand no compilation to the driver while set ([`crate::Engine::poll_compile`]): the
    /// connections that wait for a pattern keep waiting, which lets a test show that nothing
    /// else waits with them.
    pub hold_compiles: bool,
    pub(crate) close_requests: Vec<Option<ConnId>>,
    pub(crate) close_names: Vec<String>,
}

impl Faults {
    /// Close every connection now (at the engine's next call).
    pub fn close_all(&mut self) {
        self.close_requests.push(None);
    }

    /// Close one connection now (at the engine's next call).
    pub fn close(&mut self, conn: ConnId) {
        self.close_requests.push(Some(conn));
    }

    /// Close every connection logged on as `client_name` now (at the engine's next call).
    pub fn close_client(&mut self, client_name: &str) {
        self.close_names.push(client_name.to_owned());
    }

    /// Close the connection that sends the `n`-th frame from now (`n` ≥ 1).
    pub fn close_after(&mut self, n: u64) {
        self.close_after_frames = Some(n.max(1));
    }

    /// Clear every fault.
    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// Apply one control-port line (see the crate docs for the list). `restart` is not a fault
    /// and is handled by the server; it is rejected here.
    ///
    /// ```
    /// let mut f = amps_broker::Faults::default();
    /// f.apply_command("delay-acks 250").unwrap();
    /// f.apply_command("fail-next-publish not entitled").unwrap();
    /// assert_eq!(f.fail_next_publish.as_deref(), Some("not entitled"));
    /// assert!(f.apply_command("bogus").is_err());
    /// ```
    pub fn apply_command(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        let on_off = |a: &str| match a.split_whitespace().next() {
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            _ => Err(format!("`{cmd}` takes on|off")),
        };
        let number = |a: &str| {
            a.parse::<u64>()
                .map_err(|_| format!("`{cmd}` takes a number, got `{a}`"))
        };
        match cmd {
            "close-all" => self.close_all(),
            "close-client" if !arg.is_empty() => self.close_client(arg),
            "close-after" => self.close_after(number(arg)?),
            "fail-next-publish" => {
                let reason = if arg.is_empty() { "not entitled" } else { arg };
                self.fail_next_publish = Some(reason.to_string());
            }
            "refuse-logons" => {
                if on_off(arg)? {
                    let reason = arg.strip_prefix("on").unwrap_or("").trim();
                    let reason = if reason.is_empty() {
                        "authentication failed"
                    } else {
                        reason
                    };
                    self.refuse_logons = Some(reason.to_string());
                } else {
                    self.refuse_logons = None;
                }
            }
            "heartbeats" => self.heartbeats_off = !on_off(arg)?,
            "delay-acks" => {
                let ms = number(arg)?;
                self.delay_acks = (ms > 0).then(|| Duration::from_millis(ms));
            }
            "withhold-acks" => self.withhold_acks = on_off(arg)?,
            "hold-compiles" => self.hold_compiles = on_off(arg)?,
            "clear" => self.clear(),
            _ => return Err(format!("unknown command `{cmd}`")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines() {
        let mut f = Faults::default();
        f.apply_command("refuse-logons on").unwrap();
        assert_eq!(f.refuse_logons.as_deref(), Some("authentication failed"));
        f.apply_command("refuse-logons on name in use").unwrap();
        assert_eq!(f.refuse_logons.as_deref(), Some("name in use"));
        f.apply_command("refuse-logons off").unwrap();
        assert_eq!(f.refuse_logons, None);
        f.apply_command("heartbeats off").unwrap();
        assert!(f.heartbeats_off);
        f.apply_command("withhold-acks on").unwrap();
        assert!(f.withhold_acks);
        f.apply_command("hold-compiles on").unwrap();
        assert!(f.hold_compiles);
        f.apply_command("delay-acks 0").unwrap();
        assert_eq!(f.delay_acks, None);
        f.apply_command("close-after 5").unwrap();
        assert_eq!(f.close_after_frames, Some(5));
        f.apply_command("close-all").unwrap();
        assert_eq!(f.close_requests, vec![None]);
        f.apply_command("clear").unwrap();
        assert_eq!(f, Faults::default());
        assert!(f.apply_command("close-after x").is_err());
        assert!(f.apply_command("heartbeats maybe").is_err());
    }
}
