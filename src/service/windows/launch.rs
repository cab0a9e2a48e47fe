//! Starting `wsconnector agent` as the user of a session, in that session:
//! `WTSQueryUserToken` → `DuplicateTokenEx` (a primary token) →
//! `CreateEnvironmentBlock` (the user's own environment, not SYSTEM's) →
//! `CreateProcessAsUserW` on the interactive desktop `winsta0\default`,
//! with no console window. Only LocalSystem with SeTcbPrivilege may ask
//! for a session's token; the process is then watched through its handle.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::{
    DuplicateTokenEx, SecurityIdentification, TokenPrimary, TOKEN_ALL_ACCESS,
};
use windows_sys::Win32::System::Environment::{CreateEnvironmentBlock, DestroyEnvironmentBlock};
use windows_sys::Win32::System::RemoteDesktop::WTSQueryUserToken;
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, GetExitCodeProcess, TerminateProcess, WaitForSingleObject,
    CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT, INFINITE, PROCESS_INFORMATION, STARTUPINFOW,
};

use super::wide;
use crate::peer::OsUser;

/// The interactive desktop of a session's window station.
const DESKTOP: &str = r"winsta0\default";
/// Exit code given to an agent the service ends (logoff, service stop).
pub const TERMINATED: u32 = 0xC000_013A;

/// A primary token of a session's logged-on user.
#[derive(Debug)]
pub struct UserToken(OwnedHandle);

/// Takes ownership of a handle a Win32 call just returned.
///
/// # Safety
/// `handle` must be a valid, open handle owned by nobody else.
unsafe fn own(handle: HANDLE) -> OwnedHandle {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedHandle::from_raw_handle(handle) }
}

impl UserToken {
    /// The token of the user logged on to `session_id` (fails when nobody
    /// is logged on there, or without SeTcbPrivilege).
    pub fn of_session(session_id: u32) -> io::Result<UserToken> {
        let mut impersonation: HANDLE = std::ptr::null_mut();
        // SAFETY: writes one handle we then own.
        if unsafe { WTSQueryUserToken(session_id, &mut impersonation) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle from the call above.
        let impersonation = unsafe { own(impersonation) };
        let mut primary: HANDLE = std::ptr::null_mut();
        // SAFETY: `impersonation` is an open token; writes one handle we
        // then own. CreateProcessAsUserW needs a primary token.
        let ok = unsafe {
            DuplicateTokenEx(
                impersonation.as_raw_handle(),
                TOKEN_ALL_ACCESS,
                std::ptr::null(),
                SecurityIdentification,
                TokenPrimary,
                &mut primary,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle from the call above.
        Ok(UserToken(unsafe { own(primary) }))
    }

    /// The token's user (SID string and `DOMAIN\name`) and session.
    pub fn user(&self) -> io::Result<(OsUser, Option<u32>)> {
        crate::peer::token_owner(self.0.as_raw_handle())
    }
}

/// A started agent process.
#[derive(Debug, Clone)]
pub struct AgentProcess {
    /// Its process id.
    pub pid: u32,
    /// Its process handle, shared with the thread waiting for its exit.
    handle: Arc<OwnedHandle>,
}

impl AgentProcess {
    /// Waits (on a thread of its own, not the runtime's) until the process
    /// exits, and returns its exit code.
    pub async fn exited(&self) -> u32 {
        let handle = self.handle.clone();
        let (tell, told) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("wsconnector-agent-wait".into())
            .spawn(move || {
                // SAFETY: the handle stays open while `handle` lives.
                let waited = unsafe { WaitForSingleObject(handle.as_raw_handle(), INFINITE) };
                let mut code = 0u32;
                // SAFETY: as above; writes one u32.
                let ok = unsafe { GetExitCodeProcess(handle.as_raw_handle(), &mut code) };
                let _ = tell.send(if waited == WAIT_OBJECT_0 && ok != 0 {
                    code
                } else {
                    u32::MAX
                });
            });
        if spawned.is_err() {
            return u32::MAX;
        }
        told.await.unwrap_or(u32::MAX)
    }

    /// Ends the process (logoff, service stop). An agent already gone is
    /// not an error.
    pub fn terminate(&self) {
        // SAFETY: the handle is open (PROCESS_ALL_ACCESS from creation).
        unsafe { TerminateProcess(self.handle.as_raw_handle(), TERMINATED) };
    }
}

/// Starts `exe` with `command_line` (quoted, `exe` first) as the token's
/// user, in the token's session, on `winsta0\default`, with the user's
/// environment and no console window.
pub fn spawn_as(token: &UserToken, exe: &Path, command_line: &str) -> io::Result<AgentProcess> {
    let mut command_line = wide(command_line);
    let application = wide(exe);
    let mut desktop = wide(DESKTOP);
    let mut environment: *mut core::ffi::c_void = std::ptr::null_mut();
    // SAFETY: the token is open with TOKEN_QUERY|TOKEN_DUPLICATE|
    // TOKEN_IMPERSONATE (all access); the block is freed below.
    if unsafe { CreateEnvironmentBlock(&mut environment, token.0.as_raw_handle(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: STARTUPINFOW is plain data; all-zero is its documented
    // "nothing set" value, completed below.
    let mut startup: STARTUPINFOW = unsafe { std::mem::zeroed() };
    startup.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
    startup.lpDesktop = desktop.as_mut_ptr();
    // SAFETY: plain data, written by the call.
    let mut info: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer refers to a live, NUL-terminated buffer above
    // (`command_line` is writable, as the API requires); the environment
    // block is the Unicode one CreateEnvironmentBlock made.
    let ok = unsafe {
        CreateProcessAsUserW(
            token.0.as_raw_handle(),
            application.as_ptr(),
            command_line.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            0,
            CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW,
            environment,
            std::ptr::null(),
            &startup,
            &mut info,
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: the block from CreateEnvironmentBlock, freed once.
    unsafe { DestroyEnvironmentBlock(environment) };
    if ok == 0 {
        return Err(error);
    }
    // SAFETY: fresh handles from CreateProcessAsUserW; the thread handle is
    // not needed and closed at once.
    let (process, _thread) = unsafe { (own(info.hProcess), own(info.hThread)) };
    Ok(AgentProcess {
        pid: info.dwProcessId,
        handle: Arc::new(process),
    })
}
