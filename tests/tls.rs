//! WSS certificates end to end: `cert::create` writes the files, `server_config`
//! loads them (PEM in one file, PEM with Key-path, PKCS#12), and a real
//! tokio-rustls client that trusts only the generated CA completes handshakes
//! over loopback for every name a browser may use. Then every way loading can
//! fail, and the properties of the generated certificates.

#[path = "support/skip.rs"]
mod skip;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use wsconnector::config::{Secret, TlsConfig};
use wsconnector::tls::cert::{self, CertError, CreateOptions, Created};
use wsconnector::tls::{self, TlsError};
use x509_parser::extensions::{GeneralName, ParsedExtension};

const PASSWORD: &str = "correct horse battery";

fn create(dir: &Path) -> Created {
    cert::create(
        dir,
        &CreateOptions {
            pfx_password: Some(Secret(PASSWORD.to_string())),
            ..CreateOptions::default()
        },
    )
    .unwrap()
}

fn pem_one_file(c: &Created) -> TlsConfig {
    // localhost.pem holds the chain only; a one-file PEM is chain + key.
    let both = c.dir.join("both.pem");
    let text = std::fs::read_to_string(&c.chain_path).unwrap()
        + &std::fs::read_to_string(&c.key_path).unwrap();
    std::fs::write(&both, text).unwrap();
    TlsConfig {
        certificate_path: both,
        key_path: None,
        password: Secret::default(),
    }
}

fn pem_key_path(c: &Created) -> TlsConfig {
    TlsConfig {
        certificate_path: c.chain_path.clone(),
        key_path: Some(c.key_path.clone()),
        password: Secret::default(),
    }
}

fn pfx(c: &Created, password: &str) -> TlsConfig {
    TlsConfig {
        certificate_path: c.pfx_path.clone(),
        key_path: None,
        password: Secret(password.to_string()),
    }
}

fn client_trusting(ca_pem_path: &Path) -> TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(ca_pem_path).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Bind `ip:0`, serve one TLS connection that echoes what it reads, and
/// return the address. `None` when the address family is unavailable here.
async fn echo_server(config: Arc<rustls::ServerConfig>, ip: &str) -> Option<SocketAddr> {
    let listener = match TcpListener::bind((ip, 0)).await {
        Ok(l) => l,
        Err(e) => {
            skip::skipped(
                "TLS handshake on this address family",
                &format!("cannot bind {ip}: {e}"),
            );
            return None;
        }
    };
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // A client that refuses our certificate makes this fail: that is fine.
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let mut buf = [0u8; 5];
            if tls.read_exact(&mut buf).await.is_ok() {
                let _ = tls.write_all(&buf).await;
                let _ = tls.shutdown().await;
            }
        }
    });
    Some(addr)
}

/// Handshake as `name`, send "hello", expect it back; returns the TLS version used.
async fn exchange(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<rustls::ProtocolVersion, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector.connect(server_name, tcp).await?;
    tls.write_all(b"hello").await?;
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"hello");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    Ok(session.protocol_version().unwrap())
}

#[tokio::test]
async fn every_format_serves_every_loopback_name_to_a_client_trusting_only_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let connector = client_trusting(&created.ca_path);
    for (form, tls_config) in [
        ("PEM one file", pem_one_file(&created)),
        ("PEM + Key-path", pem_key_path(&created)),
        ("PKCS#12", pfx(&created, PASSWORD)),
    ] {
        let server = tls::server_config(&tls_config).unwrap_or_else(|e| panic!("{form}: {e}"));
        for (bind, name) in [
            ("127.0.0.1", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("::1", "::1"),
            ("::1", "localhost"),
        ] {
            let Some(addr) = echo_server(server.clone(), bind).await else {
                continue;
            };
            let version = exchange(&connector, addr, name)
                .await
                .unwrap_or_else(|e| panic!("{form}, {name} on {addr}: {e}"));
            assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
        }
    }
}

