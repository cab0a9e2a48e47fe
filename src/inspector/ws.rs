//! One inspector socket: sends the client list, the environments and the
//! trace as they change, and runs the simulator's writes.
//!
//! The simulator writes through a hub session of its own, opened with the
//! daemon's OS user, the page's origin and the `data` capability only: a
//! simulated or replayed write is an ordinary `setContextJSON`, so pages
//! hear it exactly as they hear a toolbar, and it can never cause a desktop
//! action (the v1 `GEN_P2C` door needs `launch`, which this session lacks).
//!
//! Snapshots are polled every [`POLL`] while the socket is open and sent
//! only when they differ from the last one sent; nothing runs when no
//! inspector is open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{interval, timeout, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::tap::{Direction, Watch};
use super::SocketSlot;
use crate::config::{Capabilities, VarFilter};
use crate::cti::{self, EventData, ToolbarWrite};
use crate::hub::{Outgoing, PeerInfo, Session};
use crate::server::ServerState;

/// How often clients, environments and the trace are looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// Most trace entries sent in one message.
const TRACE_BATCH: usize = 500;
/// How long a write to the page may take before the socket is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The `clientName` the simulator registers with.
pub const CLIENT_NAME: &str = "inspector";
/// Longest value of one simulator field, in bytes.
const MAX_FIELD: usize = 4096;

/// A message from the inspector page.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Command {
    /// Publish a toolbar event in `GEN_T2P`.
    #[serde(rename_all = "camelCase")]
    Simulate {
        /// Echoed in the result.
        id: Value,
        environment: String,
        event: String,
        #[serde(default)]
        ani: Option<String>,
        #[serde(default)]
        dnis: Option<String>,
        #[serde(default)]
        interaction_id: Option<String>,
        #[serde(default)]
        parties: Option<String>,
        /// User data, in order.
        #[serde(default)]
        data: Map<String, Value>,
    },
    /// Write a page's request in `GEN_P2T`.
    Request {
        /// Echoed in the result.
        id: Value,
        environment: String,
        request: String,
        /// The request's variables.
        #[serde(default)]
        fields: Map<String, Value>,
    },
}

/// An optional string field: empty means absent.
fn opt(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// String pairs from a JSON object of strings (numbers and booleans are
/// written as text, as a toolbar's user data is).
fn pairs(m: Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(format!("{k}: values must be text")),
        })
        .collect()
}

/// Builds the write a command asks for.
fn build(cmd: Command) -> (Value, Result<ToolbarWrite, String>) {
    match cmd {
        Command::Simulate {
            id,
            environment,
            event,
            ani,
            dnis,
            interaction_id,
            parties,
            data,
        } => {
            let write = pairs(data).and_then(|user_data| {
                let d = EventData {
                    ani: opt(ani),
                    dnis: opt(dnis),
                    interaction_id: opt(interaction_id),
                    parties: opt(parties),
                    user_data,
                };
                cti::event_write(&environment, &event, &d).map_err(|e| e.to_string())
            });
            (id, write)
        }
        Command::Request {
            id,
            environment,
            request,
            fields,
        } => {
            let write = pairs(fields).and_then(|f| {
                cti::request_write(&environment, &request, &f).map_err(|e| e.to_string())
            });
            (id, write)
        }
    }
}

/// What the simulator's hub session is waiting for, by hub `requestId`.
enum Pending {
    /// The registration before a write; a failure answers the page.
    Register { page_id: Value },
    /// The write itself.
    Write { page_id: Value, request: Value },
}

/// The socket task: the simulator's hub session lives and dies with it.
pub(super) async fn run<S>(
    mut ws: WebSocketStream<S>,
    state: Arc<ServerState>,
    origin: Option<String>,
    slot: SocketSlot,
    user: crate::peer::OsUser,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _slot = slot;
    let inspector = state.inspector.clone();
    let _watch: Watch = inspector.tap.watch();
    let hub = state.hub_for(&user);
    let mut session = hub.open(PeerInfo {
        os_user: user.clone(),
        origin,
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: Vec::new(),
    });
    let sid = session.id;
    inspector.own_conns().push(sid.0);
    tracing::info!(conn = sid.0, "inspector socket open");
    let hello = json!({
        "type": "hello",
        "product": crate::server::PRODUCT,
        "version": crate::VERSION,
        "user": user.name,
        "port": state.port,
        "simulatorConn": sid.0,
        "traceCapacity": super::tap::TRACE_CAPACITY,
        "catalogue": cti::catalogue_json(),
    });
    if send(&mut ws, &hello).await.is_ok() {
        drive(&mut ws, &mut session, &state, &hub).await;
    }
    hub.close(sid);
    inspector.own_conns().retain(|c| *c != sid.0);
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    tracing::info!(conn = sid.0, "inspector socket closed");
}

