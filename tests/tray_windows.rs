//! The agent on Windows (under Wine in CI: scripts/test-windows.sh):
//! - the tray icon appears: the agent's hidden tray window (class
//!   `tray_icon_app`, owned by its pid) exists, and the agent's own
//!   `Shell_NotifyIconW(NIM_MODIFY)` of its icon succeeded (it logs so; the
//!   probe cannot be made from this process: Wine's X11 driver keeps tray
//!   icons per process);
//! - `wsconnector.exe` is a GUI-subsystem program (no console window at
//!   logon) whose output still reaches a redirected stdout;
//! - one agent per user and session (exit 3 naming the running pid);
//! - `install --user` writes the HKCU Run value `reg query` reads back, and
//!   `uninstall --user` removes it.

#![cfg(windows)]
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::HWND;
use windows_sys::Win32::UI::WindowsAndMessaging::{FindWindowExW, GetWindowThreadProcessId};

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");
const DEADLINE: Duration = Duration::from_secs(60);
const RUN_KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the agent also when an assertion fails.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    let cfg = dir.join("config.xml");
    std::fs::write(
        &cfg,
        format!("<configuration><Socket-port>{port}</Socket-port><Log-level>WARN</Log-level></configuration>"),
    )
    .unwrap();
    cfg
}

/// Starts `run --config cfg` (with `LOCALAPPDATA` = `appdata`, where the
/// single-instance lock lives) and waits for its banner.
fn start(cfg: &Path, appdata: &Path, extra: &[&str]) -> Agent {
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(cfg)
        .args(extra)
        .env("LOCALAPPDATA", appdata)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let agent = Agent(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).expect("banner in time");
    assert!(line.contains("listening on ws://127.0.0.1:"), "{line:?}");
    agent
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// The top-level window of class `class` owned by process `pid`.
fn window_of(pid: u32, class: &str) -> Option<HWND> {
    let class = wide(class);
    let mut after: HWND = std::ptr::null_mut();
    loop {
        // SAFETY: `class` is NUL-terminated and outlives the call; a null
        // parent searches top-level windows, a null `after` starts at the top.
        let hwnd = unsafe {
            FindWindowExW(
                std::ptr::null_mut(),
                after,
                class.as_ptr(),
                std::ptr::null(),
            )
        };
        if hwnd.is_null() {
            return None;
        }
        let mut owner = 0u32;
        // SAFETY: `hwnd` was just returned; `owner` is a valid out pointer.
        unsafe { GetWindowThreadProcessId(hwnd, &mut owner) };
        if owner == pid {
            return Some(hwnd);
        }
        after = hwnd;
    }
}

fn free_port() -> u16 {
    loop {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = v4.local_addr().unwrap().port();
        if TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn the_tray_icon_appears_in_the_notification_area() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.xml");
    std::fs::write(
        &cfg,
        "<configuration><Socket-port>0</Socket-port><Log-level>INFO</Log-level></configuration>",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("LOCALAPPDATA", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let agent = Agent(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let end = Instant::now() + DEADLINE;
    let mut log = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no tray verdict in time; log:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("tray: the shell shows the icon in the notification area") {
            break;
        }
        assert!(
            !line.contains("tray: the shell does not show the icon")
                && !line.contains("no tray host"),
            "{log}"
        );
    }
    let pid = agent.0.id();
    wait_for("the agent's tray window", || {
        window_of(pid, "tray_icon_app")
    });
}

/// IMAGE_SUBSYSTEM_WINDOWS_GUI in the PE optional header: Windows starts
/// the agent at logon without a console window.
#[test]
fn the_exe_is_a_gui_subsystem_program_with_working_redirected_output() {
    let pe = std::fs::read(BIN).unwrap();
    let at = u32::from_le_bytes(pe[0x3C..0x40].try_into().unwrap()) as usize;
    assert_eq!(&pe[at..at + 4], b"PE\0\0");
    // Signature (4) + COFF header (20) + offset of Subsystem (68).
    let subsystem = u16::from_le_bytes(pe[at + 92..at + 94].try_into().unwrap());
    assert_eq!(subsystem, 2, "IMAGE_SUBSYSTEM_WINDOWS_GUI");
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("wsconnector {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_second_agent_in_the_session_names_the_first_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port());
    let first = start(&cfg, dir.path(), &["--no-tray"]);
    let second = Command::new(BIN)
        .args(["run", "--no-tray", "--config"])
        .arg(&cfg)
        .env("LOCALAPPDATA", dir.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already running") && err.contains(&format!("pid {},", first.0.id())),
        "{err}"
    );
}

fn reg_query() -> Option<String> {
    let out = Command::new("reg")
        .args(["query", RUN_KEY, "/v", "wsconnector"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn install_user_adds_the_run_value_and_uninstall_removes_it() {
    let cfg = r"C:\ProgramData\wsconnector test\config.xml";
    let out = Command::new(BIN)
        .args(["install", "--user", "--config", cfg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let value = reg_query().expect("the Run value after install");
    // The agent records its own path as Windows sees it (Z:\... under Wine).
    let expected = format!("wsconnector.exe\" run --config \"{cfg}\"");
    assert!(
        value.contains("REG_SZ") && value.contains(&expected) && value.contains("    \""),
        "{value} lacks {expected}"
    );

    let out = Command::new(BIN)
        .args(["uninstall", "--user"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(reg_query(), None, "the Run value is gone");
    let again = Command::new(BIN)
        .args(["uninstall", "--user"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}
