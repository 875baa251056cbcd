//! `amps-broker`: the TCP server binary (see the crate docs of `amps_broker`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use amps_broker::{Config, ServerHandle};

const HELP: &str = "\
amps-broker: an in-memory broker speaking the AMPS protocol (for tests and development)

USAGE:
    amps-broker [--listen ADDR] [--config FILE] [--control ADDR] [--LIMIT VALUE]...

OPTIONS:
    --listen ADDR    address to serve AMPS on (default 127.0.0.1:9007; port 0 picks one)
    --config FILE    TOML configuration (see tests/broker/broker.example.toml); without it:
                     SOW topic `orders` keyed by /id (transaction-logged), logged topic
                     `events`, queue `jobs`, every other topic plain publish/subscribe
    --control ADDR   also listen for fault commands, one per line, answered `ok`/`error: ...`
    -h, --help       this text

Prints `amps-broker listening on ADDR` (and `amps-broker control on ADDR`) once bound.

CONTROL COMMANDS:
    close-all                      close every connection now
    close-client NAME              close the connections logged on as NAME
    close-after N                  close the connection that sends the N-th frame from now
    fail-next-publish [reason]     next publish fails with reason (default: not entitled)
    refuse-logons on [reason]|off  refuse logons (default reason: authentication failed)
    heartbeats on|off              off: send no heartbeats, answer no beats, drop nobody
    delay-acks MS                  hold every ack MS milliseconds (0: off)
    withhold-acks on|off           drop every ack
    hold-compiles on|off           compile no regex topic or filter (their commands wait)
    restart                        drop every connection; keep SOW, log, queues, sequences
    clear                          clear every fault
    help                           list the commands
";

/// The limits part of `--help`, from the defaults themselves.
fn limits_help() -> String {
    let mut out = String::from(
        "\nLIMITS (flags override the config file's `[limits]` table and top-level keys;\n\
         sizes in bytes or with KiB/MiB/GiB, durations like 500ms, 10s, 5m; 0 turns a\n\
         timeout off):\n",
    );
    for (key, value, meaning) in Config::default().describe_limits() {
        let flag = format!("--{} {}", key.replace('_', "-"), value);
        out.push_str(&format!("    {flag:<34} {meaning}\n"));
    }
    out
}

struct Args {
    listen: SocketAddr,
    config: Option<PathBuf>,
    control: Option<SocketAddr>,
    /// `--max-connections 10` → ("max_connections", "10"), in order.
    limits: Vec<(String, String)>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9007)),
        config: None,
        control: None,
        limits: Vec::new(),
    };
    let known: Vec<&str> = Config::default()
        .describe_limits()
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let addr = |v: String| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("bad address `{v}`: {e}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => args.listen = addr(value("--listen")?)?,
            "--config" => args.config = Some(PathBuf::from(value("--config")?)),
            "--control" => args.control = Some(addr(value("--control")?)?),
            other => {
                let key = other.strip_prefix("--").unwrap_or("").replace('-', "_");
                if !known.contains(&key.as_str()) {
                    return Err(format!("unknown argument `{other}` (try --help)"));
                }
                let v = value(other)?;
                args.limits.push((key, v));
            }
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}{}", limits_help());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("amps-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("amps-broker: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    for (key, value) in &args.limits {
        if let Err(e) = config.set(key, value) {
            eprintln!("amps-broker: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = config.validate() {
        eprintln!("amps-broker: {e}");
        return ExitCode::from(2);
    }
    let broker = match ServerHandle::start_blocking(config, args.listen) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("amps-broker: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("amps-broker listening on {}", broker.local_addr());
    if let Some(addr) = args.control {
        match broker.listen_control(addr) {
            Ok(bound) => println!("amps-broker control on {bound}"),
            Err(e) => {
                eprintln!("amps-broker: cannot listen for control on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    loop {
        std::thread::park();
    }
}
