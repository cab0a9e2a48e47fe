//! Linux tray: a StatusNotifierItem with a com.canonical.dbusmenu menu on the
//! D-Bus session bus, through the `ksni` crate (pure D-Bus, no GTK). The
//! host (KDE, GNOME's AppIndicator extension, XFCE, waybar...) draws it.
//!
//! `ksni` serves D-Bus on its own thread; menu callbacks only send a
//! [`TrayEvent`] to the tray loop on the main thread.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use ksni::blocking::{Handle, TrayMethods};
use ksni::menu::{MenuItem, StandardItem};

use super::{icon_rgba, AboutInfo, MenuAction, TrayError, TrayEvent, TrayStatus, TRAY_TITLE};

/// The StatusNotifierItem `Id`.
const ITEM_ID: &str = "wsconnector";

/// What ksni renders; updated through [`Handle::update`].
struct Item {
    /// To the tray loop.
    sender: Sender<TrayEvent>,
    /// What the menu and tooltip show.
    status: TrayStatus,
    /// For the tooltip.
    about_line: String,
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        ITEM_ID.to_string()
    }

    fn title(&self) -> String {
        TRAY_TITLE.to_string()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::ApplicationStatus
    }

    fn status(&self) -> ksni::Status {
        if self.status.needs_attention() {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        let (rgba, w, h) = icon_rgba(self.status.needs_attention());
        // SNI wants ARGB32 in network byte order.
        let mut argb = rgba;
        for px in argb.chunks_exact_mut(4) {
            px.rotate_right(1);
        }
        vec![ksni::Icon {
            width: w as i32,
            height: h as i32,
            data: argb,
        }]
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: TRAY_TITLE.to_string(),
            description: format!("{}\n{}", self.status.lines().join("\n"), self.about_line),
            ..Default::default()
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        // Status lines first, greyed out: information, not commands. Always
        // the same three items (hidden when empty): dbusmenu ids are
        // positions, so a line appearing must not shift the commands' ids
        // under a host that still shows the previous layout.
        let status = &self.status;
        let lines = [
            Some(status.clients_line()),
            status.cert_warning.clone(),
            status
                .last_error
                .as_ref()
                .map(|e| format!("Last error: {e}")),
        ];
        let mut items: Vec<MenuItem<Self>> = lines
            .into_iter()
            .map(|line| {
                StandardItem {
                    visible: line.is_some(),
                    label: line.unwrap_or_default(),
                    enabled: false,
                    ..Default::default()
                }
                .into()
            })
            .collect();
        items.push(MenuItem::Separator);
        for action in MenuAction::ALL {
            if action == MenuAction::Quit {
                items.push(MenuItem::Separator);
            }
            items.push(
                StandardItem {
                    label: action.label().to_string(),
                    activate: Box::new(move |item: &mut Item| {
                        // The loop may be gone during shutdown; nothing to do then.
                        let _ = item.sender.send(TrayEvent::Menu(action));
                    }),
                    ..Default::default()
                }
                .into(),
            );
        }
        items
    }
}

/// The running item.
pub(super) struct Backend {
    /// ksni's handle; shut down on drop so the item leaves the bus.
    handle: Handle<Item>,
}

impl Backend {
    /// Registers the item with the StatusNotifierWatcher.
    pub(super) fn new(
        sender: Sender<TrayEvent>,
        status: &TrayStatus,
        about: &AboutInfo,
    ) -> Result<Backend, TrayError> {
        let item = Item {
            sender,
            status: status.clone(),
            about_line: format!("port {}", about.port),
        };
        // Not assume_sni_available: without a watcher, spawn fails now and
        // the agent runs headless with a warning instead of an invisible icon.
        let handle = item
            .spawn()
            .map_err(|e| TrayError::NoHost(format!("StatusNotifierItem: {e}")))?;
        Ok(Backend { handle })
    }
}

impl super::Backend for Backend {
    fn update(&mut self, status: &TrayStatus) {
        let status = status.clone();
        self.handle.update(move |item| item.status = status);
    }

    fn wait(&mut self, events: &Receiver<TrayEvent>, timeout: Duration) -> Option<TrayEvent> {
        events.recv_timeout(timeout).ok()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.handle.shutdown().wait();
    }
}

/// Opens `folder` in the file manager (xdg-open, one argv entry, no shell).
pub(super) fn open_folder(folder: &Path) -> std::io::Result<()> {
    let mut child = std::process::Command::new("xdg-open")
        .arg(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reap it in the background so no zombie is left.
    std::thread::spawn(move || child.wait());
    Ok(())
}
