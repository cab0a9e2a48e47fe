//! The HTTP routes of the one port: the guard on every request, `GET /health`
//! with CORS for allowed origins, the websocket upgrade at `/`, the embedded
//! files of `server::assets` (the demo page at a plain `GET /`, the connector
//! library at `/connector.js` and `/connector.mjs`), 404 elsewhere. On a WSS
//! port a client that spoke plain HTTP (see `server::accept`) gets `/health`
//! only, so a page can tell "certificate not trusted" from "not running".

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::accept::TcpContext;
use super::assets;
use super::guard::{self, Admitted, GuardContext};
use super::wire::{Wire, WireIo};
use super::{connection, ServerState, PRODUCT, PROTOCOL_VERSION};

/// Response type of every route.
pub type HttpResponse = Response<Full<Bytes>>;

/// How long browsers may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// A plain-text answer with the daemon's security headers.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.into() + "\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    assets::security_headers(h);
    r
}

/// What a plain-HTTP client on a WSS port gets for anything but `/health`.
const PLAIN_ON_TLS: &str = "wsconnector: this port speaks TLS: use https:// or wss:// \
     (over plain HTTP only GET /health is answered, to tell a daemon whose certificate \
     the browser does not trust from one that is not running)";

/// Every HTTP request of a connection comes here.
pub async fn handle(
    req: Request<Incoming>,
    cx: Arc<TcpContext>,
) -> Result<HttpResponse, Infallible> {
    cx.touch();
    let state = &cx.state;
    let config = state.config();
    let gcx = GuardContext {
        config: &config,
        port: state.port,
        me: state.owner_for(cx.owner.as_ref().ok()),
        peer: &cx.owner,
    };
    let admitted = match guard::check(req.headers(), &gcx) {
        Ok(a) => a,
        Err(refusal) => {
            tracing::warn!(
                method = %req.method(),
                path = req.uri().path(),
                origin = ?req.headers().get(http::header::ORIGIN),
                host = ?req.headers().get(http::header::HOST),
                reason = %refusal,
                status = refusal.status().as_u16(),
                "request refused"
            );
            return Ok(text(refusal.status(), format!("refused: {refusal}")));
        }
    };
    let path = req.uri().path();
    let asset = assets::find(path);
    let response = match (path, req.method(), asset) {
        ("/health", &Method::GET, _) => health(&admitted, state),
        ("/health", &Method::OPTIONS, _) => preflight(req.headers(), &admitted),
        _ if cx.plain_on_tls => text(StatusCode::BAD_REQUEST, PLAIN_ON_TLS),
        (p, _, _) if crate::inspector::http::is_route(p) => {
            crate::inspector::http::route(req, cx.clone())
        }
        ("/", &Method::GET, _) if wants_websocket(req.headers()) => {
            upgrade(req, admitted, cx.clone())
        }
        (_, &Method::GET, Some(a)) => file(a, req.headers(), false, &admitted),
        (_, &Method::HEAD, Some(a)) => file(a, req.headers(), true, &admitted),
        ("/health", _, _) | (_, _, Some(_)) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

/// An embedded file. The connector library is fetched cross-origin by CRM
/// pages: a classic `<script src>` needs no CORS, but a module script (and
/// `fetch`) is a CORS request, so the admitted origin is echoed.
fn file(
    asset: &assets::Asset,
    headers: &HeaderMap,
    head: bool,
    admitted: &Admitted,
) -> HttpResponse {
    let mut r = asset.respond(headers, head);
    if asset.cross_origin {
        cors(&mut r, admitted);
    }
    r
}

fn cors(r: &mut HttpResponse, admitted: &Admitted) {
    r.headers_mut()
        .insert(VARY, HeaderValue::from_static("Origin"));
    // The guard already refused unknown origins, so echoing is exact.
    if let Some(o) = admitted
        .origin
        .as_deref()
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        r.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
}

fn health(admitted: &Admitted, state: &ServerState) -> HttpResponse {
    let mut body = serde_json::json!({
        "status": "ok",
        "product": PRODUCT,
        "version": crate::VERSION,
        "protocol": PROTOCOL_VERSION,
    });
    // WSS only: {notAfter, daysLeft, warning} so monitoring sees a renewal coming.
    if let Some(cert) = state.certificate_status() {
        body["certificate"] = serde_json::to_value(cert).unwrap_or_default();
    }
    let mut r = text(StatusCode::OK, body.to_string());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    cors(&mut r, admitted);
    r
}

fn preflight(headers: &HeaderMap, admitted: &Admitted) -> HttpResponse {
    let mut r = text(StatusCode::NO_CONTENT, "");
    *r.body_mut() = Full::new(Bytes::new());
    cors(&mut r, admitted);
    if admitted.origin.is_some() {
        let h = r.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        h.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        // Chrome's Private/Local Network Access preflight asks for this.
        h.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
        if let Some(requested) = headers.get("access-control-request-headers") {
            // /health needs no custom header; allow only the CORS-safelisted one.
            if requested.as_bytes().eq_ignore_ascii_case(b"content-type") {
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("content-type"),
                );
            }
        }
    }
    r
}

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// A websocket key is the base64 of 16 bytes: 24 characters ending in `==`.
pub(crate) fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Websocket settings from the configured limits; no compression is offered
/// (tungstenite has none, and we never answer permessage-deflate).
pub fn ws_config(state: &ServerState) -> WebSocketConfig {
    let config = state.config();
    let l = &config.limits;
    WebSocketConfig::default()
        .read_buffer_size(l.read_buffer_bytes)
        .write_buffer_size(l.write_buffer_bytes)
        .max_write_buffer_size(
            l.write_buffer_bytes
                .saturating_mul(4)
                .max(l.max_message_bytes * 2),
        )
        .max_message_size(Some(l.max_message_bytes))
        .max_frame_size(Some(l.max_frame_bytes))
        .accept_unmasked_frames(false)
}

/// A websocket handshake (`Connection: Upgrade`, `Upgrade: websocket`), as
/// opposed to a browser loading the demo page.
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    header_has_token(headers, CONNECTION, "upgrade")
        && header_has_token(headers, UPGRADE, "websocket")
}

