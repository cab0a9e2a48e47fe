//! Command-line arguments of `wsconnector service ...` and `wsconnector agent`.

use clap::Subcommand;

/// `wsconnector service ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ServiceAction {
    /// Run the service in the foreground (systemd `ExecStart`; on Windows the
    /// Service Control Manager starts this).
    Run,
    /// Register the service with the OS (Linux: the systemd system unit, the
    /// agents' global user unit and a `Mode = service` config.xml) and
    /// enable it. Needs root.
    Install {
        /// Write below this root instead of `/` and do not call systemctl
        /// (image builds, tests).
        #[arg(long, value_name = "DIR")]
        sysroot: Option<std::path::PathBuf>,
    },
    /// Stop and remove what `service install` registered (config.xml stays).
    Uninstall {
        /// As for install.
        #[arg(long, value_name = "DIR")]
        sysroot: Option<std::path::PathBuf>,
    },
}

/// `wsconnector agent`: the per-session agent of service mode.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Do not show a tray icon.
    #[arg(long)]
    pub no_tray: bool,
}
