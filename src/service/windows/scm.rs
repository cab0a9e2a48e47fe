//! The Service Control Manager side of the Windows service: registration
//! (`wsconnector service install|uninstall`), the dispatcher that runs the
//! service and reports its status, and whether it is running.
//!
//! The service runs as LocalSystem, because only SYSTEM may call
//! `WTSQueryUserToken`, but its token keeps only the privileges that
//! starting session agents needs (`SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO`):
//! everything else LocalSystem has is removed by the SCM at start.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceSidType, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    SessionChangeReason,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::Win32::Foundation::{
    ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_EXISTS,
    ERROR_SERVICE_NOT_ACTIVE,
};
use windows_sys::Win32::System::Services::{
    ChangeServiceConfig2W, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
    SERVICE_REQUIRED_PRIVILEGES_INFOW,
};

use crate::server::Shutdown;

/// The service's name in the SCM (`sc query wsconnector`).
pub const SERVICE_NAME: &str = "wsconnector";
/// Its name in services.msc.
pub const DISPLAY_NAME: &str = "wsconnector (shared-host service)";
/// Its description in services.msc.
const DESCRIPTION: &str = "Loopback websocket connector for every user of this machine \
     (Mode = service): one context store per user, desktop actions in each user's own session.";

/// The privileges the service keeps (all others are removed from its
/// token): `WTSQueryUserToken` needs SeTcbPrivilege, `CreateProcessAsUserW`
/// with a primary token needs SeAssignPrimaryTokenPrivilege and
/// SeIncreaseQuotaPrivilege. (SeChangeNotifyPrivilege is always kept.)
pub const REQUIRED_PRIVILEGES: [&str; 3] = [
    "SeTcbPrivilege",
    "SeAssignPrimaryTokenPrivilege",
    "SeIncreaseQuotaPrivilege",
];

/// Waits the SCM is told for a pending start or stop.
const PENDING_HINT: Duration = Duration::from_secs(15);
/// How long `uninstall` waits for the service to stop.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Restarts after a failure: 5 s, 30 s, then every minute; the count resets
/// after a day without failures.
const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// Why the SCM refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum ScmError {
    /// A Service Control Manager call failed.
    #[error("{what}: {source}")]
    Call {
        /// What was attempted.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config path is not absolute (the SCM starts the service in
    /// C:\Windows\System32).
    #[error("the service needs an absolute config path, not {0}")]
    RelativeConfig(PathBuf),
    /// The service did not stop in time.
    #[error("the service did not stop within {0:?}")]
    StopTimeout(Duration),
}

/// The OS error inside a `windows_service` error (its own Display hides it).
fn os_error(e: windows_service::Error) -> std::io::Error {
    match e {
        windows_service::Error::Winapi(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}

fn call<T>(what: &str, r: windows_service::Result<T>) -> Result<T, ScmError> {
    r.map_err(|e| ScmError::Call {
        what: what.to_string(),
        source: os_error(e),
    })
}

/// The Win32 error code inside a `windows_service` error.
fn os_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

/// What `install` and `uninstall` did, one line each, for the console.
pub type Report = Vec<String>;

/// The command line the SCM starts: `"<exe>" --config "<config>" service run`.
pub fn launch_arguments(config: &Path) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.as_os_str().to_owned(),
        "service".into(),
        "run".into(),
    ]
}

