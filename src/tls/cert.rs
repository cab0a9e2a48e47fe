//! `wsconnector cert create`: a local certificate authority that can only
//! vouch for the loopback, and the `localhost` server certificate it signs.
//!
//! The CA carries name constraints (DNS `localhost`, IP 127.0.0.1/32 and
//! ::1/128), so trusting it cannot let anyone impersonate a real web site;
//! and its private key lives only in memory while it signs the leaf: it is
//! dropped when [`generate`] returns and is never written, so nobody can sign
//! anything else with it later. The price is that renewal makes a new CA,
//! which must be trusted again (certs/README.md explains).
//!
//! [`generate`] builds everything in memory (tests of other modules use it);
//! [`create`] writes the files, private to the user (0600 on Unix).

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::load::format_utc;
use crate::config::{Secret, TlsConfig};

/// Default and maximum validity of the server certificate, in days. 825 is
/// the longest Apple platforms accept for a TLS server certificate, even one
/// from a locally trusted CA (browsers' 398-day limit applies to public CAs
/// only). We take the maximum because every renewal means trusting a new CA.
pub const MAX_VALIDITY_DAYS: u32 = 825;

/// File name of the CA certificate, the one to trust.
pub const CA_FILE: &str = "wsconnector-ca.pem";
/// File name of the server certificate followed by the CA (PEM).
pub const CHAIN_FILE: &str = "localhost.pem";
/// File name of the server's private key (PKCS#8 PEM).
pub const KEY_FILE: &str = "localhost.key";
/// File name of the PKCS#12 bundle: server certificate, CA, private key.
pub const PFX_FILE: &str = "localhost.pfx";

/// Length of a generated .pfx password: 20 characters from a 56-letter
/// alphabet is about 116 bits.
const GENERATED_PASSWORD_LEN: usize = 20;
/// Letters and digits without look-alikes (0/O/o, 1/l/I) so the password can
/// be read off a screen, and without XML specials so it pastes into config.xml.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
/// RFC 5280 upper bound for a common name.
const MAX_COMMON_NAME_CHARS: usize = 64;
/// Start of validity is set back this far so a client clock slightly behind
/// ours still accepts a certificate made a moment ago.
const CLOCK_SKEW_MINUTES: i64 = 60;
/// Name of the key entry inside the .pfx (shown by Windows after import).
const PFX_ALIAS: &str = "wsconnector localhost";

/// Why certificates could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// `validity_days` outside 1..=825.
    #[error("validity of {0} days is not allowed: choose 1 to {MAX_VALIDITY_DAYS} days")]
    InvalidValidity(u32),
    /// An empty .pfx password was asked for.
    #[error("the .pfx password must not be empty (leave it unset to have one generated)")]
    EmptyPassword,
    /// rcgen failed (should not happen with our fixed parameters).
    #[error("cannot generate the certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// p12-keystore failed to build the .pfx.
    #[error("cannot build the PKCS#12 file: {0}")]
    Pkcs12(String),
    /// The operating system's random generator failed.
    #[error("the system random generator failed: {0}")]
    Random(getrandom::Error),
    /// A file to write already exists and `force` was not given.
    #[error("{} already exists: choose another folder, or use --force to replace it", .0.display())]
    Exists(PathBuf),
    /// Creating the folder or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// How to generate and write the certificates.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Password for the .pfx; `None` generates one (returned in [`Created`]).
    pub pfx_password: Option<Secret>,
    /// Replace existing files instead of refusing.
    pub force: bool,
    /// Validity of the server certificate (and the CA), 1..=825 days.
    pub validity_days: u32,
    /// Start of validity; `None` is now minus a small clock-skew margin.
    /// Tests use past dates to produce expired certificates.
    pub valid_from: Option<OffsetDateTime>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            pfx_password: None,
            force: false,
            validity_days: MAX_VALIDITY_DAYS,
            valid_from: None,
        }
    }
}

