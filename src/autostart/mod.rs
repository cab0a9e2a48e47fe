//! `wsconnector install --user` / `uninstall --user`: start the agent at
//! logon, with exactly one mechanism per platform.
//!
//! - Linux: a systemd user unit, `~/.config/systemd/user/wsconnector.service`,
//!   enabled with `systemctl --user` (`linux.rs`).
//! - Windows: a value named `wsconnector` under
//!   `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` (`windows.rs`).
//! - macOS: not supported yet (a LaunchAgent is planned); the commands say so.
//!
//! Machine-wide installation is the installers' job (installer/: MSI, .deb).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

use std::path::{Path, PathBuf};

/// Why autostart could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    /// Only per-user autostart exists (`--user`).
    #[error("only per-user autostart is supported: add --user (machine-wide: use the MSI or the .deb package)")]
    UserOnly,
    /// Not available on this OS.
    #[error("autostart is not supported on this OS yet (macOS: planned as a LaunchAgent)")]
    Unsupported,
    /// The user's home/config folder is unknown.
    #[error("cannot find the user's configuration folder (is HOME set?)")]
    NoConfigDir,
    /// A file could not be written or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A system tool (`reg.exe`) failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The program.
        tool: String,
        /// Its exit status and error output.
        detail: String,
    },
}

/// What an install or uninstall did, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One line per thing done.
    pub done: Vec<String>,
    /// Things that did not work but do not make the command fail (e.g. no
    /// systemd user manager in this shell), each with what to do.
    pub notes: Vec<String>,
}

/// Installs per-user autostart of `exe run [--config FILE]`.
pub fn install_user(exe: &Path, config: Option<&Path>) -> Result<Report, AutostartError> {
    #[cfg(target_os = "linux")]
    {
        linux::install(exe, config)
    }
    #[cfg(windows)]
    {
        windows::install(exe, config)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = (exe, config);
        Err(AutostartError::Unsupported)
    }
}

/// Removes what [`install_user`] installed (nothing there is not an error).
pub fn uninstall_user() -> Result<Report, AutostartError> {
    #[cfg(target_os = "linux")]
    {
        linux::uninstall()
    }
    #[cfg(windows)]
    {
        windows::uninstall()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        Err(AutostartError::Unsupported)
    }
}
