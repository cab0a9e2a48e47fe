//! `wsc-bench`: the load generator of scripts/bench.sh and scripts/soak.sh.
//!
//! It drives the real daemon over plain WS with the documented protocol
//! (docs/protocol.md) and Redis pub/sub with the same workload shape, and
//! measures a raw TCP ping-pong floor with an echo server of its own:
//!
//! ```text
//! suite      everything, in one run: starts the servers (pinned with taskset),
//!            runs each configuration several times as child processes,
//!            prints one table with ratios, writes JSON
//! run        one fan-out run (latency, or saturation with --window)
//! ping-pong  the raw TCP floor against `echo-server`
//! hold       many idle or subscribed connections, for memory per connection
//! soak       hundreds of clients for minutes: zero loss, flat memory
//! ```
//!
//! Every subscriber checks the order and count of what it receives; a lost
//! or duplicated notification fails the run (exit code 1).

mod conns;
mod proc_stats;
mod procs;
mod redis;
mod runs;
mod soak;
mod stats;
mod suite;
mod tcp;
mod ws;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Errors of the load generator: any error ends the run loudly.
pub type Res<T> = anyhow::Result<T>;

/// An error with a message.
pub fn fail(msg: impl Into<String>) -> anyhow::Error {
    anyhow::anyhow!(msg.into())
}

#[derive(Parser)]
#[command(name = "wsc-bench", about = "wsconnector load generator and benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole benchmark (scripts/bench.sh).
    Suite(suite::SuiteArgs),
    /// One fan-out run; prints one JSON line.
    Run(runs::RunArgs),
    /// A TCP echo server on a free loopback port (prints the port).
    EchoServer,
    /// Closed-loop TCP round trips against an echo server; prints one JSON line.
    PingPong {
        /// The echo server.
        #[arg(long)]
        addr: SocketAddr,
        /// Bytes per message.
        #[arg(long, default_value_t = 100)]
        bytes: usize,
        /// Measured round trips.
        #[arg(long, default_value_t = 5000)]
        count: u64,
        /// Round trips before measuring.
        #[arg(long, default_value_t = 500)]
        warmup: u64,
    },
    /// Opens many connections and reports the server's RSS with them.
    Hold {
        /// The server.
        #[arg(long, value_enum)]
        target: runs::Target,
        /// Its address.
        #[arg(long)]
        addr: SocketAddr,
        /// Its process id.
        #[arg(long)]
        pid: u32,
        /// Connections.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Register and subscribe each connection.
        #[arg(long)]
        subscribed: bool,
    },
    /// Hundreds of clients for minutes (scripts/soak.sh).
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Suite(a) => suite::run(a),
        Cmd::Run(a) => runs::run(a).map(|v| println!("{v}")),
        Cmd::EchoServer => tcp::echo_server(),
        Cmd::PingPong {
            addr,
            bytes,
            count,
            warmup,
        } => tcp::ping_pong(addr, bytes, count, warmup).map(|v| println!("{v}")),
        Cmd::Hold {
            target,
            addr,
            pid,
            count,
            subscribed,
        } => conns::hold(target, addr, pid, count, subscribed).map(|v| println!("{v}")),
        Cmd::Soak(a) => soak::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsc-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
