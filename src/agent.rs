//! The per-user agent (`wsconnector run`): single-instance lock, logging,
//! the daemon on a Tokio runtime, and the tray icon on the main thread.
//!
//! Order matters: the lock comes first (a second agent says who runs and
//! exits before touching the log or the port), the stop signals are
//! registered before the banner is printed (a SIGTERM right after it must
//! not hit the default action), and the tray loop runs on the main thread
//! while one I/O thread (a current-thread Tokio runtime) serves the sockets.

use std::process::ExitCode;

use crate::config::Loaded;
use crate::instance::{self, InstanceError, InstanceLock};
use crate::tray::{self, DaemonHandle, LastError, TrayEvent};
use crate::{app, logging, peer};

/// Exit status when another agent of this user and session already runs.
pub const EXIT_ALREADY_RUNNING: u8 = 3;

/// How the agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentOptions {
    /// Show the tray icon (`--no-tray` clears it).
    pub tray: bool,
}

/// Runs the agent until Quit, Ctrl-C or SIGTERM.
pub fn run(loaded: Loaded, options: AgentOptions) -> ExitCode {
    let _instance = match single_instance(&loaded) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let last_error = LastError::default();
    let _log_guard = match logging::init(&loaded.config.log, last_error.clone()) {
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
    let runtime = match crate::app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = runtime.block_on(async {
        let daemon = app::start(loaded.config, peer::system()).await?;
        // Registered inside the runtime (Tokio's signal driver needs it).
        let stop_requested = stop_signal();
        #[cfg(unix)]
        reload_on_sighup(daemon.reloader());
        Ok::<_, app::StartError>((daemon, stop_requested))
    });
    let (daemon, stop_requested) = match started {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("wsconnector: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", daemon.banner());
    tracing::info!("{}", daemon.banner());
    let stop = daemon.shutdown_token();
    runtime.spawn(async move {
        stop_requested.await;
        tracing::info!("stop signal received");
        stop.cancel();
    });

    let tray_parts = options.tray.then(|| {
        let (sender, events) = std::sync::mpsc::channel();
        let handle = DaemonHandle::new(&daemon, last_error, runtime.handle());
        let stopped = daemon.shutdown_token();
        let tell_tray = sender.clone();
        runtime.spawn(async move {
            stopped.cancelled().await;
            // The tray may already be gone (no host, Quit): fine.
            let _ = tell_tray.send(TrayEvent::DaemonStopped);
        });
        (handle, sender, events)
    });
    // The current-thread runtime runs on its own thread: the main thread
    // belongs to the tray's event loop (Win32 and D-Bus both want it there).
    let io = match std::thread::Builder::new()
        .name("wsconnector-io".into())
        .spawn(move || runtime.block_on(daemon.wait()))
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("cannot start the I/O thread: {e}");
            eprintln!("wsconnector: cannot start the I/O thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((handle, sender, events)) = tray_parts {
        if let Err(e) = tray::run(&handle, sender, &events) {
            tracing::warn!("{e}: running without a tray icon");
            eprintln!("wsconnector: warning: {e}: running without a tray icon");
        }
    }
    if io.join().is_err() {
        tracing::error!("the I/O thread panicked");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Takes the single-instance lock, or says who holds it and gives the exit
/// status. `Socket-port` 0 (a throwaway ephemeral port, which only tests
/// and tools ask for, many side by side) takes no lock: such daemons can
/// never collide. A lock that cannot be created (read-only folder) is a
/// warning, not a reason to refuse to run.
fn single_instance(loaded: &Loaded) -> Result<Option<InstanceLock>, ExitCode> {
    if loaded.config.port == 0 {
        return Ok(None);
    }
    match instance::acquire(&instance::default_dir()) {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ InstanceError::AlreadyRunning { .. }) => {
            eprintln!("wsconnector: {e}");
            Err(ExitCode::from(EXIT_ALREADY_RUNNING))
        }
        Err(e @ InstanceError::Io { .. }) => {
            eprintln!("wsconnector: warning: {e}; starting without the single-instance check");
            Ok(None)
        }
    }
}

/// SIGHUP re-reads config.xml (as for sshd or nginx). Registered before the
/// banner, like the stop handlers: SIGHUP's default action ends the process.
/// Must be called inside the runtime.
#[cfg(unix)]
pub(crate) fn reload_on_sighup(reloader: std::sync::Arc<crate::reload::Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP received: reloading the configuration");
                    let r = reloader.clone();
                    // Reading the file blocks; `reload` logs the outcome.
                    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                }
            });
        }
        Err(e) => tracing::warn!("SIGHUP will not reload the configuration: {e}"),
    }
}

/// Registers the stop handlers now and returns a future that completes on
/// the first one: Ctrl-C everywhere, SIGTERM too on Unix (systemd, `kill`).
/// Must be called inside the runtime.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
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
