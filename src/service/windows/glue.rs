//! `wsconnector service run|install|uninstall` on Windows: the SCM's
//! service body (the server with one store per user, the sessions and their
//! agents, each verified pipe connection served by the link) and the
//! console commands around [`scm::install`] / [`scm::uninstall`] (with
//! Citrix's `LogoffCheckSysModules`, [`citrix`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::scm::{self, ServiceContext};
use super::sessions::{self, AgentCommand, OnAgent, SessionEvent};
use super::{citrix, config_acl, log_acl};
use crate::config::{Config, ConfigSource, Loaded, Mode};
use crate::logging;
use crate::service::link;
use crate::service::run::{self as service_run, SESSION_ENDED};
use crate::tray::LastError;

/// `wsconnector service run`: the service body under the SCM (or in this
/// console when an administrator starts it by hand).
pub fn run(loaded: Loaded) -> ExitCode {
    scm::dispatch(move |ctx| serve(loaded, ctx))
}

/// The config file the service and its agents read, absolute.
fn config_file(config: &Config) -> Result<PathBuf, String> {
    match &config.source {
        ConfigSource::File(p) => std::path::absolute(p)
            .map_err(|e| format!("service: cannot make {} absolute: {e}", p.display())),
        ConfigSource::Embedded => Err("service: no config.xml: give --config with Mode = service \
             (e.g. C:\\ProgramData\\wsconnector\\config.xml, writable by administrators only)"
            .into()),
    }
}

/// `wsconnector service install`: registers the service to run with this
/// executable and the config file it was given, then starts it.
pub fn install(loaded: &Loaded) -> ExitCode {
    if loaded.config.mode != Mode::Service {
        eprintln!(
            "wsconnector: service install: the configuration has Mode = single-user; \
             give --config a config.xml with <Mode>service</Mode>"
        );
        return ExitCode::from(2);
    }
    let config = match config_file(&loaded.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsconnector: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wsconnector: service install: where am I? {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = scm::install(&exe, &config).map(|mut lines| {
        // The agent is this executable: Citrix must let a published-app
        // session log off while it runs.
        lines.push(citrix::install_line(&exe_name(&exe)));
        lines
    });
    print_report(report, "install")
}

/// `wsconnector service uninstall`: stops and removes the service, and
/// takes the agent out of Citrix's `LogoffCheckSysModules`.
pub fn uninstall() -> ExitCode {
    let code = print_report(scm::uninstall(), "uninstall");
    // Also when the service was not installed (or the SCM refused): the
    // entry is ours alone, and removing it never harms.
    match std::env::current_exe() {
        Ok(exe) => println!("{}", citrix::uninstall_line(&exe_name(&exe))),
        Err(e) => eprintln!("wsconnector: service uninstall: where am I? {e}"),
    }
    code
}

/// The executable's file name as Citrix lists it (`wsconnector.exe`).
fn exe_name(exe: &Path) -> String {
    exe.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wsconnector.exe".into())
}

fn print_report(result: Result<scm::Report, scm::ScmError>, what: &str) -> ExitCode {
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector: service {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The agents' command line: `"<exe>" --config "<config>" agent`.
fn agent_command(exe: &Path, config: &Path) -> Result<String, String> {
    let args = [
        "--config".to_string(),
        config.display().to_string(),
        "agent".to_string(),
    ];
    crate::platform::windows::command_line(&exe.display().to_string(), &args)
        .map_err(|e| format!("the agent's command line: {e}"))
}

fn serve(loaded: Loaded, ctx: ServiceContext) -> ExitCode {
    if let Err(e) = service_run::preflight(&loaded) {
        eprintln!("wsconnector: {e}");
        return ExitCode::from(2);
    }
    // The machine's log names every user: it goes to an administrators-only
    // folder, %ProgramData%\wsconnector\logs unless Log-path says where.
    let mut log = loaded.config.log.clone();
    let folder = log
        .path
        .get_or_insert_with(log_acl::default_log_folder)
        .clone();
    // The account the service runs as, trusted by the file-permission
    // checks (LocalSystem under the SCM; the Wine user under Wine).
    let me = crate::peer::system().current_user().id;
    let own = me.starts_with("S-").then_some(me.as_str());
    if let Err(e) = log_acl::restrict_to_administrators(&folder, own) {
        eprintln!("wsconnector: service: {e}");
        return ExitCode::from(2);
    }
    let _log_guard = match logging::init_with(
        &log,
        LastError::default(),
        Some(Box::new(crate::service::user_log::UserLogLayer::service())),
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("wsconnector: logging: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    // Only administrators may change the file that decides which origins
    // drive every user's desktop (the policy: service::acl_policy).
    if let ConfigSource::File(file) = &loaded.config.source {
        if let Err(e) = config_acl::check(file, own) {
            tracing::error!("service: the configuration is not safe: {e}");
            eprintln!("wsconnector: service: the configuration is not safe: {e}");
            return ExitCode::from(2);
        }
    }
    let command = match config_file(&loaded.config).and_then(|config| {
        let exe = std::env::current_exe().map_err(|e| format!("service: where am I? {e}"))?;
        let line = agent_command(&exe, &config)?;
        Ok(AgentCommand {
            exe,
            command_line: line,
            restart_delay: loaded.config.timers.agent_restart,
        })
    }) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("wsconnector: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ServiceContext {
        stop: scm_stop,
        changes,
        status,
    } = ctx;
    let outcome = runtime.block_on(async move {
        let (daemon, registry) = service_run::start_with_registry(loaded).await?;
        status.running();
        tracing::info!("{} (Windows service mode)", daemon.banner());
        println!("{}", daemon.banner());
        let stop = daemon.shutdown_token();
        let on_stop = stop.clone();
        let console = !status.under_scm();
        tokio::spawn(async move {
            if console {
                tokio::select! {
                    _ = scm_stop.cancelled() => {}
                    _ = crate::agent::stop_signal() => {}
                }
            } else {
                scm_stop.cancelled().await;
            }
            tracing::info!("stop requested");
            on_stop.cancel();
        });
        let link_stop = stop.clone();
        let on_agent: OnAgent = Arc::new(move |stream, user, session_id| {
            tracing::debug!(session_id, user = %user.name, "agent pipe connected");
            let registry = registry.clone();
            let stop = link_stop.clone();
            tokio::spawn(async move {
                let _ = link::serve_agent(stream, user, registry, stop).await;
            });
        });
        let (events, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let supervisor = tokio::spawn(sessions::supervise(
            command,
            changes,
            on_agent,
            events,
            stop.clone(),
        ));
        let state = daemon.state.clone();
        tokio::spawn(async move {
            while let Some(event) = reports.recv().await {
                if let SessionEvent::LoggedOff {
                    user,
                    last_session_of_user: true,
                    ..
                } = event
                {
                    if !state.tenants.end_user(&user.id, SESSION_ENDED) {
                        tracing::debug!(user = %user.name, "a user without a context store logged off");
                    }
                }
            }
        });
        daemon.wait().await;
        // Every agent is ended before the service reports STOPPED.
        let _ = supervisor.await;
        Ok::<_, crate::app::StartError>(())
    });
    match outcome {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("wsconnector: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_command_line_quotes_paths_with_spaces() {
        let line = agent_command(
            Path::new(r"C:\Program Files\wsconnector\wsconnector.exe"),
            Path::new(r"C:\ProgramData\ws connector\config.xml"),
        )
        .unwrap();
        assert_eq!(
            line,
            r#""C:\Program Files\wsconnector\wsconnector.exe" --config "C:\ProgramData\ws connector\config.xml" agent"#
        );
    }
}
