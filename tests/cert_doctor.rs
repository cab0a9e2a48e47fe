//! `wsconnector cert check`, the certificate doctor, with real files, real
//! NSS databases (certutil from libnss3-tools) in temporary homes, a system
//! store under a temporary sysroot, and a real daemon on an ephemeral port:
//! one test per finding, each asserting the finding's code and its fix, plus
//! the binary's exit status and the expiry field of `/health`.

// certutil here is NSS's (libnss3-tools); Windows has another program of
// that name, and the Windows stores are not scanned.
#![cfg(unix)]

mod common;
#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use time::{Duration, OffsetDateTime};
use wsconnector::config::SocketType;
use wsconnector::tls::cert::{create, CreateOptions, Created};
use wsconnector::tls::doctor::{check, CheckOptions, CheckReport, Severity};
use wsconnector::tls::trust::{self, Target, TrustOptions};

/// The binary: `$WSCONNECTOR_BIN` when set (a copy that a concurrent build
/// cannot replace), else cargo's.
fn bin() -> String {
    std::env::var("WSCONNECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsconnector").to_string())
}

/// certutil is needed for the NSS stores; without it the test says so.
fn have_certutil(test: &str) -> bool {
    let ok = Command::new("certutil").arg("-H").output().is_ok();
    if !ok {
        skip::skipped(
            test,
            "certutil not installed (apt-get install libnss3-tools)",
        );
    }
    ok
}

/// A temporary home and sysroot, and certificates made by `cert create`.
struct Fixture {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    sysroot: PathBuf,
    certs: Created,
}

fn fixture_with(opts: CreateOptions) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let sysroot = tmp.path().join("root");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&sysroot).unwrap();
    let certs = create(&tmp.path().join("certs"), &opts).unwrap();
    Fixture {
        _tmp: tmp,
        home,
        sysroot,
        certs,
    }
}

fn fixture() -> Fixture {
    fixture_with(CreateOptions::default())
}

impl Fixture {
    fn stores(&self) -> TrustOptions {
        TrustOptions {
            only: Some(vec![Target::Nss]),
            machine: false,
            home: self.home.clone(),
            sysroot: self.sysroot.clone(),
            echo: false,
        }
    }

    fn trust_nss(&self) {
        let r = trust::trust(&self.certs.dir, &self.stores()).unwrap();
        assert!(!r.failed(), "{r}");
    }

    /// The doctor's options for these certificates, probing `port`.
    fn options(&self, port: u16) -> CheckOptions {
        CheckOptions {
            certs_dir: self.certs.dir.clone(),
            tls: Some(self.certs.tls_config()),
            port,
            stores: self.stores(),
            now: OffsetDateTime::now_utc(),
        }
    }

    fn nss_db(&self) -> PathBuf {
        self.home.join(".pki/nssdb")
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run the (blocking) doctor off the async runtime.
async fn run_check(opts: CheckOptions) -> CheckReport {
    tokio::task::spawn_blocking(move || check(&opts))
        .await
        .unwrap()
}

fn codes(r: &CheckReport, severity: Severity) -> Vec<&'static str> {
    r.findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.code)
        .collect()
}

/// A self-signed certificate (PEM) with `cn`, optionally CA:TRUE and SANs.
fn self_signed_pem(cn: &str, ca: bool, sans: &[&str]) -> String {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p.self_signed(&KeyPair::generate().unwrap()).unwrap().pem()
}

