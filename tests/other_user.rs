//! A second OS user on the same machine: refused at the handshake (403)
//! unless AllowOtherUsers, and never as a native client. Needs root to
//! create the user; otherwise prints a loud SKIPPED line.

mod common;
#[path = "support/skip.rs"]
mod skip;

use std::process::Command;

use common::*;

const OTHER: &str = "wsc-peer-test";

/// Make sure the second user exists; `Err` says why the test cannot run.
fn ensure_other_user() -> Result<(), String> {
    if !nix_is_root() {
        return Err("not running as root (cannot create a second OS user)".into());
    }
    for tool in ["useradd", "setpriv", "bash"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} is not installed"));
        }
    }
    let exists = Command::new("id")
        .arg(OTHER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let out = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", OTHER])
            .output()
            .map_err(|e| e.to_string())?;
        // Another test binary may have created it meanwhile.
        let now = Command::new("id")
            .arg(OTHER)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !now {
            return Err(format!(
                "useradd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Send one HTTP request as the other user; returns the status line.
async fn status_as_other(addr: std::net::SocketAddr, request: String) -> String {
    let (ip, port) = match addr {
        std::net::SocketAddr::V4(a) => (a.ip().to_string(), a.port()),
        std::net::SocketAddr::V6(a) => (a.ip().to_string(), a.port()),
    };
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}; printf '%s' \"$REQ\" >&3; head -n 1 <&3");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("setpriv")
            .args([
                &format!("--reuid={OTHER}"),
                &format!("--regid={OTHER}"),
                "--clear-groups",
                "bash",
                "-c",
                &script,
            ])
            .env("REQ", request)
            .output()
            .unwrap()
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
