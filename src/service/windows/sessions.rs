//! The service's sessions: one supervisor task per session with a
//! logged-on user. At start the service takes every such session
//! (`WTSEnumerateSessionsW`: active, connected or disconnected, and
//! `WTSQueryUserToken` finds a user); then each logon or connect starts one.
//!
//! A session's supervisor first creates the session's pipe (retrying with
//! back-off while another program holds the name), then starts the agent as
//! the session's user and restarts it with back-off (`AgentRestartDelay`,
//! doubling to a minute) when it dies. An agent that exits 0 (its user
//! chose Quit, or another agent of the same user took over) is started again
//! only at the session's next logon or connect. At logoff the agent is
//! ended and [`SessionEvent::LoggedOff`] says whether that was the user's
//! last session, so the service can wipe the user's context.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::NamedPipeServer;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use windows_sys::Win32::System::RemoteDesktop::{
    WTSActive, WTSConnected, WTSDisconnected, WTSEnumerateSessionsW, WTSFreeMemory,
    WTSGetActiveConsoleSessionId, WTS_CURRENT_SERVER_HANDLE, WTS_SESSION_INFOW,
};

use super::launch::{self, UserToken};
use super::pipe::{PipeError, PipeListener};
use super::scm::SessionChange;
use crate::peer::OsUser;
use crate::server::Shutdown;

/// Longest wait between two restarts of an agent or two tries of a pipe.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// An agent that ran this long before dying is restarted after the first
/// delay again, not the last doubled one.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// What the supervisor reports to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// An agent was started in a session.
    AgentStarted {
        /// The session's user.
        user: OsUser,
        /// The session.
        session_id: u32,
        /// The agent's process id.
        pid: u32,
    },
    /// A session's user logged off; its agent was ended.
    LoggedOff {
        /// The session's user.
        user: OsUser,
        /// The session.
        session_id: u32,
        /// No other session of this user is left: wipe their context.
        last_session_of_user: bool,
    },
}

/// Hands a verified agent connection on: the stream, its user (the pipe
/// client's token, the only trusted identity) and its session.
pub type OnAgent = Arc<dyn Fn(NamedPipeServer, OsUser, u32) + Send + Sync>;

/// How agents are started.
#[derive(Debug, Clone)]
pub struct AgentCommand {
    /// The wsconnector executable.
    pub exe: PathBuf,
    /// The whole command line, `exe` first, quoted.
    pub command_line: String,
    /// First restart delay (`Timers/AgentRestartDelay`), doubled each time.
    pub restart_delay: Duration,
}

/// One supervised session.
struct Supervised {
    /// Its user.
    user: OsUser,
    /// Ends its supervisor (and agent).
    stop: Shutdown,
    /// Starts its agent again after it exited 0.
    kick: Arc<Notify>,
    /// The supervisor task.
    task: JoinHandle<()>,
}

/// `WTSGetActiveConsoleSessionId` when no session is attached to the console.
const NO_CONSOLE_SESSION: u32 = 0xFFFF_FFFF;

/// The ids of sessions that may have a logged-on user: those listed active,
/// connected or disconnected (a disconnected session's user is still logged
/// on and gets their agent back when they reconnect), and the console's.
pub fn candidate_sessions() -> std::io::Result<Vec<u32>> {
    let mut list: *mut WTS_SESSION_INFOW = std::ptr::null_mut();
    let mut count = 0u32;
    // SAFETY: the API allocates `list` (freed below) holding `count` entries.
    let ok =
        unsafe { WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, &mut list, &mut count) };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut ids: Vec<u32> = Vec::new();
    if !list.is_null() {
        // SAFETY: `list` points to `count` initialised entries until freed.
        let sessions = unsafe { std::slice::from_raw_parts(list, count as usize) };
        ids.extend(
            sessions
                .iter()
                .filter(|s| [WTSActive, WTSConnected, WTSDisconnected].contains(&s.State))
                .map(|s| s.SessionId),
        );
        // SAFETY: allocated by WTSEnumerateSessionsW, freed once.
        unsafe { WTSFreeMemory(list.cast()) };
    }
    // The physical console's session too (Wine's enumeration is an empty
    // stub; on Windows it is already in the list).
    // SAFETY: plain call.
    let console = unsafe { WTSGetActiveConsoleSessionId() };
    if console != NO_CONSOLE_SESSION && !ids.contains(&console) {
        ids.push(console);
    }
    Ok(ids)
}

