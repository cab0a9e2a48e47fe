//! Server processes the benchmark starts and always stops: the daemon (from
//! its release binary, with a benchmark config.xml), redis-server and our
//! echo server, each optionally pinned to one CPU with `taskset`; and the
//! load-generator runs, each a child process of this binary (pinned too).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{fail, Res};

/// A child process killed (and reaped) when dropped, so no server outlives
/// the run, also when a measurement fails.
pub struct Proc {
    child: Child,
    /// Its process id (taskset execs the server, so this is the server's).
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawn to its first accepted TCP connection.
    pub startup: Duration,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program args`, behind `taskset -c cpu` when a CPU is given.
fn command(cpu: Option<&str>, program: &Path, args: &[&str]) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu).arg(program).args(args);
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }
}

/// A port free on both 127.0.0.1 and [::1] (the daemon binds both).
pub fn free_port() -> Res<u16> {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if TcpListener::bind(("::1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(fail("no free loopback port"))
}

/// Polls `addr` until it accepts a TCP connection; the time since `since`.
fn wait_listening(addr: SocketAddr, since: Instant, child: &mut Child) -> Res<Duration> {
    let deadline = since + Duration::from_secs(10);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(since.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            return Err(fail(format!("server exited before listening: {status}")));
        }
        if Instant::now() > deadline {
            return Err(fail(format!("server not listening on {addr} after 10 s")));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The benchmark's config.xml: plain WS, default limits except room for the
/// connection test, and a rate limit so high it never refuses (the check
/// itself still runs on every request).
pub fn daemon_config(dir: &Path, port: u16, max_connections: usize) -> Res<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("config-{port}.xml"));
    std::fs::write(
        &path,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <Socket-type>WS</Socket-type>
  <Socket-port>{port}</Socket-port>
  <Log-level>INFO</Log-level>
  <Limits>
    <MaxConnections>{max_connections}</MaxConnections>
    <MaxConnectionsPerUser>{max_connections}</MaxConnectionsPerUser>
  </Limits>
  <RateLimits perMinute="1000000000" quarantine="1m"/>
</configuration>
"#
        ),
    )?;
    Ok(path)
}

/// Starts the daemon `bin` on a free port.
pub fn daemon(bin: &Path, cpu: Option<&str>, dir: &Path, max_connections: usize) -> Res<Proc> {
    let port = free_port()?;
    let config = daemon_config(dir, port, max_connections)?;
    let config = config.to_string_lossy().into_owned();
    let since = Instant::now();
    let mut child = command(cpu, bin, &["run", "--config", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", bin.display())))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let startup = wait_listening(addr, since, &mut child);
    let pid = child.id();
    let mut p = Proc {
        child,
        pid,
        addr,
        startup: Duration::ZERO,
    };
    // On failure `p` is dropped: the server is killed.
    p.startup = startup?;
    Ok(p)
}

/// Starts `redis-server` (no persistence) on a free loopback port.
pub fn redis(bin: &Path, cpu: Option<&str>) -> Res<Proc> {
    let port = free_port()?.to_string();
    let since = Instant::now();
    let mut child = command(
        cpu,
        bin,
        &[
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--maxclients",
            "4096",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map_err(|e| fail(format!("cannot start {}: {e}", bin.display())))?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let startup = wait_listening(addr, since, &mut child);
    let pid = child.id();
    let mut p = Proc {
        child,
        pid,
        addr,
        startup: Duration::ZERO,
    };
    // On failure `p` is dropped: the server is killed.
    p.startup = startup?;
    Ok(p)
}

/// Starts our echo server (this binary's `echo-server`).
pub fn echo(cpu: Option<&str>) -> Res<Proc> {
    let me = std::env::current_exe()?;
    let since = Instant::now();
    let mut child = command(cpu, &me, &["echo-server"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| fail(format!("echo server said {line:?}")))?;
    let pid = child.id();
    Ok(Proc {
        child,
        pid,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        startup: since.elapsed(),
    })
}

/// Runs this binary with `args` (pinned to `cpu`) and returns the JSON of
/// its last stdout line; a failed run (loss, duplicate, error) stops the
/// whole benchmark with its message.
pub fn worker(cpu: Option<&str>, args: &[String]) -> Res<serde_json::Value> {
    let me = std::env::current_exe()?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = command(cpu, &me, &args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(fail(format!(
            "FAILED: wsc-bench {} ({}): {stdout}",
            args.join(" "),
            out.status
        )));
    }
    let last = stdout.lines().last().unwrap_or_default();
    Ok(serde_json::from_str(last)?)
}