/// Put `pem` into an NSS database as a trusted CA.
fn nss_add(db: &Path, nickname: &str, pem: &str) {
    let file = db.join(format!("{nickname}.pem"));
    std::fs::write(&file, pem).unwrap();
    let db_arg = format!("sql:{}", db.display());
    if !db.join("cert9.db").exists() {
        let s = Command::new("certutil")
            .args(["-d", &db_arg, "-N", "--empty-password"])
            .status()
            .unwrap();
        assert!(s.success());
    }
    let s = Command::new("certutil")
        .args(["-d", &db_arg, "-A", "-t", "C,,", "-n", nickname, "-i"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(s.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_setup_has_no_problem_and_sees_our_certificate_served() {
    if !have_certutil("cert doctor healthy setup") {
        return;
    }
    let f = fixture();
    f.trust_nss();
    let tls = f.certs.tls_config();
    let daemon = start_with(|c| {
        c.socket_type = SocketType::Wss;
        c.tls = Some(tls);
    })
    .await;
    let r = run_check(f.options(daemon.port)).await;
    assert_eq!(r.problems(), 0, "{r}");
    let ok = codes(&r, Severity::Ok);
    for code in [
        "ca-trusted",
        "leaf-valid",
        "served-ours",
        "no-dangerous-roots",
        "key-private",
    ] {
        assert!(ok.contains(&code), "{code} missing:\n{r}");
    }
    assert!(
        r.with_code("ca-trusted")[0].message.contains(".pki/nssdb"),
        "{r}"
    );
    daemon.shutdown();
    daemon.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_certificate_on_our_port_is_reported_as_interception() {
    if !have_certutil("cert doctor interception") {
        return;
    }
    // The daemon serves certificate B (as an antivirus or proxy would serve
    // its own); the configuration names certificate A.
    let a = fixture();
    a.trust_nss();
    let b = fixture();
    let tls_b = b.certs.tls_config();
    let daemon = start_with(|c| {
        c.socket_type = SocketType::Wss;
        c.tls = Some(tls_b);
    })
    .await;
    let r = run_check(a.options(daemon.port)).await;
    let found = r.with_code("served-other");
    assert_eq!(found.len(), 1, "{r}");
    assert_eq!(found[0].severity, Severity::Problem);
    assert!(
        found[0].message.contains(&b.certs.ca_common_name),
        "names the intruder's issuer: {r}"
    );
    assert!(
        found[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("HTTPS/SSL scanning"),
        "{r}"
    );
    daemon.shutdown();
    daemon.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_without_tls_is_a_problem_and_no_daemon_is_a_note() {
    if !have_certutil("cert doctor no TLS") {
        return;
    }
    let f = fixture();
    f.trust_nss();
    let daemon = start_with(|_| {}).await; // plain WS on the port
    let r = run_check(f.options(daemon.port)).await;
    assert_eq!(codes(&r, Severity::Problem), vec!["served-not-tls"], "{r}");
    daemon.shutdown();
    daemon.wait().await;

    let r = run_check(f.options(free_port())).await;
    assert_eq!(r.problems(), 0, "{r}");
    assert_eq!(r.with_code("not-running").len(), 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_ca_is_a_problem_with_the_trust_command() {
    if !have_certutil("cert doctor untrusted CA") {
        return;
    }
    let f = fixture();
    let r = run_check(f.options(free_port())).await;
    let found = r.with_code("ca-untrusted");
    assert_eq!(found.len(), 1, "{r}");
    assert!(
        found[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("wsconnector cert trust"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_warned_sixty_days_ahead_and_expired_is_a_problem() {
    if !have_certutil("cert doctor expiry") {
        return;
    }
    let now = OffsetDateTime::now_utc();
    let expiring = fixture_with(CreateOptions {
        valid_from: Some(now - Duration::days(795)),
        ..CreateOptions::default()
    });
    expiring.trust_nss();
    let r = run_check(expiring.options(free_port())).await;
    let found = r.with_code("leaf-expiring");
    assert_eq!(found.len(), 1, "{r}");
    assert!(found[0].message.contains("29 days left"), "{r}");
    assert!(
        found[0].fix.as_deref().unwrap().contains("cert renew"),
        "{r}"
    );

    let expired = fixture_with(CreateOptions {
        valid_from: Some(now - Duration::days(830)),
        ..CreateOptions::default()
    });
    expired.trust_nss();
    let r = run_check(expired.options(free_port())).await;
    assert_eq!(r.with_code("leaf-expired").len(), 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_from_another_ca_is_a_problem() {
    if !have_certutil("cert doctor leaf from another CA") {
        return;
    }
    let a = fixture();
    a.trust_nss();
    let b = fixture();
    let mut opts = a.options(free_port());
    opts.tls = Some(b.certs.tls_config());
    let r = run_check(opts).await;
    assert_eq!(r.with_code("leaf-not-from-ca").len(), 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_own_ca_vendor_root_and_ca_true_leaf_are_reported_with_their_removal() {
    if !have_certutil("cert doctor dangerous roots") {
        return;
    }
    let f = fixture();
    f.trust_nss();
    let db = f.nss_db();
    // An older wsconnector CA, the old vendor root, a leaf imported as a root.
    let old = fixture();
    let old_pem = std::fs::read_to_string(&old.certs.ca_path).unwrap();
    nss_add(&db, "old wsconnector", &old_pem);
    nss_add(
        &db,
        "vendor",
        &self_signed_pem("IdealSystems Root CA", true, &[]),
    );
    nss_add(
        &db,
        "leaf as root",
        &self_signed_pem("localhost", true, &["localhost", "127.0.0.1"]),
    );
    // A harmless root and a plain (CA:FALSE) localhost leaf are not reported.
    nss_add(
        &db,
        "public root",
        &self_signed_pem("Some Root CA", true, &[]),
    );

    let r = run_check(f.options(free_port())).await;
    for (code, nick) in [
        ("stale-ca", "old wsconnector"),
        ("vendor-root", "vendor"),
        ("ca-true-leaf", "leaf as root"),
    ] {
        let found = r.with_code(code);
        assert_eq!(found.len(), 1, "{code}:\n{r}");
        assert_eq!(found[0].severity, Severity::Problem);
        let fix = found[0].fix.as_deref().unwrap();
        assert!(
            fix.contains(&format!("-D -n \"{nick}\"")),
            "{code} fix names the entry: {fix}"
        );
    }
    assert_eq!(r.problems(), 3, "{r}");
    assert!(r.with_code("no-dangerous-roots").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_root_in_the_system_store_is_reported() {
    if !have_certutil("cert doctor system store") {
        return;
    }
    let f = fixture();
    f.trust_nss();
    let bundle = f.sysroot.join("etc/ssl/certs/ca-certificates.crt");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    std::fs::write(
        &bundle,
        self_signed_pem("Some Root CA", true, &[]) + &self_signed_pem("IdealSystems CA", true, &[]),
    )
    .unwrap();
    let r = run_check(f.options(free_port())).await;
    let found = r.with_code("vendor-root");
    assert_eq!(found.len(), 1, "{r}");
    assert!(found[0].message.contains("system store"), "{r}");
    assert!(
        found[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("update-ca-certificates"),
        "{r}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_readable_by_others_is_a_problem_with_chmod_as_fix() {
    use std::os::unix::fs::PermissionsExt;
    if !have_certutil("cert doctor key permissions") {
        return;
    }
    let f = fixture();
    f.trust_nss();
    std::fs::set_permissions(&f.certs.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run_check(f.options(free_port())).await;
    let found = r.with_code("key-readable");
    assert_eq!(found.len(), 1, "only the .key is open: {r}");
    assert!(
        found[0].message.contains("localhost.key") && found[0].message.contains("644"),
        "{r}"
    );
    assert_eq!(
        found[0].fix.as_deref(),
        Some(format!("chmod 600 {}", f.certs.key_path.display()).as_str())
    );
}

#[test]
fn the_binary_exits_non_zero_on_a_problem_and_zero_when_healthy() {
    if !have_certutil("cert check exit status") {
        return;
    }
    let f = fixture();
    let config = f.certs.dir.parent().unwrap().join("config.xml");
    std::fs::write(
        &config,
        format!(
            "<configuration><Socket-port>{}</Socket-port></configuration>",
            free_port()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(bin())
            .args(["--config"])
            .arg(&config)
            .args(["cert", "check", "--dir"])
            .arg(&f.certs.dir)
            .arg("--sysroot")
            .arg(&f.sysroot)
            .env("HOME", &f.home)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "untrusted CA:\n{stdout}");
    assert!(
        stdout.contains("PROBLEM [ca-untrusted]") && stdout.contains("fix: wsconnector cert trust"),
        "{stdout}"
    );

    f.trust_nss();
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no problem found"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_certificate_expiry_and_its_warning() {
    let f = fixture_with(CreateOptions {
        valid_from: Some(OffsetDateTime::now_utc() - Duration::days(795)),
        ..CreateOptions::default()
    });
    let tls = f.certs.tls_config();
    let daemon = start_with(|c| {
        c.socket_type = SocketType::Wss;
        c.tls = Some(tls);
    })
    .await;
    assert_eq!(
        daemon
            .state
            .certificate_status()
            .map(|s| (s.days_left, s.warning)),
        Some((29, true))
    );
    let body = https_get(daemon.port, &f.certs.ca_path, "/health").await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["certificate"]["daysLeft"], 29, "{health}");
    assert_eq!(health["certificate"]["warning"], true, "{health}");
    assert!(
        health["certificate"]["notAfter"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{health}"
    );
    daemon.shutdown();
    daemon.wait().await;

    // Plain WS has no certificate field.
    let daemon = start_with(|_| {}).await;
    assert_eq!(daemon.state.certificate_status(), None);
    daemon.shutdown();
    daemon.wait().await;
}

/// GET `path` over TLS from 127.0.0.1:`port`, trusting only `ca`; the body.
async fn https_get(port: u16, ca: &Path, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = String::new();
    tokio::time::timeout(DEADLINE, tls.read_to_string(&mut resp))
        .await
        .unwrap()
        .ok();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.trim().to_string()
}

#[test]
fn the_daemon_logs_the_renewal_warning_at_start() {
    use std::io::{BufRead, BufReader};
    use std::time::Instant;

    let f = fixture_with(CreateOptions {
        valid_from: Some(OffsetDateTime::now_utc() - Duration::days(795)),
        ..CreateOptions::default()
    });
    let config = f.certs.dir.parent().unwrap().join("config.xml");
    std::fs::write(
        &config,
        format!(
            "<configuration><Socket-port>0</Socket-port><Socket-type>WSS</Socket-type>\
             <Certificate-path>{}</Certificate-path><Key-path>{}</Key-path></configuration>",
            f.certs.chain_path.display(),
            f.certs.key_path.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Lines arrive on a thread; the test polls them under a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains("WARN")
                    && line.contains("29 days left")
                    && line.contains("wsconnector cert renew");
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no renewal warning in the log:\n{}", seen.join("\n"));
}
