//! The inspector: the toolbar catalogue (`cti`), the token file and session
//! cookie logic, the inspector's routes and socket against the real daemon
//! (403 without a session, one use per token, live client list, simulate
//! reaching a subscribed client, the trace), the guarantee that simulated or
//! replayed writes never cause desktop actions, and `wsconnector simulate`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsconnector::config::{Capabilities, Config, GenP2c, Program};
use wsconnector::cti::{self, CtiError, EventData};
use wsconnector::hub::{Hub, HubSettings};
use wsconnector::inspector::token::{self, Sessions, TokenError};
use wsconnector::platform::{Call, Recording};
use wsconnector::server::{self, ServerState, Shutdown};

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");

// ---------------------------------------------------------------- catalogue

#[test]
fn the_catalogue_holds_the_reference_events_and_requests() {
    for name in [
        "EvRinging",
        "EvEstablished",
        "EvReleased",
        "EvClosed",
        "EvReady",
        "EvNotReady",
        "EvACW",
        "EvDialing",
        "EvConsult",
        "EvHeld",
        "EvAllReady",
    ] {
        assert!(cti::event(name).is_some(), "{name}");
    }
    assert_eq!(cti::EVENTS.len(), 20);
    for name in [
        "RqReady",
        "RqNotReady",
        "RqDial",
        "RqCreateEmail",
        "RqAttachData",
    ] {
        assert!(cti::request(name).is_some(), "{name}");
    }
    assert_eq!(cti::request("RqDial").unwrap().fields, &["outbound_phone"]);
    let new: Vec<_> = cti::EVENTS
        .iter()
        .filter(|e| e.new_interaction)
        .map(|e| e.name)
        .collect();
    assert_eq!(new, ["EvDialing", "EvRinging", "EvConsult", "EvPreview"]);
}

#[test]
fn ringing_is_one_clearing_write_with_the_event_last() {
    let data = EventData {
        ani: Some("3225551234".into()),
        dnis: Some("8000".into()),
        interaction_id: Some("IX-1".into()),
        parties: None,
        user_data: vec![
            ("CustomerId".into(), "42".into()),
            ("Lang".into(), "nl".into()),
        ],
    };
    let w = cti::event_write("VOICE", "EvRinging", &data).unwrap();
    assert!(w.clear_data);
    let names: Vec<_> = w.data.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "InteractionId",
            "ANI",
            "DNIS",
            "CustomerId",
            "Lang",
            "GEN_T2P"
        ]
    );
    assert_eq!(
        w.to_request(json!(7)),
        json!({"action": "setContextJSON", "requestId": 7, "environment": "VOICE",
               "clearData": true, "data": [
                {"InteractionId": "IX-1"}, {"ANI": "3225551234"}, {"DNIS": "8000"},
                {"CustomerId": "42"}, {"Lang": "nl"}, {"GEN_T2P": "EvRinging"}]})
    );
    let est = cti::event_write("VOICE", "EvEstablished", &EventData::default()).unwrap();
    assert!(!est.clear_data);
    assert_eq!(est.data, vec![("GEN_T2P".into(), json!("EvEstablished"))]);
}

