//! The command line: clap definitions for every command, and the rewrite that lets spark's
//! single-dash long flags (`-server`, `-topic`) through clap, which only parses `--server`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Exit codes, shown at the end of `--help`.
const EXIT_CODES: &str = "\
Flags may be written as spark writes them (-server, -topic, ...) or GNU style (--server).

Exit codes:
  0  success (also a subscription stopped by Ctrl-C or a closed stdout)
  1  the command failed: the server refused it (its reason is printed) or timed out
  2  usage error: unknown or invalid flags
  3  connection or logon failure, or the connection was lost
  4  local I/O error: the input file or standard output";

/// `amps`: a command-line client for AMPS, spark-compatible.
#[derive(Debug, Parser)]
#[command(name = "amps", version, about, after_help = EXIT_CODES)]
#[command(propagate_version = true, subcommand_required = true)]
pub(crate) struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// The commands, named as spark names them (hyphenated aliases for the underscored names).
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Publish records from a file, standard input or -data.
    #[command(after_help = EXIT_CODES)]
    Publish(PublishArgs),
    /// Publish records as delta publishes (merged into the SOW record).
    #[command(name = "delta_publish", visible_alias = "delta-publish", after_help = EXIT_CODES)]
    DeltaPublish(PublishArgs),
    /// Subscribe to a topic and print what arrives until Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Subscribe(SubscribeArgs),
    /// Subscribe receiving only changed fields.
    #[command(name = "delta_subscribe", visible_alias = "delta-subscribe", after_help = EXIT_CODES)]
    DeltaSubscribe(SubscribeArgs),
    /// Query the State of the World of a topic and print the records.
    #[command(after_help = EXIT_CODES)]
    Sow(SowArgs),
    /// Query the SOW, then keep receiving updates until Ctrl-C.
    #[command(name = "sow_and_subscribe", visible_alias = "sow-and-subscribe", after_help = EXIT_CODES)]
    SowAndSubscribe(SowAndSubscribeArgs),
    /// Query the SOW, then keep receiving changed fields until Ctrl-C.
    #[command(
        name = "sow_and_delta_subscribe",
        visible_alias = "sow-and-delta-subscribe",
        after_help = EXIT_CODES
    )]
    SowAndDeltaSubscribe(SowAndSubscribeArgs),
    /// Delete SOW records by filter, SOW keys, or data.
    #[command(name = "sow_delete", visible_alias = "sow-delete", after_help = EXIT_CODES)]
    SowDelete(SowDeleteArgs),
    /// Connect and log on, print the server version and a round-trip time.
    #[command(after_help = EXIT_CODES)]
    Ping(PingArgs),
}

/// Where and how to connect: shared by every command.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// AMPS server: [user[:password]@]host[:port] (port 9007 when omitted).
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "uri")]
    pub(crate) server: Option<String>,
    /// A full connection string instead of -server/-proto/-type: tcp://, tcps:// or unix://,
    /// with credentials and URI options.
    #[arg(long, value_name = "URI", env = "AMPS_URI", conflicts_with = "server")]
    pub(crate) uri: Option<String>,
    /// Message type (json, nvfix, fix, xml, binary, ...).
    #[arg(long = "type", value_name = "TYPE", default_value = "json")]
    pub(crate) message_type: String,
    /// Protocol (amps; the legacy fix, nvfix and xml protocols carry no message type).
    #[arg(long, alias = "prot", value_name = "PROTO", default_value = "amps")]
    pub(crate) proto: String,
    /// Client name (default: amps-cli-<pid>-<time>).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Time limit for connecting, logging on and each command's answer: milliseconds as
    /// spark takes them, or with a unit (500ms, 10s, 1m).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}

/// How received messages are written to standard output.
#[derive(Debug, Args)]
pub(crate) struct Out {
    /// Output format: `json` (one object per message with its headers), or a template with
    /// {command} {topic} {data} {bookmark} {sowkey} {timestamp} {subid} {correlationid}
    /// {expiration} {length} {lease} {reason}. Default: the data alone.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
    /// Record separator, as a decimal character code (10: newline).
    #[arg(long, value_name = "CODE", default_value_t = 10)]
    pub(crate) delimiter: u8,
    /// No summary or progress on standard error.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Progress on standard error: auto (when it is a terminal), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
}

/// When to draw a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// When standard error is a terminal.
    Auto,
    /// Always (also into a pipe or a file).
    Always,
    /// Never.
    Never,
}

/// `publish` and `delta_publish`.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// Topic to publish to.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    /// File of records (one per line, or per -delimiter); standard input when omitted.
    #[arg(long, value_name = "PATH", conflicts_with = "data")]
    pub(crate) file: Option<PathBuf>,
    /// Publish this one record instead of reading records.
    #[arg(long, value_name = "DATA")]
    pub(crate) data: Option<String>,
    /// Messages per second at most (0.25 is one every four seconds).
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub(crate) rate: Option<f64>,
    /// Publish as delta_publish.
    #[arg(long)]
    pub(crate) delta: bool,
    /// Record separator of the input, as a decimal character code (10: newline).
    #[arg(long, value_name = "CODE", default_value_t = 10)]
    pub(crate) delimiter: u8,
    /// No summary or progress on standard error.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Progress on standard error: auto (when it is a terminal), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
}

