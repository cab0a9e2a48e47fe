//! Loading the WSS server certificate (`Certificate-path`, `Key-path`,
//! `Password`) into a rustls `ServerConfig`, with start-up errors that name
//! the file and say what is wrong, and warnings for what still works but
//! will not for long (a certificate close to its expiry).
//!
//! Two formats: PKCS#12 (`.pfx`/`.p12`, opened with `Password`, read with
//! p12-keystore) and PEM (chain and key in one file, or the key in
//! `Key-path`, read with rustls-pki-types). The format is decided by the
//! content, not the file name, so a PEM file called `.crt` or a `.pfx`
//! renamed `.bin` both work. The password never appears in an error or a log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::config::TlsConfig;

/// A certificate expiring within this many days loads with a warning, so the
/// administrator renews it before browsers start refusing the connection.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The only application protocol spoken over TLS: HTTP/1.1 carries the
/// websocket upgrade (browsers never ask for h2 on a `wss://` URL).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Object identifier of PKCS#7 `data`, the content type of every PKCS#12
/// `authSafe` that p12-keystore (and Windows, OpenSSL, Java) writes.
const PKCS7_DATA_OID: &str = "1.2.840.113549.1.7.1";
/// Object identifier of PKCS#7 `signedData` (public-key integrity mode).
const PKCS7_SIGNED_DATA_OID: &str = "1.2.840.113549.1.7.2";

/// Why the certificate could not be loaded. Every variant names the file;
/// none carries the password.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file does not exist or cannot be read.
    #[error("cannot read {what} file {}: {source}", path.display())]
    Unreadable {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Neither PEM with a CERTIFICATE block nor PKCS#12.
    #[error(
        "{} is not a certificate: expected a PKCS#12 file (.pfx/.p12) or a PEM file \
         with a '-----BEGIN CERTIFICATE-----' block ({detail})",
        path.display()
    )]
    NotACertificate {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// A PEM file that cannot be decoded (broken base64, missing END line).
    #[error("{} is not a valid PEM file: {detail}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        detail: String,
    },
    /// No private key in the PEM file(s) or in the .pfx.
    #[error("no private key found in {}{hint}", path.display())]
    NoPrivateKey {
        /// The file that should have held it.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },
    /// A password-protected PEM key, which we do not decrypt.
    #[error(
        "the private key in {} is encrypted ('ENCRYPTED PRIVATE KEY'): use a .pfx with \
         Password, or store the key unencrypted (openssl pkey -in KEY -out KEY.plain) in a \
         file only this user can read",
        path.display()
    )]
    EncryptedPemKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is not usable (unsupported algorithm, corrupt).
    #[error("the private key in {} cannot be used: {detail}", path.display())]
    BadPrivateKey {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        detail: String,
    },
    /// The .pfx integrity check failed: the password is wrong.
    #[error("wrong password for {} (check the Password setting)", path.display())]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// The .pfx could not be decrypted or decoded after its structure looked right.
    #[error(
        "cannot open {}: wrong password or damaged file ({detail})",
        path.display()
    )]
    PasswordOrDamaged {
        /// The file.
        path: PathBuf,
        /// p12-keystore's reason.
        detail: String,
    },
    /// The .pfx uses an algorithm p12-keystore does not support.
    #[error(
        "cannot open {}: {detail}; re-export it with AES-256 and SHA-256 \
         (openssl pkcs12 -export, or Windows 'AES256-SHA256')",
        path.display()
    )]
    UnsupportedPkcs12 {
        /// The file.
        path: PathBuf,
        /// p12-keystore's reason.
        detail: String,
    },
    /// The private key belongs to another certificate.
    #[error(
        "the private key in {} does not match the certificate in {}",
        key_path.display(),
        cert_path.display()
    )]
    KeyMismatch {
        /// Where the certificate came from.
        cert_path: PathBuf,
        /// Where the key came from.
        key_path: PathBuf,
    },
    /// The server certificate cannot be parsed as X.509.
    #[error("the certificate in {} cannot be parsed: {detail}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        detail: String,
    },
    /// The server certificate's validity period has ended.
    #[error(
        "the certificate in {} expired on {}: create a new one (wsconnector cert create) \
         or install the renewed one",
        path.display(),
        format_utc(*not_after)
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// End of validity.
        not_after: OffsetDateTime,
    },
    /// The server certificate's validity period has not started.
    #[error(
        "the certificate in {} is not valid before {} (check the system clock)",
        path.display(),
        format_utc(*not_before)
    )]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// Start of validity.
        not_before: OffsetDateTime,
    },
    /// rustls refused the configuration.
    #[error("cannot use the certificate in {}: {source}", path.display())]
    Rustls {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
}