#[test]
fn requests_and_bad_input() {
    let w = cti::request_write(
        "VOICE",
        "RqDial",
        &[("outbound_phone".into(), "+3225551234".into())],
    )
    .unwrap();
    assert!(!w.clear_data);
    assert_eq!(
        w.data,
        vec![
            ("outbound_phone".into(), json!("+3225551234")),
            ("GEN_P2T".into(), json!("RqDial"))
        ]
    );
    assert!(matches!(
        cti::event_write("VOICE", "Ringing", &EventData::default()),
        Err(CtiError::UnknownName { .. })
    ));
    assert!(matches!(
        cti::event_write("VOICE", "EvBad name", &EventData::default()),
        Err(CtiError::UnknownName { .. })
    ));
    assert!(matches!(
        cti::request_write("VOICE", "EvRinging", &[]),
        Err(CtiError::UnknownName { .. })
    ));
    // Custom toolbar events are allowed and clear nothing.
    let custom = cti::event_write("VOICE", "EvCustom_1", &EventData::default()).unwrap();
    assert!(!custom.clear_data);
    let dup = EventData {
        ani: Some("1".into()),
        user_data: vec![("ANI".into(), "2".into())],
        ..Default::default()
    };
    assert_eq!(
        cti::event_write("VOICE", "EvRinging", &dup),
        Err(CtiError::Duplicate("ANI".into()))
    );
    let reserved = EventData {
        user_data: vec![("GEN_T2P".into(), "x".into())],
        ..Default::default()
    };
    assert_eq!(
        cti::event_write("VOICE", "EvRinging", &reserved),
        Err(CtiError::Reserved("GEN_T2P".into()))
    );
    assert_eq!(
        cti::event_write("", "EvRinging", &EventData::default()),
        Err(CtiError::Empty("the environment"))
    );
    assert_eq!(
        cti::parse_key_value("k=a=b").unwrap(),
        ("k".into(), "a=b".into())
    );
    assert!(cti::parse_key_value("novalue").is_err());
    assert!(cti::parse_key_value("=v").is_err());
}

// ---------------------------------------------------------------- tokens

#[test]
fn a_token_is_private_single_use_and_short_lived() {
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().join("rt");
    let t = token::issue(&rt, 4000).unwrap();
    assert_eq!(t.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&token::token_path(&rt, 4000)), 0o600);
        assert_eq!(mode(&rt), 0o700);
    }
    let now = SystemTime::now();
    // Another port's daemon finds nothing.
    assert!(matches!(
        token::redeem(&rt, 4001, &t, now),
        Err(TokenError::Missing)
    ));
    token::redeem(&rt, 4000, &t, now).unwrap();
    assert!(matches!(
        token::redeem(&rt, 4000, &t, now),
        Err(TokenError::Missing)
    ));
    // A wrong guess burns the token.
    let t = token::issue(&rt, 4000).unwrap();
    let mut wrong = t.clone().into_bytes();
    wrong[31] = if wrong[31] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        token::redeem(&rt, 4000, std::str::from_utf8(&wrong).unwrap(), now),
        Err(TokenError::Mismatch)
    ));
    assert!(matches!(
        token::redeem(&rt, 4000, &t, now),
        Err(TokenError::Missing)
    ));
    // Expired after TOKEN_TTL.
    let t = token::issue(&rt, 4000).unwrap();
    let later = SystemTime::now() + token::TOKEN_TTL + Duration::from_secs(1);
    assert!(matches!(
        token::redeem(&rt, 4000, &t, later),
        Err(TokenError::Expired)
    ));
    // A newer token replaces an unused older one.
    let old = token::issue(&rt, 4000).unwrap();
    let new = token::issue(&rt, 4000).unwrap();
    assert!(matches!(
        token::redeem(&rt, 4000, &old, now),
        Err(TokenError::Mismatch)
    ));
    assert!(token::redeem(&rt, 4000, &new, now).is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let t = token::issue(&rt, 4000).unwrap();
        let p = token::token_path(&rt, 4000);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            token::redeem(&rt, 4000, &t, now),
            Err(TokenError::NotPrivate(_))
        ));
    }
}

#[test]
fn constant_time_compare() {
    assert!(token::constant_time_eq(b"abc", b"abc"));
    assert!(!token::constant_time_eq(b"abc", b"abd"));
    assert!(!token::constant_time_eq(b"abc", b"abcd"));
    assert!(token::constant_time_eq(b"", b""));
}

fn cookie_headers(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::COOKIE, HeaderValue::from_str(v).unwrap());
    h
}

