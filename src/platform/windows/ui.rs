//! What our own windows (toast, pickup) share: UTF-16 strings, window
//! class registration, child controls with the GUI font, the work area and
//! the message loop. Windows belong to the thread that creates them, and
//! that thread must pump their messages until they are destroyed.

use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_CLASS_ALREADY_EXISTS, HINSTANCE, HWND, RECT,
};
use windows_sys::Win32::Graphics::Gdi::{GetStockObject, COLOR_WINDOW, DEFAULT_GUI_FONT, HBRUSH};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DispatchMessageW, GetMessageW, GetSystemMetrics, LoadCursorW,
    RegisterClassExW, SendMessageW, SystemParametersInfoW, TranslateMessage, HMENU, IDC_ARROW, MSG,
    SM_CXSCREEN, SM_CYSCREEN, SPI_GETWORKAREA, USER_TIMER_MAXIMUM, USER_TIMER_MINIMUM,
    WINDOW_EX_STYLE, WINDOW_STYLE, WM_SETFONT, WNDCLASSEXW, WNDPROC, WS_CHILD, WS_VISIBLE,
};

use crate::platform::ActionError;

/// Static control styles (`SS_*` live in a large windows-sys feature we
/// otherwise do not need): centred text, `&` shown literally.
pub(super) const SS_CENTER: WINDOW_STYLE = 0x0001;
/// See [`SS_CENTER`].
pub(super) const SS_NOPREFIX: WINDOW_STYLE = 0x0080;

/// A NUL-terminated UTF-16 copy of `s`; refuses an interior NUL, which
/// would silently cut a path or URL short.
pub(super) fn wide(s: &str) -> Result<Vec<u16>, ActionError> {
    if s.contains('\0') {
        return Err(ActionError::Failed(
            "a text handed to Windows contains a NUL character".to_string(),
        ));
    }
    Ok(s.encode_utf16().chain(std::iter::once(0)).collect())
}

/// A NUL-terminated UTF-16 copy of display text, NULs dropped.
pub(super) fn wide_text(s: &str) -> Vec<u16> {
    s.encode_utf16()
        .filter(|&unit| unit != 0)
        .chain(std::iter::once(0))
        .collect()
}

/// The module that registers our classes (the running executable).
pub(super) fn instance() -> HINSTANCE {
    // SAFETY: a null name asks for the executable's own module handle,
    // which stays valid for the life of the process.
    unsafe { GetModuleHandleW(std::ptr::null()) }
}

