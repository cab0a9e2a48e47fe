//! `cert trust` / `untrust` / `renew` against real stores: NSS databases
//! (Chromium's and a Firefox profile's) in a temporary home, the system store
//! rebuilt by the real `update-ca-certificates` under a temporary sysroot, and
//! Firefox's policies.json there; the real system is never touched.

// NSS databases and update-ca-certificates are the Linux stores; the Windows
// store code is built by the Windows lint and needs a real Windows host.
#![cfg(unix)]

#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;

use wsconnector::config::Secret;
use wsconnector::tls::cert::{create, CreateOptions, Created};
use wsconnector::tls::renew::renew;
use wsconnector::tls::trust::{self, Outcome, Target, TrustOptions, TrustState, STATE_FILE};

fn have(tool: &str, args: &[&str], test: &str) -> bool {
    let ok = Command::new(tool).args(args).output().is_ok();
    if !ok {
        skip::skipped(test, &format!("{tool} not installed"));
    }
    ok
}

struct Env {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    sysroot: PathBuf,
    certs: Created,
}

/// A home with a Firefox profile (listed in profiles.ini, no database yet)
/// and a sysroot with what update-ca-certificates needs, plus certificates.
fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let profile = home.join(".mozilla/firefox/abcd.default-esr");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(
        home.join(".mozilla/firefox/profiles.ini"),
        "[Profile0]\nName=default-esr\nIsRelative=1\nPath=abcd.default-esr\nDefault=1\n",
    )
    .unwrap();
    let sysroot = tmp.path().join("root");
    for d in [
        "etc/ssl/certs",
        "usr/share/ca-certificates",
        "etc/ca-certificates/update.d",
    ] {
        std::fs::create_dir_all(sysroot.join(d)).unwrap();
    }
    // One distribution CA, as on a real system (the bundle is rebuilt from
    // what remains, so it must not become empty).
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    std::fs::create_dir_all(sysroot.join("usr/share/ca-certificates/distro")).unwrap();
    std::fs::write(
        sysroot.join("usr/share/ca-certificates/distro/other.crt"),
        other,
    )
    .unwrap();
    std::fs::write(
        sysroot.join("etc/ca-certificates.conf"),
        "distro/other.crt\n",
    )
    .unwrap();
    let certs = create(&tmp.path().join("certs"), &CreateOptions::default()).unwrap();
    Env {
        _tmp: tmp,
        home,
        sysroot,
        certs,
    }
}

impl Env {
    fn opts(&self, only: Option<Vec<Target>>) -> TrustOptions {
        TrustOptions {
            only,
            machine: false,
            home: self.home.clone(),
            sysroot: self.sysroot.clone(),
            echo: false,
        }
    }
    fn chromium_db(&self) -> PathBuf {
        self.home.join(".pki/nssdb")
    }
    fn firefox_db(&self) -> PathBuf {
        self.home.join(".mozilla/firefox/abcd.default-esr")
    }
    fn bundle(&self) -> PathBuf {
        self.sysroot.join("etc/ssl/certs/ca-certificates.crt")
    }
    fn policy(&self) -> PathBuf {
        self.sysroot.join("etc/firefox/policies/policies.json")
    }
}