/// A freshly generated CA certificate and server certificate, in memory.
/// The CA's private key is not here: it no longer exists.
pub struct GeneratedCerts {
    /// The CA certificate (PEM), to be trusted by clients.
    pub ca_pem: String,
    /// The CA's common name, as trust stores display it.
    pub ca_common_name: String,
    /// The server certificate alone (PEM).
    pub leaf_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub key_pem: String,
    /// End of validity of the server certificate (and of the CA).
    pub not_after: OffsetDateTime,
    /// DER of the CA certificate.
    ca_der: CertificateDer<'static>,
    /// DER of the server certificate.
    leaf_der: CertificateDer<'static>,
    /// The server's private key, PKCS#8 DER.
    key_der: Vec<u8>,
}

impl fmt::Debug for GeneratedCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("GeneratedCerts")
            .field("ca_common_name", &self.ca_common_name)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl GeneratedCerts {
    /// Server certificate followed by the CA: what a PEM `Certificate-path` holds.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem, self.ca_pem)
    }

    /// The CA certificate, DER (for a client's root store).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The server certificate, DER.
    pub fn leaf_der(&self) -> CertificateDer<'static> {
        self.leaf_der.clone()
    }

    /// A PKCS#12 bundle (server certificate, CA, key) protected by `password`,
    /// encrypted with AES-256 and authenticated with HMAC-SHA-256.
    pub fn pfx(&self, password: &str) -> Result<Vec<u8>, CertError> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};

        let p12 = |e: p12_keystore::error::Error| CertError::Pkcs12(e.to_string());
        let key = PrivateKey::from_der(&self.key_der).map_err(p12)?;
        let chain = [
            Certificate::from_der(&self.leaf_der).map_err(p12)?,
            Certificate::from_der(&self.ca_der).map_err(p12)?,
        ];
        let mut store = KeyStore::new();
        store.add_entry(
            PFX_ALIAS,
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(PFX_ALIAS, key, chain)),
        );
        store.writer(password).write().map_err(p12)
    }
}

/// What [`create`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    /// The folder, made absolute for display.
    pub dir: PathBuf,
    /// The CA certificate to trust.
    pub ca_path: PathBuf,
    /// Server certificate and CA, PEM.
    pub chain_path: PathBuf,
    /// Server private key, PEM.
    pub key_path: PathBuf,
    /// PKCS#12 bundle.
    pub pfx_path: PathBuf,
    /// Password of the .pfx.
    pub pfx_password: Secret,
    /// True when the password was generated here (then the CLI shows it once).
    pub password_generated: bool,
    /// The CA's common name, as trust stores display it.
    pub ca_common_name: String,
    /// End of validity of the server certificate.
    pub not_after: OffsetDateTime,
}