#[test]
fn sessions_follow_the_cookie_and_expire() {
    let s = Sessions::default();
    let now = Instant::now();
    let id = s.create(now).unwrap();
    assert!(s.valid(
        &cookie_headers(&format!("a=1; wsc_inspector={id}; b=2")),
        now
    ));
    assert!(!s.valid(&cookie_headers("wsc_inspector=0123"), now));
    assert!(!s.valid(&cookie_headers(&format!("other={id}")), now));
    assert!(!s.valid(&HeaderMap::new(), now));
    assert!(!s.valid(
        &cookie_headers(&format!("wsc_inspector={id}")),
        now + token::SESSION_TTL + Duration::from_secs(1)
    ));
    // The oldest session gives way beyond MAX_SESSIONS.
    let more: Vec<_> = (0..token::MAX_SESSIONS)
        .map(|_| s.create(now).unwrap())
        .collect();
    assert_eq!(s.len(), token::MAX_SESSIONS);
    assert!(!s.valid(&cookie_headers(&format!("wsc_inspector={id}")), now));
    assert!(s.valid(&cookie_headers(&format!("wsc_inspector={}", more[0])), now));
    let c = token::set_cookie("abc", false);
    for part in [
        "wsc_inspector=abc",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/inspector",
    ] {
        assert!(c.contains(part), "{c}");
    }
    assert!(!c.contains("Secure"));
    assert!(token::set_cookie("abc", true).ends_with("; Secure"));
}

// ---------------------------------------------------------------- daemon

/// The token directory every daemon of this test binary reads (set once,
/// before the first daemon starts, as `wsconnector inspect` would find it).
fn runtime_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap().keep();
        std::env::set_var(token::RUNTIME_DIR_ENV, &d);
        d
    })
}

async fn daemon() -> wsconnector::app::Daemon {
    runtime_dir();
    start(test_config()).await
}

fn get(port: u16, path: &str, extra: &[&str]) -> String {
    let mut h = format!("GET {path} HTTP/1.1\nHost: 127.0.0.1:{port}");
    for e in extra {
        h.push('\n');
        h.push_str(e);
    }
    h
}

