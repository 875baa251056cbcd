//! Child process of the amps-fs crash tests (`tests/crash.rs`): publishes through a
//! [`FilePublishStore`], or consumes a bookmark subscription through a [`FileBookmarkStore`],
//! against amps-broker, printing one line per step until the test kills it with SIGKILL.
//!
//! ```text
//! amps-fs-crash-child publish <addr> <store dir> <client name> <fsync> <seed | drain>
//! amps-fs-crash-child subscribe <addr> <bookmark log> <client name> <fsync> [until=<i>]
//! amps-fs-crash-child hold <store dir> <client name>
//! ```
//!
//! `fsync` is `always`, `every` or `never`. A publisher disconnects now and then (pattern from
//! `seed`) and keeps publishing into its store while offline, as an HA client does during an
//! outage, so that kills find messages that only the store holds; it reconnects after a while,
//! or when the store is full, and the session replays them. Lines: `ready ...` once logged on
//! (and, for a publisher, once the store's replay went out), `stored <seq>` after the store
//! accepted a publish, `offline` / `online`, `drained` when nothing is unpersisted (with
//! `drain`, which publishes nothing new),
//! `got <i>` / `discarded <i>` around the discard of message `i`, `open` (hold: both stores
//! are open and locked until stdin closes), `error <why>` before a non-zero exit.

mod driver;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use amps_core::codec::Command;
use amps_core::codec::bookmark::MOST_RECENT;
use amps_core::session::{
    Config, ConnectionState, HeapStorage, Limits, Parts, PublishError, Session, Storage,
};
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
};
use driver::{Conn, Ev};

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            println!("error {e}");
            2
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Res<()> {
    let arg = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}"))
    };
    match arg(0)? {
        "hold" => hold(Path::new(arg(1)?), arg(2)?),
        mode => {
            let addr: SocketAddr = arg(1)?.parse().map_err(|e| format!("address: {e}"))?;
            let path = Path::new(arg(2)?);
            let name = arg(3)?;
            let fsync = match arg(4)? {
                "always" => FsyncPolicy::Always,
                "every" => FsyncPolicy::Every {
                    writes: 16,
                    interval: Duration::from_millis(2),
                },
                "never" => FsyncPolicy::Never,
                other => return Err(format!("fsync policy `{other}`")),
            };
            let extra = args.get(5).map(String::as_str);
            match mode {
                "publish" => {
                    let seed = match extra {
                        Some("drain") => None,
                        Some(s) => Some(s.parse::<u64>().map_err(|e| format!("seed: {e}"))?),
                        None => return Err("missing seed".into()),
                    };
                    publish(addr, path, name, fsync, seed)
                }
                "subscribe" => {
                    let until = extra
                        .and_then(|e| e.strip_prefix("until="))
                        .map(|n| n.parse::<u64>().map_err(|e| e.to_string()))
                        .transpose()?;
                    subscribe(addr, path, name, fsync, until)
                }
                other => Err(format!("mode `{other}`")),
            }
        }
    }
}

/// A session named `name` with these stores, connected to `addr` and logging on.
fn connect<P: PublishStore, B: BookmarkStore>(
    addr: SocketAddr,
    name: &str,
    publish: P,
    bookmarks: B,
) -> Res<Conn<HeapStorage<P, B>>> {
    let mut config = Config::new(name);
    config.limits = Limits {
        max_frame: 1 << 20,
        rx_bytes: (1 << 20) + 4,
        tx_bytes: 1 << 16,
        ..Limits::default()
    };
    let parts = Parts::heap(&config.limits, publish, bookmarks);
    let session = Session::new(&config, parts).map_err(|e| format!("{e:?}"))?;
    Conn::connect(addr, session).map_err(|e| e.to_string())
}

/// Pump until `done` holds for an event (failing on a failure).
fn wait_for<S: Storage>(conn: &mut Conn<S>, done: impl Fn(&Ev) -> bool) -> Res<()> {
    loop {
        for ev in conn
            .pump(Duration::from_millis(50))
            .map_err(|e| e.to_string())?
        {
            check(&ev)?;
            if done(&ev) {
                return Ok(());
            }
        }
    }
}

fn check(ev: &Ev) -> Res<()> {
    match ev {
        Ev::Failed(why) => Err(format!("failure: {why}")),
        _ => Ok(()),
    }
}

