//! `wsconnector cert renew`: the explicit administrator step that replaces
//! the certificates before they expire. The daemon only warns (src/tls/expiry.rs);
//! it never renews by itself, because a new certificate needs a new CA (the
//! old CA's key was never kept) and a new CA is worthless until trusted.
//!
//! Order matters: the new CA and leaf are made and written first (a failure
//! there leaves the old, still trusted set in place), then the old CA is
//! taken out of exactly the stores `trust` recorded, then the new one is
//! trusted in those stores.

use std::path::Path;

use super::cert::{self, CertError, CreateOptions, Created};
use super::trust::{self, Report, TrustError, TrustOptions, TrustState};
use crate::config::Secret;

/// Why renewal stopped.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The new certificates could not be made; the old ones are untouched.
    #[error("cannot create the new certificates (the old ones are unchanged): {0}")]
    Create(#[from] CertError),
    /// Trust bookkeeping failed after the new certificates were written.
    #[error("the new certificates are written, but trusting them failed: {0}")]
    Trust(#[from] TrustError),
}

/// What `renew` did.
#[derive(Debug)]
pub struct Renewed {
    /// The new certificates (and the .pfx password, if generated).
    pub created: Created,
    /// Removal of the old CA from the recorded stores.
    pub untrusted: Report,
    /// Trust of the new CA.
    pub trusted: Report,
}

/// Replace the certificates in `dir` and move the trust from the old CA to
/// the new one. `pfx_password` keeps the configured `Password` valid (a new
/// one is generated when `None`).
pub fn renew(
    dir: &Path,
    pfx_password: Option<Secret>,
    opts: &TrustOptions,
) -> Result<Renewed, RenewError> {
    // The stores the old CA was put in get the new one, unless told otherwise.
    let recorded = TrustState::load(dir)?;
    let mut targets: Vec<trust::Target> = Vec::new();
    for a in &recorded.added {
        if !targets.contains(&a.target()) {
            targets.push(a.target());
        }
    }
    let created = cert::create(
        dir,
        &CreateOptions {
            pfx_password,
            force: true,
            ..CreateOptions::default()
        },
    )?;
    let untrusted = trust::untrust(
        dir,
        &TrustOptions {
            only: None,
            ..opts.clone()
        },
    )?;
    let trust_opts = match (&opts.only, targets.is_empty()) {
        (Some(_), _) | (None, true) => opts.clone(),
        (None, false) => TrustOptions {
            only: Some(targets),
            ..opts.clone()
        },
    };
    let trusted = trust::trust(dir, &trust_opts)?;
    Ok(Renewed {
        created,
        untrusted,
        trusted,
    })
}
