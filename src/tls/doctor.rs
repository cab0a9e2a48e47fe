//! `wsconnector cert check`, the certificate doctor: everything that makes
//! `wss://localhost` fail in a browser, checked on this machine, each problem
//! printed with its fix.
//!
//! - where our CA is trusted (each store), or that it is trusted nowhere;
//! - the server certificate: loads, expiry (warned 60 days ahead), issued by
//!   the CA beside it;
//! - whether the certificate served on our port is ours: antivirus HTTPS
//!   scanning and TLS-inspecting proxies answer with their own, which
//!   browsers refuse for localhost;
//! - whether a dangerous certificate is trusted: an older wsconnector CA, the
//!   old vendor root (IdealSystems, whose key shipped with every install), or
//!   a `CA:TRUE` certificate for localhost without name constraints (a leaf
//!   imported as a root: whoever has its key can impersonate any site);
//! - whether the private key is readable by other users.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use time::OffsetDateTime;

use super::cert::{CA_FILE, KEY_FILE, PFX_FILE};
use super::expiry::CertificateStatus;
use super::leaf_check::LeafCheck;
use super::load::format_utc;
use super::trust::{self, CaCert, TrustOptions};
use crate::config::TlsConfig;

/// How long the served-certificate probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Subject or issuer text that marks the old WSSConn.exe vendor root.
const VENDOR_ROOT_MARKERS: &[&str] = &["idealsystems", "ideal systems"];

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// All right.
    Ok,
    /// Worth knowing; not a failure.
    Note,
    /// Something is wrong; `cert check` exits non-zero.
    Problem,
}

/// One thing the doctor found.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Stable identifier (tests and scripts match on it), e.g. `served-other`.
    pub code: &'static str,
    /// What was found.
    pub message: String,
    /// What to do about it (problems always have one).
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok     ",
            Severity::Note => "note   ",
            Severity::Problem => "PROBLEM",
        };
        write!(f, "{tag} [{}] {}", self.code, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n        fix: {fix}")?;
        }
        Ok(())
    }
}

/// Everything `cert check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The findings, in the order checked.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// The number of problems (non-zero exit when > 0).
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    /// The findings with this code.
    pub fn with_code(&self, code: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.code == code).collect()
    }

    fn ok(&mut self, code: &'static str, message: impl Into<String>) {
        self.add(Severity::Ok, code, message.into(), None);
    }

    fn note(&mut self, code: &'static str, message: impl Into<String>) {
        self.add(Severity::Note, code, message.into(), None);
    }

    fn problem(&mut self, code: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.add(Severity::Problem, code, message.into(), Some(fix.into()));
    }

    fn add(
        &mut self,
        severity: Severity,
        code: &'static str,
        message: String,
        fix: Option<String>,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            message,
            fix,
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        match self.problems() {
            0 => writeln!(f, "no problem found"),
            n => writeln!(f, "{n} problem(s) found"),
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The folder of `cert create` (the CA to look for, the key files).
    pub certs_dir: PathBuf,
    /// The configured server certificate (`None` when the daemon runs plain WS).
    pub tls: Option<TlsConfig>,
    /// The daemon's port, probed on 127.0.0.1.
    pub port: u16,
    /// Which stores to look in (home, sysroot).
    pub stores: TrustOptions,
    /// The time to check expiry against.
    pub now: OffsetDateTime,
}

/// Run every check.
pub fn check(opts: &CheckOptions) -> CheckReport {
    let mut r = CheckReport::default();
    let ca = check_ca(opts, &mut r);
    let leaf = check_leaf(opts, ca.as_ref(), &mut r);
    if let Some(leaf) = &leaf {
        check_served(opts.port, leaf, &mut r);
    }
    check_dangerous_roots(opts, ca.as_ref(), &mut r);
    check_key_permissions(opts, &mut r);
    r
}

fn check_ca(opts: &CheckOptions, r: &mut CheckReport) -> Option<CaCert> {
    let path = opts.certs_dir.join(CA_FILE);
    let ca = match CaCert::read(&path) {
        Ok(ca) => ca,
        Err(e) => {
            r.problem(
                "ca-missing",
                e.to_string(),
                "create the certificates: wsconnector cert create (then cert trust)",
            );
            return None;
        }
    };
    let places = trust::trusted_in(&ca, &opts.stores);
    if places.is_empty() {
        r.problem(
            "ca-untrusted",
            format!(
                "the CA \"{}\" is trusted in no store browsers read",
                ca.common_name
            ),
            "wsconnector cert trust (as root too, for the system store and Firefox policy)",
        );
    }
    for place in places {
        r.ok("ca-trusted", format!("the CA is trusted in {place}"));
    }
    Some(ca)
}

/// The configured leaf (DER), when it loads.
fn check_leaf(
    opts: &CheckOptions,
    ca: Option<&CaCert>,
    r: &mut CheckReport,
) -> Option<CertificateDer<'static>> {
    let Some(tls) = &opts.tls else {
        r.note(
            "plain-ws",
            "Socket-type is WS: no certificate in use (pages use ws://127.0.0.1)",
        );
        return None;
    };
    let loaded = match super::load_at(tls, opts.now) {
        Ok(l) => l,
        Err(super::TlsError::Expired { path, not_after }) => {
            r.problem(
                "leaf-expired",
                format!(
                    "the certificate in {} expired on {}",
                    path.display(),
                    format_utc(not_after)
                ),
                "wsconnector cert renew, then restart wsconnector",
            );
            return None;
        }
        Err(e) => {
            r.problem(
                "leaf-unusable",
                e.to_string(),
                "fix Certificate-path/Key-path/Password in config.xml, or wsconnector cert create",
            );
            return None;
        }
    };
    let status = CertificateStatus::at(loaded.not_after, opts.now);
    if status.warning {
        r.problem(
            "leaf-expiring",
            format!(
                "the certificate expires on {} ({} days left)",
                format_utc(loaded.not_after),
                status.days_left
            ),
            "wsconnector cert renew (makes and trusts a new CA), then restart wsconnector",
        );
    } else {
        r.ok(
            "leaf-valid",
            format!(
                "the certificate {} is valid until {} ({} days left)",
                loaded.subject,
                format_utc(loaded.not_after),
                status.days_left
            ),
        );
    }
    if let Some(ca) = ca {
        if !issued_by(&loaded.leaf_der, &ca.der) {
            r.problem(
                "leaf-not-from-ca",
                format!(
                    "the configured certificate was not issued by the CA in {} (\"{}\"): \
                     trusting that CA does not make it trusted",
                    ca.path.display(),
                    ca.common_name
                ),
                "point Certificate-path at the files of the same `cert create`, or run \
                 wsconnector cert renew",
            );
        }
    }
    Some(loaded.leaf_der)
}