/// The nicknames in an NSS database that hold `ca_pem`'s certificate.
fn nss_has(db: &Path, nickname: &str) -> bool {
    Command::new("certutil")
        .args(["-d", &format!("sql:{}", db.display()), "-L", "-n", nickname])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn bundle_has(bundle: &Path, ca_pem: &str) -> bool {
    let body: String = ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::read_to_string(bundle)
        .map(|b| {
            b.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
                .contains(&body)
        })
        .unwrap_or(false)
}

fn outcomes(r: &trust::Report) -> Vec<(Target, Outcome)> {
    r.steps.iter().map(|s| (s.target, s.outcome)).collect()
}

#[test]
fn trust_adds_to_every_store_once_and_untrust_removes_exactly_that() {
    if !have("certutil", &["-H"], "cert trust stores")
        || !have("update-ca-certificates", &["--help"], "cert trust stores")
    {
        return;
    }
    let e = env();
    let ca_pem = std::fs::read_to_string(&e.certs.ca_path).unwrap();
    let name = e.certs.ca_common_name.clone();
    // A policy an administrator already has stays as it was.
    std::fs::create_dir_all(e.policy().parent().unwrap()).unwrap();
    std::fs::write(
        e.policy(),
        r#"{"policies": {"DisableTelemetry": true, "Certificates": {"Install": ["/corp/root.pem"]}}}"#,
    )
    .unwrap();

    let all = Some(vec![Target::Nss, Target::System, Target::FirefoxPolicy]);
    let r = trust::trust(&e.certs.dir, &e.opts(all.clone())).unwrap();
    assert!(!r.failed(), "{r}");
    assert_eq!(
        outcomes(&r),
        vec![
            (Target::Nss, Outcome::Added),
            (Target::Nss, Outcome::Added),
            (Target::System, Outcome::Added),
            (Target::FirefoxPolicy, Outcome::Added),
        ],
        "{r}"
    );
    assert!(nss_has(&e.chromium_db(), &name));
    assert!(
        nss_has(&e.firefox_db(), &name),
        "the Firefox profile got a database and the CA"
    );
    assert!(
        bundle_has(&e.bundle(), &ca_pem),
        "update-ca-certificates put it in the bundle"
    );
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.policy()).unwrap()).unwrap();
    let install = policy["policies"]["Certificates"]["Install"]
        .as_array()
        .unwrap();
    assert_eq!(install.len(), 2, "{policy}");
    let copy = PathBuf::from(install[1].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        ca_pem,
        "the policy names a readable copy"
    );
    assert_eq!(TrustState::load(&e.certs.dir).unwrap().added.len(), 4);

    // Idempotent: nothing added the second time, nothing recorded twice.
    let again = trust::trust(&e.certs.dir, &e.opts(all.clone())).unwrap();
    assert!(
        again
            .steps
            .iter()
            .all(|s| s.outcome == Outcome::AlreadyThere),
        "{again}"
    );
    assert_eq!(TrustState::load(&e.certs.dir).unwrap().added.len(), 4);

    // A copy the administrator imported by hand elsewhere is not ours to remove.
    let manual = e.home.join("manual-db");
    std::fs::create_dir_all(&manual).unwrap();
    let m = format!("sql:{}", manual.display());
    assert!(Command::new("certutil")
        .args(["-d", &m, "-N", "--empty-password"])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("certutil")
        .args(["-d", &m, "-A", "-t", "C,,", "-n", &name, "-i"])
        .arg(&e.certs.ca_path)
        .status()
        .unwrap()
        .success());

    let r = trust::untrust(&e.certs.dir, &e.opts(None)).unwrap();
    assert!(!r.failed(), "{r}");
    assert!(r.steps.iter().all(|s| s.outcome == Outcome::Removed), "{r}");
    assert!(!nss_has(&e.chromium_db(), &name));
    assert!(!nss_has(&e.firefox_db(), &name));
    assert!(
        nss_has(&manual, &name),
        "untrust leaves what it did not add"
    );
    assert!(!bundle_has(&e.bundle(), &ca_pem));
    let links: Vec<_> = std::fs::read_dir(e.sysroot.join("etc/ssl/certs"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("wsconnector-"))
        .collect();
    assert!(links.is_empty(), "no link to the removed CA is left");
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.policy()).unwrap()).unwrap();
    assert_eq!(
        policy,
        serde_json::json!({"policies": {"DisableTelemetry": true, "Certificates": {"Install": ["/corp/root.pem"]}}})
    );
    assert!(!copy.exists());
    assert!(
        !e.certs.dir.join(STATE_FILE).exists(),
        "nothing left to remember"
    );

    // Untrust again: nothing recorded, nothing done.
    let r = trust::untrust(&e.certs.dir, &e.opts(None)).unwrap();
    assert_eq!(outcomes(&r), vec![(Target::Nss, Outcome::Skipped)], "{r}");
}

