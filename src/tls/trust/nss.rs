//! NSS databases (Chromium's `~/.pki/nssdb`, each Firefox profile's
//! `cert9.db`) through `certutil` from libnss3-tools: the only supported way
//! to write them (they are SQLite files with NSS's own encoding).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The trust flags for a CA that may identify web sites: `C` (trusted CA for
/// TLS servers), nothing for e-mail and code signing.
const CA_TRUST_FLAGS: &str = "C,,";

/// Why a `certutil` call failed.
#[derive(Debug, thiserror::Error)]
pub enum NssError {
    /// certutil is not installed.
    #[error("certutil not found: install it (Debian/Ubuntu: apt-get install libnss3-tools; Fedora: nss-tools)")]
    NoCertutil,
    /// certutil ran and failed.
    #[error("certutil {args} failed: {stderr}")]
    Failed {
        /// Its arguments.
        args: String,
        /// What it said.
        stderr: String,
    },
}

/// One certificate listed in a database.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its nickname.
    pub nickname: String,
    /// Its trust flags, e.g. `C,,` or `CT,C,C`.
    pub trust: String,
}

impl Entry {
    /// True when trusted as a CA for TLS servers (`C` in the SSL field): what
    /// makes a certificate able to vouch for web sites.
    pub fn trusted_for_tls(&self) -> bool {
        self.trust
            .split(',')
            .next()
            .is_some_and(|ssl| ssl.contains('C'))
    }
}

fn certutil(args: &[&str]) -> Result<std::process::Output, NssError> {
    Command::new("certutil")
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NssError::NoCertutil,
            _ => NssError::Failed {
                args: args.join(" "),
                stderr: e.to_string(),
            },
        })
}

