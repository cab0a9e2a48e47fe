//! The `wsconnector` binary: parse flags, load the configuration, set up
//! logging, then run the daemon or a maintenance subcommand. Everything else
//! lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use wsconnector::cli::{CertAction, Cli, Command};
use wsconnector::config::{self, ConfigSource, Loaded, Mode};
use wsconnector::{app, logging, peer, tls};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Run) => run(cli.config.as_deref()),
        Some(Command::CheckConfig { file }) => {
            check_config(file.as_deref().or(cli.config.as_deref()))
        }
        Some(Command::Cert {
            action: CertAction::Create { dir, force },
        }) => cert_create(cli.config.as_deref(), dir, force),
    }
}

fn load(explicit: Option<&Path>) -> Result<Loaded, ExitCode> {
    config::discover(explicit).map_err(|e| {
        eprintln!("wsconnector: {e}");
        ExitCode::from(2)
    })
}

fn check_config(file: Option<&Path>) -> ExitCode {
    let loaded = match load(file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match &loaded.config.source {
        ConfigSource::File(p) => println!("# {} is valid", p.display()),
        ConfigSource::Embedded => println!("# no config.xml found: embedded defaults"),
    }
    print!("{}", config::describe(&loaded.config));
    let mut warnings = loaded.warnings.clone();
    let mut failed = false;
    if let (config::SocketType::Wss, Some(tls_cfg)) =
        (loaded.config.socket_type, &loaded.config.tls)
    {
        // The certificate is part of the configuration: check it the way
        // the daemon will load it.
        match tls::load(tls_cfg) {
            Ok(cert) => {
                println!(
                    "# certificate: {} (valid until {})",
                    cert.subject,
                    tls::format_utc(cert.not_after)
                );
                warnings.extend(cert.warnings);
            }
            Err(e) => {
                eprintln!("wsconnector: {e}");
                failed = true;
            }
        }
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    println!("# {} warning(s)", warnings.len());
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn cert_create(config_file: Option<&Path>, dir: Option<PathBuf>, force: bool) -> ExitCode {
    let dir = match dir {
        Some(d) => d,
        None => {
            // `certs/` beside the config file in use, else beside the executable.
            let base = match load(config_file) {
                Ok(Loaded {
                    config:
                        config::Config {
                            source: ConfigSource::File(p),
                            ..
                        },
                    ..
                }) => p.parent().map(Path::to_path_buf),
                Ok(_) => std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(Path::to_path_buf)),
                Err(code) => return code,
            };
            base.unwrap_or_default().join("certs")
        }
    };
    let opts = tls::cert::CreateOptions {
        force,
        ..Default::default()
    };
    match tls::cert::create(&dir, &opts) {
        Ok(created) => {
            println!("{}", created.instructions());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector: cert create: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(explicit: Option<&Path>) -> ExitCode {
    let loaded = match load(explicit) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if loaded.config.mode == Mode::Service {
        eprintln!("wsconnector: Mode = service is not available yet; use single-user");
        return ExitCode::from(2);
    }
    let _log_guard = match logging::init(&loaded.config.log) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsconnector: logging: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    // One thread for all I/O, as Redis does: every request and event goes
    // through the hub's one lock anyway, and without cross-thread wake-ups
    // the closed-loop latency is about a quarter lower at the same CPU per
    // notification (scripts/bench.sh, issue 9); blocking work (peer lookup,
    // desktop actions) still runs on tokio's blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let daemon = match app::start(loaded.config, peer::system()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                eprintln!("wsconnector: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stop_requested = stop_signal();
        println!("{}", daemon.banner());
        tracing::info!("{}", daemon.banner());
        let stop = daemon.shutdown_token();
        tokio::spawn(async move {
            stop_requested.await;
            tracing::info!("stop signal received");
            stop.cancel();
        });
        daemon.wait().await;
        ExitCode::SUCCESS
    })
}

/// Registers the stop handlers now — before the banner is printed, so a
/// SIGTERM sent right after it is not lost to the default action — and
/// returns a future that completes on the first one: Ctrl-C everywhere,
/// SIGTERM too on Unix (systemd, `kill`).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let ctrl_c = tokio::signal::windows::ctrl_c();
        async move {
            match ctrl_c {
                Ok(mut c) => {
                    c.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
    }
}