/// Registers (or re-configures) the service to run `exe` with `config`,
/// started automatically as LocalSystem with only [`REQUIRED_PRIVILEGES`],
/// an unrestricted service SID, and restart on failure; then starts it.
pub fn install(exe: &Path, config: &Path) -> Result<Report, ScmError> {
    if !config.is_absolute() {
        return Err(ScmError::RelativeConfig(config.to_path_buf()));
    }
    let manager = call(
        "open the Service Control Manager (run as administrator)",
        ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        ),
    )?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.to_path_buf(),
        launch_arguments: launch_arguments(config),
        dependencies: Vec::new(),
        // LocalSystem: only SYSTEM may call WTSQueryUserToken.
        account_name: None,
        account_password: None,
    };
    let access = ServiceAccess::QUERY_STATUS
        | ServiceAccess::START
        | ServiceAccess::CHANGE_CONFIG
        | ServiceAccess::QUERY_CONFIG;
    let mut report = Report::new();
    let service = match manager.create_service(&info, access) {
        Ok(s) => {
            report.push(format!("registered the service {SERVICE_NAME}"));
            s
        }
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_EXISTS as i32) => {
            let s = call(
                "open the existing service",
                manager.open_service(SERVICE_NAME, access),
            )?;
            call("update the existing service", s.change_config(&info))?;
            report.push(format!("updated the existing service {SERVICE_NAME}"));
            s
        }
        Err(e) => {
            return Err(ScmError::Call {
                what: format!("create the service {SERVICE_NAME}"),
                source: os_error(e),
            })
        }
    };
    // Hardening, each step said on its own line. A step the SCM does not
    // support (Wine, the CI, has no SID types nor required privileges) is a
    // loud WARNING line, not a failed install: the registration works.
    let mut step = |what: &str, r: Result<(), ScmError>| match r {
        Ok(()) => report.push(what.to_string()),
        Err(e) => report.push(format!("WARNING: not applied: {e}")),
    };
    step(
        "description set",
        call("set the description", service.set_description(DESCRIPTION)),
    );
    step(
        "service SID type: unrestricted",
        call(
            "set the service SID type (SERVICE_SID_TYPE_UNRESTRICTED)",
            service.set_config_service_sid_info(ServiceSidType::Unrestricted),
        ),
    );
    step(
        &format!("required privileges: {}", REQUIRED_PRIVILEGES.join(", ")),
        required_privileges(&service),
    );
    step(
        "on failure: restart after 5 s, 30 s, then every 60 s",
        call(
            "set the failure actions",
            service.update_failure_actions(ServiceFailureActions {
                reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
                reboot_msg: None,
                command: None,
                actions: Some(
                    RESTART_DELAYS
                        .iter()
                        .map(|&delay| ServiceAction {
                            action_type: ServiceActionType::Restart,
                            delay,
                        })
                        .collect(),
                ),
            }),
        ),
    );
    // A service that stops with an error exit code (e.g. the port is
    // taken) is restarted too, not only one that crashes.
    step(
        "failure actions also on error exits",
        call(
            "enable failure actions on error exits",
            service.set_failure_actions_on_non_crash_failures(true),
        ),
    );
    report.push(format!(
        "runs {} --config {} service run as LocalSystem",
        exe.display(),
        config.display(),
    ));
    match service.start(&[] as &[&OsStr]) {
        Ok(()) => report.push(format!("started the service {SERVICE_NAME}")),
        Err(e) => report.push(format!(
            "WARNING: the service did not start: {} (see its log and the System event log)",
            os_error(e)
        )),
    }
    Ok(report)
}

