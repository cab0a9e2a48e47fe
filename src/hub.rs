//! The hub: every open connection's session, and the dispatch of protocol
//! requests to the context store. It is synchronous and never waits: the
//! connection task hands it text frames, and every reply and event reaches a
//! connection in one global commit order. A plain websocket connection's
//! messages are written straight to its socket (`server::wire`, never
//! blocking: what the socket does not take waits in the wire's FIFO); a TLS
//! connection's go into its outbox, which its task sends.
//!
//! INTERFACE CONTRACT (used by `server::connection`; keep these signatures):
//! - `Hub::new(HubSettings) -> Hub` (cheap `Clone`, shared state inside).
//! - `Hub::open(&self, PeerInfo) -> Session`: registers a connection and puts
//!   the hello message first in its outbox; `Hub::open_direct(&self,
//!   PeerInfo, Arc<Wire>)` writes the hello and every later text message
//!   through the wire instead (closes still come through `Session::recv`).
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
//!
//! Also: `Hub::with_clock` (tests control time), `Hub::close_with` (the
//! connection task may ask for a close, e.g. 1008 for abuse),
//! `Hub::batch` (the messages of a batch of requests reach each plain
//! connection in one write, at the batch's end), `Session::try_recv` and
//! `Session::queued`. The wire format is
//! `crate::protocol`, documented in docs/protocol.md.
//!
//! Before a well-formed request runs, `limits` counts it against its rate
//! limit per (OS user, origin, request type) and may refuse it with
//! `rate_limited`; a connection that keeps sending malformed frames gets
//! each FAILURE and then a 1008 close queued behind it.
//!
//! Desktop actions (`desktop`) are checked under the lock like any request,
//! then performed by the platform outside it, on a blocking thread; their
//! one reply is queued when the platform call returns.

mod desktop;
mod dispatch;
mod introspect;
mod limits;

pub use introspect::{ClientEnvironment, ClientInfo, EnvironmentInfo, Subscription};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::{Capabilities, GenP2c, Limits, Program, VarFilter};
use crate::peer::OsUser;
use crate::platform::Platform;
use crate::protocol::{
    EventName, Hello, StatusEvent, CLOSE_POLICY, CLOSE_TOO_SLOW, PRODUCT, PROTOCOL_VERSION,
};
use crate::server::wire::{Sent, Wire};
use crate::store::Store;

/// Most connections remembered per resume token (the owner and the ones it
/// resumed), so a long chain of reconnects cannot grow without bound.
const MAX_LINEAGE: usize = 32;

/// Identifies one websocket connection for the life of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A map keyed by connection id. The ids are numbers the hub hands out in
/// sequence (no peer chooses them), so a multiplicative hash spreads them
/// well; SipHash on these lookups, several per delivered event, was a tenth
/// of the fan-out's instructions (issue 9's profile).
pub type ConnMap<V> = HashMap<ConnId, V, std::hash::BuildHasherDefault<ConnIdHasher>>;

/// The hasher of [`ConnMap`]: one multiplication per id.
#[derive(Default)]
pub struct ConnIdHasher(u64);

impl std::hash::Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `ConnId`; this keeps other keys correct.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the high bits hashbrown uses differ for
        // consecutive ids.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

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
    /// URL patterns `openUrl` may open for this origin (`*` wildcards).
    pub open_url_patterns: Vec<String>,
}

/// Settings the hub needs from the configuration.
#[derive(Clone)]
pub struct HubSettings {
    /// Store and outbox limits.
    pub limits: Limits,
    /// How long a resume token outlives its connection.
    pub resume_token_ttl: Duration,
    /// Machine name for `getHost`.
    pub host_name: String,
    /// OS user name for `getUser`.
    pub user_name: String,
    /// Performs the desktop actions (`platform::system()`, or a recording in tests).
    pub platform: Arc<dyn Platform>,
    /// Programs `launchProcess` may start.
    pub programs: Vec<Program>,
    /// The v1 `GEN_P2C` requests.
    pub gen_p2c: GenP2c,
    /// A pickup dialog closes itself (`timedOut`) after this.
    pub pickup_timeout: Duration,
    /// Service mode: mints a one-time inspector token for this store's
    /// user (`getInspectorToken`); `None` in single-user mode, where
    /// `wsconnector inspect` writes a token file instead.
    pub inspector_token: Option<Arc<MintToken>>,
}

