//! The one shared test helper: starts the real daemon in-process on
//! ephemeral loopback ports, and gives raw HTTP and websocket clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wsconnector::app::{self, Daemon};
use wsconnector::config::{Capabilities, Config, OriginEntry, OriginPattern, VarFilter};
use wsconnector::peer::PeerIdentity;

/// Upper bound for anything a test waits for; tests normally finish in ms.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A daemon config for tests: port 0 and fast timers.
pub fn test_config() -> Config {
    let mut c = Config::embedded();
    c.port = 0;
    c.timers.handshake = Duration::from_secs(5);
    c.timers.idle = Duration::from_secs(5);
    c.timers.shutdown_grace = Duration::from_secs(5);
    c.origins.push(origin_entry("https://crm.example.com"));
    c
}

/// An allowed origin with data access.
pub fn origin_entry(origin: &str) -> OriginEntry {
    OriginEntry {
        pattern: OriginPattern::parse(origin).unwrap(),
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: vec![],
        from_bare_host: false,
    }
}

/// The real OS peer identity of this platform.
pub fn system_peers() -> Arc<dyn PeerIdentity> {
    wsconnector::peer::system()
}

/// Start the daemon with `config`.
pub async fn start(config: Config) -> Daemon {
    app::start(config, system_peers())
        .await
        .expect("daemon starts")
}

/// Start with the test config changed by `f`.
pub async fn start_with(f: impl FnOnce(&mut Config)) -> Daemon {
    let mut c = test_config();
    f(&mut c);
    start(c).await
}

pub fn v4(d: &Daemon) -> SocketAddr {
    d.addrs[0]
}
pub fn v6(d: &Daemon) -> SocketAddr {
    d.addrs[1]
}
pub fn host(d: &Daemon) -> String {
    format!("localhost:{}", d.port)
}

/// An HTTP response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one raw HTTP/1.1 request (`head` without the final blank line) and
/// read the response head and its Content-Length body.
pub async fn raw_http(addr: SocketAddr, head: &str) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    raw_http_on(&mut s, head).await
}

pub async fn raw_http_on(s: &mut TcpStream, head: &str) -> RawResponse {
    let req = format!(
        "{}\r\n\r\n",
        head.trim_end().replace('\n', "\r\n").replace("\r\r", "\r")
    );
    s.write_all(req.as_bytes()).await.unwrap();
    timeout(DEADLINE, read_response(s))
        .await
        .expect("response in time")
}

async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert!(
            n > 0,
            "connection closed before the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A websocket upgrade request head for `addr` with extra header lines.
pub fn upgrade_head(host: &str, extra: &[&str]) -> String {
    let mut h = format!(
        "GET / HTTP/1.1\nHost: {host}\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
    );
    for e in extra {
        h.push('\n');
        h.push_str(e);
    }
    h
}

pub type Client = WebSocketStream<TcpStream>;

/// Connect a websocket client to `addr` with an optional Origin.
pub async fn ws_connect(addr: SocketAddr, host: &str, origin: Option<&str>) -> Client {
    try_ws_connect(addr, host, origin)
        .await
        .expect("websocket connects")
}

pub async fn try_ws_connect(
    addr: SocketAddr,
    host: &str,
    origin: Option<&str>,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{host}/").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    let (ws, _) = timeout(DEADLINE, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake in time")?;
    Ok(ws)
}

/// The next text frame as JSON (skipping pings).
pub async fn next_json(ws: &mut Client) -> serde_json::Value {
    loop {
        let msg = timeout(DEADLINE, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Send a JSON request.
pub async fn send_json(ws: &mut Client, v: serde_json::Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Read until the server's close frame; returns its code and reason.
pub async fn close_frame(ws: &mut Client) -> Option<(u16, String)> {
    loop {
        match timeout(DEADLINE, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return Some((u16::from(code), reason.to_string()))
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Poll `cond` until it holds or the deadline passes.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
