//! `Mode = service` (issue 8, DESIGN.md §2): one machine-wide service owns
//! the port on shared Citrix/RDS hosts, keeps one context store per OS user,
//! and sends each user's desktop actions to that user's session agent.
//!
//! - `registry`: the connected session agents and the [`crate::platform::Platform`]
//!   each user's store uses to reach theirs (`agent_unavailable` without one).
//! - `link`: the service ↔ agent wire protocol over any byte stream.
//! - `unix_socket` (Linux) / `windows` (named pipes, SCM, sessions): the
//!   transports and their peer checks.
//! - `agent`: `wsconnector agent`, the per-session process.
//! - `run`: `wsconnector service run`, the service itself.
//! - `sessions`: when a user's last session ends (their context is wiped).
//! - `citrix`: the `LogoffCheckSysModules` list that lets Citrix
//!   published-app sessions end while the agent runs (edited as text).
//! - `config_guard`: the service refuses a config file users can modify.
//! - `acl_policy`: the same rule for Windows ACLs (pure; read by
//!   `windows::config_acl`).
//! - `user_log`: each user's lines of the service's log, forwarded to their
//!   agent so they land in the user's own log.

pub mod acl_policy;
pub mod agent;
pub mod args;
pub mod citrix;
#[cfg(unix)]
pub mod config_guard;
pub mod detect;
#[cfg(target_os = "linux")]
pub mod install_linux;
pub mod link;
pub mod registry;
pub mod run;
#[cfg(unix)]
pub mod sessions;
#[cfg(unix)]
pub mod unix_socket;
pub mod user_log;
#[cfg(windows)]
pub mod windows;
