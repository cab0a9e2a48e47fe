//! A second OS user for tests: created with `useradd` when missing (needs
//! root), and commands run as that user through `setpriv`. Used by
//! tests/other_user.rs, tests/adversarial.rs and tests/resources.rs.
#![allow(dead_code)] // each test binary uses a part

use std::process::{Command, Output};

/// The second user's login name.
pub const OTHER: &str = "wsc-peer-test";

/// True when this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists() -> bool {
    Command::new("id")
        .arg(OTHER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Make sure the second user exists; `Err` says why the test cannot run.
pub fn ensure_other_user() -> Result<(), String> {
    if !is_root() {
        return Err("not running as root (cannot create a second OS user)".into());
    }
    for tool in ["useradd", "setpriv", "bash", "timeout"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} is not installed"));
        }
    }
    if !user_exists() {
        let out = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", OTHER])
            .output()
            .map_err(|e| e.to_string())?;
        // Another test binary may have created it meanwhile.
        if !user_exists() {
            return Err(format!(
                "useradd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// A command running `program` as the second user (no supplementary groups),
/// for callers that set their own arguments, environment and stdio.
pub fn command_as_other(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={OTHER}"),
        &format!("--regid={OTHER}"),
        "--clear-groups",
    ])
    .arg(program);
    cmd
}

/// `program args...` as the second user, with extra environment variables.
pub fn run_as_other(program: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = command_as_other(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("setpriv runs")
}

/// Sends one raw HTTP request (with CRLFs) as the second user and returns
/// everything the daemon answered until it closed (send `Connection: close`)
/// or 10 s passed.
pub async fn http_as_other(addr: std::net::SocketAddr, request: String) -> String {
    let (ip, port) = (addr.ip().to_string(), addr.port());
    let script =
        format!("exec 3<>/dev/tcp/{ip}/{port}; printf '%s' \"$REQ\" >&3; timeout 10 cat <&3");
    let out = tokio::task::spawn_blocking(move || {
        run_as_other("bash", &["-c", &script], &[("REQ", request)])
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
