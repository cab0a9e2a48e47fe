//! The stores on Linux (and other Unix systems with NSS): the user's NSS
//! databases, the system store of `update-ca-certificates`, and Firefox's
//! enterprise policy file. Firefox on Linux never reads the system store
//! (`ImportEnterpriseRoots` works on Windows and macOS only), hence both its
//! profiles' databases and its `Certificates.Install` policy.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{nss, Added, CaCert, Outcome, Report, Step, Target, TrustOptions, TrustState};

/// The system's folder of locally added CAs, below the sysroot.
const LOCAL_CA_DIR: &str = "usr/local/share/ca-certificates";
/// The system bundle `update-ca-certificates` builds, below the sysroot.
pub(crate) const SYSTEM_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// Firefox's system-wide policy file on Linux, below the sysroot.
pub(crate) const FIREFOX_POLICY_FILE: &str = "etc/firefox/policies/policies.json";

/// NSS for the user; the system store and Firefox policy too when root
/// (they are machine-wide and need it).
pub(super) fn default_targets(sysroot: &Path) -> Vec<Target> {
    let root = nix::unistd::geteuid().is_root();
    if root || sysroot != Path::new("/") {
        vec![Target::Nss, Target::System, Target::FirefoxPolicy]
    } else {
        vec![Target::Nss]
    }
}

pub(super) fn trust(
    target: Target,
    ca: &CaCert,
    opts: &TrustOptions,
    state: &mut TrustState,
    report: &mut Report,
) {
    match target {
        Target::Nss => {
            for db in nss::user_databases(&opts.home) {
                report.push(trust_nss(&db, ca, state));
            }
        }
        Target::System => report.push(trust_system(ca, opts, state)),
        Target::FirefoxPolicy => report.push(trust_firefox_policy(ca, opts, state)),
        Target::Windows => report.push(Step {
            target,
            place: "Root store".into(),
            outcome: if opts.explicit(target) {
                Outcome::Failed
            } else {
                Outcome::Skipped
            },
            detail: "the Windows store exists on Windows only".into(),
        }),
    }
}

fn step(target: Target, place: &Path, outcome: Outcome, detail: impl Into<String>) -> Step {
    Step {
        target,
        place: place.display().to_string(),
        outcome,
        detail: detail.into(),
    }
}

fn trust_nss(db: &Path, ca: &CaCert, state: &mut TrustState) -> Step {
    let t = Target::Nss;
    if let Err(e) = nss::ensure_db(db) {
        return step(t, db, Outcome::Failed, e.to_string());
    }
    match nss::certs_named(db, &ca.common_name) {
        Ok(found) if found.contains(&ca.der) => {
            return step(t, db, Outcome::AlreadyThere, "");
        }
        Ok(_) => {}
        Err(e) => return step(t, db, Outcome::Failed, e.to_string()),
    }
    match nss::add_ca(db, &ca.common_name, &ca.path) {
        Ok(()) => {
            state.added.push(Added::Nss {
                db: db.to_path_buf(),
                nickname: ca.common_name.clone(),
            });
            step(t, db, Outcome::Added, "restart the browser")
        }
        Err(e) => step(t, db, Outcome::Failed, e.to_string()),
    }
}

/// `wsconnector-<serial>.crt`: one file per CA, so an old and a new CA can
/// coexist during a renewal.
fn system_file(ca: &CaCert, sysroot: &Path) -> PathBuf {
    let id: String = ca.serial_hex.chars().take(16).collect();
    sysroot
        .join(LOCAL_CA_DIR)
        .join(format!("wsconnector-{id}.crt"))
}

fn needs_root(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
}

fn trust_system(ca: &CaCert, opts: &TrustOptions, state: &mut TrustState) -> Step {
    let t = Target::System;
    let file = system_file(ca, &opts.sysroot);
    if std::fs::read(&file).is_ok_and(|b| super::first_pem_cert(&b).as_ref() == Some(&ca.der)) {
        return step(t, &file, Outcome::AlreadyThere, "");
    }
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&file, ca.pem.as_bytes()));
    if let Err(e) = written {
        let detail = if needs_root(&e) {
            "needs root: run `sudo wsconnector cert trust --only system`".to_string()
        } else {
            e.to_string()
        };
        return step(t, &file, Outcome::Failed, detail);
    }
    // Recorded before the update runs: if it fails, untrust still removes the file.
    state.added.push(Added::System { file: file.clone() });
    match update_ca_certificates(&opts.sysroot, false) {
        Ok(()) => step(t, &file, Outcome::Added, "update-ca-certificates done"),
        Err(e) => step(t, &file, Outcome::Failed, e),
    }
}

