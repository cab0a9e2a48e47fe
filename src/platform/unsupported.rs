//! Every OS without its own implementation yet: each action answers
//! `NotSupported` with the reason, never a fake success.

use super::{ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest};

/// The platform that can do nothing (but name the host).
#[derive(Debug, Default)]
pub struct Unsupported;

fn no(what: &str) -> ActionError {
    ActionError::NotSupported(format!(
        "{what} is not implemented for this operating system in this version of wsconnector"
    ))
}

impl Platform for Unsupported {
    fn launch(&self, _spec: &LaunchSpec) -> Result<u32, ActionError> {
        Err(no("launching a program"))
    }

    fn open_url(&self, _url: &str) -> Result<(), ActionError> {
        Err(no("opening a URL"))
    }

    fn window(&self, _request: &WindowRequest) -> Result<(), ActionError> {
        Err(no("focusing a window"))
    }

    fn notify(&self, _toast: &Toast) -> Result<(), ActionError> {
        Err(no("showing a notification"))
    }

    fn pickup(&self, _dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
        Err(no("the pickup dialog"))
    }

    fn host_name(&self) -> String {
        whoami::fallible::hostname().unwrap_or_else(|_| "localhost".to_string())
    }
}
