//! A wsconnector client speaking the documented protocol (docs/protocol.md)
//! over plain WS: connect as a native client, register, subscribe, publish,
//! and read events cheaply enough that one load-generator thread can keep up
//! with the daemon.

use std::net::SocketAddr;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{fail, Res};

/// The environment every benchmark client registers in.
pub const ENV: &str = "BENCH";
/// The variable the publisher sets and the subscribers watch.
pub const VAR: &str = "v";

/// One websocket connection to the daemon.
pub type Ws = WebSocketStream<TcpStream>;

/// Connects as a native client (no `Origin`) and reads the hello; returns the
/// stream and the hello's resume token.
pub async fn connect(addr: SocketAddr) -> Res<(Ws, String)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let req = format!("ws://{addr}/").into_client_request()?;
    // Small client buffers: a thousand connections live in one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config)).await?;
    let hello = next_text(&mut ws).await?;
    let v: serde_json::Value = serde_json::from_str(&hello)?;
    if v["type"] != "hello" {
        return Err(fail(format!("expected a hello, got {hello}")));
    }
    let token = v["resumeToken"].as_str().unwrap_or_default().to_string();
    Ok((ws, token))
}

/// The next text frame (pings are answered by tungstenite).
pub async fn next_text(ws: &mut Ws) -> Res<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(c))) => {
                return Err(fail(format!("closed by the daemon: {c:?}")))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(fail("connection ended")),
        }
    }
}

/// Sends one request and returns its reply, which must be a SUCCESS (no
/// event can arrive before it on a connection that is not subscribed yet or
/// whose environment nobody writes).
pub async fn request(ws: &mut Ws, req: serde_json::Value) -> Res<serde_json::Value> {
    ws.send(Message::text(req.to_string())).await?;
    loop {
        let text = next_text(ws).await?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        if v["type"] == "reply" {
            if v["result"] != "SUCCESS" {
                return Err(fail(format!("request {req} failed: {text}")));
            }
            return Ok(v);
        }
    }
}

/// Registers in `ENV`; when `subscribe`, subscribes to `VAR` without values
/// (the default subscription). Returns the environment's seq afterwards.
pub async fn join(ws: &mut Ws, client: &str, subscribe: bool) -> Res<u64> {
    let r = request(
        ws,
        serde_json::json!({"action": "createEnvironment", "environment": ENV, "clientName": client}),
    )
    .await?;
    let mut seq = r["seq"].as_u64().unwrap_or_default();
    if subscribe {
        let r = request(
            ws,
            serde_json::json!({"action": "setNotificationsOn", "environment": ENV, "name": VAR}),
        )
        .await?;
        seq = r["seq"]
            .as_u64()
            .ok_or_else(|| fail("subscription reply without seq"))?;
    }
    Ok(seq)
}

/// The text of the k-th set: `value` is about `value_bytes` long and starts
/// with k, so a payload names its set.
pub fn set_request(k: u64, value_bytes: usize) -> String {
    let head = format!("{k:012}:");
    let pad = value_bytes.saturating_sub(head.len());
    format!(
        r#"{{"action":"setContextVariable","environment":"{ENV}","name":"{VAR}","value":"{head}{}"}}"#,
        "x".repeat(pad)
    )
}

/// The number after `"key":` in `text`, without parsing the whole JSON (the
/// load generator reads hundreds of thousands of events a second).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A subscriber's read half.
pub type Reader = SplitStream<Ws>;
/// A publisher's write half.
pub type Writer = SplitSink<Ws, Message>;

/// What one received frame was.
pub enum Frame {
    /// A `ContextChanged` event with its seq.
    Event(u64),
    /// A SUCCESS reply with its seq.
    Reply(u64),
}

/// The next protocol frame on `r`; anything unexpected (a FAILURE, a close,
/// another event) is an error.
pub async fn next_frame(r: &mut Reader) -> Res<Frame> {
    loop {
        let text = match r.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(c))) => {
                return Err(fail(format!("closed by the daemon: {c:?}")))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(fail("connection ended")),
        };
        let t = text.as_str();
        let seq = number_after(t, "\"seq\":");
        if t.starts_with(r#"{"type":"event","event":"ContextChanged""#) {
            return seq
                .map(Frame::Event)
                .ok_or_else(|| fail(format!("event without seq: {t}")));
        }
        if t.starts_with(r#"{"type":"reply""#) && t.contains(r#""result":"SUCCESS""#) {
            return seq
                .map(Frame::Reply)
                .ok_or_else(|| fail(format!("reply without seq: {t}")));
        }
        return Err(fail(format!("unexpected message: {t}")));
    }
}