/// Run `update-ca-certificates`, on the paths below `sysroot` when it is not
/// `/`. After a removal it runs `--fresh`: otherwise the links to the removed
/// file stay in /etc/ssl/certs (and OpenSSL's hashed lookup with them).
fn update_ca_certificates(sysroot: &Path, fresh: bool) -> Result<(), String> {
    let mut cmd = Command::new("update-ca-certificates");
    if fresh {
        cmd.arg("--fresh");
    }
    if sysroot != Path::new("/") {
        let p = |rel: &str| sysroot.join(rel);
        cmd.arg("--certsconf")
            .arg(p("etc/ca-certificates.conf"))
            .arg("--certsdir")
            .arg(p("usr/share/ca-certificates"))
            .arg("--localcertsdir")
            .arg(p(LOCAL_CA_DIR))
            .arg("--etccertsdir")
            .arg(p("etc/ssl/certs"))
            .arg("--hooksdir")
            .arg(p("etc/ca-certificates/update.d"));
    }
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "update-ca-certificates failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "update-ca-certificates not found: install ca-certificates (on other distributions \
             use their tool, e.g. update-ca-trust)"
                .into(),
        ),
        Err(e) => Err(format!("cannot run update-ca-certificates: {e}")),
    }
}

/// The copy of the CA the policy names: world-readable beside the policy,
/// since every user's Firefox reads it (the certs folder is private).
fn firefox_policy_copy(ca: &CaCert, policy: &Path) -> PathBuf {
    let id: String = ca.serial_hex.chars().take(16).collect();
    policy
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("wsconnector-ca-{id}.pem"))
}

fn read_policy(file: &Path) -> Result<Option<serde_json::Value>, String> {
    match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not valid JSON ({e}): fix it first", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn install_list(policy: &mut serde_json::Value) -> Option<&mut Vec<serde_json::Value>> {
    let root = policy.as_object_mut()?;
    let policies = root
        .entry("policies")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    let certs = policies
        .entry("Certificates")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    certs
        .entry("Install")
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
}

fn write_policy(file: &Path, policy: &serde_json::Value) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(policy).map_err(std::io::Error::other)?;
    std::fs::write(file, text + "\n")
}

fn trust_firefox_policy(ca: &CaCert, opts: &TrustOptions, state: &mut TrustState) -> Step {
    let t = Target::FirefoxPolicy;
    let file = opts.sysroot.join(FIREFOX_POLICY_FILE);
    let copy = firefox_policy_copy(ca, &file);
    let entry = copy.display().to_string();
    let existing = match read_policy(&file) {
        Ok(p) => p,
        Err(e) => return step(t, &file, Outcome::Failed, e),
    };
    let created_file = existing.is_none();
    let mut policy = existing.unwrap_or_else(|| serde_json::json!({}));
    let Some(list) = install_list(&mut policy) else {
        return step(
            t,
            &file,
            Outcome::Failed,
            "policies.Certificates.Install is not a list: fix the file first",
        );
    };
    let copy_ok = std::fs::read(&copy).is_ok_and(|b| b == ca.pem.as_bytes());
    if copy_ok && list.iter().any(|v| v.as_str() == Some(&entry)) {
        return step(t, &file, Outcome::AlreadyThere, "");
    }
    list.push(serde_json::Value::String(entry.clone()));
    let written = copy
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&copy, ca.pem.as_bytes()))
        .and_then(|()| write_policy(&file, &policy));
    match written {
        Ok(()) => {
            state.added.push(Added::FirefoxPolicy {
                file: file.clone(),
                entry,
                created_file,
            });
            step(
                t,
                &file,
                Outcome::Added,
                "Firefox applies it at its next start",
            )
        }
        Err(e) if needs_root(&e) => step(
            t,
            &file,
            Outcome::Failed,
            "needs root: run `sudo wsconnector cert trust --only firefox-policy`",
        ),
        Err(e) => step(t, &file, Outcome::Failed, e.to_string()),
    }
}

pub(super) fn untrust(added: &Added, _opts: &TrustOptions) -> Step {
    match added {
        Added::Nss { db, nickname } => {
            let t = Target::Nss;
            match nss::certs_named(db, nickname) {
                Ok(found) if found.is_empty() => step(t, db, Outcome::AlreadyGone, ""),
                Ok(_) => match nss::delete(db, nickname) {
                    Ok(()) => step(t, db, Outcome::Removed, nickname.as_str()),
                    Err(e) => step(t, db, Outcome::Failed, e.to_string()),
                },
                Err(e) => step(t, db, Outcome::Failed, e.to_string()),
            }
        }
        Added::System { file } => {
            let t = Target::System;
            let sysroot = sysroot_of(file, LOCAL_CA_DIR);
            match std::fs::remove_file(file) {
                Ok(()) => match update_ca_certificates(&sysroot, true) {
                    Ok(()) => step(t, file, Outcome::Removed, "update-ca-certificates done"),
                    Err(e) => step(t, file, Outcome::Failed, e),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    step(t, file, Outcome::AlreadyGone, "")
                }
                Err(e) if needs_root(&e) => step(
                    t,
                    file,
                    Outcome::Failed,
                    "needs root: run `sudo wsconnector cert untrust --only system`",
                ),
                Err(e) => step(t, file, Outcome::Failed, e.to_string()),
            }
        }
        Added::FirefoxPolicy {
            file,
            entry,
            created_file,
        } => untrust_firefox_policy(file, entry, *created_file),
        Added::Windows { name, .. } => step(
            Target::Windows,
            Path::new("Root store"),
            Outcome::Failed,
            format!("{name} was added on Windows: run `cert untrust` there"),
        ),
    }
}

