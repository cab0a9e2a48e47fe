//! Websocket-level behaviour over real sockets: close codes for bad frames,
//! every timer with millisecond settings, and shutdown draining.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Upgrade a raw TCP connection and return it positioned after the 101 head.
async fn raw_ws(d: &wsconnector::app::Daemon) -> TcpStream {
    let mut s = TcpStream::connect(v4(d)).await.unwrap();
    let r = raw_http_on(&mut s, &upgrade_head(&host(d), &[])).await;
    assert_eq!(r.status, 101);
    s
}

/// A masked client frame.
fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![first_byte, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Read server frames until a close frame; return its code.
async fn read_close_code(s: &mut TcpStream) -> u16 {
    let fut = async {
        loop {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.expect("a frame before EOF");
            let mut len = (h[1] & 0x7f) as usize;
            if len == 126 {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.unwrap();
                len = u16::from_be_bytes(l) as usize;
            } else if len == 127 {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).await.unwrap();
                len = u64::from_be_bytes(l) as usize;
            }
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).await.unwrap();
            if h[0] & 0x0f == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    };
    timeout(DEADLINE, fut).await.expect("close frame in time")
}

#[tokio::test]
async fn oversized_message_is_closed_with_1009() {
    let d = start_with(|c| {
        c.limits.max_message_bytes = 1024;
        c.limits.max_frame_bytes = 1024;
    })
    .await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    next_json(&mut ws).await; // hello
    ws.send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap();
    let (code, reason) = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
    // Other clients are not affected.
    let mut other = ws_connect(v4(&d), &host(&d), None).await;
    assert_eq!(next_json(&mut other).await["type"], "hello");
}

#[tokio::test]
async fn reserved_bits_are_closed_with_1002() {
    let d = start_with(|_| {}).await;
    let mut s = raw_ws(&d).await;
    // FIN + RSV1 + text opcode: RSV1 without a negotiated extension.
    s.write_all(&frame(0x80 | 0x40 | 0x1, b"{}")).await.unwrap();
    assert_eq!(read_close_code(&mut s).await, 1002);
}

#[tokio::test]
async fn unmasked_frames_are_closed_with_1002() {
    let d = start_with(|_| {}).await;
    let mut s = raw_ws(&d).await;
    s.write_all(&[0x81, 0x02, b'{', b'}']).await.unwrap();
    assert_eq!(read_close_code(&mut s).await, 1002);
}

#[tokio::test]
async fn invalid_utf8_is_closed_with_1007() {
    let d = start_with(|_| {}).await;
    let mut s = raw_ws(&d).await;
    s.write_all(&frame(0x81, &[0xff, 0xfe, 0x41]))
        .await
        .unwrap();
    assert_eq!(read_close_code(&mut s).await, 1007);
}

#[tokio::test]
async fn binary_frames_are_closed_with_1003() {
    let d = start_with(|_| {}).await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    next_json(&mut ws).await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(close_frame(&mut ws).await.unwrap().0, 1003);
}

