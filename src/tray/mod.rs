//! The agent's tray icon: status at a glance and a small menu.
//!
//! Threading, in the style of espanso's UI crate: the tray loop
//! ([`run`]) owns the main thread (Win32 wants its message loop on the
//! thread that created the window; keeping Linux the same keeps one shape),
//! while the daemon runs on its I/O thread (src/agent.rs). The two talk
//! through a [`DaemonHandle`] (tray -> daemon: status, quit, reload) and a
//! channel of [`TrayEvent`]s (menu clicks and "the daemon stopped" -> tray).
//!
//! Backends, one file per OS behind [`Backend`]: `linux.rs` speaks the
//! StatusNotifierItem protocol over D-Bus with the `ksni` crate (no GTK),
//! `windows.rs` uses `tray-icon`'s Win32 backend (Shell_NotifyIconW), and
//! elsewhere there is no tray ([`TrayError::NoHost`]). Without a tray host the
//! agent logs a warning and runs headless; the tray is never a reason to stop.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
use linux as os;
#[cfg(not(any(target_os = "linux", windows)))]
use unsupported as os;
#[cfg(windows)]
use windows as os;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::app::Daemon;
use crate::config::ConfigSource;
use crate::server::{ServerState, Shutdown};

/// The item's title (StatusNotifierItem `Title`, the Windows tooltip's first line).
pub const TRAY_TITLE: &str = "wsconnector";

/// The page "Open demo page" shows.
pub const DEMO_PAGE_PATH: &str = "/";

/// How often the tray re-reads the daemon's status when nothing happens.
pub const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// Longest last-error text shown in the tray (the log has the whole line).
const MAX_ERROR_CHARS: usize = 120;

/// The menu's commands, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MenuAction {
    /// Open the daemon's demo page ([`DEMO_PAGE_PATH`]) in the default browser.
    OpenPage,
    /// Open the inspector with a fresh one-time token (docs/inspector.md).
    OpenInspector,
    /// Open the `Log-path` folder in the file manager.
    OpenLogFolder,
    /// Ask the daemon to reload `config.xml`.
    ReloadConfig,
    /// Show version, port and configuration file.
    About,
    /// Stop the daemon cleanly and exit.
    Quit,
}

impl MenuAction {
    /// Every action, in menu order.
    pub const ALL: [MenuAction; 6] = [
        MenuAction::OpenPage,
        MenuAction::OpenInspector,
        MenuAction::OpenLogFolder,
        MenuAction::ReloadConfig,
        MenuAction::About,
        MenuAction::Quit,
    ];

    /// The menu label.
    pub fn label(self) -> &'static str {
        match self {
            MenuAction::OpenPage => "Open demo page",
            MenuAction::OpenInspector => "Open inspector",
            MenuAction::OpenLogFolder => "Open log folder",
            MenuAction::ReloadConfig => "Reload configuration",
            MenuAction::About => "About wsconnector",
            MenuAction::Quit => "Quit",
        }
    }

    /// A stable identifier (Windows menu ids).
    pub fn id(self) -> &'static str {
        match self {
            MenuAction::OpenPage => "open-page",
            MenuAction::OpenInspector => "open-inspector",
            MenuAction::OpenLogFolder => "open-log-folder",
            MenuAction::ReloadConfig => "reload-config",
            MenuAction::About => "about",
            MenuAction::Quit => "quit",
        }
    }

    /// The action whose [`id`](Self::id) is `id`.
    pub fn from_id(id: &str) -> Option<MenuAction> {
        MenuAction::ALL.into_iter().find(|a| a.id() == id)
    }
}

/// What reaches the tray loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEvent {
    /// The user chose a menu item.
    Menu(MenuAction),
    /// The daemon stopped (signal, service stop): the tray goes too.
    DaemonStopped,
}

