//! `wsconnector service run|install|uninstall`: the machine-wide service.

use std::process::ExitCode;

use super::args::ServiceAction;
use crate::config::Loaded;

/// Entry point of `wsconnector service ...`.
pub fn main(_loaded: Loaded, _action: ServiceAction) -> ExitCode {
    eprintln!("wsconnector: service: not built yet");
    ExitCode::from(2)
}
