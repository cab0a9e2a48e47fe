//! `wsconnector ctl` against a real daemon: both are the built binary,
//! spawned as processes of this OS user. Every command, its output on
//! stdout, and the exit codes scripts rely on (0 ok, 1 refused, 2 usage,
//! 3 not running), over WS and over WSS pinned to the configured certificate.

#[path = "support/banner.rs"]
mod banner;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");
const DEADLINE: Duration = Duration::from_secs(20);

/// A daemon process, stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, extra)
}

fn start_in(dir: tempfile::TempDir, extra: &str) -> Daemon {
    let config = dir.path().join("config.xml");
    std::fs::write(
        &config,
        format!("<configuration>\n<Socket-port>0</Socket-port><Log-level>WARN</Log-level>{extra}\n</configuration>\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = banner::read_banner(&mut child, DEADLINE);
    let port = banner::port_of(&banner);
    Daemon {
        child,
        port,
        config,
        _dir: dir,
    }
}

fn ctl_args(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(&d.config)
        .args(["ctl", "--port", &d.port.to_string()])
        .args(args);
    c
}

fn ctl(d: &Daemon, args: &[&str]) -> Output {
    ctl_args(d, args).output().unwrap()
}

fn ctl_stdin(d: &Daemon, args: &[&str], input: &str) -> Output {
    let mut child = ctl_args(d, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs and expects exit 0; returns stdout.
fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = ctl(d, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "ctl {args:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Runs and expects `code`; returns stderr.
fn exits(out: Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    err
}

#[test]
fn status_reports_version_port_clients_and_environments() {
    let d = start("");
    let s = json_of(&ok(&d, &["status"]));
    assert_eq!(s["product"], "wsconnector");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["port"], d.port);
    assert_eq!(s["scheme"], "ws");
    assert_eq!(s["clients"], 0, "{s}");
    assert_eq!(s["environments"], json!([]));
    ok(&d, &["set", "VOICE", "a=1"]);
    let s = json_of(&ok(&d, &["status"]));
    assert_eq!(s["environments"][0]["environment"], "VOICE", "{s}");
    assert_eq!(s["environments"][0]["variables"], 1, "{s}");
}

#[test]
fn set_and_get_keep_types() {
    let d = start("");
    ok(
        &d,
        &[
            "set",
            "VOICE",
            "ANI=3225551234",
            "vip=true",
            "name=Ann Lee",
            "zip=01234",
            "none=null",
            "q=\"42\"",
        ],
    );
    ok(&d, &["set", "--string", "VOICE", "n=42"]);
    let v = json_of(&ok(&d, &["get", "VOICE"]));
    assert_eq!(
        v,
        json!({"ANI": 3225551234u64, "vip": true, "name": "Ann Lee", "zip": "01234", "none": null, "q": "42", "n": "42"})
    );
    assert_eq!(ok(&d, &["get", "VOICE", "ANI"]).trim(), "3225551234");
    assert_eq!(ok(&d, &["get", "VOICE", "name"]).trim(), "\"Ann Lee\"");
    assert_eq!(ok(&d, &["get", "VOICE", "name", "--raw"]).trim(), "Ann Lee");
    let all = json_of(&ok(&d, &["get"]));
    assert_eq!(all["VOICE"]["vip"], true);
    // Absent things exit 1 and are not created.
    let err = exits(ctl(&d, &["get", "NOPE"]), 1);
    assert!(err.contains("no environment \"NOPE\""), "{err}");
    exits(ctl(&d, &["get", "VOICE", "missing"]), 1);
    assert!(json_of(&ok(&d, &["get"])).get("NOPE").is_none());
}

#[test]
fn ctl_simulate_is_wsconnector_simulate() {
    let d = start("");
    ok(
        &d,
        &["simulate", "VOICE", "EvRinging", "--ani", "3225551234"],
    );
    assert_eq!(
        ok(&d, &["get", "VOICE", "GEN_T2P", "--raw"]).trim(),
        "EvRinging"
    );
    assert_eq!(
        ok(&d, &["get", "VOICE", "ANI", "--raw"]).trim(),
        "3225551234"
    );
    exits(ctl(&d, &["simulate", "VOICE"]), 2);
}

#[test]
fn clean_empties_an_existing_environment_only() {
    let d = start("");
    ok(&d, &["set", "VOICE", "a=1", "b=2"]);
    ok(&d, &["clean", "VOICE"]);
    assert_eq!(json_of(&ok(&d, &["get", "VOICE"])), json!({}));
    exits(ctl(&d, &["clean", "NOPE"]), 1);
}

/// Spawns `ctl watch ...` and waits until it says it is subscribed.
fn watcher(d: &Daemon, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = ctl_args(d, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(DEADLINE).expect("watch says it is ready");
    assert!(line.starts_with("watching "), "{line}");
    (child, rx)
}

fn wait_exit(child: &mut Child) -> i32 {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn watch_prints_events_as_json_lines_until_count() {
    let d = start("");
    let (mut w, _err) = watcher(&d, &["watch", "VOICE", "--count", "3"]);
    ok(&d, &["set", "VOICE", "GEN_T2P=EvRinging", "ANI=3225551234"]);
    ok(&d, &["clean", "VOICE"]);
    assert_eq!(wait_exit(&mut w), 0);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut w.stdout.take().unwrap(), &mut out).unwrap();
    let events: Vec<Value> = out.lines().map(json_of).collect();
    assert_eq!(events.len(), 3, "{out}");
    assert_eq!(
        (
            events[0]["event"].as_str(),
            events[0]["VarChanged"].as_str(),
            events[0]["ValueChanged"].as_str()
        ),
        (Some("ContextChanged"), Some("GEN_T2P"), Some("EvRinging"))
    );
    assert_eq!(events[1]["ValueChanged"], 3225551234u64);
    assert_eq!(events[2]["event"], "EnvironmentCleaned");
    assert!(events[2]["seq"].as_u64() > events[1]["seq"].as_u64());
}

#[test]
fn watch_of_every_environment_stops_on_ctrl_c() {
    let d = start("");
    ok(&d, &["set", "VOICE", "a=1"]);
    ok(&d, &["set", "EMAIL", "b=1"]);
    let (mut w, _err) = watcher(&d, &["watch"]);
    ok(&d, &["set", "EMAIL", "b=2"]);
    let stdout = w.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = json_of(&lines.next().unwrap().unwrap());
    assert_eq!(
        (
            first["EnvironmentName"].as_str(),
            first["ValueChanged"].as_i64()
        ),
        (Some("EMAIL"), Some(2))
    );
    Command::new("kill")
        .args(["-INT", &w.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut w), 0);
    // Ctrl-C right after "watching": still a clean exit.
    let (mut w, _err) = watcher(&d, &["watch", "VOICE"]);
    Command::new("kill")
        .args(["-INT", &w.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut w), 0);
    // Without environments there is nothing to watch.
    let d2 = start("");
    exits(ctl(&d2, &["watch"]), 1);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn dump_and_load_round_trip_as_json_and_xml() {
    let d = start("");
    ok(
        &d,
        &[
            "set",
            "VOICE",
            "ANI=3225551234",
            "vip=true",
            "none=null",
            "note=<b>&amp; \"x\"</b>",
        ],
    );
    ok(&d, &["set", "EMAIL", "subject=Invoice 42"]);
    let json_dump = ok(&d, &["dump"]);
    let xml_dump = ok(&d, &["dump", "--format", "xml"]);
    assert!(xml_dump.starts_with("<?xml"), "{xml_dump}");
    assert!(
        xml_dump.contains("&lt;b&gt;&amp;amp; \"x\"&lt;/b&gt;"),
        "{xml_dump}"
    );
    let original = json_of(&json_dump);

    let tmp = tempfile::tempdir().unwrap();
    let json_file = write(tmp.path(), "dump.json", &json_dump);
    let d2 = start("");
    ok(&d2, &["load", json_file.to_str().unwrap()]);
    assert_eq!(json_of(&ok(&d2, &["dump"])), original);

    // XML through stdin, format detected.
    let d3 = start("");
    let out = ctl_stdin(&d3, &["load"], &xml_dump);
    exits(out, 0);
    assert_eq!(json_of(&ok(&d3, &["dump"])), original);
    // Explicit format, from a file.
    let xml_file = write(tmp.path(), "dump.xml", &xml_dump);
    ok(
        &d3,
        &["load", "--format", "xml", xml_file.to_str().unwrap()],
    );
    assert_eq!(json_of(&ok(&d3, &["dump"])), original);

    // Broken input is a usage error naming where.
    let bad = write(
        tmp.path(),
        "bad.xml",
        "<context>\n<environment name=\"E\">\n</wrong>",
    );
    let err = exits(ctl(&d3, &["load", bad.to_str().unwrap()]), 2);
    assert!(err.contains("line 3"), "{err}");
    let bad = write(tmp.path(), "bad.json", "[1, 2]");
    exits(ctl(&d3, &["load", bad.to_str().unwrap()]), 2);
    exits(ctl(&d3, &["load", "/nonexistent/file.json"]), 2);
}

#[test]
fn exit_codes_for_scripts() {
    let d = start("");
    // 2: usage.
    exits(ctl(&d, &[]), 2);
    exits(ctl(&d, &["set", "VOICE"]), 2);
    let err = exits(ctl(&d, &["set", "VOICE", "novalue"]), 2);
    assert!(err.contains("NAME=VALUE"), "{err}");
    exits(ctl(&d, &["dump", "--format", "yaml"]), 2);
    // 1: the daemon refused (FAILURE), with its code.
    let err = exits(ctl(&d, &["set", "bad name", "x=1"]), 1);
    assert!(err.contains("invalid_name"), "{err}");
    let err = exits(ctl(&d, &["set", "VOICE", "bad name=1"]), 1);
    assert!(
        err.contains("setContextJSON") && err.contains("invalid_name"),
        "{err}"
    );
    // 3: nothing runs there.
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&d.config)
        .args(["ctl", "--port", &port.to_string(), "status"])
        .output()
        .unwrap();
    let err = exits(out, 3);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&d.config)
        .args(["ctl", "--port", &port.to_string(), "get"])
        .output()
        .unwrap();
    exits(out, 3);
    // Port 0 in config.xml and no --port: usage.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&d.config)
        .args(["ctl", "status"])
        .output()
        .unwrap();
    exits(out, 2);
}

fn wss_config(dir: &Path, name: &str) -> String {
    let certs = dir.join(name);
    let opts = wsconnector::tls::cert::CreateOptions {
        pfx_password: Some(wsconnector::config::Secret("pw-for-tests".into())),
        ..Default::default()
    };
    let created = wsconnector::tls::cert::create(&certs, &opts).unwrap();
    format!(
        "<Socket-type>WSS</Socket-type><Certificate-path>{}</Certificate-path><Password>pw-for-tests</Password>",
        created.pfx_path.display()
    )
}

#[test]
fn wss_pins_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wss_config(dir.path(), "certs");
    let other = wss_config(dir.path(), "other");
    let d = start_in(dir, &cfg);
    let s = json_of(&ok(&d, &["status"]));
    assert_eq!(s["scheme"], "wss", "{s}");
    ok(&d, &["set", "VOICE", "a=1"]);
    assert_eq!(ok(&d, &["get", "VOICE", "a"]).trim(), "1");
    // simulate rides the same pinned client (it does not clear: EvReady).
    ok(
        &d,
        &["simulate", "VOICE", "EvReady", "--data", "Reason=lunch"],
    );
    assert_eq!(
        ok(&d, &["get", "VOICE", "GEN_T2P", "--raw"]).trim(),
        "EvReady"
    );
    assert_eq!(ok(&d, &["get", "VOICE", "a"]).trim(), "1");
    // A config naming another certificate: the daemon is not trusted.
    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("config.xml");
    std::fs::write(&wrong, format!("<configuration>{other}</configuration>")).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&wrong)
        .args(["ctl", "--port", &d.port.to_string(), "get"])
        .output()
        .unwrap();
    let err = exits(out, 1);
    assert!(err.contains("TLS"), "{err}");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&wrong)
        .args([
            "simulate",
            "--port",
            &d.port.to_string(),
            "VOICE",
            "EvReady",
        ])
        .output()
        .unwrap();
    let err = exits(out, 1);
    assert!(err.contains("TLS"), "{err}");
}
