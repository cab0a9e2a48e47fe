//! The Windows transport of the service ↔ agent link: one named pipe per
//! session, `\\.\pipe\wsconnector-agent-<session id>`.
//!
//! Service side ([`PipeListener`]): the first instance is created with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`, and must then be the name's only
//! instance, so a program that took the name before the service makes the
//! creation fail (loudly: [`PipeError::Squatted`]) instead of sharing it; its DACL (protected, from SDDL) lets only
//! SYSTEM and the session's user open it, and remote clients are rejected.
//! Each connected client's process token must be that user's (and that
//! session's) before the stream is handed on: the link trusts no other
//! identity.
//!
//! Agent side ([`connect_agent`]): the pipe's server process
//! (`GetNamedPipeServerProcessId`) must be the service's process as the
//! SCM reports it; otherwise the agent refuses the pipe without sending a
//! byte, naming the pid, its program and user.

use std::io;
use std::os::windows::io::AsRawHandle;
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::{LocalFree, ERROR_PIPE_BUSY};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeClientProcessId, GetNamedPipeHandleStateW, GetNamedPipeServerProcessId,
};

use super::wide;
use crate::peer::{self, OsUser};

/// Prefix of every session's pipe name.
pub const PIPE_PREFIX: &str = r"\\.\pipe\wsconnector-agent-";
/// How long an agent waits for a free pipe instance.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The pipe of session `session_id`.
pub fn pipe_name(session_id: u32) -> String {
    format!("{PIPE_PREFIX}{session_id}")
}

/// The pipe's DACL in SDDL: protected (`P`, no inherited entries), full
/// access for SYSTEM (the service), read/write for the session's user (its
/// agent). Nobody else may open it.
pub fn sddl(user_sid: &str) -> String {
    format!("D:P(A;;GA;;;SY)(A;;GRGW;;;{user_sid})")
}

/// What went wrong with a pipe.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// Another process holds the pipe name: the first instance could not be
    /// created.
    #[error(
        "cannot create {name}: another program already holds this pipe name ({source}); \
         refusing to share it (pipe squatting); the session's agent is not started until \
         the name is free"
    )]
    Squatted {
        /// The pipe name.
        name: String,
        /// The OS error (access denied or pipe busy).
        source: io::Error,
    },
    /// The SDDL could not be turned into a security descriptor.
    #[error("pipe security descriptor {sddl:?}: {source}")]
    Security {
        /// The SDDL.
        sddl: String,
        /// The OS error.
        source: io::Error,
    },
    /// A pipe call failed.
    #[error("{name}: {what}: {source}")]
    Io {
        /// The pipe name.
        name: String,
        /// What was attempted.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The connected client is not the session's user.
    #[error(
        "{name}: refused a client: pid {pid} runs as {found} in session {session}, \
         this pipe is for {expected} in session {expected_session}"
    )]
    WrongClient {
        /// The pipe name.
        name: String,
        /// The client's process id.
        pid: u32,
        /// Who it runs as.
        found: String,
        /// Its session (`?` when unknown).
        session: String,
        /// The session's user.
        expected: String,
        /// The pipe's session.
        expected_session: u32,
    },
    /// The pipe's server is not the wsconnector service.
    #[error("refusing {name}: its server is pid {pid} ({program}, running as {user}), {why} (pipe squatting?)")]
    NotTheService {
        /// The pipe name.
        name: String,
        /// The server's process id.
        pid: u32,
        /// Its executable.
        program: String,
        /// Its user.
        user: String,
        /// Why it is not the service.
        why: String,
    },
}

fn io_error<'a>(name: &'a str, what: &'static str) -> impl FnOnce(io::Error) -> PipeError + 'a {
    move |source| PipeError::Io {
        name: name.to_string(),
        what,
        source,
    }
}

/// A self-relative security descriptor from SDDL, freed on drop.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is an immutable LocalAlloc'd block owned by this
// value alone; Win32 only reads it.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above, shared reads only.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    fn from_sddl(sddl: &str) -> Result<SecurityDescriptor, PipeError> {
        let text = wide(sddl);
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `text` is NUL-terminated; the API allocates `sd` with
        // LocalAlloc, owned (and freed) by the returned value.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(PipeError::Security {
                sddl: sddl.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(SecurityDescriptor(sd))
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// The service's end of one session's pipe: always one instance waiting
/// for the next agent connection.
pub struct PipeListener {
    /// The pipe name.
    name: String,
    /// The session's user: the only client accepted.
    user: OsUser,
    /// The session: the client's token must be in it.
    session_id: u32,
    /// The DACL every instance is created with.
    security: SecurityDescriptor,
    /// The instance waiting for a client.
    waiting: NamedPipeServer,
}

impl PipeListener {
    /// Creates the first instance of session `session_id`'s pipe for `user`.
    pub fn bind(session_id: u32, user: &OsUser) -> Result<PipeListener, PipeError> {
        Self::bind_named(&pipe_name(session_id), session_id, user)
    }

