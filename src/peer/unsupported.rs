//! Peer identity on platforms without an implementation (neither Linux nor
//! Windows): every lookup fails with `Unsupported`, so the handshake
//! guard refuses every connection instead of trusting it.

use std::net::SocketAddr;

use super::{OsUser, PeerError, PeerIdentity};

/// The fail-closed placeholder implementation.
#[derive(Debug)]
pub struct SystemPeerIdentity {
    /// The daemon's user, looked up once: it does not change while we run.
    current: OsUser,
}

impl SystemPeerIdentity {
    /// Looks up the daemon's user.
    pub fn new() -> Self {
        // Without an OS-specific API the login name is the best stable id we have;
        // it is only shown, never compared, because `owner_of` always fails.
        let name = whoami::username();
        SystemPeerIdentity {
            current: OsUser {
                id: format!("user:{name}"),
                name,
            },
        }
    }
}

impl PeerIdentity for SystemPeerIdentity {
    fn owner_of(&self, _peer: SocketAddr, _local: SocketAddr) -> Result<OsUser, PeerError> {
        Err(PeerError::Unsupported)
    }

    fn current_user(&self) -> OsUser {
        self.current.clone()
    }
}
