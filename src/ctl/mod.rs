//! `wsconnector ctl`: a command line for scripts and support that talks to
//! the running daemon of the same OS user as a native websocket client
//! (`client`), one file per group of commands (`commands`). Data goes to
//! stdout, messages to stderr, and the exit code says what happened:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the daemon refused (a FAILURE reply, a refused handshake, an untrusted certificate) or what was asked for does not exist |
//! | 2 | usage: bad arguments, unreadable config.xml or input file |
//! | 3 | the daemon is not running (nothing answers on its port, or it went away) |
//!
//! Adding a subcommand: one variant in [`CtlCommand`], one arm in
//! `execute`, its code in a file of its own beside `commands.rs` (declared
//! with `mod NAME;` below). It gets a [`Target`]; [`Client::connect`] and
//! [`Client::request`] talk to the daemon, `commands::register` registers as
//! `wsconnector-ctl`, `commands::print` writes a data line; errors are
//! [`CtlError`] values, which choose the exit code.

pub mod client;
mod commands;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

pub use client::{health, Client, Target};

/// `wsconnector ctl [--port N] COMMAND`
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The daemon's port; default: `Socket-port` of config.xml. Given
    /// before the command (`ctl --port 9443 get`).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The `ctl` subcommands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Version, port, connected clients and environments of the running daemon (JSON).
    Status,
    /// Print every environment, one environment, or one variable's value (JSON).
    Get {
        /// Environment; without it, every environment.
        env: Option<String>,
        /// Variable; without it, the whole environment.
        var: Option<String>,
        /// Print a string value without JSON quotes (with VAR only).
        #[arg(long)]
        raw: bool,
    },
    /// Set variables of one environment in one atomic write: `set VOICE ANI=123 vip=true`.
    Set {
        /// Environment (created when absent).
        env: String,
        /// `NAME=VALUE` pairs; VALUE is a number, true, false, null, a
        /// "quoted JSON string", or else taken as a plain string.
        #[arg(required = true, value_name = "NAME=VALUE")]
        pairs: Vec<String>,
        /// Take every VALUE as a plain string (`--string zip=01234`).
        #[arg(long)]
        string: bool,
    },
    /// Remove every variable of an environment.
    Clean {
        /// Environment.
        env: String,
    },
    /// Print events as JSON lines until Ctrl-C (or `--count` events).
    Watch {
        /// Environment (created when absent); without it, every environment
        /// that exists when watch starts.
        env: Option<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Print every environment as JSON (`{env: {name: value}}`) or XML.
    Dump {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Load environments from a dump (JSON or XML) in one atomic write.
    Load {
        /// The file; `-` or nothing reads stdin.
        file: Option<PathBuf>,
        /// Input format; default: XML when the text starts with `<`, else JSON.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Publish a toolbar event or page request, exactly as `wsconnector simulate`.
    Simulate(crate::ctl_simulate::SimulateArgs),
}

/// Formats of `dump` and `load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `{env: {name: value}}`, as `getData` answers.
    Json,
    /// The XML shape of docs/protocol.md, as `retrieveXML` answers.
    Xml,
}

/// Why a ctl command failed; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Bad arguments or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The daemon answered FAILURE (exit 1).
    #[error("{action}: {message} ({code})")]
    Refused {
        /// The action refused.
        action: String,
        /// Its `errorCode`.
        code: String,
        /// Its `errorMessage`.
        message: String,
    },
    /// Something else went wrong with a running daemon, or what was asked
    /// for does not exist (exit 1).
    #[error("{0}")]
    Failed(String),
    /// Nothing answers, or the daemon went away (exit 3).
    #[error("{0}")]
    NotRunning(String),
}

impl CtlError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Refused { .. } | CtlError::Failed(_) => 1,
            CtlError::Usage(_) => 2,
            CtlError::NotRunning(_) => 3,
        }
    }
}

/// Runs `wsconnector ctl ...` with the config file in use; returns the exit code.
pub fn run(args: CtlArgs, config_file: Option<&Path>) -> ExitCode {
    if let CtlCommand::Simulate(mut sim) = args.command {
        // One implementation with one set of exit codes (the same as ours).
        sim.port = sim.port.or(args.port);
        return crate::ctl_simulate::run(config_file, &sim);
    }
    let result = target(&args, config_file).and_then(|target| {
        let runtime = crate::app::runtime()
            .map_err(|e| CtlError::Failed(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(execute(args.command, &target))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsconnector ctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Where the daemon listens, from config.xml and `--port`.
fn target(args: &CtlArgs, config_file: Option<&Path>) -> Result<Target, CtlError> {
    target_for(config_file, args.port)
}

/// Where the daemon of `config_file` (or the discovered config.xml) listens,
/// `port` overriding its Socket-port; over WSS with its certificate pinned.
pub fn target_for(config_file: Option<&Path>, port: Option<u16>) -> Result<Target, CtlError> {
    let loaded =
        crate::config::discover(config_file).map_err(|e| CtlError::Usage(e.to_string()))?;
    let port = port.unwrap_or(loaded.config.port);
    target_of(&loaded.config, port)
}

/// Where the daemon of `config` listens on `port`; over WSS with its
/// certificate pinned.
pub fn target_of(config: &crate::config::Config, port: u16) -> Result<Target, CtlError> {
    if port == 0 {
        return Err(CtlError::Usage(
            "config.xml sets port 0 (a test port chosen at start): pass --port".into(),
        ));
    }
    let pinned = match (config.socket_type, &config.tls) {
        (crate::config::SocketType::Wss, Some(tls)) => Some(
            crate::tls::leaf_certificate(tls)
                .map_err(|e| CtlError::Usage(format!("the daemon's certificate: {e}")))?,
        ),
        _ => None,
    };
    Ok(Target { port, pinned })
}

/// One arm per subcommand.
async fn execute(command: CtlCommand, target: &Target) -> Result<(), CtlError> {
    match command {
        CtlCommand::Status => commands::status(target).await,
        CtlCommand::Get { env, var, raw } => {
            commands::get(target, env.as_deref(), var.as_deref(), raw).await
        }
        CtlCommand::Set { env, pairs, string } => commands::set(target, &env, &pairs, string).await,
        CtlCommand::Clean { env } => commands::clean(target, &env).await,
        CtlCommand::Watch { env, count } => commands::watch(target, env.as_deref(), count).await,
        CtlCommand::Dump { format } => commands::dump(target, format).await,
        CtlCommand::Load { file, format } => commands::load(target, file.as_deref(), format).await,
        // Handled in `run` before a runtime is built.
        CtlCommand::Simulate(_) => Err(CtlError::Usage(
            "simulate runs through wsconnector simulate".into(),
        )),
    }
}
