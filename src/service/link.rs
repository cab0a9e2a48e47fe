//! The service ↔ session-agent wire protocol, over any byte stream (a Unix
//! socket on Linux, a named pipe on Windows): one JSON object per line,
//! each at most [`MAX_LINE`] bytes.
//!
//! ```text
//! agent   -> service  {"type":"hello","version":1,"user":"uid:1001","pid":4321}
//! service -> agent    {"type":"welcome","version":1}
//!                     or {"type":"refused","reason":"..."} and the end of the stream
//! service -> agent    {"type":"call","id":7,"action":{"kind":"notify",...}}
//! agent   -> service  {"type":"result","id":7,"ok":{"pid":123}}   (or "ok":null)
//!                     or {"type":"result","id":7,"error":{"kind":"not_supported","message":"..."}}
//! service -> agent    {"type":"replaced"} (a newer agent of the same user took over)
//! service -> agent    {"type":"log","level":"WARN","line":"refused: ..."} (the user's own
//!                     log lines, see user_log.rs; the agent writes them to its log)
//! ```
//!
//! The transport establishes who the agent is (`SO_PEERCRED`, the pipe
//! client's token) and that identity is the only one trusted: a hello that
//! claims another user is answered `refused` and the agent is never
//! registered. Calls may overlap (a pickup dialog stays open while a toast is
//! shown); results are matched by `id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::registry::{AgentRegistry, Call};
use crate::peer::OsUser;
use crate::platform::{
    ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest,
};
use crate::server::Shutdown;

/// Version of this link protocol; both sides must speak the same.
pub const LINK_VERSION: u32 = 1;
/// Longest line either side accepts (a call carries at most a few KiB of
/// arguments; anything longer is a broken or hostile peer).
pub const MAX_LINE: usize = 64 * 1024;
/// How long the service waits for an agent's hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a link ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Reading or writing the stream failed.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The other side sent something that is not this protocol.
    #[error("link protocol: {0}")]
    Protocol(String),
    /// The service refused this agent (the reason is the service's).
    #[error("the service refused this agent: {0}")]
    Refused(String),
    /// The agent claimed another user than the transport established.
    #[error("agent of {peer} claimed to be {claimed}: refused")]
    Impersonation {
        /// Who the transport says it is.
        peer: String,
        /// Who it said it was.
        claimed: String,
    },
    /// A newer agent of the same user took over.
    #[error("replaced by a newer agent of the same user")]
    Replaced,
    /// No hello in time.
    #[error("no hello within {0:?}")]
    HelloTimeout(Duration),
}

/// One desktop action, as relayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Action {
    /// `Platform::launch`.
    Launch {
        /// Declared name.
        name: String,
        /// Absolute path.
        path: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// `Platform::open_url`.
    OpenUrl {
        /// The URL (already checked by the service).
        url: String,
    },
    /// `Platform::window`.
    Window {
        /// Title.
        title: String,
        /// Legacy x.
        x: i32,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bring to front.
        focus: bool,
    },
    /// `Platform::notify`.
    Notify {
        /// Title.
        title: String,
        /// Body.
        message: String,
        /// Duration in ms.
        duration_ms: u64,
        /// Colour hint.
        color: Option<String>,
        /// Width hint.
        width: Option<u32>,
        /// Height hint.
        height: Option<u32>,
    },
    /// `Platform::pickup`.
    Pickup {
        /// Dedupe key.
        key: String,
        /// Title.
        title: String,
        /// Button text.
        button_text: String,
        /// Timeout in ms.
        timeout_ms: u64,
    },
    /// `Platform::close_window`.
    CloseWindow {
        /// Exact title.
        title: String,
    },
}

/// What an action returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Done {
    /// Nothing to report.
    Unit,
    /// `launch`: the process id.
    Launched {
        /// Process id.
        pid: u32,
    },
    /// `pickup`: how the dialog ended.
    Pickup {
        /// `pickedUp`, `dismissed` or `timedOut`.
        outcome: String,
    },
}

/// An action's failure, as relayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// `not_supported`, `not_found` or `failed`.
    pub kind: String,
    /// The agent's message.
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Message {
    Hello {
        version: u32,
        user: String,
        #[serde(default)]
        pid: u32,
    },
    Welcome {
        version: u32,
    },
    Refused {
        reason: String,
    },
    Call {
        id: u64,
        action: Action,
    },
    Result {
        id: u64,
        #[serde(default)]
        ok: Option<Done>,
        #[serde(default)]
        error: Option<Failure>,
    },
    Replaced,
    /// One of the user's own log lines from the service (user_log.rs).
    Log {
        level: String,
        line: String,
    },
}

impl Failure {
    fn of(e: &ActionError) -> Failure {
        let (kind, message) = match e {
            ActionError::NotSupported(m) => ("not_supported", m),
            ActionError::NotFound(m) => ("not_found", m),
            ActionError::Failed(m) | ActionError::Unavailable(m) => ("failed", m),
        };
        Failure {
            kind: kind.into(),
            message: message.clone(),
        }
    }

