//! # amps
//!
//! A command-line client for AMPS that takes 60East spark's commands and flags as spark spells
//! them (`amps sow -server localhost:9007 -topic orders -filter "/qty > 10"`), and the same
//! flags GNU style (`--server`), plus `--uri` for a full connection string.
//!
//! Commands: `publish`, `delta_publish`, `subscribe`, `delta_subscribe`, `sow`,
//! `sow_and_subscribe`, `sow_and_delta_subscribe`, `sow_delete`, `ping`. `amps help <command>`
//! lists each one's flags.
//!
//! Data goes to standard output (the payload alone by default, `-format json` for one JSON
//! object per message with its headers, or a `{field}` template); progress, summaries and
//! errors go to standard error.
//!
//! Exit codes: 0 success (also a subscription stopped with Ctrl-C), 1 the command failed on
//! the server (its reason is printed) or timed out, 2 usage error, 3 connection or logon
//! failure (or the connection was lost), 4 local I/O error (input file, standard output).
#![forbid(unsafe_code)]

mod args;
mod conn;
mod input;
mod output;
mod progress;
mod publish;
mod sow;
mod subscribe;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use crate::args::{Cli, Cmd};
use crate::conn::Failure;
use crate::subscribe::Plan;

fn main() -> ExitCode {
    let argv = match args::rewrite(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("amps: {f}");
            f.exit_code()
        }
    }
}

/// Stop on the first Ctrl-C (or SIGTERM); a second one ends the process at once.
fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .map_err(|e| Failure::Io(format!("cannot handle Ctrl-C: {e}")))?;
    Ok(stop)
}

fn run(cmd: &Cmd) -> Result<(), Failure> {
    match cmd {
        Cmd::Publish(a) => publish::run(a, false),
        Cmd::DeltaPublish(a) => publish::run(a, true),
        Cmd::Sow(a) => sow::query(a),
        Cmd::SowDelete(a) => sow::delete(a),
        Cmd::Ping(a) => sow::ping(a),
        Cmd::Subscribe(a) | Cmd::DeltaSubscribe(a) => {
            let stop = stop_flag()?;
            let plan = Plan {
                conn: &a.conn,
                topic: &a.topic,
                sub: &a.sub,
                out: &a.out,
                query: None,
                delta: matches!(cmd, Cmd::DeltaSubscribe(_)),
            };
            subscribe::run(&plan, &stop)
        }
        Cmd::SowAndSubscribe(a) | Cmd::SowAndDeltaSubscribe(a) => {
            let stop = stop_flag()?;
            let plan = Plan {
                conn: &a.conn,
                topic: &a.topic,
                sub: &a.sub,
                out: &a.out,
                query: Some(&a.query),
                delta: matches!(cmd, Cmd::SowAndDeltaSubscribe(_)),
            };
            subscribe::run(&plan, &stop)
        }
    }
}