/// What `subscribe`, `delta_subscribe` and the subscribing half of `sow_and_subscribe` take.
#[derive(Debug, Args)]
pub(crate) struct SubOpts {
    /// Content filter.
    #[arg(long, value_name = "FILTER")]
    pub(crate) filter: Option<String>,
    /// Receive only changed fields (delta_subscribe).
    #[arg(long)]
    pub(crate) delta: bool,
    /// Acknowledge each queue message once printed (removes it from the queue).
    #[arg(long)]
    pub(crate) ack: bool,
    /// Queue messages the server may send before they are acknowledged (max_backlog).
    #[arg(long, value_name = "N")]
    pub(crate) backlog: Option<u32>,
    /// Acknowledgements sent together (default: the backlog, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) ack_batch: Option<u32>,
    /// Longest time an acknowledgement waits for its batch.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "250ms")]
    pub(crate) ack_timeout: Duration,
    /// Replay from the transaction log: a bookmark, 0 (the beginning), or now.
    #[arg(long, value_name = "BOOKMARK")]
    pub(crate) bookmark: Option<String>,
    /// Options for the server (comma-separated, e.g. oof,timestamp).
    #[arg(long, value_name = "OPTIONS")]
    pub(crate) options: Option<String>,
    /// Also publish every message received to this server ([user[:password]@]host[:port] or
    /// a URI), to the same topic.
    #[arg(long, value_name = "SERVER")]
    pub(crate) copy: Option<String>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) max_messages: Option<u64>,
}

/// `subscribe` and `delta_subscribe`.
#[derive(Debug, Args)]
pub(crate) struct SubscribeArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// Topic (or regular expression) to subscribe to.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    #[command(flatten)]
    pub(crate) sub: SubOpts,
    #[command(flatten)]
    pub(crate) out: Out,
}

/// The query half of `sow` and `sow_and_subscribe`.
#[derive(Debug, Args)]
pub(crate) struct QueryOpts {
    /// Order of the records, e.g. "/price DESC".
    #[arg(long, alias = "order-by", value_name = "EXPR")]
    pub(crate) orderby: Option<String>,
    /// At most this many records.
    #[arg(long, alias = "top-n", value_name = "N")]
    pub(crate) topn: Option<u64>,
    /// Records per message from the server.
    #[arg(long, alias = "batch-size", value_name = "N")]
    pub(crate) batchsize: Option<u64>,
}

/// `sow`.
#[derive(Debug, Args)]
pub(crate) struct SowArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// SOW topic (or regular expression) to query.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    /// Content filter.
    #[arg(long, value_name = "FILTER")]
    pub(crate) filter: Option<String>,
    /// Options for the server (comma-separated).
    #[arg(long, value_name = "OPTIONS")]
    pub(crate) options: Option<String>,
    #[command(flatten)]
    pub(crate) query: QueryOpts,
    #[command(flatten)]
    pub(crate) out: Out,
}

/// `sow_and_subscribe` and `sow_and_delta_subscribe`.
#[derive(Debug, Args)]
pub(crate) struct SowAndSubscribeArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// SOW topic (or regular expression).
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    #[command(flatten)]
    pub(crate) query: QueryOpts,
    #[command(flatten)]
    pub(crate) sub: SubOpts,
    #[command(flatten)]
    pub(crate) out: Out,
}

/// `sow_delete`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["filter", "keys", "data", "file"])))]
pub(crate) struct SowDeleteArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// SOW topic.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    /// Delete the records matching this filter (1=1: all).
    #[arg(long, value_name = "FILTER")]
    pub(crate) filter: Option<String>,
    /// Delete the records with these SOW keys (comma-separated).
    #[arg(long, value_name = "KEYS")]
    pub(crate) keys: Option<String>,
    /// Delete the record this message would update.
    #[arg(long, value_name = "DATA")]
    pub(crate) data: Option<String>,
    /// Delete the record each message of this file would update.
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    /// Record separator of -file, as a decimal character code (10: newline).
    #[arg(long, value_name = "CODE", default_value_t = 10)]
    pub(crate) delimiter: u8,
    /// Print the result as one JSON object.
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "text"], default_value = "text")]
    pub(crate) format: String,
}

/// `ping`.
#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
}

