//! TLS for WSS: loading the server certificate (PEM or PKCS#12) into a
//! rustls configuration, and `cert create` (see `cert`).

// TEMPORARY stub, replaced on merge.
/// TLS error.
#[derive(Debug, thiserror::Error)]
#[error("tls not built yet")]
pub struct TlsError;
/// Server config.
pub fn server_config(
    _tls: &crate::config::TlsConfig,
) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    Err(TlsError)
}