/// `ChangeServiceConfig2W(SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO)`: the
/// SCM removes every other privilege from the service's token.
fn required_privileges(service: &windows_service::service::Service) -> Result<(), ScmError> {
    // A double-NUL-terminated multi-string.
    let mut list: Vec<u16> = Vec::new();
    for p in REQUIRED_PRIVILEGES {
        list.extend(p.encode_utf16());
        list.push(0);
    }
    list.push(0);
    let info = SERVICE_REQUIRED_PRIVILEGES_INFOW {
        pmszRequiredPrivileges: list.as_mut_ptr(),
    };
    // SAFETY: the service handle is open with SERVICE_CHANGE_CONFIG; `info`
    // points to the multi-string in `list`, both alive during the call.
    let ok = unsafe {
        ChangeServiceConfig2W(
            service.raw_handle(),
            SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
            std::ptr::from_ref(&info).cast(),
        )
    };
    if ok == 0 {
        return Err(ScmError::Call {
            what: "set the required privileges (SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Stops the service (waiting for it) and removes its registration.
pub fn uninstall() -> Result<Report, ScmError> {
    let manager = call(
        "open the Service Control Manager (run as administrator)",
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT),
    )?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = match manager.open_service(SERVICE_NAME, access) {
        Ok(s) => s,
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST as i32) => {
            return Ok(vec![format!("the service {SERVICE_NAME} is not installed")]);
        }
        Err(e) => {
            return Err(ScmError::Call {
                what: format!("open the service {SERVICE_NAME}"),
                source: os_error(e),
            })
        }
    };
    let mut report = Report::new();
    match service.stop() {
        Ok(_) => {
            let end = Instant::now() + STOP_WAIT;
            loop {
                let state = call("query the service", service.query_status())?.current_state;
                if state == ServiceState::Stopped {
                    break;
                }
                if Instant::now() > end {
                    return Err(ScmError::StopTimeout(STOP_WAIT));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            report.push(format!("stopped the service {SERVICE_NAME}"));
        }
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE as i32) => {}
        Err(e) => {
            return Err(ScmError::Call {
                what: "stop the service".into(),
                source: os_error(e),
            })
        }
    }
    call("delete the service", service.delete())?;
    report.push(format!("removed the service {SERVICE_NAME}"));
    Ok(report)
}

/// The service's process id as the SCM reports it, `None` when it is not
/// installed or not running. Agents trust a pipe only when its server is
/// this process.
pub fn service_pid() -> Option<u32> {
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).ok()?;
    let service = manager
        .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS)
        .ok()?;
    let status = service.query_status().ok()?;
    match status.current_state {
        ServiceState::Running | ServiceState::StartPending => {
            status.process_id.filter(|&pid| pid != 0)
        }
        _ => None,
    }
}

/// Whether the service is installed and running (or starting). A
/// single-user `wsconnector run` refuses to start then.
pub fn service_running() -> bool {
    service_pid().is_some()
}

/// A session change the SCM reported (`SERVICE_CONTROL_SESSIONCHANGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// A user logged on to the session.
    Logon(u32),
    /// The user of the session logged off.
    Logoff(u32),
    /// The session was connected to the console or a remote client.
    Connect(u32),
    /// The session was disconnected (its user stays logged on).
    Disconnect(u32),
}

impl SessionChange {
    /// The change for an SCM reason, `None` for those the service ignores
    /// (lock, unlock, remote control, create, terminate).
    pub fn of(reason: SessionChangeReason, session_id: u32) -> Option<SessionChange> {
        Some(match reason {
            SessionChangeReason::SessionLogon => SessionChange::Logon(session_id),
            SessionChangeReason::SessionLogoff => SessionChange::Logoff(session_id),
            SessionChangeReason::ConsoleConnect | SessionChangeReason::RemoteConnect => {
                SessionChange::Connect(session_id)
            }
            SessionChangeReason::ConsoleDisconnect | SessionChangeReason::RemoteDisconnect => {
                SessionChange::Disconnect(session_id)
            }
            _ => return None,
        })
    }
}

/// What the service's body gets from [`dispatch`].
pub struct ServiceContext {
    /// Cancelled by SERVICE_CONTROL_STOP and SHUTDOWN.
    pub stop: Shutdown,
    /// Session changes, in the order the SCM sent them (none in console mode).
    pub changes: UnboundedReceiver<SessionChange>,
    /// Reports the service's status to the SCM.
    pub status: ScmStatus,
}

/// The service's status handle; empty when not started by the SCM.
#[derive(Debug, Clone, Copy)]
pub struct ScmStatus(Option<ServiceStatusHandle>);

impl ScmStatus {
    /// Tells the SCM the service is up (call once the port is bound).
    pub fn running(&self) {
        report(self.0.as_ref(), ServiceState::Running, 0);
    }

    /// Whether the SCM started this process (else it runs in a console).
    pub fn under_scm(&self) -> bool {
        self.0.is_some()
    }
}

/// The service's body, handed from [`dispatch`] to the SCM's thread.
type Body = Box<dyn FnOnce(ServiceContext) -> ExitCode + Send>;

/// [`dispatch`]'s body and its exit code: `StartServiceCtrlDispatcherW`
/// calls a plain `extern "system"` function, so they cross through statics.
static BODY: Mutex<Option<Body>> = Mutex::new(None);
static EXIT: Mutex<Option<ExitCode>> = Mutex::new(None);

define_windows_service!(ffi_service_main, service_main);