/// A loaded certificate: the TLS configuration plus what an administrator
/// wants to know about it (`check-config` prints it, the daemon logs it).
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// Ready for `tokio_rustls::TlsAcceptor::from`.
    pub server_config: Arc<ServerConfig>,
    /// Subject of the server (leaf) certificate, e.g. `CN=localhost, O=wsconnector`.
    pub subject: String,
    /// End of the server certificate's validity.
    pub not_after: OffsetDateTime,
    /// The server certificate itself (DER), for `cert check` to compare with
    /// what is really served on the port.
    pub leaf_der: CertificateDer<'static>,
    /// Things that work now but deserve attention (expiry soon, ignored settings,
    /// names browsers will not accept).
    pub warnings: Vec<String>,
}

/// Load `tls` and build the server configuration, logging every warning once.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_expiry(tls).map(|(config, _)| config)
}

/// [`server_config`], also returning the end of the certificate's validity
/// (the daemon warns ahead of it and reports it in `/health`).
pub fn server_config_with_expiry(
    tls: &TlsConfig,
) -> Result<(Arc<ServerConfig>, OffsetDateTime), TlsError> {
    let loaded = load(tls)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        certificate = %tls.certificate_path.display(),
        subject = %loaded.subject,
        expires = %format_utc(loaded.not_after),
        "TLS certificate loaded"
    );
    Ok((loaded.server_config, loaded.not_after))
}

/// Load `tls` and build the server configuration, returning the warnings
/// instead of logging them.
pub fn load(tls: &TlsConfig) -> Result<LoadedCertificate, TlsError> {
    load_at(tls, OffsetDateTime::now_utc())
}

/// [`load`] as if the clock read `now` (validity checks only).
pub fn load_at(tls: &TlsConfig, now: OffsetDateTime) -> Result<LoadedCertificate, TlsError> {
    let cert_path = tls.certificate_path.as_path();
    let data = read_file("certificate", cert_path)?;
    let mut warnings = Vec::new();

    let (chain, key, key_path) = if looks_like_pem(&data) {
        let (chain, embedded_key) = read_pem_bundle(cert_path, &data)?;
        match &tls.key_path {
            Some(key_path) => {
                let key_data = read_file("private key", key_path)?;
                let key = read_pem_key(key_path, &key_data)?.ok_or(TlsError::NoPrivateKey {
                    path: key_path.clone(),
                    hint: " (Key-path must name a PEM file with a 'PRIVATE KEY' block)",
                })?;
                if embedded_key.is_some() {
                    warnings.push(format!(
                        "{} also contains a private key; the one in Key-path {} is used",
                        cert_path.display(),
                        key_path.display()
                    ));
                }
                (chain, key, key_path.clone())
            }
            None => {
                let key = embedded_key.ok_or(TlsError::NoPrivateKey {
                    path: cert_path.to_path_buf(),
                    hint: " (put the key in the same PEM file, name it in Key-path, or use a .pfx)",
                })?;
                (chain, key, cert_path.to_path_buf())
            }
        }
    } else {
        let (chain, key) = read_pkcs12(cert_path, &data, &tls.password.0)?;
        if let Some(key_path) = &tls.key_path {
            warnings.push(format!(
                "Key-path {} is ignored: the key comes from the PKCS#12 file {}",
                key_path.display(),
                cert_path.display()
            ));
        }
        (chain, key, cert_path.to_path_buf())
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    check_key_matches(&provider, &chain, &key, cert_path, &key_path)?;
    let leaf_der = chain[0].clone();
    let facts = inspect_leaf(cert_path, &leaf_der)?;
    check_validity(cert_path, &facts, now, &mut warnings)?;
    if !facts.names_loopback {
        warnings.push(format!(
            "the certificate in {} names none of localhost, 127.0.0.1, ::1 \
             (subjectAltName): browsers opening wss://localhost will refuse it",
            cert_path.display()
        ));
    }

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            path: cert_path.to_path_buf(),
            source,
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rustls {
            path: cert_path.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];

    Ok(LoadedCertificate {
        server_config: Arc::new(config),
        subject: facts.subject,
        not_after: facts.not_after,
        leaf_der,
        warnings,
    })
}

/// The server (leaf) certificate `tls` names, without building a server:
/// `wsconnector ctl` pins it to talk to its own daemon over WSS.
pub fn leaf_certificate(tls: &TlsConfig) -> Result<CertificateDer<'static>, TlsError> {
    let cert_path = tls.certificate_path.as_path();
    let data = read_file("certificate", cert_path)?;
    let chain = if looks_like_pem(&data) {
        read_pem_bundle(cert_path, &data)?.0
    } else {
        read_pkcs12(cert_path, &data, &tls.password.0)?.0
    };
    chain
        .into_iter()
        .next()
        .ok_or_else(|| TlsError::NotACertificate {
            path: cert_path.to_path_buf(),
            detail: "the file has no certificate".to_string(),
        })
}

