//! WSS end to end through the daemon: certificates made by `cert create`
//! (PEM and .pfx), a websocket client over TLS that trusts only the generated
//! CA, on both loopback families; plain HTTP on the WSS port gets `/health`
//! only; a wrong password stops the start with a clear error, in-process and
//! through the binary.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsconnector::config::{Secret, SocketType, TlsConfig};
use wsconnector::tls::cert::{create, CreateOptions, Created};

fn make_certs(dir: &std::path::Path) -> Created {
    create(dir, &CreateOptions::default()).expect("certificates created")
}

fn client_trusting(ca_pem_path: &std::path::Path) -> TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn wss_hello(
    addr: SocketAddr,
    server_name: &str,
    host: &str,
    connector: &TlsConnector,
) -> serde_json::Value {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the generated CA");
    let req = format!("wss://{host}/").into_client_request().unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("websocket over TLS");
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(DEADLINE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

async fn check_serves(tls: TlsConfig, created: &Created) {
    let d = start_with(|c| {
        c.socket_type = SocketType::Wss;
        c.tls = Some(tls);
    })
    .await;
    assert_eq!(d.scheme, "wss");
    let connector = client_trusting(&created.ca_path);
    let port = d.port;
    let hello = wss_hello(
        v4(&d),
        "localhost",
        &format!("localhost:{port}"),
        &connector,
    )
    .await;
    assert_eq!(hello["type"], "hello");
    let hello = wss_hello(
        v4(&d),
        "127.0.0.1",
        &format!("127.0.0.1:{port}"),
        &connector,
    )
    .await;
    assert_eq!(hello["type"], "hello");
    let hello = wss_hello(v6(&d), "::1", &format!("[::1]:{port}"), &connector).await;
    assert_eq!(hello["type"], "hello");
    plain_http_on_the_wss_port(&d).await;
}

/// Plain HTTP on a WSS port: `/health` answers (so a page can tell "certificate
/// not trusted" from "daemon not running"), behind the same guard and CORS;
/// everything else, the websocket upgrade included, is a 400 naming https/wss.
async fn plain_http_on_the_wss_port(d: &wsconnector::app::Daemon) {
    let port = d.port;
    for addr in [v4(d), v6(d)] {
        let r = raw_http(
            addr,
            &format!(
                "GET /health HTTP/1.1\nHost: localhost:{port}\nOrigin: https://crm.example.com"
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("\"status\":\"ok\""), "{}", r.body);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://crm.example.com")
        );
        let r = raw_http(
            addr,
            &format!(
                "OPTIONS /health HTTP/1.1\nHost: 127.0.0.1:{port}\nOrigin: https://crm.example.com\nAccess-Control-Request-Method: GET\nAccess-Control-Request-Private-Network: true"
            ),
        )
        .await;
        assert_eq!(r.status, 204);
        assert_eq!(
            r.header("access-control-allow-private-network"),
            Some("true")
        );
    }
    // The same guard: a foreign origin or Host is refused.
    let r = raw_http(
        v4(d),
        &format!("GET /health HTTP/1.1\nHost: localhost:{port}\nOrigin: https://evil.example.net"),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = raw_http(v4(d), "GET /health HTTP/1.1\nHost: evil.example.net").await;
    assert_eq!(r.status, 403);
    // Anything else over plain HTTP says to use TLS.
    for head in [
        format!("GET / HTTP/1.1\nHost: localhost:{port}"),
        format!("GET /connector.js HTTP/1.1\nHost: localhost:{port}"),
        upgrade_head(&format!("localhost:{port}"), &[]),
        upgrade_head(
            &format!("localhost:{port}"),
            &["Origin: https://crm.example.com"],
        ),
    ] {
        let r = raw_http(v4(d), &head).await;
        assert_eq!(r.status, 400, "{head}");
        assert!(
            r.body.contains("https://") && r.body.contains("wss://"),
            "{}",
            r.body
        );
        assert_eq!(r.header("upgrade"), None);
    }
    // A plain websocket client cannot connect either.
    let err = try_ws_connect(v4(d), &format!("localhost:{port}"), None)
        .await
        .expect_err("no websocket over plain HTTP on a WSS port");
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn wss_with_generated_pem() {
    let dir = tempfile::tempdir().unwrap();
    let created = make_certs(dir.path());
    let pem = TlsConfig {
        certificate_path: created.chain_path.clone(),
        key_path: Some(created.key_path.clone()),
        password: Secret::default(),
    };
    check_serves(pem, &created).await;
}

#[tokio::test]
async fn wss_with_generated_pfx() {
    let dir = tempfile::tempdir().unwrap();
    let created = make_certs(dir.path());
    check_serves(created.tls_config(), &created).await;
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let created = make_certs(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = make_certs(other_dir.path());
    let d = start_with(|c| {
        c.socket_type = SocketType::Wss;
        c.tls = Some(created.tls_config());
    })
    .await;
    let connector = client_trusting(&other.ca_path);
    let tcp = TcpStream::connect(v4(&d)).await.unwrap();
    let err = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect_err("untrusted certificate");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_pfx_password_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let created = make_certs(dir.path());
    let mut tls = created.tls_config();
    tls.password = Secret("not-the-password".into());
    let mut c = test_config();
    c.socket_type = SocketType::Wss;
    c.tls = Some(tls);
    let err = wsconnector::app::start(c, system_peers())
        .await
        .err()
        .expect("start fails");
    let text = err.to_string();
    assert!(text.contains("password"), "{text}");
    assert!(text.contains("localhost.pfx"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "password leaked: {text}"
    );
}

#[test]
fn binary_cert_create_then_check_config_and_wrong_password() {
    let bin = env!("CARGO_BIN_EXE_wsconnector");
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = std::process::Command::new(bin)
        .args(["cert", "create", "--dir"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("wsconnector-ca.pem"), "{printed}");
    for f in [
        "wsconnector-ca.pem",
        "localhost.pem",
        "localhost.key",
        "localhost.pfx",
    ] {
        assert!(certs.join(f).exists(), "{f}");
    }
    // A second run refuses to overwrite; --force renews.
    let again = std::process::Command::new(bin)
        .args(["cert", "create", "--dir"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let forced = std::process::Command::new(bin)
        .args(["cert", "create", "--force", "--dir"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    // check-config with PEM (no password needed) passes and names the certificate.
    let cfg = dir.path().join("config.xml");
    std::fs::write(
        &cfg,
        "<configuration><Socket-type>WSS</Socket-type><Socket-port>0</Socket-port><Certificate-path>certs/localhost.pem</Certificate-path><Key-path>certs/localhost.key</Key-path></configuration>",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("# certificate:"));
    // A .pfx with a wrong password: check-config and run both fail clearly.
    std::fs::write(
        &cfg,
        "<configuration><Socket-type>WSS</Socket-type><Socket-port>0</Socket-port><Certificate-path>certs/localhost.pfx</Certificate-path><Password>wrong-one</Password></configuration>",
    )
    .unwrap();
    for args in [vec!["check-config"], vec!["run", "--config"]] {
        let out = std::process::Command::new(bin)
            .args(&args)
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("password") && err.contains("localhost.pfx"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("wrong-one"), "password leaked: {err}");
    }
}