/// The status shown at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrayStatus {
    /// Open websocket connections.
    pub clients: usize,
    /// The last error logged, shortened.
    pub last_error: Option<String>,
    /// Set when the WSS certificate expires within
    /// [`crate::tls::expiry::RENEW_WARNING_DAYS`] (the `/health` warning).
    pub cert_warning: Option<String>,
    /// Service mode's session agent (`wsconnector agent`): whether it is
    /// connected to the service; `None` for the desktop daemon.
    pub service_link: Option<bool>,
}

impl TrayStatus {
    /// One line: `2 clients connected`.
    pub fn clients_line(&self) -> String {
        match self.service_link {
            Some(true) => return "Connected to the wsconnector service".to_string(),
            Some(false) => {
                return "Not connected to the wsconnector service: desktop actions unavailable"
                    .to_string()
            }
            None => {}
        }
        match self.clients {
            0 => "No client connected".to_string(),
            1 => "1 client connected".to_string(),
            n => format!("{n} clients connected"),
        }
    }

    /// Whether something deserves the agent's attention.
    pub fn needs_attention(&self) -> bool {
        self.last_error.is_some() || self.cert_warning.is_some() || self.service_link == Some(false)
    }

    /// The status lines, most important first (menu and tooltip).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.clients_line()];
        lines.extend(self.cert_warning.clone());
        lines.extend(self.last_error.as_ref().map(|e| format!("Last error: {e}")));
        lines
    }

    /// The tooltip text.
    pub fn tooltip(&self) -> String {
        let mut text = TRAY_TITLE.to_string();
        for line in self.lines() {
            text.push('\n');
            text.push_str(&line);
        }
        text
    }
}

/// What "About" shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AboutInfo {
    /// Product version.
    pub version: String,
    /// The port both loopback addresses listen on.
    pub port: u16,
    /// `ws` or `wss`.
    pub scheme: String,
    /// The configuration in use (a path or "embedded defaults").
    pub config: String,
    /// The `Log-path` folder, when logs go to files.
    pub log_folder: Option<PathBuf>,
    /// Service mode: the service's shared folder for inspector tokens
    /// (`inspector::token::shared_dir`); `None` for the desktop daemon.
    pub inspector_dir: Option<PathBuf>,
    /// The config.xml in use, when a file (the Windows agent asks the
    /// service for inspector tokens with that file's port and certificate).
    pub config_file: Option<PathBuf>,
}

impl AboutInfo {
    /// The facts about a running daemon.
    pub fn of(state: &ServerState, port: u16, scheme: &str) -> AboutInfo {
        AboutInfo {
            version: crate::VERSION.to_string(),
            port,
            scheme: scheme.to_string(),
            config: match &state.config().source {
                ConfigSource::File(p) => p.display().to_string(),
                ConfigSource::Embedded => "embedded defaults (no config.xml)".to_string(),
            },
            log_folder: state.config().log.path.clone(),
            inspector_dir: None,
            config_file: None,
        }
    }

    /// The facts a session agent shows: the service's port and scheme, the
    /// configuration, no log folder (the agent logs to its user's journal).
    pub fn of_agent(config: &crate::config::Config) -> AboutInfo {
        AboutInfo {
            version: crate::VERSION.to_string(),
            port: config.port,
            scheme: match config.socket_type {
                crate::config::SocketType::Ws => "ws".into(),
                crate::config::SocketType::Wss => "wss".into(),
            },
            config: match &config.source {
                ConfigSource::File(p) => p.display().to_string(),
                ConfigSource::Embedded => "embedded defaults (no config.xml)".to_string(),
            },
            log_folder: None,
            inspector_dir: Some(crate::inspector::token::shared_dir(
                &config.service.agent_socket,
            )),
            config_file: match &config.source {
                ConfigSource::File(p) => Some(p.clone()),
                ConfigSource::Embedded => None,
            },
        }
    }

    /// The About text, one fact per line.
    pub fn text(&self) -> String {
        format!(
            "wsconnector {}\nListening on {}://127.0.0.1:{} and [::1]:{}\nConfiguration: {}\nLogs: {}",
            self.version,
            self.scheme,
            self.port,
            self.port,
            self.config,
            match &self.log_folder {
                Some(p) => p.display().to_string(),
                None => "standard error (no Log-path)".to_string(),
            }
        )
    }

