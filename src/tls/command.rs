//! The `wsconnector cert trust|untrust|renew|check` and `browser-policy`
//! subcommands: flags and config.xml in, a printed report and an exit code
//! out. The work itself is in `trust`, `renew`, `doctor` and
//! `crate::browser_policy`; this file only wires and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::OffsetDateTime;

use super::cert::PFX_FILE;
use super::doctor::{self, CheckOptions};
use super::renew;
use super::trust::{self, TrustOptions};
use crate::browser_policy;
use crate::cli::{CertAction, StoreArgs};
use crate::config::{self, ConfigSource, Loaded, SocketType};

/// Exit code for a usage or configuration error (as `check-config`).
const EXIT_CONFIG: u8 = 2;

fn load(config_file: Option<&Path>) -> Result<Loaded, ExitCode> {
    config::discover(config_file).map_err(|e| {
        eprintln!("wsconnector: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The folder `cert create` wrote to: `--dir`, else the folder of the
/// configured certificate, else `certs/` beside config.xml (or the program).
pub fn certs_dir(explicit: Option<&Path>, loaded: &Loaded) -> PathBuf {
    if let Some(d) = explicit {
        return d.to_path_buf();
    }
    if let Some(parent) = loaded
        .config
        .tls
        .as_ref()
        .and_then(|t| t.certificate_path.parent())
        .filter(|p| !p.as_os_str().is_empty())
    {
        return parent.to_path_buf();
    }
    let base = match &loaded.config.source {
        ConfigSource::File(p) => p.parent().map(Path::to_path_buf),
        ConfigSource::Embedded => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
    };
    base.unwrap_or_default().join("certs")
}

fn trust_options(args: &StoreArgs) -> TrustOptions {
    let mut opts = TrustOptions::for_current_user();
    opts.only = (!args.only.is_empty()).then(|| args.only.clone());
    opts.machine = args.machine;
    opts.echo = true;
    if let Some(root) = &args.sysroot {
        opts.sysroot = root.clone();
    }
    opts
}

/// The steps were printed as they happened; the verdict.
fn finish(report: &trust::Report, done: &str) -> ExitCode {
    if report.failed() {
        eprintln!(
            "wsconnector: some stores failed (see above); fix them and run the command again"
        );
        ExitCode::FAILURE
    } else {
        println!("{done}");
        ExitCode::SUCCESS
    }
}

/// Run one of the certificate subcommands other than `create`.
pub fn run_cert(action: CertAction, config_file: Option<&Path>) -> ExitCode {
    let loaded = match load(config_file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match action {
        CertAction::Create { .. } => {
            eprintln!("wsconnector: cert create is handled by the binary");
            ExitCode::from(EXIT_CONFIG)
        }
        CertAction::Trust(args) => {
            let dir = certs_dir(args.dir.as_deref(), &loaded);
            match trust::trust(&dir, &trust_options(&args)) {
                Ok(r) => finish(
                    &r,
                    "Done. Restart the browsers; `wsconnector cert check` shows where the CA is trusted.",
                ),
                Err(e) => fail("cert trust", &e),
            }
        }
        CertAction::Untrust(args) => {
            let dir = certs_dir(args.dir.as_deref(), &loaded);
            match trust::untrust(&dir, &trust_options(&args)) {
                Ok(r) => finish(&r, "Done."),
                Err(e) => fail("cert untrust", &e),
            }
        }
        CertAction::Renew(args) => {
            let dir = certs_dir(args.dir.as_deref(), &loaded);
            // Keep the configured Password valid when config.xml uses this .pfx.
            let password = loaded
                .config
                .tls
                .as_ref()
                .filter(|t| t.certificate_path.file_name() == Some(PFX_FILE.as_ref()))
                .filter(|t| !t.password.0.is_empty())
                .map(|t| t.password.clone());
            match renew::renew(&dir, password, &trust_options(&args)) {
                Ok(r) => {
                    println!("\n{}", r.created.instructions());
                    let mut all = r.untrusted.clone();
                    all.steps.extend(r.trusted.steps.iter().cloned());
                    finish(
                        &all,
                        "Renewed. Restart wsconnector (and the browsers) to use the new certificate.",
                    )
                }
                Err(e) => fail("cert renew", &e),
            }
        }
        CertAction::Check { stores, port } => {
            let dir = certs_dir(stores.dir.as_deref(), &loaded);
            let opts = CheckOptions {
                certs_dir: dir,
                tls: match loaded.config.socket_type {
                    SocketType::Wss => loaded.config.tls.clone(),
                    SocketType::Ws => None,
                },
                port: port.unwrap_or(loaded.config.port),
                stores: trust_options(&stores),
                now: OffsetDateTime::now_utc(),
            };
            let report = doctor::check(&opts);
            print!("{report}");
            if report.problems() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn fail(what: &str, e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("wsconnector: {what}: {e}");
    ExitCode::FAILURE
}

/// `wsconnector browser-policy`.
pub fn run_browser_policy(
    format: browser_policy::Format,
    out: Option<&Path>,
    config_file: Option<&Path>,
) -> ExitCode {
    let loaded = match load(config_file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let files = match browser_policy::render(&loaded.config, format) {
        Ok(f) => f,
        Err(e) => return fail("browser-policy", &e),
    };
    match out {
        Some(dir) => match browser_policy::write_all(dir, &files) {
            Ok(paths) => {
                for (path, f) in paths.iter().zip(&files) {
                    println!(
                        "wrote {}; install it as {}",
                        path.display(),
                        f.install_to.join(", ")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail("browser-policy", &e),
        },
        None => {
            use std::io::Write;
            let mut text = String::new();
            for f in &files {
                text.push_str(&format!("# {} -> {}\n", f.name, f.install_to.join(", ")));
                text.push_str(&f.content);
                text.push('\n');
            }
            // One write whose error is ignored: piping into `head` is not a crash.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
    }
}