/// True when the server closed the socket (EOF or reset).
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let fut = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    };
    timeout(DEADLINE, fut).await.unwrap_or(false)
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_handshake_timeout() {
    let d = start_with(|c| c.timers.handshake = Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut s).await);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn slowloris_head_is_closed_after_the_handshake_timeout() {
    let d = start_with(|c| c.timers.handshake = Duration::from_millis(150)).await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    assert!(closed_by_server(&mut s).await);
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let d = start_with(|c| c.timers.idle = Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    let r = raw_http_on(&mut s, &format!("GET /health HTTP/1.1\nHost: {}", host(&d))).await;
    assert_eq!(r.status, 200);
    // Still usable right away (keep-alive) ...
    let r = raw_http_on(&mut s, &format!("GET /health HTTP/1.1\nHost: {}", host(&d))).await;
    assert_eq!(r.status, 200);
    // ... and closed once idle.
    assert!(closed_by_server(&mut s).await);
}

#[tokio::test]
async fn websocket_without_a_request_is_closed_after_the_hello_timeout() {
    let d = start_with(|c| c.timers.hello = Duration::from_millis(100)).await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let (code, reason) = close_frame(&mut ws).await.unwrap();
    assert_eq!(code, 1008);
    assert!(reason.contains("no request"), "{reason}");
}

#[tokio::test]
async fn a_request_cancels_the_hello_timeout() {
    let d = start_with(|c| {
        c.timers.hello = Duration::from_millis(100);
        c.timers.ping_interval = Duration::from_millis(50);
    })
    .await;
    let mut ws = ws_connect(v4(&d), &host(&d), None).await;
    next_json(&mut ws).await;
    send_json(
        &mut ws,
        serde_json::json!({"action": "getVersion", "requestId": 1}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["requestId"], 1);
    // Well past the hello timeout the connection still answers (pings are
    // answered by the client library while it reads).
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        send_json(
            &mut ws,
            serde_json::json!({"action": "getVersion", "requestId": 2}),
        )
        .await;
        assert_eq!(next_json(&mut ws).await["requestId"], 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn peer_that_never_answers_pings_is_closed() {
    let d = start_with(|c| {
        c.timers.ping_interval = Duration::from_millis(50);
        c.timers.pong_timeout = Duration::from_millis(100);
        c.timers.hello = Duration::ZERO;
    })
    .await;
    // A raw socket that reads but never answers pings.
    let mut s = raw_ws(&d).await;
    assert_eq!(read_close_code(&mut s).await, 1008);
    eventually(|| d.state.tenants.connection_count() == 0).await;
}

#[tokio::test]
async fn shutdown_sends_stopping_service_then_1001_and_drains() {
    let d = start_with(|_| {}).await;
    let mut a = ws_connect(v4(&d), &host(&d), None).await;
    let mut b = ws_connect(
        v6(&d),
        &format!("[::1]:{}", d.port),
        Some("https://crm.example.com"),
    )
    .await;
    next_json(&mut a).await;
    next_json(&mut b).await;
    d.shutdown();
    for ws in [&mut a, &mut b] {
        let ev = next_json(ws).await;
        assert_eq!(ev["status"], "stopping-service", "{ev}");
        assert_eq!(close_frame(ws).await.unwrap().0, 1001);
    }
    let addr = v4(&d);
    timeout(DEADLINE, d.wait()).await.expect("drained in time");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

/// Reads one server text frame and parses it.
async fn read_text_json(s: &mut TcpStream) -> serde_json::Value {
    let fut = async {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.expect("a frame before EOF");
        assert_eq!(h[0], 0x81, "a final, unfragmented text frame");
        assert_eq!(h[1] & 0x80, 0, "a server never masks");
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.unwrap();
            len = u16::from_be_bytes(l) as usize;
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.unwrap();
        serde_json::from_slice(&payload).expect("JSON")
    };
    timeout(DEADLINE, fut).await.expect("a text frame in time")
}

/// Requests that arrive in the same TCP segment as the handshake are bytes
/// hyper already read: the connection must hand them to the websocket, in
/// order, before anything it reads from the socket afterwards.
#[tokio::test]
async fn requests_sent_with_the_handshake_are_answered_in_order() {
    let d = start_with(|_| {}).await;
    let mut s = TcpStream::connect(v4(&d)).await.unwrap();
    let mut bytes = format!(
        "{}\r\n\r\n",
        upgrade_head(&host(&d), &[]).replace('\n', "\r\n")
    )
    .into_bytes();
    bytes.extend(frame(0x81, br#"{"action":"getHost","requestId":1}"#));
    bytes.extend(frame(0x81, br#"{"action":"getUser","requestId":2}"#));
    s.write_all(&bytes).await.unwrap();
    let r = timeout(DEADLINE, async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).await.unwrap(), 1);
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    })
    .await
    .expect("the 101 in time");
    assert!(r.starts_with("HTTP/1.1 101"), "{r}");
    assert_eq!(read_text_json(&mut s).await["type"], "hello");
    let first = read_text_json(&mut s).await;
    assert_eq!(first["requestId"], 1, "{first}");
    assert_eq!(first["result"], "SUCCESS", "{first}");
    let second = read_text_json(&mut s).await;
    assert_eq!(second["requestId"], 2, "{second}");
    assert_eq!(second["result"], "SUCCESS", "{second}");
    // And the connection goes on reading the socket after them.
    s.write_all(&frame(0x81, br#"{"action":"getHost","requestId":3}"#))
        .await
        .unwrap();
    assert_eq!(read_text_json(&mut s).await["requestId"], 3);
}
