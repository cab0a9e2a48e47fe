//! Wiring: from a validated `Config` to a running daemon. The binary and the
//! integration tests start the daemon through [`start`], so both run exactly
//! the same code.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, SocketType};
use crate::hub::{Hub, HubSettings};
use crate::peer::{OsUser, PeerIdentity};
use crate::platform::{ActionError, Platform};
use crate::reload::{ReloadError, ReloadReport, ReloadStats, Reloader};
use crate::server::{self, ServerState, Shutdown, Tenants};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] server::BindError),
    /// WSS without certificate settings (config validation prevents this).
    #[error("Socket-type is WSS but no Certificate-path is set")]
    NoCertificate,
}

/// A running daemon.
pub struct Daemon {
    /// The addresses it listens on (127.0.0.1 first, then ::1).
    pub addrs: Vec<SocketAddr>,
    /// The port both addresses share.
    pub port: u16,
    /// `ws` or `wss`.
    pub scheme: &'static str,
    /// Shared state (hub, config) for inspection by tests.
    pub state: Arc<ServerState>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
    /// Re-reads config.xml (watcher, SIGHUP, tray).
    reloader: Arc<Reloader>,
}

impl Daemon {
    /// Ask the daemon to stop (idempotent).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token that stops the daemon when cancelled (signal handlers use it).
    pub fn shutdown_token(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Re-read config.xml, validate it and apply it live (see `crate::reload`).
    /// The watcher, SIGHUP and the tray's "Reload configuration" call this.
    /// Blocking (reads a small file): from async code use `spawn_blocking`.
    pub fn reload_config(&self) -> Result<ReloadReport, ReloadError> {
        self.reloader.reload()
    }

    /// A handle that reloads this daemon's configuration, for another thread
    /// or task (signal handler, tray).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Reloads applied and rejected since start.
    pub fn reload_stats(&self) -> ReloadStats {
        self.reloader.stats()
    }

    /// Wait until the daemon has stopped and every connection has drained.
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// The one line printed at start: where it listens and which config it uses.
    pub fn banner(&self) -> String {
        let urls: Vec<String> = self
            .addrs
            .iter()
            .map(|a| format!("{}://{a}", self.scheme))
            .collect();
        let source = match &self.state.config().source {
            crate::config::ConfigSource::File(p) => format!("config {}", p.display()),
            crate::config::ConfigSource::Embedded => "embedded default configuration".to_string(),
        };
        format!(
            "wsconnector {} listening on {} ({source})",
            crate::VERSION,
            urls.join(" and ")
        )
    }
}

/// Hub settings derived from the configuration.
pub fn hub_settings(config: &Config, user_name: &str) -> HubSettings {
    HubSettings {
        limits: config.limits.clone(),
        resume_token_ttl: config.timers.resume_token_ttl,
        host_name: host_name(),
        user_name: user_name.to_string(),
        platform: crate::platform::system(),
        programs: config.programs.clone(),
        gen_p2c: config.gen_p2c.clone(),
        pickup_timeout: config.timers.pickup,
        inspector_token: None,
    }
}

/// The async runtime every command of ours runs on: one thread. Issue 9's
/// measurements showed a current-thread runtime serving hundreds of
/// connections with lower latency and memory than the multi-threaded one;
/// blocking work (peer lookups, desktop actions) goes to its blocking pool.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The machine name for `getHost`.
pub fn host_name() -> String {
    whoami::fallible::hostname().unwrap_or_else(|_| "localhost".to_string())
}

/// Where each OS user's store gets its desktop actions from in service mode.
pub type PlatformFor = dyn Fn(&OsUser) -> Arc<dyn Platform> + Send + Sync;

/// Who the stores belong to.
pub enum Tenancy {
    /// One store, the daemon user's; desktop actions on this desktop.
    SingleUser,
    /// One store per OS user (`Mode = service`); each user's desktop
    /// actions go through the platform `platform_for` gives for them (the
    /// relay to their session agent).
    PerUser(Arc<PlatformFor>),
}

/// A platform for service mode without session agents: every desktop
/// action answers `agent_unavailable` (data keeps working).
struct NoAgent;

impl Platform for NoAgent {
    fn launch(&self, _: &crate::platform::LaunchSpec) -> Result<u32, ActionError> {
        Err(no_agent())
    }
    fn open_url(&self, _: &str) -> Result<(), ActionError> {
        Err(no_agent())
    }
    fn window(&self, _: &crate::platform::WindowRequest) -> Result<(), ActionError> {
        Err(no_agent())
    }
    fn notify(&self, _: &crate::platform::Toast) -> Result<(), ActionError> {
        Err(no_agent())
    }
    fn pickup(
        &self,
        _: &crate::platform::PickupDialog,
    ) -> Result<crate::platform::PickupOutcome, ActionError> {
        Err(no_agent())
    }
    fn host_name(&self) -> String {
        host_name()
    }
    fn close_window(&self, _: &str) -> Result<(), ActionError> {
        Err(no_agent())
    }
}

/// The platform of a service-mode store whose user has no session agent
/// wired in: every desktop action answers `agent_unavailable`.
pub fn no_agent_platform() -> Arc<dyn Platform> {
    Arc::new(NoAgent)
}

fn no_agent() -> ActionError {
    ActionError::Unavailable("this service has no session agents".into())
}

/// Load TLS (if WSS), bind both loopback addresses and start serving: one
/// store for the daemon's user, or with `Mode = service` one per OS user
/// whose desktop actions answer `agent_unavailable` (the service wires its
/// agents in with [`start_with`]).
pub async fn start(config: Config, peers: Arc<dyn PeerIdentity>) -> Result<Daemon, StartError> {
    let tenancy = match config.mode {
        crate::config::Mode::SingleUser => Tenancy::SingleUser,
        crate::config::Mode::Service => {
            Tenancy::PerUser(Arc::new(|_: &OsUser| no_agent_platform()))
        }
    };
    start_with(config, peers, tenancy).await
}

/// [`start`] with the stores given explicitly.
pub async fn start_with(
    config: Config,
    peers: Arc<dyn PeerIdentity>,
    tenancy: Tenancy,
) -> Result<Daemon, StartError> {
    let (tls, not_after) = match config.socket_type {
        SocketType::Ws => (None, None),
        SocketType::Wss => {
            let tls = config.tls.as_ref().ok_or(StartError::NoCertificate)?;
            let (server_config, not_after) = crate::tls::server_config_with_expiry(tls)?;
            (Some(TlsAcceptor::from(server_config)), Some(not_after))
        }
    };
    let listeners = server::bind(config.port)?;
    let addrs = listeners.addrs();
    let port = listeners.port();
    let me = peers.current_user();
    // Service mode's in-memory inspector tokens: minted by each user's
    // store (`getInspectorToken`), redeemed by the inspector.
    let pending = Arc::new(crate::inspector::token::PendingTokens::default());
    let tenants = match tenancy {
        Tenancy::SingleUser => Tenants::single(Hub::new(hub_settings(&config, &me.name))),
        Tenancy::PerUser(platform_for) => {
            let pending = pending.clone();
            Tenants::per_user(Box::new(move |user: &OsUser, config: &Config| {
                let (pending, user_id) = (pending.clone(), user.id.clone());
                let mint = move || {
                    pending
                        .mint(&user_id, std::time::Instant::now())
                        .map_err(|e| e.to_string())
                };
                HubSettings {
                    platform: platform_for(user),
                    inspector_token: Some(Arc::new(mint)),
                    ..hub_settings(config, &user.name)
                }
            }))
        }
    };
    let state = ServerState::with_tenants(Arc::new(config), port, tenants, peers, tls, pending);
    let scheme = state.scheme();
    let shutdown = Shutdown::new();
    if let Some(not_after) = not_after {
        state.set_certificate_not_after(not_after);
        // Announced at start and daily; renewal stays an explicit admin step.
        tokio::spawn(crate::tls::expiry::warn_daily(not_after, shutdown.clone()));
    }
    let task = tokio::spawn(server::run(listeners, state.clone(), shutdown.clone()));
    let reloader = Reloader::new(state.clone());
    if reloader.file().is_some() {
        // Without a watcher the daemon still runs; SIGHUP and the tray reload.
        if let Err(e) = crate::reload::watch::spawn(reloader.clone(), shutdown.clone()) {
            tracing::warn!("configuration changes will not be picked up automatically: {e}");
        }
    }
    Ok(Daemon {
        addrs,
        port,
        scheme,
        state,
        shutdown,
        task,
        reloader,
    })
}