/// Durations as spark writes them (plain numbers are milliseconds) or with a unit.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500, 500ms, 10s, 1m)"))?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1000.0,
        "us" => n / 1e6,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit `{u}` in `{s}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// A positive message rate.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a positive rate (messages per second)"
        )),
    }
}

/// Rewrite spark's single-dash long flags into GNU ones: `-topic x` becomes `--topic x` and
/// `-topic=x` becomes `--topic=x`, for the long flag names of the chosen command only. Values
/// are never rewritten (the token after a flag that takes one is passed as it is), nor is
/// anything after `--`.
///
/// A single-dash word that is neither a known name nor a cluster of the command's short
/// flags is an error here (clap would read `-nosuch` as `-n osuch` and name the wrong flag).
pub(crate) fn rewrite(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let cli = Cli::command();
    // The first token that names a command picks the flag table.
    let Some(sub) = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find_map(|a| cli.find_subcommand(a))
    else {
        return Ok(args);
    };
    let mut known: Vec<(String, bool)> = Vec::new();
    let mut shorts: Vec<char> = vec!['h'];
    for arg in sub.get_arguments() {
        shorts.extend(arg.get_short_and_visible_aliases().into_iter().flatten());
        let takes = arg.get_action().takes_values();
        for name in arg.get_long_and_visible_aliases().into_iter().flatten() {
            known.push((name.to_owned(), takes));
        }
        for name in arg.get_all_aliases().into_iter().flatten() {
            known.push((name.to_owned(), takes));
        }
    }
    known.push(("help".into(), false));
    let lookup = |name: &str| known.iter().find(|(k, _)| k == name).map(|(_, t)| *t);

    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    out.extend(it.next());
    let mut value_next = false;
    while let Some(a) = it.next() {
        if value_next {
            value_next = false;
            out.push(a);
            continue;
        }
        let Some(s) = a.to_str() else {
            out.push(a);
            continue;
        };
        if s == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        let (flag, has_value) = match s.split_once('=') {
            Some((f, _)) => (f, true),
            None => (s, false),
        };
        if let Some(name) = flag.strip_prefix("--") {
            value_next = !has_value && lookup(name) == Some(true);
            out.push(a);
        } else if let Some(name) = flag.strip_prefix('-')
            && name.len() > 1
            && let Some(takes) = lookup(name)
        {
            value_next = takes && !has_value;
            out.push(OsString::from(format!("-{s}")));
        } else if let Some(name) = flag.strip_prefix('-')
            && name.len() > 1
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && !name.chars().all(|c| shorts.contains(&c))
        {
            return Err(format!(
                "unknown flag `{flag}` for `{}` (see `amps help {}`)",
                sub.get_name(),
                sub.get_name()
            ));
        } else {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        let v = args.iter().map(OsString::from).collect();
        rewrite(v)
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_gnu_flags() {
        assert_eq!(
            rw(&[
                "amps", "sow", "-server", "h:1", "-topic", "t", "-topn=5", "-q"
            ]),
            [
                "amps", "sow", "--server", "h:1", "--topic", "t", "--topn=5", "-q"
            ]
        );
        // Aliases are known too; values are never touched, even when they look like flags.
        assert_eq!(
            rw(&[
                "amps", "publish", "-prot", "amps", "-data", "-topic", "-topic", "x"
            ]),
            [
                "amps", "publish", "--prot", "amps", "--data", "-topic", "--topic", "x"
            ]
        );
        assert_eq!(
            rw(&["amps", "sow", "--filter", "-topic", "-delimiter", "10"]),
            ["amps", "sow", "--filter", "-topic", "--delimiter", "10"]
        );
    }

    #[test]
    fn unknown_names_are_refused_and_the_rest_after_double_dash_kept() {
        // `-ack` is not a flag of `sow`.
        let e = rewrite(["amps", "sow", "-ack"].map(OsString::from).to_vec()).unwrap_err();
        assert_eq!(e, "unknown flag `-ack` for `sow` (see `amps help sow`)");
        // Clusters of short flags and negative numbers pass.
        assert_eq!(
            rw(&["amps", "sow", "-qh", "-5"]),
            ["amps", "sow", "-qh", "-5"]
        );
        assert_eq!(
            rw(&["amps", "subscribe", "-ack", "--", "-topic"]),
            ["amps", "subscribe", "--ack", "--", "-topic"]
        );
        assert_eq!(rw(&["amps", "-topic"]), ["amps", "-topic"]);
    }

    #[test]
    fn both_spellings_parse_to_the_same_arguments() {
        let spark = rw(&[
            "amps",
            "subscribe",
            "-server",
            "h:9",
            "-topic",
            "t",
            "-filter",
            "/a > 1",
            "-ack",
            "-backlog",
            "5",
            "-format",
            "{data}",
        ]);
        let gnu = [
            "amps",
            "subscribe",
            "--server",
            "h:9",
            "--topic",
            "t",
            "--filter",
            "/a > 1",
            "--ack",
            "--backlog",
            "5",
            "--format",
            "{data}",
        ];
        let a = format!("{:?}", Cli::try_parse_from(spark).unwrap());
        let b = format!("{:?}", Cli::try_parse_from(gnu).unwrap());
        assert_eq!(a, b);
        assert!(a.contains("backlog: Some(5)"), "{a}");
    }

    #[test]
    fn durations_take_spark_milliseconds_and_units() {
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_rate("0").is_err() && parse_rate("-1").is_err());
        assert_eq!(parse_rate(".25"), Ok(0.25));
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
