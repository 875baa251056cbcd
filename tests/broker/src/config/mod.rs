//! Broker configuration: topics, users, limits (design.md §4), from TOML or built in code.
//!
//! Every field has a default, so a TOML file only names what it changes. Without any file the
//! broker serves the default set the quickstart and examples rely on (issue 3, item 1): a SOW
//! topic `orders` keyed by `/id` and transaction-logged, a transaction-logged topic `events`, a
//! queue `jobs`, and any other topic for plain publish/subscribe.
//!
//! ```
//! let cfg = amps_broker::Config::from_toml_str(r#"
//!     ack_conflation = "100ms"
//!     [[sow]]
//!     topic = "prices"
//!     key = ["/sym"]
//!     [[users]]
//!     name = "alice"
//!     password = "secret"
//! "#).unwrap();
//! assert_eq!(cfg.sow.len(), 1);
//! assert!(cfg.auth_enabled());
//! ```

mod limits;

use core::fmt;

use amps_core::Duration;
use serde::Deserialize;

pub use limits::{Limits, MIN_INPUT_QUEUE, fmt_bytes, fmt_duration, parse_bytes};

/// A duration written as `"100ms"`, `"1s"`, `"2m"` (protocol.md §4 units) or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ConfDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(ConfDuration(Duration::from_secs(s))),
            Raw::Text(t) => amps_core::codec::options::parse_duration(&t)
                .map(ConfDuration)
                .ok_or_else(|| serde::de::Error::custom(format!("bad duration `{t}`"))),
        }
    }
}

/// Payload format of a topic (protocol.md §16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// JSON documents: filters, delta, SOW keys from paths.
    #[default]
    Json,
    /// FIX (`tag=value` separated by SOH).
    Fix,
    /// NVFIX (any names, typed values).
    Nvfix,
    /// XML: accepted and stored opaque (no filters in this broker).
    Xml,
    /// Opaque bytes: no filters, no delta; SOW topics need an explicit `k`.
    Binary,
}

impl MessageType {
    /// Parse a logon `mt` (protocol.md §6.1). Unknown → `None` (`invalid message type`).
    pub fn from_wire(s: &str) -> Option<MessageType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "" | "json" => MessageType::Json,
            "fix" => MessageType::Fix,
            "nvfix" => MessageType::Nvfix,
            "xml" => MessageType::Xml,
            "binary" => MessageType::Binary,
            _ => return None,
        })
    }
}

/// A user allowed to log on when authentication is on. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// `user_id`.
    pub name: String,
    /// `pw`.
    pub password: String,
    /// Challenge/response (§8.2): a correct first logon is answered `retry` with a token in
    /// `pw`; the client logs on again on the same connection with that token.
    #[serde(default)]
    pub challenge: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// A State-of-the-World topic (protocol.md §6.6, §18 key convention).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SowTopic {
    /// Topic name (literal).
    pub topic: String,
    /// Key fields (`/id`, `/a/b`). Empty: the publisher supplies `k` on every publish.
    #[serde(default)]
    pub key: Vec<String>,
    /// Also transaction-logged (bookmarks, replay, conflated persisted acks).
    #[serde(default)]
    pub logged: bool,
    /// Default record lifetime; a publish's `e` overrides it. Zero: records never expire.
    #[serde(default)]
    pub expiration: ConfDuration,
    /// Payload format.
    #[serde(default)]
    pub message_type: MessageType,
}

/// A queue topic (protocol.md §11).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueTopic {
    /// Topic name: publishers and consumers both use it.
    pub topic: String,
    /// Lease length of an at-least-once delivery.
    pub lease_period: ConfDuration,
    /// Maximum unacknowledged messages per subscription (the cap on `max_backlog=N`).
    pub max_backlog: u64,
    /// Deliveries after which a returned message expires instead (0: unlimited).
    pub max_deliveries: u32,
    /// Cancels after which a message expires instead (0: unlimited).
    pub max_cancels: u32,
    /// At-most-once delivery: removed when sent, no lease.
    pub at_most_once: bool,
    /// Payload format.
    pub message_type: MessageType,
}

impl Default for QueueTopic {
    fn default() -> Self {
        QueueTopic {
            topic: String::new(),
            lease_period: ConfDuration(Duration::from_secs(30)),
            max_backlog: 2,
            max_deliveries: 0,
            max_cancels: 0,
            at_most_once: false,
            message_type: MessageType::Json,
        }
    }
}

/// Limits on the heartbeat interval a client may ask for (protocol.md §9); requests are clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatLimits {
    /// Shortest interval.
    pub min: ConfDuration,
    /// Longest interval.
    pub max: ConfDuration,
}

