//! `amps sow`, `amps sow_delete` and `amps ping` end to end against amps-broker on loopback.

mod common;

use common::*;

/// Publish `{"id":i,"qty":i*10}` for i in 1..=n to `orders`.
fn orders(b: &amps_broker::ServerHandle, n: u32) {
    let c = client(b, "loader");
    for i in 1..=n {
        c.publish("orders", format!(r#"{{"id":{i},"qty":{}}}"#, i * 10))
            .unwrap();
    }
    c.flush().unwrap();
    c.close().unwrap();
}

#[test]
fn sow_with_filter_orderby_topn_and_batchsize_in_both_spellings() {
    let b = broker();
    orders(&b, 30);
    let s = server(&b);
    let spark = run(&[
        "sow",
        "-server",
        &s,
        "-topic",
        "orders",
        "-filter",
        "/qty > 100",
        "-orderby",
        "/qty DESC",
        "-topn",
        "5",
        "-batchsize",
        "2",
    ]);
    let gnu = run(&[
        "sow",
        "--server",
        &s,
        "--topic",
        "orders",
        "--filter",
        "/qty > 100",
        "--orderby",
        "/qty DESC",
        "--topn",
        "5",
        "--batchsize",
        "2",
    ]);
    assert_eq!(spark.code, 0, "{spark:?}");
    assert_eq!(spark.stdout, gnu.stdout);
    assert_eq!(
        spark.lines(),
        [30, 29, 28, 27, 26]
            .iter()
            .map(|i| format!(r#"{{"id":{i},"qty":{}}}"#, i * 10))
            .collect::<Vec<_>>()
    );
    assert!(
        spark.stderr.contains("5 records received"),
        "{}",
        spark.stderr
    );
}

#[test]
fn sow_formats_templates_and_json_with_headers() {
    let b = broker();
    orders(&b, 2);
    let s = server(&b);
    let r = run(&[
        "sow",
        "-server",
        &s,
        "-topic",
        "orders",
        "-orderby",
        "/id",
        "-format",
        "{command} {topic} {sowkey} {length}:{data}",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines = r.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let parts: Vec<&str> = lines[0].splitn(4, ' ').collect();
    assert_eq!(parts[0], "sow");
    assert_eq!(parts[1], "orders");
    assert!(!parts[2].is_empty(), "sow key: {lines:?}");
    assert_eq!(parts[3], r#"17:{"id":1,"qty":10}"#);

    let r = run(&[
        "sow", "-server", &s, "-topic", "orders", "-orderby", "/id", "--format", "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let first: serde_json::Value = serde_json::from_str(r.lines()[0]).unwrap();
    assert_eq!(first["command"], "sow");
    assert_eq!(first["topic"], "orders");
    assert!(first["sow_key"].is_string(), "{first}");
    assert_eq!(first["data"], r#"{"id":1,"qty":10}"#);

    // Another delimiter between records.
    let r = run(&[
        "sow",
        "-server",
        &s,
        "-topic",
        "orders",
        "-orderby",
        "/id",
        "-delimiter",
        "124",
    ]);
    assert_eq!(r.stdout, r#"{"id":1,"qty":10}|{"id":2,"qty":20}|"#);
}

#[test]
fn sow_delete_by_filter_keys_data_and_file() {
    let b = broker();
    orders(&b, 10);
    let s = server(&b);
    let count = || b.inspect(|e| e.sow_count("orders")).unwrap().unwrap();
    assert_eq!(count(), 10);

    let r = run(&[
        "sow_delete",
        "-server",
        &s,
        "-topic",
        "orders",
        "-filter",
        "/id <= 3",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "3 records deleted from orders (3 matched)");
    assert_eq!(count(), 7);

    let keyed = run(&[
        "sow", "-server", &s, "-topic", "orders", "-filter", "/id = 4", "-format", "{sowkey}",
    ]);
    let key = keyed.stdout.trim().to_owned();
    let r = run(&[
        "sow_delete",
        "-server",
        &s,
        "-topic",
        "orders",
        "-keys",
        &key,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["records_deleted"], 1);
    assert_eq!(count(), 6);

    let r = run(&[
        "sow_delete",
        "-server",
        &s,
        "-topic",
        "orders",
        "-data",
        r#"{"id":5,"qty":0}"#,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(count(), 5);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("del.txt");
    std::fs::write(&file, "{\"id\":6}\n{\"id\":7}\n").unwrap();
    let r = run(&[
        "sow-delete",
        "--server",
        &s,
        "--topic",
        "orders",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("2 records deleted"), "{}", r.stdout);
    assert_eq!(count(), 3);
}

#[test]
fn ping_reports_the_server_version_and_a_round_trip() {
    let b = broker();
    let r = run(&["ping", "-server", &server(&b)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("server version 5.3.5.0"), "{}", r.stdout);
    assert!(r.stdout.contains("round trip"), "{}", r.stdout);
    // A full connection string.
    let uri = format!("tcp://{}/amps/json", b.local_addr());
    let r = run(&["ping", "--uri", &uri]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with(&uri), "{}", r.stdout);
}

#[test]
fn credentials_are_used_and_never_shown() {
    let mut cfg = config();
    cfg.users.push(amps_broker::config::User {
        name: "alice".into(),
        password: "s3cret".into(),
        challenge: false,
    });
    let b = broker_with(cfg);
    let ok = run(&[
        "ping",
        "-server",
        &format!("alice:s3cret@{}", b.local_addr()),
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(!ok.stdout.contains("s3cret"), "{}", ok.stdout);
    let bad = run(&[
        "ping",
        "-server",
        &format!("alice:wrong-pw@{}", b.local_addr()),
    ]);
    assert_eq!(bad.code, 3, "{bad:?}");
    assert!(
        bad.stderr.contains("logon to tcp://alice:"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("Authentication"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("wrong-pw"), "{}", bad.stderr);
}
