//! `wsconnector service install|uninstall` on Linux into a sysroot, and the
//! shipped units checked by `systemd-analyze verify` (and its offline
//! security score printed, for the record).
#![cfg(target_os = "linux")]

#[path = "support/skip.rs"]
mod skip;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `systemd-analyze ARGS`; `None` (after a loud skip) when it cannot run.
fn analyze(args: &[&str], runtime: &Path) -> Option<std::process::Output> {
    match Command::new("systemd-analyze")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
    {
        Ok(o) => Some(o),
        Err(e) => {
            skip::skipped(
                "systemd unit verification",
                &format!("systemd-analyze cannot run ({e}); apt-get install systemd"),
            );
            None
        }
    }
}

#[test]
fn install_writes_verified_units_and_a_service_config_and_uninstall_removes_them() {
    let root = tempfile::tempdir().unwrap();
    let sysroot = root.path().join("sysroot");
    let runtime = root.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let out = run(&["service", "install", "--sysroot", sysroot.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(
            "to do (systemd is not running here): systemctl enable --now wsconnector.service"
        ),
        "{stdout}"
    );

    let unit = sysroot.join("etc/systemd/system/wsconnector.service");
    let agent = sysroot.join("etc/systemd/user/wsconnector-agent.service");
    let config = sysroot.join("etc/wsconnector/config.xml");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains(&format!(
            "ExecStart={BIN} --config /etc/wsconnector/config.xml service run"
        )),
        "{text}"
    );
    for line in [
        "DynamicUser=yes",
        "User=wsconnector",
        "CapabilityBoundingSet=\n",
        "RuntimeDirectory=wsconnector",
    ] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
    let agent_text = std::fs::read_to_string(&agent).unwrap();
    assert!(agent_text.contains(&format!(
        "ExecStart={BIN} --config /etc/wsconnector/config.xml agent"
    )));
    // The configuration it wrote is valid and says service.
    let check = run(&["check-config", config.to_str().unwrap()]);
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("Mode = service"));

    if let Some(v) = analyze(&["verify", unit.to_str().unwrap()], &runtime) {
        let err = String::from_utf8_lossy(&v.stderr);
        assert!(v.status.success(), "systemd-analyze verify: {err}");
        assert!(
            !err.contains("wsconnector.service"),
            "systemd-analyze verify: {err}"
        );
    }
    if let Some(v) = analyze(&["--user", "verify", agent.to_str().unwrap()], &runtime) {
        let err = String::from_utf8_lossy(&v.stderr);
        assert!(v.status.success(), "systemd-analyze --user verify: {err}");
        assert!(
            !err.contains("wsconnector-agent.service"),
            "systemd-analyze verify: {err}"
        );
    }
    if let Some(v) = analyze(
        &["security", "--offline=yes", unit.to_str().unwrap()],
        &runtime,
    ) {
        // Figures for the record (docs/service.md); not a pass/fail.
        let report = String::from_utf8_lossy(&v.stdout);
        if let Some(line) = report.lines().find(|l| l.contains("Overall exposure")) {
            eprintln!("systemd-analyze security: {}", line.trim());
        }
    }

    let out = run(&[
        "service",
        "uninstall",
        "--sysroot",
        sysroot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(!unit.exists() && !agent.exists());
    assert!(config.exists(), "the administrator's config.xml is kept");
}