/// Redeems a fresh token; returns the `name=value` of the session cookie.
async fn login(addr: SocketAddr, port: u16) -> String {
    let t = token::issue(runtime_dir(), port).unwrap();
    let r = raw_http(addr, &get(port, &format!("/inspector?token={t}"), &[])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/inspector"));
    let set = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn every_route_is_403_without_a_session_and_a_token_works_once() {
    let d = daemon().await;
    let (addr, port) = (v4(&d), d.port);
    for path in [
        "/inspector",
        "/inspector/inspector.js",
        "/inspector/inspector.css",
        "/inspector/ws",
        "/inspector/nothing",
        "/inspector?token=00000000000000000000000000000000",
    ] {
        let r = raw_http(addr, &get(port, path, &[])).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.body.contains("<html"), "{path}");
    }
    let upgrade = "GET /inspector/ws HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket\n\
         Sec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let r = raw_http(
        addr,
        &format!("{upgrade}\nHost: 127.0.0.1:{port}\nOrigin: http://127.0.0.1:{port}"),
    )
    .await;
    assert_eq!(r.status, 403);

    let t = token::issue(runtime_dir(), port).unwrap();
    let url = format!("/inspector?token={t}");
    let r = raw_http(addr, &get(port, &url, &[])).await;
    assert_eq!(r.status, 303);
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    let cookie = set.split(';').next().unwrap().to_string();
    // Used: the same URL is refused from now on.
    assert_eq!(raw_http(addr, &get(port, &url, &[])).await.status, 403);

    let with = format!("Cookie: {cookie}");
    let r = raw_http(addr, &get(port, "/inspector", &[&with])).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("/inspector/inspector.js"));
    let csp = r.header("content-security-policy").unwrap();
    for part in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    for (path, ty) in [
        ("/inspector/inspector.js", "text/javascript"),
        ("/inspector/inspector.css", "text/css"),
    ] {
        let r = raw_http(addr, &get(port, path, &[&with])).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with(ty));
    }
    // The cookie from another site's request, or with another origin: refused.
    for extra in [
        "Sec-Fetch-Site: cross-site",
        "Sec-Fetch-Site: same-site",
        "Origin: https://crm.example.com",
        "Origin: http://127.0.0.1:1",
    ] {
        let r = raw_http(addr, &get(port, "/inspector", &[&with, extra])).await;
        assert_eq!(r.status, 403, "{extra}");
    }
    // A typed URL and the page's own requests pass.
    for extra in ["Sec-Fetch-Site: none", "Sec-Fetch-Site: same-origin"] {
        let r = raw_http(addr, &get(port, "/inspector", &[&with, extra])).await;
        assert_eq!(r.status, 200, "{extra}");
    }
    // A forged cookie is nothing.
    let r = raw_http(
        addr,
        &get(
            port,
            "/inspector",
            &["Cookie: wsc_inspector=0123456789abcdef0123456789abcdef"],
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    d.shutdown();
    d.wait().await;
}

type Ws = WebSocketStream<tokio::net::TcpStream>;
use tokio_tungstenite::WebSocketStream;

async fn inspector_ws(addr: SocketAddr, port: u16, cookie: &str) -> Ws {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://127.0.0.1:{port}/inspector/ws")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("cookie", cookie.parse().unwrap());
    h.insert(
        "origin",
        format!("http://127.0.0.1:{port}").parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    ws
}

/// Reads until a message satisfies `pred`; returns it.
async fn until(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(tokio::time::Instant::now() < end, "waiting for {what}");
        let v = next_json(ws).await;
        if pred(&v) {
            return v;
        }
    }
}

async fn request(ws: &mut Ws, v: Value) -> Value {
    let id = v["requestId"].clone();
    send_json(ws, v).await;
    until(ws, "a reply", |m| {
        m["type"] == "reply" && m["requestId"] == id
    })
    .await
}

#[tokio::test]
async fn the_socket_lists_clients_simulates_ringing_and_traces() {
    let d = daemon().await;
    let (addr, port) = (v4(&d), d.port);
    let cookie = login(addr, port).await;
    let mut insp = inspector_ws(addr, port, &cookie).await;
    let hello = until(&mut insp, "hello", |m| m["type"] == "hello").await;
    assert_eq!(hello["catalogue"]["events"].as_array().unwrap().len(), 20);
    let simulator = hello["simulatorConn"].as_u64().unwrap();

    // A CRM page registers and subscribes to GEN_T2P with Values.
    let mut crm = ws_connect(
        addr,
        &format!("127.0.0.1:{port}"),
        Some("https://crm.example.com"),
    )
    .await;
    let _ = next_json(&mut crm).await; // hello
    let r = request(
        &mut crm,
        json!({"action": "createEnvironment", "requestId": 1, "environment": "VOICE", "clientName": "crm-tab"}),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS");
    let r = request(
        &mut crm,
        json!({"action": "setNotificationsOn", "requestId": 2, "environment": "VOICE", "name": "GEN_T2P", "values": true}),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS");

    let list = until(&mut insp, "the CRM client with its subscription", |m| {
        m["type"] == "clients"
            && m["clients"].as_array().unwrap().iter().any(|c| {
                c["origin"] == "https://crm.example.com"
                    && c["environments"][0]["clientName"] == "crm-tab"
                    && c["environments"][0]["subscriptions"][0]["name"] == "GEN_T2P"
            })
    })
    .await;
    let clients = list["clients"].as_array().unwrap();
    let crm_entry = clients
        .iter()
        .find(|c| c["origin"] == "https://crm.example.com")
        .unwrap();
    assert_eq!(crm_entry["native"], false);
    assert_eq!(crm_entry["messagesIn"], 2);
    assert!(crm_entry["messagesOut"].as_u64().unwrap() >= 3);
    assert_eq!(
        crm_entry["environments"][0]["subscriptions"][0]["values"],
        true
    );
    assert!(crm_entry["sinceMs"].as_u64().unwrap() > 0);
    let own = clients.iter().find(|c| c["id"] == simulator).unwrap();
    assert_eq!(own["inspector"], true);
    assert_eq!(own["capabilities"], json!(["data"]));

    // Simulate EvRinging with attached data.
    send_json(
        &mut insp,
        json!({"type": "simulate", "id": 9, "environment": "VOICE", "event": "EvRinging",
               "ani": "3225551234", "interactionId": "IX-9", "dnis": "",
               "data": {"CustomerId": "<b>42</b>"}}),
    )
    .await;
    let result = until(&mut insp, "the simulate result", |m| m["type"] == "result").await;
    assert_eq!(result["id"], 9);
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["write"]["clearData"], true);
    let seq = result["reply"]["seq"].as_u64().unwrap();

    // The subscribed page hears GEN_T2P with everything attached.
    let ev = loop {
        let m = next_json(&mut crm).await;
        if m["type"] == "event" && m["VarChanged"] == "GEN_T2P" {
            break m;
        }
    };
    assert_eq!(ev["ValueChanged"], "EvRinging");
    assert_eq!(ev["seq"].as_u64().unwrap(), seq);
    assert_eq!(
        ev["Values"],
        json!({"ANI": "3225551234", "CustomerId": "<b>42</b>", "GEN_T2P": "EvRinging", "InteractionId": "IX-9"})
    );

    // The environment view and the trace follow: the page's event out, and
    // the simulator's own write in.
    let crm_id = crm_entry["id"].as_u64().unwrap();
    let mut env_seen = false;
    let mut trace = Vec::new();
    let has = |trace: &[Value], conn: u64, dir: &str, text: &str| {
        trace.iter().any(|e| {
            e["conn"] == conn && e["dir"] == dir && e["text"].as_str().unwrap().contains(text)
        })
    };
    let end = tokio::time::Instant::now() + DEADLINE;
    while !(env_seen
        && has(&trace, crm_id, "out", "EvRinging")
        && has(&trace, simulator, "in", "setContextJSON"))
    {
        assert!(tokio::time::Instant::now() < end, "environment and trace");
        let m = next_json(&mut insp).await;
        if m["type"] == "trace" {
            trace.extend(m["entries"].as_array().unwrap().iter().cloned());
        }
        if m["type"] == "environments" {
            env_seen |= m["environments"].as_array().unwrap().iter().any(|e| {
                e["name"] == "VOICE"
                    && e["seq"].as_u64() == Some(seq)
                    && e["variables"]["GEN_T2P"] == "EvRinging"
            });
        }
    }

    // A request as a page sends it, and bad input answered without the hub.
    send_json(
        &mut insp,
        json!({"type": "request", "id": 10, "environment": "VOICE", "request": "RqDial",
               "fields": {"outbound_phone": "+3225550000"}}),
    )
    .await;
    let result = until(&mut insp, "the request result", |m| m["type"] == "result").await;
    assert_eq!(result["ok"], true, "{result}");
    send_json(
        &mut insp,
        json!({"type": "simulate", "id": 11, "environment": "VOICE", "event": "Nope"}),
    )
    .await;
    let result = until(&mut insp, "the refusal", |m| m["type"] == "result").await;
    assert_eq!(result["ok"], false);
    assert!(result["error"].as_str().unwrap().contains("unknown event"));
    send_json(
        &mut insp,
        json!({"type": "simulate", "id": 12, "environment": "bad name!", "event": "EvReady"}),
    )
    .await;
    let result = until(&mut insp, "the hub's refusal", |m| m["type"] == "result").await;
    assert_eq!(result["id"], 12);
    assert_eq!(result["ok"], false, "{result}");

    // The trace records only while an inspector is open.
    let tap = d.state.inspector.tap.clone();
    assert!(tap.active());
    drop(insp);
    eventually(|| !tap.active()).await;
    assert!(tap.is_empty());
    d.shutdown();
    d.wait().await;
}

/// A daemon whose desktop actions are recorded, with GEN_P2C on and the
/// inspector's own origin granted every capability: even so, the
/// simulator's writes cannot launch anything.
async fn recording_daemon() -> (Arc<ServerState>, Arc<Recording>, Shutdown) {
    runtime_dir();
    let listeners = server::bind(0).unwrap();
    let port = listeners.port();
    let mut config: Config = test_config();
    config.gen_p2c = GenP2c {
        enabled: true,
        toolbar_title: None,
    };
    config.programs = vec![Program {
        name: "notepad.exe".into(),
        path: PathBuf::from("/usr/bin/true"),
        args: vec![],
        parameter_rule: None,
        open_url: false,
    }];
    let mut own = origin_entry(&format!("http://127.0.0.1:{port}"));
    own.capabilities = Capabilities::ALL;
    config.origins.push(own);
    let rec = Arc::new(Recording::new());
    let mut settings: HubSettings = wsconnector::app::hub_settings(&config, "tester");
    settings.platform = rec.clone();
    let hub = Hub::new(settings);
    let state = ServerState::new(Arc::new(config), port, hub, system_peers(), None);
    let shutdown = Shutdown::new();
    tokio::spawn(server::run(listeners, state.clone(), shutdown.clone()));
    (state, rec, shutdown)
}

#[tokio::test]
async fn simulated_and_replayed_writes_never_trigger_desktop_actions() {
    let (state, rec, shutdown) = recording_daemon().await;
    let port = state.port;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let cookie = login(addr, port).await;
    let mut insp = inspector_ws(addr, port, &cookie).await;
    until(&mut insp, "hello", |m| m["type"] == "hello").await;
    let launch = json!({"GEN_P2C": "RqStartProcess", "process": "notepad.exe"});
    // A recorded sequence replayed twice: the page sends the same commands again.
    let steps = [
        json!({"type": "simulate", "environment": "Default", "event": "EvRinging", "data": launch}),
        json!({"type": "request", "environment": "Default", "request": "RqReady", "fields": launch}),
    ];
    let mut id = 0;
    for _ in 0..2 {
        for step in &steps {
            id += 1;
            let mut cmd = step.clone();
            cmd["id"] = json!(id);
            send_json(&mut insp, cmd).await;
            let result = until(&mut insp, "a result", |m| {
                m["type"] == "result" && m["id"] == id
            })
            .await;
            assert_eq!(result["ok"], false, "{result}");
            assert_eq!(result["reply"]["errorCode"], "forbidden", "{result}");
        }
    }
    assert_eq!(rec.calls(), Vec::<Call>::new());

    // Control: the same write from a page of that origin does launch, so
    // the assertion above can fail.
    let mut page = ws_connect(
        addr,
        &format!("127.0.0.1:{port}"),
        Some(&format!("http://127.0.0.1:{port}")),
    )
    .await;
    let _ = next_json(&mut page).await;
    request(
        &mut page,
        json!({"action": "createEnvironment", "requestId": 1, "environment": "Default", "clientName": "p"}),
    )
    .await;
    let r = request(
        &mut page,
        json!({"action": "setContextJSON", "requestId": 2, "environment": "Default",
               "data": [{"GEN_P2C": "RqStartProcess"}, {"process": "notepad.exe"}]}),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    eventually(|| rec.calls().iter().any(|c| matches!(c, Call::Launch(_)))).await;
    shutdown.cancel();
}

// ---------------------------------------------------------------- simulate

#[tokio::test]
async fn simulate_writes_like_a_toolbar_into_a_real_daemon() {
    let d = daemon().await;
    let (addr, port) = (v4(&d), d.port);
    let mut page = ws_connect(addr, &format!("127.0.0.1:{port}"), None).await;
    let _ = next_json(&mut page).await;
    request(
        &mut page,
        json!({"action": "createEnvironment", "requestId": 1, "environment": "VOICE", "clientName": "crm"}),
    )
    .await;
    request(
        &mut page,
        json!({"action": "setContextVariable", "requestId": 2, "environment": "VOICE", "name": "old", "value": 1}),
    )
    .await;
    request(
        &mut page,
        json!({"action": "setNotificationsOn", "requestId": 3, "environment": "VOICE", "name": "*"}),
    )
    .await;

    let args = ctl_args(&[
        "VOICE",
        "EvRinging",
        "--ani",
        "3225551234",
        "--interaction-id",
        "IX-2",
        "--data",
        "Lang=nl",
    ]);
    let write = wsconnector::ctl_simulate::write_for(&args).unwrap();
    let target = wsconnector::ctl::client::Target { port, pinned: None };
    let reply = wsconnector::ctl_simulate::perform(&target, &write)
        .await
        .unwrap();
    assert_eq!(reply["result"], "SUCCESS");

    // One clean, then the variables in order, GEN_T2P last, all after the write.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("GEN_T2P=EvRinging") {
        let m = next_json(&mut page).await;
        if m["type"] != "event" {
            continue;
        }
        seen.push(match m["event"].as_str().unwrap() {
            "EnvironmentCleaned" => "cleaned".to_string(),
            _ => format!(
                "{}={}",
                m["VarChanged"].as_str().unwrap(),
                m["ValueChanged"].as_str().unwrap()
            ),
        });
    }
    assert_eq!(
        seen,
        [
            "cleaned",
            "InteractionId=IX-2",
            "ANI=3225551234",
            "Lang=nl",
            "GEN_T2P=EvRinging"
        ]
    );
    let r = request(
        &mut page,
        json!({"action": "getEnvironment", "requestId": 4, "environment": "VOICE"}),
    )
    .await;
    assert_eq!(
        r["data"],
        json!({"ANI": "3225551234", "GEN_T2P": "EvRinging", "InteractionId": "IX-2", "Lang": "nl"})
    );
    assert_eq!(r["seq"], reply["seq"]);
    d.shutdown();
    d.wait().await;
}

fn ctl_args(args: &[&str]) -> wsconnector::ctl_simulate::SimulateArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        a: wsconnector::ctl_simulate::SimulateArgs,
    }
    let mut all = vec!["simulate"];
    all.extend_from_slice(args);
    P::parse_from(all).a
}

