//! Toasts as a window of our own: topmost, not activating (it never takes
//! the keyboard from the agent), bottom-right of the work area, closing
//! itself after the duration (reference §3.2.16). A WinRT toast would need
//! an AppUserModelID registered by an installer (a Start-menu shortcut) and
//! fails under Wine, so the daemon draws its own. The legacy colour hint
//! is not drawn (plain system colours); the size hints are honoured within
//! bounds.
//!
//! Each toast gets its own thread, which owns the window and pumps its
//! messages until it closes; `notify` returns once the window is shown.

use std::sync::mpsc;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    DefWindowProcW, DestroyWindow, KillTimer, PostQuitMessage, SetTimer, ShowWindow,
    SW_SHOWNOACTIVATE, WM_DESTROY, WM_LBUTTONUP, WM_TIMER, WS_BORDER, WS_EX_NOACTIVATE,
    WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_POPUP,
};

use super::ui;
use crate::platform::{ActionError, Toast};

/// Window class of toasts.
pub const TOAST_CLASS: &str = "WsConnectorToast";
/// Our timer on the toast window.
const CLOSE_TIMER: usize = 1;
/// Size when the page gives none, and the bounds of what it may ask.
const DEFAULT_SIZE: (i32, i32) = (320, 110);
/// See [`DEFAULT_SIZE`].
const MIN_SIZE: (i32, i32) = (200, 80);
/// See [`DEFAULT_SIZE`].
const MAX_SIZE: (i32, i32) = (800, 600);
/// Distance from the work area's corner.
const MARGIN: i32 = 12;

static CLASS: OnceLock<Result<(), String>> = OnceLock::new();

/// Shows the toast and returns once it is on screen.
pub(super) fn show(toast: &Toast) -> Result<(), ActionError> {
    ui::register_class(&CLASS, TOAST_CLASS, Some(window_procedure))?;
    let (shown_tx, shown_rx) = mpsc::sync_channel(1);
    let toast = toast.clone();
    std::thread::Builder::new()
        .name("wsc-toast".to_string())
        .spawn(move || {
            let shown = create(&toast);
            let ok = shown.is_ok();
            // The requester may have stopped waiting; the toast still runs its course.
            let _ = shown_tx.send(shown.map(|_| ()));
            if ok {
                let _ = ui::run_message_loop();
            }
        })
        .map_err(|e| ActionError::Failed(format!("cannot start the toast thread: {e}")))?;
    shown_rx
        .recv()
        .map_err(|_| ActionError::Failed("the toast thread ended early".to_string()))?
}

/// The pixel size for the legacy hints, within sane bounds.
fn size(hint: Option<u32>, default: i32, min: i32, max: i32) -> i32 {
    hint.map_or(default, |h| i32::try_from(h).unwrap_or(max).clamp(min, max))
}

/// Creates and shows the toast window on the current thread.
fn create(toast: &Toast) -> Result<HWND, ActionError> {
    let width = size(toast.width, DEFAULT_SIZE.0, MIN_SIZE.0, MAX_SIZE.0);
    let height = size(toast.height, DEFAULT_SIZE.1, MIN_SIZE.1, MAX_SIZE.1);
    let area = ui::work_area();
    let x = area.right - width - MARGIN;
    let y = area.bottom - height - MARGIN;
    let hwnd = ui::top_level(
        WS_EX_TOPMOST | WS_EX_NOACTIVATE | WS_EX_TOOLWINDOW,
        TOAST_CLASS,
        &toast.title,
        WS_POPUP | WS_BORDER,
        (x, y, width, height),
        "toast",
    )?;
    let text = (|| {
        ui::child(
            hwnd,
            "STATIC",
            &toast.title,
            ui::SS_NOPREFIX,
            1,
            (12, 10, width - 24, 20),
        )?;
        ui::child(
            hwnd,
            "STATIC",
            &toast.message,
            ui::SS_NOPREFIX,
            2,
            (12, 34, width - 24, height - 44),
        )
    })();
    if let Err(error) = text {
        // SAFETY: our own window on this thread (its WM_QUIT dies with the thread).
        unsafe { DestroyWindow(hwnd) };
        return Err(error);
    }
    let millis = ui::timer_millis(toast.duration);
    // SAFETY: our window; WM_TIMER reaches the window procedure.
    unsafe {
        SetTimer(hwnd, CLOSE_TIMER, millis, None);
        ShowWindow(hwnd, SW_SHOWNOACTIVATE);
    }
    Ok(hwnd)
}

/// The toast's window procedure: closes on its timer or a click. Never panics.
unsafe extern "system" fn window_procedure(
    hwnd: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    match message {
        WM_TIMER if wparam == CLOSE_TIMER => {
            // SAFETY: our own window, on its own thread.
            unsafe { DestroyWindow(hwnd) };
            0
        }
        WM_LBUTTONUP => {
            // SAFETY: as above.
            unsafe { DestroyWindow(hwnd) };
            0
        }
        WM_DESTROY => {
            // SAFETY: our window and timer; WM_QUIT ends the toast thread's loop.
            unsafe {
                KillTimer(hwnd, CLOSE_TIMER);
                PostQuitMessage(0);
            }
            0
        }
        // SAFETY: the documented default for every other message.
        _ => unsafe { DefWindowProcW(hwnd, message, wparam, lparam) },
    }
}
