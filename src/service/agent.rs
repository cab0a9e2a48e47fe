//! `wsconnector agent`: the per-session process of service mode. It
//! connects to the service, checks that the other end really is the
//! service (the transport's job: `SO_PEERCRED` on Linux, the pipe server's
//! process on Windows), and performs the desktop actions the service relays
//! for its user, in this session. When the link ends it reconnects after
//! `Timers/AgentRestartDelay`, doubling up to a minute, until it is stopped.
//!
//! It logs to standard error only, whatever `Log-path` says (that folder
//! belongs to the service): the systemd user unit sends it to the user's
//! own journal, which only that user and administrators can read.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::args::AgentArgs;
use super::link::LinkError;
use crate::config::{Config, Loaded, Mode};
use crate::peer::OsUser;
use crate::platform::Platform;
use crate::server::Shutdown;
use crate::tray::LastError;
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
    let _log_guard = match logging::init(&log, LastError::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsconnector: logging: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.no_tray {
        tracing::info!("the session agent shows no tray icon yet: running headless");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.config;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        let stop_requested = crate::agent::stop_signal();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop_requested.await;
            tracing::info!("stop signal received");
            stop.cancel();
        });
        let me = peer::system().current_user();
        serve_forever(&config, &me, platform::system(), shutdown).await;
    });
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Connects, serves, and reconnects with back-off until `shutdown`.
pub async fn serve_forever(
    config: &Config,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
) {
    let first = config.timers.agent_restart;
    let mut delay = first;
    while !shutdown.is_cancelled() {
        match session(config, me, platform.clone(), shutdown.clone()).await {
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
) -> Result<(), SessionError> {
    let stream =
        super::unix_socket::connect(&config.service.agent_socket, &config.service.service_user)
            .await
            .map_err(|e| SessionError::Connect(e.to_string()))?;
    Ok(super::link::run_agent_link(stream, me, platform, shutdown).await?)
}

/// One connection to the service over its named pipe.
#[cfg(not(unix))]
async fn session(
    _config: &Config,
    _me: &OsUser,
    _platform: Arc<dyn Platform>,
    _shutdown: Shutdown,
) -> Result<(), SessionError> {
    Err(SessionError::Connect(
        "the named-pipe link to the Windows service is not built yet".into(),
    ))
}
