//! Windows tray: `tray-icon`'s Win32 backend (a hidden window of class
//! `tray_icon_app`, `Shell_NotifyIconW`, a popup menu from `muda`). Win32
//! delivers the icon's clicks as window messages to the thread that created
//! it, so [`Backend::wait`] pumps this (the main) thread's message queue.

// The message pump and AttachConsole are Win32 calls.
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};
use windows_sys::Win32::System::Console::{
    AttachConsole, GetStdHandle, ATTACH_PARENT_PROCESS, STD_ERROR_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    DispatchMessageW, MsgWaitForMultipleObjects, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
    QS_ALLINPUT,
};

use super::{icon_rgba, AboutInfo, MenuAction, TrayError, TrayEvent, TrayStatus, TRAY_TITLE};

/// How long one wait for window messages lasts before the event channel is
/// looked at again (menu clicks arrive as messages, so this only bounds the
/// delay of "daemon stopped").
const PUMP_SLICE: Duration = Duration::from_millis(50);

/// Windows caps tooltips at 127 characters.
const MAX_TOOLTIP: usize = 127;

/// The icon and its menu.
pub(super) struct Backend {
    /// Removed from the notification area on drop.
    tray: TrayIcon,
    /// The greyed-out first item showing the status.
    status_item: MenuItem,
    /// Whether the amber icon is shown.
    attention: bool,
}

fn icon(attention: bool) -> Result<Icon, TrayError> {
    let (rgba, w, h) = icon_rgba(attention);
    Icon::from_rgba(rgba, w, h).map_err(|e| TrayError::NoHost(format!("icon: {e}")))
}

fn tooltip(status: &TrayStatus) -> String {
    status.tooltip().chars().take(MAX_TOOLTIP).collect()
}

fn status_label(status: &TrayStatus) -> String {
    status.lines().join(" · ")
}

impl Backend {
    /// Adds the icon to the notification area.
    pub(super) fn new(
        sender: Sender<TrayEvent>,
        status: &TrayStatus,
        _about: &AboutInfo,
    ) -> Result<Backend, TrayError> {
        let menu = Menu::new();
        let status_item = MenuItem::new(status_label(status), false, None);
        let failed = |e: tray_icon::menu::Error| TrayError::NoHost(format!("menu: {e}"));
        menu.append(&status_item).map_err(failed)?;
        menu.append(&PredefinedMenuItem::separator())
            .map_err(failed)?;
        for action in MenuAction::ALL {
            if action == MenuAction::Quit {
                menu.append(&PredefinedMenuItem::separator())
                    .map_err(failed)?;
            }
            menu.append(&MenuItem::with_id(action.id(), action.label(), true, None))
                .map_err(failed)?;
        }
        // Menu clicks come from the window procedure on this thread; the
        // handler only forwards them to the loop.
        MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
            if let Some(action) = MenuAction::from_id(event.id().0.as_str()) {
                let _ = sender.send(TrayEvent::Menu(action));
            }
        }));
        let attention = status.needs_attention();
        let tray = TrayIconBuilder::new()
            .with_id(TRAY_TITLE)
            .with_tooltip(tooltip(status))
            .with_icon(icon(attention)?)
            .with_menu(Box::new(menu))
            .build()
            .map_err(|e| TrayError::NoHost(format!("notification area: {e}")))?;
        // tray-icon does not report whether the shell took the icon; a
        // NIM_MODIFY (set_tooltip) fails for an icon the shell does not have.
        match tray.set_tooltip(Some(tooltip(status))) {
            Ok(()) => tracing::info!("tray: the shell shows the icon in the notification area"),
            Err(e) => tracing::warn!(
                "tray: the shell does not show the icon yet ({e}); it is added again when the taskbar starts"
            ),
        }
        Ok(Backend {
            tray,
            status_item,
            attention,
        })
    }
}

impl super::Backend for Backend {
    fn update(&mut self, status: &TrayStatus) {
        self.status_item.set_text(status_label(status));
        if let Err(e) = self.tray.set_tooltip(Some(tooltip(status))) {
            tracing::debug!("tray: tooltip: {e}");
        }
        if status.needs_attention() != self.attention {
            self.attention = status.needs_attention();
            if let Ok(i) = icon(self.attention) {
                if let Err(e) = self.tray.set_icon(Some(i)) {
                    tracing::debug!("tray: icon: {e}");
                }
            }
        }
    }

    fn wait(&mut self, events: &Receiver<TrayEvent>, timeout: Duration) -> Option<TrayEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            pump_messages();
            if let Ok(event) = events.try_recv() {
                return Some(event);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let slice = PUMP_SLICE.min(deadline - now);
            // SAFETY: no handles are passed (count 0); it only waits for
            // this thread's input queue or the timeout.
            unsafe {
                MsgWaitForMultipleObjects(
                    0,
                    std::ptr::null(),
                    0,
                    slice.as_millis() as u32,
                    QS_ALLINPUT,
                );
            }
        }
    }
}

/// Dispatches every queued window message of this thread.
fn pump_messages() {
    // SAFETY: MSG is plain data; zeroed is a valid value. Peek/Translate/
    // Dispatch get a pointer to it that lives across each call.
    unsafe {
        let mut msg: MSG = std::mem::zeroed();
        while PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_REMOVE) != 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

/// Opens `folder` in Explorer.
pub(super) fn open_folder(folder: &Path) -> std::io::Result<()> {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    std::process::Command::new(Path::new(&root).join("explorer.exe"))
        .arg(folder)
        .spawn()
        .map(drop)
}

/// See [`super::attach_parent_console`].
pub(super) fn attach_parent_console() {
    // SAFETY: GetStdHandle and AttachConsole take no pointers.
    unsafe {
        let out = GetStdHandle(STD_OUTPUT_HANDLE);
        let err = GetStdHandle(STD_ERROR_HANDLE);
        // Already connected (redirected to a pipe or file, or a console
        // program started us with handles): keep them.
        if !out.is_null() || !err.is_null() {
            return;
        }
        // Fails when the parent has no console (Explorer, the Run key): fine.
        AttachConsole(ATTACH_PARENT_PROCESS);
    }
}
