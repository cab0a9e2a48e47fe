//! Extra OS users for the service-mode tests (tests/service_linux.rs): the
//! service's own account and two agents' users, created with `useradd`
//! when missing (needs root), and commands run as them through `setpriv`.
#![allow(dead_code)] // each test binary uses a part

use std::process::Command;

/// The account the test service runs as (its `ServiceUser`).
pub const SERVICE: &str = "wsc-svc-test";
/// The first agent user ("alice" of the scenarios).
pub const ALICE: &str = "wsc-peer-test";
/// The second agent user ("bob").
pub const BOB: &str = "wsc-peer-test2";

fn exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The numeric uid of `name`.
pub fn uid(name: &str) -> u32 {
    let out = Command::new("id").args(["-u", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Make sure `names` exist (system accounts without a home or shell);
/// `Err` says why the test cannot run.
pub fn ensure(names: &[&str]) -> Result<(), String> {
    if !super::second_user::is_root() {
        return Err("not running as root (cannot create OS users)".into());
    }
    for tool in ["useradd", "setpriv"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Err(format!("{tool} is not installed"));
        }
    }
    for name in names {
        if !exists(name) {
            let out = Command::new("useradd")
                .args(["-M", "-r", "-s", "/usr/sbin/nologin", name])
                .output()
                .map_err(|e| e.to_string())?;
            // Another test binary may have created it meanwhile.
            if !exists(name) {
                return Err(format!(
                    "useradd {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    Ok(())
}

/// `program` run as `user` (its own group, no supplementary groups).
pub fn command_as(user: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={user}"),
        &format!("--regid={user}"),
        "--clear-groups",
    ])
    .arg(program);
    cmd
}