/// `YYYY-MM-DD HH:MM UTC`, the one date format of our messages.
pub fn format_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// PEM is text with a `-----BEGIN ` line; PKCS#12 is binary DER.
fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

fn pem_error(path: &Path, err: pem::Error) -> TlsError {
    TlsError::BadPem {
        path: path.to_path_buf(),
        detail: err.to_string(),
    }
}

/// The certificates (in file order: leaf first) and the key, if any.
fn read_pem_bundle(
    path: &Path,
    data: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, Option<PrivateKeyDer<'static>>), TlsError> {
    let chain = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NotACertificate {
            path: path.to_path_buf(),
            detail: "the PEM file has no CERTIFICATE block".to_string(),
        });
    }
    let key = read_pem_key(path, data)?;
    Ok((chain, key))
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1), if any.
fn read_pem_key(path: &Path, data: &[u8]) -> Result<Option<PrivateKeyDer<'static>>, TlsError> {
    match PrivateKeyDer::from_pem_slice(data) {
        Ok(key) => Ok(Some(key)),
        Err(pem::Error::NoItemsFound) => {
            // rustls-pki-types skips sections it does not know, so an encrypted
            // key would otherwise look like no key at all.
            if data.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
                Err(TlsError::EncryptedPemKey {
                    path: path.to_path_buf(),
                })
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(pem_error(path, e)),
    }
}

/// True when `data` has the outer shape of a PFX (RFC 7292): a SEQUENCE of
/// version 3 and a PKCS#7 ContentInfo of type data or signedData. This lets
/// us tell "not a certificate at all" from "wrong password or damaged".
fn looks_like_pkcs12(data: &[u8]) -> bool {
    use x509_parser::der_parser::ber::parse_ber;
    let Ok((_, outer)) = parse_ber(data) else {
        return false;
    };
    let Ok(items) = outer.as_sequence() else {
        return false;
    };
    let version_ok = items.first().and_then(|v| v.as_u32().ok()) == Some(3);
    let content_type = items
        .get(1)
        .and_then(|ci| ci.as_sequence().ok())
        .and_then(|ci| ci.first())
        .and_then(|oid| oid.as_oid().ok())
        .map(|oid| oid.to_id_string());
    version_ok
        && matches!(
            content_type.as_deref(),
            Some(PKCS7_DATA_OID) | Some(PKCS7_SIGNED_DATA_OID)
        )
}

/// The chain (leaf first) and key of the first key entry of a PKCS#12 file.
fn read_pkcs12(
    path: &Path,
    data: &[u8],
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    use p12_keystore::error::Error as P12Error;

    if !looks_like_pkcs12(data) {
        let detail = if x509_parser::parse_x509_certificate(data).is_ok() {
            // A binary .cer/.der holds no key; say how to get a usable file.
            "it is a DER certificate without its private key: use a .pfx, or convert it \
             to PEM (openssl x509 -inform der -in FILE -out FILE.pem) and set Key-path"
        } else {
            "neither PEM text nor a PKCS#12 structure"
        };
        return Err(TlsError::NotACertificate {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        });
    }
    let store = p12_keystore::KeyStore::from_pkcs12(
        data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| match e {
        // The MAC is keyed by the password: a mismatch on a well-formed
        // file means the password is wrong.
        P12Error::MacError(_) => TlsError::WrongPassword {
            path: path.to_path_buf(),
        },
        P12Error::UnsupportedEncryptionScheme
        | P12Error::UnsupportedMacAlgorithm
        | P12Error::UnsupportedContentType
        | P12Error::UnsupportedCertificateType => TlsError::UnsupportedPkcs12 {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        other => TlsError::PasswordOrDamaged {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })?;
    let Some((_alias, entry)) = store.private_key_chain() else {
        return Err(TlsError::NoPrivateKey {
            path: path.to_path_buf(),
            hint: " (export the certificate together with its private key)",
        });
    };
    if entry.certs().is_empty() {
        return Err(TlsError::NotACertificate {
            path: path.to_path_buf(),
            detail: "the PKCS#12 file holds a key but no certificate for it".to_string(),
        });
    }
    let chain = entry
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::try_from(entry.key().as_der().to_vec()).map_err(|detail| {
        TlsError::BadPrivateKey {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    })?;
    Ok((chain, key))
}

/// A clear error when the key is unusable or belongs to another certificate,
/// rather than rustls' generic one.
fn check_key_matches(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::BadPrivateKey {
            path: key_path.to_path_buf(),
            detail: e.to_string(),
        })?;
    match CertifiedKey::new(chain.to_vec(), signing_key).keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert_path: cert_path.to_path_buf(),
                key_path: key_path.to_path_buf(),
            })
        }
        // `Unknown`: the provider cannot tell; rustls accepts that too.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(()),
        Err(source) => Err(TlsError::Rustls {
            path: cert_path.to_path_buf(),
            source,
        }),
    }
}

