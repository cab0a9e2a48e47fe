//! The adversarial suite (issue 6, "Prove"): in-process attacks on the
//! handshake, the websocket framing and the JSON protocol, each asserting the
//! exact HTTP status, close code or FAILURE code, and each followed by a
//! `Witness` check: a well-behaved pair of clients that stored values and
//! subscribed before the attack still reads exactly those values, still gets
//! a fresh event, and is still connected.
//!
//! The second OS user (created with useradd, run with setpriv; a loud SKIP
//! when not root) tries every route and every action: the websocket client
//! is this test binary re-executed as that user (`second_user_client`).
//! Process-level attacks (1 GiB frame header with RSS, connection floods,
//! never-reading subscribers, kill -9) live elsewhere.

mod common;
#[path = "support/second_user.rs"]
mod second_user;
#[path = "support/skip.rs"]
mod skip;

use std::net::SocketAddr;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wsconnector::app::Daemon;
use wsconnector::config::Capabilities;

// ---------------------------------------------------------------------------
// The witness
// ---------------------------------------------------------------------------

/// Two well-behaved clients that hold data and a subscription before an
/// attack: `sub` (a browser origin, over [::1]) is registered in `WITNESS`
/// and subscribed to every variable; `publisher` (a native client, over
/// 127.0.0.1) wrote the values.
struct Witness {
    sub: Client,
    publisher: Client,
    /// What `getData` must answer (the whole store, as the witness sees it).
    expected: Value,
    /// Counts checks, so every check publishes a new value.
    round: u64,
    next_id: u64,
}

const WITNESS_ENV: &str = "WITNESS";

impl Witness {
    async fn new(d: &Daemon) -> Witness {
        let mut sub = ws_connect(
            v6(d),
            &format!("[::1]:{}", d.port),
            Some("https://crm.example.com"),
        )
        .await;
        let mut publisher = ws_connect(v4(d), &host(d), None).await;
        assert_eq!(next_json(&mut sub).await["type"], "hello");
        assert_eq!(next_json(&mut publisher).await["type"], "hello");
        let mut w = Witness {
            sub,
            publisher,
            expected: Value::Null,
            round: 0,
            next_id: 0,
        };
        for who in [Who::Sub, Who::Publisher] {
            let r = w
                .ask(
                    who,
                    json!({"action": "createEnvironment", "environment": WITNESS_ENV, "clientName": "witness"}),
                )
                .await;
            assert_eq!(r["result"], "SUCCESS", "{r}");
        }
        let r = w
            .ask(
                Who::Publisher,
                json!({"action": "setContextJSON", "environment": WITNESS_ENV,
                       "data": [{"ANI": "3225551234"}, {"Count": 7}, {"Flag": true}, {"Empty": null}]}),
            )
            .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        let r = w
            .ask(
                Who::Sub,
                json!({"action": "setNotificationsOn", "environment": WITNESS_ENV, "name": "*"}),
            )
            .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        let r = w.ask(Who::Sub, json!({"action": "getData"})).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        w.expected = r["data"].clone();
        assert_eq!(
            w.expected[WITNESS_ENV],
            json!({"ANI": "3225551234", "Count": 7, "Empty": null, "Flag": true})
        );
        w
    }

    fn client(&mut self, who: Who) -> &mut Client {
        match who {
            Who::Sub => &mut self.sub,
            Who::Publisher => &mut self.publisher,
        }
    }

    /// Sends `req` with a fresh requestId and returns its reply; an event
    /// before the reply is a failure (nobody else writes to the witness).
    async fn ask(&mut self, who: Who, mut req: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        req["requestId"] = json!(id);
        let ws = self.client(who);
        send_json(ws, req).await;
        let r = next_json(ws).await;
        assert_eq!(r["type"], "reply", "witness got {r} before its reply");
        assert_eq!(r["requestId"], id, "{r}");
        r
    }

    /// After an attack: the stored data is exactly as before, a fresh write
    /// reaches the subscriber as an event, both connections answer.
    async fn check(&mut self, after: &str) {
        let r = self.ask(Who::Sub, json!({"action": "getData"})).await;
        assert_eq!(r["result"], "SUCCESS", "after {after}: {r}");
        assert_eq!(
            r["data"], self.expected,
            "after {after}: stored data changed"
        );
        self.round += 1;
        let round = self.round;
        let r = self
            .ask(
                Who::Publisher,
                json!({"action": "setContextVariable", "environment": WITNESS_ENV, "name": "Round", "value": round}),
            )
            .await;
        assert_eq!(r["result"], "SUCCESS", "after {after}: {r}");
        let ev = next_json(&mut self.sub).await;
        assert_eq!(ev["type"], "event", "after {after}: {ev}");
        assert_eq!(ev["event"], "ContextChanged", "after {after}: {ev}");
        assert_eq!(ev["EnvironmentName"], WITNESS_ENV);
        assert_eq!(ev["VarChanged"], "Round");
        assert_eq!(ev["ValueChanged"], round, "after {after}: {ev}");
        self.expected[WITNESS_ENV]["Round"] = json!(round);
    }
}

#[derive(Clone, Copy)]
enum Who {
    Sub,
    Publisher,
}

/// The test daemon with a desktop-capable origin (so desktop actions reach
/// their argument checks) and the usual data origin.
async fn daemon() -> Daemon {
    start_with(|c| {
        let mut desk = origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities::ALL;
        c.origins.push(desk);
    })
    .await
}

// ---------------------------------------------------------------------------
// Raw HTTP helpers
// ---------------------------------------------------------------------------

/// Sends raw bytes and reads the response head (and Content-Length body);
/// `None` when the server closed without answering.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<RawResponse> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it read everything we send.
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(end + 4);
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let head_len = timeout(DEADLINE, read).await.expect("an answer in time")?;
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&buf[head_len..]).into_owned(),
    })
}

/// A request head with CRLF line ends and the closing blank line.
fn crlf(head: &str) -> Vec<u8> {
    format!("{}\r\n\r\n", head.trim_end().replace('\n', "\r\n")).into_bytes()
}