async fn send<S>(ws: &mut WebSocketStream<S>, v: &Value) -> Result<(), ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match timeout(WRITE_TIMEOUT, ws.send(Message::text(v.to_string()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn drive<S>(
    ws: &mut WebSocketStream<S>,
    session: &mut Session,
    state: &Arc<ServerState>,
    hub: &crate::hub::Hub,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let inspector = &state.inspector;
    let mut tick = interval(POLL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_clients = Value::Null;
    let mut last_envs = Value::Null;
    let mut trace_seq = 0u64;
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut next = 0u64;
    loop {
        tokio::select! {
            _ = state.closing.cancelled() => return,
            _ = tick.tick() => {
                let mut clients = serde_json::to_value(hub.clients()).unwrap_or(Value::Null);
                if let Value::Array(list) = &mut clients {
                    for c in list.iter_mut() {
                        let own = c.get("id").and_then(Value::as_u64).is_some_and(|id| inspector.is_own(id));
                        c["inspector"] = Value::Bool(own);
                    }
                }
                if clients != last_clients {
                    if send(ws, &json!({"type": "clients", "clients": clients})).await.is_err() { return; }
                    last_clients = clients;
                }
                let envs = serde_json::to_value(hub.environments()).unwrap_or(Value::Null);
                if envs != last_envs {
                    if send(ws, &json!({"type": "environments", "environments": envs})).await.is_err() { return; }
                    last_envs = envs;
                }
                let mut entries = inspector.tap.since(trace_seq, TRACE_BATCH);
                if let Some(last) = entries.last() {
                    trace_seq = last.seq;
                    if state.tenants.is_per_user() {
                        // One trace per process: show only this user's
                        // connections (ids are unique process-wide).
                        let mine: Vec<u64> = hub.clients().iter().map(|c| c.id).collect();
                        entries.retain(|e| mine.contains(&e.conn));
                    }
                    if !entries.is_empty()
                        && send(ws, &json!({"type": "trace", "entries": entries})).await.is_err()
                    {
                        return;
                    }
                }
            }
            out = session.recv() => match out {
                Outgoing::Text(text) => {
                    inspector.tap.record(session.id.0, Direction::Out, text.as_str());
                    if let Some(msg) = answer(&mut pending, text.as_str()) {
                        if send(ws, &msg).await.is_err() { return; }
                    }
                }
                Outgoing::Close { code, reason } => {
                    tracing::info!(code, %reason, "the simulator's hub session was closed");
                    return;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let reply = command(state, hub, session, &mut pending, &mut next, text.as_str());
                    if let Some(msg) = reply {
                        if send(ws, &msg).await.is_err() { return; }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Runs one page command; returns an immediate answer when it fails before
/// reaching the hub.
fn command(
    state: &ServerState,
    hub: &crate::hub::Hub,
    session: &Session,
    pending: &mut HashMap<String, Pending>,
    next: &mut u64,
    text: &str,
) -> Option<Value> {
    let cmd: Command = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            return Some(json!({"type": "result", "id": null, "ok": false,
                "error": format!("not an inspector command: {e}")}))
        }
    };
    let (page_id, write) = build(cmd);
    let write = write.and_then(|w| {
        let too_long = w
            .data
            .iter()
            .any(|(_, v)| v.as_str().is_some_and(|s| s.len() > MAX_FIELD));
        if too_long {
            Err(format!("a value is longer than {MAX_FIELD} bytes"))
        } else {
            Ok(w)
        }
    });
    let write = match write {
        Ok(w) => w,
        Err(error) => {
            return Some(json!({"type": "result", "id": page_id, "ok": false, "error": error}))
        }
    };
    *next += 1;
    let reg_id = format!("reg-{next}");
    let write_id = format!("write-{next}");
    let register = json!({
        "action": "createEnvironment",
        "requestId": reg_id,
        "environment": write.environment,
        "clientName": CLIENT_NAME,
    });
    let request = write.to_request(Value::String(write_id.clone()));
    pending.insert(
        reg_id,
        Pending::Register {
            page_id: page_id.clone(),
        },
    );
    pending.insert(
        write_id,
        Pending::Write {
            page_id,
            request: request.clone(),
        },
    );
    // Both replies come back through the session, in order. The trace shows
    // the simulator's frames like any client's.
    for frame in [register.to_string(), request.to_string()] {
        state
            .inspector
            .tap
            .record(session.id.0, Direction::In, &frame);
        hub.handle(session.id, &frame);
    }
    None
}

/// Turns a hub reply to the simulator's session into a result for the page.
fn answer(pending: &mut HashMap<String, Pending>, text: &str) -> Option<Value> {
    let reply: Value = serde_json::from_str(text).ok()?;
    if reply.get("type").and_then(Value::as_str) != Some("reply") {
        return None;
    }
    let rid = reply.get("requestId")?.as_str()?.to_string();
    let ok = reply.get("result").and_then(Value::as_str) == Some("SUCCESS");
    match pending.remove(&rid)? {
        Pending::Register { page_id } => {
            if ok {
                return None;
            }
            // The write that follows fails as not registered: answer with
            // the registration's reason instead, once.
            let write_id = rid.replacen("reg-", "write-", 1);
            pending.remove(&write_id);
            Some(json!({"type": "result", "id": page_id, "ok": false,
                "error": reply.get("errorMessage").cloned().unwrap_or(Value::Null), "reply": reply}))
        }
        Pending::Write { page_id, request } => Some(json!({
            "type": "result", "id": page_id, "ok": ok, "write": request, "reply": reply,
            "error": reply.get("errorMessage").cloned().unwrap_or(Value::Null),
        })),
    }
}
