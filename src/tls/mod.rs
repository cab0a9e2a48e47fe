//! TLS for WSS: loading the server certificate (PEM or PKCS#12) into a
//! rustls configuration (`load`), and `wsconnector cert create` (`cert`).
//!
//! INTERFACE CONTRACT (used by main and the server; keep these signatures):
//! - `server_config(&TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError>`:
//!   TLS 1.2 and 1.3 (ring), no client auth, ALPN `http/1.1`; warnings
//!   (expiry within 30 days, ...) are logged. `load` returns them instead.
//! - `cert::create(&Path, &CreateOptions) -> Result<Created, CertError>`;
//!   `Created::instructions()` is what the CLI prints.
//! - `cert::generate(&CreateOptions) -> Result<GeneratedCerts, CertError>`:
//!   the same certificates in memory, for tests of other modules.

pub mod cert;
mod load;

pub use load::{
    format_utc, leaf_certificate, load, load_at, server_config, LoadedCertificate, TlsError,
    EXPIRY_WARNING_DAYS,
};
