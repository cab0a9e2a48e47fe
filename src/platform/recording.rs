//! The test double: records every call in order and answers with results the
//! test chose. Pickup dialogs can be held open until the test answers them,
//! so tests can ask twice for the same dialog while the first one is showing.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest};

/// One call the hub made, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `launch`.
    Launch(LaunchSpec),
    /// `open_url`.
    OpenUrl(String),
    /// `window`.
    Window(WindowRequest),
    /// `notify`.
    Notify(Toast),
    /// `pickup` (recorded when the dialog opens).
    Pickup(PickupDialog),
    /// `close_window`.
    CloseWindow(String),
}

/// Results the recording answers with (all succeed by default).
#[derive(Debug, Clone)]
struct Answers {
    launch: Result<u32, ActionError>,
    open_url: Result<(), ActionError>,
    window: Result<(), ActionError>,
    notify: Result<(), ActionError>,
    close_window: Result<(), ActionError>,
    /// `None` holds pickup dialogs open until `answer_pickup`.
    pickup: Option<Result<PickupOutcome, ActionError>>,
}

/// A `Platform` that performs nothing and remembers everything.
#[derive(Debug)]
pub struct Recording {
    /// Every call, in order.
    calls: Mutex<Vec<Call>>,
    /// What to answer; guarded with `pickup_changed` so held dialogs can wait.
    answers: Mutex<Answers>,
    /// Wakes held pickup dialogs when the test answers them.
    pickup_changed: Condvar,
}

impl Default for Recording {
    fn default() -> Self {
        Recording::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Longest a held pickup dialog waits for the test (a stuck test fails
/// instead of hanging).
const HOLD_LIMIT: Duration = Duration::from_secs(30);

impl Recording {
    /// Every action succeeds; pickups answer `PickedUp`; `launch` returns pid 4242.
    pub fn new() -> Recording {
        Recording {
            calls: Mutex::new(Vec::new()),
            answers: Mutex::new(Answers {
                launch: Ok(4242),
                open_url: Ok(()),
                window: Ok(()),
                notify: Ok(()),
                close_window: Ok(()),
                pickup: Some(Ok(PickupOutcome::PickedUp)),
            }),
            pickup_changed: Condvar::new(),
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Forget the calls so far.
    pub fn clear(&self) {
        lock(&self.calls).clear();
    }

    /// What `launch` answers from now on.
    pub fn set_launch(&self, r: Result<u32, ActionError>) {
        lock(&self.answers).launch = r;
    }

    /// What `open_url` answers from now on.
    pub fn set_open_url(&self, r: Result<(), ActionError>) {
        lock(&self.answers).open_url = r;
    }

    /// What `window` answers from now on.
    pub fn set_window(&self, r: Result<(), ActionError>) {
        lock(&self.answers).window = r;
    }

    /// What `notify` answers from now on.
    pub fn set_notify(&self, r: Result<(), ActionError>) {
        lock(&self.answers).notify = r;
    }

    /// Hold every pickup dialog open until `answer_pickup`.
    pub fn hold_pickups(&self) {
        lock(&self.answers).pickup = None;
    }

    /// Close held dialogs (and answer later ones) with `r`.
    pub fn answer_pickup(&self, r: Result<PickupOutcome, ActionError>) {
        lock(&self.answers).pickup = Some(r);
        self.pickup_changed.notify_all();
    }

    fn record(&self, call: Call) {
        lock(&self.calls).push(call);
    }
}

impl Platform for Recording {
    fn launch(&self, spec: &LaunchSpec) -> Result<u32, ActionError> {
        self.record(Call::Launch(spec.clone()));
        lock(&self.answers).launch.clone()
    }

    fn open_url(&self, url: &str) -> Result<(), ActionError> {
        self.record(Call::OpenUrl(url.to_string()));
        lock(&self.answers).open_url.clone()
    }

    fn window(&self, request: &WindowRequest) -> Result<(), ActionError> {
        self.record(Call::Window(request.clone()));
        lock(&self.answers).window.clone()
    }

    fn notify(&self, toast: &Toast) -> Result<(), ActionError> {
        self.record(Call::Notify(toast.clone()));
        lock(&self.answers).notify.clone()
    }

    fn pickup(&self, dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
        self.record(Call::Pickup(dialog.clone()));
        let answers = lock(&self.answers);
        let (answers, _) = self
            .pickup_changed
            .wait_timeout_while(answers, HOLD_LIMIT, |a| a.pickup.is_none())
            .unwrap_or_else(|p| p.into_inner());
        answers
            .pickup
            .clone()
            .unwrap_or(Ok(PickupOutcome::TimedOut))
    }

    fn host_name(&self) -> String {
        "recording-host".to_string()
    }

    fn close_window(&self, title: &str) -> Result<(), ActionError> {
        self.record(Call::CloseWindow(title.to_string()));
        lock(&self.answers).close_window.clone()
    }
}