    /// The platform error this failure stands for.
    pub fn into_error(self) -> ActionError {
        match self.kind.as_str() {
            "not_supported" => ActionError::NotSupported(self.message),
            "not_found" => ActionError::NotFound(self.message),
            _ => ActionError::Failed(self.message),
        }
    }
}

/// Writes one message as a line.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> Result<(), LinkError> {
    let mut line = serde_json::to_vec(m).map_err(|e| LinkError::Protocol(e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one message; `None` at the end of the stream. A line longer than
/// [`MAX_LINE`] or not of this protocol is an error.
async fn recv<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Option<Message>, LinkError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(LinkError::Protocol(format!(
            "a line longer than {MAX_LINE} bytes"
        )));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| LinkError::Protocol(format!("not a link message: {e}")))
}

/// Service side of one agent connection. `peer` is who the transport says
/// the agent runs as; the agent is registered for that user only, replaces
/// an older agent of the same user, and serves calls until the stream ends,
/// a newer agent replaces it, or `shutdown`.
pub async fn serve_agent<S>(
    stream: S,
    peer: OsUser,
    registry: Arc<AgentRegistry>,
    shutdown: Shutdown,
) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let hello = match timeout(HELLO_TIMEOUT, recv(&mut r)).await {
        Err(_) => return Err(LinkError::HelloTimeout(HELLO_TIMEOUT)),
        Ok(m) => m?,
    };
    match hello {
        Some(Message::Hello { version, user, pid }) => {
            if user != peer.id {
                let err = LinkError::Impersonation {
                    peer: format!("{} ({})", peer.name, peer.id),
                    claimed: user,
                };
                tracing::warn!(agent_pid = pid, "session agent refused: {err}");
                let reason = format!(
                    "this connection belongs to {}, not to the user the agent claims",
                    peer.id
                );
                let _ = send(&mut w, &Message::Refused { reason }).await;
                return Err(err);
            }
            if version != LINK_VERSION {
                let reason = format!("link version {version} is not {LINK_VERSION}: install the same wsconnector version for the service and the agents");
                tracing::warn!(user = %peer.name, "session agent refused: {reason}");
                let _ = send(
                    &mut w,
                    &Message::Refused {
                        reason: reason.clone(),
                    },
                )
                .await;
                return Err(LinkError::Refused(reason));
            }
            tracing::info!(user = %peer.name, user_id = %peer.id, agent_pid = pid, "session agent connected");
        }
        Some(_) => {
            return Err(LinkError::Protocol(
                "the first message is not a hello".into(),
            ))
        }
        None => return Ok(()),
    }
    send(
        &mut w,
        &Message::Welcome {
            version: LINK_VERSION,
        },
    )
    .await?;
    let super::registry::Attachment {
        generation,
        mut calls,
        mut logs,
        dropped,
    } = registry.attach(&peer);
    let mut pending: HashMap<u64, Call> = HashMap::new();
    let outcome = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            call = calls.recv() => match call {
                Some(call) => {
                    let id = call.id;
                    let m = Message::Call { id, action: call.action.clone() };
                    pending.insert(id, call);
                    if let Err(e) = send(&mut w, &m).await {
                        break Err(e);
                    }
                }
                // The registry dropped our sender: a newer agent took over.
                None => {
                    let _ = send(&mut w, &Message::Replaced).await;
                    break Err(LinkError::Replaced);
                }
            },
            Some(line) = logs.recv() => {
                let lost = dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
                let text = if lost == 0 {
                    line.text
                } else {
                    format!("({lost} earlier lines were dropped: the agent did not keep up) {}", line.text)
                };
                let m = Message::Log { level: line.level.to_string(), line: text };
                if let Err(e) = send(&mut w, &m).await {
                    break Err(e);
                }
            }
            msg = recv(&mut r) => match msg {
                Ok(Some(Message::Result { id, ok, error })) => {
                    if let Some(call) = pending.remove(&id) {
                        let result = match (ok, error) {
                            (_, Some(f)) => Err(f.into_error()),
                            (Some(done), None) => Ok(done),
                            (None, None) => Ok(Done::Unit),
                        };
                        call.answer(result);
                    }
                }
                Ok(Some(_)) => break Err(LinkError::Protocol("unexpected message from the agent".into())),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    registry.detach(&peer, generation);
    // Dropping `pending` fails every call still waiting at once.
    drop(pending);
    match &outcome {
        Ok(()) => tracing::info!(user = %peer.name, "session agent disconnected"),
        Err(e) => tracing::warn!(user = %peer.name, "session agent link ended: {e}"),
    }
    outcome
}

/// Agent side: says hello as `me`, then performs each call with `platform`
/// (blocking calls on the blocking pool, several at once) and answers, until
/// the service ends the stream or `shutdown`.
pub async fn run_agent_link<S>(
    stream: S,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let up = std::sync::atomic::AtomicBool::new(false);
    run_agent_link_showing(stream, me, platform, shutdown, &up).await
}