fn publish(
    addr: SocketAddr,
    dir: &Path,
    name: &str,
    fsync: FsyncPolicy,
    seed: Option<u64>,
) -> Res<()> {
    // A small window so that the store fills during outages, and small segments so that
    // rotation and deletion happen under the kills too.
    let opts = FileStoreOptions {
        fsync,
        max_messages: 64,
        segment_bytes: 4096,
        ..FileStoreOptions::default()
    };
    let store = FilePublishStore::open(dir, name, opts).map_err(|e| e.to_string())?;
    let mut conn = connect(addr, name, store, NoBookmarkStore)?;
    // The store's replay went out.
    wait_for(&mut conn, |ev| {
        matches!(ev, Ev::State(ConnectionState::PublishReplayed))
    })?;
    println!(
        "ready {} {}",
        conn.session.publish_store().last_seq(),
        conn.session.unpersisted_count()
    );
    let Some(seed) = seed else {
        while conn.session.unpersisted_count() > 0 {
            for ev in conn
                .pump(Duration::from_millis(20))
                .map_err(|e| e.to_string())?
            {
                check(&ev)?;
            }
        }
        println!("drained");
        return Ok(());
    };
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Messages until the phase (online or offline) changes.
    let mut phase_left = 10 + next(50);
    loop {
        if phase_left == 0 {
            let now = conn.now();
            if conn.is_open() {
                conn.session.disconnect(now);
                println!("offline");
                phase_left = 1 + next(40);
            } else {
                conn.session.start(now);
                println!("online");
                phase_left = 10 + next(50);
            }
        }
        let seq = conn.session.next_seq();
        // The payload names its sequence number so the test can check replayed frames.
        let data = format!("{{\"s\":{seq}}}");
        let now = conn.now();
        let wait = match conn.session.publish(now, "events", data.as_bytes()) {
            Ok(Some(s)) if s == seq => {
                println!("stored {s}");
                phase_left -= 1;
                Duration::ZERO
            }
            Ok(other) => return Err(format!("publish numbered {other:?}, expected {seq}")),
            // The store is full: offline, end the outage; online, wait for persisted acks
            // (the core's backpressure).
            Err(PublishError::WindowFull) => {
                if !conn.is_open() {
                    phase_left = 0;
                }
                Duration::from_millis(5)
            }
            Err(PublishError::WouldBlock) => Duration::ZERO,
            Err(e) => return Err(format!("publish: {e}")),
        };
        for ev in conn.pump(wait).map_err(|e| e.to_string())? {
            // Our own `disconnect` fails whatever was pending; nothing else may fail.
            if !matches!(&ev, Ev::Failed(why) if why == "Disconnected") {
                check(&ev)?;
            }
        }
    }
}

fn subscribe(
    addr: SocketAddr,
    path: &Path,
    name: &str,
    fsync: FsyncPolicy,
    until: Option<u64>,
) -> Res<()> {
    // A tiny automatic-prune threshold, so that kills also land in and around prunes.
    let opts = BookmarkStoreOptions {
        fsync,
        auto_prune_bytes: Some(4096),
        ..BookmarkStoreOptions::default()
    };
    let store = FileBookmarkStore::open(path, name, opts).map_err(|e| e.to_string())?;
    let mut conn = connect(addr, name, NoPublishStore, store)?;
    wait_for(&mut conn, |ev| {
        matches!(ev, Ev::State(ConnectionState::LoggedOn))
    })?;
    let now = conn.now();
    // MOST_RECENT: resolved from the bookmark store, EPOCH when it is empty (docs/protocol.md
    // §10.1).
    let cmd = Command::subscribe("events")
        .sub_id("s1")
        .bookmark(MOST_RECENT);
    conn.session
        .execute(now, &cmd)
        .map_err(|e| format!("subscribe: {e:?}"))?;
    println!("ready");
    loop {
        for ev in conn
            .pump(Duration::from_millis(50))
            .map_err(|e| e.to_string())?
        {
            check(&ev)?;
            if matches!(ev, Ev::State(ConnectionState::Disconnected)) {
                return Err("connection lost".into());
            }
            let Ev::Delivery { id, bookmark, data } = ev else {
                continue;
            };
            let i = index_of(&data).ok_or("message without an index")?;
            println!("got {i}");
            conn.session
                .discard(id, &bookmark)
                .map_err(|e| format!("discard: {e}"))?;
            println!("discarded {i}");
            if until == Some(i) {
                return Ok(());
            }
        }
    }
}

/// `N` from a payload `{"i":N}`.
fn index_of(data: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(data).ok()?;
    let rest = s.split("\"i\":").nth(1)?;
    rest.trim_end_matches('}').trim().parse().ok()
}

fn hold(dir: &Path, name: &str) -> Res<()> {
    let _p = FilePublishStore::open(dir.join("publish"), name, FileStoreOptions::default())
        .map_err(|e| e.to_string())?;
    let _b = FileBookmarkStore::open(dir.join("bookmarks"), name, BookmarkStoreOptions::default())
        .map_err(|e| e.to_string())?;
    println!("open");
    // Until the test closes our stdin (or kills us).
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?
        > 0
    {}
    Ok(())
}