#[test]
fn only_limits_the_stores_and_a_read_only_system_store_fails_clearly() {
    if !have("certutil", &["-H"], "cert trust --only") {
        return;
    }
    let e = env();
    let r = trust::trust(&e.certs.dir, &e.opts(Some(vec![Target::Nss]))).unwrap();
    assert!(r.steps.iter().all(|s| s.target == Target::Nss), "{r}");
    assert!(!e.bundle().exists());

    // The Windows store on Linux, asked for by name, is a failure that says why.
    let r = trust::trust(&e.certs.dir, &e.opts(Some(vec![Target::Windows]))).unwrap();
    assert!(r.failed());
    assert!(r.steps[0].detail.contains("Windows only"), "{r}");

    // Root ignores file modes: as root, the binary is run as `nobody`
    // (setpriv, as in tests/other_user.rs) on a system store it cannot write.
    let ro = e.sysroot.join("usr/local/share");
    std::fs::create_dir_all(&ro).unwrap();
    if !nix_is_root() {
        set_mode(&ro, 0o555);
        let r = trust::trust(&e.certs.dir, &e.opts(Some(vec![Target::System]))).unwrap();
        set_mode(&ro, 0o755);
        assert!(r.failed());
        assert!(r.steps[0].detail.contains(NEEDS_ROOT), "{r}");
    } else if Command::new("setpriv").arg("--version").output().is_ok() {
        // Everything `nobody` must read is world-readable; the sysroot is root's.
        let open = e.sysroot.parent().unwrap();
        set_mode(open, 0o755);
        let certs = open.join("public-certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy(&e.certs.ca_path, certs.join("wsconnector-ca.pem")).unwrap();
        set_mode(&certs.join("wsconnector-ca.pem"), 0o644);
        let config = open.join("config.xml");
        std::fs::write(&config, "<configuration/>").unwrap();
        set_mode(&config, 0o644);
        let out = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(bin())
            .arg("--config")
            .arg(&config)
            .args(["cert", "trust", "--only", "system", "--dir"])
            .arg(&certs)
            .arg("--sysroot")
            .arg(&e.sysroot)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains("system") && stdout.contains("FAILED"),
            "{stdout}"
        );
        assert!(stdout.contains(NEEDS_ROOT), "{stdout}");
    } else {
        skip::skipped(
            "cert trust: permission error of the system store",
            "running as root without setpriv",
        );
    }
}

/// What a user without the rights is told.
const NEEDS_ROOT: &str = "needs root: run `sudo wsconnector cert trust --only system`";

/// The binary: `$WSCONNECTOR_BIN` when set, else cargo's.
fn bin() -> String {
    std::env::var("WSCONNECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsconnector").to_string())
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn renew_replaces_the_ca_in_the_same_stores_and_keeps_the_password() {
    if !have("certutil", &["-H"], "cert renew")
        || !have("update-ca-certificates", &["--help"], "cert renew")
    {
        return;
    }
    let e = env();
    let old_pem = std::fs::read_to_string(&e.certs.ca_path).unwrap();
    let old_name = e.certs.ca_common_name.clone();
    let r = trust::trust(
        &e.certs.dir,
        &e.opts(Some(vec![Target::Nss, Target::System])),
    )
    .unwrap();
    assert!(!r.failed(), "{r}");

    let password = e.certs.pfx_password.clone();
    let renewed = renew(&e.certs.dir, Some(password.clone()), &e.opts(None)).unwrap();
    assert!(!renewed.untrusted.failed() && !renewed.trusted.failed());
    let new_name = renewed.created.ca_common_name.clone();
    assert_ne!(new_name, old_name);
    assert!(!renewed.created.password_generated);
    // The configured password opens the new .pfx.
    let cfg = wsconnector::config::TlsConfig {
        certificate_path: renewed.created.pfx_path.clone(),
        key_path: None,
        password: Secret(password.0.clone()),
    };
    wsconnector::tls::load(&cfg).expect("the same Password opens the renewed .pfx");

    let new_pem = std::fs::read_to_string(&renewed.created.ca_path).unwrap();
    for db in [e.chromium_db(), e.firefox_db()] {
        assert!(
            !nss_has(&db, &old_name),
            "old CA gone from {}",
            db.display()
        );
        assert!(nss_has(&db, &new_name), "new CA in {}", db.display());
    }
    assert!(!bundle_has(&e.bundle(), &old_pem));
    assert!(bundle_has(&e.bundle(), &new_pem));
    // Only the stores the old CA was in: no Firefox policy appeared.
    assert!(!e.policy().exists());
    let state = TrustState::load(&e.certs.dir).unwrap();
    assert_eq!(state.added.len(), 3, "{state:?}");
}
