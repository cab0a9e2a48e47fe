//! Command-line arguments of `wsconnector service ...` and `wsconnector agent`.

use clap::Subcommand;

/// `wsconnector service ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ServiceAction {
    /// Run the service in the foreground (systemd `ExecStart`; on Windows the
    /// Service Control Manager starts this).
    Run,
    /// Register the service with the OS (Windows SCM; Linux systemd system
    /// unit) and set `Mode = service` up. Needs administrator / root.
    Install,
    /// Stop and remove what `service install` registered.
    Uninstall,
}

/// `wsconnector agent`: the per-session agent of service mode.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Do not show a tray icon.
    #[arg(long)]
    pub no_tray: bool,
}
