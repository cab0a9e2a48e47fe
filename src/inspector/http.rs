//! The inspector's HTTP routes, behind the daemon's guard (Host, Origin,
//! peer OS user) and then its own: the request must come from the page
//! itself or a typed/opened URL (Fetch Metadata, Origin), and carry a
//! session cookie — or, once, the token `wsconnector inspect` wrote.
//!
//! | route | answer |
//! |---|---|
//! | `GET /inspector?token=T` | a valid token: 303 to `/inspector` with the session cookie; else 403 |
//! | `GET /inspector` | the page |
//! | `GET /inspector/inspector.js`, `/inspector/inspector.css` | its script and style |
//! | `GET /inspector/ws` (upgrade) | the inspector socket (`ws`) |
//!
//! Without a valid cookie every route answers 403, the socket included.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, ORIGIN,
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, SET_COOKIE, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use crate::config::SocketType;
use crate::server::accept::TcpContext;
use crate::server::http::{text, valid_key, wants_websocket, ws_config, HttpResponse};
use crate::server::{assets, ServerState};

/// The inspector's policy: the shared one of the daemon's pages, narrowed
/// to its own origin for sockets, and Trusted Types required so that no
/// script can assign markup to the DOM (`innerHTML` and friends throw).
pub const INSPECTOR_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// The page, its script and its style, embedded at build time.
const PAGE: &str = include_str!("../../web/inspector.html");
const SCRIPT: &str = include_str!("../../web/inspector.js");
const STYLE: &str = include_str!("../../web/inspector.css");

/// What a refused inspector request reads.
const REFUSED: &str = "inspector: not authorised. Open it with `wsconnector inspect` \
     (or the tray menu) as the user running the daemon";

/// True for the paths the inspector owns.
pub fn is_route(path: &str) -> bool {
    path == "/inspector" || path.starts_with("/inspector/")
}

/// The origins the inspector page itself runs at.
fn own_origin(origin: &str, state: &ServerState) -> bool {
    let scheme = match state.config().socket_type {
        SocketType::Ws => "http",
        SocketType::Wss => "https",
    };
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| origin == format!("{scheme}://{h}:{}", state.port))
}

/// Requests another site caused are refused before anything else: an
/// `Origin` must be the inspector's own, and a browser's Fetch Metadata
/// must say the request is the page's own or a user-typed/opened URL.
/// (The SameSite=Strict cookie already stays home; this also keeps a page
/// at another port of 127.0.0.1, which is the same *site*, out.)
fn foreign(headers: &HeaderMap, state: &ServerState) -> Option<&'static str> {
    let mut origins = headers.get_all(ORIGIN).iter();
    if let Some(o) = origins.next() {
        if origins.next().is_some() || !o.to_str().is_ok_and(|o| own_origin(o, state)) {
            return Some("Origin is not the inspector's own");
        }
    }
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        None | Some(b"same-origin" | b"none") => {}
        Some(_) => return Some("request from another site (Sec-Fetch-Site)"),
    }
    None
}

/// The `token` query parameter, if any.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

fn forbidden(why: &str, req_path: &str) -> HttpResponse {
    tracing::warn!(path = req_path, reason = why, "inspector request refused");
    text(StatusCode::FORBIDDEN, REFUSED)
}

/// One embedded file of the inspector, never cached (it sits behind a
/// session), with the inspector's policy.
fn file(body: &'static str, content_type: &'static str, head: bool) -> HttpResponse {
    let bytes = if head {
        Bytes::new()
    } else {
        Bytes::from_static(body.as_bytes())
    };
    let mut r = Response::new(Full::new(bytes));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(h);
    r
}

