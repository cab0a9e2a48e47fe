//! Peer identity: which OS user owns the client end of a loopback TCP
//! connection. The handshake guard asks this before every upgrade and fails
//! closed when the answer cannot be found.
//!
//! One trait, one implementation per OS chosen with `cfg`; the rest of the
//! daemon never calls an OS API for this.

use std::net::SocketAddr;

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

// TEMPORARY stub, replaced on merge.
struct Same;
impl PeerIdentity for Same {
    fn owner_of(&self, _: SocketAddr, _: SocketAddr) -> Result<OsUser, PeerError> {
        Ok(self.current_user())
    }
    fn current_user(&self) -> OsUser {
        OsUser {
            id: "uid:0".into(),
            name: "root".into(),
        }
    }
}
/// The system's peer identity.
pub fn system() -> std::sync::Arc<dyn PeerIdentity> {
    std::sync::Arc::new(Same)
}
