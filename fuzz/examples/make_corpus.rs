//! Writes the starting corpora under `fuzz/corpus/<target>/` from the repository's own test
//! material: the protocol test vectors (`core/tests/data/vectors.txt`), the connection strings
//! of the URI tests, and commands like those of the broker's tests.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus` (any toolchain; `run.sh`
//! does not need it: the corpora are checked in). Existing files of the same name are
//! overwritten; files the fuzzer added are left alone.

use std::fs;
use std::path::{Path, PathBuf};

use amps_core::codec::{AckType, Command};
use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
};
use amps_fuzz::{frame, fs_file, seed, vectors};

struct Out {
    root: PathBuf,
    written: usize,
    bytes: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        fs::write(dir.join(name), data).expect("write a corpus file");
        self.written += 1;
        self.bytes += data.len();
    }
}

fn cmd(c: Command<'_>) -> Vec<u8> {
    c.to_vec().expect("a test command encodes")
}

/// String literals of `src` that look like connection strings.
fn uri_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in src.split('"').skip(1).step_by(2) {
        if part.contains("://") && !part.contains('{') && !out.iter().any(|u| u == part) {
            out.push(part.to_string());
        }
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut out = Out {
        root,
        written: 0,
        bytes: 0,
    };
    let all = vectors();
    let to_client: Vec<&(String, bool, Vec<u8>)> = all.iter().filter(|v| v.1).collect();
    let to_server: Vec<&(String, bool, Vec<u8>)> = all.iter().filter(|v| !v.1).collect();
    let stream: Vec<u8> = all.iter().flat_map(|v| v.2.clone()).collect();

    // Frame decoder: the whole vector stream and single frames, under several chunkings and
    // buffer sizes; a zero-length and an oversized prefix.
    for (i, prng) in [1u64, 7, 42, 1 << 40].into_iter().enumerate() {
        out.put(
            "frame_decoder",
            &format!("stream-{i}"),
            &seed(i as u8 & 1, prng, &stream),
        );
    }
    for v in all.iter().take(6) {
        out.put("frame_decoder", &v.0, &seed(1, 3, &v.2));
    }
    out.put("frame_decoder", "empty-frame", &seed(1, 5, b"\0\0\0\0{}"));
    out.put(
        "frame_decoder",
        "too-large",
        &seed(0, 5, b"\xff\xff\xff\xff{}"),
    );

    // Header parser: every vector body, and headers from the codec tests' edge cases.
    for v in &all {
        out.put("header_parser", &v.0, &v.2[4..]);
    }
    let edge: [&[u8]; 8] = [
        b" {\n \"t\" : \"orders\" ,\"s\":\"7\", \"cid\": 12, \"mt\":\"json\", \"zz\":{\"deep\":[1,2]}, \"c\":\"publish\"}",
        br#"{"c":"sow","f":"/name = \"x\"","t":"a\u00e9","pw":"hunter22"}"#,
        br#"{"c":"p","s":18446744073709551615,"k":"184467440737095516160","x":null}"#,
        br#"{"c":"p","t":"a","topic":"b","s":1,"s":2,"send_empty":true,"lp":"1s"}body"#,
        br#"{"c":"sow","t":"o","query_id":"q"}{"c":"x","k":"1","l":2}ab{"k":"2","l":1}c"#,
        br#"{"c":"ack","a":"processed","status":"success","o":"max_backlog=3,x=[a,b]"}"#,
        br#"{"c":"oof","t":"o","sids":"1,2,3","reason":"expire","bm":"1|2|,3|4|"}"#,
        b"{\"c\":\"p\",\"t\":\"\xc3\xa9\\ud83d\\ude00\"}\xff\xfe",
    ];
    for (i, h) in edge.iter().enumerate() {
        out.put("header_parser", &format!("edge-{i}"), h);
    }

    // Command round trip: client frames through the decode-then-encode mode, and a few
    // `arbitrary` inputs.
    for v in &to_server {
        let mut d = vec![1u8];
        d.extend_from_slice(&v.2[4..]);
        out.put("command_roundtrip", &v.0, &d);
    }
    let escaped = br#"{"c":"subscribe","t":"a\"b\\c\u0001\u00e9","f":"/x = 'y'","o":"top_n=1"}"#;
    out.put(
        "command_roundtrip",
        "escapes",
        &[&[1u8][..], escaped].concat(),
    );
    for (i, n) in [64usize, 200, 600].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..n).map(|k| (k * 37 + 11) as u8).collect();
        out.put(
            "command_roundtrip",
            &format!("arb-{i}"),
            &[&[0u8][..], &bytes].concat(),
        );
    }

    // URIs: every connection string the URI tests use, and the README's.
    let mut uris = uri_literals(include_str!("../../core/src/uri.rs"));
    uris.extend(uri_literals(include_str!("../../README.md")));
    uris.push("unix://localhost/amps/json?path=/tmp/amps.sock&pretty".into());
    uris.push("tcps://[::1]:9443/amps/json?bind=[::1]:0".into());
    uris.dedup();
    for (i, u) in uris.iter().enumerate() {
        out.put("uri", &format!("u{i:02}"), u.as_bytes());
    }

    // Session: the server side of the vectors. Commands the driver enters get cids 2 (orders
    // subscription), 3 (query), 4 (queue subscription), 5 (bookmark subscription).
    let server = |names: &[&str]| -> Vec<u8> {
        let mut s = Vec::new();
        for v in &to_client {
            if names.iter().any(|n| v.0.starts_with(n)) {
                let body = String::from_utf8_lossy(&v.2[4..])
                    .replace(r#""cid":"6""#, r#""cid":"4""#)
                    .replace(r#""cid":"11""#, r#""cid":"5""#);
                s.extend_from_slice(&frame(body.as_bytes()));
            }
        }
        s
    };
    let after_logon = [
        "V4", "V5", "V6", "V7", "V8", "V9", "V10", "V11", "V12", "V13",
    ];
    use amps_fuzz::session_flags as sf;
    const MANUAL: u8 = 1 << sf::MANUAL_LOGON;
    const HB: u8 = 1 << sf::HEARTBEAT;
    const RECONNECT: u8 = 1 << sf::RECONNECT;
    const TIMEOUT: u8 = 1 << sf::COMMAND_TIMEOUT;
    const BATCH: u8 = 1 << sf::ACK_BATCH;
    out.put("session", "all", &seed(0, 1, &server(&after_logon)));
    out.put(
        "session",
        "all-hb",
        &seed(HB | TIMEOUT, 2, &server(&after_logon)),
    );
    out.put(
        "session",
        "all-reconnect",
        &seed(RECONNECT | BATCH, 3, &server(&after_logon)),
    );
    for g in after_logon {
        out.put("session", g, &seed(0, 9, &server(&[g])));
    }
    out.put("session", "logon-ok", &seed(MANUAL, 4, &server(&["V1.2"])));
    out.put(
        "session",
        "logon-seq",
        &seed(MANUAL, 4, &server(&["V2.1", "V4", "V6"])),
    );
    out.put(
        "session",
        "logon-refused",
        &seed(MANUAL | RECONNECT, 5, &server(&["V3.1"])),
    );
    let retry = frame(
        br#"{"c":"ack","cid":"1","a":"processed","status":"retry","user_id":"alice","pw":"tok-1"}"#,
    );
    out.put(
        "session",
        "logon-retry",
        &seed(MANUAL, 6, &[retry, server(&["V1.2"])].concat()),
    );

    // Broker: the client side of the vectors on one connection (logon included), and commands
    // like the broker tests' on logged-on connections.
    use amps_fuzz::broker_flags as bf;
    const AUTH: u8 = 1 << bf::AUTH;
    const SMALL: u8 = 1 << bf::SMALL_LIMITS;
    const AUTO_LOGON: u8 = 1 << bf::AUTO_LOGON;
    const ONE_CONN: u8 = 1 << bf::ONE_CONN;
    const EXTRA: u8 = 1 << bf::EXTRA_TOPICS;
    let client: Vec<u8> = to_server.iter().flat_map(|v| v.2.clone()).collect();
    out.put("broker", "vectors", &seed(ONE_CONN, 1, &client));
    out.put("broker", "vectors-auth", &seed(ONE_CONN | AUTH, 2, &client));
    out.put(
        "broker",
        "vectors-small",
        &seed(ONE_CONN | SMALL | EXTRA, 3, &client),
    );
    let flow = [
        cmd(Command::subscribe("orders")
            .sub_id("s1")
            .ack(AckType::Processed)),
        cmd(Command::sow_and_subscribe("orders")
            .sub_id("s2")
            .filter("/qty > 10 AND /id LIKE 'A.*'")
            .order_by("/qty DESC")
            .top_n(5)
            .options("oof,send_keys")),
        cmd(Command::delta_subscribe("orders").sub_id("s3")),
        cmd(Command::subscribe("^ord.*").sub_id("s4")),
        cmd(Command::publish("orders", br#"{"id":"A1","qty":100,"tags":["x"]}"#).seq(1)),
        cmd(Command::delta_publish("orders", br#"{"id":"A1","qty":7}"#).seq(2)),
        cmd(Command::publish("events", br#"{"n":"e1"}"#).expiration(1)),
        cmd(Command::subscribe("events")
            .sub_id("s5")
            .bookmark("0")
            .options("replace")),
        cmd(Command::sow("orders")
            .query_id("q1")
            .batch_size(1)
            .acks(AckType::Processed | AckType::Completed | AckType::Stats)),
        cmd(Command::sow_delete_by_keys("orders", "1,2")),
        cmd(Command::subscribe("jobs")
            .sub_id("j1")
            .options("max_backlog=2")),
        cmd(Command::publish("jobs", br#"{"job":1}"#)),
        cmd(Command::publish("jobs", br#"{"job":2}"#)),
        cmd(Command::sow_delete_by_bookmarks("jobs", "1|1|").options("cancel")),
        cmd(Command::publish("quotes", b"35=D\x0155=IBM\x0144=10\x01")),
        cmd(Command::unsubscribe("s1")),
        cmd(Command::unsubscribe_all()),
        cmd(Command::flush().command_id("f1")),
        cmd(Command::heartbeat_start(1)),
        cmd(Command::heartbeat_beat()),
    ]
    .concat();
    out.put("broker", "flow", &seed(AUTO_LOGON, 4, &flow));
    out.put("broker", "flow-extra", &seed(AUTO_LOGON | EXTRA, 5, &flow));
    out.put(
        "broker",
        "flow-auth",
        &seed(AUTO_LOGON | AUTH | SMALL, 6, &flow),
    );
    let mut bad = frame(br#"{"c":"teleport","cid":"42"}"#);
    bad.extend_from_slice(&frame(br#"{"c":"p","s":-1}"#));
    bad.extend_from_slice(b"\0\0\0\0");
    out.put("broker", "malformed", &seed(AUTO_LOGON, 7, &bad));

    // File stores: files the stores themselves wrote through their public API, as they are,
    // torn, and as records.
    let tmp = std::env::temp_dir().join(format!("amps-fuzz-corpus-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let popts = FileStoreOptions {
        fsync: FsyncPolicy::Never,
        ..FileStoreOptions::default()
    };
    {
        let mut p = FilePublishStore::open(tmp.join("publish"), "fuzz", popts).expect("open");
        for seq in 1..=4 {
            let f =
                frame(format!(r#"{{"c":"p","t":"orders","s":{seq}}}{{"id":{seq}}}"#).as_bytes());
            p.store(seq, &f).expect("store");
        }
        p.discard_up_to(1);
        p.discard(3);
    }
    let bopts = BookmarkStoreOptions {
        fsync: FsyncPolicy::Never,
        ..BookmarkStoreOptions::default()
    };
    {
        let mut b =
            FileBookmarkStore::open(tmp.join("bookmarks.log"), "fuzz", bopts).expect("open");
        for (sub, n) in [("1", 3), ("s1", 2)] {
            for i in 1..=n {
                let bm = format!("3084015820777091662|{i}|");
                b.log(sub, &bm).expect("log");
                if i < n {
                    b.discard(sub, &bm).expect("discard");
                }
            }
            b.persisted(sub, "3084015820777091662|1|")
                .expect("persisted");
        }
        b.remove("1");
    }
    let segment = fs::read_dir(tmp.join("publish"))
        .expect("list")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| fs::read(e.path()).expect("read the segment"))
        .expect("a segment");
    let log = fs::read(tmp.join("bookmarks.log")).expect("read the log");
    for (mode, file) in [(0u8, &segment), (1, &log)] {
        let kind = if mode == 0 { "publish" } else { "bookmark" };
        out.put(
            "fs_store",
            &format!("{kind}-file"),
            &[&[mode][..], file].concat(),
        );
        let torn = &file[..file.len() - 5];
        out.put(
            "fs_store",
            &format!("{kind}-torn"),
            &[&[mode][..], torn].concat(),
        );
        let recs = fs_file::to_records(mode == 1, file);
        assert_eq!(
            &fs_file::from_records(mode == 1, "fuzz", &recs),
            file,
            "{kind} records"
        );
        out.put(
            "fs_store",
            &format!("{kind}-records"),
            &[&[mode | 2][..], &recs].concat(),
        );
        let tail = [
            &[mode | 2][..],
            &recs,
            &[fs_file::RAW_TAIL, 9, 0, 0, 0, 1, 2],
        ]
        .concat();
        out.put("fs_store", &format!("{kind}-records-tail"), &tail);
    }
    let _ = fs::remove_dir_all(&tmp);

    println!(
        "wrote {} files, {} bytes, under {}",
        out.written,
        out.bytes,
        out.root.display()
    );
}