    /// [`PipeListener::bind`] under another name (tests).
    pub fn bind_named(
        name: &str,
        session_id: u32,
        user: &OsUser,
    ) -> Result<PipeListener, PipeError> {
        let security = SecurityDescriptor::from_sddl(&sddl(&user.id))?;
        let squatted = |source| PipeError::Squatted {
            name: name.to_string(),
            source,
        };
        let waiting = create(name, &security, true).map_err(squatted)?;
        // Belt and braces: FILE_FLAG_FIRST_PIPE_INSTANCE already refuses an
        // existing name on Windows (Wine ignores the flag); any instance
        // besides ours is another program's.
        match instances(&waiting) {
            Ok(1) => {}
            Ok(n) => {
                return Err(squatted(io::Error::other(format!(
                    "{} other instance(s) of the pipe exist",
                    n - 1
                ))))
            }
            Err(e) => return Err(io_error(name, "count the pipe's instances")(e)),
        }
        Ok(PipeListener {
            name: name.to_string(),
            user: user.clone(),
            session_id,
            security,
            waiting,
        })
    }

    /// The pipe name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the next client, puts a new instance in its place, and
    /// returns the client's stream once its process runs as the session's
    /// user in the session ([`PipeError::WrongClient`] otherwise: that
    /// connection is closed, the listener goes on).
    pub async fn accept(&mut self) -> Result<NamedPipeServer, PipeError> {
        self.waiting
            .connect()
            .await
            .map_err(io_error(&self.name, "wait for a client"))?;
        let next = create(&self.name, &self.security, false)
            .map_err(io_error(&self.name, "create the next instance"))?;
        let connected = std::mem::replace(&mut self.waiting, next);
        self.check_client(&connected)?;
        Ok(connected)
    }

    fn check_client(&self, pipe: &NamedPipeServer) -> Result<(), PipeError> {
        let mut pid = 0u32;
        // SAFETY: a connected pipe handle owned by `pipe`; writes one u32.
        if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &mut pid) } == 0 {
            return Err(PipeError::Io {
                name: self.name.clone(),
                what: "read the client's process id",
                source: io::Error::last_os_error(),
            });
        }
        let (found, session) =
            peer::process_identity(pid).map_err(io_error(&self.name, "read the client's token"))?;
        if found.id == self.user.id && session == Some(self.session_id) {
            return Ok(());
        }
        Err(PipeError::WrongClient {
            name: self.name.clone(),
            pid,
            found: format!("{} ({})", found.name, found.id),
            session: session.map_or_else(|| "?".into(), |s| s.to_string()),
            expected: format!("{} ({})", self.user.name, self.user.id),
            expected_session: self.session_id,
        })
    }
}

/// How many instances of `pipe`'s name exist (`GetNamedPipeHandleStateW`).
fn instances(pipe: &NamedPipeServer) -> io::Result<u32> {
    let mut count = 0u32;
    // SAFETY: an open pipe handle owned by `pipe`; only the instance count
    // is asked for, every other out-pointer is null.
    let ok = unsafe {
        GetNamedPipeHandleStateW(
            pipe.as_raw_handle(),
            std::ptr::null_mut(),
            &mut count,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(count)
}

/// One instance of `name` with `security` as its descriptor.
fn create(name: &str, security: &SecurityDescriptor, first: bool) -> io::Result<NamedPipeServer> {
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: security.0,
        bInheritHandle: 0,
    };
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true);
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor
    // outlives the call (owned by the listener).
    unsafe {
        options
            .create_with_security_attributes_raw(name, std::ptr::from_mut(&mut attributes).cast())
    }
}

/// Who may serve the agents' pipes: the service's process id as the SCM
/// reports it, `None` when the service is not running.
pub type ExpectedServer = Option<u32>;

/// Agent side: opens session `session_id`'s pipe and checks that its
/// server is the running wsconnector service before anything is sent.
pub async fn connect_agent(session_id: u32) -> Result<NamedPipeClient, PipeError> {
    let name = pipe_name(session_id);
    connect_checked(&name, super::scm::service_pid()).await
}

/// Opens `name` (waiting up to a few seconds for a free instance) and
/// returns it only when its server process is `expected`.
pub async fn connect_checked(
    name: &str,
    expected: ExpectedServer,
) -> Result<NamedPipeClient, PipeError> {
    let end = Instant::now() + BUSY_WAIT;
    let client = loop {
        match ClientOptions::new().open(name) {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(io_error(name, "open")(e)),
        }
    };
    let mut pid = 0u32;
    // SAFETY: an open pipe handle owned by `client`; writes one u32.
    if unsafe { GetNamedPipeServerProcessId(client.as_raw_handle(), &mut pid) } == 0 {
        return Err(io_error(name, "read the server's process id")(
            io::Error::last_os_error(),
        ));
    }
    let why = match expected {
        Some(service) if service == pid => return Ok(client),
        Some(service) => {
            format!("not the wsconnector service (pid {service} per the Service Control Manager)")
        }
        None => "and the wsconnector service is not running".to_string(),
    };
    let (user, _) = peer::process_identity(pid)
        .map(|(u, s)| (format!("{} ({})", u.name, u.id), s))
        .unwrap_or_else(|e| (format!("? ({e})"), None));
    Err(PipeError::NotTheService {
        name: name.to_string(),
        pid,
        program: peer::process_image(pid).unwrap_or_else(|| "?".into()),
        user,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dacl() {
        assert_eq!(pipe_name(3), r"\\.\pipe\wsconnector-agent-3");
        assert_eq!(
            sddl("S-1-5-21-1-2-3-1001"),
            "D:P(A;;GA;;;SY)(A;;GRGW;;;S-1-5-21-1-2-3-1001)"
        );
    }
}
