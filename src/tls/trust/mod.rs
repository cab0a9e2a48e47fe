//! `wsconnector cert trust` / `cert untrust`: put the CA written by
//! `cert create` into the certificate stores the browsers read, and take out
//! exactly what we put in.
//!
//! Every addition is remembered in [`STATE_FILE`] beside the certificates, so
//! `untrust` removes only what `trust` added (never a copy an administrator
//! imported by hand), and `trust` run twice adds nothing the second time.
//! Each store is one step with its own outcome, printed as it happens.
//!
//! The stores are platform code, chosen once: `unix` (the user's NSS
//! databases for Chromium and each Firefox profile, the system store of
//! `update-ca-certificates`, Firefox's enterprise policy file) and `windows`
//! (`certutil -addstore Root`, current user or machine).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cert::CA_FILE;

#[cfg(not(windows))]
pub(crate) mod nss;
#[cfg(not(windows))]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(not(windows))]
use unix as os;
#[cfg(windows)]
use windows as os;

/// The file, beside the certificates, that remembers what `trust` added.
pub const STATE_FILE: &str = "trust-state.json";

/// A certificate store `cert trust` can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The user's NSS databases: Chromium (~/.pki/nssdb) and every Firefox profile (Linux).
    Nss,
    /// The system store of update-ca-certificates (Linux; needs root).
    System,
    /// Firefox's enterprise policy file, `Certificates.Install` (Linux; needs root).
    FirefoxPolicy,
    /// The Windows Root store (current user, or the machine with --machine).
    Windows,
}

impl Target {
    /// The name shown in reports and accepted by `--only`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Nss => "nss",
            Target::System => "system",
            Target::FirefoxPolicy => "firefox-policy",
            Target::Windows => "windows",
        }
    }
}

/// Where and how to trust.
#[derive(Debug, Clone)]
pub struct TrustOptions {
    /// The stores to use; `None` means this platform's defaults (on Linux:
    /// NSS always, the system store and Firefox policy when run as root).
    pub only: Option<Vec<Target>>,
    /// Windows: the machine's Root store (administrator) instead of the user's.
    pub machine: bool,
    /// The home folder whose NSS databases are used (normally `$HOME`).
    pub home: PathBuf,
    /// Root of the system paths (`/`; tests use a temporary folder so the
    /// real system store is never touched).
    pub sysroot: PathBuf,
    /// Print each step on stdout as it happens (the CLI; a slow store such
    /// as certutil then shows progress).
    pub echo: bool,
}

impl TrustOptions {
    /// The options for this user and the real system.
    pub fn for_current_user() -> TrustOptions {
        TrustOptions {
            only: None,
            machine: false,
            home: home_dir(),
            sysroot: PathBuf::from("/"),
            echo: false,
        }
    }

    /// The stores to use.
    pub(crate) fn targets(&self) -> Vec<Target> {
        match &self.only {
            Some(t) => t.clone(),
            None => os::default_targets(&self.sysroot),
        }
    }

    /// True when the user asked for `t` by name (a failure is then an error,
    /// not a note).
    pub(crate) fn explicit(&self, t: Target) -> bool {
        self.only.as_ref().is_some_and(|o| o.contains(&t))
    }
}

/// `$HOME` (`%USERPROFILE%` on Windows), else the current folder.
pub fn home_dir() -> PathBuf {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().to_path_buf())
        .unwrap_or_default()
}

