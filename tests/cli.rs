//! The real binary: --version, check-config, start/stop on SIGTERM, a taken
//! port, and the embedded defaults.

#[path = "support/skip.rs"]
mod skip;

#[path = "support/banner.rs"]
mod banner;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("config.xml");
    std::fs::write(&p, format!("<configuration>\n{body}\n</configuration>\n")).unwrap();
    p
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "daemon did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("wsconnector {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_prints_settings_masks_secrets_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "<Socket-port>9443</Socket-port><Password>hunter2</Password><AllowedHosts>crm.example.com</AllowedHosts><Frobnicate>1</Frobnicate>",
    );
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("9443"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "password leaked: {stdout}");
    assert!(
        stdout.contains("Frobnicate"),
        "unknown setting warned: {stdout}"
    );
    assert!(
        stdout.contains("warning:") && stdout.contains("crm.example.com"),
        "{stdout}"
    );
}

#[test]
fn check_config_rejects_a_bad_file_naming_file_setting_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "<Socket-port>84x3</Socket-port>");
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.xml") && err.contains("Socket-port") && err.contains("84x3"),
        "{err}"
    );
    // The daemon refuses to start on it too.
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn runs_prints_banner_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "<Socket-port>0</Socket-port><Log-level>WARN</Log-level>",
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = banner::read_banner(&mut child, Duration::from_secs(20));
    assert!(
        line.contains("ws://127.0.0.1:") && line.contains("ws://[::1]:"),
        "{line}"
    );
    assert!(line.contains(&cfg.display().to_string()), "{line}");
    let port = banner::port_of(&line);
    // It serves.
    let mut s = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn a_taken_port_fails_naming_the_address() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &format!("<Socket-port>{port}</Socket-port>"));
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn starts_on_embedded_defaults_without_a_config_file() {
    if TcpListener::bind((Ipv4Addr::LOCALHOST, 8443)).is_err()
        || TcpListener::bind(("::1", 8443)).is_err()
    {
        skip::skipped(
            "embedded-defaults start",
            "port 8443 is in use on this machine",
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = banner::read_banner(&mut child, Duration::from_secs(20));
    sigterm(&child);
    let status = wait_exit(&mut child);
    assert!(
        line.contains("ws://127.0.0.1:8443") && line.contains("ws://[::1]:8443"),
        "{line}"
    );
    assert!(line.contains("embedded default configuration"), "{line}");
    assert_eq!(status.code(), Some(0));
}
