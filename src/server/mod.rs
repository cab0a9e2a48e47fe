//! The network side: listeners, the per-TCP-connection HTTP service with its
//! guard, and websocket connection tasks. `run` takes already-bound listeners
//! and a shutdown token, so the binary and the tests share one entry point.

pub mod accept;
pub mod assets;
pub mod connection;
pub mod guard;
pub mod http;
pub mod listen;
pub mod shutdown;
pub mod tenants;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::peer::{OsUser, PeerIdentity};
pub use listen::{bind, BindError, Listeners};
pub use shutdown::Shutdown;
pub use tenants::Tenants;

/// Product name in `/health` and the hello.
pub const PRODUCT: &str = "wsconnector";
/// Version of the JSON protocol (docs/protocol.md).
pub const PROTOCOL_VERSION: u32 = 1;

/// Everything a connection needs, shared by all tasks.
pub struct ServerState {
    /// The effective configuration, swapped whole by a live reload
    /// (`crate::reload`). Readers take one snapshot with [`ServerState::config`]
    /// per decision (a handshake, a request): no lock, and never a mix of an
    /// old and a new file.
    config: ArcSwap<Config>,
    /// The port actually bound (the configured one may be 0).
    pub port: u16,
    /// The context stores: the daemon user's, or one per OS user in
    /// service mode.
    pub tenants: Tenants,
    /// Finds the OS user behind a client socket.
    pub peers: Arc<dyn PeerIdentity>,
    /// The daemon's own OS user.
    pub me: OsUser,
    /// TLS for WSS; `None` for plain WS.
    pub tls: Option<TlsAcceptor>,
    /// End of the WSS certificate's validity (`None` for WS), for the
    /// renewal warning in `/health` and the tray (src/tls/expiry.rs). A std
    /// mutex: read and written in one statement, never across `.await`; a
    /// mutex rather than a plain field so a certificate reload can update it.
    pub(crate) certificate_not_after: Mutex<Option<time::OffsetDateTime>>,
    /// Open websocket connections per OS user id, for the connection caps.
    /// A std mutex: held only to bump a counter, never across `.await`.
    pub sockets_per_user: Mutex<HashMap<String, usize>>,
    /// Tripped after the stopping-service event was queued: connection tasks
    /// then send their close frames.
    pub(crate) closing: Shutdown,
    /// The inspector page's sessions and message trace.
    pub inspector: Arc<crate::inspector::Inspector>,
    /// Peer-identity lookups running at once. Each takes a blocking-pool
    /// thread; without a bound, a connection flood grows that pool (shared
    /// with desktop actions) to hundreds of threads.
    pub(crate) peer_lookups: tokio::sync::Semaphore,
    /// Called with each configuration a live reload puts in force, after
    /// the stores were re-granted (service mode: the agent-action timeout).
    pub on_reload: OnceLock<ReloadHook>,
}

/// See [`ServerState::on_reload`].
pub type ReloadHook = Box<dyn Fn(&Config) + Send + Sync>;

/// Most peer-identity lookups at once: a lookup is a netlink or TCP-table
/// round trip of microseconds, so a few threads keep up with any flood.
pub(crate) const MAX_CONCURRENT_PEER_LOOKUPS: usize = 4;

impl ServerState {
    /// Build the shared state for a bound port.
    pub fn new(
        config: Arc<Config>,
        port: u16,
        hub: Hub,
        peers: Arc<dyn PeerIdentity>,
        tls: Option<TlsAcceptor>,
    ) -> Arc<ServerState> {
        Self::with_tenants(
            config,
            port,
            Tenants::single(hub),
            peers,
            tls,
            Arc::default(),
        )
    }

    /// Build the shared state with the given stores (service mode: one per
    /// OS user).
    pub fn with_tenants(
        config: Arc<Config>,
        port: u16,
        tenants: Tenants,
        peers: Arc<dyn PeerIdentity>,
        tls: Option<TlsAcceptor>,
        pending: Arc<crate::inspector::token::PendingTokens>,
    ) -> Arc<ServerState> {
        let me = peers.current_user();
        let inspector = if tenants.is_per_user() {
            crate::inspector::Inspector::per_user(
                crate::inspector::token::shared_dir(&config.service.agent_socket),
                pending,
            )
        } else {
            crate::inspector::Inspector::default()
        };
        Arc::new(ServerState {
            config: ArcSwap::new(config),
            port,
            tenants,
            peers,
            me,
            tls,
            certificate_not_after: Mutex::new(None),
            sockets_per_user: Mutex::new(HashMap::new()),
            closing: Shutdown::new(),
            inspector: Arc::new(inspector),
            peer_lookups: tokio::sync::Semaphore::new(MAX_CONCURRENT_PEER_LOOKUPS),
            on_reload: OnceLock::new(),
        })
    }

    /// The store serving `user`'s connections.
    pub fn hub_for(&self, user: &OsUser) -> Hub {
        self.tenants.hub_for(user, &self.config())
    }

    /// Whose context a connection of `user` belongs to, for the guard: the
    /// daemon's user in single-user mode; in service mode every user owns
    /// their own store, so they are its "same user".
    pub fn owner_for<'a>(&'a self, user: Option<&'a OsUser>) -> &'a OsUser {
        match user {
            Some(u) if self.tenants.is_per_user() => u,
            _ => &self.me,
        }
    }

    /// A snapshot of the configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Puts `config` in force for every later snapshot (live reload only:
    /// `crate::reload` checks first that nothing in it needs a restart).
    pub(crate) fn set_config(&self, config: Arc<Config>) {
        self.config.store(config);
    }

    /// The URL scheme clients use (`ws` or `wss`).
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "wss"
        } else {
            "ws"
        }
    }
}

/// Serve both listeners until `shutdown` is tripped, then tell every client
/// (`stopping-service`), close each websocket with 1001 and return once all
/// connections have finished or `shutdown_grace` has passed.
pub async fn run(listeners: Listeners, state: Arc<ServerState>, shutdown: Shutdown) {
    let tracker = TaskTracker::new();
    let Listeners { v4, v6 } = listeners;
    let loops = [v4, v6].map(|l| {
        let state = state.clone();
        let tracker = tracker.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(accept_loop(l, state, tracker, shutdown))
    });
    shutdown.cancelled().await;
    for l in loops {
        let _ = l.await;
    }
    let open = state.tenants.connection_count();
    tracing::info!(open, "shutting down: telling clients");
    for (_, hub) in state.tenants.all() {
        hub.server_status("stopping-service");
    }
    state.closing.cancel();
    tracker.close();
    let grace = state.config().timers.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            ?grace,
            "some connections did not finish in time; exiting anyway"
        );
    }
    tracing::info!("stopped");
}

/// Pause after an accept error (e.g. out of file descriptors) so a
/// persistent error does not spin the CPU.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ServerState>,
    tracker: TaskTracker,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let state = state.clone();
                let t = tracker.clone();
                tracker.spawn(accept::serve_tcp(stream, peer, state, t));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}