/// Why trusting could not even start (a step that fails is in the report).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file is missing or unreadable.
    #[error("cannot read the CA certificate {}: {source} (create it with `wsconnector cert create`)", path.display())]
    NoCa {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The CA file is not a PEM certificate.
    #[error("{} is not a PEM CA certificate: {detail}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The state file is damaged.
    #[error("cannot read {}: {detail} (fix or delete it; then remove old trust entries by hand)", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The state file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteState {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// The CA certificate to trust, read from `cert create`'s output.
#[derive(Debug, Clone)]
pub struct CaCert {
    /// The PEM file.
    pub path: PathBuf,
    /// Its PEM text.
    pub pem: String,
    /// DER bytes (what stores are compared by).
    pub der: Vec<u8>,
    /// The common name, unique per CA: the NSS nickname and what Windows shows.
    pub common_name: String,
    /// Serial number in hex (Windows `certutil -delstore` takes it).
    pub serial_hex: String,
}

impl CaCert {
    /// Read and parse the CA certificate at `path`.
    pub fn read(path: &Path) -> Result<CaCert, TrustError> {
        let pem = std::fs::read_to_string(path).map_err(|source| TrustError::NoCa {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |detail: String| TrustError::BadCa {
            path: path.to_path_buf(),
            detail,
        };
        let der =
            first_pem_cert(pem.as_bytes()).ok_or_else(|| bad("no CERTIFICATE block".into()))?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("wsconnector local CA")
            .to_string();
        let serial_hex = cert.tbs_certificate.raw_serial_as_string().replace(':', "");
        Ok(CaCert {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            pem,
            der,
            common_name,
            serial_hex,
        })
    }
}

/// The DER of the first certificate of a PEM text.
pub(crate) fn first_pem_cert(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// Every certificate of a PEM text, DER (the Unix stores are PEM bundles).
#[cfg(not(windows))]
pub(crate) fn all_pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect()
}

/// One thing `trust` added, exactly enough to remove it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "kebab-case")]
pub enum Added {
    /// A certificate in an NSS database, under a nickname.
    Nss {
        /// The database folder (holding cert9.db).
        db: PathBuf,
        /// The nickname it was added under (the CA's common name).
        nickname: String,
    },
    /// A file in the system's local CA folder.
    System {
        /// The `.crt` file we wrote.
        file: PathBuf,
    },
    /// An entry of Firefox's `Certificates.Install` policy.
    FirefoxPolicy {
        /// The policies.json file.
        file: PathBuf,
        /// The path we added to `Install`.
        entry: String,
        /// True when the file did not exist before (then we delete it once empty).
        created_file: bool,
    },
    /// A certificate in a Windows Root store.
    Windows {
        /// The machine store (else the current user's).
        machine: bool,
        /// The certificate's serial number (hex), how `certutil -delstore` finds it.
        serial: String,
        /// Its common name, for the report.
        name: String,
    },
}

impl Added {
    /// The store this entry belongs to.
    pub fn target(&self) -> Target {
        match self {
            Added::Nss { .. } => Target::Nss,
            Added::System { .. } => Target::System,
            Added::FirefoxPolicy { .. } => Target::FirefoxPolicy,
            Added::Windows { .. } => Target::Windows,
        }
    }
}

/// What `trust` added and has not removed yet ([`STATE_FILE`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustState {
    /// The additions, in order.
    pub added: Vec<Added>,
}

impl TrustState {
    /// The state in `dir`; empty when there is no file.
    pub fn load(dir: &Path) -> Result<TrustState, TrustError> {
        let path = dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TrustError::BadState {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustState::default()),
            Err(e) => Err(TrustError::BadState {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// Write the state into `dir` (deleted when empty).
    pub fn save(&self, dir: &Path) -> Result<(), TrustError> {
        let path = dir.join(STATE_FILE);
        let write = |source| TrustError::WriteState {
            path: path.clone(),
            source,
        };
        if self.added.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write(e)),
                _ => Ok(()),
            };
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| write(e.into()))?;
        std::fs::write(&path, text + "\n").map_err(write)
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The CA was added to the store.
    Added,
    /// The store already had it (nothing done; not recorded if we did not add it).
    AlreadyThere,
    /// Our earlier addition was removed.
    Removed,
    /// Our earlier addition was already gone.
    AlreadyGone,
    /// Not done, with the reason (not an error).
    Skipped,
    /// Failed, with the reason and the fix.
    Failed,
}

/// One store's step of `trust` or `untrust`.
#[derive(Debug, Clone)]
pub struct Step {
    /// The store.
    pub target: Target,
    /// Which one (a database folder, a file, "current user").
    pub place: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, or what to do.
    pub detail: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.outcome {
            Outcome::Added => "added",
            Outcome::AlreadyThere => "already trusted",
            Outcome::Removed => "removed",
            Outcome::AlreadyGone => "already gone",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "FAILED",
        };
        write!(f, "{:<15} {}: {what}", self.target.name(), self.place)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Every step of one `trust` or `untrust`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Print each step as it is pushed.
    echo: bool,
}

impl Report {
    /// True when a step failed (the CLI then exits non-zero).
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.outcome == Outcome::Failed)
    }

    pub(crate) fn push(&mut self, step: Step) {
        if self.echo {
            println!("{step}");
        }
        self.steps.push(step);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Add the CA in `dir` to the chosen stores, recording each addition.
pub fn trust(dir: &Path, opts: &TrustOptions) -> Result<Report, TrustError> {
    let ca = CaCert::read(&dir.join(CA_FILE))?;
    let mut state = TrustState::load(dir)?;
    let mut report = Report {
        echo: opts.echo,
        ..Report::default()
    };
    for target in opts.targets() {
        os::trust(target, &ca, opts, &mut state, &mut report);
        // Saved after every store, so a crash half-way still lets untrust
        // find what was added.
        state.save(dir)?;
    }
    Ok(report)
}

/// Remove what `trust` added (only in the chosen stores when `opts.only`).
pub fn untrust(dir: &Path, opts: &TrustOptions) -> Result<Report, TrustError> {
    let mut state = TrustState::load(dir)?;
    let mut report = Report {
        echo: opts.echo,
        ..Report::default()
    };
    let wanted = |a: &Added| opts.only.as_ref().is_none_or(|o| o.contains(&a.target()));
    let mut kept = Vec::new();
    for added in std::mem::take(&mut state.added) {
        if !wanted(&added) {
            kept.push(added);
            continue;
        }
        let step = os::untrust(&added, opts);
        if step.outcome == Outcome::Failed {
            kept.push(added);
        }
        report.push(step);
    }
    if report.steps.is_empty() {
        report.push(Step {
            target: opts.targets().first().copied().unwrap_or(Target::Nss),
            place: dir.join(STATE_FILE).display().to_string(),
            outcome: Outcome::Skipped,
            detail: "nothing recorded: `cert trust` added nothing here".into(),
        });
    }
    state.added = kept;
    state.save(dir)?;
    Ok(report)
}

/// Where the CA is trusted right now, for `cert check`: one line per store
/// that holds it.
pub fn trusted_in(ca: &CaCert, opts: &TrustOptions) -> Vec<String> {
    os::trusted_in(ca, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_vanishes_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let state = TrustState {
            added: vec![
                Added::Nss {
                    db: "/h/.pki/nssdb".into(),
                    nickname: "wsconnector local CA (x)".into(),
                },
                Added::Windows {
                    machine: false,
                    serial: "0A".into(),
                    name: "n".into(),
                },
            ],
        };
        state.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("\"store\": \"nss\""), "{text}");
        assert_eq!(TrustState::load(dir.path()).unwrap(), state);
        TrustState::default().save(dir.path()).unwrap();
        assert!(!dir.path().join(STATE_FILE).exists());
        assert_eq!(TrustState::load(dir.path()).unwrap(), TrustState::default());
    }

    #[test]
    fn ca_is_read_with_its_name_and_serial() {
        let dir = tempfile::tempdir().unwrap();
        let created = super::super::cert::create(dir.path(), &Default::default()).unwrap();
        let ca = CaCert::read(&created.ca_path).unwrap();
        assert_eq!(ca.common_name, created.ca_common_name);
        assert!(!ca.serial_hex.is_empty() && ca.serial_hex.chars().all(|c| c.is_ascii_hexdigit()));
        let err = CaCert::read(&created.key_path).unwrap_err();
        assert!(matches!(err, TrustError::BadCa { .. }), "{err}");
    }
}