impl Created {
    /// The settings that load the written .pfx (what step 2 of the
    /// instructions puts in config.xml); handy for tests of the server.
    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig {
            certificate_path: self.pfx_path.clone(),
            key_path: None,
            password: self.pfx_password.clone(),
        }
    }

    /// The text `wsconnector cert create` prints: the files, how to trust the
    /// CA, and the config.xml lines. Contains the password only if generated.
    pub fn instructions(&self) -> String {
        let path = |p: &Path| p.display().to_string();
        let password = if self.password_generated {
            xml_escape(&self.pfx_password.0)
        } else {
            "(the password you chose)".to_string()
        };
        let mut out = String::new();
        out.push_str(&format!(
            "Created a local certificate authority and a certificate for localhost, 127.0.0.1 \
             and ::1,\nvalid until {}, in {}:\n\n",
            format_utc(self.not_after),
            path(&self.dir)
        ));
        out.push_str(&format!(
            "  {CA_FILE:<20} the CA certificate: trust it (step 1)\n\
             \x20 {PFX_FILE:<20} server certificate, CA and private key (PKCS#12, password protected)\n\
             \x20 {CHAIN_FILE:<20} server certificate and CA (PEM)\n\
             \x20 {KEY_FILE:<20} server private key (PEM)\n\n"
        ));
        out.push_str(&format!(
            "The CA \"{}\"\n\
             can only vouch for localhost, 127.0.0.1 and ::1 (name constraints), and its\n\
             private key was never written anywhere: it cannot sign anything else.\n\
             Keep the .pfx and .key private; never commit them.\n\n",
            self.ca_common_name
        ));
        out.push_str(&format!(
            "1. Trust the CA: wsconnector cert trust --dir \"{}\"\n\
             \x20  (each browser store it touches is listed; `cert untrust` undoes it), or by hand:\n",
            path(&self.dir)
        ));
        out.push_str(&trust_hint(&self.ca_path, &self.ca_common_name));
        out.push_str("\n2. In config.xml:\n");
        out.push_str(&format!(
            "     <Socket-type>WSS</Socket-type>\n\
             \x20    <Certificate-path>{}</Certificate-path>\n\
             \x20    <Password>{password}</Password>\n\
             \x20  or, with PEM files instead of the .pfx:\n\
             \x20    <Certificate-path>{}</Certificate-path>\n\
             \x20    <Key-path>{}</Key-path>\n",
            xml_escape(&path(&self.pfx_path)),
            xml_escape(&path(&self.chain_path)),
            xml_escape(&path(&self.key_path)),
        ));
        out.push_str("\n3. Restart wsconnector; pages connect to wss://localhost:<port>/.\n\n");
        if self.password_generated {
            out.push_str(
                "The .pfx password above is shown only this once; it is not stored anywhere else.\n",
            );
        }
        out.push_str(&format!(
            "Clients need TLS 1.2 or newer (.NET Framework 4.x: set SchUseStrongCrypto, see \
             certs/README.md).\nRenew before {}: run `wsconnector cert renew` (a new CA, trusted where \
             the old one was; the daemon warns 60 days ahead).\n",
            format_utc(self.not_after)
        ));
        out
    }
}

/// The platform's command to trust the CA for the current user.
fn trust_hint(ca_path: &Path, ca_name: &str) -> String {
    let ca = ca_path.display();
    if cfg!(windows) {
        format!("     certutil -user -addstore Root \"{ca}\"\n")
    } else if cfg!(target_os = "macos") {
        format!(
            "     security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db \"{ca}\"\n"
        )
    } else {
        format!(
            "     certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"{ca_name}\" -i \"{ca}\"\n\
             \x20    (Chrome/Chromium; Firefox has its own store per profile)\n"
        )
    }
}

/// Minimal escaping for text placed inside an XML element.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Generate a CA and a `localhost` server certificate in memory. The CA key
/// is dropped before this returns.
pub fn generate(opts: &CreateOptions) -> Result<GeneratedCerts, CertError> {
    let leaf_names = [
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        SanType::IpAddress(Ipv6Addr::LOCALHOST.into()),
    ];
    generate_for(opts, &leaf_names)
}

/// [`generate`] with the leaf's names given, so a test can have the CA sign
/// a name outside its constraints and see clients refuse it.
fn generate_for(opts: &CreateOptions, leaf_names: &[SanType]) -> Result<GeneratedCerts, CertError> {
    if opts.validity_days == 0 || opts.validity_days > MAX_VALIDITY_DAYS {
        return Err(CertError::InvalidValidity(opts.validity_days));
    }
    let now = OffsetDateTime::now_utc();
    let not_before = opts
        .valid_from
        .unwrap_or(now - Duration::minutes(CLOCK_SKEW_MINUTES));
    let not_after = not_before + Duration::days(i64::from(opts.validity_days));
    let ca_common_name = ca_common_name(&host_name(), now, &random_id()?);

    // The CA: may sign end-entity certificates only (path length 0), only
    // for the loopback names.
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, ca_common_name.as_str());
        dn.push(DnType::OrganizationName, "wsconnector");
        dn
    };
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".to_string()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 1], 32)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                Ipv6Addr::LOCALHOST.octets(),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    // The CA is useless once its key is gone, so it lives exactly as long as the leaf.
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    // `issuer` owns the CA key; it is dropped at the end of this function.
    let issuer = Issuer::new(ca, ca_key);

    // The server certificate. ECDSA P-256 keys sign; they never encipher,
    // so digitalSignature is the one key usage that applies.
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        dn.push(DnType::OrganizationName, "wsconnector");
        dn
    };
    leaf.subject_alt_names = leaf_names.to_vec();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    drop(issuer);

    Ok(GeneratedCerts {
        ca_pem: ca_cert.pem(),
        ca_common_name,
        leaf_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        not_after,
        ca_der: ca_cert.der().clone(),
        leaf_der: leaf_cert.der().clone(),
        key_der: leaf_key.serialize_der(),
    })
}