#[tokio::test]
async fn tls_1_2_clients_are_served() {
    // .NET Framework clients with SchUseStrongCrypto speak TLS 1.2.
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let server = tls::server_config(&pfx(&created, PASSWORD)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(tls_cert_der(&std::fs::read(&created.ca_path).unwrap()))
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let addr = echo_server(server, "127.0.0.1").await.unwrap();
    let version = exchange(&TlsConnector::from(Arc::new(config)), addr, "localhost")
        .await
        .unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
}

fn tls_cert_der(pem: &[u8]) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem).unwrap()
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(&dir.path().join("ours"));
    let other = create(&dir.path().join("theirs"));
    let server = tls::server_config(&pfx(&created, PASSWORD)).unwrap();
    let addr = echo_server(server, "127.0.0.1").await.unwrap();
    // Trusts a different wsconnector CA: ours must not be accepted.
    let err = exchange(&client_trusting(&other.ca_path), addr, "localhost")
        .await
        .unwrap_err();
    let inner = err.get_ref().map(|e| e.to_string()).unwrap_or_default();
    assert!(inner.contains("UnknownIssuer"), "{err:?}");
}

fn load_err(config: &TlsConfig) -> TlsError {
    match tls::load(config) {
        Ok(_) => panic!("{} should not load", config.certificate_path.display()),
        Err(e) => e,
    }
}

#[test]
fn wrong_pfx_password_is_named_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let err = load_err(&pfx(&created, "not-the-password"));
    assert!(matches!(err, TlsError::WrongPassword { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("wrong password") && msg.contains("localhost.pfx"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-password") && !format!("{err:?}").contains("not-the-password"));
}

#[test]
fn garbage_and_key_only_files_are_not_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let garbage = dir.path().join("garbage.pfx");
    std::fs::write(&garbage, b"this is not a certificate at all\x00\x01\x02").unwrap();
    let der = dir.path().join("localhost.cer");
    std::fs::write(
        &der,
        tls_cert_der(&std::fs::read(&created.chain_path).unwrap()),
    )
    .unwrap();
    for path in [garbage, created.key_path.clone(), der] {
        let err = load_err(&TlsConfig {
            certificate_path: path.clone(),
            key_path: None,
            password: Secret(PASSWORD.to_string()),
        });
        assert!(matches!(err, TlsError::NotACertificate { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("is not a certificate") && msg.contains(&path.display().to_string()),
            "{msg}"
        );
    }
}

#[test]
fn damaged_pfx_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let mut bytes = std::fs::read(&created.pfx_path).unwrap();
    let damaged = dir.path().join("damaged.pfx");
    // Cut the file: the outer structure is gone.
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&TlsConfig {
        certificate_path: damaged.clone(),
        key_path: None,
        password: Secret(PASSWORD.to_string()),
    });
    assert!(err.to_string().contains("damaged.pfx"), "{err}");
    // Flip a byte in the middle: the structure parses, the MAC does not match.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    let err = load_err(&TlsConfig {
        certificate_path: damaged,
        key_path: None,
        password: Secret(PASSWORD.to_string()),
    });
    assert!(
        matches!(
            err,
            TlsError::WrongPassword { .. }
                | TlsError::PasswordOrDamaged { .. }
                | TlsError::NotACertificate { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn pem_without_a_key_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let err = load_err(&TlsConfig {
        certificate_path: created.chain_path.clone(),
        key_path: None,
        password: Secret::default(),
    });
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    assert!(err.to_string().contains("no private key found in"), "{err}");
    assert!(err.to_string().contains("localhost.pem"), "{err}");
    // Key-path naming a file without a key: the same error, naming that file.
    let err = load_err(&TlsConfig {
        certificate_path: created.chain_path.clone(),
        key_path: Some(created.ca_path.clone()),
        password: Secret::default(),
    });
    assert!(matches!(err, TlsError::NoPrivateKey { ref path, .. } if *path == created.ca_path));
}

#[test]
fn a_key_from_another_certificate_is_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let ours = create(&dir.path().join("a"));
    let theirs = create(&dir.path().join("b"));
    let err = load_err(&TlsConfig {
        certificate_path: ours.chain_path.clone(),
        key_path: Some(theirs.key_path.clone()),
        password: Secret::default(),
    });
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("does not match"), "{msg}");
    assert!(
        msg.contains(&theirs.key_path.display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&ours.chain_path.display().to_string()),
        "{msg}"
    );
}

#[test]
fn encrypted_pem_keys_get_their_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("enc.key");
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let created = create(&dir.path().join("c"));
    let err = load_err(&TlsConfig {
        certificate_path: created.chain_path.clone(),
        key_path: Some(key),
        password: Secret::default(),
    });
    assert!(matches!(err, TlsError::EncryptedPemKey { .. }), "{err:?}");
}