fn checked(args: &[&str]) -> Result<String, NssError> {
    let out = certutil(args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NssError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn db_arg(db: &Path) -> String {
    format!("sql:{}", db.display())
}

/// Create an empty database (no password) in `db` if it has none.
pub fn ensure_db(db: &Path) -> Result<(), NssError> {
    if db.join("cert9.db").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(db).map_err(|e| NssError::Failed {
        args: format!("(create {})", db.display()),
        stderr: e.to_string(),
    })?;
    checked(&["-d", &db_arg(db), "-N", "--empty-password"]).map(drop)
}

/// The DER certificates stored under `nickname` (none when absent).
pub fn certs_named(db: &Path, nickname: &str) -> Result<Vec<Vec<u8>>, NssError> {
    let out = certutil(&["-d", &db_arg(db), "-L", "-n", nickname, "-a"])?;
    if !out.status.success() {
        // certutil says "could not find certificate named ..." and exits 255.
        return Ok(Vec::new());
    }
    Ok(super::all_pem_certs(&out.stdout))
}

/// Add the PEM file `ca_file` as a trusted CA under `nickname`.
pub fn add_ca(db: &Path, nickname: &str, ca_file: &Path) -> Result<(), NssError> {
    let file = ca_file.display().to_string();
    checked(&[
        "-d",
        &db_arg(db),
        "-A",
        "-t",
        CA_TRUST_FLAGS,
        "-n",
        nickname,
        "-i",
        &file,
    ])
    .map(drop)
}

/// Delete the certificate under `nickname`.
pub fn delete(db: &Path, nickname: &str) -> Result<(), NssError> {
    checked(&["-d", &db_arg(db), "-D", "-n", nickname]).map(drop)
}

/// Every certificate of the database with its trust flags.
pub fn list(db: &Path) -> Result<Vec<Entry>, NssError> {
    Ok(parse_listing(&checked(&["-d", &db_arg(db), "-L"])?))
}

/// Parse `certutil -L`.
fn parse_listing(text: &str) -> Vec<Entry> {
    // A header ("Certificate Nickname   Trust Attributes", "SSL,S/MIME,JAR/XPI",
    // a blank line), then "<nickname> <spaces> <flags>" per certificate; the
    // nickname may contain spaces, the flags never do.
    text.lines()
        .filter_map(|line| {
            let line = line.trim_end();
            let (name, flags) = line.rsplit_once(char::is_whitespace)?;
            let name = name.trim();
            let is_flags = flags.matches(',').count() == 2
                && flags.chars().all(|c| c == ',' || c.is_ascii_alphabetic());
            (is_flags && !name.is_empty()).then(|| Entry {
                nickname: name.to_string(),
                trust: flags.to_string(),
            })
        })
        .collect()
}

/// The NSS databases of `home`: Chromium's (always listed; `trust` creates
/// it when missing), and every Firefox profile (classic and snap installs) that has
/// a `cert9.db` or is listed in `profiles.ini`.
pub fn user_databases(home: &Path) -> Vec<PathBuf> {
    let mut dbs = vec![home.join(".pki").join("nssdb")];
    for firefox in [
        home.join(".mozilla").join("firefox"),
        home.join("snap/firefox/common/.mozilla/firefox"),
    ] {
        let mut profiles = profiles_in_ini(&firefox);
        if let Ok(entries) = std::fs::read_dir(&firefox) {
            for e in entries.flatten() {
                let p = e.path();
                if p.join("cert9.db").exists() && !profiles.contains(&p) {
                    profiles.push(p);
                }
            }
        }
        profiles.sort();
        dbs.extend(profiles);
    }
    dbs
}

/// The profile folders named by `<firefox>/profiles.ini` (`Path=`, relative
/// to that folder unless `IsRelative=0`).
fn profiles_in_ini(firefox: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(firefox.join("profiles.ini")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut relative = true;
    let mut path: Option<String> = None;
    let mut flush = |relative: bool, path: &mut Option<String>| {
        if let Some(p) = path.take() {
            let p = if relative {
                firefox.join(p)
            } else {
                PathBuf::from(p)
            };
            if p.is_dir() && !out.contains(&p) {
                out.push(p);
            }
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(relative, &mut path);
            relative = true;
        } else if let Some(v) = line.strip_prefix("Path=") {
            path = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("IsRelative=") {
            relative = v != "0";
        }
    }
    flush(relative, &mut path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firefox_profiles_come_from_profiles_ini_and_cert9_files() {
        let home = tempfile::tempdir().unwrap();
        let ff = home.path().join(".mozilla/firefox");
        for p in ["abc.default-release", "old.profile", "stray"] {
            std::fs::create_dir_all(ff.join(p)).unwrap();
        }
        std::fs::write(ff.join("old.profile/cert9.db"), b"").unwrap();
        let abs = home.path().join("elsewhere");
        std::fs::create_dir_all(&abs).unwrap();
        std::fs::write(
            ff.join("profiles.ini"),
            format!(
                "[Profile0]\nName=default\nIsRelative=1\nPath=abc.default-release\n\n\
                 [Profile1]\nIsRelative=0\nPath={}\n[General]\nVersion=2\n",
                abs.display()
            ),
        )
        .unwrap();
        let dbs = user_databases(home.path());
        // Chromium's database first, then the profiles in path order.
        let mut profiles = vec![ff.join("abc.default-release"), ff.join("old.profile"), abs];
        profiles.sort();
        let mut expected = vec![home.path().join(".pki/nssdb")];
        expected.extend(profiles);
        assert_eq!(dbs, expected);
    }

    #[test]
    fn listing_is_parsed_with_spaces_in_nicknames() {
        let text = "\nCertificate Nickname                                         Trust Attributes\n\
                    \x20                                                            SSL,S/MIME,JAR/XPI\n\n\
                    wsconnector local CA (host, 2026-01-01, ABCDEF)              C,,  \n\
                    my cert                                                      u,u,u\n";
        let entries = parse_listing(text);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(
            entries[0].nickname,
            "wsconnector local CA (host, 2026-01-01, ABCDEF)"
        );
        assert!(entries[0].trusted_for_tls());
        assert!(!entries[1].trusted_for_tls());
    }
}
