//! The real binary as an agent: one per user and session (a second start
//! names the running process and exits 3; the lock goes with the process,
//! even on kill -9), and `install --user` / `uninstall --user` with a
//! systemd user unit that `systemd-analyze --user verify` accepts.
#![cfg(target_os = "linux")]

#[path = "support/skip.rs"]
mod skip;

#[path = "support/banner.rs"]
mod banner;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `$WSCONNECTOR_BIN` when set (scripts copy the
/// binary so a parallel build sharing the target dir cannot swap it), else
/// cargo's.
fn bin() -> String {
    std::env::var("WSCONNECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsconnector").to_string())
}
const DEADLINE: Duration = Duration::from_secs(20);

/// A port free on both loopback addresses (the lock applies to fixed ports).
fn free_port() -> u16 {
    loop {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = v4.local_addr().unwrap().port();
        if TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

fn agent(runtime_dir: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["run", "--no-tray", "--config"])
        .arg(config)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .env_remove("RUST_LOG");
    c
}

/// Starts an agent and waits for its banner.
fn start(runtime_dir: &Path, config: &Path) -> Child {
    let mut child = agent(runtime_dir, config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = banner::read_banner(&mut child, DEADLINE);
    assert!(banner.contains("listening on"), "{banner:?}");
    child
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "agent did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_second_agent_names_the_running_one_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.xml");
    std::fs::write(
        &config,
        format!(
            "<configuration><Socket-port>{}</Socket-port><Log-level>WARN</Log-level></configuration>",
            free_port()
        ),
    )
    .unwrap();
    let runtime = dir.path().join("run");

    let mut first = start(&runtime, &config);
    let second: Output = agent(&runtime, &config).output().unwrap();
    assert_eq!(second.status.code(), Some(3), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already running") && err.contains(&format!("pid {}, {}", first.id(), bin())),
        "{err}"
    );
    assert!(
        err.contains(&runtime.join("wsconnector/agent.lock").display().to_string()),
        "{err}"
    );

    // A clean stop frees it.
    sigterm(&first);
    assert_eq!(wait_exit(&mut first).code(), Some(0));
    let mut third = start(&runtime, &config);

    // So does kill -9: the OS drops the lock with the process (a pid
    // file would now be stale and block the next start).
    third.kill().unwrap();
    third.wait().unwrap();
    let mut fourth = start(&runtime, &config);
    sigterm(&fourth);
    assert_eq!(wait_exit(&mut fourth).code(), Some(0));
}

#[test]
fn install_user_writes_a_systemd_unit_that_verifies_and_uninstall_removes_it() {
    let home = tempfile::tempdir().unwrap();
    let config_home = home.path().join(".config");
    let runtime = home.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let config = home.path().join("my config.xml");
    std::fs::write(&config, "<configuration/>").unwrap();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config_home)
            .env("XDG_RUNTIME_DIR", &runtime)
            // No user manager of ours may be touched by the test.
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .output()
            .unwrap()
    };

    let refused = run(&["install"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--user"));

    let out = run(&["install", "--user", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let unit = config_home.join("systemd/user/wsconnector.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains(&format!(
            "ExecStart=\"{}\" run --config \"{}\"\n",
            bin(),
            config.display()
        )),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&unit.display().to_string()));

    match Command::new("systemd-analyze")
        .arg("--user")
        .arg("verify")
        .arg(&unit)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
    {
        Ok(v) => {
            let err = String::from_utf8_lossy(&v.stderr);
            assert!(v.status.success(), "systemd-analyze verify: {err}");
            // Unknown or misspelt settings are only warnings: none allowed.
            assert!(
                !err.contains("wsconnector.service"),
                "systemd-analyze verify: {err}"
            );
        }
        Err(e) => skip::skipped(
            "systemd unit verification",
            &format!("systemd-analyze cannot run ({e}); apt-get install systemd"),
        ),
    }

    let out = run(&["uninstall", "--user"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!unit.exists());
    let again = run(&["uninstall", "--user"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}