/// What we check about the server certificate.
struct LeafFacts {
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// Whether a subjectAltName is `localhost`, `127.0.0.1` or `::1`.
    names_loopback: bool,
}

fn inspect_leaf(path: &Path, leaf: &CertificateDer<'_>) -> Result<LeafFacts, TlsError> {
    use x509_parser::extensions::GeneralName;

    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let names_loopback = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().any(|name| match name {
            GeneralName::DNSName(dns) => dns.eq_ignore_ascii_case("localhost"),
            GeneralName::IPAddress(ip) => {
                *ip == [127, 0, 0, 1] || *ip == std::net::Ipv6Addr::LOCALHOST.octets()
            }
            _ => false,
        }),
        _ => false,
    };
    Ok(LeafFacts {
        subject: cert.subject().to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        names_loopback,
    })
}

fn check_validity(
    path: &Path,
    facts: &LeafFacts,
    now: OffsetDateTime,
    warnings: &mut Vec<String>,
) -> Result<(), TlsError> {
    if now > facts.not_after {
        return Err(TlsError::Expired {
            path: path.to_path_buf(),
            not_after: facts.not_after,
        });
    }
    if now < facts.not_before {
        return Err(TlsError::NotYetValid {
            path: path.to_path_buf(),
            not_before: facts.not_before,
        });
    }
    let left = facts.not_after - now;
    if left < time::Duration::days(EXPIRY_WARNING_DAYS) {
        warnings.push(format!(
            "the certificate in {} expires on {} ({} days left): renew it now \
             (see certs/README.md)",
            path.display(),
            format_utc(facts.not_after),
            left.whole_days()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(year: i32, month: u8, day: u8) -> OffsetDateTime {
        let month = time::Month::try_from(month).unwrap();
        time::Date::from_calendar_date(year, month, day)
            .unwrap()
            .midnight()
            .assume_utc()
    }

    #[test]
    fn pem_is_recognised_by_content() {
        assert!(looks_like_pem(b"junk\n-----BEGIN CERTIFICATE-----\n"));
        assert!(!looks_like_pem(&[0x30, 0x82, 0x01, 0x00]));
    }

    #[test]
    fn random_bytes_are_not_pkcs12() {
        assert!(!looks_like_pkcs12(b"hello world, not a certificate"));
        assert!(!looks_like_pkcs12(&[]));
        // A DER SEQUENCE { INTEGER 3 } without a ContentInfo is not a PFX either.
        assert!(!looks_like_pkcs12(&[0x30, 0x03, 0x02, 0x01, 0x03]));
    }

    #[test]
    fn dates_format_as_utc_minutes() {
        let t = utc(2027, 3, 4) + time::Duration::seconds(5 * 3600 + 6 * 60 + 7);
        assert_eq!(format_utc(t), "2027-03-04 05:06 UTC");
    }

    #[test]
    fn validity_window_is_enforced_with_a_warning_before_expiry() {
        let now = utc(2027, 1, 1);
        let facts = |nb: OffsetDateTime, na: OffsetDateTime| LeafFacts {
            subject: String::new(),
            not_before: nb,
            not_after: na,
            names_loopback: true,
        };
        let p = Path::new("c.pem");
        let mut w = Vec::new();
        let ok = facts(
            now - time::Duration::days(10),
            now + time::Duration::days(100),
        );
        assert!(check_validity(p, &ok, now, &mut w).is_ok());
        assert!(w.is_empty());

        let soon = facts(
            now - time::Duration::days(10),
            now + time::Duration::days(5),
        );
        assert!(check_validity(p, &soon, now, &mut w).is_ok());
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("expires on") && w[0].contains("days left"),
            "{w:?}"
        );

        let expired = facts(
            now - time::Duration::days(10),
            now - time::Duration::days(1),
        );
        let err = check_validity(p, &expired, now, &mut w).unwrap_err();
        assert!(matches!(err, TlsError::Expired { .. }));
        assert!(
            err.to_string().contains("c.pem") && err.to_string().contains("expired on 2026-12-31")
        );

        let future = facts(
            now + time::Duration::days(1),
            now + time::Duration::days(100),
        );
        let err = check_validity(p, &future, now, &mut w).unwrap_err();
        assert!(matches!(err, TlsError::NotYetValid { .. }));
    }
}
