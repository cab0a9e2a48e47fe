//! `wsconnector agent`: the per-session process of service mode. It
//! connects to the service, checks that the other end really is the
//! service (the transport's job: `SO_PEERCRED` on Linux, the pipe server's
//! process on Windows), and performs the desktop actions the service relays
//! for its user, in this session. When the link ends it reconnects after
//! `Timers/AgentRestartDelay`, doubling up to a minute, until it is stopped.
//!
//! It shows the tray icon (status: connected to the service or not; the
//! demo page, the inspector of this user's store, About, Quit) unless
//! `--no-tray`. It logs to standard error only, whatever `Log-path` says (that folder
//! belongs to the service): the systemd user unit sends it to the user's
//! own journal, which only that user and administrators can read.

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
    log.path = None;
    let last_error = LastError::default();
    let _log_guard = match logging::init(&log, last_error.clone()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsconnector: logging: {e}");
            return ExitCode::from(2);
        }
    };
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
        let handle = DaemonHandle::for_agent(
            up.clone(),
            AboutInfo::of_agent(&config),
            shutdown.clone(),
            last_error,
        );
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
