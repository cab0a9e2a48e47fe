//! The stores on Windows: the Root store through `certutil` (the current
//! user's with `-user`, which shows a confirmation dialog; the machine's with
//! `--machine`, as administrator), and with `--machine` Firefox's
//! `ImportEnterpriseRoots` policy so Firefox reads that store too. Chrome and
//! Edge read the Windows store themselves.

use std::path::Path;
use std::process::Command;

use super::{Added, CaCert, Outcome, Report, Step, Target, TrustOptions, TrustState};

/// Where Firefox reads machine policies.
const FIREFOX_POLICY_KEY: &str = r"HKLM\SOFTWARE\Policies\Mozilla\Firefox\Certificates";
/// The policy value that makes Firefox trust the Windows Root store.
const IMPORT_ENTERPRISE_ROOTS: &str = "ImportEnterpriseRoots";

pub(super) fn default_targets(_sysroot: &Path) -> Vec<Target> {
    vec![Target::Windows, Target::FirefoxPolicy]
}

fn step(target: Target, place: &str, outcome: Outcome, detail: impl Into<String>) -> Step {
    Step {
        target,
        place: place.to_string(),
        outcome,
        detail: detail.into(),
    }
}

fn store_name(machine: bool) -> &'static str {
    if machine {
        "machine Root store"
    } else {
        "current user's Root store"
    }
}

/// Run a command; its output, or why it failed.
fn run(cmd: &mut Command) -> Result<String, String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{} (exit {})",
            String::from_utf8_lossy(&out.stdout).trim(),
            out.status
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn certutil(machine: bool) -> Command {
    let mut c = Command::new("certutil");
    if !machine {
        c.arg("-user");
    }
    c
}

/// True when the store holds a certificate with this serial number.
fn in_store(machine: bool, serial: &str) -> bool {
    run(certutil(machine).args(["-store", "Root", serial])).is_ok()
}

pub(super) fn trust(
    target: Target,
    ca: &CaCert,
    opts: &TrustOptions,
    state: &mut TrustState,
    report: &mut Report,
) {
    let skipped = |detail: &str| {
        step(
            target,
            target.name(),
            if opts.explicit(target) {
                Outcome::Failed
            } else {
                Outcome::Skipped
            },
            detail,
        )
    };
    let s = match target {
        Target::Windows => {
            let place = store_name(opts.machine);
            if in_store(opts.machine, &ca.serial_hex) {
                step(target, place, Outcome::AlreadyThere, "")
            } else {
                match run(certutil(opts.machine)
                    .arg("-addstore")
                    .arg("Root")
                    .arg(&ca.path))
                {
                    Ok(_) => {
                        state.added.push(Added::Windows {
                            machine: opts.machine,
                            serial: ca.serial_hex.clone(),
                            name: ca.common_name.clone(),
                        });
                        step(target, place, Outcome::Added, ca.common_name.as_str())
                    }
                    Err(e) if opts.machine => step(
                        target,
                        place,
                        Outcome::Failed,
                        format!("{e}: run as administrator, or without --machine for this user"),
                    ),
                    Err(e) => step(target, place, Outcome::Failed, e),
                }
            }
        }
        Target::FirefoxPolicy if opts.machine => trust_firefox_policy(state),
        Target::FirefoxPolicy => skipped(
            "machine policy: use --machine as administrator (or set \
             security.enterprise_roots.enabled in Firefox)",
        ),
        Target::Nss | Target::System => skipped("Linux only"),
    };
    report.push(s);
}

fn trust_firefox_policy(state: &mut TrustState) -> Step {
    let t = Target::FirefoxPolicy;
    let query =
        run(Command::new("reg").args(["query", FIREFOX_POLICY_KEY, "/v", IMPORT_ENTERPRISE_ROOTS]));
    if query.as_deref().is_ok_and(|o| o.contains("0x1")) {
        return step(t, FIREFOX_POLICY_KEY, Outcome::AlreadyThere, "");
    }
    match run(Command::new("reg").args([
        "add",
        FIREFOX_POLICY_KEY,
        "/v",
        IMPORT_ENTERPRISE_ROOTS,
        "/t",
        "REG_DWORD",
        "/d",
        "1",
        "/f",
    ])) {
        Ok(_) => {
            state.added.push(Added::FirefoxPolicy {
                file: FIREFOX_POLICY_KEY.into(),
                entry: IMPORT_ENTERPRISE_ROOTS.into(),
                created_file: query.is_err(),
            });
            step(
                t,
                FIREFOX_POLICY_KEY,
                Outcome::Added,
                "ImportEnterpriseRoots = 1",
            )
        }
        Err(e) => step(
            t,
            FIREFOX_POLICY_KEY,
            Outcome::Failed,
            format!("{e}: run as administrator"),
        ),
    }
}

pub(super) fn untrust(added: &Added, _opts: &TrustOptions) -> Step {
    match added {
        Added::Windows {
            machine,
            serial,
            name,
        } => {
            let place = store_name(*machine);
            if !in_store(*machine, serial) {
                return step(Target::Windows, place, Outcome::AlreadyGone, name.as_str());
            }
            match run(certutil(*machine).args(["-delstore", "Root", serial])) {
                Ok(_) => step(Target::Windows, place, Outcome::Removed, name.as_str()),
                Err(e) => step(Target::Windows, place, Outcome::Failed, e),
            }
        }
        Added::FirefoxPolicy { file, entry, .. } => {
            let key = file.display().to_string();
            match run(Command::new("reg").args(["delete", &key, "/v", entry, "/f"])) {
                Ok(_) => step(
                    Target::FirefoxPolicy,
                    &key,
                    Outcome::Removed,
                    entry.as_str(),
                ),
                Err(e) => step(Target::FirefoxPolicy, &key, Outcome::Failed, e),
            }
        }
        other => step(
            other.target(),
            other.target().name(),
            Outcome::Failed,
            "added on Linux: run `cert untrust` there",
        ),
    }
}

pub(super) fn trusted_in(ca: &CaCert, _opts: &TrustOptions) -> Vec<String> {
    [false, true]
        .into_iter()
        .filter(|m| in_store(*m, &ca.serial_hex))
        .map(|m| store_name(m).to_string())
        .collect()
}