/// Mints a one-time inspector token (the service's pending tokens).
pub type MintToken = dyn Fn() -> Result<String, String> + Send + Sync;

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("limits", &self.limits)
            .field("resume_token_ttl", &self.resume_token_ttl)
            .field("host_name", &self.host_name)
            .field("user_name", &self.user_name)
            .field("programs", &self.programs)
            .field("gen_p2c", &self.gen_p2c)
            .field("pickup_timeout", &self.pickup_timeout)
            .finish_non_exhaustive()
    }
}

/// What [`Hub::reconfigure`] did to the open connections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconfigured {
    /// Connections whose capabilities, allow-lists or URL patterns changed.
    pub regranted: Vec<ConnId>,
    /// Connections closed with 1008: id, origin and the close reason.
    pub closed: Vec<(ConnId, Option<String>, String)>,
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

/// The next connection id of this process (see `Hub::open`).
static NEXT_CONN_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Where the hub reads the time (resume-token expiry); tests pass their own.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The shared hub: cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connection_count())
            .finish()
    }
}

struct Inner {
    /// Swapped whole by `reconfigure` (live reload), and only while `state`
    /// is locked; requests load it after taking that lock, so each request
    /// sees one settings snapshot that matches its connection's grants.
    settings: ArcSwap<HubSettings>,
    clock: Clock,
    /// The store and every connection's outbox sender behind ONE std mutex:
    /// a change and every message it causes are pushed before the next
    /// change starts, which is what gives each connection one global commit
    /// order (and replays that come strictly before live events). The hub
    /// does no I/O and never awaits, so a blocking mutex held briefly is
    /// right; it is never held across `.await`.
    state: Mutex<State>,
}

/// Everything behind the lock.
struct State {
    store: Store,
    conns: ConnMap<Conn>,
    tokens: HashMap<String, Token>,
    /// Pickup dialogs showing now, by key, with who asked.
    pickups: desktop::Pickups,
    /// Rate-limit counters by (OS user, origin, request type): they outlive
    /// connections so reconnecting does not reset them.
    rate: limits::RateLimiter,
    /// The wires open batches hold (`Hub::batch`).
    held: Held,
}

/// Plain connections whose messages wait for the end of a batch of requests.
#[derive(Default)]
struct Held {
    /// Batches open now: while any is, `push` holds the wires it writes to.
    batches: usize,
    /// Each wire held, once; released by the next batch to end.
    wires: Vec<Arc<Wire>>,
}

/// A batch of requests a connection task handles at once (see
/// [`Hub::batch`]); its end writes what it held.
#[must_use = "the batch ends when this is dropped"]
pub struct Batch<'a> {
    hub: &'a Hub,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        let wires = {
            let mut st = lock(&self.hub.inner.state);
            st.held.batches -= 1;
            // Also what another batch, still open, held: released a little
            // early rather than waiting for it (batches never wait for each
            // other, and no wire stays held after the last one ends).
            std::mem::take(&mut st.held.wires)
        };
        // Outside the lock: each is one non-blocking `writev`.
        for wire in wires {
            wire.release();
        }
    }
}

/// The hub's side of one connection.
struct Conn {
    peer: PeerInfo,
    /// Bounded outbox; `try_send` only, the hub never waits for a client.
    /// On a direct connection it carries only closes.
    tx: mpsc::Sender<Outgoing>,
    /// A plain connection's socket: text messages are written through it.
    direct: Option<Arc<Wire>>,
    signal: Arc<CloseSignal>,
    /// The resume token announced in this connection's hello.
    token: String,
    /// Set once the connection must close: nothing more is queued for it.
    dead: bool,
    /// Malformed messages in the current minute (abuse closes with 1008).
    malformed: limits::MalformedCounter,
    /// When it connected, for the inspector's client list.
    since: std::time::SystemTime,
    /// Text frames received (counted in `handle`).
    msgs_in: u64,
    /// Messages queued for it (counted in `push`, plus the hello).
    msgs_out: u64,
}