impl Default for HeartbeatLimits {
    fn default() -> Self {
        HeartbeatLimits {
            min: ConfDuration(Duration::from_millis(10)),
            max: ConfDuration(Duration::from_secs(3600)),
        }
    }
}

/// The whole broker configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `version` on logon acks.
    pub version: String,
    /// Largest frame accepted (header + payload) once logged on; above it: failure ack and
    /// close (§1.4). Also the cap on one connection's partial frame.
    pub max_frame: u32,
    /// A connection whose unsent output (queued and in flight) passes this many bytes is
    /// disconnected.
    pub slow_consumer_bytes: usize,
    /// Interval of conflated `persisted` acks (§8.4); a logon's `ack_conflation` overrides it.
    pub ack_conflation: ConfDuration,
    /// Heartbeat interval limits.
    pub heartbeat: HeartbeatLimits,
    /// Transaction-log capacity in messages; the oldest are dropped beyond it (memory bound).
    pub txlog_max_entries: usize,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Users; authentication is on when at least one is listed.
    pub users: Vec<User>,
    /// SOW topics.
    pub sow: Vec<SowTopic>,
    /// Queues.
    pub queues: Vec<QueueTopic>,
    /// Transaction-logged topics (in addition to SOW topics with `logged = true`).
    pub transaction_log: Vec<String>,
    /// What one client may cost: timeouts, connection count, buffers, compiled patterns.
    pub limits: Limits,
}

impl Default for Config {
    /// The default set (issue 3 item 1; protocol.md §18 V4/V6/V11/V13).
    fn default() -> Self {
        Config {
            version: "5.3.5.0".into(),
            max_frame: 16 * 1024 * 1024,
            slow_consumer_bytes: 64 * 1024 * 1024,
            ack_conflation: ConfDuration(Duration::from_secs(1)),
            heartbeat: HeartbeatLimits::default(),
            txlog_max_entries: 1_000_000,
            max_subscriptions: 10_000,
            users: Vec::new(),
            sow: vec![SowTopic {
                topic: "orders".into(),
                key: vec!["/id".into()],
                logged: true,
                expiration: ConfDuration::default(),
                message_type: MessageType::Json,
            }],
            queues: vec![QueueTopic {
                topic: "jobs".into(),
                ..QueueTopic::default()
            }],
            transaction_log: vec!["events".into()],
            limits: Limits::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid broker configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parse a TOML document (fields not given keep their defaults) and validate it.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        // The parser's own report quotes the offending line, which may hold a password: only
        // its message and position are kept.
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            ConfigError(match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_owned(),
            })
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::from_toml_str(&text)
    }

    /// A configuration with no topics configured at all: everything is plain pub/sub.
    pub fn bare() -> Config {
        Config {
            sow: Vec::new(),
            queues: Vec::new(),
            transaction_log: Vec::new(),
            ..Config::default()
        }
    }