    /// `http(s)://127.0.0.1:PORT` + `path`: the daemon's own pages.
    pub fn page_url(&self, path: &str) -> String {
        let scheme = if self.scheme == "wss" {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

/// Commands from the tray to the daemon, served on the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonCommand {
    /// Reload `config.xml` (see [`on_reload_requested`]).
    ReloadConfig,
}

/// How many commands may wait; the tray never blocks on a full queue (a
/// burst of clicks is dropped with a warning).
const COMMAND_QUEUE: usize = 8;

/// What the tray shows the status of.
#[derive(Clone)]
enum Source {
    /// The desktop daemon (its client count, certificate).
    Daemon(Arc<ServerState>),
    /// Service mode's session agent: whether its link to the service is up.
    Agent(Arc<std::sync::atomic::AtomicBool>),
}

/// The tray's `Send` handle on the running daemon (or session agent).
#[derive(Clone)]
pub struct DaemonHandle {
    /// What the status line describes.
    source: Source,
    /// Cancelling it stops the daemon (Quit).
    shutdown: Shutdown,
    /// To the command task on the runtime.
    commands: tokio::sync::mpsc::Sender<DaemonCommand>,
    /// The last error logged.
    last_error: LastError,
    /// Version, port, configuration.
    about: Arc<AboutInfo>,
}

impl DaemonHandle {
    /// A handle on `daemon`; spawns the task that serves tray commands on
    /// `runtime`.
    pub fn new(
        daemon: &Daemon,
        last_error: LastError,
        runtime: &tokio::runtime::Handle,
    ) -> DaemonHandle {
        let (commands, rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
        runtime.spawn(serve_commands(
            rx,
            daemon.shutdown_token(),
            daemon.reloader(),
        ));
        DaemonHandle {
            source: Source::Daemon(daemon.state.clone()),
            shutdown: daemon.shutdown_token(),
            commands,
            last_error,
            about: Arc::new(AboutInfo::of(&daemon.state, daemon.port, daemon.scheme)),
        }
    }

    /// A handle on a session agent (`wsconnector agent`): the status line
    /// follows `connected`; Quit trips `shutdown`; "Reload configuration"
    /// only says that the service's administrator reloads it.
    pub fn for_agent(
        connected: Arc<std::sync::atomic::AtomicBool>,
        about: AboutInfo,
        shutdown: Shutdown,
        last_error: LastError,
    ) -> DaemonHandle {
        // Nobody serves commands: a reload request is answered in the log.
        let (commands, _) = tokio::sync::mpsc::channel(1);
        DaemonHandle {
            source: Source::Agent(connected),
            shutdown,
            commands,
            last_error,
            about: Arc::new(about),
        }
    }

    /// The status now.
    pub fn status(&self) -> TrayStatus {
        match &self.source {
            Source::Daemon(state) => TrayStatus {
                clients: state.tenants.connection_count(),
                last_error: self.last_error.get(),
                // The same status and wording as /health and the log.
                cert_warning: state.certificate_status().and_then(|c| c.warning_text()),
                service_link: None,
            },
            Source::Agent(connected) => TrayStatus {
                clients: 0,
                last_error: self.last_error.get(),
                cert_warning: None,
                service_link: Some(connected.load(std::sync::atomic::Ordering::Relaxed)),
            },
        }
    }

    /// Version, port and configuration.
    pub fn about(&self) -> &AboutInfo {
        &self.about
    }

    /// Stop the daemon (idempotent).
    pub fn quit(&self) {
        self.shutdown.cancel();
    }

    /// Ask the daemon to reload its configuration.
    pub fn request_reload(&self) {
        if matches!(self.source, Source::Agent(_)) {
            tracing::info!(
                "tray: the service's configuration is reloaded by its administrator \
                 (systemctl reload wsconnector); nothing to reload in the session agent"
            );
            return;
        }
        if self.commands.try_send(DaemonCommand::ReloadConfig).is_err() {
            tracing::warn!("tray: reload not queued (the daemon is busy or stopping)");
        }
    }

    /// Remember an error the tray itself met (shown until the next one).
    fn record_error(&self, message: String) {
        tracing::warn!("tray: {message}");
        self.last_error.set(message);
    }
}

/// Serves [`DaemonCommand`]s until the daemon stops.
async fn serve_commands(
    mut rx: tokio::sync::mpsc::Receiver<DaemonCommand>,
    shutdown: Shutdown,
    reloader: Arc<crate::reload::Reloader>,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            cmd = rx.recv() => match cmd {
                Some(DaemonCommand::ReloadConfig) => on_reload_requested(&reloader).await,
                None => return,
            },
        }
    }
}

/// The tray's "Reload configuration" lands here, on the runtime: the same
/// reload as a saved file or SIGHUP. Its outcome is logged by the reloader;
/// a rejected file is an ERROR, which the tray then shows as the last error.
async fn on_reload_requested(reloader: &Arc<crate::reload::Reloader>) {
    tracing::info!("tray: reload of the configuration requested");
    let r = reloader.clone();
    // Reading the file blocks.
    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
}

/// The last ERROR event logged anywhere, kept for the tray. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct LastError {
    /// Written by the logging layer (any thread), read by the tray; held
    /// only to copy a string.
    inner: Arc<Mutex<Option<String>>>,
}

