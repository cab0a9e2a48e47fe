//! Desktop actions behind one trait: launch a declared program, open a URL,
//! focus/resize a window by title, show a toast, show the incoming-call
//! pickup dialog, and name the host and user. One implementation per OS is
//! chosen with `cfg`; the rest of the daemon never calls an OS API directly.
//!
//! INTERFACE CONTRACT (shared by the Linux and Windows implementations and
//! by the hub; keep these signatures):
//! - every method is **blocking** and is called off the async workers
//!   (`tokio::task::spawn_blocking`), never under the hub's lock;
//! - arguments arrive already validated against config.xml (capabilities,
//!   declared programs, parameter rules, URL patterns): an implementation
//!   only performs the action;
//! - an action the platform cannot perform returns
//!   `ActionError::NotSupported` with a reason, never a fake success.
//!
//! Files: `linux` (X11/EWMH via x11rb, freedesktop notifications, detached
//! children), `windows` (Win32 via windows-sys: CreateProcessW, ShellExecuteExW,
//! EnumWindows/SetWindowPos, our own topmost toast and pickup windows),
//! `unsupported` (every other OS: everything `NotSupported`), `recording`
//! (the test double).

#[cfg(target_os = "linux")]
mod linux;
mod recording;
#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(windows)]
pub mod windows;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use recording::{Call, Recording};

/// The implementation for the OS this binary was built for.
pub fn system() -> Arc<dyn Platform> {
    #[cfg(target_os = "linux")]
    {
        Arc::new(linux::Linux::new())
    }
    #[cfg(windows)]
    {
        windows::system()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        Arc::new(unsupported::Unsupported)
    }
}

/// A program to start: the declared absolute path and its final argument
/// list (fixed arguments from config.xml, then the page's parameter if any).
/// Never run through a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The declared name (for logs and errors).
    pub name: String,
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// Arguments, each passed as one argv entry.
    pub args: Vec<String>,
}

/// `setSizeWindow(x, width, height, windowName, focus)` (reference §3.2.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRequest {
    /// Title to look for (exact match first, then substring).
    pub title: String,
    /// The legacy first argument (horizontal position when resizing).
    pub x: i32,
    /// New width; 0 with `height` 0 keeps the size.
    pub width: u32,
    /// New height; 0 with `width` 0 keeps the size.
    pub height: u32,
    /// Bring the window to the front.
    pub focus: bool,
}

/// `showNotification(title, message, duration, color, width, height)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    /// Title line.
    pub title: String,
    /// Body text (plain text, never markup).
    pub message: String,
    /// How long it stays; the platform may round it.
    pub duration: Duration,
    /// Legacy colour hint (`Red`, `#ff0000`); urgency where the platform has no colours.
    pub color: Option<String>,
    /// Legacy size hints; ignored where the platform decides the size.
    pub width: Option<u32>,
    /// Legacy size hints; ignored where the platform decides the size.
    pub height: Option<u32>,
}

/// `showPickupDialog(title, buttonText[, interactionId])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupDialog {
    /// The dedupe key (interaction id); one dialog per key.
    pub key: String,
    /// Title / caller text.
    pub title: String,
    /// Label of the pick-up button.
    pub button_text: String,
    /// After this the dialog closes by itself with `TimedOut`.
    pub timeout: Duration,
}

/// How a pickup dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickupOutcome {
    /// The agent pressed the button.
    PickedUp,
    /// The agent closed or dismissed it.
    Dismissed,
    /// Nobody reacted within the timeout.
    TimedOut,
}

/// Why an action did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The platform cannot do this at all (e.g. window focus on Wayland).
    #[error("not supported here: {0}")]
    NotSupported(String),
    /// The target (window, program file) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The OS refused or failed.
    #[error("failed: {0}")]
    Failed(String),
    /// `Mode = service`: the user's session agent, which performs desktop
    /// actions for the service, is not connected or did not answer.
    #[error("no session agent: {0}")]
    Unavailable(String),
}

/// The desktop of the user the daemon runs as.
pub trait Platform: Send + Sync + 'static {
    /// Start a program detached, as the agent's user; returns its process id.
    fn launch(&self, spec: &LaunchSpec) -> Result<u32, ActionError>;
    /// Open an http/https URL in the default browser.
    fn open_url(&self, url: &str) -> Result<(), ActionError>;
    /// Find a window by title, optionally resize it and bring it to the front.
    fn window(&self, request: &WindowRequest) -> Result<(), ActionError>;
    /// Show a toast.
    fn notify(&self, toast: &Toast) -> Result<(), ActionError>;
    /// Show the pickup dialog and block until it ends.
    fn pickup(&self, dialog: &PickupDialog) -> Result<PickupOutcome, ActionError>;
    /// The machine name (`getHost`).
    fn host_name(&self) -> String;
    /// Ask the window with this exact title to close (v1 `RqStopGWT`: the
    /// toolbar logs the agent out when its window is closed). The default
    /// says it cannot; an OS implementation overrides it where it can.
    fn close_window(&self, title: &str) -> Result<(), ActionError> {
        Err(ActionError::NotSupported(format!(
            "closing the window {title:?} is not implemented on this platform"
        )))
    }
}
