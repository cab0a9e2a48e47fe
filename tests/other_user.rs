//! A second OS user on the same machine: refused at the handshake (403)
//! unless AllowOtherUsers, and never as a native client. Needs root to
//! create the user; otherwise prints a loud SKIPPED line.

mod common;
#[path = "support/second_user.rs"]
mod second_user;
#[path = "support/skip.rs"]
mod skip;

use common::*;
use second_user::ensure_other_user;

/// Send one HTTP request as the other user; returns the status line.
async fn status_as_other(addr: std::net::SocketAddr, request: String) -> String {
    let (ip, port) = match addr {
        std::net::SocketAddr::V4(a) => (a.ip().to_string(), a.port()),
        std::net::SocketAddr::V6(a) => (a.ip().to_string(), a.port()),
    };
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}; printf '%s' \"$REQ\" >&3; head -n 1 <&3");
    let out = tokio::task::spawn_blocking(move || {
        second_user::run_as_other("bash", &["-c", &script], &[("REQ", request)])
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn other_os_user_is_refused_unless_allowed() {
    if let Err(why) = ensure_other_user() {
        skip::skipped("second-OS-user handshake test", &why);
        return;
    }
    for allow in [false, true] {
        let d = start_with(|c| c.allow_other_users = allow).await;
        for addr in [v4(&d), v6(&d)] {
            let browser = format!(
                "GET /health HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: https://crm.example.com\r\n\r\n",
                d.port
            );
            let native = format!("GET /health HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", d.port);
            let upgrade = format!(
                "{}\r\n\r\n",
                upgrade_head(&host(&d), &["Origin: https://crm.example.com"]).replace('\n', "\r\n")
            );
            let expect_browser = if allow {
                "HTTP/1.1 200 OK"
            } else {
                "HTTP/1.1 403 Forbidden"
            };
            assert_eq!(
                status_as_other(addr, browser).await,
                expect_browser,
                "allow={allow} {addr}"
            );
            let expect_upgrade = if allow {
                "HTTP/1.1 101 Switching Protocols"
            } else {
                "HTTP/1.1 403 Forbidden"
            };
            assert_eq!(
                status_as_other(addr, upgrade).await,
                expect_upgrade,
                "allow={allow} {addr}"
            );
            // A native client (no Origin) must always be the same user.
            assert_eq!(
                status_as_other(addr, native).await,
                "HTTP/1.1 403 Forbidden",
                "allow={allow} {addr}"
            );
        }
        // The same requests from our own user pass.
        let r = raw_http(v4(&d), &format!("GET /health HTTP/1.1\nHost: {}", host(&d))).await;
        assert_eq!(r.status, 200);
    }
}
