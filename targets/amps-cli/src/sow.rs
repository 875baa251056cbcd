//! `sow` (query and print, with progress for large results), `sow_delete` (by filter, SOW
//! keys, data or a file of messages) and `ping` (connect, log on, round trip).

use std::time::Instant;

use amps::{Command, ErrorKind, Message};

use crate::args::{PingArgs, ProgressMode, SowArgs, SowDeleteArgs};
use crate::conn::{self, Failure};
use crate::input::Records;
use crate::output::{Format, Printer, printable};
use crate::progress::{self, Progress};

/// Records between progress updates of a query.
const UPDATE_EVERY: u64 = 1024;

/// `sow`: print the records of the query; the stream ends after the last one.
pub(crate) fn query(args: &SowArgs) -> Result<(), Failure> {
    let format = Format::parse(args.out.format.as_deref())?;
    let uri = conn::uri_of(&args.conn)?;
    let c = conn::connect(&args.conn, &uri, |b| b)?;
    let client = c.client;
    let mut cmd = Command::sow(&args.topic);
    if let Some(f) = &args.filter {
        cmd = cmd.filter(f);
    }
    if let Some(o) = &args.options {
        cmd = cmd.options(o);
    }
    let q = &args.query;
    if let Some(o) = &q.orderby {
        cmd = cmd.order_by(o);
    }
    if let Some(n) = q.topn {
        cmd = cmd.top_n(n);
    }
    if let Some(n) = q.batchsize {
        cmd = cmd.batch_size(n);
    }
    let stream = client
        .execute(&cmd)
        .map_err(|e| Failure::from_client("sow", &e))?;
    let mode = if args.out.quiet {
        ProgressMode::Never
    } else {
        args.out.progress
    };
    let progress = Progress::new(mode, "received", None);
    let mut printer = Printer::new(format, args.out.delimiter);
    let mut n = 0u64;
    let mut outcome = Ok(());
    for item in stream {
        let m = match item {
            Ok(m) => m,
            Err(e) => {
                outcome = Err(Failure::from_client("sow", &e));
                break;
            }
        };
        if !printable(&m, printer.format()) {
            continue;
        }
        if let Err(e) = printer.print(&m) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                outcome = Err(Failure::Io(format!("standard output: {e}")));
            }
            break;
        }
        n += 1;
        if n.is_multiple_of(UPDATE_EVERY) {
            progress.update(n, 0);
        }
    }
    progress.finish(n, 0);
    let flushed = printer.flush();
    let _ = client.close();
    outcome?;
    if let Err(e) = flushed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(Failure::Io(format!("standard output: {e}")));
    }
    if !args.out.quiet {
        eprintln!(
            "{} from {} on {}",
            progress::summary("received", n, progress.elapsed()),
            args.topic,
            c.shown
        );
    }
    Ok(())
}

/// `sow_delete`: one command for a filter, keys or data; one per message of a file (the
/// counts are added up).
pub(crate) fn delete(args: &SowDeleteArgs) -> Result<(), Failure> {
    let uri = conn::uri_of(&args.conn)?;
    let mut records = match &args.file {
        Some(p) => Some(Records::open(Some(p), args.delimiter)?),
        None => None,
    };
    let c = conn::connect(&args.conn, &uri, |b| b)?;
    let client = c.client;
    let topic = args.topic.as_str();
    let fail = |e: amps::Error| Failure::from_client("sow_delete", &e);
    let mut deleted = 0u64;
    let mut matched = 0u64;
    let mut count = |ack: &Message| {
        deleted += ack.records_deleted().unwrap_or(0);
        matched += ack.matches().unwrap_or(0);
    };
    let result = (|| {
        if let Some(f) = &args.filter {
            count(&client.sow_delete(topic, f).map_err(fail)?);
        } else if let Some(k) = &args.keys {
            count(&client.sow_delete_by_keys(topic, k).map_err(fail)?);
        } else if let Some(d) = &args.data {
            count(&client.sow_delete_by_data(topic, d).map_err(fail)?);
        } else if let Some(r) = &mut records {
            while let Some(rec) = r.next_record()? {
                count(&client.sow_delete_by_data(topic, rec).map_err(fail)?);
            }
        }
        Ok(())
    })();
    let _ = client.close();
    result?;
    let mut printer = Printer::new(Format::Data, b'\n');
    let text = if args.format == "json" {
        serde_json::json!({
            "command": "sow_delete",
            "topic": topic,
            "records_deleted": deleted,
            "matches": matched,
        })
        .to_string()
    } else {
        format!("{deleted} records deleted from {topic} ({matched} matched)")
    };
    printer
        .line(&text)
        .and_then(|()| printer.flush())
        .map_err(|e| Failure::Io(format!("standard output: {e}")))
}

/// `ping`: connect, log on, one round trip (a flush), and say so.
pub(crate) fn ping(args: &PingArgs) -> Result<(), Failure> {
    let uri = conn::uri_of(&args.conn)?;
    let started = Instant::now();
    let c = conn::connect(&args.conn, &uri, |b| b)?;
    let logon = started.elapsed();
    let t = Instant::now();
    let flushed = c.client.flush();
    let rtt = t.elapsed();
    let _ = c.client.close();
    flushed.map_err(|e| match e.kind() {
        ErrorKind::TimedOut => Failure::Connection(format!("{}: no answer: {e}", c.shown)),
        _ => Failure::from_client("ping", &e),
    })?;
    let version = c.server_version.as_deref().unwrap_or("unknown");
    let mut printer = Printer::new(Format::Data, b'\n');
    printer
        .line(&format!(
            "{}: logged on in {:.3} ms, round trip {:.3} ms, server version {version}",
            c.shown,
            logon.as_secs_f64() * 1e3,
            rtt.as_secs_f64() * 1e3
        ))
        .and_then(|()| printer.flush())
        .map_err(|e| Failure::Io(format!("standard output: {e}")))
}