/// Supervises every session until `stop`: the present ones, then those
/// that `changes` announce. Ends every agent before returning.
pub async fn supervise(
    command: AgentCommand,
    mut changes: UnboundedReceiver<SessionChange>,
    on_agent: OnAgent,
    events: UnboundedSender<SessionEvent>,
    stop: Shutdown,
) {
    let command = Arc::new(command);
    let mut sessions: HashMap<u32, Supervised> = HashMap::new();
    let start = |sessions: &mut HashMap<u32, Supervised>, id: u32| {
        if let Some(s) = sessions.get(&id) {
            if !s.task.is_finished() {
                s.kick.notify_one();
                return;
            }
        }
        match UserToken::of_session(id).and_then(|t| Ok((t.user()?, t))) {
            Ok(((user, _), token)) => {
                let child = stop.child_token();
                let kick = Arc::new(Notify::new());
                let task = tokio::spawn(supervise_session(SessionTask {
                    session_id: id,
                    token,
                    user: user.clone(),
                    command: command.clone(),
                    on_agent: on_agent.clone(),
                    events: events.clone(),
                    kick: kick.clone(),
                    stop: child.clone(),
                }));
                sessions.insert(
                    id,
                    Supervised {
                        user,
                        stop: child,
                        kick,
                        task,
                    },
                );
            }
            Err(e) => tracing::debug!(session_id = id, "no user to start an agent for: {e}"),
        }
    };
    match candidate_sessions() {
        Ok(ids) => {
            tracing::info!(sessions = ?ids, "sessions at start");
            for id in ids {
                start(&mut sessions, id);
            }
        }
        Err(e) => tracing::error!("cannot list the sessions: {e}"),
    }
    let mut open = true;
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => break,
            c = changes.recv(), if open => c,
        };
        let Some(change) = change else {
            // No SCM (console mode): nothing more will change.
            open = false;
            continue;
        };
        tracing::debug!(?change, "session change");
        match change {
            SessionChange::Logon(id) | SessionChange::Connect(id) => start(&mut sessions, id),
            SessionChange::Logoff(id) => {
                let Some(ended) = sessions.remove(&id) else {
                    continue;
                };
                ended.stop.cancel();
                let _ = ended.task.await;
                let last = !sessions.values().any(|s| s.user.id == ended.user.id);
                tracing::info!(session_id = id, user = %ended.user.name, last_session_of_user = last, "session logged off");
                let _ = events.send(SessionEvent::LoggedOff {
                    user: ended.user,
                    session_id: id,
                    last_session_of_user: last,
                });
            }
            SessionChange::Disconnect(_) => {}
        }
    }
    for (_, s) in sessions.drain() {
        s.stop.cancel();
        let _ = s.task.await;
    }
}

/// What one session's supervisor owns.
struct SessionTask {
    session_id: u32,
    token: UserToken,
    user: OsUser,
    command: Arc<AgentCommand>,
    on_agent: OnAgent,
    events: UnboundedSender<SessionEvent>,
    kick: Arc<Notify>,
    stop: Shutdown,
}

/// Sleeps `delay` unless `stop` comes first (then `false`).
async fn pause(stop: &Shutdown, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

async fn supervise_session(t: SessionTask) {
    let first = t.command.restart_delay;
    let id = t.session_id;
    // The pipe before the agent: an agent started while another program
    // holds the name would only refuse it.
    let mut delay = first;
    let listener = loop {
        match PipeListener::bind(id, &t.user) {
            Ok(l) => break l,
            Err(e) => {
                tracing::error!(session_id = id, "{e}; retrying in {delay:?}");
                if !pause(&t.stop, delay).await {
                    return;
                }
                delay = (delay * 2).min(MAX_RESTART_DELAY);
            }
        }
    };
    tracing::info!(session_id = id, pipe = listener.name(), user = %t.user.name, "agent pipe ready");
    let accepting = tokio::spawn(accept(
        listener,
        t.user.clone(),
        id,
        t.on_agent.clone(),
        t.stop.clone(),
    ));
    let mut delay = first;
    loop {
        let started = Instant::now();
        match launch::spawn_as(&t.token, &t.command.exe, &t.command.command_line) {
            Ok(agent) => {
                tracing::info!(session_id = id, user = %t.user.name, pid = agent.pid, "session agent started");
                let _ = t.events.send(SessionEvent::AgentStarted {
                    user: t.user.clone(),
                    session_id: id,
                    pid: agent.pid,
                });
                let exited = agent.exited();
                tokio::pin!(exited);
                let code = tokio::select! {
                    _ = t.stop.cancelled() => {
                        agent.terminate();
                        let _ = exited.await;
                        tracing::info!(session_id = id, pid = agent.pid, "session agent ended");
                        break;
                    }
                    code = &mut exited => code,
                };
                if code == 0 {
                    tracing::info!(session_id = id, pid = agent.pid, "the session agent quit (exit 0); it starts again at the session's next logon or connect");
                    tokio::select! {
                        _ = t.stop.cancelled() => break,
                        _ = t.kick.notified() => {
                            delay = first;
                            continue;
                        }
                    }
                }
                if started.elapsed() >= STABLE_RUN {
                    delay = first;
                }
                tracing::warn!(
                    session_id = id,
                    pid = agent.pid,
                    "the session agent died (exit {code:#x}); restarting in {delay:?}"
                );
            }
            Err(e) => {
                tracing::error!(session_id = id, user = %t.user.name, "cannot start the session agent: {e}; retrying in {delay:?}")
            }
        }
        if !pause(&t.stop, delay).await {
            break;
        }
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
    let _ = accepting.await;
}

/// Accepts the session's agent connections until `stop`; each verified one
/// goes to `on_agent`, any other client is logged and dropped.
async fn accept(
    mut listener: PipeListener,
    user: OsUser,
    session_id: u32,
    on_agent: OnAgent,
    stop: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(stream) => on_agent(stream, user.clone(), session_id),
            Err(e @ PipeError::WrongClient { .. }) => tracing::warn!(session_id, "{e}"),
            Err(e) => {
                tracing::warn!(session_id, "{e}");
                // A broken instance: do not spin.
                if !pause(&stop, Duration::from_millis(200)).await {
                    break;
                }
            }
        }
    }
}
