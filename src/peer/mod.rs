//! Peer identity: which OS user owns the client end of a loopback TCP
//! connection. The handshake guard asks this before every upgrade and fails
//! closed when the answer cannot be found.
//!
//! One trait, one implementation per OS chosen with `cfg` (`linux`,
//! `windows`, and `unsupported` which refuses everything elsewhere); the rest of the daemon
//! never calls an OS API for this. [`FixedPeerIdentity`] is the recording fake
//! for tests of the guard.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An OS user account as the handshake guard compares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OsUser {
    /// Stable machine identifier: `uid:1000` on Unix, the SID string on Windows.
    pub id: String,
    /// Login name for logs and `getUser` (`alice`); the id again when unknown.
    pub name: String,
}

/// Why the owner of a connection could not be found.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No socket matched the connection's 4-tuple (it may have closed already).
    #[error("no socket owner found for {peer} -> {local}")]
    NotFound {
        /// The client's address.
        peer: SocketAddr,
        /// Our listening side of the connection.
        local: SocketAddr,
    },
    /// The OS facility failed.
    #[error("peer identity lookup failed: {0}")]
    Io(#[from] std::io::Error),
    /// This platform has no implementation yet (fail closed).
    #[error("peer identity is not implemented on this platform")]
    Unsupported,
}

/// Finds the OS user owning the client socket of a loopback connection.
pub trait PeerIdentity: Send + Sync + 'static {
    /// The user owning the socket whose local address is `peer` and whose
    /// remote address is `local` (our end).
    fn owner_of(&self, peer: SocketAddr, local: SocketAddr) -> Result<OsUser, PeerError>;
    /// The user this daemon runs as.
    fn current_user(&self) -> OsUser;
}

// One implementation per OS, chosen once here (open-rs style); the rest of the
// crate only sees the trait and `system()`.
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;
/// Process and token identities for the service's named pipes.
#[cfg(windows)]
pub(crate) use windows::{process_identity, process_image, token_owner};

#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
use unsupported as os;

/// The peer identity implementation of this OS. On platforms without one,
/// every lookup fails with [`PeerError::Unsupported`], so the guard refuses
/// all connections rather than guessing.
pub fn system() -> Arc<dyn PeerIdentity> {
    Arc::new(os::SystemPeerIdentity::new())
}

/// What a [`FixedPeerIdentity`] answers to every `owner_of`.
///
/// `PeerError` holds an `io::Error`, which is not `Clone`, so the fake keeps
/// a description of the error and builds a fresh one per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedOwner {
    /// The connection belongs to this user.
    User(OsUser),
    /// [`PeerError::NotFound`] for whatever addresses were asked about.
    NotFound,
    /// [`PeerError::Io`] of this kind.
    Io(std::io::ErrorKind),
    /// [`PeerError::Unsupported`].
    Unsupported,
}

/// A recording fake for tests of the handshake guard: every lookup gets the
/// same configured answer, and the number of lookups is counted so a test can
/// check that the guard asked (or did not ask) before deciding.
#[derive(Debug)]
pub struct FixedPeerIdentity {
    /// The answer to every `owner_of`.
    owner: FixedOwner,
    /// What `current_user` returns.
    current: OsUser,
    /// How many times `owner_of` was called.
    lookups: AtomicUsize,
}

impl FixedPeerIdentity {
    /// A fake whose daemon user is `current` and which answers `owner` to
    /// every lookup.
    pub fn new(current: OsUser, owner: FixedOwner) -> Self {
        FixedPeerIdentity {
            owner,
            current,
            lookups: AtomicUsize::new(0),
        }
    }

    /// Every connection belongs to the daemon's own user `current`.
    pub fn same_user(current: OsUser) -> Self {
        let owner = FixedOwner::User(current.clone());
        Self::new(current, owner)
    }

    /// How many times `owner_of` has been called.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl PeerIdentity for FixedPeerIdentity {
    fn owner_of(&self, peer: SocketAddr, local: SocketAddr) -> Result<OsUser, PeerError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        match &self.owner {
            FixedOwner::User(user) => Ok(user.clone()),
            FixedOwner::NotFound => Err(PeerError::NotFound { peer, local }),
            FixedOwner::Io(kind) => Err(PeerError::Io(std::io::Error::new(
                *kind,
                "fixed peer identity failure",
            ))),
            FixedOwner::Unsupported => Err(PeerError::Unsupported),
        }
    }

    fn current_user(&self) -> OsUser {
        self.current.clone()
    }
}

/// The same address with an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`)
/// turned into plain IPv4, as both kernels' socket tables key such
/// connections (Java and .NET connect to 127.0.0.1 from dual-stack sockets).
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