fn upgrade(req: Request<Incoming>, admitted: Admitted, cx: Arc<TcpContext>) -> HttpResponse {
    // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 (or later) GET.
    if req.version() < Version::HTTP_11 {
        tracing::warn!(version = ?req.version(), "refused: websocket handshake over HTTP/1.0");
        return text(
            StatusCode::BAD_REQUEST,
            "a websocket handshake needs HTTP/1.1",
        );
    }
    let headers = req.headers();
    let versions: Vec<_> = headers.get_all(SEC_WEBSOCKET_VERSION).iter().collect();
    if versions.len() != 1 || versions[0] != "13" {
        tracing::warn!(versions = ?versions, "refused: unsupported websocket version");
        let mut r = text(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported websocket version: use 13",
        );
        r.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return r;
    }
    let keys: Vec<_> = headers.get_all(SEC_WEBSOCKET_KEY).iter().collect();
    if keys.len() != 1 || !valid_key(keys[0].as_bytes()) {
        tracing::warn!("refused: missing, duplicate or malformed Sec-WebSocket-Key");
        return text(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key",
        );
    }
    let accept = derive_accept_key(keys[0].as_bytes());
    let state = cx.state.clone();
    let slot = match Slot::reserve(&state, &admitted.user.id) {
        Ok(slot) => slot,
        Err(why) => {
            tracing::warn!(reason = why, user = %admitted.user.name, "refused: connection cap reached");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("refused: {why}; close other connections and retry"),
            );
        }
    };
    let config = ws_config(&state);
    let span = tracing::info_span!(
        "ws",
        peer = %cx.peer,
        user = %admitted.user.name,
        origin = admitted.origin.as_deref().unwrap_or("native"),
    );
    cx.tracker.spawn(
        async move {
            match hyper::upgrade::on(req).await {
                // A plain connection shares its socket with the hub (the
                // direct-write fan-out, server::wire); TLS keeps hyper's stream.
                Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                    Ok(parts) => {
                        let tap = state.inspector.tap.clone();
                        let wire = Arc::new(Wire::new(parts.io.into_inner(), tap));
                        let io = WireIo::new(wire.clone(), parts.read_buf);
                        let ws =
                            WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                        connection::run(ws, Some(wire), admitted, state, slot).await;
                    }
                    Err(upgraded) => {
                        let ws = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            Some(config),
                        )
                        .await;
                        connection::run(ws, None, admitted, state, slot).await;
                    }
                },
                Err(e) => tracing::info!(error = %e, "websocket upgrade did not complete"),
            }
        }
        .instrument(span),
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// A reserved place under the connection caps, released on drop.
pub struct Slot {
    state: Arc<ServerState>,
    user: String,
}

impl Slot {
    fn reserve(state: &Arc<ServerState>, user: &str) -> Result<Slot, &'static str> {
        let config = state.config();
        let limits = &config.limits;
        let mut per_user = state
            .sockets_per_user
            .lock()
            .map_err(|_| "internal error")?;
        let total: usize = per_user.values().sum();
        if total >= limits.max_connections {
            return Err("too many connections in total (Limits/MaxConnections)");
        }
        let mine = per_user.entry(user.to_string()).or_insert(0);
        if *mine >= limits.max_connections_per_user {
            return Err("too many connections for this OS user (Limits/MaxConnectionsPerUser)");
        }
        *mine += 1;
        Ok(Slot {
            state: state.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut per_user) = self.state.sockets_per_user.lock() {
            if let Some(n) = per_user.get_mut(&self.user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_user.remove(&self.user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_keys() {
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25j!Q=="));
        assert!(!valid_key(b""));
    }
}
