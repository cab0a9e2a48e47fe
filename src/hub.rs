//! The hub: every open connection's session, and the dispatch of protocol
//! requests to the context store. It is synchronous and does no I/O: the
//! connection task hands it text frames and sends whatever the hub puts in the
//! connection's outbox, so every reply and event reaches a connection in one
//! global commit order.
//!
//! INTERFACE CONTRACT (used by `server::connection`; keep these signatures):
//! - `Hub::new(HubSettings) -> Hub` (cheap `Clone`, shared state inside).
//! - `Hub::open(&self, PeerInfo) -> Session`: registers a connection and puts
//!   the hello message first in its outbox.
//! - `Hub::handle(&self, ConnId, &str)`: one inbound text frame; exactly one
//!   reply goes into that connection's outbox (FAILURE for malformed JSON or
//!   unknown actions), events go to other connections' outboxes.
//! - `Hub::close(&self, ConnId)`: the connection ended; drops its
//!   registrations and subscriptions (never data) and keeps its resume token
//!   alive for `resume_token_ttl`.
//! - `Hub::server_status(&self, &str)`: a server-status event to every connection
//!   (`stopping-service` at shutdown).
//! - `Session::recv(&mut self).await -> Outgoing`: the next message to send;
//!   `Outgoing::Close` when the hub wants the connection closed (outbox
//!   overflow: slow consumer).
//! - `Hub::connection_count(&self) -> usize`.

use std::time::Duration;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::{Capabilities, Limits, VarFilter};
use crate::peer::OsUser;

/// Identifies one websocket connection for the life of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the handshake established about a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The OS user owning the client socket.
    pub os_user: OsUser,
    /// The browser `Origin`, or `None` for a native (fat) client.
    pub origin: Option<String>,
    /// What this connection may do.
    pub capabilities: Capabilities,
    /// Variables it may read.
    pub read: VarFilter,
    /// Variables it may write.
    pub write: VarFilter,
}

/// Settings the hub needs from the configuration.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Store and outbox limits.
    pub limits: Limits,
    /// How long a resume token outlives its connection.
    pub resume_token_ttl: Duration,
    /// Machine name for `getHost`.
    pub host_name: String,
    /// OS user name for `getUser`.
    pub user_name: String,
}

/// One message for the connection task to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A JSON text frame (bytes shared between subscribers).
    Text(Utf8Bytes),
    /// Close the websocket with this code and reason, then end the task.
    Close {
        /// Websocket close code.
        code: u16,
        /// Human-readable reason (at most 123 bytes).
        reason: String,
    },
}

// ---- TEMPORARY minimal implementation, replaced by the real hub on merge ----
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The hub (temporary).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<HashMap<ConnId, mpsc::Sender<Outgoing>>>>,
    next: Arc<AtomicU64>,
    settings: Arc<HubSettings>,
}

/// One connection's outbox (temporary).
pub struct Session {
    /// The connection id.
    pub id: ConnId,
    rx: mpsc::Receiver<Outgoing>,
}

impl Session {
    /// The next message to send.
    pub async fn recv(&mut self) -> Outgoing {
        self.rx.recv().await.unwrap_or(Outgoing::Close {
            code: 1011,
            reason: "hub gone".into(),
        })
    }
}

impl Hub {
    /// New hub.
    pub fn new(settings: HubSettings) -> Hub {
        Hub {
            inner: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
            settings: Arc::new(settings),
        }
    }
    /// Open a session.
    pub fn open(&self, peer: PeerInfo) -> Session {
        let id = ConnId(self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.settings.limits.outbox_messages);
        let hello = serde_json::json!({"type":"hello","user": peer.os_user.name, "capabilities": peer.capabilities.names()});
        let _ = tx.try_send(Outgoing::Text(hello.to_string().into()));
        self.inner.lock().unwrap().insert(id, tx);
        Session { id, rx }
    }
    /// Handle a frame.
    pub fn handle(&self, id: ConnId, text: &str) {
        let reply = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => {
                serde_json::json!({"type":"reply","result":"SUCCESS","requestId": v.get("requestId"), "echo": v})
            }
            Err(e) => {
                serde_json::json!({"type":"reply","result":"FAILURE","errorCode":"bad_request","errorMessage": e.to_string()})
            }
        };
        if let Some(tx) = self.inner.lock().unwrap().get(&id) {
            let _ = tx.try_send(Outgoing::Text(reply.to_string().into()));
        }
    }
    /// Close.
    pub fn close(&self, id: ConnId) {
        self.inner.lock().unwrap().remove(&id);
    }
    /// Status to all.
    pub fn server_status(&self, status: &str) {
        let ev =
            serde_json::json!({"type":"event","event":"ServerStatus","status":status}).to_string();
        for tx in self.inner.lock().unwrap().values() {
            let _ = tx.try_send(Outgoing::Text(ev.clone().into()));
        }
    }
    /// Count.
    pub fn connection_count(&self) -> usize {
        self.inner.lock().unwrap().len()
    }
}