/// This machine's name, for telling CAs of different machines apart in a
/// trust store.
fn host_name() -> String {
    whoami::fallible::hostname().unwrap_or_else(|_| "unknown host".to_string())
}

/// `wsconnector local CA (<host>, <date>, <id>)`, the host shortened so the
/// whole name stays within 64 characters. The random id keeps two CAs made on
/// the same machine and day apart: clients pick a trust anchor by name first,
/// so two trusted CAs with one name would make one of them fail.
fn ca_common_name(host: &str, now: OffsetDateTime, id: &str) -> String {
    let date = &format_utc(now)[..10];
    let fixed = format!("wsconnector local CA (, {date}, {id})");
    let room = MAX_COMMON_NAME_CHARS.saturating_sub(fixed.chars().count());
    let host: String = if host.chars().count() > room {
        host.chars()
            .take(room.saturating_sub(1))
            .chain(['~'])
            .collect()
    } else {
        host.to_string()
    };
    format!("wsconnector local CA ({host}, {date}, {id})")
}

/// Six random hex digits.
fn random_id() -> Result<String, CertError> {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).map_err(CertError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02X}")).collect())
}

/// A random password from [`PASSWORD_ALPHABET`], without modulo bias.
fn random_password() -> Result<String, CertError> {
    // Bytes at or above this are rejected: it is the largest multiple of the
    // alphabet size that fits in a byte.
    let limit = (256 / PASSWORD_ALPHABET.len() * PASSWORD_ALPHABET.len()) as u16;
    let mut out = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < GENERATED_PASSWORD_LEN {
        getrandom::fill(&mut buf).map_err(CertError::Random)?;
        for &b in &buf {
            if u16::from(b) < limit && out.len() < GENERATED_PASSWORD_LEN {
                out.push(char::from(
                    PASSWORD_ALPHABET[usize::from(b) % PASSWORD_ALPHABET.len()],
                ));
            }
        }
    }
    Ok(out)
}