// ---------------------------------------------------------------------------
// Origins and look-alikes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn lookalike_origins_are_refused_on_every_route_and_family() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let port = d.port;
    // (origin, expected status): 403 for every look-alike; 400 for a value
    // that is not visible ASCII (the guard cannot read it).
    let table: &[(&str, u16)] = &[
        // case
        ("https://CRM.example.com", 403),
        ("HTTPS://crm.example.com", 403),
        ("https://crm.EXAMPLE.com", 403),
        // port
        ("https://crm.example.com:443", 403),
        ("https://crm.example.com:8443", 403),
        ("https://crm.example.com:0", 403),
        ("https://crm.example.com:", 403),
        // suffix and prefix
        ("https://crm.example.com.evil.net", 403),
        ("https://crm.example.comevil.net", 403),
        ("https://crm.example.co", 403),
        ("https://evilcrm.example.com", 403),
        ("https://x.crm.example.com", 403),
        ("https://crm.example.com.", 403),
        // trailing slash and paths
        ("https://crm.example.com/", 403),
        ("https://crm.example.com/x", 403),
        ("https://crm.example.com?x", 403),
        ("https://crm.example.com#x", 403),
        // scheme
        ("http://crm.example.com", 403),
        ("wss://crm.example.com", 403),
        ("ws://crm.example.com", 403),
        ("ftp://crm.example.com", 403),
        ("file://crm.example.com", 403),
        ("crm.example.com", 403),
        ("//crm.example.com", 403),
        ("https:crm.example.com", 403),
        ("https:/crm.example.com", 403),
        // null, in every spelling
        ("null", 403),
        ("NULL", 403),
        ("Null", 403),
        // userinfo
        ("https://user@crm.example.com", 403),
        ("https://user:pw@crm.example.com", 403),
        ("https://crm.example.com@evil.net", 403),
        ("https://evil.net#@crm.example.com", 403),
        // IDN: punycode of a look-alike, raw Unicode (not visible ASCII)
        ("https://xn--crm-8cd.example.com", 403),
        ("https://xn--rm-mlc.example.com", 403),
        ("https://crм.example.com", 400),
        // whitespace and lists inside the value
        ("https://crm.example.com https://evil.net", 403),
        ("https://crm.example.com,https://evil.net", 403),
        ("https://evil.net https://crm.example.com", 403),
        ("https:// crm.example.com", 403),
        ("https://crm.example.com\t/", 403),
        // the daemon's own page origin with the wrong scheme or port
        ("https://localhost:PORT", 403),
        ("http://localhost:OTHER", 403),
        ("http://127.0.0.2:PORT", 403),
        ("http://[::2]:PORT", 403),
    ];
    let other = port.wrapping_add(1).to_string();
    for (origin, status) in table {
        let origin = origin
            .replace("PORT", &port.to_string())
            .replace("OTHER", &other);
        for (addr, h) in [
            (v4(&d), format!("127.0.0.1:{port}")),
            (v6(&d), format!("[::1]:{port}")),
        ] {
            for head in [
                upgrade_head(&h, &[&format!("Origin: {origin}")]),
                format!("GET /health HTTP/1.1\nHost: {h}\nOrigin: {origin}"),
                format!("OPTIONS /health HTTP/1.1\nHost: {h}\nOrigin: {origin}\nAccess-Control-Request-Method: GET"),
                format!("GET / HTTP/1.1\nHost: {h}\nOrigin: {origin}"),
                format!("GET /connector.mjs HTTP/1.1\nHost: {h}\nOrigin: {origin}"),
            ] {
                let r = raw_exchange(addr, &crlf(&head))
                    .await
                    .unwrap_or_else(|| panic!("no answer to {head:?}"));
                assert_eq!(r.status, *status, "{origin:?} {addr}: {head:?} -> {r:?}");
                assert_eq!(r.header("access-control-allow-origin"), None, "{origin:?}");
                assert!(r.body.contains("refused"), "{origin:?}: {}", r.body);
            }
        }
    }
    // Optional whitespace around a header value is not part of it
    // (RFC 9110 §5.5): the exact origin with OWS is the exact origin.
    let r = raw_exchange(
        v4(&d),
        &crlf(&upgrade_head(
            &host(&d),
            &["Origin:   https://crm.example.com  "],
        )),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 101, "{r:?}");
    w.check("look-alike origins").await;
}

// ---------------------------------------------------------------------------
// Missing, malformed, oversized headers; versions; HTTP/1.0
// ---------------------------------------------------------------------------

/// (what, request head, expected status, a header the answer must carry).
type HeaderCase = (
    &'static str,
    String,
    u16,
    Option<(&'static str, &'static str)>,
);

#[tokio::test]
async fn missing_and_malformed_handshake_headers() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let h = host(&d);
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    // (what, request head, expected status, header that must be in the answer)
    let cases: Vec<HeaderCase> = vec![
        (
            "no Host",
            format!("GET / HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\n{key}"),
            400,
            None,
        ),
        (
            "empty Host",
            upgrade_head("", &[]),
            403,
            None,
        ),
        (
            "no Sec-WebSocket-Key",
            format!("GET / HTTP/1.1\nHost: {h}\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13"),
            400,
            None,
        ),
        (
            "short key",
            upgrade_head(&h, &[]).replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            400,
            None,
        ),
        (
            "long key",
            upgrade_head(&h, &[]).replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQdGhlIHNhbXBsZSBub25jZQ=="),
            400,
            None,
        ),
        (
            "key not base64",
            upgrade_head(&h, &[]).replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j*Q=="),
            400,
            None,
        ),
        (
            "empty key",
            upgrade_head(&h, &[]).replace("dGhlIHNhbXBsZSBub25jZQ==", ""),
            400,
            None,
        ),
        (
            "no Sec-WebSocket-Version",
            format!("GET / HTTP/1.1\nHost: {h}\nConnection: Upgrade\nUpgrade: websocket\n{key}"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version 8",
            upgrade_head(&h, &[]).replace("Version: 13", "Version: 8"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version 14",
            upgrade_head(&h, &[]).replace("Version: 13", "Version: 14"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version list",
            upgrade_head(&h, &[]).replace("Version: 13", "Version: 13, 8"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version twice",
            upgrade_head(&h, &["Sec-WebSocket-Version: 13"]),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version not a number",
            upgrade_head(&h, &[]).replace("Version: 13", "Version: thirteen"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "duplicate Host",
            upgrade_head(&h, &[&format!("Host: {h}")]),
            400,
            None,
        ),
        (
            "duplicate Host, one foreign",
            upgrade_head(&h, &["Host: evil.net"]),
            400,
            None,
        ),
        (
            "duplicate Origin",
            upgrade_head(&h, &["Origin: https://crm.example.com", "Origin: https://crm.example.com"]),
            400,
            None,
        ),
        (
            "duplicate Origin, one foreign",
            upgrade_head(&h, &["Origin: https://crm.example.com", "Origin: https://evil.net"]),
            400,
            None,
        ),
        (
            "duplicate key",
            upgrade_head(&h, &[key]),
            400,
            None,
        ),
        (
            "Upgrade to another protocol",
            upgrade_head(&h, &[]).replace("Upgrade: websocket", "Upgrade: h2c"),
            200, // not a websocket handshake: the demo page
            Some(("content-type", "text/html; charset=utf-8")),
        ),
        (
            "no Upgrade header",
            format!("GET / HTTP/1.1\nHost: {h}\nConnection: Upgrade\nSec-WebSocket-Version: 13\n{key}"),
            200,
            Some(("content-type", "text/html; charset=utf-8")),
        ),
        (
            "no Connection header",
            format!("GET / HTTP/1.1\nHost: {h}\nUpgrade: websocket\nSec-WebSocket-Version: 13\n{key}"),
            200,
            Some(("content-type", "text/html; charset=utf-8")),
        ),
        (
            "upgrade at another path",
            upgrade_head(&h, &[]).replace("GET / ", "GET /health/../ "),
            404,
            None,
        ),
        (
            "upgrade with POST",
            upgrade_head(&h, &["Content-Length: 0"]).replace("GET / ", "POST / "),
            405,
            None,
        ),
        (
            "HTTP/1.0 upgrade",
            upgrade_head(&h, &[]).replace("HTTP/1.1", "HTTP/1.0"),
            400,
            None,
        ),
    ];
    for (what, head, status, header) in &cases {
        let r = raw_exchange(v4(&d), &crlf(head))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status, *status, "{what}: {r:?}");
        assert_eq!(r.header("upgrade"), None, "{what}: upgraded");
        assert_eq!(r.header("sec-websocket-accept"), None, "{what}: upgraded");
        if let Some((name, value)) = header {
            assert_eq!(r.header(name), Some(*value), "{what}: {r:?}");
        }
    }
    assert_eq!(d.state.tenants.connection_count(), 2, "only the witness");
    w.check("missing and malformed headers").await;
}

#[tokio::test]
async fn oversized_and_too_many_headers_are_431() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let h = host(&d);
    let huge_value = format!("X-Big: {}", "a".repeat(20 * 1024));
    let many: Vec<String> = (0..100).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let long_origin = format!("Origin: https://{}.example.com", "a".repeat(17 * 1024));
    let long_uri = format!("GET /{} HTTP/1.1\nHost: {h}", "a".repeat(20 * 1024));
    for (what, head) in [
        ("one 20 KiB header", upgrade_head(&h, &[&huge_value])),
        ("100 headers", upgrade_head(&h, &many)),
        ("a 17 KiB Origin", upgrade_head(&h, &[&long_origin])),
        ("a 20 KiB request line", long_uri),
    ] {
        let r = raw_exchange(v4(&d), &crlf(&head))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status, 431, "{what}: {r:?}");
    }
    // 60 headers (below the limit of 64) are fine.
    let some: Vec<String> = (0..50).map(|i| format!("X-H{i}: v")).collect();
    let some: Vec<&str> = some.iter().map(String::as_str).collect();
    let r = raw_exchange(v4(&d), &crlf(&upgrade_head(&h, &some)))
        .await
        .unwrap();
    assert_eq!(r.status, 101, "{r:?}");
    // Garbage instead of a request line.
    for garbage in [
        &b"\x00\x01\x02\x03\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
    ] {
        let what = String::from_utf8_lossy(garbage);
        let r = raw_exchange(v4(&d), garbage)
            .await
            .unwrap_or_else(|| panic!("{what:?}: no answer"));
        assert_eq!(r.status, 400, "{what:?}: {r:?}");
    }
    w.check("oversized headers").await;
}

// ---------------------------------------------------------------------------
// Raw websocket frames
// ---------------------------------------------------------------------------

/// A masked client frame of any length.
fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![first_byte];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Upgrade a raw TCP connection, read the hello, return the socket.
async fn raw_ws(d: &Daemon) -> TcpStream {
    let mut s = TcpStream::connect(v4(d)).await.unwrap();
    let r = raw_http_on(&mut s, &upgrade_head(&host(d), &[])).await;
    assert_eq!(r.status, 101);
    let (op, payload) = read_frame(&mut s).await.expect("hello");
    assert_eq!(op, 0x1);
    assert!(String::from_utf8_lossy(&payload).contains("\"hello\""));
    s
}

/// The next server frame (opcode, payload), or `None` at EOF.
async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let fut = async {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.ok()?;
        assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            len = u16::from_be_bytes(l) as usize;
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.ok()?;
            len = u64::from_be_bytes(l) as usize;
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.ok()?;
        Some((h[0] & 0x0f, payload))
    };
    timeout(DEADLINE, fut).await.expect("a frame in time")
}

