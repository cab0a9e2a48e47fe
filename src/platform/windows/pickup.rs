//! The pickup dialog: the agent's own topmost window (visible above the
//! CRM, in Citrix seamless sessions too) with the caller text and one
//! button. It runs a message loop on the calling (blocking) thread until
//! the button is clicked (PickedUp), the window is closed (Dismissed) or
//! the timer fires (TimedOut).
//!
//! The class name and the button id are stable so that tests and
//! automation can find the window (`FindWindowW(PICKUP_CLASS, ..)`) and
//! click it (`BM_CLICK` to the child with id [`PICKUP_BUTTON_ID`]).

use std::cell::Cell;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    DefWindowProcW, DestroyWindow, KillTimer, PostQuitMessage, SetForegroundWindow, SetTimer,
    ShowWindow, BN_CLICKED, BS_DEFPUSHBUTTON, SW_SHOW, WM_CLOSE, WM_COMMAND, WM_DESTROY, WM_TIMER,
    WS_CAPTION, WS_EX_TOPMOST, WS_POPUP, WS_SYSMENU, WS_TABSTOP,
};

use super::ui;
use crate::platform::{ActionError, PickupDialog, PickupOutcome};

/// Window class of the pickup dialog.
pub const PICKUP_CLASS: &str = "WsConnectorPickup";
/// Control id of the pick-up button.
pub const PICKUP_BUTTON_ID: i32 = 1001;
/// Control id of the caller text.
const TEXT_ID: i32 = 1002;
/// Our timer on the dialog window.
const TIMEOUT_TIMER: usize = 1;
/// Dialog size in pixels.
const WIDTH: i32 = 380;
/// Dialog size in pixels.
const HEIGHT: i32 = 170;

static CLASS: OnceLock<Result<(), String>> = OnceLock::new();

thread_local! {
    /// How the dialog on this thread ended; set by the window procedure,
    /// read once the message loop returns. A thread shows one dialog at a
    /// time (the loop blocks it), so one cell per thread is enough, and it
    /// keeps the outcome out of raw window data.
    static OUTCOME: Cell<Option<PickupOutcome>> = const { Cell::new(None) };
}

/// Shows the dialog and blocks until it ends.
pub(super) fn show(dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
    ui::register_class(&CLASS, PICKUP_CLASS, Some(window_procedure))?;
    OUTCOME.set(None);
    let area = ui::work_area();
    let x = area.left + ((area.right - area.left) - WIDTH).max(0) / 2;
    let y = area.top + ((area.bottom - area.top) - HEIGHT).max(0) / 2;
    let hwnd = ui::top_level(
        WS_EX_TOPMOST,
        PICKUP_CLASS,
        &dialog.title,
        WS_POPUP | WS_CAPTION | WS_SYSMENU,
        (x, y, WIDTH, HEIGHT),
        "pickup",
    )?;
    if let Err(error) = fill(hwnd, dialog) {
        // SAFETY: our own window, created on this thread.
        unsafe { DestroyWindow(hwnd) };
        drain_quit();
        return Err(error);
    }
    let millis = ui::timer_millis(dialog.timeout);
    // SAFETY: our window; no callback (WM_TIMER reaches the window procedure).
    unsafe {
        SetTimer(hwnd, TIMEOUT_TIMER, millis, None);
        ShowWindow(hwnd, SW_SHOW);
        // Best effort: the foreground lock may refuse (see `window` in
        // windows.rs); the window is topmost and visible either way.
        SetForegroundWindow(hwnd);
    }
    ui::run_message_loop()?;
    Ok(OUTCOME.take().unwrap_or(PickupOutcome::Dismissed))
}

/// The caller text and the button.
fn fill(hwnd: HWND, dialog: &PickupDialog) -> Result<(), ActionError> {
    ui::child(
        hwnd,
        "STATIC",
        &dialog.title,
        ui::SS_CENTER | ui::SS_NOPREFIX,
        TEXT_ID,
        (12, 16, WIDTH - 30, 50),
    )?;
    // Buttons read `&` as a mnemonic prefix (no BS_ style turns that off):
    // double it so the label shows as given.
    ui::child(
        hwnd,
        "BUTTON",
        &dialog.button_text.replace('&', "&&"),
        BS_DEFPUSHBUTTON as u32 | WS_TABSTOP,
        PICKUP_BUTTON_ID,
        ((WIDTH - 160) / 2, 76, 140, 34),
    )?;
    Ok(())
}

/// After a failed setup the window's WM_DESTROY posted WM_QUIT: take it
/// off the queue so it does not end a later loop on this pooled thread.
fn drain_quit() {
    let _ = ui::run_message_loop();
}

/// Records the first outcome and closes the window.
fn finish(hwnd: HWND, outcome: PickupOutcome) {
    if OUTCOME.get().is_none() {
        OUTCOME.set(Some(outcome));
    }
    // SAFETY: our own window, on its own thread (window procedures run
    // on the thread that created the window).
    unsafe { DestroyWindow(hwnd) };
}

/// The dialog's window procedure. Never panics.
unsafe extern "system" fn window_procedure(
    hwnd: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    match message {
        WM_COMMAND => {
            let id = (wparam & 0xffff) as i32;
            let notification = ((wparam >> 16) & 0xffff) as u32;
            if id == PICKUP_BUTTON_ID && notification == BN_CLICKED {
                finish(hwnd, PickupOutcome::PickedUp);
            }
            0
        }
        WM_TIMER if wparam == TIMEOUT_TIMER => {
            finish(hwnd, PickupOutcome::TimedOut);
            0
        }
        WM_CLOSE => {
            finish(hwnd, PickupOutcome::Dismissed);
            0
        }
        WM_DESTROY => {
            // SAFETY: our window and timer; WM_QUIT ends this thread's loop.
            unsafe {
                KillTimer(hwnd, TIMEOUT_TIMER);
                PostQuitMessage(0);
            }
            0
        }
        // SAFETY: the documented default for every other message.
        _ => unsafe { DefWindowProcW(hwnd, message, wparam, lparam) },
    }
}
