//! One accepted TCP connection before it becomes a websocket: the peer
//! identity lookup, on a WSS port the first-byte sniff (TLS, or plain HTTP
//! for `/health` only), the TLS handshake, and the HTTP/1.1 service with its
//! handshake deadline and idle timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::ServerState;

/// Most request headers we read; a browser sends about 20.
const MAX_HEADERS: usize = 64;
/// Largest request head we buffer, in bytes (hyper's minimum is 8 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The first byte of every TLS connection: a handshake record
/// (RFC 8446 §5.1, `ContentType.handshake`). An HTTP request starts with a
/// letter, so one byte tells them apart.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Per-TCP-connection facts the HTTP service needs.
pub struct TcpContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// Owner of the client socket, or why it is unknown (looked up once).
    pub owner: Result<crate::peer::OsUser, String>,
    /// Shared server state.
    pub state: Arc<ServerState>,
    /// Where websocket tasks are spawned so shutdown waits for them.
    pub tracker: TaskTracker,
    /// A plain-HTTP client on a WSS port: only `/health` is served, so
    /// `connector.js` can tell an untrusted certificate from a daemon that
    /// is not running.
    pub plain_on_tls: bool,
    /// When this connection must next see a request, or be closed.
    /// A std mutex: held for one assignment, never across `.await`.
    pub deadline: Mutex<Instant>,
}

impl TcpContext {
    /// A request arrived: the idle timer restarts.
    pub fn touch(&self) {
        let next = Instant::now() + self.state.config().timers.idle;
        if let Ok(mut d) = self.deadline.lock() {
            *d = next;
        }
    }

    fn deadline(&self) -> Instant {
        self.deadline
            .lock()
            .map(|d| *d)
            .unwrap_or_else(|_| Instant::now())
    }
}

/// Serve one accepted TCP connection until it upgrades, closes, idles out
/// or the server shuts down.
pub async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<ServerState>,
    tracker: TaskTracker,
) {
    // `user` is filled in once the peer is identified: it routes the lines
    // of this connection to its user's own log in service mode (user_log.rs).
    let span = tracing::info_span!("tcp", %peer, user = tracing::field::Empty);
    async move {
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "connection gone before it could be served");
                return;
            }
        };
        // Latency matters more than packet count for small JSON frames.
        let _ = stream.set_nodelay(true);
        // The lookup is a blocking netlink round trip (microseconds, bounded
        // by a receive timeout): keep it off the async workers, and bound how
        // many run at once so a flood queues here instead of growing the
        // blocking pool. The semaphore is never closed.
        let owner = match state.peer_lookups.acquire().await {
            Ok(_permit) => {
                let peers = state.peers.clone();
                tokio::task::spawn_blocking(move || peers.owner_of(peer, local))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Err(e) => Err(e.to_string()),
        };
        match &owner {
            Ok(user) => {
                tracing::Span::current().record("user", user.name.as_str());
                tracing::debug!(peer_user = %user.name, "peer identified");
            }
            Err(e) => tracing::warn!(error = %e, "peer identity unknown: requests will be refused"),
        }
        let handshake_deadline = Instant::now() + state.config().timers.handshake;
        let plain_on_tls = match &state.tls {
            None => false,
            Some(_) => match sniff(&stream, handshake_deadline).await {
                Some(first) => first != TLS_HANDSHAKE_RECORD,
                None => return,
            },
        };
        let cx = Arc::new(TcpContext {
            peer,
            owner,
            state: state.clone(),
            tracker,
            plain_on_tls,
            deadline: Mutex::new(handshake_deadline),
        });
        match &state.tls {
            Some(acceptor) if !plain_on_tls => {
                match timeout_at(handshake_deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_http(TokioIo::new(tls), cx).await,
                    Ok(Err(e)) => tracing::info!(error = %e, "TLS handshake failed (is the certificate trusted by the client?)"),
                    Err(_) => tracing::info!("TLS handshake not completed in time: closed"),
                }
            }
            Some(_) => {
                tracing::debug!("plain HTTP on the WSS port: only /health is served");
                serve_http(TokioIo::new(stream), cx).await
            }
            None => serve_http(TokioIo::new(stream), cx).await,
        }
    }
    .instrument(span)
    .await
}

/// The first byte the client sent, without consuming it; `None` when the
/// client closed or sent nothing before `deadline` (then the connection is
/// dropped, as a stalled TLS handshake would be).
async fn sniff(stream: &TcpStream, deadline: Instant) -> Option<u8> {
    let mut first = [0u8; 1];
    match timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0]),
        Ok(Ok(_)) => {
            tracing::debug!("closed before sending anything");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection gone before its first byte");
            None
        }
        Err(_) => {
            tracing::info!("nothing received in time: closed");
            None
        }
    }
}

async fn serve_http<I>(io: TokioIo<I>, cx: Arc<TcpContext>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = cx.state.clone();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config().timers.handshake)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let service_cx = cx.clone();
    let service = service_fn(move |req| super::http::handle(req, service_cx.clone()));
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    loop {
        // A request moves the deadline to `now + idle` while we sleep: wake
        // at least every `idle` to see it (the first deadline, the handshake
        // timeout, may be later than that).
        let deadline = cx
            .deadline()
            .min(Instant::now() + state.config().timers.idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = sleep_until(deadline) => {
                if cx.deadline() <= Instant::now() {
                    tracing::debug!("no request in time: closed");
                    return;
                }
            }
            _ = state.closing.cancelled() => return,
        }
    }
}