/// Generate the certificates and write them into `dir` (created if missing).
/// Refuses to replace existing files unless `opts.force`.
pub fn create(dir: &Path, opts: &CreateOptions) -> Result<Created, CertError> {
    let (password, password_generated) = match &opts.pfx_password {
        Some(p) if p.0.is_empty() => return Err(CertError::EmptyPassword),
        Some(p) => (p.clone(), false),
        None => (Secret(random_password()?), true),
    };
    let certs = generate(opts)?;
    let pfx = certs.pfx(&password.0)?;

    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let chain_pem = certs.chain_pem();
    let files: [(&str, &[u8]); 4] = [
        (CA_FILE, certs.ca_pem.as_bytes()),
        (CHAIN_FILE, chain_pem.as_bytes()),
        (KEY_FILE, certs.key_pem.as_bytes()),
        (PFX_FILE, &pfx),
    ];
    // Check every target before writing any, so a refusal leaves no half set.
    if !opts.force {
        for (name, _) in &files {
            let path = dir.join(name);
            if path.symlink_metadata().is_ok() {
                return Err(CertError::Exists(path));
            }
        }
    }
    create_private_dir(&dir)?;
    for (name, bytes) in &files {
        write_private(&dir.join(name), bytes, opts.force)?;
    }

    Ok(Created {
        ca_path: dir.join(CA_FILE),
        chain_path: dir.join(CHAIN_FILE),
        key_path: dir.join(KEY_FILE),
        pfx_path: dir.join(PFX_FILE),
        dir,
        pfx_password: password,
        password_generated,
        ca_common_name: certs.ca_common_name.clone(),
        not_after: certs.not_after,
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create `dir` (and parents) if missing; folders we create are 0700 on Unix.
fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_error(dir))
}

/// Write a new file readable only by its owner (0600 on Unix; on Windows the
/// folder's inherited ACL applies — a folder in the user's profile is private).
fn write_private(path: &Path, bytes: &[u8], replace: bool) -> Result<(), CertError> {
    // Replace by remove + create_new rather than truncate, so the new file
    // gets our mode even when the old one was world-readable, and a symlink
    // planted at the path is removed instead of followed.
    if replace {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;

    /// A verifier that trusts only `certs`' CA, as a browser would after import.
    fn verifier(certs: &GeneratedCerts) -> Arc<rustls::client::WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs.ca_der()).unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn leaf_verifies_for_each_loopback_name() {
        let certs = generate(&CreateOptions::default()).unwrap();
        let v = verifier(&certs);
        for name in ["localhost", "127.0.0.1", "::1"] {
            let name = ServerName::try_from(name).unwrap();
            v.verify_server_cert(&certs.leaf_der(), &[], &name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        // A name the leaf does not carry is refused.
        let other = ServerName::try_from("127.0.0.2").unwrap();
        assert!(v
            .verify_server_cert(&certs.leaf_der(), &[], &other, &[], UnixTime::now())
            .is_err());
    }

    #[test]
    fn name_constraints_stop_the_ca_from_vouching_for_other_names() {
        // Had the CA signed a certificate for a real site, a client that
        // trusts the CA still refuses it.
        for (san, name) in [
            (
                SanType::DnsName("bank.example.com".try_into().unwrap()),
                "bank.example.com",
            ),
            (SanType::IpAddress("10.0.0.1".parse().unwrap()), "10.0.0.1"),
        ] {
            let certs = generate_for(&CreateOptions::default(), &[san]).unwrap();
            let v = verifier(&certs);
            let name = ServerName::try_from(name).unwrap();
            let err = v
                .verify_server_cert(&certs.leaf_der(), &[], &name, &[], UnixTime::now())
                .unwrap_err();
            assert!(
                format!("{err:?}").contains("NameConstraint"),
                "{name:?} should break the name constraints, got {err:?}"
            );
        }
    }

    #[test]
    fn validity_is_bounded() {
        for days in [0, MAX_VALIDITY_DAYS + 1] {
            let opts = CreateOptions {
                validity_days: days,
                ..CreateOptions::default()
            };
            assert!(matches!(generate(&opts), Err(CertError::InvalidValidity(d)) if d == days));
        }
        let opts = CreateOptions {
            validity_days: 1,
            ..CreateOptions::default()
        };
        assert!(generate(&opts).is_ok());
    }

    #[test]
    fn generated_passwords_are_long_readable_and_different() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert!(a.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn ca_name_names_the_host_and_fits_in_64_characters() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let short = ca_common_name("agent-pc", now, "0A1B2C");
        assert_eq!(short, "wsconnector local CA (agent-pc, 1970-01-01, 0A1B2C)");
        let long = ca_common_name(&"h".repeat(200), now, "0A1B2C");
        assert_eq!(long.chars().count(), MAX_COMMON_NAME_CHARS);
        assert!(long.ends_with("~, 1970-01-01, 0A1B2C)"), "{long}");
        assert_ne!(random_id().unwrap(), random_id().unwrap());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let certs = generate(&CreateOptions::default()).unwrap();
        let shown = format!("{certs:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("wsconnector local CA"), "{shown}");
    }

    #[test]
    fn xml_specials_are_escaped() {
        assert_eq!(xml_escape("C:\\a&b<c>"), "C:\\a&amp;b&lt;c&gt;");
    }
}
