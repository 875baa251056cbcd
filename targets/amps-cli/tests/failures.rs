//! Exit codes and messages: usage errors, unreachable servers, refused commands, timeouts,
//! missing files.

mod common;

use common::*;

#[test]
fn help_and_version_succeed_on_stdout() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0, "{r:?}");
    for cmd in [
        "publish",
        "delta_publish",
        "subscribe",
        "delta_subscribe",
        "sow",
        "sow_and_subscribe",
        "sow_delete",
        "ping",
    ] {
        assert!(r.stdout.contains(cmd), "{cmd} missing from --help");
    }
    assert!(r.stdout.contains("Exit codes"), "{}", r.stdout);
    let r = run(&["help", "sow"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("--orderby") && r.stdout.contains("--topn"),
        "{}",
        r.stdout
    );
    // spark's spelling of help on a command.
    let r = run(&["sow", "-help"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["--version"]);
    assert_eq!((r.code, r.stdout.starts_with("amps ")), (0, true), "{r:?}");
}

#[test]
fn bad_flags_are_usage_errors() {
    // Unknown flag, either spelling.
    for flag in ["-nosuchflag", "--nosuchflag"] {
        let r = run(&["sow", "-server", "127.0.0.1:1", "-topic", "t", flag]);
        assert_eq!(r.code, 2, "{flag}: {r:?}");
        assert!(r.stderr.contains("nosuchflag"), "{}", r.stderr);
    }
    // A flag of another command.
    let r = run(&["sow", "-server", "127.0.0.1:1", "-topic", "t", "-ack"]);
    assert_eq!(r.code, 2, "{r:?}");
    // Required flags.
    let r = run(&["sow", "-topic", "t"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--server"), "{}", r.stderr);
    let r = run(&["sow", "-server", "127.0.0.1:1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--topic"), "{}", r.stderr);
    // Bad values.
    let r = run(&["publish", "-server", "h:1", "-topic", "t", "-rate", "fast"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a positive rate"), "{}", r.stderr);
    let r = run(&[
        "sow",
        "-server",
        "127.0.0.1:1",
        "-topic",
        "t",
        "-timeout",
        "5y",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["sow_delete", "-server", "127.0.0.1:1", "-topic", "t"]);
    assert_eq!(
        r.code, 2,
        "sow_delete needs a filter, keys, data or a file: {r:?}"
    );
    // No command at all.
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["frobnicate"]).code, 2);
}

#[test]
fn a_bad_format_or_uri_is_a_usage_error_before_connecting() {
    let b = broker();
    let r = run(&[
        "sow",
        "-server",
        &server(&b),
        "-topic",
        "t",
        "-format",
        "{nope}",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown field `{nope}`"), "{}", r.stderr);
    let r = run(&["ping", "--uri", "http://example.invalid:1/amps/json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("invalid connection string"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unreachable_server_is_a_connection_failure() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    for args in [
        vec!["ping", "-server", &addr],
        vec!["sow", "-server", &addr, "-topic", "t"],
        vec!["publish", "-server", &addr, "-topic", "t", "-data", "{}"],
        vec!["subscribe", "-server", &addr, "-topic", "t"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("connecting to tcp://{addr}/amps/json failed")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("ConnectionRefused"), "{}", r.stderr);
    }
}

#[test]
fn a_failed_filter_exits_1_with_the_servers_reason() {
    let b = broker();
    for cmd in ["sow", "subscribe", "sow_and_subscribe"] {
        let r = run(&[
            cmd,
            "-server",
            &server(&b),
            "-topic",
            "orders",
            "-filter",
            "/id = = 1",
        ]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert!(r.stderr.contains("BadFilter"), "{cmd}: {}", r.stderr);
        assert!(
            r.stderr.contains("bad filter"),
            "{cmd}: the reason: {}",
            r.stderr
        );
    }
    let r = run(&[
        "sow_delete",
        "-server",
        &server(&b),
        "-topic",
        "orders",
        "-filter",
        "(((",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("sow_delete failed"), "{}", r.stderr);
}

#[test]
fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let b = broker();
    let s = server(&b);
    // Logged on first, then acks are withheld: the query's answer never comes.
    b.control("delay-acks 5000").unwrap();
    let r = run(&["sow", "-server", &s, "-topic", "orders", "-timeout", "300"]);
    assert_eq!(r.code, 3, "the logon ack is late too: {r:?}");
    assert!(r.stderr.contains("TimedOut"), "{}", r.stderr);
    b.control("clear").unwrap();
    b.control("hold-compiles on").unwrap();
    let r = run(&[
        "sow", "-server", &s, "-topic", "orders", "-filter", "/x = 1", "-timeout", "300ms",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("sow failed: TimedOut"), "{}", r.stderr);
    b.control("clear").unwrap();
}

#[test]
fn local_io_errors_exit_4() {
    let b = broker();
    let r = run(&[
        "publish",
        "-server",
        &server(&b),
        "-topic",
        "t",
        "-file",
        "/nonexistent/x",
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("cannot open /nonexistent/x"),
        "{}",
        r.stderr
    );
}
