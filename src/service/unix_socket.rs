//! Linux transport of the service ↔ agent link: one Unix socket
//! (`AgentSocket`, default /run/wsconnector/agent.sock) that every user may
//! connect to. Identity never comes from what a peer says: the service
//! takes each agent's uid from `SO_PEERCRED`, and an agent talks only to a
//! socket whose server runs as `ServiceUser` — so another user's program
//! cannot pose as a user's agent, nor as the service.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::unistd::{Uid, User};
use tokio::net::{UnixListener, UnixStream};

use super::link;
use super::registry::AgentRegistry;
use crate::peer::OsUser;
use crate::server::Shutdown;

/// Why the socket could not be served or used.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Binding, connecting or reading credentials failed.
    #[error("agent socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another service answers on the socket already.
    #[error("agent socket {0}: another service is already listening there")]
    InUse(PathBuf),
    /// `ServiceUser` names no account.
    #[error("ServiceUser {0:?} is not an account on this machine")]
    UnknownServiceUser(String),
    /// The socket's server is not the service.
    #[error(
        "refusing {path}: its server runs as {found}, expected the service account {expected}"
    )]
    NotTheService {
        /// The socket path.
        path: PathBuf,
        /// Who serves it.
        found: String,
        /// `ServiceUser`.
        expected: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `uid:<n>` with its login name (the id again when it has none).
pub fn user_of_uid(uid: u32) -> OsUser {
    let id = format!("uid:{uid}");
    let name = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => id.clone(),
    };
    OsUser { id, name }
}

/// Binds `path` (its folder is created if missing; a stale socket file
/// nobody answers on is replaced; mode 0666 so every user's agent can
/// connect) and serves agents until `shutdown`.
pub async fn listen(
    path: &Path,
    registry: Arc<AgentRegistry>,
    shutdown: Shutdown,
) -> Result<(), SocketError> {
    let listener = bind(path)?;
    tracing::info!(socket = %path.display(), "listening for session agents");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("agent socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = match stream.peer_cred() {
            Ok(cred) => user_of_uid(cred.uid()),
            Err(e) => {
                tracing::warn!("agent connection without credentials refused: {e}");
                continue;
            }
        };
        let registry = registry.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = link::serve_agent(stream, peer, registry, shutdown).await;
        });
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if path.exists() {
        // A socket file left by a service that died: nobody answers on it.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io(path))?;
    }
    let listener = UnixListener::bind(path).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(io(path))?;
    Ok(listener)
}

/// Agent side: connects to `path` and checks with `SO_PEERCRED` that its
/// server runs as `expected_service_user`.
pub async fn connect(path: &Path, expected_service_user: &str) -> Result<UnixStream, SocketError> {
    let expected = User::from_name(expected_service_user)
        .ok()
        .flatten()
        .ok_or_else(|| SocketError::UnknownServiceUser(expected_service_user.into()))?;
    let stream = UnixStream::connect(path).await.map_err(io(path))?;
    let cred = stream.peer_cred().map_err(io(path))?;
    if cred.uid() != expected.uid.as_raw() {
        let found = user_of_uid(cred.uid());
        return Err(SocketError::NotTheService {
            path: path.to_path_buf(),
            found: format!("{} ({})", found.name, found.id),
            expected: format!("{} (uid:{})", expected.name, expected.uid),
        });
    }
    Ok(stream)
}