/// A resume token's identity.
struct Token {
    /// The connection the token was issued to.
    owner: ConnId,
    /// Connections whose writes count as "own" for this identity.
    lineage: Vec<ConnId>,
    /// When the owner closed; `None` while it is open.
    closed_at: Option<Instant>,
}

/// How the hub tells a session to close ahead of its queued backlog.
#[derive(Default)]
struct CloseSignal {
    /// The close to report; sticky once set.
    close: Mutex<Option<(u16, String)>>,
    /// True once `close` is set: read before every message sent, so the
    /// common case (no close) costs one atomic load instead of a lock.
    is_set: AtomicBool,
    /// Wakes `Session::recv` (stores a permit when nobody waits).
    notify: Notify,
}

impl CloseSignal {
    fn set(&self, code: u16, reason: String) {
        let mut close = lock(&self.close);
        if close.is_none() {
            *close = Some((code, reason));
        }
        self.is_set.store(true, Ordering::Release);
        drop(close);
        self.notify.notify_one();
    }

    fn get(&self) -> Option<(u16, String)> {
        if !self.is_set.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.close).clone()
    }
}

/// Locks a mutex, recovering from poisoning: a panic elsewhere must not take
/// every connection down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's receiving end: the connection task sends what `recv` gives.
pub struct Session {
    /// The connection's id, for `Hub::handle` and `Hub::close`.
    pub id: ConnId,
    rx: mpsc::Receiver<Outgoing>,
    signal: Arc<CloseSignal>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).finish()
    }
}

impl Session {
    /// The next message to send. A close the hub asked for comes ahead of
    /// any queued backlog and is repeated on every later call. Cancel-safe.
    pub async fn recv(&mut self) -> Outgoing {
        loop {
            if let Some((code, reason)) = self.signal.get() {
                return Outgoing::Close { code, reason };
            }
            tokio::select! {
                biased;
                () = self.signal.notify.notified() => continue,
                msg = self.rx.recv() => {
                    return msg.unwrap_or(Outgoing::Close {
                        code: 1000,
                        reason: "connection closed by the server".to_string(),
                    });
                }
            }
        }
    }

    /// Messages waiting in the outbox (never more than `limits.outbox_messages`).
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// True once the hub asked for a close ahead of the backlog (slow
    /// consumer, revoked origin, logoff) rather than after it.
    pub fn close_signalled(&self) -> bool {
        self.signal.is_set.load(Ordering::Acquire)
    }

    /// The next message if one is ready now (tests and draining at shutdown).
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        if let Some((code, reason)) = self.signal.get() {
            return Some(Outgoing::Close { code, reason });
        }
        self.rx.try_recv().ok()
    }
}

/// Serializes a message once; the bytes are then shared by every recipient.
pub(crate) fn to_text<T: Serialize>(value: &T) -> Utf8Bytes {
    match serde_json::to_string(value) {
        Ok(text) => Utf8Bytes::from(text),
        Err(e) => {
            // Our types hold only strings, numbers and string-keyed maps;
            // this cannot happen, but a peer must still get valid JSON.
            tracing::error!(error = %e, "cannot serialize a protocol message");
            Utf8Bytes::from_static(
                r#"{"type":"error","errorMessage":"internal serialization error"}"#,
            )
        }
    }
}

/// 16 random bytes as 32 hex digits.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Fall back to the std hasher's random keys: weaker, still unguessable
        // for another page, and the daemon keeps working.
        tracing::warn!(error = %e, "OS random source failed; using a fallback for resume tokens");
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos());
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_epoch_base() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Time since the Unix epoch still differs between daemon starts.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        return (now & 0xFFFF_FFFF) << 20;
    }
    // 32 random bits, shifted so a million (re)creations fit below.
    (u64::from_le_bytes(bytes) & 0xFFFF_FFFF) << 20
}

