//! TLS for WSS: loading the server certificate (PEM or PKCS#12) into a
//! rustls configuration (`load`), and the `wsconnector cert` commands:
//! `create` (`cert`), `trust`/`untrust` (`trust`, one file per OS store
//! family), `renew` (`renew`) and `check` (`doctor`); `expiry` is the
//! renewal warning the daemon logs and `/health` and the tray show.
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
pub mod command;
pub mod doctor;
pub mod expiry;
pub mod leaf_check;
mod load;
pub mod renew;
pub mod trust;

pub use expiry::{CertificateStatus, RENEW_WARNING_DAYS};
pub use load::server_config_with_expiry;
pub use load::{
    format_utc, leaf_certificate, load, load_at, server_config, LoadedCertificate, TlsError,
    EXPIRY_WARNING_DAYS,
};