/// The sysroot a recorded path was written under (`file` = sysroot/rel/name).
fn sysroot_of(file: &Path, rel: &str) -> PathBuf {
    let depth = Path::new(rel).components().count() + 1;
    file.ancestors()
        .nth(depth)
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn untrust_firefox_policy(file: &Path, entry: &str, created_file: bool) -> Step {
    let t = Target::FirefoxPolicy;
    let mut policy = match read_policy(file) {
        Ok(Some(p)) => p,
        Ok(None) => return step(t, file, Outcome::AlreadyGone, ""),
        Err(e) => return step(t, file, Outcome::Failed, e),
    };
    let removed = prune_install_entry(&mut policy, entry);
    let copy_removed = match std::fs::remove_file(entry) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return step(t, file, Outcome::Failed, e.to_string()),
    };
    if !removed {
        let outcome = if copy_removed {
            Outcome::Removed
        } else {
            Outcome::AlreadyGone
        };
        return step(t, file, outcome, "");
    }
    let now_empty = policy
        .get("policies")
        .and_then(|p| p.as_object())
        .is_some_and(|p| p.is_empty());
    let result = if created_file && now_empty {
        std::fs::remove_file(file)
    } else {
        write_policy(file, &policy)
    };
    match result {
        Ok(()) => step(t, file, Outcome::Removed, entry),
        Err(e) if needs_root(&e) => step(
            t,
            file,
            Outcome::Failed,
            "needs root: run `sudo wsconnector cert untrust --only firefox-policy`",
        ),
        Err(e) => step(t, file, Outcome::Failed, e.to_string()),
    }
}

/// Remove `entry` from `policies.Certificates.Install`, and the containers
/// it leaves empty. True when it was there.
fn prune_install_entry(policy: &mut serde_json::Value, entry: &str) -> bool {
    let Some(policies) = policy.get_mut("policies").and_then(|p| p.as_object_mut()) else {
        return false;
    };
    let Some(certs) = policies
        .get_mut("Certificates")
        .and_then(|c| c.as_object_mut())
    else {
        return false;
    };
    let Some(list) = certs.get_mut("Install").and_then(|l| l.as_array_mut()) else {
        return false;
    };
    let before = list.len();
    list.retain(|v| v.as_str() != Some(entry));
    let removed = list.len() != before;
    if list.is_empty() {
        certs.remove("Install");
    }
    if certs.is_empty() {
        policies.remove("Certificates");
    }
    removed
}

pub(super) fn trusted_in(ca: &CaCert, opts: &TrustOptions) -> Vec<String> {
    let mut places = Vec::new();
    for db in nss::user_databases(&opts.home) {
        if db.join("cert9.db").exists()
            && nss::certs_named(&db, &ca.common_name).is_ok_and(|f| f.contains(&ca.der))
        {
            places.push(format!("NSS database {}", db.display()));
        }
    }
    let bundle = opts.sysroot.join(SYSTEM_BUNDLE);
    if std::fs::read(&bundle).is_ok_and(|b| super::all_pem_certs(&b).contains(&ca.der)) {
        places.push(format!("system store {}", bundle.display()));
    }
    let policy = opts.sysroot.join(FIREFOX_POLICY_FILE);
    let copy = firefox_policy_copy(ca, &policy);
    if let Ok(Some(mut p)) = read_policy(&policy) {
        let listed = install_list(&mut p).is_some_and(|l| {
            l.iter()
                .any(|v| v.as_str() == Some(&copy.display().to_string()))
        });
        if listed && std::fs::read(&copy).is_ok_and(|b| b == ca.pem.as_bytes()) {
            places.push(format!("Firefox policy {}", policy.display()));
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_entry_is_pruned_with_the_containers_it_empties() {
        let mut p = serde_json::json!({"policies": {
            "Certificates": {"Install": ["/a.pem", "/ours.pem"], "ImportEnterpriseRoots": true},
            "DisableTelemetry": true}});
        assert!(prune_install_entry(&mut p, "/ours.pem"));
        assert_eq!(
            p["policies"]["Certificates"]["Install"],
            serde_json::json!(["/a.pem"])
        );
        assert!(!prune_install_entry(&mut p, "/ours.pem"));

        let mut q = serde_json::json!({"policies": {"Certificates": {"Install": ["/ours.pem"]}}});
        assert!(prune_install_entry(&mut q, "/ours.pem"));
        assert_eq!(q, serde_json::json!({"policies": {}}));
    }

    #[test]
    fn sysroot_is_found_from_a_recorded_file() {
        let f = Path::new("/tmp/root/usr/local/share/ca-certificates/wsconnector-01.crt");
        assert_eq!(sysroot_of(f, LOCAL_CA_DIR), Path::new("/tmp/root"));
        let g = Path::new("/usr/local/share/ca-certificates/wsconnector-01.crt");
        assert_eq!(sysroot_of(g, LOCAL_CA_DIR), Path::new("/"));
    }
}
