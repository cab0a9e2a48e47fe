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
    /// Run headless: no tray icon (servers, CI, SSH sessions).
    #[arg(long, global = true)]
    pub no_tray: bool,
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
    /// Start the agent at logon for this user (systemd user unit on Linux,
    /// HKCU Run entry on Windows; macOS not supported yet).
    Install {
        /// Per-user autostart (the only kind; machine-wide: use the MSI or .deb).
        #[arg(long)]
        user: bool,
    },
    /// Remove what `install --user` added.
    Uninstall {
        /// Per-user autostart.
        #[arg(long)]
        user: bool,
    },
    /// Talk to the running daemon of this OS user (scripts, support).
    Ctl(crate::ctl::CtlArgs),
    /// The machine-wide service of shared Citrix/RDS hosts (`Mode = service`).
    Service {
        /// Run, install or uninstall the service.
        #[command(subcommand)]
        action: crate::service::args::ServiceAction,
    },
    /// The per-session agent of service mode: performs this user's desktop
    /// actions for the service and shows the tray.
    Agent(crate::service::args::AgentArgs),
    /// Certificates for WSS.
    Cert {
        /// What to do with certificates.
        #[command(subcommand)]
        action: CertAction,
    },
    /// Print or write the managed browser policies that let the allowed CRM
    /// origins reach wsconnector without a Local Network Access prompt.
    BrowserPolicy {
        /// linux-json (Chrome/Chromium/Edge managed JSON and Firefox
        /// policies.json), windows-reg (a .reg file) or admx (Group Policy values).
        #[arg(long, value_enum, default_value_t = default_policy_format())]
        format: crate::browser_policy::Format,
        /// Write the files into this folder instead of printing them.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The policy format of this platform.
fn default_policy_format() -> crate::browser_policy::Format {
    if cfg!(windows) {
        crate::browser_policy::Format::WindowsReg
    } else {
        crate::browser_policy::Format::LinuxJson
    }
}

/// Which certificates and stores `cert trust|untrust|renew|check` work on.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The folder of `cert create`; defaults to the folder of the configured
    /// certificate, else `certs/` beside the config file.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Only these stores (repeat or comma-separate): nss, system,
    /// firefox-policy, windows. Default: nss (Linux; plus system and
    /// firefox-policy as root), windows (plus firefox-policy with --machine).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STORE")]
    pub only: Vec<crate::tls::trust::Target>,
    /// Windows: the machine's Root store (administrator) instead of the user's.
    #[arg(long)]
    pub machine: bool,
    /// Apply system-wide changes below this root instead of `/` (image
    /// builds, tests).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
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
    /// Trust the CA of `cert create` in the stores browsers read; each step is reported.
    Trust(StoreArgs),
    /// Remove exactly what `cert trust` added.
    Untrust(StoreArgs),
    /// Make a new CA and certificate, untrust the old CA and trust the new one.
    Renew(StoreArgs),
    /// The certificate doctor: trust, expiry, interception, dangerous roots,
    /// key permissions; exits non-zero when something is wrong.
    Check {
        /// Which certificates and stores.
        #[command(flatten)]
        stores: StoreArgs,
        /// The port to probe (default: the configured one).
        #[arg(long)]
        port: Option<u16>,
    },
}
