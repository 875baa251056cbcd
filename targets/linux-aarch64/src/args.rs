//! Command line of the gateway.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Usage text.
pub const USAGE: &str = "\
usage: amps-telemetry-gateway URI [options]

Publishes telemetry samples (JSON, one per message) to an AMPS server through an HA client
with a file-backed publish store, then flushes and exits 0 only if every sample is persisted.

  URI                    e.g. tcp://127.0.0.1:9007/amps/json
  --count N              samples to publish (default 100)
  --rate HZ              samples per second, 0 = as fast as possible (default 10)
  --topic T              topic (default telemetry)
  --name NAME            client name (default gateway-<hostname>)
  --store DIR            publish store directory (default ./gateway-store)
  --heartbeat SECS       heartbeat interval, 0 = off (default 5)
  --flush-timeout SECS   publish_flush limit at shutdown (default 30)
  -h, --help             this text";

/// What the gateway was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// Connection string.
    pub uri: String,
    /// Samples to publish.
    pub count: u64,
    /// Samples per second (0: unpaced).
    pub rate: f64,
    /// Topic.
    pub topic: String,
    /// Client name (stable across restarts: it identifies the publish store's sequence).
    pub name: String,
    /// Publish store directory.
    pub store: PathBuf,
    /// Heartbeat interval in seconds (0: off).
    pub heartbeat: u32,
    /// Time limit of the final publish_flush.
    pub flush_timeout: Duration,
}

/// A command line that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `-h` / `--help`.
    Help,
    /// No URI.
    MissingUri,
    /// An option without its value.
    MissingValue(String),
    /// A value that does not parse.
    BadValue(String, String),
    /// An unknown option or a second URI.
    Unexpected(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::MissingUri => f.write_str("missing URI"),
            ArgsError::MissingValue(o) => write!(f, "{o} needs a value"),
            ArgsError::BadValue(o, v) => write!(f, "bad value for {o}: {v:?}"),
            ArgsError::Unexpected(a) => write!(f, "unexpected argument {a:?}"),
        }
    }
}

impl std::error::Error for ArgsError {}

fn parse_num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, ArgsError> {
    v.parse()
        .map_err(|_| ArgsError::BadValue(opt.to_string(), v.to_string()))
}

impl Args {
    /// Parse `argv` without the program name. `hostname` names the default client.
    pub fn parse<I: IntoIterator<Item = String>>(
        argv: I,
        hostname: &str,
    ) -> Result<Args, ArgsError> {
        let mut uri = None;
        let mut a = Args {
            uri: String::new(),
            count: 100,
            rate: 10.0,
            topic: "telemetry".to_string(),
            name: format!("gateway-{hostname}"),
            store: PathBuf::from("gateway-store"),
            heartbeat: 5,
            flush_timeout: Duration::from_secs(30),
        };
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| ArgsError::MissingValue(arg.clone()))
            };
            match arg.as_str() {
                "-h" | "--help" => return Err(ArgsError::Help),
                "--count" => a.count = parse_num(&arg, &value()?)?,
                "--rate" => {
                    let v = value()?;
                    a.rate = parse_num(&arg, &v)?;
                    if !a.rate.is_finite() || a.rate < 0.0 {
                        return Err(ArgsError::BadValue(arg, v));
                    }
                }
                "--topic" => a.topic = value()?,
                "--name" => a.name = value()?,
                "--store" => a.store = PathBuf::from(value()?),
                "--heartbeat" => a.heartbeat = parse_num(&arg, &value()?)?,
                "--flush-timeout" => {
                    a.flush_timeout = Duration::from_secs(parse_num(&arg, &value()?)?)
                }
                s if s.starts_with('-') => return Err(ArgsError::Unexpected(arg)),
                _ if uri.is_none() => uri = Some(arg),
                _ => return Err(ArgsError::Unexpected(arg)),
            }
        }
        a.uri = uri.ok_or(ArgsError::MissingUri)?;
        if a.topic.is_empty() {
            return Err(ArgsError::BadValue("--topic".into(), String::new()));
        }
        Ok(a)
    }

    /// Time between two samples (`None`: unpaced).
    pub fn period(&self) -> Option<Duration> {
        (self.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, ArgsError> {
        Args::parse(s.split_whitespace().map(String::from), "edge1")
    }

    #[test]
    fn defaults_and_options() {
        let a = parse("tcp://127.0.0.1:9007/amps/json").unwrap();
        assert_eq!((a.count, a.rate, a.heartbeat), (100, 10.0, 5));
        assert_eq!(a.name, "gateway-edge1");
        assert_eq!(a.period(), Some(Duration::from_millis(100)));
        let a = parse("--count 7 tcp://h:1/amps/json --rate 0 --topic t --name n --store /s --heartbeat 0 --flush-timeout 3").unwrap();
        assert_eq!(a.count, 7);
        assert_eq!(a.period(), None);
        assert_eq!((a.topic.as_str(), a.name.as_str()), ("t", "n"));
        assert_eq!(a.store, PathBuf::from("/s"));
        assert_eq!(a.heartbeat, 0);
        assert_eq!(a.flush_timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_command_lines_are_typed_errors() {
        assert_eq!(parse(""), Err(ArgsError::MissingUri));
        assert_eq!(
            parse("u --count"),
            Err(ArgsError::MissingValue("--count".into()))
        );
        assert_eq!(
            parse("u --count x"),
            Err(ArgsError::BadValue("--count".into(), "x".into()))
        );
        assert_eq!(
            parse("u --rate -1"),
            Err(ArgsError::BadValue("--rate".into(), "-1".into()))
        );
        assert_eq!(
            parse("u --bogus"),
            Err(ArgsError::Unexpected("--bogus".into()))
        );
        assert_eq!(parse("u v"), Err(ArgsError::Unexpected("v".into())));
        assert_eq!(parse("--help"), Err(ArgsError::Help));
    }
}