impl LastError {
    /// The last error, if any.
    pub fn get(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replace it with `message` (shortened for the tray).
    pub fn set(&self, message: String) {
        let short: String = if message.chars().count() > MAX_ERROR_CHARS {
            let mut s: String = message.chars().take(MAX_ERROR_CHARS - 1).collect();
            s.push('…');
            s
        } else {
            message
        };
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Some(short);
    }
}

impl<S: Subscriber> Layer<S> for LastError {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        self.set(visitor.0);
    }
}

/// Collects an event's `message` field.
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

/// Why there is no tray.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    /// No tray host (no StatusNotifierWatcher, no D-Bus session, no shell).
    #[error("no tray host: {0}")]
    NoHost(String),
}

/// One tray backend per OS.
trait Backend {
    /// Show `status`.
    fn update(&mut self, status: &TrayStatus);
    /// Wait up to `timeout` for the next event, keeping the UI responsive
    /// meanwhile (Windows pumps its messages here).
    fn wait(&mut self, events: &Receiver<TrayEvent>, timeout: Duration) -> Option<TrayEvent>;
}

/// Shows the tray and runs its loop on this (the main) thread until Quit or
/// until the daemon stops. `sender` feeds `events` (menu clicks come back
/// through it). Returns [`TrayError::NoHost`] at once when there is no tray
/// host: the caller warns and runs headless.
pub fn run(
    handle: &DaemonHandle,
    sender: Sender<TrayEvent>,
    events: &Receiver<TrayEvent>,
) -> Result<(), TrayError> {
    let status = handle.status();
    let mut backend = os::Backend::new(sender, &status, handle.about())?;
    tracing::info!("tray: icon shown");
    event_loop(&mut backend, handle, events, status);
    Ok(())
}

/// The loop proper, the same on every OS.
fn event_loop(
    backend: &mut dyn Backend,
    handle: &DaemonHandle,
    events: &Receiver<TrayEvent>,
    mut shown: TrayStatus,
) {
    loop {
        match backend.wait(events, STATUS_REFRESH) {
            Some(TrayEvent::DaemonStopped) => return,
            // The loop ends on DaemonStopped, which Quit causes too: the
            // menu click gets its D-Bus reply before the icon goes.
            Some(TrayEvent::Menu(MenuAction::Quit)) => {
                tracing::info!("tray: Quit chosen");
                handle.quit();
            }
            Some(TrayEvent::Menu(action)) => perform(action, handle),
            None => {}
        }
        let now = handle.status();
        if now != shown {
            backend.update(&now);
            shown = now;
        }
    }
}

