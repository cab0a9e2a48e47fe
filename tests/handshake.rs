//! The handshake guard over real sockets: every refusal with its HTTP status,
//! /health with CORS and the private-network preflight, 404/405/426 (a plain
//! `GET /` is the demo page), and
//! both loopback families.

mod common;

use common::*;

#[tokio::test]
async fn health_answers_json_on_both_families() {
    let d = start_with(|_| {}).await;
    for addr in [v4(&d), v6(&d)] {
        let host = match addr {
            std::net::SocketAddr::V4(_) => format!("127.0.0.1:{}", d.port),
            std::net::SocketAddr::V6(_) => format!("[::1]:{}", d.port),
        };
        let r = raw_http(addr, &format!("GET /health HTTP/1.1\nHost: {host}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["product"], "wsconnector");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["protocol"], 1);
        assert_eq!(v.as_object().unwrap().len(), 4, "nothing else: {v}");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
}

#[tokio::test]
async fn health_cors_only_for_allowed_origins() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let r = raw_http(
        v4(&d),
        &format!("GET /health HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://crm.example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = raw_http(
        v4(&d),
        &format!("GET /health HTTP/1.1\nHost: {h}\nOrigin: https://evil.example.com"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn preflight_allows_private_network_for_allowed_origins() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let r = raw_http(
        v4(&d),
        &format!("OPTIONS /health HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com\nAccess-Control-Request-Method: GET\nAccess-Control-Request-Private-Network: true"),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://crm.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
    let r = raw_http(
        v4(&d),
        &format!("OPTIONS /health HTTP/1.1\nHost: {h}\nOrigin: https://other.example.com\nAccess-Control-Request-Method: GET"),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn routes_404_405_426() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    assert_eq!(
        raw_http(v4(&d), &format!("GET /nope HTTP/1.1\nHost: {h}"))
            .await
            .status,
        404
    );
    assert_eq!(
        raw_http(
            v4(&d),
            &format!("POST /health HTTP/1.1\nHost: {h}\nContent-Length: 0")
        )
        .await
        .status,
        405
    );
    // A plain GET / is the demo page (tests/assets.rs), not a 426.
    let r = raw_http(v4(&d), &format!("GET / HTTP/1.1\nHost: {h}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = raw_http(
        v4(&d),
        &upgrade_head(&h, &[]).replace("Version: 13", "Version: 8"),
    )
    .await;
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let r = raw_http(
        v4(&d),
        &upgrade_head(&h, &[]).replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn rebinding_hosts_are_refused_on_every_route_and_family() {
    let d = start_with(|_| {}).await;
    let port = d.port;
    let bad_hosts = [
        format!("rebind.test:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        "localhost".to_string(),
        format!("127.0.0.2:{port}"),
        format!("localhost.evil.net:{port}"),
    ];
    for addr in [v4(&d), v6(&d)] {
        for bad in &bad_hosts {
            for head in [
                format!("GET /health HTTP/1.1\nHost: {bad}"),
                format!("OPTIONS /health HTTP/1.1\nHost: {bad}\nOrigin: https://crm.example.com"),
                format!("GET /nope HTTP/1.1\nHost: {bad}"),
                format!("GET / HTTP/1.1\nHost: {bad}"),
                upgrade_head(bad, &["Origin: https://crm.example.com"]),
            ] {
                let r = raw_http(addr, &head).await;
                assert_eq!(r.status, 403, "{addr} {head:?}: {r:?}");
            }
        }
    }
}

#[tokio::test]
async fn extra_host_names_are_accepted() {
    let d = start_with(|c| c.extra_host_names.push("ctx.corp.local".into())).await;
    let r = raw_http(
        v4(&d),
        &format!("GET /health HTTP/1.1\nHost: ctx.corp.local:{}", d.port),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = raw_http(
        v4(&d),
        &format!("GET /health HTTP/1.1\nHost: other.corp.local:{}", d.port),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn foreign_and_lookalike_origins_are_refused() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    for origin in [
        "https://evil.example.com",
        "https://crm.example.com.evil.net",
        "http://crm.example.com",
        "https://crm.example.com:8443",
        "https://crm.example.com/",
        "HTTPS://CRM.EXAMPLE.COM",
        "null",
    ] {
        let r = raw_http(v4(&d), &upgrade_head(&h, &[&format!("Origin: {origin}")])).await;
        assert_eq!(r.status, 403, "{origin}: {r:?}");
        assert!(
            try_ws_connect(v6(&d), &h, Some(origin)).await.is_err(),
            "{origin}"
        );
    }
    let mut ws = ws_connect(v4(&d), &h, Some("https://crm.example.com")).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
}

#[tokio::test]
async fn duplicate_headers_are_400() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let r = raw_http(v4(&d), &upgrade_head(&h, &[&format!("Host: {h}")])).await;
    assert_eq!(r.status, 400);
    let r = raw_http(
        v4(&d),
        &upgrade_head(
            &h,
            &[
                "Origin: https://crm.example.com",
                "Origin: https://crm.example.com",
            ],
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = raw_http(
        v4(&d),
        &upgrade_head(&h, &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn own_pages_and_native_clients_connect_with_data_only() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let own = format!("http://localhost:{}", d.port);
    let mut ws = ws_connect(v4(&d), &h, Some(&own)).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["capabilities"], serde_json::json!(["data"]));
    let mut native = ws_connect(v6(&d), &format!("[::1]:{}", d.port), None).await;
    let hello = next_json(&mut native).await;
    assert_eq!(hello["capabilities"], serde_json::json!(["data"]));
}

#[tokio::test]
async fn connection_caps_answer_503() {
    let d = start_with(|c| {
        c.limits.max_connections_per_user = 2;
    })
    .await;
    let h = host(&d);
    let _a = ws_connect(v4(&d), &h, None).await;
    let _b = ws_connect(v4(&d), &h, None).await;
    let r = raw_http(v4(&d), &upgrade_head(&h, &[])).await;
    assert_eq!(r.status, 503, "{r:?}");
    drop(_a);
    // The slot comes back once the server has seen the disconnect.
    let mut ok = false;
    for _ in 0..200 {
        if raw_http(v4(&d), &upgrade_head(&h, &[])).await.status == 101 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ok, "slot released after disconnect");
}

#[tokio::test]
async fn compression_offers_are_not_negotiated() {
    let d = start_with(|_| {}).await;
    let r = raw_http(
        v4(&d),
        &upgrade_head(
            &host(&d),
            &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        ),
    )
    .await;
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-extensions"), None);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
}

#[tokio::test]
async fn legacy_bare_host_allows_http_and_https_on_default_ports() {
    let xml = "<configuration><appSettings><add key=\"Socket-port\" value=\"0\"/><add key=\"AllowedHosts\" value=\"crm.example.org\"/></appSettings></configuration>";
    let loaded =
        wsconnector::config::parse_str(xml, wsconnector::config::ConfigSource::Embedded).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("crm.example.org")),
        "{:?}",
        loaded.warnings
    );
    let d = start(loaded.config).await;
    let h = host(&d);
    for ok in ["http://crm.example.org", "https://crm.example.org"] {
        let mut ws = ws_connect(v4(&d), &h, Some(ok)).await;
        assert_eq!(next_json(&mut ws).await["origin"], ok);
    }
    for bad in [
        "https://crm.example.org:8443",
        "https://x.crm.example.org",
        "http://crm.example.org.evil.net",
    ] {
        assert_eq!(
            raw_http(v4(&d), &upgrade_head(&h, &[&format!("Origin: {bad}")]))
                .await
                .status,
            403,
            "{bad}"
        );
    }
}
