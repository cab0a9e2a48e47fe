//! `wsconnector agent`: the per-session process of service mode. It
//! connects to the service, checks that the other end really is the
//! service (the transport's job: `SO_PEERCRED` on Linux, the pipe server's
//! process on Windows), and performs the desktop actions the service relays
//! for its user, in this session. When the link ends it reconnects after
//! `Timers/AgentRestartDelay`, doubling up to a minute, until it is stopped.
//!
//! It shows the tray icon (status: connected to the service or not; the
//! demo page, the inspector of this user's store, About, Quit) unless
//! `--no-tray`. Its log is the user's own, never the service's `Log-path`
//! (that folder belongs to the service and is for administrators only):
//! - Linux: standard error, which the systemd user unit sends to the user's
//!   own journal (only that user and administrators can read it);
//! - Windows: nothing reads the standard error of an agent the service
//!   started, so it writes `wsconnector.log` in
//!   `%LOCALAPPDATA%\wsconnector\logs` (created if missing; the user's
//!   profile: that user, SYSTEM and administrators), rotated at the config's
//!   `Filesize`/`MaxFiles` like the machine's log, at its `Log-level`. Two
//!   sessions of one user on one host share that file (each appends).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::args::AgentArgs;
use super::link::LinkError;
use crate::config::{Config, Loaded, Mode};
use crate::peer::OsUser;
use crate::platform::Platform;
use crate::server::Shutdown;
use crate::tray::{self, AboutInfo, DaemonHandle, LastError, TrayEvent};
use crate::{logging, peer, platform};

