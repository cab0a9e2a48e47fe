//! A second OS user for the tests that prove isolation between users (the
//! approach of tests/other_user.rs): created with `useradd` when the tests
//! run as root, and commands run as that user through `setpriv`.
#![allow(dead_code)] // each test binary uses its own part of it

use std::path::Path;
use std::process::Command;

/// The second user's name (shared with tests/other_user.rs).
pub const OTHER: &str = "wsc-peer-test";

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Make sure the second user exists; `Err` says why a test cannot run.
pub fn ensure_other_user() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Err("not running as root (cannot create a second OS user)".into());
    }
    for tool in ["useradd", "setpriv"] {
        if !succeeds("sh", &["-c", &format!("command -v {tool}")]) {
            return Err(format!("{tool} is not installed"));
        }
    }
    if succeeds("id", &[OTHER]) {
        return Ok(());
    }
    let out = Command::new("useradd")
        .args(["-M", "-s", "/usr/sbin/nologin", OTHER])
        .output()
        .map_err(|e| e.to_string())?;
    // Another test binary may have created it meanwhile.
    if succeeds("id", &[OTHER]) {
        Ok(())
    } else {
        Err(format!(
            "useradd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A command running `program` as the second user (no supplementary groups).
pub fn command_as_other(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={OTHER}"),
        &format!("--regid={OTHER}"),
        "--clear-groups",
    ])
    .arg(program);
    c
}
