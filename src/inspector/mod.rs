//! The inspector: a page the daemon serves at `/inspector` to the local user
//! only, showing clients, environments and a message trace live, with a
//! simulator for toolbar events (the successor of v1's ContextView.exe).
//!
//! ```text
//! wsconnector inspect --(token file, 0600)--> daemon
//! browser GET /inspector?token=T  -> token::redeem -> 303 + session cookie
//! browser GET /inspector, its script and style (cookie)  -> http
//! browser /inspector/ws (cookie, own Origin)  -> ws: snapshots, trace, simulate
//! connection tasks -> tap::Tap::record  (one atomic load while no inspector is open)
//! ```
//!
//! docs/inspector.md documents the routes and the socket's messages.

pub mod http;
pub mod open;
pub mod tap;
pub mod token;
mod ws;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tap::Tap;
use token::{Sessions, TokenError};

/// Most inspector sockets open at once.
pub const MAX_SOCKETS: usize = 8;

/// The inspector's state inside the daemon (one per `ServerState`).
#[derive(Debug)]
pub struct Inspector {
    /// Where `wsconnector inspect` writes token files (`None`: no directory
    /// could be found, so no token can be redeemed).
    runtime_dir: Option<PathBuf>,
    /// Service mode: `runtime_dir` is the shared folder of every user's
    /// token files, and each session serves the user whose token opened it.
    per_user: bool,
    /// Sessions created from redeemed tokens.
    pub sessions: Sessions,
    /// Service mode: tokens minted over the websocket (`getInspectorToken`).
    pub pending: Arc<token::PendingTokens>,
    /// Serializes token redemption so two requests cannot both use one
    /// token. A std mutex: held for a file read and delete, never across
    /// `.await`.
    redeeming: Mutex<()>,
    /// The message trace.
    pub tap: Arc<Tap>,
    /// Open inspector sockets (at most [`MAX_SOCKETS`]).
    sockets: AtomicUsize,
    /// Hub connections opened by inspector sockets (the simulator's
    /// sessions), so the client list can mark them.
    own_conns: Mutex<Vec<u64>>,
}

impl Default for Inspector {
    fn default() -> Self {
        Inspector::new(token::runtime_dir())
    }
}

impl Inspector {
    /// An inspector reading token files from `runtime_dir`.
    pub fn new(runtime_dir: Option<PathBuf>) -> Inspector {
        Inspector {
            runtime_dir,
            per_user: false,
            sessions: Sessions::default(),
            pending: Arc::default(),
            redeeming: Mutex::new(()),
            tap: Arc::new(Tap::default()),
            sockets: AtomicUsize::new(0),
            own_conns: Mutex::new(Vec::new()),
        }
    }

    /// Service mode: tokens come from the shared folder `dir` (see
    /// `token`), one per user, and sessions are bound to that user.
    /// Tokens may also be minted in memory (`pending`, shared with the
    /// stores' `getInspectorToken`).
    pub fn per_user(dir: PathBuf, pending: Arc<token::PendingTokens>) -> Inspector {
        Inspector {
            per_user: true,
            pending,
            ..Inspector::new(Some(dir))
        }
    }

    /// True in service mode (sessions bound to users).
    pub fn is_per_user(&self) -> bool {
        self.per_user
    }

    /// Service mode: checks a token presented by a browser whose socket
    /// belongs to `peer`; returns the user id the session must serve
    /// (`None` in single-user mode, where the daemon's user is implied).
    pub fn redeem_for(
        &self,
        port: u16,
        presented: &str,
        peer: Option<&crate::peer::OsUser>,
    ) -> Result<Option<String>, TokenError> {
        if !self.per_user {
            return self.redeem(port, presented).map(|()| None);
        }
        // A token minted for this user over the websocket comes first; the
        // browser's socket must belong to the user it was minted for.
        if let Some(peer) = peer {
            if self.pending.has(&peer.id) {
                let _one_at_a_time = self.redeeming.lock().unwrap_or_else(|p| p.into_inner());
                self.pending
                    .redeem(&peer.id, presented, std::time::Instant::now())?;
                return Ok(Some(peer.id.clone()));
            }
        }
        let dir = self.runtime_dir.as_deref().ok_or(TokenError::NoDirectory)?;
        let uid = peer
            .and_then(|p| p.id.strip_prefix("uid:"))
            .and_then(|u| u.parse::<u32>().ok())
            .ok_or(TokenError::Missing)?;
        let _one_at_a_time = self.redeeming.lock().unwrap_or_else(|p| p.into_inner());
        #[cfg(unix)]
        {
            token::redeem_shared(dir, port, uid, presented, SystemTime::now())?;
            Ok(peer.map(|p| p.id.clone()))
        }
        #[cfg(not(unix))]
        {
            let _ = (dir, uid);
            Err(TokenError::NoDirectory)
        }
    }

    /// Where token files are read from.
    pub fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.runtime_dir.as_deref()
    }

    /// Checks a presented token for the daemon on `port` (one try per token).
    pub fn redeem(&self, port: u16, presented: &str) -> Result<(), TokenError> {
        let dir = self.runtime_dir.as_deref().ok_or(TokenError::NoDirectory)?;
        let _one_at_a_time = self.redeeming.lock().unwrap_or_else(|p| p.into_inner());
        token::redeem(dir, port, presented, SystemTime::now())
    }

    fn own_conns(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.own_conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when hub connection `id` belongs to an inspector socket.
    pub fn is_own(&self, id: u64) -> bool {
        self.own_conns().contains(&id)
    }

    /// Reserves a socket place; `None` when [`MAX_SOCKETS`] are open.
    fn reserve_socket(self: &Arc<Self>) -> Option<SocketSlot> {
        let prev = self.sockets.fetch_add(1, Ordering::AcqRel);
        if prev >= MAX_SOCKETS {
            self.sockets.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(SocketSlot {
            inspector: self.clone(),
        })
    }
}

/// One inspector socket's place, released on drop.
struct SocketSlot {
    inspector: Arc<Inspector>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.inspector.sockets.fetch_sub(1, Ordering::AcqRel);
    }
}