/// The daemon's security headers, with the inspector's stricter policy.
fn secure(h: &mut HeaderMap) {
    assets::security_headers(h);
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(INSPECTOR_CSP),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Every request for an inspector path (the guard has admitted it).
pub fn route(req: Request<Incoming>, cx: Arc<TcpContext>) -> HttpResponse {
    let state = cx.state.clone();
    let inspector = state.inspector.clone();
    let path = req.uri().path().to_string();
    if let Some(why) = foreign(req.headers(), &state) {
        return forbidden(why, &path);
    }
    let head = req.method() == Method::HEAD;
    let peer = cx.owner.as_ref().ok();
    if path == "/inspector" && req.method() == Method::GET {
        if let Some(presented) = query_token(req.uri().query()) {
            return exchange(&state, presented, peer);
        }
    }
    // Service mode: a session serves only the user whose token opened it.
    let viewer = peer
        .filter(|_| inspector.is_per_user())
        .map(|p| p.id.as_str());
    if !inspector
        .sessions
        .valid_for(req.headers(), Instant::now(), viewer)
    {
        return forbidden("no valid inspector session cookie", &path);
    }
    if req.method() != Method::GET && !head {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match path.as_str() {
        "/inspector" => file(PAGE, "text/html; charset=utf-8", head),
        "/inspector/inspector.js" => file(SCRIPT, "text/javascript; charset=utf-8", head),
        "/inspector/inspector.css" => file(STYLE, "text/css; charset=utf-8", head),
        "/inspector/ws" if wants_websocket(req.headers()) && !head => upgrade(req, cx),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /inspector?token=T`: a good token becomes a session cookie and a
/// redirect to the bare URL, so the token leaves the address bar at once.
fn exchange(
    state: &ServerState,
    presented: &str,
    peer: Option<&crate::peer::OsUser>,
) -> HttpResponse {
    let user = match state.inspector.redeem_for(state.port, presented, peer) {
        Ok(user) => user,
        Err(e) => return forbidden(&e.to_string(), "/inspector"),
    };
    let session = match state.inspector.sessions.create_for(Instant::now(), user) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "inspector session not created");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "inspector: no session");
        }
    };
    tracing::info!("inspector session opened");
    let mut r = text(StatusCode::SEE_OTHER, "inspector: session opened");
    let h = r.headers_mut();
    h.insert(LOCATION, HeaderValue::from_static("/inspector"));
    let cookie = super::token::set_cookie(&session, state.tls.is_some());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(SET_COOKIE, v);
    }
    secure(h);
    r
}

/// The inspector socket's handshake; the socket itself is `super::ws`.
fn upgrade(req: Request<Incoming>, cx: Arc<TcpContext>) -> HttpResponse {
    let headers = req.headers();
    let version_ok = headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = match headers.get(SEC_WEBSOCKET_KEY) {
        Some(k) if version_ok && valid_key(k.as_bytes()) => k.clone(),
        _ => return text(StatusCode::BAD_REQUEST, "bad websocket handshake"),
    };
    let state = cx.state.clone();
    let Some(slot) = state.inspector.reserve_socket() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "inspector: too many inspector windows open; close one",
        );
    };
    let origin = headers
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let config = ws_config(&state);
    // Whose context the inspector shows: the daemon user's, or in service
    // mode the store of the user whose browser opened it.
    let user = state.owner_for(cx.owner.as_ref().ok()).clone();
    let span = tracing::info_span!("inspector", peer = %cx.peer);
    cx.tracker.spawn(
        async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    super::ws::run(ws, state, origin, slot, user).await;
                }
                Err(e) => tracing::info!(error = %e, "inspector upgrade did not complete"),
            }
        }
        .instrument(span),
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_query_tokens() {
        assert!(is_route("/inspector"));
        assert!(is_route("/inspector/ws"));
        assert!(!is_route("/inspectorx"));
        assert!(!is_route("/"));
        assert_eq!(query_token(Some("token=abc")), Some("abc"));
        assert_eq!(query_token(Some("x=1&token=abc")), Some("abc"));
        assert_eq!(query_token(Some("xtoken=abc")), None);
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn the_page_has_no_inline_script_style_or_markup_sinks() {
        assert!(PAGE.contains("<script src=\"/inspector/inspector.js\" defer></script>"));
        assert!(!PAGE.contains("<script>"));
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains("style="));
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(sink), "inspector.js uses {sink}");
        }
    }
}
