//! `wsconnector service run|install|uninstall`: the machine-wide service of
//! shared hosts. `run` owns the port for every user of the machine, keeps
//! one context store per OS user (`server::Tenants`), relays each user's
//! desktop actions to their session agent, and wipes a user's store when
//! their last session ends.

use std::process::ExitCode;
use std::sync::Arc;

use super::args::ServiceAction;
use super::registry::AgentRegistry;
use crate::app::{self, Daemon, Tenancy};
use crate::config::{ConfigSource, Loaded, Mode};
use crate::tray::LastError;
use crate::{logging, peer};

/// Close reason sent to a user's pages when their last session ended and
/// their context was wiped.
pub const SESSION_ENDED: &str = "user-session-ended";

/// Entry point of `wsconnector service ...`.
pub fn main(loaded: Loaded, action: ServiceAction) -> ExitCode {
    #[cfg(windows)]
    {
        // The SCM, session agents and named pipes: service::windows.
        let _ = run;
        let _ = install;
        match action {
            ServiceAction::Run => super::windows::glue::run(loaded),
            ServiceAction::Install { .. } => super::windows::glue::install(&loaded),
            ServiceAction::Uninstall { .. } => super::windows::glue::uninstall(),
        }
    }
    #[cfg(not(windows))]
    match action {
        ServiceAction::Run => run(loaded),
        ServiceAction::Install { sysroot } => install(sysroot.as_deref(), true),
        ServiceAction::Uninstall { sysroot } => install(sysroot.as_deref(), false),
    }
}

#[cfg(target_os = "linux")]
fn install(sysroot: Option<&std::path::Path>, add: bool) -> ExitCode {
    use super::install_linux;
    let result = if add {
        std::env::current_exe()
            .map_err(|e| install_linux::InstallError::Io {
                path: "/proc/self/exe".into(),
                source: e,
            })
            .and_then(|exe| install_linux::install(&exe, sysroot))
    } else {
        install_linux::uninstall(sysroot)
    };
    match result {
        Ok(report) => {
            for line in &report.done {
                println!("{line}");
            }
            for line in &report.todo {
                println!("to do (systemd is not running here): {line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector: service install: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn install(_sysroot: Option<&std::path::Path>, _add: bool) -> ExitCode {
    eprintln!(
        "wsconnector: service install/uninstall: not available on this platform yet \
         (Windows: the SCM registration is not built; see docs/service.md)"
    );
    ExitCode::from(2)
}

/// Why the service refuses to start before it binds anything.
pub(crate) fn preflight(loaded: &Loaded) -> Result<(), String> {
    if loaded.config.mode != Mode::Service {
        let file = match &loaded.config.source {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded => "(embedded defaults)".into(),
        };
        return Err(format!(
            "service: the configuration {file} has Mode = single-user; set <Mode>service</Mode> \
             for the machine-wide service (desktops run `wsconnector run` instead)"
        ));
    }
    #[cfg(unix)]
    if let ConfigSource::File(file) = &loaded.config.source {
        let me = nix::unistd::geteuid().as_raw();
        super::config_guard::check(file, me).map_err(|e| format!("service: {e}"))?;
    }
    Ok(())
}

fn run(loaded: Loaded) -> ExitCode {
    if let Err(e) = preflight(&loaded) {
        eprintln!("wsconnector: {e}");
        return ExitCode::from(2);
    }
    let _log_guard = match logging::init_with(
        &loaded.config.log,
        LastError::default(),
        Some(Box::new(super::user_log::UserLogLayer::service())),
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
    // The same single I/O thread as the desktop agent (issue 9's
    // measurements); blocking work goes to tokio's blocking pool.
    let runtime = match crate::app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        let daemon = start(loaded).await?;
        let stop_requested = crate::agent::stop_signal();
        #[cfg(unix)]
        crate::agent::reload_on_sighup(daemon.reloader());
        println!("{}", daemon.banner());
        tracing::info!("{} (service mode)", daemon.banner());
        let stop = daemon.shutdown_token();
        tokio::spawn(async move {
            stop_requested.await;
            tracing::info!("stop signal received");
            stop.cancel();
        });
        daemon.wait().await;
        Ok::<_, app::StartError>(())
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

/// Creates the shared folder of the inspector's per-user token files
/// (mode 1733, see `inspector::token`). Without it the inspector is not
/// available; the service still runs.
#[cfg(unix)]
fn inspector_folder(config: &crate::config::Config) {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::inspector::token::shared_dir(&config.service.agent_socket);
    let made = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1733)));
    if let Err(e) = made {
        tracing::warn!(folder = %dir.display(), "the inspector will not be available: {e}");
    }
}

/// Starts the service: one store per OS user, each user's desktop actions
/// relayed to their session agent, the agents' socket served.
pub async fn start(loaded: Loaded) -> Result<Daemon, app::StartError> {
    Ok(start_with_registry(loaded).await?.0)
}

/// [`start`], also returning the agent registry (the Windows service hands
/// it each verified pipe connection).
pub async fn start_with_registry(
    loaded: Loaded,
) -> Result<(Daemon, Arc<AgentRegistry>), app::StartError> {
    #[cfg(unix)]
    inspector_folder(&loaded.config);
    let registry = AgentRegistry::new(loaded.config.timers.agent_action);
    // Each user's log lines now reach their agent (user_log.rs).
    super::user_log::forward_to(&registry);
    let relay = registry.clone();
    let host = app::host_name();
    let tenancy = Tenancy::PerUser(Arc::new(move |user: &peer::OsUser| {
        relay.platform_for(user, host.clone())
    }));
    #[cfg(unix)]
    let socket = loaded.config.service.agent_socket.clone();
    let daemon = app::start_with(loaded.config, peer::system(), tenancy).await?;
    let live = registry.clone();
    let _ = daemon.state.on_reload.set(Box::new(move |c| {
        live.set_action_timeout(c.timers.agent_action)
    }));
    #[cfg(unix)]
    {
        // A user's last session ended: wipe their store.
        let (ended, mut users) = tokio::sync::mpsc::unbounded_channel();
        super::sessions::watch_logind(ended);
        let state = daemon.state.clone();
        tokio::spawn(async move {
            while let Some(user_id) = users.recv().await {
                if !state.tenants.end_user(&user_id, SESSION_ENDED) {
                    tracing::debug!(user_id, "a user without a context store logged off");
                }
            }
        });
        let shutdown = daemon.shutdown_token();
        let agents = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = super::unix_socket::listen(&socket, agents, shutdown.clone()).await {
                // Without the socket no agent can connect: a service that
                // cannot do desktop actions must say so and stop, not run
                // half-working.
                tracing::error!("{e}");
                eprintln!("wsconnector: service: {e}");
                shutdown.cancel();
            }
        });
    }
    Ok((daemon, registry))
}
