//! The `wsconnector` binary: parse flags, load the configuration, set up
//! logging, then run the daemon or a maintenance subcommand. Everything else
//! lives in the library.
//!
//! On Windows it is a GUI-subsystem program (no console window flashes when
//! the agent starts at logon); it attaches to the console of the shell that
//! started it, if any, so subcommands still print there.

#![cfg_attr(windows, windows_subsystem = "windows")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use wsconnector::agent::{self, AgentOptions};
use wsconnector::cli::{CertAction, Cli, Command};
use wsconnector::config::{self, ConfigSource, Loaded, Mode};
use wsconnector::{autostart, tls, tray};

fn main() -> ExitCode {
    tray::attach_parent_console();
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Run) => run(cli.config.as_deref(), !cli.no_tray),
        Some(Command::Install { user }) => install(user, cli.config.as_deref()),
        Some(Command::Uninstall { user }) => uninstall(user),
        Some(Command::CheckConfig { file }) => {
            check_config(file.as_deref().or(cli.config.as_deref()))
        }
        Some(Command::Inspect(args)) => {
            wsconnector::inspector::open::run(cli.config.as_deref(), &args)
        }
        Some(Command::Simulate(args)) => {
            wsconnector::ctl_simulate::run(cli.config.as_deref(), &args)
        }
        Some(Command::Cert {
            action: CertAction::Create { dir, force },
        }) => cert_create(cli.config.as_deref(), dir, force),
        Some(Command::Cert { action }) => tls::command::run_cert(action, cli.config.as_deref()),
        Some(Command::BrowserPolicy { format, out }) => {
            tls::command::run_browser_policy(format, out.as_deref(), cli.config.as_deref())
        }
        Some(Command::Ctl(args)) => wsconnector::ctl::run(args, cli.config.as_deref()),
        Some(Command::Service { action }) => match load(cli.config.as_deref()) {
            Ok(loaded) => wsconnector::service::run::main(loaded, action),
            Err(code) => code,
        },
        Some(Command::Agent(args)) => match load(cli.config.as_deref()) {
            Ok(loaded) => wsconnector::service::agent::main(loaded, args),
            Err(code) => code,
        },
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

fn run(explicit: Option<&Path>, tray: bool) -> ExitCode {
    let loaded = match load(explicit) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if loaded.config.mode == Mode::Service {
        eprintln!(
            "wsconnector: Mode = service: the machine-wide service runs as `wsconnector service run` \
             and each session runs `wsconnector agent`; `wsconnector run` is for single-user desktops"
        );
        return ExitCode::from(2);
    }
    if let Some(service) = wsconnector::service::detect::running(&loaded.config) {
        eprintln!(
            "wsconnector: not starting: {service} (Mode = service owns the port on this machine); \
             run `wsconnector agent` in this session instead"
        );
        return ExitCode::from(wsconnector::agent::EXIT_ALREADY_RUNNING);
    }
    agent::run(loaded, AgentOptions { tray })
}

fn print_report(report: &autostart::Report) {
    for line in &report.done {
        println!("{line}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

fn install(user: bool, config: Option<&Path>) -> ExitCode {
    if !user {
        eprintln!(
            "wsconnector: install: {}",
            autostart::AutostartError::UserOnly
        );
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wsconnector: install: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The config file is recorded absolute: autostart runs from another
    // working directory.
    let config = config.map(|c| std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf()));
    match autostart::install_user(&exe, config.as_deref()) {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector: install: {e}");
            ExitCode::FAILURE
        }
    }
}

fn uninstall(user: bool) -> ExitCode {
    if !user {
        eprintln!(
            "wsconnector: uninstall: {}",
            autostart::AutostartError::UserOnly
        );
        return ExitCode::from(2);
    }
    match autostart::uninstall_user() {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector: uninstall: {e}");
            ExitCode::FAILURE
        }
    }
}
