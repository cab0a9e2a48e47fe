//! One websocket connection: one task with one `select!` over inbound frames,
//! the hub's outbox, liveness timers and shutdown. Inbound text goes to the
//! hub. On a plain connection the hub writes its messages to the socket
//! itself (`super::wire`): this task corks the wire while it handles
//! requests, so their replies leave in one write after the events they
//! caused, and finishes writes the socket could not take at once. On a TLS
//! connection whatever the hub queues is sent here, in order. Bad frames
//! end the connection with the close code RFC 6455 names for them
//! (tungstenite reports the error but would only drop the TCP connection, so
//! the close frame is sent here).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::guard::Admitted;
use super::http::Slot;
use super::wire::Wire;
use super::ServerState;
use crate::hub::{Hub, Outgoing, PeerInfo, Session};
use crate::inspector::tap::{Direction, Tap};

/// Close codes we send (RFC 6455 §7.4.1).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error (bad framing).
    pub const PROTOCOL: u16 = 1002;
    /// Data of a type we do not accept (binary frames).
    pub const UNSUPPORTED: u16 = 1003;
    /// Text that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Policy violation (no request in time, abuse).
    pub const POLICY: u16 = 1008;
    /// Message larger than ByteSizeReader.
    pub const TOO_BIG: u16 = 1009;
}

/// Most queued outbox messages written before one flush, so a burst goes out
/// in few syscalls without starving the reader; also the most requests
/// already received that are handled before their replies are sent.
const MAX_BATCH: usize = 64;
/// How long we wait for the client's answer to our close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

type Ws<S> = WebSocketStream<S>;

