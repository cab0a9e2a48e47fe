//! The files the daemon serves itself, over real sockets: the connector
//! library at `/connector.js` and `/connector.mjs` (the exact embedded
//! bytes, revalidated with an ETag, CORS only for admitted origins), the demo
//! page at a plain `GET /` with its strict security headers, and the guard
//! in front of all of them.

mod common;

use common::*;
use wsconnector::server::assets;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self' ws://localhost:* ws://127.0.0.1:* wss://localhost:* wss://127.0.0.1:*; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn assert_security_headers(r: &RawResponse, what: &str) {
    assert_eq!(r.header("content-security-policy"), Some(CSP), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

/// The file as it is in the source tree: what the binary must serve.
fn source_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[tokio::test]
async fn the_connector_library_is_served_as_built() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    for (path, embedded) in [
        ("/connector.js", assets::find("/connector.js").unwrap().body),
        (
            "/connector.mjs",
            assets::find("/connector.mjs").unwrap().body,
        ),
    ] {
        for addr in [v4(&d), v6(&d)] {
            let r = raw_http(addr, &format!("GET {path} HTTP/1.1\nHost: {h}")).await;
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(
                r.header("content-type"),
                Some("text/javascript; charset=utf-8")
            );
            assert_eq!(r.header("cache-control"), Some("no-cache"));
            assert_eq!(r.body, embedded, "{path}: the embedded bytes");
            assert_security_headers(&r, path);
            // A classic <script src> sends no Origin: no CORS header needed.
            assert_eq!(r.header("access-control-allow-origin"), None);
            let etag = r.header("etag").expect("an ETag").to_string();
            assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
            // Revalidation: the same ETag gives 304 without a body.
            let again = raw_http(
                addr,
                &format!("GET {path} HTTP/1.1\nHost: {h}\nIf-None-Match: {etag}"),
            )
            .await;
            assert_eq!(again.status, 304, "{path}");
            assert_eq!(again.body, "");
            assert_eq!(again.header("etag"), Some(etag.as_str()));
            let stale = raw_http(
                addr,
                &format!("GET {path} HTTP/1.1\nHost: {h}\nIf-None-Match: \"stale\""),
            )
            .await;
            assert_eq!(stale.status, 200);
        }
    }
}

#[tokio::test]
async fn the_served_library_is_the_file_in_js_client() {
    // The binary embeds js-client/ at build time: what it serves must be
    // byte-for-byte the files of this source tree.
    let d = start_with(|_| {}).await;
    let h = host(&d);
    for (path, file) in [
        ("/connector.js", "js-client/connector.js"),
        ("/connector.mjs", "js-client/connector.mjs"),
    ] {
        let r = raw_http(v4(&d), &format!("GET {path} HTTP/1.1\nHost: {h}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, source_file(file), "{path} differs from {file}");
    }
}

#[tokio::test]
async fn a_module_script_from_an_allowed_origin_gets_cors() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let r = raw_http(
        v4(&d),
        &format!("GET /connector.mjs HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://crm.example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // A foreign origin is refused before any file is read.
    let r = raw_http(
        v4(&d),
        &format!("GET /connector.mjs HTTP/1.1\nHost: {h}\nOrigin: https://evil.example.net"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("Connector"), "{}", r.body);
    // DNS rebinding: a foreign Host gets nothing either.
    let r = raw_http(
        v4(&d),
        &format!("GET /connector.js HTTP/1.1\nHost: rebind.test:{}", d.port),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn the_demo_page_and_its_files() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let r = raw_http(v4(&d), &format!("GET / HTTP/1.1\nHost: {h}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.body, source_file("web/demo.html"));
    assert!(r
        .body
        .contains(r#"<script src="/connector.js" defer></script>"#));
    assert_security_headers(&r, "/");
    // Not readable cross-origin: no CORS header, even for an allowed origin.
    let r = raw_http(
        v4(&d),
        &format!("GET / HTTP/1.1\nHost: {h}\nOrigin: https://crm.example.com"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    for (path, file, ctype) in [
        ("/demo.js", "web/demo.js", "text/javascript; charset=utf-8"),
        ("/demo.css", "web/demo.css", "text/css; charset=utf-8"),
    ] {
        let r = raw_http(v6(&d), &format!("GET {path} HTTP/1.1\nHost: {h}")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ctype));
        assert_eq!(r.body, source_file(file));
        assert_security_headers(&r, path);
    }
    // HEAD: the headers without the body.
    let r = raw_http(v4(&d), &format!("HEAD /demo.css HTTP/1.1\nHost: {h}")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("etag").is_some());
    // Other methods on a file: 405; refusals carry the security headers too.
    let r = raw_http(
        v4(&d),
        &format!("POST /demo.js HTTP/1.1\nHost: {h}\nContent-Length: 0"),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_security_headers(&r, "405");
    let r = raw_http(v4(&d), &format!("GET /web/demo.js HTTP/1.1\nHost: {h}")).await;
    assert_eq!(r.status, 404);
    let r = raw_http(v4(&d), "GET / HTTP/1.1\nHost: example.com").await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn the_websocket_stays_at_slash() {
    let d = start_with(|_| {}).await;
    let h = host(&d);
    let mut ws = ws_connect(v4(&d), &h, Some("https://crm.example.com")).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    // The demo's own origin connects with data capabilities only.
    let own = format!("http://localhost:{}", d.port);
    let mut ws = ws_connect(v4(&d), &h, Some(&own)).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["capabilities"], serde_json::json!(["data"]));
}