impl Hub {
    /// A hub with an empty store and a fresh epoch base, reading the system clock.
    pub fn new(settings: HubSettings) -> Hub {
        Hub::with_clock(settings, Arc::new(Instant::now))
    }

    /// Like `new`, reading time from `clock` (tests move it forward).
    pub fn with_clock(settings: HubSettings, clock: Clock) -> Hub {
        let store = Store::new(settings.limits.clone(), random_epoch_base());
        Hub {
            inner: Arc::new(Inner {
                settings: ArcSwap::from_pointee(settings),
                clock,
                state: Mutex::new(State {
                    store,
                    conns: ConnMap::default(),
                    tokens: HashMap::new(),
                    pickups: desktop::Pickups::default(),
                    rate: limits::RateLimiter::default(),
                    held: Held::default(),
                }),
            }),
        }
    }

    /// The settings in force now (a live reload may replace them).
    pub fn settings(&self) -> Arc<HubSettings> {
        self.inner.settings.load_full()
    }

    /// Registers a connection; its hello is the first message of its session.
    pub fn open(&self, peer: PeerInfo) -> Session {
        self.open_with(peer, None)
    }

    /// Registers a plain connection whose text messages are written straight
    /// to `wire` (the hello first, under the lock: no event can overtake it).
    pub fn open_direct(&self, peer: PeerInfo, wire: Arc<Wire>) -> Session {
        self.open_with(peer, Some(wire))
    }

