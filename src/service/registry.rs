//! The session agents connected to the service, one per OS user, and the
//! [`Platform`] each user's context store uses to reach theirs.
//!
//! The hub calls a `Platform` from a blocking thread (src/hub/desktop.rs);
//! the relay hands the call to the user's link task and waits for the
//! answer up to `Timers/AgentActionTimeout`. No agent, an agent that leaves
//! with the call pending, or no answer in time: `ActionError::Unavailable`,
//! which the client sees as FAILURE `agent_unavailable`. Data never depends
//! on an agent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use super::link::{outcome_of, Action, Done};
use super::user_log::LogLine;
use crate::peer::OsUser;
use crate::platform::{
    ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest,
};

/// One relayed call waiting for its agent.
pub struct Call {
    /// Link-unique id (the registry's counter).
    pub id: u64,
    /// What to do.
    pub action: Action,
    reply: std::sync::mpsc::SyncSender<Result<Done, ActionError>>,
}

impl Call {
    /// Gives the caller its answer (a caller that gave up is ignored).
    pub fn answer(self, result: Result<Done, ActionError>) {
        let _ = self.reply.try_send(result);
    }
}

struct Attached {
    generation: u64,
    /// The login name the service's log lines use (`OsUser::name`).
    name: String,
    calls: mpsc::UnboundedSender<Call>,
    /// The user's own log lines (src/service/user_log.rs); bounded so a
    /// stuck agent costs at most [`LOG_QUEUE`] lines of memory.
    logs: mpsc::Sender<LogLine>,
    /// Lines dropped because `logs` was full, reported with the next one.
    dropped: Arc<AtomicU64>,
}

/// How many of a user's log lines wait for their agent at most.
pub const LOG_QUEUE: usize = 256;

/// What the link task of one attached agent receives.
pub(super) struct Attachment {
    /// Tells this agent apart from a newer one of the same user.
    pub generation: u64,
    /// Calls to relay; closed when a newer agent replaces this one.
    pub calls: mpsc::UnboundedReceiver<Call>,
    /// The user's log lines to forward.
    pub logs: mpsc::Receiver<LogLine>,
    /// Lines dropped since the last one forwarded.
    pub dropped: Arc<AtomicU64>,
}