/// Why the connection ends: a close frame to send, nothing (peer gone), or
/// the client's close (tungstenite answers it on the next read).
enum End {
    Close(u16, String),
    Gone(&'static str),
    ClosedByClient,
}

/// Run the connection until it closes. The hub session is opened here and
/// closed when the task ends, so a disconnect always unregisters.
pub async fn run<S>(
    mut ws: Ws<S>,
    wire: Option<Arc<Wire>>,
    admitted: Admitted,
    state: Arc<ServerState>,
    slot: Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _slot = slot;
    let hub = state.hub_for(&admitted.user);
    let peer = PeerInfo {
        os_user: admitted.user.clone(),
        origin: admitted.origin.clone(),
        capabilities: admitted.capabilities,
        read: admitted.read.clone(),
        write: admitted.write.clone(),
        open_url_patterns: admitted.open_url_patterns.clone(),
    };
    let mut session = match &wire {
        Some(wire) => hub.open_direct(peer, wire.clone()),
        None => hub.open(peer),
    };
    let id = session.id;
    // A configuration reload between the handshake and `open` did not see
    // this connection: re-decide its grants against the file in force now.
    crate::reload::recheck(&state, &hub, id);
    tracing::info!(
        conn = id.0,
        peer_user = %admitted.user.name,
        daemon_user = %state.me.name,
        capabilities = ?admitted.capabilities.names(),
        "websocket connected"
    );
    let end = drive(&mut ws, wire.as_deref(), &mut session, &state, &hub).await;
    hub.close(id);
    match end {
        End::Close(code, reason) => {
            let level_normal = code == close::NORMAL || code == close::GOING_AWAY;
            if level_normal {
                tracing::info!(conn = id.0, code, %reason, "websocket closing");
            } else {
                tracing::warn!(conn = id.0, code, %reason, "websocket closed by the server");
            }
            send_close(&mut ws, code, &reason).await;
        }
        End::Gone(why) => tracing::info!(conn = id.0, why, "websocket disconnected"),
        End::ClosedByClient => {
            // Read until tungstenite has answered and the stream ends.
            while let Some(Ok(_)) = ws.next().await {}
            // On a plain connection its answer is still in the wire: as a
            // server it ends the stream without flushing (it expects the
            // socket to take the bytes at once).
            if let Some(wire) = &wire {
                let _ = timeout(CLOSE_HANDSHAKE, wire.drain()).await;
            }
            tracing::info!(
                conn = id.0,
                why = "closed by client",
                "websocket disconnected"
            );
        }
    }
}

async fn send_close<S>(ws: &mut Ws<S>, code: u16, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A close reason is at most 123 bytes; cut on a character boundary.
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..cut].to_string().into(),
    };
    let _ = timeout(CLOSE_HANDSHAKE, async {
        if ws.send(Message::Close(Some(frame))).await.is_ok() {
            // Wait for the client's close frame (or the end of the stream).
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

fn close_for(err: &WsError) -> End {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::Close(
            close::TOO_BIG,
            format!("message of {size} bytes exceeds ByteSizeReader ({max_size})"),
        ),
        WsError::Capacity(e) => End::Close(close::TOO_BIG, e.to_string()),
        WsError::Utf8(_) => End::Close(close::INVALID_DATA, "text frame is not valid UTF-8".into()),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            End::Gone("reset by peer")
        }
        WsError::Protocol(e) => End::Close(close::PROTOCOL, format!("protocol error: {e}")),
        WsError::ConnectionClosed | WsError::AlreadyClosed => End::Gone("closed"),
        WsError::Io(_) => End::Gone("I/O error"),
        _ => End::Close(close::PROTOCOL, err.to_string()),
    }
}

async fn send_batch<S>(
    ws: &mut Ws<S>,
    first: Outgoing,
    session: &mut Session,
    tap: &Tap,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut next = Some(first);
    let mut sent = 0;
    while let Some(msg) = next.take() {
        match msg {
            Outgoing::Text(bytes) => {
                // The inspector's trace: one atomic load while none is open.
                tap.record(session.id.0, Direction::Out, bytes.as_str());
                ws.feed(Message::Text(bytes))
                    .await
                    .map_err(|e| close_for(&e))?;
            }
            Outgoing::Close { code, reason } => {
                let _ = ws.flush().await;
                return Err(End::Close(code, reason));
            }
        }
        sent += 1;
        if sent < MAX_BATCH {
            // Only what is already queued: never wait here. (A zero
            // `timeout` around `recv` is no "poll once": tokio rounds its
            // deadline up to the next millisecond tick, so an empty outbox
            // held every reply and event back by up to 1 ms.)
            next = session.try_recv();
        }
    }
    ws.flush().await.map_err(|e| close_for(&e))
}

/// One inbound frame: a request goes to the hub (true is returned), a pong
/// clears the pong deadline; anything that ends the connection is `Err`.
/// Never waits: it runs inside a batch (`Hub::batch`).
fn on_frame(
    session: &Session,
    state: &ServerState,
    hub: &Hub,
    frame: Option<Result<Message, WsError>>,
    pong_due: &mut Option<Instant>,
) -> Result<bool, End> {
    match frame {
        None => Err(End::Gone("closed")),
        Some(Err(e)) => Err(close_for(&e)),
        Some(Ok(Message::Text(text))) => {
            // `loginurl` (a GEN_P2C key) carries credentials: never logged.
            // A guard, not a clone: no reference count per frame (live reload
            // may change Log-values for open connections).
            if state.config.load().log.log_values && !text.as_str().contains("loginurl") {
                // Customer data: only when Log-values asks for it.
                tracing::debug!(conn = session.id.0, request = text.as_str(), "request text");
            }
            // The inspector's trace: one atomic load while none is open.
            state
                .inspector
                .tap
                .record(session.id.0, Direction::In, text.as_str());
            hub.handle(session.id, text.as_str());
            Ok(true)
        }
        Some(Ok(Message::Binary(_))) => Err(End::Close(
            close::UNSUPPORTED,
            "binary frames are not supported: send JSON text frames".into(),
        )),
        Some(Ok(Message::Pong(_))) => {
            *pong_due = None;
            Ok(false)
        }
        // tungstenite answers pings and close frames itself.
        Some(Ok(Message::Ping(_) | Message::Frame(_))) => Ok(false),
        Some(Ok(Message::Close(_))) => Err(End::ClosedByClient),
    }
}

async fn drive<S>(
    ws: &mut Ws<S>,
    wire: Option<&Wire>,
    session: &mut Session,
    state: &ServerState,
    hub: &Hub,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Timers are read once: a live reload changes them for later connections.
    let config = state.config();
    let timers = &config.timers;
    // A peer that takes no data for a whole pong timeout is as dead as one
    // that answers no ping.
    let write_deadline = timers.pong_timeout;
    let mut got_request = false;
    let hello_deadline = (!timers.hello.is_zero()).then(|| Instant::now() + timers.hello);
    let mut next_ping = Instant::now() + timers.ping_interval;
    let mut pong_due: Option<Instant> = None;
    // The shutdown wait and the timer live across iterations: created anew
    // in every `select!`, each registered and deregistered itself on every
    // wake-up (a lock and a timer-wheel update per delivered batch).
    let closing = state.closing.cancelled();
    tokio::pin!(closing);
    let timer = sleep_until(next_ping);
    tokio::pin!(timer);
    // The wire's wake-up, registered once and renewed only after it fired
    // (a plain connection's task wakes for nothing else the hub does).
    let wire_wake = wire_wake(wire);
    tokio::pin!(wire_wake);
    loop {
        let hello_at = hello_deadline.filter(|_| !got_request);
        let timer_at = [Some(next_ping), pong_due, hello_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_ping);
        if timer.deadline() != timer_at {
            timer.as_mut().reset(timer_at);
        }
        tokio::select! {
            biased;
            _ = &mut closing => {
                // Flush what the hub queued (the stopping-service event) first.
                while let Some(Outgoing::Text(bytes)) = session.try_recv() {
                    if ws.feed(Message::Text(bytes)).await.is_err() {
                        break;
                    }
                }
                let _ = timeout(write_deadline, ws.flush()).await;
                return End::Close(close::GOING_AWAY, "server shutting down".into());
            }
            () = &mut wire_wake => {
                wire_wake.set(self::wire_wake(wire));
                if let Some(wire) = wire {
                    // What the socket did not take at once; a peer that
                    // takes nothing for a whole pong timeout is dead.
                    match timeout(write_deadline, wire.drain()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Gone("I/O error"),
                        Err(_) => return End::Gone("peer takes no data: write timed out"),
                    }
                }
            }
            out = session.recv() => {
                if let (Some(wire), Outgoing::Close { .. }) = (wire, &out) {
                    if session.close_signalled() {
                        // Ahead of the backlog: the close frame goes next.
                        wire.discard_unsent();
                    }
                }
                let batch = send_batch(ws, out, session, &state.inspector.tap);
                tokio::pin!(batch);
                // Nearly always the socket takes the batch at once: only a
                // write that has to wait gets a deadline (a timer per batch
                // was a visible share of the fan-out's cost).
                let sent = match batch.as_mut().now_or_never() {
                    Some(done) => Ok(done),
                    None => timeout(write_deadline, batch).await,
                };
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(end)) => return end,
                    Err(_) => return End::Gone("peer takes no data: write timed out"),
                }
            }
            frame = ws.next() => {
                let mut frame = frame;
                // Take every request already received (up to MAX_BATCH)
                // before the loop sends the replies: a client that
                // pipelines requests gets its replies in one write (the
                // cork), and the events they cause reach each plain
                // connection in one write at the batch's end (`Hub::batch`),
                // just before. Nothing in the batch awaits.
                let mut requests = false;
                let mut ended = None;
                if let Some(wire) = wire {
                    wire.cork();
                }
                let batch = hub.batch();
                for taken in 1.. {
                    match on_frame(session, state, hub, frame, &mut pong_due) {
                        Ok(request) => requests |= request,
                        Err(end) => {
                            ended = Some(end);
                            break;
                        }
                    }
                    if taken >= MAX_BATCH {
                        break;
                    }
                    match ws.next().now_or_never() {
                        Some(next) => frame = next,
                        None => break,
                    }
                }
                drop(batch);
                if let Some(wire) = wire {
                    // The replies, in one write.
                    wire.uncork();
                }
                if let Some(end) = ended {
                    return end;
                }
                if requests {
                    got_request = true;
                    if wire.is_none() {
                        // Let the connections these requests woke send their
                        // events before this one sends its replies: the
                        // writer already knows its write succeeded, the
                        // subscribers are waiting (one write less before
                        // the event).
                        tokio::task::yield_now().await;
                    }
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                if pong_due.is_some_and(|d| d <= now) {
                    return End::Close(close::POLICY, "no pong received in time".into());
                }
                if hello_at.is_some_and(|d| d <= now) {
                    return End::Close(close::POLICY, "no request received in time after connecting".into());
                }
                if next_ping <= now {
                    next_ping = now + timers.ping_interval;
                    if pong_due.is_none() {
                        pong_due = Some(now + timers.pong_timeout);
                    }
                    match timeout(write_deadline, ws.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return close_for(&e),
                        Err(_) => return End::Gone("peer takes no data: ping write timed out"),
                    }
                }
            }
        }
    }
}

/// Resolves when the hub queued something on `wire` that this task must
/// write; never without a wire.
async fn wire_wake(wire: Option<&Wire>) {
    match wire {
        Some(wire) => wire.notified().await,
        None => std::future::pending().await,
    }
}