/// The binary: exit codes and messages fit scripts.
#[tokio::test]
async fn the_simulate_and_inspect_commands_exit_as_documented() {
    let d = daemon().await;
    let port = d.port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.xml");
    std::fs::write(
        &config,
        "<configuration><Socket-port>0</Socket-port></configuration>",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config").arg(&config).args(args);
        cmd.env(token::RUNTIME_DIR_ENV, runtime_dir());
        cmd
    };
    let out = tokio::task::spawn_blocking({
        let mut c = run(&[
            "simulate",
            "--port",
            &port,
            "VOICE",
            "EvEstablished",
            "--interaction-id",
            "IX-3",
        ]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("EvEstablished written to VOICE.GEN_T2P (epoch "),
        "{stdout}"
    );

    let out = run(&["simulate", "--port", &port, "VOICE", "Established"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown event"));

    let out = tokio::task::spawn_blocking({
        let mut c = run(&["simulate", "--port", &port, "--json", "bad env!", "EvReady"]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["errorCode"], "invalid_name");

    // Nothing listens on a port we just released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["simulate", "--port", &free.to_string(), "VOICE", "EvReady"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = run(&["inspect", "--print-url", "--port", &free.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));

    // inspect --print-url: a URL whose token works once.
    let out = tokio::task::spawn_blocking({
        let mut c = run(&["inspect", "--print-url", "--port", &port]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let prefix = format!("http://127.0.0.1:{port}/inspector?token=");
    assert!(url.starts_with(&prefix), "{url}");
    let path = &url["http://127.0.0.1:".len() + port.len()..];
    let r = raw_http(v4(&d), &get(d.port, path, &[])).await;
    assert_eq!(r.status, 303);
    let r = raw_http(v4(&d), &get(d.port, path, &[])).await;
    assert_eq!(r.status, 403);
    d.shutdown();
    d.wait().await;
}
