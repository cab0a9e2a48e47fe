//! Smoke test of the cross-built `wsconnector.exe` (under Wine in CI:
//! scripts/test-windows.sh): `--version` answers, and `run` on port 0
//! prints its banner and answers `GET /health` to a client in this
//! (another Windows) process. The request has no Origin, so the guard
//! answers 200 only when the Windows peer identity in the daemon found this
//! test process's socket and its user equal to the daemon's.
//!
//! Under Wine the daemon may look the client up before the client has
//! sent anything, when Wine still shows owner pid 0 (tests/peer_windows.rs):
//! the guard then refuses, fail closed; that answer is accepted under Wine
//! only, and said loudly.

#![cfg(windows)]
#![allow(unsafe_code)]

#[path = "support/skip.rs"]
mod skip;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");

/// Whether this process runs under Wine (ntdll exports `wine_get_version`).
fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll: Vec<u16> = "ntdll.dll".encode_utf16().chain([0]).collect();
    // SAFETY: ntdll is always loaded; both names are NUL-terminated.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("wsconnector {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_serves_health_on_both_loopback_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.xml");
    std::fs::write(
        &cfg,
        "<configuration>\n<Socket-port>0</Socket-port><Log-level>WARN</Log-level>\n</configuration>\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the daemon also when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("banner in time");
    assert!(
        line.contains("ws://127.0.0.1:") && line.contains("ws://[::1]:"),
        "{line}"
    );
    let start = line.find("127.0.0.1:").unwrap() + "127.0.0.1:".len();
    let port: u16 = line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    if response.starts_with("HTTP/1.1 200") {
        drop(child);
        return;
    }
    // Refused for an unknown peer: only Wine's late owner pid explains it.
    assert!(under_wine() && response.contains("refused"), "{response}");
    skip::skipped(
        "wsconnector.exe /health under Wine",
        "the daemon looked the client up before Wine knew its owner pid; refused (fail closed)",
    );
    drop(child);
}
