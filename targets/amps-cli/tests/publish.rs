//! `amps publish` and `amps delta_publish` end to end against amps-broker on loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_large_publish_from_a_file_arrives_complete_and_in_order() {
    let b = broker();
    let sub = client(&b, "counter");
    let mut stream = sub.subscribe("bulk", None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.txt");
    const N: usize = 200_000;
    write_records(&file, N, 100);

    let r = run(&[
        "publish",
        "-server",
        &server(&b),
        "-topic",
        "bulk",
        "-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{N} records published")),
        "summary line: {}",
        r.stderr
    );
    for i in 0..N {
        let m = stream
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("message {i} of {N}: {e}"))
            .expect("stream open");
        let data = m.data_str().unwrap();
        assert_eq!(data.len(), 100);
        assert!(data.starts_with(&format!(r#"{{"id":{i},"#)), "{i}: {data}");
    }
    // Nothing more: a flush round trip on the subscriber's connection passes everything the
    // broker had queued for it.
    sub.flush().unwrap();
    assert!(stream.is_empty(), "{} extra messages", stream.len());
}

#[test]
fn stdin_data_and_a_custom_delimiter() {
    let b = broker();
    let sub = client(&b, "reader");
    let mut stream = sub.subscribe("t", None).unwrap();
    // Standard input, records separated by `|` (124), GNU spelling.
    let r = run_with_input(
        &[
            "publish",
            "--server",
            &server(&b),
            "--topic",
            "t",
            "--delimiter",
            "124",
        ],
        b"{\"a\":1}|{\"a\":2}\n|{\"a\":3}",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("3 records published"), "{}", r.stderr);
    // One record given with -data, newlines and all.
    let r = run(&[
        "publish",
        "-server",
        &server(&b),
        "-topic",
        "t",
        "-data",
        "x\ny",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let got: Vec<String> = (0..4)
        .map(|_| {
            let m = stream.recv_timeout(DEADLINE).unwrap().unwrap();
            m.data_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, [r#"{"a":1}"#, "{\"a\":2}\n", r#"{"a":3}"#, "x\ny"]);
}

#[test]
fn rate_spreads_the_records_over_time() {
    let b = broker();
    let sub = client(&b, "reader");
    let mut stream = sub.subscribe("paced", None).unwrap();
    let input: String = (0..10).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let started = Instant::now();
    let r = run_with_input(
        &[
            "publish",
            "-server",
            &server(&b),
            "-topic",
            "paced",
            "-rate",
            "50",
        ],
        input.as_bytes(),
    );
    // Ten records at 50 per second cannot take less than 9 intervals of 20 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.code, 0, "{r:?}");
    for i in 0..10 {
        let m = stream.recv_timeout(DEADLINE).unwrap().unwrap();
        assert_eq!(m.data_str().unwrap(), format!("{{\"n\":{i}}}"));
    }
}

#[test]
fn delta_publish_merges_into_the_sow_record() {
    let b = broker();
    let s = server(&b);
    let r = run(&[
        "publish",
        "-server",
        &s,
        "-topic",
        "orders",
        "-data",
        r#"{"id":1,"a":1,"b":2}"#,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&[
        "delta_publish",
        "-server",
        &s,
        "-topic",
        "orders",
        "-data",
        r#"{"id":1,"b":3}"#,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // The -delta flag does the same.
    let r = run(&[
        "publish",
        "-server",
        &s,
        "-topic",
        "orders",
        "-delta",
        "-data",
        r#"{"id":1,"c":4}"#,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["sow", "-server", &s, "-topic", "orders"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rec: serde_json::Value = serde_json::from_str(r.lines()[0]).unwrap();
    assert_eq!(rec, serde_json::json!({"id":1,"a":1,"b":3,"c":4}));
}

#[test]
fn progress_is_drawn_when_asked_and_not_into_a_pipe_by_default() {
    let b = broker();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.txt");
    write_records(&file, 20_000, 100);
    let f = file.to_str().unwrap();
    let quiet = run(&["publish", "-server", &server(&b), "-topic", "p", "-file", f]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(!quiet.stderr.contains("ETA"), "{}", quiet.stderr);
    let shown = run(&[
        "publish",
        "-server",
        &server(&b),
        "-topic",
        "p",
        "-file",
        f,
        "--progress",
        "always",
        "-rate",
        "40000",
    ]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stderr.contains("ETA") && shown.stderr.contains("records published ("),
        "{}",
        shown.stderr
    );
    let silent = run(&[
        "publish",
        "-server",
        &server(&b),
        "-topic",
        "p",
        "-data",
        "{}",
        "-q",
    ]);
    assert_eq!((silent.code, silent.stderr.as_str()), (0, ""), "{silent:?}");
}
