//! The real binary's banner: `wsconnector V listening on ws://127.0.0.1:P
//! and ws://[::1]:P (...)`, the first line it prints on stdout once it
//! listens. Shared by the tests that spawn the binary.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

/// Waits up to `deadline` for the banner line on `child`'s piped stdout.
pub fn read_banner(child: &mut Child, deadline: Duration) -> String {
    let out = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(deadline).expect("banner in time")
}

/// The port of a banner line.
pub fn port_of(banner: &str) -> u16 {
    let start = banner
        .find("127.0.0.1:")
        .unwrap_or_else(|| panic!("v4 address in banner: {banner}"))
        + "127.0.0.1:".len();
    banner[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("port in banner: {banner}"))
}