#[test]
fn a_missing_file_is_named() {
    let path = PathBuf::from("/nonexistent/wsconnector/cert.pfx");
    let err = load_err(&TlsConfig {
        certificate_path: path.clone(),
        key_path: None,
        password: Secret::default(),
    });
    assert!(matches!(err, TlsError::Unreadable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent/wsconnector/cert.pfx"),
        "{err}"
    );
}

#[test]
fn expired_certificates_are_refused_and_expiring_ones_warned_about() {
    let now = time::OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let expired = cert::create(
        &dir.path().join("expired"),
        &CreateOptions {
            pfx_password: Some(Secret(PASSWORD.to_string())),
            validity_days: 30,
            valid_from: Some(now - time::Duration::days(40)),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let err = load_err(&pfx(&expired, PASSWORD));
    assert!(matches!(err, TlsError::Expired { .. }), "{err:?}");
    assert!(err.to_string().contains("expired on"), "{err}");

    let soon = cert::create(
        &dir.path().join("soon"),
        &CreateOptions {
            pfx_password: Some(Secret(PASSWORD.to_string())),
            validity_days: 30,
            valid_from: Some(now - time::Duration::days(20)),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let loaded = tls::load(&pfx(&soon, PASSWORD)).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("expires on"),
        "{:?}",
        loaded.warnings
    );

    let fresh = create(&dir.path().join("fresh"));
    let loaded = tls::load(&pfx(&fresh, PASSWORD)).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(
        loaded.subject.contains("CN=localhost"),
        "{}",
        loaded.subject
    );
    assert_eq!(
        loaded.not_after,
        fresh.not_after.replace_nanosecond(0).unwrap()
    );
}

#[cfg(unix)]
#[test]
fn files_are_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let created = create(&dir.path().join("new/certs"));
    for path in [
        &created.ca_path,
        &created.chain_path,
        &created.key_path,
        &created.pfx_path,
    ] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mode = std::fs::metadata(&created.dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let first = create(dir.path());
    let before = std::fs::read(&first.ca_path).unwrap();
    let err = cert::create(dir.path(), &CreateOptions::default()).unwrap_err();
    assert!(matches!(err, CertError::Exists(_)), "{err:?}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(&first.ca_path).unwrap(), before);

    let second = cert::create(
        dir.path(),
        &CreateOptions {
            force: true,
            ..CreateOptions::default()
        },
    )
    .unwrap();
    assert_ne!(std::fs::read(&second.ca_path).unwrap(), before);
    // The generated password opens the new .pfx.
    assert!(second.password_generated);
    assert_eq!(second.pfx_password.0.len(), 20);
    tls::load(&second.tls_config()).unwrap();
}

#[test]
fn the_ca_key_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&created.dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        if path != created.key_path {
            assert!(!text.contains("PRIVATE KEY"), "{}", path.display());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "localhost.key",
            "localhost.pem",
            "localhost.pfx",
            "wsconnector-ca.pem"
        ]
    );

    // localhost.key holds exactly one key, and it is the leaf's (server_config
    // checks the key against the leaf)...
    let key_text = std::fs::read_to_string(&created.key_path).unwrap();
    assert_eq!(key_text.matches("BEGIN").count(), 1);
    tls::load(&pem_key_path(&created)).unwrap();
    // ...and the .pfx holds that same single key.
    let archive = p12_archive(&created.pfx_path);
    assert_eq!(archive.keys.len(), 1);
    let key_der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key_text.as_bytes()).unwrap()
    };
    assert_eq!(archive.keys[0].key.as_der(), key_der.secret_der());
    assert_eq!(archive.certs.len(), 2, "leaf and CA");
}

fn p12_archive(path: &Path) -> p12_keystore::Pkcs12Archive {
    p12_keystore::Pkcs12Archive::from_pkcs12(&std::fs::read(path).unwrap(), PASSWORD).unwrap()
}

#[test]
fn the_ca_is_name_constrained_and_the_leaf_is_a_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let ca_der = tls_cert_der(&std::fs::read(&created.ca_path).unwrap());
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();

    // CA: a CA, path length 0, signs certificates and CRLs only.
    let bc = ca.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    assert!(ca.subject().to_string().contains("wsconnector local CA ("));
    // Name constraints: exactly DNS localhost, 127.0.0.1/32, ::1/128, critical.
    let nc = ca
        .extensions()
        .iter()
        .find(|e| matches!(e.parsed_extension(), ParsedExtension::NameConstraints(_)))
        .expect("name constraints");
    assert!(nc.critical);
    let ParsedExtension::NameConstraints(nc) = nc.parsed_extension() else {
        unreachable!()
    };
    assert!(nc.excluded_subtrees.is_none());
    let permitted: Vec<String> = nc
        .permitted_subtrees
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| match &s.base {
            GeneralName::DNSName(d) => format!("dns:{d}"),
            GeneralName::IPAddress(b) => format!("ip:{b:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    assert_eq!(
        permitted,
        [
            "dns:localhost".to_string(),
            format!("ip:{:?}", [127u8, 0, 0, 1, 255, 255, 255, 255]),
            format!("ip:{:?}", [v6, [255u8; 16]].concat()),
        ]
    );

    // Leaf: first in localhost.pem, issued by the CA, not a CA, serverAuth,
    // the three loopback names, at most 825 days.
    let chain = {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_file_iter(&created.chain_path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], ca_der, "the chain ends with the CA");
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    assert_eq!(leaf.issuer(), ca.subject());
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any);
    assert!(leaf.key_usage().unwrap().unwrap().value.digital_signature());
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
            }
            GeneralName::IPAddress(b) => {
                let b: [u8; 16] = (*b).try_into().unwrap();
                std::net::Ipv6Addr::from(b).to_string()
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(sans, ["localhost", "127.0.0.1", "::1"]);
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, i64::from(cert::MAX_VALIDITY_DAYS));
    assert!(days <= 825);
}

