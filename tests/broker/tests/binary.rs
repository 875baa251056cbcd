//! The `amps-broker` binary: arguments, startup line, config file, control port.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command as Proc, Stdio};

use amps_core::codec::Command;
use common::*;

struct Running {
    child: Child,
    addr: SocketAddr,
    control: Option<SocketAddr>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Running {
    let mut child = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("amps-broker listening on ")
        .unwrap_or_else(|| panic!("startup line: {first}"))
        .parse()
        .unwrap();
    let control = extra.contains(&"--control").then(|| {
        let l = lines.next().unwrap().unwrap();
        l.strip_prefix("amps-broker control on ")
            .unwrap()
            .parse()
            .unwrap()
    });
    Running {
        child,
        addr,
        control,
    }
}

#[test]
fn help_lists_the_control_commands() {
    let out = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for cmd in [
        "close-all",
        "close-after",
        "fail-next-publish",
        "refuse-logons",
        "heartbeats",
        "delay-acks",
        "withhold-acks",
        "restart",
    ] {
        assert!(text.contains(cmd), "{cmd}");
    }
    let bad = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn serves_the_default_set_and_takes_control_commands() {
    let r = start(&["--control", "127.0.0.1:0"]);
    let mut ctl = TcpStream::connect(r.control.unwrap()).unwrap();
    ctl.set_read_timeout(Some(GUARD)).unwrap();
    let mut replies = BufReader::new(ctl.try_clone().unwrap()).lines();
    let mut say = |line: &str| {
        ctl.write_all(format!("{line}\n").as_bytes()).unwrap();
        replies.next().unwrap().unwrap()
    };
    assert_eq!(say("refuse-logons on"), "ok");
    let mut c = Client::connect(r.addr);
    c.send(&Command::logon("x").command_id("1"));
    assert_eq!(c.expect_close()[0].reason(), Some("authentication failed"));
    assert_eq!(say("refuse-logons off"), "ok");
    assert!(say("frobnicate").starts_with("error:"));
    assert!(say("help").contains("close-all"));
    let mut c = Client::logon(r.addr, "x");
    assert!(c.request(&Command::sow("orders")).ok(), "default SOW topic");
    assert_eq!(say("close-all"), "ok");
    assert!(c.expect_close().len() <= 3);
}

#[test]
fn loads_a_config_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/broker.example.toml");
    let r = start(&["--config", path]);
    let mut c = Client::connect(r.addr);
    c.send(&Command::logon("x").command_id("1"));
    assert_eq!(
        c.expect_close()[0].reason(),
        Some("authentication failed"),
        "the example file turns authentication on"
    );
    let bad = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
        .args(["--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn help_lists_every_limit_with_its_default() {
    let out = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "--max-connections 1024",
        "--logon-timeout 10s",
        "--idle-timeout 300s",
        "--max-frame-before-logon 64KiB",
        "--max-input-bytes 256MiB",
        "--max-output-bytes 256MiB",
        "--regex-size-limit 4MiB",
        "--max-filter-len 256KiB",
        "--max-pattern-bytes 256MiB",
        "hold-compiles",
    ] {
        assert!(text.contains(line), "{line} missing from --help");
    }
}

#[test]
fn limit_flags_apply_and_bad_values_are_refused() {
    let r = start(&["--max-connections", "1", "--logon-timeout", "0"]);
    let _first = Client::logon(r.addr, "first");
    // The cap is reached: the next connection is closed at once, without a frame.
    let mut second = Client::connect(r.addr);
    assert!(second.expect_close().is_empty());
    for bad in [
        ["--max-connections", "none"],
        ["--max-filter-nesting", "65"],
        ["--logon-timeout", "soon"],
        ["--input-queue-bytes", "1KiB"],
    ] {
        let out = Proc::new(env!("CARGO_BIN_EXE_amps-broker"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
