//! The real `wsconnector` binary as a separate OS process, for the tests
//! that need what an in-process daemon cannot give: its own memory figures
//! (`/proc/PID/status`), `kill -9`, and a restart on the same port. Every
//! wait polls under a deadline; the daemon is killed when the handle drops.
#![allow(dead_code)] // each test binary uses its own part of it

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The daemon binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");

/// How long a start, a restart or an exit may take on a loaded CI machine.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// Memory figures of a process, in KiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident size so far (the peak).
    pub hwm_kib: u64,
    /// `VmPeak`: the highest virtual size so far; a reserved but untouched
    /// buffer shows here even when it never becomes resident.
    pub vm_peak_kib: u64,
    /// `Threads`: how many threads the process has now.
    pub threads: u64,
}

impl Memory {
    /// Reads the figures of process `pid`.
    pub fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status:\n{status}"))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
            vm_peak_kib: field("VmPeak:"),
            threads: field("Threads:"),
        }
    }
}

/// One running daemon process.
pub struct DaemonProcess {
    /// The child; killed on drop.
    child: Child,
    /// The port it listens on (127.0.0.1 and [::1]).
    pub port: u16,
    /// Its standard error (the log, at the level the settings give).
    log_path: PathBuf,
}

/// Why a start did not give a running daemon.
#[derive(Debug)]
pub enum StartError {
    /// The process exited before printing its banner (e.g. port taken).
    Exited(ExitStatus, String),
    /// No banner within the deadline.
    NoBanner(String),
}

impl DaemonProcess {
    /// Writes `<dir>/config.xml` with `Socket-port` = `port` (0 = any free
    /// one), INFO logging and `settings` (XML elements), starts
    /// `wsconnector run` on it and waits for the banner.
    pub fn try_start(dir: &Path, settings: &str, port: u16) -> Result<DaemonProcess, StartError> {
        let config = dir.join("config.xml");
        std::fs::write(
            &config,
            format!(
                "<configuration>\n<Socket-port>{port}</Socket-port>\n<Log-level>INFO</Log-level>\n{settings}\n</configuration>\n"
            ),
        )
        .unwrap();
        // A log file per start, so a restart's log is its own.
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log_path = dir.join(format!("daemon-{n}.log"));
        let log = File::create(&log_path).unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the daemon never blocks on a full pipe.
            let mut rest = String::new();
            while reader.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
                rest.clear();
            }
        });
        let read_log = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(line) if !line.is_empty() => {
                    let port = super::banner::port_of(&line);
                    return Ok(DaemonProcess {
                        child,
                        port,
                        log_path,
                    });
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed without a banner: it is exiting.
                    let status = wait_exit(&mut child);
                    return Err(StartError::Exited(status, read_log(&log_path)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError::Exited(status, read_log(&log_path)));
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::NoBanner(read_log(&log_path)));
            }
        }
    }

    /// As `try_start`, failing the test if the daemon does not start.
    pub fn start(dir: &Path, settings: &str) -> DaemonProcess {
        Self::try_start(dir, settings, 0).unwrap_or_else(|e| panic!("daemon start: {e:?}"))
    }

    /// Starts a daemon on `port` (where its clients expect it), retrying
    /// while the port is still held (a dying predecessor) until the deadline.
    pub fn restart_on(dir: &Path, settings: &str, port: u16) -> DaemonProcess {
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            match Self::try_start(dir, settings, port) {
                Ok(d) => {
                    assert_eq!(d.port, port, "restarted on the same port");
                    return d;
                }
                Err(e) if Instant::now() < end => {
                    eprintln!("restart on port {port} not yet possible: {e:?}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("daemon restart on port {port}: {e:?}"),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its IPv4 loopback address.
    pub fn v4(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The `Host` header value for it.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// Its memory figures now.
    pub fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Polls the log until a line holds every one of `parts`; returns it.
    pub async fn wait_for_log(&self, parts: &[&str]) -> String {
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_string();
            }
            assert!(
                Instant::now() < end,
                "no log line with {parts:?}; log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: SIGKILL, no chance to close anything; waits for the exit.
    pub fn kill9(&mut self) -> ExitStatus {
        // std's `Child::kill` is SIGKILL on Unix.
        self.child.kill().unwrap();
        wait_exit(&mut self.child)
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let end = Instant::now() + PROCESS_DEADLINE;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "daemon did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}
