//! TLS for WSS: loading the server certificate (PEM or PKCS#12) into a
//! rustls configuration, and `cert create` (see `cert`).