    fn open_with(&self, peer: PeerInfo, direct: Option<Arc<Wire>>) -> Session {
        let signal = Arc::new(CloseSignal::default());
        let token = new_token();
        let now = (self.inner.clock)();
        let mut st = lock(&self.inner.state);
        let settings = self.inner.settings.load();
        let capacity = settings.limits.outbox_messages.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let ttl = settings.resume_token_ttl;
        st.tokens.retain(|_, t| {
            t.closed_at
                .is_none_or(|at| now.saturating_duration_since(at) < ttl)
        });
        // Process-wide, not per hub: in service mode each user has a hub,
        // and the inspector's trace (one per process) must never mix up
        // two users' connections that would otherwise share an id.
        let id = ConnId(NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed));
        let hello = to_text(&Hello {
            kind: "hello",
            protocol: PROTOCOL_VERSION,
            product: PRODUCT,
            version: crate::VERSION,
            capabilities: peer.capabilities.names(),
            resume_token: &token,
            user: &peer.os_user.name,
            native: peer.origin.is_none(),
            origin: peer.origin.as_deref(),
        });
        match &direct {
            // Nothing is queued on a new wire: this is accepted.
            Some(wire) => {
                let _ = wire.send_text(id.0, &hello, capacity);
            }
            // The channel is new and holds at least one message: this cannot fail.
            None => {
                let _ = tx.try_send(Outgoing::Text(hello));
            }
        }
        tracing::debug!(conn = id.0, origin = ?peer.origin, "session opened");
        st.tokens.insert(
            token.clone(),
            Token {
                owner: id,
                lineage: vec![id],
                closed_at: None,
            },
        );
        st.store.connect(id);
        st.conns.insert(
            id,
            Conn {
                peer,
                tx,
                direct,
                signal: signal.clone(),
                token,
                dead: false,
                malformed: limits::MalformedCounter::default(),
                since: std::time::SystemTime::now(),
                msgs_in: 0,
                msgs_out: 1,
            },
        );
        Session { id, rx, signal }
    }

    /// Opens a batch of requests: until it is dropped, messages to plain
    /// connections wait in their wires, and its end writes each wire's in
    /// one `writev`: at saturation a connection task handles dozens of
    /// pipelined requests at once, and a write per event made the kernel's
    /// cost per write most of the daemon's CPU. Drop it before awaiting
    /// anything: other connections' messages wait while it is open.
    pub fn batch(&self) -> Batch<'_> {
        lock(&self.inner.state).held.batches += 1;
        Batch { hub: self }
    }

    /// One inbound text frame from `id`: exactly one reply to it, events to others.
    pub fn handle(&self, id: ConnId, text: &str) {
        // Parsing needs no lock.
        let mut parsed = dispatch::parse(text);
        let now = (self.inner.clock)();
        let mut st = lock(&self.inner.state);
        let settings = self.inner.settings.load();
        let rates = &settings.limits.rate;
        let State { conns, rate, .. } = &mut *st;
        let Some(conn) = conns.get_mut(&id).filter(|c| !c.dead) else {
            return;
        };
        conn.msgs_in += 1;
        // A malformed frame is answered like any other, then counted; a
        // well-formed one is counted against its rate limit before it runs.
        let abusive = parsed.is_malformed() && conn.malformed.hit(now, rates.malformed_per_minute);
        if let Some(action) = parsed.valid_action() {
            let peer = &conn.peer;
            if let Err(f) = rate.check(rates, &peer.os_user.id, peer.origin.as_deref(), action, now)
            {
                parsed.refuse(f);
            }
        }
        let job = dispatch::run(&settings, &mut st, id, parsed, now);
        if abusive {
            tracing::info!(
                conn = id.0,
                per_minute = rates.malformed_per_minute,
                "closing a connection that keeps sending malformed messages"
            );
            close_after_queued(
                &mut st.conns,
                id,
                CLOSE_POLICY,
                format!(
                    "too many malformed messages: more than {} in a minute",
                    rates.malformed_per_minute
                ),
            );
        }
        // The platform call blocks: never under the lock.
        drop(st);
        if let Some(job) = job {
            desktop::spawn(self.clone(), job);
        }
    }

    /// The connection ended: drop its registrations and subscriptions (never
    /// data); its resume token stays valid for `resume_token_ttl`.
    pub fn close(&self, id: ConnId) {
        let now = (self.inner.clock)();
        let mut st = lock(&self.inner.state);
        if let Some(conn) = st.conns.remove(&id) {
            if let Some(token) = st.tokens.get_mut(&conn.token) {
                if token.owner == id {
                    token.closed_at = Some(now);
                }
            }
            tracing::debug!(conn = id.0, "session closed");
        }
        st.store.disconnect(id);
    }

    /// Asks connection `id` to close with `code` and `reason`: its session
    /// reports the close ahead of anything queued, and nothing more is queued.
    pub fn close_with(&self, id: ConnId, code: u16, reason: &str) {
        let mut st = lock(&self.inner.state);
        if let Some(conn) = st.conns.get_mut(&id) {
            conn.dead = true;
            conn.signal.set(code, reason.to_string());
        }
    }

    /// Live reload: puts `settings` in force and re-decides every open
    /// connection's grants with `regrant`, all under the lock, so no request
    /// runs between the two. `regrant` returns the connection's new
    /// `PeerInfo`, or the reason it lost access: then it is closed with 1008
    /// and that reason, ahead of anything queued. Data, subscriptions and
    /// registrations are untouched; the store's count limits change at once.
    pub fn reconfigure(
        &self,
        settings: HubSettings,
        mut regrant: impl FnMut(&PeerInfo) -> Result<PeerInfo, String>,
    ) -> Reconfigured {
        let mut out = Reconfigured::default();
        let mut st = lock(&self.inner.state);
        st.store.set_limits(settings.limits.clone());
        self.inner.settings.store(Arc::new(settings));
        for (id, conn) in st.conns.iter_mut() {
            regrant_conn(*id, conn, &mut regrant, &mut out);
        }
        out
    }

    /// Re-decides one connection's grants with `regrant`, under the lock (see
    /// [`Hub::reconfigure`]). A connection admitted under the old
    /// configuration but opened after a reload's `reconfigure` uses it, so no
    /// connection keeps grants the configuration in force no longer gives.
    pub fn regrant(
        &self,
        id: ConnId,
        mut regrant: impl FnMut(&PeerInfo) -> Result<PeerInfo, String>,
    ) -> Reconfigured {
        let mut out = Reconfigured::default();
        let mut st = lock(&self.inner.state);
        if let Some(conn) = st.conns.get_mut(&id) {
            regrant_conn(id, conn, &mut regrant, &mut out);
        }
        out
    }

    /// Asks every open connection to close with `code` and `reason` (service
    /// mode: the user's last session ended), ahead of anything queued.
    pub fn close_all(&self, code: u16, reason: &str) {
        let mut st = lock(&self.inner.state);
        for (_, conn) in st.conns.iter_mut() {
            conn.dead = true;
            conn.signal.set(code, reason.to_string());
        }
    }

    /// A `ServerStatus` event (e.g. `stopping-service`) to every open connection.
    pub fn server_status(&self, status: &str) {
        let text = to_text(&StatusEvent {
            kind: "event",
            event: EventName::ServerStatus,
            status,
        });
        let mut st = lock(&self.inner.state);
        let State { conns, held, .. } = &mut *st;
        let ids: Vec<ConnId> = conns.keys().copied().collect();
        for id in ids {
            push(conns, held, id, Outgoing::Text(text.clone()));
        }
    }

    /// Open connections (until their task calls `close`).
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.state).conns.len()
    }
}

