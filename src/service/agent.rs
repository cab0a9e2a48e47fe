//! `wsconnector agent`: the per-session process of service mode. It connects
//! to the service, checks that the other end really is the service, and
//! performs the desktop actions the service relays for its user.

use std::process::ExitCode;

use super::args::AgentArgs;
use crate::config::Loaded;

/// Entry point of `wsconnector agent`.
pub fn main(_loaded: Loaded, _args: AgentArgs) -> ExitCode {
    eprintln!("wsconnector: agent: not built yet");
    ExitCode::from(2)
}