/// Registers a window class once per process. `done` is the class's own
/// once-cell, so each class registers exactly once however many threads
/// show windows.
pub(super) fn register_class(
    done: &'static OnceLock<Result<(), String>>,
    name: &'static str,
    procedure: WNDPROC,
) -> Result<(), ActionError> {
    done.get_or_init(|| {
        let class = wide_text(name);
        let class_info = WNDCLASSEXW {
            cbSize: size_of::<WNDCLASSEXW>() as u32,
            lpfnWndProc: procedure,
            hInstance: instance(),
            // SAFETY: a null instance with a predefined cursor id is the documented use.
            hCursor: unsafe { LoadCursorW(std::ptr::null_mut(), IDC_ARROW) },
            // The system colour index + 1 as a brush, as RegisterClassEx documents.
            hbrBackground: (COLOR_WINDOW + 1) as usize as HBRUSH,
            lpszClassName: class.as_ptr(),
            ..Default::default()
        };
        // SAFETY: `class_info` is fully initialised and its class name
        // buffer is alive for the call (Windows copies it).
        let atom = unsafe { RegisterClassExW(&class_info) };
        // SAFETY: reads this thread's last-error value.
        if atom == 0 && unsafe { GetLastError() } != ERROR_CLASS_ALREADY_EXISTS {
            return Err(format!(
                "RegisterClassExW({name}) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    })
    .clone()
    .map_err(ActionError::Failed)
}

/// A `SetTimer` period for `duration`, within the range Windows accepts.
pub(super) fn timer_millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis())
        .unwrap_or(USER_TIMER_MAXIMUM)
        .clamp(USER_TIMER_MINIMUM, USER_TIMER_MAXIMUM)
}

/// Creates one of our top-level windows (pickup dialog, toast) of a class
/// registered with `register_class`; `what` names it in the error.
pub(super) fn top_level(
    ex_style: WINDOW_EX_STYLE,
    class: &str,
    title: &str,
    style: WINDOW_STYLE,
    rect: (i32, i32, i32, i32),
    what: &str,
) -> Result<HWND, ActionError> {
    let class = wide_text(class);
    let title = wide_text(title);
    let (x, y, width, height) = rect;
    // SAFETY: class and title are NUL-terminated and alive for the call;
    // the class was registered with this module's instance.
    let hwnd = unsafe {
        CreateWindowExW(
            ex_style,
            class.as_ptr(),
            title.as_ptr(),
            style,
            x,
            y,
            width,
            height,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            instance(),
            std::ptr::null(),
        )
    };
    if hwnd.is_null() {
        return Err(ActionError::Failed(format!(
            "CreateWindowExW({what}) failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(hwnd)
}

/// Creates a child control (`STATIC`, `BUTTON`) of `parent` with the GUI
/// font (the default system font is the bold 1990s one).
#[allow(clippy::too_many_arguments)] // the geometry of one control, as CreateWindowEx takes it
pub(super) fn child(
    parent: HWND,
    class: &str,
    text: &str,
    style: WINDOW_STYLE,
    id: i32,
    rect: (i32, i32, i32, i32),
) -> Result<HWND, ActionError> {
    let class = wide_text(class);
    let text = wide_text(text);
    let (x, y, width, height) = rect;
    // SAFETY: the strings are NUL-terminated and alive for the call;
    // for a child window HMENU carries the control id, as documented.
    let hwnd = unsafe {
        CreateWindowExW(
            0,
            class.as_ptr(),
            text.as_ptr(),
            WS_CHILD | WS_VISIBLE | style,
            x,
            y,
            width,
            height,
            parent,
            id as isize as HMENU,
            instance(),
            std::ptr::null(),
        )
    };
    if hwnd.is_null() {
        return Err(ActionError::Failed(format!(
            "CreateWindowExW(child) failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: the stock font is never freed; WM_SETFONT takes it as WPARAM.
    unsafe {
        SendMessageW(
            hwnd,
            WM_SETFONT,
            GetStockObject(DEFAULT_GUI_FONT) as usize,
            1,
        );
    }
    Ok(hwnd)
}

/// The primary screen's work area (the screen minus the taskbar).
pub(super) fn work_area() -> RECT {
    let mut area = RECT::default();
    // SAFETY: SPI_GETWORKAREA writes one RECT into the pointer given.
    let ok =
        unsafe { SystemParametersInfoW(SPI_GETWORKAREA, 0, (&mut area as *mut RECT).cast(), 0) };
    if ok == 0 || area.right <= area.left || area.bottom <= area.top {
        // SAFETY: plain metric queries.
        let (width, height) =
            unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) };
        area = RECT {
            left: 0,
            top: 0,
            right: width,
            bottom: height,
        };
    }
    area
}

/// Pumps this thread's messages until a window procedure calls
/// `PostQuitMessage` (our windows do on `WM_DESTROY`).
pub(super) fn run_message_loop() -> Result<(), ActionError> {
    let mut message = MSG::default();
    loop {
        // SAFETY: `message` is a live MSG for GetMessageW to fill; a null
        // window takes every message of this thread.
        let got = unsafe { GetMessageW(&mut message, std::ptr::null_mut(), 0, 0) };
        match got {
            0 => return Ok(()),
            -1 => {
                return Err(ActionError::Failed(format!(
                    "GetMessageW failed: {}",
                    std::io::Error::last_os_error()
                )))
            }
            _ => {
                // SAFETY: `message` was just filled by GetMessageW.
                unsafe {
                    TranslateMessage(&message);
                    DispatchMessageW(&message);
                }
            }
        }
    }
}