/// True when `leaf` names `ca` as its issuer: same distinguished name (ours
/// carry a random id) and, when both are present, the leaf's authority key
/// identifier is the CA's subject key identifier.
fn issued_by(leaf: &[u8], ca: &[u8]) -> bool {
    use x509_parser::extensions::ParsedExtension;

    let (Ok((_, leaf)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(leaf),
        x509_parser::parse_x509_certificate(ca),
    ) else {
        return false;
    };
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    let ski = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
    let keys_match = match (aki, ski) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    };
    leaf.issuer().as_raw() == ca.subject().as_raw() && keys_match
}

/// What answered on the port.
#[derive(Debug)]
enum Served {
    /// Nothing listens.
    NotRunning(String),
    /// Something answered but not with TLS.
    NoTls(String),
    /// This certificate.
    Cert(CertificateDer<'static>),
}

/// Connect to 127.0.0.1:`port` as a browser would (SNI localhost) and take
/// the certificate it presents.
fn probe(port: u16) -> Served {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(LeafCheck::recording(provider.clone()));
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth(),
        Err(e) => return Served::NoTls(e.to_string()),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut sock = match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
        Ok(s) => s,
        Err(e) => return Served::NotRunning(e.to_string()),
    };
    let _ = sock.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = sock.set_write_timeout(Some(PROBE_TIMEOUT));
    let name = ServerName::try_from("localhost").map(|n| n.to_owned());
    let conn = name.map_err(|e| e.to_string()).and_then(|n| {
        rustls::ClientConnection::new(Arc::new(config), n).map_err(|e| e.to_string())
    });
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => return Served::NoTls(e),
    };
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    // A request completes the handshake; its answer does not matter.
    let result = tls
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .and_then(|()| tls.read(&mut [0u8; 1]).map(drop));
    let seen = recorder.seen();
    match (seen, result) {
        (Some(cert), _) => Served::Cert(cert),
        (None, Err(e)) => Served::NoTls(e.to_string()),
        (None, Ok(())) => Served::NoTls("no certificate presented".into()),
    }
}