/// Connected agents by `OsUser::id`.
pub struct AgentRegistry {
    agents: Mutex<HashMap<String, Attached>>,
    /// Action timeout in ms (live: `Timers/AgentActionTimeout`).
    timeout_ms: AtomicU64,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgentRegistry {
    /// An empty registry whose calls wait at most `action_timeout`.
    pub fn new(action_timeout: Duration) -> Arc<AgentRegistry> {
        Arc::new(AgentRegistry {
            agents: Mutex::new(HashMap::new()),
            timeout_ms: AtomicU64::new(duration_ms(action_timeout)),
            next: AtomicU64::new(1),
        })
    }

    /// Changes the action timeout (live reload).
    pub fn set_action_timeout(&self, t: Duration) {
        self.timeout_ms.store(duration_ms(t), Ordering::Relaxed);
    }

    /// The platform of `user`'s store: every call goes to the agent
    /// registered for `user.id` at the time of the call.
    pub fn platform_for(self: &Arc<Self>, user: &OsUser, host_name: String) -> Arc<dyn Platform> {
        Arc::new(Relay {
            registry: self.clone(),
            user: user.clone(),
            host_name,
        })
    }

    /// True when an agent of `user_id` is connected.
    pub fn is_connected(&self, user_id: &str) -> bool {
        lock(&self.agents).contains_key(user_id)
    }

    /// The users whose agents are connected.
    pub fn connected_users(&self) -> Vec<String> {
        let mut users: Vec<String> = lock(&self.agents).keys().cloned().collect();
        users.sort();
        users
    }

    /// Registers the agent of `user` (the link task calls this after the
    /// hello checked out); an older agent of the same user loses its sender,
    /// which tells its link task it was replaced.
    pub(super) fn attach(&self, user: &OsUser) -> Attachment {
        let (tx, calls) = mpsc::unbounded_channel();
        let (log_tx, logs) = mpsc::channel(LOG_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        let old = lock(&self.agents).insert(
            user.id.clone(),
            Attached {
                generation,
                name: user.name.clone(),
                calls: tx,
                logs: log_tx,
                dropped: dropped.clone(),
            },
        );
        if old.is_some() {
            tracing::info!(user = %user.name, "a newer session agent replaces the connected one");
        }
        Attachment {
            generation,
            calls,
            logs,
            dropped,
        }
    }

    /// Queues `line` for the agent of the user logged as `user_name`, if one
    /// is connected. Never blocks and never logs (it runs inside the
    /// logging layer): a full queue counts the line as dropped.
    pub fn forward_log(&self, user_name: &str, line: LogLine) {
        let agents = lock(&self.agents);
        if let Some(agent) = agents.values().find(|a| a.name == user_name) {
            if agent.logs.try_send(line).is_err() {
                agent.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Unregisters `user`'s agent if it is still the one of `generation`.
    pub(super) fn detach(&self, user: &OsUser, generation: u64) {
        let mut agents = lock(&self.agents);
        if agents
            .get(&user.id)
            .is_some_and(|a| a.generation == generation)
        {
            agents.remove(&user.id);
        }
    }

    /// Sends `action` to `user`'s agent and waits for the answer. Blocking.
    fn call(&self, user: &OsUser, action: Action) -> Result<Done, ActionError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let call = Call {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            action,
            reply,
        };
        let sent = lock(&self.agents)
            .get(&user.id)
            .map(|a| a.calls.send(call).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(ActionError::Unavailable(format!(
                "no session agent of {} is connected to the service",
                user.name
            )));
        }
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed));
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(ActionError::Unavailable(format!(
                    "the session agent of {} did not answer within {timeout:?}",
                    user.name
                )))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ActionError::Unavailable(
                format!("the session agent of {} disconnected", user.name),
            )),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The platform of one user's store in service mode.
struct Relay {
    registry: Arc<AgentRegistry>,
    user: OsUser,
    host_name: String,
}

fn unit(done: Done) -> Result<(), ActionError> {
    match done {
        Done::Unit => Ok(()),
        other => Err(ActionError::Failed(format!(
            "the session agent answered {other:?}"
        ))),
    }
}

impl Platform for Relay {
    fn launch(&self, spec: &LaunchSpec) -> Result<u32, ActionError> {
        let action = Action::Launch {
            name: spec.name.clone(),
            path: spec.path.display().to_string(),
            args: spec.args.clone(),
        };
        match self.registry.call(&self.user, action)? {
            Done::Launched { pid } => Ok(pid),
            other => Err(ActionError::Failed(format!(
                "the session agent answered {other:?}"
            ))),
        }
    }

    fn open_url(&self, url: &str) -> Result<(), ActionError> {
        unit(
            self.registry
                .call(&self.user, Action::OpenUrl { url: url.into() })?,
        )
    }

    fn window(&self, r: &WindowRequest) -> Result<(), ActionError> {
        let action = Action::Window {
            title: r.title.clone(),
            x: r.x,
            width: r.width,
            height: r.height,
            focus: r.focus,
        };
        unit(self.registry.call(&self.user, action)?)
    }

    fn notify(&self, t: &Toast) -> Result<(), ActionError> {
        let action = Action::Notify {
            title: t.title.clone(),
            message: t.message.clone(),
            duration_ms: duration_ms(t.duration),
            color: t.color.clone(),
            width: t.width,
            height: t.height,
        };
        unit(self.registry.call(&self.user, action)?)
    }

    fn pickup(&self, d: &PickupDialog) -> Result<PickupOutcome, ActionError> {
        let action = Action::Pickup {
            key: d.key.clone(),
            title: d.title.clone(),
            button_text: d.button_text.clone(),
            timeout_ms: duration_ms(d.timeout),
        };
        match self.registry.call(&self.user, action)? {
            Done::Pickup { outcome } => outcome_of(&outcome)
                .ok_or_else(|| ActionError::Failed(format!("unknown pickup outcome {outcome:?}"))),
            other => Err(ActionError::Failed(format!(
                "the session agent answered {other:?}"
            ))),
        }
    }

    fn host_name(&self) -> String {
        self.host_name.clone()
    }

    fn close_window(&self, title: &str) -> Result<(), ActionError> {
        unit(self.registry.call(
            &self.user,
            Action::CloseWindow {
                title: title.into(),
            },
        )?)
    }
}