/// Reads until the server's close frame; returns its code and reason.
async fn close_code(s: &mut TcpStream) -> (u16, String) {
    loop {
        match read_frame(s).await {
            Some((0x8, p)) => {
                assert!(p.len() >= 2, "close frame without a code");
                return (
                    u16::from_be_bytes([p[0], p[1]]),
                    String::from_utf8_lossy(&p[2..]).into_owned(),
                );
            }
            Some(_) => continue,
            None => panic!("EOF without a close frame"),
        }
    }
}

/// The socket reaches EOF (or reset) after the close: nothing more is served.
async fn eof(s: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let fut = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    timeout(DEADLINE, fut).await.expect("EOF after the close");
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

#[tokio::test]
async fn malformed_frames_get_their_close_codes() {
    let d = start_with(|c| {
        c.limits.max_message_bytes = 4096;
        c.limits.max_frame_bytes = 4096;
    })
    .await;
    let mut w = Witness::new(&d).await;
    let get_version = br#"{"action":"getVersion"}"#;
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    for op in [0x3u8, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        cases.push((
            format!("reserved opcode {op:#x}"),
            frame(0x80 | op, b"x"),
            1002,
        ));
    }
    for rsv in [0x40u8, 0x20, 0x10] {
        cases.push((
            format!("reserved bit {rsv:#x}"),
            frame(0x80 | rsv | 0x1, get_version),
            1002,
        ));
    }
    cases.push(("unmasked text".into(), vec![0x81, 0x02, b'{', b'}'], 1002));
    cases.push(("fragmented ping".into(), frame(0x09, b"p"), 1002));
    cases.push((
        "fragmented close".into(),
        frame(0x08, &close_payload(1000, b"")),
        1002,
    ));
    cases.push(("fragmented pong".into(), frame(0x0a, b"p"), 1002));
    cases.push(("ping of 126 bytes".into(), frame(0x89, &[b'p'; 126]), 1002));
    cases.push(("pong of 200 bytes".into(), frame(0x8a, &[b'p'; 200]), 1002));
    cases.push((
        "close of 126 bytes".into(),
        frame(0x88, &close_payload(1000, &[b'r'; 124])),
        1002,
    ));
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        cases.push((
            format!("close code {code}"),
            frame(0x88, &close_payload(code, b"")),
            1002,
        ));
    }
    cases.push((
        "close with a 1-byte payload".into(),
        frame(0x88, &[0x03]),
        1002,
    ));
    cases.push((
        "close reason not UTF-8".into(),
        frame(0x88, &close_payload(1000, &[0xff, 0xfe])),
        1007,
    ));
    cases.push((
        "continuation without start".into(),
        frame(0x80, get_version),
        1002,
    ));
    cases.push((
        "unfinished continuation without start".into(),
        frame(0x00, get_version),
        1002,
    ));
    let mut interleaved = frame(0x01, br#"{"action":"#);
    interleaved.extend(frame(0x81, get_version));
    cases.push((
        "new text frame inside a fragmented message".into(),
        interleaved,
        1002,
    ));
    let mut interleaved = frame(0x01, br#"{"action":"#);
    interleaved.extend(frame(0x82, b"\x01"));
    cases.push((
        "binary frame inside a fragmented text".into(),
        interleaved,
        1002,
    ));
    // Fragments each below the frame limit whose sum exceeds the message limit.
    let mut fragmented = frame(0x01, &[b' '; 3000]);
    fragmented.extend(frame(0x00, &[b' '; 3000]));
    cases.push((
        "fragmented text over the message limit".into(),
        fragmented,
        1009,
    ));
    let mut many = frame(0x01, b"[");
    for _ in 0..5000 {
        many.extend(frame(0x00, b" "));
    }
    cases.push(("5000 one-byte fragments over the limit".into(), many, 1009));
    cases.push((
        "one frame over the frame limit".into(),
        frame(0x81, &[b' '; 5000]),
        1009,
    ));
    cases.push(("text not UTF-8".into(), frame(0x81, &[0xc3, 0x28]), 1007));
    let mut split_utf8 = frame(0x01, &[b'"', 0xe2, 0x82]);
    split_utf8.extend(frame(0x80, &[0x28, b'"']));
    cases.push(("UTF-8 broken across fragments".into(), split_utf8, 1007));
    cases.push(("binary".into(), frame(0x82, b"\x00"), 1003));

    for (what, bytes, code) in &cases {
        let mut s = raw_ws(&d).await;
        s.write_all(bytes).await.unwrap();
        let (got, reason) = close_code(&mut s).await;
        assert_eq!(got, *code, "{what}: close reason {reason:?}");
        eof(&mut s).await;
    }
    // The same daemon still accepts a valid fragmented message.
    let mut s = raw_ws(&d).await;
    let mut ok = frame(0x01, br#"{"action":"getVer"#);
    ok.extend(frame(0x89, b"mid-message ping"));
    ok.extend(frame(0x80, br#"sion","requestId":9}"#));
    s.write_all(&ok).await.unwrap();
    let mut replies = Vec::new();
    while replies.is_empty() {
        let (op, payload) = read_frame(&mut s).await.expect("reply");
        if op == 0x1 {
            replies.push(String::from_utf8(payload).unwrap());
        } else {
            assert_eq!(op, 0xa, "the pong");
        }
    }
    let reply: Value = serde_json::from_str(&replies[0]).unwrap();
    assert_eq!(reply["requestId"], 9);
    assert_eq!(reply["result"], "SUCCESS");
    eventually(|| d.state.tenants.connection_count() == 3).await;
    w.check("malformed frames").await;
}

// ---------------------------------------------------------------------------
// Hostile JSON
// ---------------------------------------------------------------------------

/// Sends `text` and returns the reply (skipping nothing: an attacker hears
/// no events).
async fn send_text(ws: &mut Client, text: String) -> Value {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
        .await
        .unwrap();
    next_json(ws).await
}

#[tokio::test]
async fn deeply_nested_json_is_a_bad_request_then_abuse() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    next_json(&mut ws).await;
    let nested = [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!(
            "{{\"action\":\"setContextVariable\",\"requestId\":1,\"environment\":\"WITNESS\",\"name\":\"x\",\"value\":{}{}}}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
        format!("{}1{}", "[".repeat(129), "]".repeat(129)),
    ];
    for text in &nested {
        let r = send_text(&mut ws, text.clone()).await;
        assert_eq!(r["result"], "FAILURE", "{r}");
        assert_eq!(r["errorCode"], "bad_request", "{r}");
        let msg = r["errorMessage"].as_str().unwrap();
        assert!(msg.contains("not valid JSON"), "{msg}");
        assert!(msg.contains("recursion limit"), "{msg}");
        // Nothing can be echoed from a message that could not be parsed.
        assert_eq!(r.get("requestId"), None, "{r}");
    }
    // Nesting that serde accepts is not a problem either (and not a request).
    let r = send_text(&mut ws, format!("{}1{}", "[".repeat(100), "]".repeat(100))).await;
    assert_eq!(r["errorCode"], "bad_request", "{r}");
    assert!(
        r["errorMessage"].as_str().unwrap().contains("JSON object"),
        "{r}"
    );
    // Still connected: 5 malformed so far; the 21st in a minute closes (1008).
    let r = send_text(
        &mut ws,
        json!({"action": "getVersion", "requestId": 2}).to_string(),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS");
    for i in 6..=21 {
        let r = send_text(&mut ws, "[".repeat(100_000)).await;
        assert_eq!(r["errorCode"], "bad_request", "message {i}: {r}");
    }
    let (code, reason) = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(
        reason.starts_with("too many malformed messages"),
        "{reason}"
    );
    w.check("deeply nested JSON").await;
}

#[tokio::test]
async fn huge_key_counts_within_the_size_limit_change_nothing() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    next_json(&mut ws).await;
    let r = send_text(
        &mut ws,
        json!({"action": "createEnvironment", "environment": WITNESS_ENV, "clientName": "attacker", "requestId": 0}).to_string(),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    // 60,000 unknown keys around a valid request: ignored, answered.
    let mut obj = serde_json::Map::new();
    for i in 0..60_000 {
        obj.insert(format!("k{i}"), json!(i));
    }
    obj.insert("action".into(), json!("getVersion"));
    obj.insert("requestId".into(), json!(1));
    let text = Value::Object(obj).to_string();
    assert!(text.len() < 1024 * 1024, "{}", text.len());
    let r = send_text(&mut ws, text).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    assert_eq!(r["requestId"], 1);
    // A value with 50,000 keys: not a scalar.
    let big: serde_json::Map<String, Value> =
        (0..50_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = send_text(
        &mut ws,
        json!({"action": "setContextVariable", "requestId": 2, "environment": WITNESS_ENV, "name": "x", "value": big}).to_string(),
    )
    .await;
    assert_eq!(r["errorCode"], "invalid_value", "{r}");
    // One bulk item with 50,000 pairs: each item must hold exactly one.
    let r = send_text(
        &mut ws,
        json!({"action": "setContextJSON", "requestId": 3, "environment": WITNESS_ENV, "data": [big]}).to_string(),
    )
    .await;
    assert_eq!(r["errorCode"], "bad_request", "{r}");
    // 30,000 variables in one environment: over the limits, nothing applied.
    let items: Vec<Value> = (0..30_000).map(|i| json!({format!("v{i}"): i})).collect();
    let r = send_text(
        &mut ws,
        json!({"action": "setContextJSON", "requestId": 4, "environment": WITNESS_ENV, "data": items}).to_string(),
    )
    .await;
    assert_eq!(r["errorCode"], "limit_exceeded", "{r}");
    let pairs: serde_json::Map<String, Value> =
        (0..30_000).map(|i| (format!("v{i}"), json!(i))).collect();
    let r = send_text(
        &mut ws,
        json!({"action": "setAllJSON", "requestId": 5, "data": [{"environment": WITNESS_ENV, "data": pairs}]}).to_string(),
    )
    .await;
    assert_eq!(r["errorCode"], "limit_exceeded", "{r}");
    // 10,000 environments in one setAllJSON: not registered in them.
    let envs: Vec<Value> = (0..10_000)
        .map(|i| json!({"environment": format!("E{i}"), "data": {"a": 1}}))
        .collect();
    let r = send_text(
        &mut ws,
        json!({"action": "setAllJSON", "requestId": 6, "data": envs}).to_string(),
    )
    .await;
    assert_eq!(r["errorCode"], "not_registered", "{r}");
    // 20,000 subscriptions to restore in a resume with a made-up token.
    let r = send_text(
        &mut ws,
        json!({"action": "resume", "requestId": 7, "token": "0".repeat(32),
               "environments": (0..5_000).map(|i| json!({"environment": format!("E{i}"), "clientName": "c",
                   "subscriptions": [{"name": "*"}, {"name": "a"}, {"name": "b"}, {"name": "c"}]})).collect::<Vec<_>>()}).to_string(),
    )
    .await;
    assert_eq!(r["result"], "FAILURE", "{r}");
    w.check("huge key counts").await;
}

// ---------------------------------------------------------------------------
// Every action with wrong types and missing fields
// ---------------------------------------------------------------------------

/// What a field accepts, and so which wrong values to try.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A JSON string (serde): anything else is `bad_request`.
    Str,
    /// A string or null (serde `Option<String>`).
    OptStr,
    /// A boolean (serde): `bad_request`.
    Bool,
    /// An array (serde): `bad_request`.
    Array,
    /// Any JSON scalar; objects and arrays are `invalid_value`.
    Scalar,
    /// A legacy number of a desktop action (number or numeric string):
    /// `invalid_argument`.
    Number,
    /// A legacy flag (boolean or "true"/"false"): `invalid_argument`.
    Flag,
    /// Documented as accepting anything (a size hint): never a failure.
    Hint,
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn f(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

/// Every action of `wsconnector::protocol::ACTIONS` with its fields and a
/// valid request. A new action fails `every_action_is_in_the_table`.
fn action_table() -> Vec<(&'static str, Vec<Field>, Value)> {
    use Kind::*;
    let env = "ATTACK";
    vec![
        (
            "createEnvironment",
            vec![f("environment", Str, true), f("clientName", Str, true)],
            json!({"environment": env, "clientName": "c"}),
        ),
        (
            "removeEnvironment",
            vec![f("environment", Str, true), f("cleanup", Bool, false)],
            json!({"environment": env, "cleanup": true}),
        ),
        (
            "setContextVariable",
            vec![
                f("environment", Str, true),
                f("name", Str, true),
                f("value", Scalar, true),
            ],
            json!({"environment": env, "name": "v", "value": 1}),
        ),
        (
            "setContextJSON",
            vec![
                f("environment", Str, true),
                f("data", Array, true),
                f("clearData", Bool, false),
            ],
            json!({"environment": env, "data": [{"v": 1}], "clearData": true}),
        ),
        (
            "setAllJSON",
            vec![f("data", Array, true), f("clearData", Bool, false)],
            json!({"data": [{"environment": env, "data": {"v": 1}}], "clearData": true}),
        ),
        (
            "getEnvironment",
            vec![f("environment", Str, true)],
            json!({"environment": env}),
        ),
        ("getData", vec![], json!({})),
        (
            "removeItemFromEnvironment",
            vec![f("environment", Str, true), f("name", Str, true)],
            json!({"environment": env, "name": "v"}),
        ),
        (
            "cleanEnvironment",
            vec![f("environment", Str, true)],
            json!({"environment": env}),
        ),
        (
            "setNotificationsOn",
            vec![
                f("environment", Str, true),
                f("name", Str, true),
                f("values", Bool, false),
            ],
            json!({"environment": env, "name": "*", "values": true}),
        ),
        (
            "setNotificationsOff",
            vec![f("environment", Str, true), f("name", Str, true)],
            json!({"environment": env, "name": "*"}),
        ),
        ("getVersion", vec![], json!({})),
        ("getHost", vec![], json!({})),
        ("getUser", vec![], json!({})),
        (
            "resume",
            vec![f("token", Str, true), f("environments", Array, false)],
            json!({"token": "0".repeat(32), "environments": []}),
        ),
        (
            "setSizeWindow",
            vec![
                f("windowName", Str, true),
                f("x", Number, false),
                f("width", Number, false),
                f("height", Number, false),
                f("focus", Flag, false),
            ],
            json!({"windowName": "w", "x": 0, "width": 10, "height": 10, "focus": true}),
        ),
        (
            "showNotification",
            vec![
                f("title", Str, true),
                f("message", Str, true),
                f("duration", Number, false),
                f("color", OptStr, false),
                f("width", Hint, false),
                f("height", Hint, false),
            ],
            json!({"title": "t", "message": "m", "duration": 100, "color": "Red", "width": 1, "height": 1}),
        ),
        (
            "launchProcess",
            vec![f("name", Str, true), f("parameter", OptStr, false)],
            json!({"name": "editor", "parameter": "x"}),
        ),
        (
            "showPickupDialog",
            vec![
                f("title", Str, true),
                f("buttonText", Str, true),
                f("interactionId", OptStr, false),
            ],
            json!({"title": "t", "buttonText": "b", "interactionId": "k"}),
        ),
        (
            "openUrl",
            vec![f("url", Str, true)],
            json!({"url": "https://crm.example.com/x"}),
        ),
        (
            "loadXML",
            vec![
                f("xml", Str, true),
                f("root", OptStr, false),
                f("prefix", OptStr, false),
                f("environment", OptStr, false),
            ],
            json!({"xml": "<context/>", "root": "", "prefix": "", "environment": env}),
        ),
        ("retrieveXML", vec![], json!({})),
        (
            "retrieveEnvironmentXML",
            vec![f("environment", Str, true)],
            json!({"environment": env}),
        ),
        ("getStatus", vec![], json!({})),
        ("getInspectorToken", vec![], json!({})),
    ]
}

#[test]
fn every_action_is_in_the_table() {
    let table: Vec<&str> = action_table().iter().map(|(a, _, _)| *a).collect();
    let mut known: Vec<&str> = wsconnector::protocol::ACTIONS.to_vec();
    let mut ours = table.clone();
    known.sort_unstable();
    ours.sort_unstable();
    assert_eq!(
        ours, known,
        "tests/adversarial.rs action_table must list every action of protocol::ACTIONS with its fields"
    );
}

/// Wrong values for a field of `kind`, with the FAILURE code each must get.
fn wrong_values(kind: Kind) -> Vec<(Value, &'static str)> {
    let bad = |vs: Vec<Value>, code| vs.into_iter().map(|v| (v, code)).collect();
    match kind {
        Kind::Str => bad(
            vec![
                json!(42),
                json!(true),
                json!([]),
                json!({}),
                json!(null),
                json!(["a"]),
            ],
            "bad_request",
        ),
        Kind::OptStr => bad(
            vec![json!(42), json!(false), json!([]), json!({"a": 1})],
            "bad_request",
        ),
        Kind::Bool => bad(
            vec![json!("yes"), json!("true"), json!(1), json!([]), json!({})],
            "bad_request",
        ),
        Kind::Array => bad(
            vec![json!("x"), json!(1), json!({}), json!(true)],
            "bad_request",
        ),
        Kind::Scalar => bad(
            vec![json!({}), json!([1]), json!({"a": {"b": 1}})],
            "invalid_value",
        ),
        Kind::Number => bad(
            vec![
                json!("abc"),
                json!(true),
                json!([]),
                json!({}),
                json!(1.5),
                json!(-1e300),
            ],
            "invalid_argument",
        ),
        Kind::Flag => bad(
            vec![json!("yes"), json!(1), json!([]), json!({})],
            "invalid_argument",
        ),
        Kind::Hint => vec![],
    }
}

/// The attacker's session: a desktop-capable origin registered in `ATTACK`,
/// which holds one variable that no failed request may touch.
struct Attacker {
    ws: Client,
    next_id: u64,
}

impl Attacker {
    async fn new(d: &Daemon) -> Attacker {
        let ws = ws_connect(v4(d), &host(d), Some("https://desk.example.com")).await;
        let mut a = Attacker { ws, next_id: 0 };
        let hello = next_json(&mut a.ws).await;
        assert_eq!(
            hello["capabilities"].as_array().unwrap().len(),
            6,
            "{hello}"
        );
        for req in [
            json!({"action": "createEnvironment", "environment": "ATTACK", "clientName": "a"}),
            json!({"action": "setContextVariable", "environment": "ATTACK", "name": "keep", "value": "me"}),
        ] {
            let r = a.ask(req).await;
            assert_eq!(r["result"], "SUCCESS", "{r}");
        }
        a
    }

    async fn ask(&mut self, mut req: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        req["requestId"] = json!(id);
        send_json(&mut self.ws, req).await;
        let r = next_json(&mut self.ws).await;
        assert_eq!(r["type"], "reply", "{r}");
        assert_eq!(r["requestId"], id, "{r}");
        r
    }
}

#[tokio::test]
async fn every_action_with_wrong_types_and_missing_fields_fails_naming_the_field() {
    let d = start_with(|c| {
        let mut desk = origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities::ALL;
        c.origins.push(desk);
        // Hundreds of malformed requests on one connection, and desktop
        // actions beyond 20 a minute: this test is about the answers.
        c.limits.rate.malformed_per_minute = 0;
        c.limits.rate.actions.clear();
    })
    .await;
    let mut a = Attacker::new(&d).await;
    let mut w = Witness::new(&d).await;
    let mut tried = 0;
    for (action, fields, valid) in action_table() {
        for field in &fields {
            let mut cases: Vec<(String, Value, &str)> = Vec::new();
            if field.required {
                let mut req = valid.clone();
                req.as_object_mut().unwrap().remove(field.name);
                cases.push(("missing".into(), req, "bad_request"));
            }
            for (bad, code) in wrong_values(field.kind) {
                let mut req = valid.clone();
                req[field.name] = bad.clone();
                // Null is "absent" for optional strings and desktop values.
                cases.push((format!("= {bad}"), req, code));
            }
            for (what, mut req, code) in cases {
                req["action"] = json!(action);
                let r = a.ask(req.clone()).await;
                tried += 1;
                assert_eq!(
                    r["result"], "FAILURE",
                    "{action}.{} {what}: {r}",
                    field.name
                );
                assert_eq!(r["errorCode"], code, "{action}.{} {what}: {r}", field.name);
                assert_eq!(r["action"], action, "{r}");
                let msg = r["errorMessage"].as_str().unwrap();
                // Store errors name the variable: "value of \"v\" must be ...".
                let named = if code == "invalid_value" {
                    msg.starts_with(&format!("{} of ", field.name))
                } else {
                    msg.contains(&format!("`{}`", field.name))
                };
                assert!(
                    named,
                    "{action}.{} {what}: the message must name the field: {msg}",
                    field.name
                );
            }
        }
        // Not an object at all, and an action of the wrong type.
        for bad_body in [json!([action]), json!(action)] {
            let r = send_text(&mut a.ws, bad_body.to_string()).await;
            assert_eq!(r["errorCode"], "bad_request", "{r}");
        }
    }
    for bad_action in [json!(1), json!(null), json!(["getData"]), json!({"a": 1})] {
        let r = a.ask(json!({"action": bad_action})).await;
        assert_eq!(r["errorCode"], "bad_request", "{r}");
        assert!(
            r["errorMessage"].as_str().unwrap().contains("action"),
            "{r}"
        );
    }
    for unknown in [
        "GetData",
        "getdata",
        "get Data",
        "",
        "__proto__",
        "constructor",
    ] {
        let r = a.ask(json!({"action": unknown})).await;
        assert_eq!(r["errorCode"], "unknown_action", "{unknown:?}: {r}");
    }
    for bad_id in [
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!("x".repeat(129)),
    ] {
        let r = send_text(
            &mut a.ws,
            json!({"action": "getVersion", "requestId": bad_id}).to_string(),
        )
        .await;
        assert_eq!(r["errorCode"], "bad_request", "{r}");
        assert_eq!(r.get("requestId"), None, "{r}");
        assert!(
            r["errorMessage"].as_str().unwrap().contains("requestId"),
            "{r}"
        );
    }
    eprintln!("{tried} wrong-type and missing-field requests");
    assert!(tried > 200, "only {tried} cases");
    // Nothing the attacker sent changed its own environment or the witness.
    let r = a
        .ask(json!({"action": "getEnvironment", "environment": "ATTACK"}))
        .await;
    assert_eq!(r["data"], json!({"keep": "me"}), "{r}");
    w.check("wrong types and missing fields").await;
    // And the attacker's connection is still usable.
    let r = a.ask(json!({"action": "getVersion"})).await;
    assert_eq!(r["result"], "SUCCESS");
}

// ---------------------------------------------------------------------------
// Abuse from a browser origin does not reach other origins
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_handshake_leaves_no_trace() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    // Many refused handshakes in a row (every kind) and the caps do not move.
    for _ in 0..50 {
        for head in [
            upgrade_head(&host(&d), &["Origin: https://evil.net"]),
            upgrade_head(&format!("evil.net:{}", d.port), &[]),
            upgrade_head(&host(&d), &["Origin: null"]),
        ] {
            let r = raw_exchange(v4(&d), &crlf(&head)).await.unwrap();
            assert_eq!(r.status, 403);
        }
    }
    assert_eq!(d.state.tenants.connection_count(), 2);
    let per_user: usize = d.state.sockets_per_user.lock().unwrap().values().sum();
    assert_eq!(per_user, 2, "refused handshakes hold no slot");
    w.check("refused handshakes").await;
}

// ---------------------------------------------------------------------------
// DNS rebinding on every route, compression, slow and silent peers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rebinding_hosts_are_refused_on_every_route() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let p = d.port;
    let bad_hosts = [
        format!("rebind.test:{p}"),
        format!("evil.net:{p}"),
        format!("localhost.evil.net:{p}"),
        format!("localhost:{p}.evil.net"),
        format!("localhost:{p}@evil.net"),
        format!("evil.net@localhost:{p}"),
        format!("127.0.0.1.nip.io:{p}"),
        format!("127.1:{p}"),
        format!("0x7f000001:{p}"),
        format!("2130706433:{p}"),
        format!("0177.0.0.1:{p}"),
        format!("[::ffff:127.0.0.1]:{p}"),
        format!("[0:0:0:0:0:0:0:1]:{p}"),
        format!("[::1%25lo]:{p}"),
        format!("localhost:+{p}"),
        format!("localhost:0{p}"),
        format!("localhost:{p}:{p}"),
        format!("localhost :{p}"),
        format!("local host:{p}"),
        format!("localhost:{}", p.wrapping_add(1)),
        "localhost".to_string(),
        "localhost:".to_string(),
        format!(":{p}"),
        format!("[::1]{p}"),
        format!("::1:{p}"),
    ];
    let routes = |h: &str| {
        vec![
            upgrade_head(h, &["Origin: https://crm.example.com"]),
            upgrade_head(h, &[]),
            format!("GET /health HTTP/1.1\nHost: {h}"),
            format!("OPTIONS /health HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com\nAccess-Control-Request-Method: GET"),
            format!("GET / HTTP/1.1\nHost: {h}"),
            format!("GET /connector.js HTTP/1.1\nHost: {h}"),
            format!("GET /connector.mjs HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com"),
            format!("HEAD /demo.js HTTP/1.1\nHost: {h}"),
            format!("GET /demo.css HTTP/1.1\nHost: {h}"),
            format!("GET /nope HTTP/1.1\nHost: {h}"),
            format!("POST /health HTTP/1.1\nHost: {h}\nContent-Length: 0"),
        ]
    };
    for addr in [v4(&d), v6(&d)] {
        for bad in &bad_hosts {
            for head in routes(bad) {
                let r = raw_exchange(addr, &crlf(&head))
                    .await
                    .unwrap_or_else(|| panic!("no answer to {head:?}"));
                assert_eq!(r.status, 403, "{addr} {head:?}: {r:?}");
                if !head.starts_with("HEAD") {
                    assert!(
                        r.body.contains("is not this daemon"),
                        "{head:?}: {}",
                        r.body
                    );
                }
                assert_eq!(r.header("access-control-allow-origin"), None);
            }
        }
        // The same routes with a good Host are served (not refused).
        for good in [
            format!("localhost:{p}"),
            format!("127.0.0.1:{p}"),
            format!("[::1]:{p}"),
            format!("LOCALHOST.:{p}"),
        ] {
            for head in routes(&good) {
                let r = raw_exchange(addr, &crlf(&head)).await.unwrap();
                assert!(
                    [101, 200, 204, 404, 405].contains(&r.status),
                    "{addr} {head:?}: {r:?}"
                );
            }
        }
    }
    w.check("rebinding hosts").await;
}

#[tokio::test]
async fn a_compressed_frame_after_a_compression_offer_is_1002() {
    let d = daemon().await;
    let mut w = Witness::new(&d).await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    let r = raw_http_on(
        &mut s,
        &upgrade_head(
            &host(&d),
            &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"],
        ),
    )
    .await;
    assert_eq!(r.status, 101);
    assert_eq!(
        r.header("sec-websocket-extensions"),
        None,
        "nothing negotiated"
    );
    let (op, _) = read_frame(&mut s).await.unwrap();
    assert_eq!(op, 0x1, "hello");
    // "{}" deflated, with RSV1 set as permessage-deflate would.
    s.write_all(&frame(0xc1, &[0xab, 0xae, 0x05, 0x00]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut s).await.0, 1002);
    eof(&mut s).await;
    w.check("compressed frame").await;
}

#[tokio::test]
async fn slow_silent_and_mute_peers_do_not_hold_up_others() {
    let d = start_with(|c| {
        c.timers.handshake = std::time::Duration::from_millis(1000);
        c.timers.idle = std::time::Duration::from_millis(1000);
        // Websockets that never send a request (the witness has sent some;
        // ping/pong liveness is in tests/frames.rs, as the witness here
        // does not read between checks and so answers no ping).
        c.timers.hello = std::time::Duration::from_millis(1000);
    })
    .await;
    let mut w = Witness::new(&d).await;
    let started = tokio::time::Instant::now();
    // Silent sockets, a slowloris head, an idle keep-alive, and websockets
    // that never send anything.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(v4(&d)).await.unwrap());
    }
    let mut slow = TcpStream::connect(v6(&d)).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    let mut idle = TcpStream::connect(v4(&d)).await.unwrap();
    let r = raw_http_on(
        &mut idle,
        &format!("GET /health HTTP/1.1\nHost: {}", host(&d)),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut mute = Vec::new();
    for _ in 0..5 {
        mute.push(raw_ws(&d).await);
    }
    // Meanwhile the witness is served at once.
    w.check("while slow peers are pending").await;
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "the witness waited for the slow peers"
    );
    for s in &mut mute {
        let (code, reason) = close_code(s).await;
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("no request"), "{reason}");
        eof(s).await;
    }
    for s in silent.iter_mut().chain([&mut slow, &mut idle]) {
        eof(s).await;
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
    eventually(|| d.state.tenants.connection_count() == 2).await;
    w.check("after slow peers were closed").await;
}

// ---------------------------------------------------------------------------
// A second OS user: every route, every action, both families
// ---------------------------------------------------------------------------

/// Set (to a JSON `ClientSpec`) when this binary runs as the second user's
/// websocket client.
const CLIENT_SPEC: &str = "WSC_SECOND_USER_CLIENT";
/// Marks the client's output lines among libtest's.
const CLIENT_LINE: &str = "WSC-CLIENT ";

/// The websocket client the second-user tests run as that user: this same
/// test binary, re-executed under setpriv with `CLIENT_SPEC` set
/// (`{"addr", "host", "origin", "requests"}`). It prints the handshake
/// outcome, the hello and one reply per request, one JSON per line. Run
/// without `CLIENT_SPEC` (every normal run) it has nothing to do.
#[tokio::test]
async fn second_user_client() {
    let Ok(spec) = std::env::var(CLIENT_SPEC) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let addr: SocketAddr = spec["addr"].as_str().unwrap().parse().unwrap();
    let origin = spec["origin"].as_str();
    // A line of its own: libtest prints "test second_user_client ... " first.
    let out = |v: Value| println!("\n{CLIENT_LINE}{v}");
    let mut ws = match try_ws_connect(addr, spec["host"].as_str().unwrap(), origin).await {
        Ok(ws) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            out(json!({"refused": r.status().as_u16(), "body": body}));
            return;
        }
        Err(e) => {
            out(json!({"error": e.to_string()}));
            return;
        }
    };
    out(next_json(&mut ws).await);
    for (i, req) in spec["requests"].as_array().unwrap().iter().enumerate() {
        let mut req = req.clone();
        req["requestId"] = json!(i);
        send_json(&mut ws, req).await;
        // Events (none expected) would be printed too, and fail the parent.
        loop {
            let m = next_json(&mut ws).await;
            let is_reply = m["type"] == "reply";
            out(m);
            if is_reply {
                break;
            }
        }
    }
}

/// Runs `second_user_client` as the second user; returns its output lines.
async fn client_as_other(
    addr: SocketAddr,
    host: &str,
    origin: Option<&str>,
    requests: Vec<Value>,
) -> Vec<Value> {
    let exe = std::env::current_exe().unwrap();
    let spec =
        json!({"addr": addr.to_string(), "host": host, "origin": origin, "requests": requests});
    let out = tokio::task::spawn_blocking(move || {
        second_user::run_as_other(
            exe.to_str().unwrap(),
            &[
                "--exact",
                "second_user_client",
                "--nocapture",
                "--test-threads=1",
            ],
            &[(CLIENT_SPEC, spec.to_string())],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the client as {} failed: {stdout}\n{}",
        second_user::OTHER,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(CLIENT_LINE))
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "the client printed nothing: {stdout}");
    lines
}

/// Why the second-user tests cannot run here, if they cannot.
fn second_user_unavailable() -> Option<String> {
    if let Err(why) = second_user::ensure_other_user() {
        return Some(why);
    }
    // The other user must be able to execute this test binary.
    let exe = std::env::current_exe().unwrap();
    let probe = second_user::run_as_other("test", &["-x", exe.to_str().unwrap()], &[]);
    (!probe.status.success()).then(|| {
        format!(
            "{} cannot execute {} (a directory on the way is not world-readable)",
            second_user::OTHER,
            exe.display()
        )
    })
}

#[tokio::test]
async fn second_os_user_is_refused_on_every_route_and_family() {
    if let Some(why) = second_user_unavailable() {
        skip::skipped("second OS user on every route (tests/adversarial.rs)", &why);
        return;
    }
    let d = start_with(|c| {
        let mut desk = origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities::ALL;
        c.origins.push(desk);
        // The refused upgrade keeps its connection open until idle.
        c.timers.idle = std::time::Duration::from_millis(300);
    })
    .await;
    let mut w = Witness::new(&d).await;
    let p = d.port;
    for (addr, h) in [
        (v4(&d), format!("127.0.0.1:{p}")),
        (v6(&d), format!("[::1]:{p}")),
    ] {
        for origin in [
            Some("https://crm.example.com"),
            Some("https://desk.example.com"),
            None,
        ] {
            let o = origin
                .map(|o| format!("\r\nOrigin: {o}"))
                .unwrap_or_default();
            let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
            for route in [
                format!("GET / HTTP/1.1\r\nHost: {h}{o}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n{key}"),
                format!("GET /health HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("OPTIONS /health HTTP/1.1\r\nHost: {h}{o}\r\nAccess-Control-Request-Method: GET\r\nConnection: close"),
                format!("GET / HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("GET /connector.js HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("GET /connector.mjs HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("GET /demo.js HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("GET /demo.css HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
                format!("GET /nope HTTP/1.1\r\nHost: {h}{o}\r\nConnection: close"),
            ] {
                let answer = second_user::http_as_other(addr, format!("{route}\r\n\r\n")).await;
                assert!(
                    answer.starts_with("HTTP/1.1 403 Forbidden\r\n"),
                    "{addr} {route:?}: {answer}"
                );
                let why = if origin.is_some() {
                    "(AllowOtherUsers is false)"
                } else {
                    "clients without Origin must run as"
                };
                assert!(answer.contains(why), "{route:?}: {answer}");
                assert!(!answer.contains("wsconnector\","), "no health data leaked: {answer}");
                assert!(!answer.contains("<html"), "no page leaked: {answer}");
            }
        }
        // The websocket client as the other user: refused before any action.
        for origin in [Some("https://desk.example.com"), None] {
            let lines = client_as_other(addr, &h, origin, vec![json!({"action": "getData"})]).await;
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert_eq!(lines[0]["refused"], 403, "{lines:?}");
        }
    }
    assert_eq!(d.state.tenants.connection_count(), 2, "only the witness");
    w.check("a second OS user on every route").await;
}

#[tokio::test]
async fn second_os_user_with_allow_other_users_gets_data_only() {
    if let Some(why) = second_user_unavailable() {
        skip::skipped(
            "second OS user with AllowOtherUsers (tests/adversarial.rs)",
            &why,
        );
        return;
    }
    let d = start_with(|c| {
        let mut desk = origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities::ALL;
        desk.open_url_patterns = vec!["https://*".into()];
        c.origins.push(desk);
        c.allow_other_users = true;
    })
    .await;
    let mut w = Witness::new(&d).await;
    let p = d.port;
    // Desktop actions, and getStatus which only native clients may use.
    let forbidden_to_pages = [
        "launchProcess",
        "openUrl",
        "setSizeWindow",
        "showNotification",
        "showPickupDialog",
        "getStatus",
        "getInspectorToken",
    ];
    // Every action, then what the docs promise: the shared context.
    let mut requests: Vec<Value> = action_table()
        .into_iter()
        .map(|(action, _, mut valid)| {
            valid["action"] = json!(action);
            valid
        })
        .collect();
    requests.push(
        json!({"action": "createEnvironment", "environment": WITNESS_ENV, "clientName": "other"}),
    );
    requests.push(json!({"action": "getEnvironment", "environment": WITNESS_ENV}));
    requests.push(json!({"action": "setContextVariable", "environment": WITNESS_ENV, "name": "FromOther", "value": "hi"}));
    let mut round = 0;
    for (addr, h) in [
        (v4(&d), format!("127.0.0.1:{p}")),
        (v6(&d), format!("[::1]:{p}")),
    ] {
        // Pages: /health and the files are served to an allowed origin.
        for path in ["/health", "/connector.js", "/"] {
            let answer = second_user::http_as_other(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: {h}\r\nOrigin: https://crm.example.com\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 200 OK\r\n"),
                "{path}: {answer}"
            );
        }
        // A native client of another user: never.
        let lines = client_as_other(addr, &h, None, vec![]).await;
        assert_eq!(lines[0]["refused"], 403, "{lines:?}");
        // A browser origin granted every capability: data only.
        let lines =
            client_as_other(addr, &h, Some("https://desk.example.com"), requests.clone()).await;
        assert_eq!(lines.len(), requests.len() + 1, "{lines:?}");
        let hello = &lines[0];
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["capabilities"], json!(["data"]), "{hello}");
        assert_eq!(hello["user"], second_user::OTHER, "{hello}");
        assert_eq!(hello["native"], false);
        for (req, reply) in requests.iter().zip(&lines[1..]) {
            let action = req["action"].as_str().unwrap();
            assert_eq!(reply["type"], "reply", "{action}: {reply}");
            assert_eq!(reply["action"], action, "{reply}");
            if forbidden_to_pages.contains(&action) {
                assert_eq!(reply["errorCode"], "forbidden", "{action}: {reply}");
            } else {
                assert_ne!(reply["errorCode"], "forbidden", "{action}: {reply}");
            }
            if action == "getUser" {
                assert_eq!(reply["data"], second_user::OTHER, "{reply}");
            }
        }
        let n = lines.len();
        assert_eq!(
            lines[n - 2]["data"],
            w.expected[WITNESS_ENV],
            "the other user reads the shared context"
        );
        assert_eq!(lines[n - 1]["result"], "SUCCESS", "{}", lines[n - 1]);
        // The witness hears the other user's write, as documented.
        let ev = next_json(&mut w.sub).await;
        assert_eq!(ev["VarChanged"], "FromOther", "{ev}");
        assert_eq!(ev["ValueChanged"], "hi", "{ev}");
        w.expected[WITNESS_ENV]["FromOther"] = json!("hi");
        // ATTACK was created and removed with cleanup by the action table.
        round += 1;
        w.check(&format!("the other user's session {round}")).await;
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_after_idle_not_at_the_handshake_deadline() {
    let d = start_with(|c| {
        c.timers.handshake = std::time::Duration::from_secs(8);
        c.timers.idle = std::time::Duration::from_millis(200);
    })
    .await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    // A refused upgrade keeps the connection (keep-alive) ...
    let r = raw_http_on(
        &mut s,
        &upgrade_head(&host(&d), &["Origin: https://evil.net"]),
    )
    .await;
    assert_eq!(r.status, 403);
    let answered = tokio::time::Instant::now();
    // ... until it has been idle for `Idle`, well before the handshake deadline.
    eof(&mut s).await;
    let idle = answered.elapsed();
    assert!(idle >= std::time::Duration::from_millis(150), "{idle:?}");
    assert!(
        idle < std::time::Duration::from_secs(4),
        "closed after {idle:?}"
    );
}