    /// Check names are unique and limits usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for t in self
            .sow
            .iter()
            .map(|s| &s.topic)
            .chain(self.queues.iter().map(|q| &q.topic))
        {
            if t.is_empty() {
                return Err(ConfigError("empty topic name".into()));
            }
            if !seen.insert(t.as_str()) {
                return Err(ConfigError(format!("topic `{t}` configured twice")));
            }
        }
        for s in &self.sow {
            for k in &s.key {
                if let Err(e) = crate::filter::JsonPath::parse(k) {
                    return Err(ConfigError(format!(
                        "key field `{k}` of `{}`: {e}",
                        s.topic
                    )));
                }
            }
        }
        if self.max_frame < 64 {
            return Err(ConfigError("max_frame below 64 bytes".into()));
        }
        if self.heartbeat.min > self.heartbeat.max {
            return Err(ConfigError("heartbeat.min above heartbeat.max".into()));
        }
        self.limits.validate().map_err(ConfigError)
    }

    /// Set one limit from text (a command-line flag): `max_frame`, `slow_consumer_bytes`,
    /// `max_subscriptions`, or a key of [`Limits`]. Unknown key: `Ok(false)`. Validate after.
    ///
    /// ```
    /// let mut c = amps_broker::Config::default();
    /// assert_eq!(c.set("idle_timeout", "30s"), Ok(true));
    /// assert_eq!(c.set("max_frame", "1MiB"), Ok(true));
    /// assert_eq!(c.max_frame, 1 << 20);
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let size = || parse_bytes(value).ok_or_else(|| format!("`{key}`: bad size `{value}`"));
        match key {
            "max_frame" => {
                self.max_frame =
                    u32::try_from(size()?).map_err(|_| format!("`{key}`: above 4 GiB"))?;
            }
            "slow_consumer_bytes" => self.slow_consumer_bytes = size()?,
            "max_subscriptions" => {
                self.max_subscriptions = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{key}`: bad number `{value}`"))?;
            }
            _ => return self.limits.set(key, value),
        }
        Ok(true)
    }

    /// Every key [`Config::set`] takes, with its current value and meaning (for `--help`).
    pub fn describe_limits(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut v = vec![
            (
                "max_frame",
                fmt_bytes(self.max_frame as usize),
                "largest frame after logon (also the partial-frame cap)",
            ),
            (
                "slow_consumer_bytes",
                fmt_bytes(self.slow_consumer_bytes),
                "unsent output of one connection before it is closed",
            ),
            (
                "max_subscriptions",
                self.max_subscriptions.to_string(),
                "subscriptions per connection",
            ),
        ];
        v.extend(self.limits.describe());
        v
    }

    /// True when users are configured (protocol.md §8.2).
    pub fn auth_enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// True when any topic is transaction-logged: publisher sequence dedupe and conflated
    /// `persisted` acks apply (protocol.md §8.4), duplicate client names are resolved (§8.3).
    pub fn has_txlog(&self) -> bool {
        !self.transaction_log.is_empty() || self.sow.iter().any(|s| s.logged)
    }

    /// True when `topic` is transaction-logged.
    pub fn is_logged(&self, topic: &str) -> bool {
        self.transaction_log.iter().any(|t| t == topic)
            || self.sow.iter().any(|s| s.logged && s.topic == topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_reach_neither_debug_nor_errors() {
        let good = "[[users]]\nname = \"alice\"\npassword = \"s3cr3t\"\n";
        let c = Config::from_toml_str(good).unwrap();
        assert_eq!(c.users[0].password, "s3cr3t");
        let shown = format!("{c:?} {c:#?} {:?}", c.users[0]);
        assert!(!shown.contains("s3cr3t") && shown.contains("alice"), "{shown}");
        // A mistake on the password's line: the report names the line, not its text.
        let bad = "[[users]]\nname = \"alice\"\npassword = \"s3cr3t\" oops\n";
        let e = Config::from_toml_str(bad).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("line 3"), "{shown}");
    }

    #[test]
    fn default_set_matches_the_issue() {
        let c = Config::default();
        assert_eq!(c.sow[0].topic, "orders");
        assert_eq!(c.sow[0].key, ["/id"]);
        assert!(c.is_logged("orders") && c.is_logged("events") && !c.is_logged("x"));
        assert_eq!(c.queues[0].topic, "jobs");
        assert!(c.has_txlog() && !c.auth_enabled());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn toml_overrides_and_keeps_defaults() {
        let c = Config::from_toml_str(
            "max_frame = 4096\nack_conflation = \"250ms\"\nqueues = []\n[heartbeat]\nmin = 1\n",
        )
        .unwrap();
        assert_eq!(c.max_frame, 4096);
        assert_eq!(c.ack_conflation.0, Duration::from_millis(250));
        assert_eq!(c.heartbeat.min.0, Duration::from_secs(1));
        assert!(c.queues.is_empty());
        assert_eq!(c.sow.len(), 1);
    }

    #[test]
    fn errors_are_reported() {
        assert!(Config::from_toml_str("bogus = 1").is_err());
        assert!(Config::from_toml_str("ack_conflation = \"soon\"").is_err());
        assert!(Config::from_toml_str("[[sow]]\ntopic = \"a\"\nkey = [\"id\"]").is_err());
        assert!(
            Config::from_toml_str("[[sow]]\ntopic = \"jobs\"")
                .unwrap_err()
                .0
                .contains("twice")
        );
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../broker.example.toml");
        let c = Config::from_toml_str(text).unwrap();
        assert!(c.auth_enabled());
        assert_eq!(c.limits, Limits::default(), "the example lists the defaults");
    }

    #[test]
    fn limits_table_takes_sizes_and_durations() {
        let c = Config::from_toml_str(
            "[limits]\nlogon_timeout = \"2s\"\nidle_timeout = 0\nmax_output_bytes = \"8MiB\"\n\
             max_input_bytes = 1000000\n",
        )
        .unwrap();
        assert_eq!(c.limits.logon_timeout.0, Duration::from_secs(2));
        assert!(c.limits.idle_timeout.0.is_zero());
        assert_eq!(c.limits.max_output_bytes, 8 << 20);
        assert_eq!(c.limits.max_input_bytes, 1_000_000);
        assert_eq!(c.limits.max_connections, 1024, "defaults kept");
        assert!(Config::from_toml_str("[limits]\nmax_output_bytes = \"lots\"").is_err());
        assert!(Config::from_toml_str("[limits]\nmax_connections = 0").is_err());
        assert!(Config::from_toml_str("[limits]\nbogus = 1").is_err());
    }
}