/// [`run_agent_link`], keeping `up` true while the service has welcomed
/// this agent (the agent's tray shows it).
pub async fn run_agent_link_showing<S>(
    stream: S,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
    up: &std::sync::atomic::AtomicBool,
) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let result = agent_link(stream, me, platform, shutdown, up).await;
    up.store(false, std::sync::atomic::Ordering::Relaxed);
    result
}

async fn agent_link<S>(
    stream: S,
    me: &OsUser,
    platform: Arc<dyn Platform>,
    shutdown: Shutdown,
    up: &std::sync::atomic::AtomicBool,
) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    send(
        &mut w,
        &Message::Hello {
            version: LINK_VERSION,
            user: me.id.clone(),
            pid: std::process::id(),
        },
    )
    .await?;
    match timeout(HELLO_TIMEOUT, recv(&mut r)).await {
        Err(_) => return Err(LinkError::HelloTimeout(HELLO_TIMEOUT)),
        Ok(Ok(Some(Message::Welcome { .. }))) => {}
        Ok(Ok(Some(Message::Refused { reason }))) => return Err(LinkError::Refused(reason)),
        Ok(Ok(Some(_))) => return Err(LinkError::Protocol("expected a welcome".into())),
        Ok(Ok(None)) => return Err(LinkError::Protocol("the service closed the link".into())),
        Ok(Err(e)) => return Err(e),
    }
    up.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        "connected to the service: performing desktop actions for {}",
        me.name
    );
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Message>();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            done = done_rx.recv() => {
                if let Some(m) = done {
                    send(&mut w, &m).await?;
                }
            }
            msg = recv(&mut r) => match msg? {
                Some(Message::Call { id, action }) => {
                    let platform = platform.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let m = match perform(platform.as_ref(), action) {
                            Ok(done) => Message::Result { id, ok: Some(done), error: None },
                            Err(e) => Message::Result { id, ok: None, error: Some(Failure::of(&e)) },
                        };
                        let _ = tx.send(m);
                    });
                }
                Some(Message::Replaced) => return Err(LinkError::Replaced),
                Some(Message::Log { level, line }) => log_from_service(&level, &line),
                Some(_) => return Err(LinkError::Protocol("unexpected message from the service".into())),
                None => return Ok(()),
            },
        }
    }
}

/// Writes a line the service forwarded into this agent's log, which is the
/// user's own (target `service`, so it reads `WARN service: refused: ...`).
fn log_from_service(level: &str, line: &str) {
    match level {
        "ERROR" => tracing::error!(target: "service", "{line}"),
        "WARN" => tracing::warn!(target: "service", "{line}"),
        "INFO" => tracing::info!(target: "service", "{line}"),
        "DEBUG" => tracing::debug!(target: "service", "{line}"),
        _ => tracing::trace!(target: "service", "{line}"),
    }
}

/// Runs one relayed action on this session's desktop.
fn perform(platform: &dyn Platform, action: Action) -> Result<Done, ActionError> {
    match action {
        Action::Launch { name, path, args } => platform
            .launch(&LaunchSpec {
                name,
                path: path.into(),
                args,
            })
            .map(|pid| Done::Launched { pid }),
        Action::OpenUrl { url } => platform.open_url(&url).map(|()| Done::Unit),
        Action::Window {
            title,
            x,
            width,
            height,
            focus,
        } => platform
            .window(&WindowRequest {
                title,
                x,
                width,
                height,
                focus,
            })
            .map(|()| Done::Unit),
        Action::Notify {
            title,
            message,
            duration_ms,
            color,
            width,
            height,
        } => platform
            .notify(&Toast {
                title,
                message,
                duration: Duration::from_millis(duration_ms),
                color,
                width,
                height,
            })
            .map(|()| Done::Unit),
        Action::Pickup {
            key,
            title,
            button_text,
            timeout_ms,
        } => platform
            .pickup(&PickupDialog {
                key,
                title,
                button_text,
                timeout: Duration::from_millis(timeout_ms),
            })
            .map(|o| Done::Pickup {
                outcome: outcome_name(o).into(),
            }),
        Action::CloseWindow { title } => platform.close_window(&title).map(|()| Done::Unit),
    }
}

/// The wire name of a pickup outcome.
pub fn outcome_name(o: PickupOutcome) -> &'static str {
    match o {
        PickupOutcome::PickedUp => "pickedUp",
        PickupOutcome::Dismissed => "dismissed",
        PickupOutcome::TimedOut => "timedOut",
    }
}

/// The pickup outcome of a wire name.
pub fn outcome_of(name: &str) -> Option<PickupOutcome> {
    match name {
        "pickedUp" => Some(PickupOutcome::PickedUp),
        "dismissed" => Some(PickupOutcome::Dismissed),
        "timedOut" => Some(PickupOutcome::TimedOut),
        _ => None,
    }
}