#[test]
fn instructions_show_what_to_trust_and_the_config_lines() {
    let dir = tempfile::tempdir().unwrap();
    let generated = cert::create(dir.path(), &CreateOptions::default()).unwrap();
    let text = generated.instructions();
    for needle in [
        "wsconnector-ca.pem",
        "<Socket-type>WSS</Socket-type>",
        &format!(
            "<Certificate-path>{}</Certificate-path>",
            generated.pfx_path.display()
        ),
        &format!("<Password>{}</Password>", generated.pfx_password.0),
        "<Key-path>",
        "TLS 1.2",
        "SchUseStrongCrypto",
        "shown only this once",
        "wsconnector cert trust --dir",
        "wsconnector cert renew",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // A password the user chose is never printed back.
    let chosen = create(&dir.path().join("chosen"));
    let text = chosen.instructions();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{chosen:?}").contains(PASSWORD));
}

/// The system `openssl`, if installed, reads what we wrote: the CA's
/// constraints, the chain, and the .pfx with its password.
#[test]
fn openssl_agrees_when_available() {
    let Ok(version) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        skip::skipped(
            "openssl cross-check of generated certificates",
            "openssl is not installed",
        );
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let created = create(dir.path());
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .env("WSC_PFX_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openssl {args:?}:\n{text}");
        text
    };
    let ca = created.ca_path.to_str().unwrap();
    let text = run(&["x509", "-in", ca, "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Permitted:"), "{text}");
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("IP:127.0.0.1/255.255.255.255"), "{text}");

    let leaf = run(&[
        "x509",
        "-in",
        created.chain_path.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    assert!(leaf.contains("TLS Web Server Authentication"), "{leaf}");
    assert!(
        leaf.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"),
        "{leaf}"
    );

    let verified = run(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca,
        created.chain_path.to_str().unwrap(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");

    let p12 = run(&[
        "pkcs12",
        "-in",
        created.pfx_path.to_str().unwrap(),
        "-passin",
        "env:WSC_PFX_PASSWORD",
        "-nokeys",
    ]);
    assert_eq!(p12.matches("BEGIN CERTIFICATE").count(), 2, "{p12}");
}

/// Serve HTTPS on `ip:0` until the test ends: every request gets a small page
/// with `marker`. `None` when the address family is unavailable here.
async fn https_server(
    config: Arc<rustls::ServerConfig>,
    ip: &str,
    marker: &'static str,
) -> Option<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await.ok()?;
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("<html><body>{marker}</body></html>");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Some(addr)
}

/// What headless Chromium renders for `url` with `home` as its HOME (where it
/// finds the NSS database it trusts).
async fn chromium_dom(chromium: &Path, home: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .env("HOME", home)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), child)
        .await
        .expect("chromium did not finish within 90 s")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A browser, not only rustls, accepts the name-constrained CA and the leaf:
/// Chromium with the CA in its NSS database loads pages from our rustls
/// configuration at localhost, 127.0.0.1 and [::1]; without the CA it does
/// not. Skipped when `chromium` or `certutil` (libnss3-tools) is missing.
#[tokio::test]
async fn chromium_trusting_the_ca_loads_pages_when_available() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let certutil_ok = std::process::Command::new("certutil")
        .arg("-H")
        .output()
        .is_ok();
    let Some(chromium) = chromium.filter(|_| certutil_ok) else {
        skip::skipped(
            "Chromium trusts the generated CA",
            "chromium or certutil (libnss3-tools) is not installed",
        );
        return;
    };
    const MARKER: &str = "wsconnector-tls-ok";
    let dir = tempfile::tempdir().unwrap();
    let created = create(&dir.path().join("certs"));
    let server = tls::server_config(&pfx(&created, PASSWORD)).unwrap();

    let trusting_home = dir.path().join("home-trusting");
    let other_home = dir.path().join("home-other");
    for (home, trust) in [(&trusting_home, true), (&other_home, false)] {
        let db = home.join(".pki/nssdb");
        std::fs::create_dir_all(&db).unwrap();
        let db = format!("sql:{}", db.display());
        let status = std::process::Command::new("certutil")
            .args(["-d", &db, "-N", "--empty-password"])
            .status()
            .unwrap();
        assert!(status.success());
        if trust {
            let status = std::process::Command::new("certutil")
                .args([
                    "-d",
                    &db,
                    "-A",
                    "-t",
                    "C,,",
                    "-n",
                    "wsconnector test CA",
                    "-i",
                ])
                .arg(&created.ca_path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    let v4 = https_server(server.clone(), "127.0.0.1", MARKER)
        .await
        .unwrap();
    let mut urls = vec![
        format!("https://localhost:{}/", v4.port()),
        format!("https://127.0.0.1:{}/", v4.port()),
    ];
    match https_server(server.clone(), "::1", MARKER).await {
        Some(v6) => urls.push(format!("https://[::1]:{}/", v6.port())),
        None => skip::skipped("Chromium over [::1]", "no IPv6 loopback"),
    }
    for url in &urls {
        let dom = chromium_dom(&chromium, &trusting_home, url).await;
        assert!(dom.contains(MARKER), "{url} with the CA trusted:\n{dom}");
        let dom = chromium_dom(&chromium, &other_home, url).await;
        assert!(
            !dom.contains(MARKER) && dom.contains("ERR_CERT_AUTHORITY_INVALID"),
            "{url} without the CA must fail as untrusted:\n{dom}"
        );
    }
}
