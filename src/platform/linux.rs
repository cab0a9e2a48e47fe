//! Linux desktop actions: programs start as detached children of the agent's
//! user (own process group, no terminal, reaped so no zombies remain), URLs
//! open through `xdg-open`, windows are found and moved through EWMH on X11
//! (`x11`), toasts and the pickup dialog are freedesktop notifications on the
//! session bus (`notify`); where the notification service cannot show a
//! button, the pickup dialog is a small X11 window (`pickup_window`).

mod notify;
mod pickup_window;
mod x11;

use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::{ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest};

/// The Linux desktop of the user the daemon runs as.
#[derive(Debug, Default)]
pub struct Linux;

impl Linux {
    /// The platform for this session.
    pub fn new() -> Linux {
        Linux
    }
}

/// A command that runs detached: no stdin/stdout/stderr inherited (a page
/// must not be able to write into our log), its own process group (a Ctrl-C
/// or SIGTERM to the daemon's group does not reach it).
pub(crate) fn detached(program: &std::path::Path, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    cmd
}

/// Wait for the child in a thread of its own so it never stays a zombie.
fn reap(mut child: Child, name: String) {
    let spawned = std::thread::Builder::new()
        .name("wsc-reaper".into())
        .spawn(move || match child.wait() {
            Ok(status) => tracing::debug!(program = %name, %status, "launched program ended"),
            Err(e) => {
                tracing::debug!(program = %name, error = %e, "cannot wait for a launched program")
            }
        });
    if let Err(e) = spawned {
        // Without a thread the child is reaped when the daemon exits.
        tracing::warn!(error = %e, "cannot start a thread to reap a launched program");
    }
}

fn spawn_error(what: &str, e: &std::io::Error) -> ActionError {
    match e.kind() {
        ErrorKind::NotFound => ActionError::NotFound(format!("{what} does not exist")),
        ErrorKind::PermissionDenied => {
            ActionError::Failed(format!("{what} is not executable for this user ({e})"))
        }
        _ => ActionError::Failed(format!("{what} could not be started: {e}")),
    }
}

impl Platform for Linux {
    fn launch(&self, spec: &LaunchSpec) -> Result<u32, ActionError> {
        let child = detached(&spec.path, &spec.args)
            .spawn()
            .map_err(|e| spawn_error(&spec.path.display().to_string(), &e))?;
        let pid = child.id();
        reap(child, spec.name.clone());
        Ok(pid)
    }

    fn open_url(&self, url: &str) -> Result<(), ActionError> {
        // xdg-open picks the user's default browser; the URL is one argv
        // entry, never a shell word.
        let opener = std::path::Path::new("xdg-open");
        let child = detached(opener, &[url.to_string()])
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => ActionError::NotSupported(
                    "xdg-open is not installed (Debian/Ubuntu package xdg-utils)".into(),
                ),
                _ => spawn_error("xdg-open", &e),
            })?;
        reap(child, "xdg-open".into());
        Ok(())
    }

    fn window(&self, request: &WindowRequest) -> Result<(), ActionError> {
        x11::window(request)
    }

    fn notify(&self, toast: &Toast) -> Result<(), ActionError> {
        notify::toast(toast)
    }

    fn pickup(&self, dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
        match notify::pickup(dialog) {
            // No notification service, or one without buttons: our own window.
            Err(ActionError::NotSupported(why)) => {
                tracing::debug!(%why, "pickup dialog: using a window instead of a notification");
                pickup_window::pickup(dialog).map_err(|e| match e {
                    ActionError::NotSupported(x) => {
                        ActionError::NotSupported(format!("{why}; and no window either: {x}"))
                    }
                    other => other,
                })
            }
            other => other,
        }
    }

    fn host_name(&self) -> String {
        whoami::fallible::hostname().unwrap_or_else(|_| "localhost".to_string())
    }

    fn close_window(&self, title: &str) -> Result<(), ActionError> {
        x11::close(title)
    }
}