fn check_served(port: u16, ours: &CertificateDer<'_>, r: &mut CheckReport) {
    match probe(port) {
        Served::NotRunning(e) => r.note(
            "not-running",
            format!(
                "nothing answers on 127.0.0.1:{port} ({e}): start wsconnector and check again \
                 to detect TLS interception"
            ),
        ),
        Served::NoTls(e) => r.problem(
            "served-not-tls",
            format!("127.0.0.1:{port} does not complete a TLS handshake ({e})"),
            "check Socket-type/Socket-port and that no other program uses the port",
        ),
        Served::Cert(cert) if cert.as_ref() == ours.as_ref() => r.ok(
            "served-ours",
            format!("127.0.0.1:{port} serves our certificate (no TLS interception)"),
        ),
        Served::Cert(cert) => {
            let who = describe(&cert);
            r.problem(
                "served-other",
                format!(
                    "127.0.0.1:{port} serves another certificate ({who}): antivirus HTTPS \
                     scanning or a TLS-inspecting proxy intercepts loopback traffic, or another \
                     program holds the port"
                ),
                format!(
                    "exclude 127.0.0.1, ::1 and localhost port {port} (or wsconnector.exe) from \
                     HTTPS/SSL scanning in the antivirus or proxy (docs/deployment.md)"
                ),
            );
        }
    }
}

/// `subject, issued by issuer` for messages.
fn describe(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => format!("{}, issued by {}", c.subject(), c.issuer()),
        Err(_) => "unparsable certificate".into(),
    }
}

/// Why a trusted certificate is dangerous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suspect {
    /// A wsconnector CA other than the current one.
    StaleOwnCa(String),
    /// The old WSSConn.exe vendor root (or a certificate it issued).
    VendorRoot(String),
    /// `CA:TRUE`, valid for loopback names, without name constraints.
    LoopbackCaTrue(String),
}

/// Classify one trusted certificate (`None`: nothing wrong with it).
pub fn classify(der: &[u8], ours: Option<&[u8]>) -> Option<Suspect> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};

    if ours == Some(der) {
        return None;
    }
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = c.subject().to_string();
    let issuer = c.issuer().to_string();
    let text = format!("{subject} {issuer}").to_ascii_lowercase();
    if VENDOR_ROOT_MARKERS.iter().any(|m| text.contains(m)) {
        return Some(Suspect::VendorRoot(subject));
    }
    if subject.contains("wsconnector local CA") {
        return Some(Suspect::StaleOwnCa(subject));
    }
    let is_ca = c
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    let constrained = c
        .extensions()
        .iter()
        .any(|e| matches!(e.parsed_extension(), ParsedExtension::NameConstraints(_)));
    let loopback_san = c
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value.general_names.iter().any(|n| match n {
                GeneralName::DNSName(d) => d.eq_ignore_ascii_case("localhost"),
                GeneralName::IPAddress(ip) => {
                    *ip == [127, 0, 0, 1] || *ip == std::net::Ipv6Addr::LOCALHOST.octets()
                }
                _ => false,
            })
        });
    let loopback_cn = c.subject().iter_common_name().any(|cn| {
        cn.as_str()
            .is_ok_and(|s| s.eq_ignore_ascii_case("localhost") || s == "127.0.0.1")
    });
    (is_ca && !constrained && (loopback_san || loopback_cn))
        .then_some(Suspect::LoopbackCaTrue(subject))
}

// Only the Unix stores are scanned (see check_dangerous_roots).
#[cfg(not(windows))]
fn report_suspect(r: &mut CheckReport, suspect: Suspect, place: &str, remove: String) {
    match suspect {
        Suspect::StaleOwnCa(s) => r.problem(
            "stale-ca",
            format!("an older wsconnector CA is still trusted in {place}: {s}"),
            format!("remove it: {remove} (or `wsconnector cert untrust` from its folder)"),
        ),
        Suspect::VendorRoot(s) => r.problem(
            "vendor-root",
            format!(
                "the old WSSConn.exe vendor certificate is trusted in {place}: {s}; its private \
                 key shipped with every installation, so anyone can sign with it"
            ),
            format!("remove it: {remove}"),
        ),
        Suspect::LoopbackCaTrue(s) => r.problem(
            "ca-true-leaf",
            format!(
                "a localhost certificate with CA:TRUE and no name constraints is trusted in \
                 {place}: {s}; whoever has its key can impersonate any web site"
            ),
            format!("remove it: {remove}; use `wsconnector cert create` instead"),
        ),
    }
}