/// Runs a menu command other than Quit.
fn perform(action: MenuAction, handle: &DaemonHandle) {
    tracing::info!("tray: {} chosen", action.label());
    match action {
        MenuAction::OpenPage => open_url(handle, handle.about().page_url(DEMO_PAGE_PATH)),
        MenuAction::OpenInspector => open_inspector(handle),
        MenuAction::OpenLogFolder => open_log_folder(handle),
        MenuAction::ReloadConfig => handle.request_reload(),
        MenuAction::About => show_about(handle),
        MenuAction::Quit => handle.quit(),
    }
}

/// Opens `url` in the default browser; a failure shows in the tray.
fn open_url(handle: &DaemonHandle, url: String) {
    if let Err(e) = crate::platform::system().open_url(&url) {
        handle.record_error(format!("cannot open {url}: {e}"));
    }
}

/// Opens the inspector through a fresh one-time token URL, exactly as
/// `wsconnector inspect` does (the token never appears in the tray or log).
fn open_inspector(handle: &DaemonHandle) {
    let about = handle.about();
    let socket_type = if about.scheme == "wss" {
        crate::config::SocketType::Wss
    } else {
        crate::config::SocketType::Ws
    };
    let url = match &about.inspector_dir {
        #[cfg(unix)]
        Some(dir) => crate::inspector::token::issue_shared(dir, about.port)
            .map(|token| crate::inspector::open::url_with(about.port, socket_type, &token))
            .map_err(crate::inspector::open::InspectError::from),
        // The Windows service offers no shared folder: ask it over the
        // websocket, as this user's native client.
        #[cfg(not(unix))]
        Some(_) => crate::ctl::target_for(about.config_file.as_deref(), Some(about.port))
            .map_err(|e| crate::inspector::open::InspectError::Service(e.to_string()))
            .and_then(|target| crate::inspector::open::service_token_url(&target, socket_type)),
        None => crate::inspector::open::inspector_url(about.port, socket_type),
    };
    match url {
        Ok(url) => {
            if let Err(e) = crate::platform::system().open_url(&url) {
                handle.record_error(format!("cannot open the inspector: {e}"));
            }
        }
        Err(e) => handle.record_error(format!("cannot open the inspector: {e}")),
    }
}

/// Opens the `Log-path` folder in the file manager.
fn open_log_folder(handle: &DaemonHandle) {
    let Some(folder) = handle.about().log_folder.clone() else {
        handle.record_error("no Log-path is configured: logs go to standard error".to_string());
        return;
    };
    if let Err(e) = os::open_folder(&folder) {
        handle.record_error(format!("cannot open {}: {e}", folder.display()));
    }
}

/// Shows the About text as a notification.
fn show_about(handle: &DaemonHandle) {
    let toast = crate::platform::Toast {
        title: "About wsconnector".to_string(),
        message: handle.about().text(),
        duration: Duration::from_secs(10),
        color: None,
        width: None,
        height: None,
    };
    if let Err(e) = crate::platform::system().notify(&toast) {
        // No notification service: the log still has it.
        tracing::info!("tray: about: {} ({e})", handle.about().text());
    }
}

/// Windows: a GUI-subsystem program has no console; when a shell started
/// it, attach to that shell's console so `--version`, `check-config` and
/// the banner print there. Does nothing when output is already redirected
/// (a pipe, a file) or elsewhere.
pub fn attach_parent_console() {
    #[cfg(windows)]
    windows::attach_parent_console();
}