/// Runs `body` as the service: under `StartServiceCtrlDispatcherW` when the
/// SCM started this process (START_PENDING, then RUNNING when the body
/// says so, STOP_PENDING on STOP/SHUTDOWN, STOPPED with the exit code), or
/// directly with no session changes when it runs from a console.
pub fn dispatch(body: impl FnOnce(ServiceContext) -> ExitCode + Send + 'static) -> ExitCode {
    set(&BODY, Some(Box::new(body)));
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => take(&EXIT).unwrap_or(ExitCode::FAILURE),
        Err(e) if os_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT as i32) => {
            // Started from a console (an administrator testing): run here.
            let Some(body) = take(&BODY) else {
                return ExitCode::FAILURE;
            };
            let (_none, changes) = unbounded_channel();
            body(ServiceContext {
                stop: Shutdown::new(),
                changes,
                status: ScmStatus(None),
            })
        }
        Err(e) => {
            eprintln!("wsconnector: service: StartServiceCtrlDispatcher failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn set<T>(slot: &Mutex<Option<T>>, value: Option<T>) {
    match slot.lock() {
        Ok(mut g) => *g = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    match slot.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

/// The SCM's thread for the service: registers the control handler and
/// runs the body.
fn service_main(_arguments: Vec<OsString>) {
    let Some(body) = take(&BODY) else {
        return;
    };
    let stop = Shutdown::new();
    let (sender, changes) = unbounded_channel();
    let on_stop = stop.clone();
    // The handler reports STOP_PENDING itself, so it needs the status
    // handle that registering it returns.
    let handle: Arc<OnceLock<ServiceStatusHandle>> = Arc::default();
    let own = handle.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            on_stop.cancel();
            report(own.get(), ServiceState::StopPending, 0);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::SessionChange(p) => {
            if let Some(change) = SessionChange::of(p.reason, p.notification.session_id) {
                let _ = sender.send(change);
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(s) => *handle.get_or_init(|| s),
        Err(e) => {
            eprintln!("wsconnector: service: RegisterServiceCtrlHandlerEx failed: {e}");
            set(&EXIT, Some(ExitCode::FAILURE));
            return;
        }
    };
    report(Some(&status), ServiceState::StartPending, 0);
    let code = body(ServiceContext {
        stop: stop.clone(),
        changes,
        status: ScmStatus(Some(status)),
    });
    let failed = code != ExitCode::SUCCESS;
    report(Some(&status), ServiceState::Stopped, u32::from(failed));
    set(&EXIT, Some(code));
}

/// `SetServiceStatus`; a service-specific exit code when `exit` is not 0
/// (the failure actions then restart the service).
fn report(status: Option<&ServiceStatusHandle>, state: ServiceState, exit: u32) {
    let Some(status) = status else {
        return;
    };
    let controls_accepted = match state {
        ServiceState::Running => {
            ServiceControlAccept::STOP
                | ServiceControlAccept::SHUTDOWN
                | ServiceControlAccept::SESSION_CHANGE
        }
        _ => ServiceControlAccept::empty(),
    };
    let pending = matches!(
        state,
        ServiceState::StartPending | ServiceState::StopPending
    );
    let exit_code = if exit == 0 {
        ServiceExitCode::Win32(0)
    } else {
        ServiceExitCode::ServiceSpecific(exit)
    };
    let result = status.set_service_status(ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code,
        checkpoint: u32::from(pending),
        wait_hint: if pending {
            PENDING_HINT
        } else {
            Duration::ZERO
        },
        process_id: None,
    });
    if let Err(e) = result {
        tracing::warn!("SetServiceStatus({state:?}) failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_reasons_map_to_changes() {
        assert_eq!(
            SessionChange::of(SessionChangeReason::SessionLogon, 3),
            Some(SessionChange::Logon(3))
        );
        assert_eq!(
            SessionChange::of(SessionChangeReason::RemoteConnect, 4),
            Some(SessionChange::Connect(4))
        );
        assert_eq!(
            SessionChange::of(SessionChangeReason::ConsoleDisconnect, 1),
            Some(SessionChange::Disconnect(1))
        );
        assert_eq!(SessionChange::of(SessionChangeReason::SessionLock, 1), None);
    }

    #[test]
    fn the_scm_starts_service_run_with_the_config() {
        let args = launch_arguments(Path::new(r"C:\ProgramData\wsconnector\config.xml"));
        assert_eq!(
            args,
            [
                "--config",
                r"C:\ProgramData\wsconnector\config.xml",
                "service",
                "run"
            ]
            .map(OsString::from)
        );
    }
}