fn check_dangerous_roots(opts: &CheckOptions, ca: Option<&CaCert>, r: &mut CheckReport) {
    let ours = ca.map(|c| c.der.as_slice());
    let before = r.problems();
    #[cfg(not(windows))]
    {
        use super::trust::nss;
        for db in nss::user_databases(&opts.stores.home) {
            if !db.join("cert9.db").exists() {
                continue;
            }
            let Ok(entries) = nss::list(&db) else {
                continue;
            };
            for e in entries.into_iter().filter(nss::Entry::trusted_for_tls) {
                for der in nss::certs_named(&db, &e.nickname).unwrap_or_default() {
                    if let Some(s) = classify(&der, ours) {
                        let remove =
                            format!("certutil -d sql:{} -D -n \"{}\"", db.display(), e.nickname);
                        report_suspect(r, s, &format!("NSS database {}", db.display()), remove);
                    }
                }
            }
        }
        let bundle = opts
            .stores
            .sysroot
            .join("etc/ssl/certs/ca-certificates.crt");
        if let Ok(bytes) = std::fs::read(&bundle) {
            for der in trust::all_pem_certs(&bytes) {
                if let Some(s) = classify(&der, ours) {
                    let remove = "delete its file from /usr/local/share/ca-certificates (or \
                                  /usr/share/ca-certificates + /etc/ca-certificates.conf), then \
                                  sudo update-ca-certificates --fresh"
                        .to_string();
                    report_suspect(r, s, &format!("system store {}", bundle.display()), remove);
                }
            }
        }
    }
    #[cfg(windows)]
    {
        let _ = (opts, ours);
        r.note(
            "roots-not-scanned",
            "the Windows Root stores are not scanned: look in certmgr.msc for \"IdealSystems\", \
             older \"wsconnector local CA\" entries and \"localhost\" certificates",
        );
    }
    if r.problems() == before {
        r.ok(
            "no-dangerous-roots",
            "no old wsconnector CA, vendor root or CA:TRUE localhost certificate is trusted",
        );
    }
}

fn check_key_permissions(opts: &CheckOptions, r: &mut CheckReport) {
    let mut files: Vec<PathBuf> = [KEY_FILE, PFX_FILE]
        .iter()
        .map(|f| opts.certs_dir.join(f))
        .filter(|p| p.exists())
        .collect();
    if let Some(tls) = &opts.tls {
        for p in [Some(&tls.certificate_path), tls.key_path.as_ref()]
            .into_iter()
            .flatten()
        {
            if !files.contains(p) {
                files.push(p.clone());
            }
        }
    }
    for file in files {
        key_permission(&file, r);
    }
}

#[cfg(unix)]
fn key_permission(file: &Path, r: &mut CheckReport) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    // Only files that hold a key matter; a chain-only PEM is public.
    let holds_key = std::fs::read(file)
        .is_ok_and(|b| !b.starts_with(b"-----") || b.windows(11).any(|w| w == b"PRIVATE KEY"));
    if !holds_key {
        return;
    }
    if mode & 0o077 != 0 {
        r.problem(
            "key-readable",
            format!(
                "{} (a private key) is readable by other users (mode {mode:o})",
                file.display()
            ),
            format!("chmod 600 {}", file.display()),
        );
    } else {
        r.ok(
            "key-private",
            format!("{} is private to its owner", file.display()),
        );
    }
}

#[cfg(not(unix))]
fn key_permission(file: &Path, r: &mut CheckReport) {
    r.note(
        "key-acl-not-checked",
        format!(
            "{}: check that only this user can read it: icacls \"{}\"",
            file.display(),
            file.display()
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn self_signed(cn: &str, ca: bool, san: &[&str]) -> Vec<u8> {
        let mut p =
            CertificateParams::new(san.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn dangerous_certificates_are_told_apart() {
        let ours = super::super::cert::generate(&Default::default()).unwrap();
        let ours_der = ours.ca_der().to_vec();
        assert_eq!(classify(&ours_der, Some(&ours_der)), None);
        let old = super::super::cert::generate(&Default::default()).unwrap();
        assert!(matches!(
            classify(&old.ca_der(), Some(&ours_der)),
            Some(Suspect::StaleOwnCa(_))
        ));
        // Our own CA is constrained and carries no SAN: never a CA:TRUE leaf.
        assert_eq!(
            classify(&ours_der, None).map(|s| matches!(s, Suspect::StaleOwnCa(_))),
            Some(true)
        );
        let vendor = self_signed("IdealSystems CA", true, &[]);
        assert!(matches!(
            classify(&vendor, None),
            Some(Suspect::VendorRoot(_))
        ));
        let ca_leaf = self_signed("localhost", true, &["localhost", "127.0.0.1"]);
        assert!(matches!(
            classify(&ca_leaf, None),
            Some(Suspect::LoopbackCaTrue(_))
        ));
        let plain_leaf = self_signed("localhost", false, &["localhost"]);
        assert_eq!(classify(&plain_leaf, None), None);
        let other_root = self_signed("Some Public Root", true, &[]);
        assert_eq!(classify(&other_root, None), None);
    }

    #[test]
    fn issuer_check_tells_cas_apart() {
        let a = super::super::cert::generate(&Default::default()).unwrap();
        let b = super::super::cert::generate(&Default::default()).unwrap();
        assert!(issued_by(&a.leaf_der(), &a.ca_der()));
        assert!(!issued_by(&a.leaf_der(), &b.ca_der()));
    }
}