/// A 32×32 round icon as RGBA bytes: green when all is well, amber when
/// something needs attention. Drawn in code so no image file ships.
pub fn icon_rgba(attention: bool) -> (Vec<u8>, u32, u32) {
    const SIZE: u32 = 32;
    let (r, g, b) = if attention {
        (0xE6, 0x9A, 0x00)
    } else {
        (0x2E, 0x9E, 0x44)
    };
    let mut rgba = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    let c = (SIZE as f32 - 1.0) / 2.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            // A ring with a lighter centre reads as "connector" at 16 px.
            let (pr, pg, pb, a) = if d <= 6.0 {
                (0xFF, 0xFF, 0xFF, 0xFF)
            } else if d <= 15.0 {
                (r, g, b, 0xFF)
            } else {
                (0, 0, 0, 0)
            };
            rgba.extend_from_slice(&[pr, pg, pb, a]);
        }
    }
    (rgba, SIZE, SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_clients_then_warnings() {
        let mut s = TrayStatus::default();
        assert_eq!(s.lines(), vec!["No client connected"]);
        assert!(!s.needs_attention());
        s.clients = 2;
        s.last_error = Some("bind failed".into());
        s.cert_warning = Some("Certificate expires in 3 days".into());
        assert_eq!(
            s.tooltip(),
            "wsconnector\n2 clients connected\nCertificate expires in 3 days\nLast error: bind failed"
        );
        assert!(s.needs_attention());
    }

    #[test]
    fn a_session_agent_shows_its_link_to_the_service() {
        let up = TrayStatus {
            service_link: Some(true),
            ..TrayStatus::default()
        };
        assert_eq!(up.clients_line(), "Connected to the wsconnector service");
        assert!(!up.needs_attention());
        let down = TrayStatus {
            service_link: Some(false),
            ..TrayStatus::default()
        };
        assert!(down
            .clients_line()
            .starts_with("Not connected to the wsconnector service"));
        assert!(
            down.needs_attention(),
            "a disconnected agent wants attention"
        );
    }

    #[test]
    fn menu_ids_round_trip_and_labels_are_distinct() {
        for a in MenuAction::ALL {
            assert_eq!(MenuAction::from_id(a.id()), Some(a));
        }
        let labels: std::collections::HashSet<_> =
            MenuAction::ALL.iter().map(|a| a.label()).collect();
        assert_eq!(labels.len(), MenuAction::ALL.len());
        assert_eq!(MenuAction::from_id("nope"), None);
    }

    #[test]
    fn about_names_version_port_and_config() {
        let about = AboutInfo {
            version: "1.2.3".into(),
            port: 8443,
            scheme: "wss".into(),
            config: "/etc/wsconnector/config.xml".into(),
            log_folder: None,
            inspector_dir: None,
            config_file: None,
        };
        let text = about.text();
        assert!(text.starts_with("wsconnector 1.2.3\n"), "{text}");
        assert!(text.contains("wss://127.0.0.1:8443"), "{text}");
        assert!(
            text.contains("Configuration: /etc/wsconnector/config.xml"),
            "{text}"
        );
        assert_eq!(about.page_url(DEMO_PAGE_PATH), "https://127.0.0.1:8443/");
    }

    #[test]
    fn last_error_layer_keeps_the_latest_error_only() {
        use tracing_subscriber::layer::SubscriberExt;
        let last = LastError::default();
        let subscriber = tracing_subscriber::registry().with(last.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("only a warning");
            assert_eq!(last.get(), None);
            tracing::error!("first failure");
            tracing::error!("second failure: {}", 42);
        });
        assert_eq!(last.get().as_deref(), Some("second failure: 42"));
        last.set("x".repeat(500));
        assert_eq!(last.get().unwrap().chars().count(), MAX_ERROR_CHARS);
    }

    #[test]
    fn icon_is_square_rgba_and_changes_colour_with_attention() {
        let (ok, w, h) = icon_rgba(false);
        let (warn, _, _) = icon_rgba(true);
        assert_eq!((w, h), (32, 32));
        assert_eq!(ok.len(), 32 * 32 * 4);
        assert_ne!(ok, warn);
        // Corners transparent, centre opaque white.
        assert_eq!(ok[3], 0);
        let centre = ((16 * 32 + 16) * 4) as usize;
        assert_eq!(&ok[centre..centre + 4], &[0xFF, 0xFF, 0xFF, 0xFF]);
    }
}