/// Applies `regrant` to one live connection, recording what changed.
fn regrant_conn(
    id: ConnId,
    conn: &mut Conn,
    regrant: &mut impl FnMut(&PeerInfo) -> Result<PeerInfo, String>,
    out: &mut Reconfigured,
) {
    if conn.dead {
        return;
    }
    match regrant(&conn.peer) {
        Ok(peer) => {
            if peer.capabilities != conn.peer.capabilities
                || peer.read != conn.peer.read
                || peer.write != conn.peer.write
                || peer.open_url_patterns != conn.peer.open_url_patterns
            {
                out.regranted.push(id);
            }
            conn.peer = peer;
        }
        Err(reason) => {
            // Ahead of anything queued: a revoked origin gets nothing more.
            conn.dead = true;
            conn.signal.set(CLOSE_POLICY, reason.clone());
            out.closed.push((id, conn.peer.origin.clone(), reason));
        }
    }
}

/// Closes `id` after what is already queued (so the FAILURE that tipped it
/// over is still sent), and queues nothing more. A full outbox falls back to
/// the close signal.
fn close_after_queued(conns: &mut ConnMap<Conn>, id: ConnId, code: u16, reason: String) {
    let Some(conn) = conns.get_mut(&id) else {
        return;
    };
    if conn.dead {
        return;
    }
    conn.dead = true;
    let close = Outgoing::Close {
        code,
        reason: reason.clone(),
    };
    if conn.tx.try_send(close).is_err() {
        conn.signal.set(code, reason);
    }
}

/// Queues `msg` for `id` without ever waiting (held for the batch's end
/// while a batch is open). A full outbox marks the connection dead and asks
/// it to close (slow consumer); a dead or gone connection gets nothing more.
fn push(conns: &mut ConnMap<Conn>, held: &mut Held, id: ConnId, msg: Outgoing) {
    let Some(conn) = conns.get_mut(&id) else {
        return;
    };
    if conn.dead {
        return;
    }
    let sent = match (&conn.direct, msg) {
        (Some(wire), Outgoing::Text(text)) => {
            if held.batches > 0 && wire.hold() {
                held.wires.push(wire.clone());
            }
            wire.send_text(id.0, &text, conn.tx.max_capacity())
        }
        (_, msg) => match conn.tx.try_send(msg) {
            Ok(()) => Sent::Accepted,
            Err(mpsc::error::TrySendError::Full(_)) => Sent::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Sent::Broken,
        },
    };
    match sent {
        Sent::Accepted => conn.msgs_out += 1,
        Sent::Full => {
            conn.dead = true;
            let capacity = conn.tx.max_capacity();
            tracing::info!(
                conn = id.0,
                capacity,
                "closing a connection that does not read its messages"
            );
            conn.signal.set(
                CLOSE_TOO_SLOW,
                format!("too slow: {capacity} messages waiting; reconnect and resume"),
            );
        }
        Sent::Broken => conn.dead = true,
    }
}
