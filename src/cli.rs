//! The command line (clap derive). Flags and `config.xml` merge into one
//! validated `Config` before anything runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// wsconnector: shares CRM, desktop application and toolbar context on this PC.
#[derive(Debug, Parser)]
#[command(name = "wsconnector", version, about)]
pub struct Cli {
    /// What to do; without a subcommand the daemon runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// config.xml to use (for the daemon when no subcommand is given).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate a config.xml and print the effective settings and every warning.
    CheckConfig {
        /// The file to check; without it, the one the daemon would use.
        file: Option<PathBuf>,
    },
    /// Open the inspector page of the running daemon (one-time URL).
    Inspect(crate::inspector::open::InspectArgs),
    /// Publish a toolbar event (GEN_T2P) or a page request (GEN_P2T) in the
    /// running daemon, exactly as a toolbar or page would.
    Simulate(crate::ctl_simulate::SimulateArgs),
    /// Talk to the running daemon of this OS user (scripts, support).
    Ctl(crate::ctl::CtlArgs),
    /// Certificates for WSS.
    Cert {
        /// What to do with certificates.
        #[command(subcommand)]
        action: CertAction,
    },
}

/// `wsconnector cert ...`
#[derive(Debug, Subcommand)]
pub enum CertAction {
    /// Create a name-constrained local CA (its key never written) and a localhost leaf.
    Create {
        /// Output folder; defaults to `certs/` beside the config file.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Replace existing certificate files (renewal).
        #[arg(long)]
        force: bool,
    },
}
