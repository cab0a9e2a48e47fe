//! The native websocket client `wsconnector ctl` talks through: it connects
//! to the daemon of this OS user on 127.0.0.1 (no Origin header, so the
//! daemon treats it as a native client and checks that the socket belongs to
//! the same user), over WS or over WSS pinned to the certificate config.xml
//! names, and asks `GET /health` on the same port.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::CtlError;
use crate::tls::leaf_check::LeafCheck;

/// How long connecting (TCP, TLS, websocket handshake, hello) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `/health` answer read (it is a few dozen bytes).
const MAX_HEALTH_BYTES: usize = 16 * 1024;

/// Where the daemon is and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// `Some(leaf)` for WSS: the certificate the daemon must present.
    pub pinned: Option<CertificateDer<'static>>,
}

impl Target {
    /// `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        if self.pinned.is_some() {
            "wss"
        } else {
            "ws"
        }
    }
}

/// Any byte stream the websocket can run over (TCP or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to the daemon.
pub struct Client {
    ws: WebSocketStream<Box<dyn Io>>,
    /// The daemon's hello.
    pub hello: Value,
    next_id: u64,
    /// Events that arrived while waiting for a reply, oldest first.
    backlog: std::collections::VecDeque<Value>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

async fn tcp(port: u16) -> Result<TcpStream, CtlError> {
    match timeout(CONNECT_TIMEOUT, TcpStream::connect(("127.0.0.1", port))).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(CtlError::NotRunning(format!(
            "no wsconnector answers on 127.0.0.1:{port} ({e}); start it, or pass --port / --config"
        ))),
        Err(_) => Err(CtlError::NotRunning(format!(
            "127.0.0.1:{port} did not accept a connection within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// The TCP stream, wrapped in TLS pinned to `leaf` for WSS.
async fn stream(target: &Target) -> Result<Box<dyn Io>, CtlError> {
    let tcp = tcp(target.port).await?;
    let Some(leaf) = &target.pinned else {
        return Ok(Box::new(tcp));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CtlError::Failed(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LeafCheck::pinned(leaf.clone(), provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost")
        .map_err(|e| CtlError::Failed(format!("TLS setup: {e}")))?;
    match timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(Box::new(tls)),
        Ok(Err(e)) => Err(CtlError::Failed(format!(
            "TLS with 127.0.0.1:{} failed: {e}",
            target.port
        ))),
        Err(_) => Err(CtlError::NotRunning(format!(
            "127.0.0.1:{} did not complete a TLS handshake within {}s",
            target.port,
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `GET /health` on the daemon's port, in plain HTTP (a WSS daemon answers
/// it too, so "running" and "certificate trusted" are told apart).
pub async fn health(port: u16) -> Result<Value, CtlError> {
    let mut s = tcp(port).await?;
    let req =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let read = async {
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut s)
            .take(MAX_HEALTH_BYTES as u64)
            .read_to_end(&mut buf)
            .await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match timeout(CONNECT_TIMEOUT, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(CtlError::NotRunning(format!("GET /health failed: {e}"))),
        Err(_) => {
            return Err(CtlError::NotRunning(format!(
                "127.0.0.1:{port} did not answer GET /health within {}s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(CtlError::NotRunning(format!(
            "127.0.0.1:{port} answered GET /health with {:?}: is it wsconnector?",
            head.lines().next().unwrap_or_default()
        )));
    }
    let health: Value = serde_json::from_str(body.trim()).map_err(|_| {
        CtlError::NotRunning(format!(
            "127.0.0.1:{port} answered GET /health with something that is not wsconnector's JSON"
        ))
    })?;
    if health["product"] != "wsconnector" {
        return Err(CtlError::NotRunning(format!(
            "127.0.0.1:{port} is not wsconnector ({health})"
        )));
    }
    Ok(health)
}

impl Client {
    /// Connects and reads the hello.
    pub async fn connect(target: &Target) -> Result<Client, CtlError> {
        let io = stream(target).await?;
        let url = format!("{}://127.0.0.1:{}/", target.scheme(), target.port);
        let req = url
            .into_client_request()
            .map_err(|e| CtlError::Failed(format!("websocket request: {e}")))?;
        let (ws, _) = match timeout(CONNECT_TIMEOUT, tokio_tungstenite::client_async(req, io)).await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).trim().to_string())
                    .unwrap_or_default();
                return Err(CtlError::Failed(format!(
                    "the daemon refused the connection: HTTP {} {body} (ctl only talks to the daemon of its own OS user)",
                    resp.status()
                )));
            }
            Ok(Err(e)) => return Err(CtlError::Failed(format!("websocket handshake failed: {e}"))),
            Err(_) => {
                return Err(CtlError::NotRunning(format!(
                    "no websocket handshake within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        };
        let mut client = Client {
            ws,
            hello: Value::Null,
            next_id: 0,
            backlog: std::collections::VecDeque::new(),
        };
        let hello = timeout(CONNECT_TIMEOUT, client.next_message())
            .await
            .map_err(|_| CtlError::Failed("no hello from the daemon".into()))??;
        if hello["type"] != "hello" {
            return Err(CtlError::Failed(format!(
                "expected the daemon's hello, got {hello}"
            )));
        }
        client.hello = hello;
        Ok(client)
    }

    /// The next JSON message (events included), skipping control frames.
    async fn next_message(&mut self) -> Result<Value, CtlError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).map_err(|e| {
                        CtlError::Failed(format!("the daemon sent something that is not JSON: {e}"))
                    })
                }
                Some(Ok(Message::Close(frame))) => {
                    let why = frame
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(CtlError::NotRunning(format!(
                        "the daemon closed the connection {why}"
                    )));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(CtlError::NotRunning(format!("connection lost: {e}"))),
                None => return Err(CtlError::NotRunning("connection lost".into())),
            }
        }
    }

    /// Sends `action` with `fields` and waits for its reply; events that
    /// arrive meanwhile are kept for [`Client::next_event`]. A FAILURE is
    /// `CtlError::Refused` with the daemon's code and message.
    pub async fn request(&mut self, action: &str, fields: Value) -> Result<Value, CtlError> {
        self.next_id += 1;
        let id = format!("ctl-{}", self.next_id);
        let mut msg = match fields {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        msg.insert("action".into(), json!(action));
        msg.insert("requestId".into(), json!(id));
        self.ws
            .send(Message::Text(Value::Object(msg).to_string().into()))
            .await
            .map_err(|e| CtlError::NotRunning(format!("connection lost: {e}")))?;
        let wait = async {
            loop {
                let m = self.next_message().await?;
                if m["type"] == "reply" && m["requestId"] == id.as_str() {
                    return Ok(m);
                }
                if m["type"] == "event" {
                    self.backlog.push_back(m);
                }
            }
        };
        let reply = timeout(REQUEST_TIMEOUT, wait).await.map_err(|_| {
            CtlError::Failed(format!(
                "{action}: no reply within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })??;
        if reply["result"] == "SUCCESS" {
            Ok(reply)
        } else {
            Err(CtlError::Refused {
                action: action.to_string(),
                code: reply["errorCode"].as_str().unwrap_or("failure").to_string(),
                message: reply["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            })
        }
    }

    /// The next event (one kept from a request first).
    pub async fn next_event(&mut self) -> Result<Value, CtlError> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e);
        }
        loop {
            let m = self.next_message().await?;
            if m["type"] == "event" {
                return Ok(m);
            }
        }
    }

    /// Closes the websocket politely (errors do not matter any more).
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}