/// Longest wait between two connection attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Entry point of `wsconnector agent`.
pub fn main(loaded: Loaded, args: AgentArgs) -> ExitCode {
    if loaded.config.mode != Mode::Service {
        eprintln!(
            "wsconnector: agent: the configuration has Mode = single-user; the session agent \
             serves a machine-wide service (Mode = service). On a desktop run `wsconnector run`."
        );
        return ExitCode::from(2);
    }
    let mut log = loaded.config.log.clone();
    log.path = own_log_folder();
    let last_error = LastError::default();
    let _log_guard = match logging::init(&log, last_error.clone()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsconnector: logging: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(folder) = &log.path {
        tracing::info!(folder = %folder.display(), pid = std::process::id(), "session agent: logging to this folder");
    }
    let runtime = match crate::app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.config;
    let shutdown = Shutdown::new();
    let up = Arc::new(AtomicBool::new(false));
    let tray = (!args.no_tray).then(|| {
        let mut about = AboutInfo::of_agent(&config);
        // The tray's "log folder" is the agent's own, where there is one.
        about.log_folder = log.path.clone();
        let handle = DaemonHandle::for_agent(up.clone(), about, shutdown.clone(), last_error);
        (handle, std::sync::mpsc::channel())
    });
    let tray_stopped = tray.as_ref().map(|(_, (sender, _))| sender.clone());
    // As in the desktop agent: the tray owns the main thread, a
    // current-thread runtime serves the link on its own thread.
    let stop = shutdown.clone();
    let io = std::thread::Builder::new()
        .name("wsconnector-io".into())
        .spawn(move || {
            runtime.block_on(async move {
                let stop_requested = crate::agent::stop_signal();
                let on_signal = stop.clone();
                tokio::spawn(async move {
                    stop_requested.await;
                    tracing::info!("stop signal received");
                    on_signal.cancel();
                });
                let me = peer::system().current_user();
                serve_forever(&config, &me, platform::system(), stop, &up).await;
            });
            if let Some(tell) = tray_stopped {
                let _ = tell.send(TrayEvent::DaemonStopped);
            }
        });
    let io = match io {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wsconnector: cannot start the I/O thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((handle, (sender, events))) = tray {
        if let Err(e) = tray::run(&handle, sender, &events) {
            tracing::warn!("{e}: running without a tray icon");
            eprintln!("wsconnector: warning: {e}: running without a tray icon");
        }
    }
    if io.join().is_err() {
        tracing::error!("the I/O thread panicked");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The agent's own log folder: on Windows `%LOCALAPPDATA%\wsconnector\logs`
/// (standard error when LOCALAPPDATA is unset), elsewhere none (standard
/// error, the user's journal).
fn own_log_folder() -> Option<PathBuf> {
    if cfg!(windows) {
        let folder = windows_log_folder(std::env::var_os("LOCALAPPDATA").as_deref());
        if folder.is_none() {
            eprintln!(
                "wsconnector: warning: agent: LOCALAPPDATA is not set to an absolute folder: \
                 logging to standard error"
            );
        }
        folder
    } else {
        None
    }
}

/// `<local_app_data>\wsconnector\logs`, when `local_app_data` (the
/// user's `%LOCALAPPDATA%`) is an absolute path.
pub fn windows_log_folder(local_app_data: Option<&OsStr>) -> Option<PathBuf> {
    let base = PathBuf::from(local_app_data?);
    // A relative value would put the log wherever the agent was started
    // (System32 for an agent the service launched).
    base.is_absolute()
        .then(|| base.join("wsconnector").join("logs"))
}

/// Connects, serves, and reconnects with back-off until `shutdown`.
pub async fn serve_forever(
    config: &Config,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
    up: &AtomicBool,
) {
    let first = config.timers.agent_restart;
    let mut delay = first;
    while !shutdown.is_cancelled() {
        match session(config, me, platform.clone(), shutdown.clone(), up).await {
            Ok(()) => {
                tracing::info!("the service ended the link; reconnecting");
                delay = first;
            }
            // Two agents of one user would take turns replacing each other:
            // the older one leaves for good.
            Err(SessionError::Link(LinkError::Replaced)) => {
                tracing::info!("another session agent of this user took over: stopping");
                break;
            }
            Err(e) => tracing::warn!("session agent: {e}; retrying in {delay:?}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Why one connection to the service ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    /// Reaching or verifying the service failed.
    #[error("{0}")]
    Connect(String),
    /// The link itself failed or was ended.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// One connection to the service, verified, served until it ends.
#[cfg(unix)]
async fn session(
    config: &Config,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
    up: &AtomicBool,
) -> Result<(), SessionError> {
    let stream =
        super::unix_socket::connect(&config.service.agent_socket, &config.service.service_user)
            .await
            .map_err(|e| SessionError::Connect(e.to_string()))?;
    Ok(super::link::run_agent_link_showing(stream, me, platform, shutdown, up).await?)
}

/// One connection to the service over this session's named pipe, whose
/// server must be the service's process (`service::windows::pipe`).
#[cfg(windows)]
async fn session(
    _config: &Config,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
    up: &AtomicBool,
) -> Result<(), SessionError> {
    let session_id = super::windows::current_session()
        .map_err(|e| SessionError::Connect(format!("cannot read this process's session: {e}")))?;
    let stream = super::windows::pipe::connect_agent(session_id)
        .await
        .map_err(|e| SessionError::Connect(e.to_string()))?;
    Ok(super::link::run_agent_link_showing(stream, me, platform, shutdown, up).await?)
}

/// No transport on this platform.
#[cfg(not(any(unix, windows)))]
async fn session(
    _config: &Config,
    _me: &OsUser,
    _platform: Arc<dyn Platform>,
    _shutdown: Shutdown,
    _up: &AtomicBool,
) -> Result<(), SessionError> {
    Err(SessionError::Connect(
        "service mode has no agent transport on this platform".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_agent_logs_under_local_app_data() {
        #[cfg(windows)]
        let (base, expected) = (
            r"C:\Users\alice\AppData\Local",
            r"C:\Users\alice\AppData\Local\wsconnector\logs",
        );
        #[cfg(not(windows))]
        let (base, expected) = ("/home/alice/.local", "/home/alice/.local/wsconnector/logs");
        assert_eq!(
            windows_log_folder(Some(OsStr::new(base))),
            Some(PathBuf::from(expected))
        );
    }

    #[test]
    fn without_an_absolute_local_app_data_the_agent_logs_to_stderr() {
        assert_eq!(windows_log_folder(None), None);
        assert_eq!(windows_log_folder(Some(OsStr::new(""))), None);
        assert_eq!(windows_log_folder(Some(OsStr::new(r"AppData\Local"))), None);
    }

    #[test]
    fn the_agent_keeps_logging_to_stderr_off_windows() {
        if cfg!(not(windows)) {
            assert_eq!(own_log_folder(), None);
        }
    }
}
