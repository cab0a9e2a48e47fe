//! Service mode on Windows (issue 8, DESIGN.md §2): the parts only Windows
//! has. The service runs under the Service Control Manager as LocalSystem
//! with its privileges cut down to those that start session agents; it
//! starts `wsconnector agent` as the user of every interactive session and
//! talks to each over a named pipe that only that user and SYSTEM can open.
//!
//! - `scm`: `service install|uninstall` (the SCM registration, required
//!   privileges, restart on failure), [`scm::dispatch`] (the service's
//!   status and its STOP/SHUTDOWN/SESSIONCHANGE controls) and
//!   [`scm::service_running`].
//! - `citrix`: `LogoffCheckSysModules` read and written in the registry
//!   at `service install|uninstall`.
//! - `launch`: a session user's token and `CreateProcessAsUserW` of the
//!   agent on `winsta0\default`.
//! - `sessions`: one supervisor per interactive session: its pipe, its agent
//!   (restarted with back-off, stopped at logoff), and the
//!   [`sessions::SessionEvent::LoggedOff`] report that ends a user's context.
//! - `pipe`: `\\.\pipe\wsconnector-agent-<session>`, created first by the
//!   service with a DACL for SYSTEM and the session's user; both ends check
//!   the other's process before trusting it.
//! - `log_acl`: the service's log folder, SYSTEM and Administrators only.
//! - `config_acl`: reads config.xml's and its folders' owners and DACLs for
//!   the config guard (the policy is `service::acl_policy`).
//! - `glue`: `wsconnector service run` on Windows (the SCM, the server, the
//!   sessions and the link wired together).
//!
//! What Wine (the CI) cannot prove is listed in tests/service_windows.rs.

// Win32 is a C API: every call is `unsafe`. The crate forbids unsafe code
// everywhere else; here each block carries a `// SAFETY:` note.
#![allow(unsafe_code)]

pub mod citrix;
pub mod config_acl;
pub mod glue;
pub mod launch;
pub mod log_acl;
pub mod pipe;
pub mod scm;
pub mod sessions;

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;

/// `s` as a NUL-terminated UTF-16 string for Win32.
fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// The session this process runs in (`ProcessIdToSessionId`).
pub fn current_session() -> std::io::Result<u32> {
    use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
    let mut session = 0u32;
    // SAFETY: plain call writing one u32 we own.
    if unsafe { ProcessIdToSessionId(std::process::id(), &mut session) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(session)
}
