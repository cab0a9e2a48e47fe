//! The Windows desktop: [`Platform`] on Win32 through `windows-sys`.
//! Launch with `CreateProcessW` (never a shell, never a PATH search), URLs
//! with `ShellExecuteExW`, windows found with `EnumWindows` and moved with
//! `SetWindowPos`, and two windows of our own (ui, toast, pickup): a
//! topmost non-activating toast and the topmost pickup dialog. Command-line
//! quoting lives in `cmdline` (pure, tested on every OS).
//!
//! Cross-built with mingw and smoke-tested under Wine
//! (tests/platform_windows.rs, scripts/test-windows.sh); what Wine cannot
//! show (foreground lock, sessions, tokens) is listed in that script.

// Win32 is a C API: every call is `unsafe`. The crate forbids unsafe code
// everywhere else; here each block carries a `// SAFETY:` note.
#![allow(unsafe_code)]

mod cmdline;
mod pickup;
mod toast;
mod ui;

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, HWND, LPARAM, RECT,
};
use windows_sys::Win32::System::Com::{
    CoInitializeEx, CoUninitialize, COINIT_APARTMENTTHREADED, COINIT_DISABLE_OLE1DDE,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessW, CREATE_NEW_PROCESS_GROUP, CREATE_UNICODE_ENVIRONMENT, DETACHED_PROCESS,
    PROCESS_INFORMATION, STARTUPINFOW,
};
use windows_sys::Win32::UI::Shell::{
    ShellExecuteExW, SEE_MASK_FLAG_NO_UI, SEE_MASK_NOASYNC, SHELLEXECUTEINFOW,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GetWindowRect, GetWindowTextLengthW, GetWindowTextW, IsIconic, IsWindowVisible,
    SetForegroundWindow, SetWindowPos, ShowWindow, SWP_NOACTIVATE, SWP_NOOWNERZORDER, SWP_NOZORDER,
    SW_RESTORE, SW_SHOWNORMAL,
};

pub use cmdline::{command_line, CommandLineError};
pub use pickup::{PICKUP_BUTTON_ID, PICKUP_CLASS};
pub use toast::TOAST_CLASS;

use super::{ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest};

/// The longest URL handed to the shell (Internet Explorer's old
/// `INTERNET_MAX_URL_LENGTH`; browsers accept more, the shell may not).
const MAX_URL_LEN: usize = 2083;

/// The Windows desktop of the user the agent runs as.
#[derive(Debug, Default)]
pub struct WindowsPlatform;

/// The platform for this OS, for the hub.
pub fn system() -> Arc<dyn Platform> {
    Arc::new(WindowsPlatform)
}

impl Platform for WindowsPlatform {
    fn launch(&self, spec: &LaunchSpec) -> Result<u32, ActionError> {
        launch(spec)
    }

    fn open_url(&self, url: &str) -> Result<(), ActionError> {
        open_url(url)
    }

    fn window(&self, request: &WindowRequest) -> Result<(), ActionError> {
        window(request)
    }

    fn notify(&self, toast: &Toast) -> Result<(), ActionError> {
        toast::show(toast)
    }

    fn pickup(&self, dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
        pickup::show(dialog)
    }

    fn host_name(&self) -> String {
        whoami::fallible::hostname().unwrap_or_else(|_| "localhost".to_string())
    }
}

/// `CreateProcessW` with the declared absolute path as `lpApplicationName`
/// (so Windows never searches PATH or the current directory, and never
/// guesses where a path with spaces ends), a command line quoted for the
/// child's C runtime, no inherited handles, and a detached child in its own
/// process group (no console of ours, no Ctrl+C from ours). The child runs
/// as the agent's user because the agent does: no token is involved.
fn launch(spec: &LaunchSpec) -> Result<u32, ActionError> {
    let path = &spec.path;
    if !path.is_absolute() {
        return Err(ActionError::Failed(format!(
            "{}: the program path {} is not absolute",
            spec.name,
            path.display()
        )));
    }
    // config.xml refuses these at load; refused again here because
    // CreateProcessW runs a batch file through cmd.exe, whose own parsing
    // turns arguments into commands (the "BatBadBut" class of bugs).
    let extension = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("bat" | "cmd")) {
        return Err(ActionError::Failed(format!(
            "{}: batch files (.bat, .cmd) are never started",
            spec.name
        )));
    }
    let Some(program) = path.to_str() else {
        return Err(ActionError::Failed(format!(
            "{}: the program path is not valid Unicode",
            spec.name
        )));
    };
    if !path.is_file() {
        return Err(ActionError::NotFound(format!(
            "{}: no program at {program}",
            spec.name
        )));
    }
    let line = command_line(program, &spec.args)
        .map_err(|e| ActionError::Failed(format!("{}: {e}", spec.name)))?;

    let application = wide_os(path.as_os_str());
    // CreateProcessW may write into the command line: it must be a mutable buffer.
    let mut command = ui::wide(&line)?;
    // Start in the program's own folder, as Explorer does, rather than in
    // whatever folder the agent was started from.
    let directory = path.parent().map(|dir| wide_os(dir.as_os_str()));
    let startup = STARTUPINFOW {
        cb: size_of::<STARTUPINFOW>() as u32,
        ..Default::default()
    };
    let mut info = PROCESS_INFORMATION::default();
    // SAFETY: every pointer is to a live, NUL-terminated UTF-16 buffer or
    // struct owned by this frame that outlives the call; `command` is
    // mutable as the API requires; null security attributes, environment
    // (inherit ours) are documented defaults.
    let ok = unsafe {
        CreateProcessW(
            application.as_ptr(),
            command.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            0,
            DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_UNICODE_ENVIRONMENT,
            std::ptr::null(),
            directory
                .as_ref()
                .map_or(std::ptr::null(), |dir| dir.as_ptr()),
            &startup,
            &mut info,
        )
    };
    if ok == 0 {
        let error = std::io::Error::last_os_error();
        let code = error.raw_os_error().unwrap_or(0) as u32;
        let message = format!("{}: CreateProcessW failed: {error}", spec.name);
        return Err(
            if code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND {
                ActionError::NotFound(message)
            } else {
                ActionError::Failed(message)
            },
        );
    }
    // SAFETY: both handles were just returned by a successful CreateProcessW
    // and are closed exactly once; the child keeps running without them.
    unsafe {
        CloseHandle(info.hThread);
        CloseHandle(info.hProcess);
    }
    Ok(info.dwProcessId)
}

/// Whether `url` is a plain http(s) URL the shell may open: the scheme
/// checked here again (the hub matched it against config.xml already) so no
/// other protocol handler (`file:`, `ms-settings:`, `search-ms:`, a
/// registered app's scheme) can ever be reached through this call.
pub fn is_openable_url(url: &str) -> bool {
    let rest = strip_prefix_ignore_case(url, "http://")
        .or_else(|| strip_prefix_ignore_case(url, "https://"));
    matches!(rest, Some(rest) if !rest.is_empty())
        && url.len() <= MAX_URL_LEN
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `s` without `prefix`, compared ASCII-case-insensitively.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // The prefix is ASCII, so a match ends on a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// `ShellExecuteExW` with the verb "open" on an http(s) URL: the user's
/// default browser opens it.
fn open_url(url: &str) -> Result<(), ActionError> {
    if !is_openable_url(url) {
        return Err(ActionError::Failed(
            "only http:// and https:// URLs without spaces or control characters are opened"
                .to_string(),
        ));
    }
    let verb = ui::wide("open")?;
    let file = ui::wide(url)?;
    // The shell may hand the URL to a COM handler: initialise COM on this
    // (blocking-pool) thread for the call, as ShellExecuteEx's docs ask.
    let _com = ComApartment::enter();
    let mut info = SHELLEXECUTEINFOW {
        cbSize: size_of::<SHELLEXECUTEINFOW>() as u32,
        // NOASYNC: we return (and may uninitialise COM) right after the
        // call. NO_UI: no error dialog on the agent's screen; we report.
        fMask: SEE_MASK_NOASYNC | SEE_MASK_FLAG_NO_UI,
        lpVerb: verb.as_ptr(),
        lpFile: file.as_ptr(),
        nShow: SW_SHOWNORMAL,
        ..Default::default()
    };
    // SAFETY: `info` is a properly sized SHELLEXECUTEINFOW whose string
    // pointers reference NUL-terminated buffers alive for the call.
    let ok = unsafe { ShellExecuteExW(&mut info) };
    if ok == 0 {
        return Err(ActionError::Failed(format!(
            "the default browser could not open the URL: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// COM initialised for the current thread until dropped (only when this
/// call initialised it: a thread already in another apartment is left alone).
struct ComApartment {
    /// Whether `CoUninitialize` is owed.
    initialised: bool,
}

impl ComApartment {
    fn enter() -> Self {
        // SAFETY: reserved pointer must be null; the flags are valid.
        let hr = unsafe {
            CoInitializeEx(
                std::ptr::null(),
                (COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE) as u32,
            )
        };
        // S_OK and S_FALSE both need a matching CoUninitialize;
        // RPC_E_CHANGED_MODE (another apartment) does not.
        Self {
            initialised: hr >= 0,
        }
    }
}

impl Drop for ComApartment {
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: balances the successful CoInitializeEx on this thread.
            unsafe { CoUninitialize() };
        }
    }
}

/// `setSizeWindow`: find a visible top-level window by title (exact first,
/// then substring), restore it if minimised, resize it to the left top
/// (legacy §3.2.15: at horizontal position `x`, top 0) unless both sizes
/// are 0, and bring it to the front when asked.
///
/// The foreground lock: Windows lets `SetForegroundWindow` succeed only for
/// the foreground process, a process it started or allowed with
/// `AllowSetForegroundWindow`, the process that received the last input
/// event, or when no window is in the foreground or the lock timed out
/// (`SPI_GETFOREGROUNDLOCKTIMEOUT`). A web page's request reaches the agent
/// while the browser is in the foreground, so on a real desktop the call is
/// often refused and the taskbar button flashes instead. We then answer
/// FAILURE saying so, never a fake success, and do not work around the lock
/// (no simulated Alt key, no `AttachThreadInput`): the lock protects the
/// agent from windows stealing keystrokes mid-typing.
fn window(request: &WindowRequest) -> Result<(), ActionError> {
    let hwnd = find_window(&request.title)?;
    // SAFETY: `hwnd` came from EnumWindows; if it was destroyed since,
    // these calls fail harmlessly (invalid handle) rather than misbehave.
    unsafe {
        if IsIconic(hwnd) != 0 {
            ShowWindow(hwnd, SW_RESTORE);
        }
    }
    if request.width > 0 || request.height > 0 {
        let mut rect = RECT::default();
        // SAFETY: `rect` is a live RECT for the call to fill.
        if unsafe { GetWindowRect(hwnd, &mut rect) } == 0 {
            return Err(last_error("GetWindowRect"));
        }
        let width = keep_if_zero(request.width, rect.right - rect.left);
        let height = keep_if_zero(request.height, rect.bottom - rect.top);
        // SAFETY: plain values; a null insert-after with SWP_NOZORDER is documented.
        let ok = unsafe {
            SetWindowPos(
                hwnd,
                std::ptr::null_mut(),
                request.x,
                0,
                width,
                height,
                SWP_NOZORDER | SWP_NOOWNERZORDER | SWP_NOACTIVATE,
            )
        };
        if ok == 0 {
            return Err(last_error("SetWindowPos"));
        }
    }
    if request.focus {
        // SAFETY: plain handle argument.
        if unsafe { SetForegroundWindow(hwnd) } == 0 {
            return Err(ActionError::Failed(format!(
                "Windows did not bring \"{}\" to the front (foreground lock: only the \
                 foreground application may hand over the focus)",
                request.title
            )));
        }
    }
    Ok(())
}

/// A requested size, or the current one when the request says 0.
fn keep_if_zero(requested: u32, current: i32) -> i32 {
    if requested == 0 {
        current
    } else {
        i32::try_from(requested).unwrap_or(i32::MAX)
    }
}

/// The visible top-level window whose title is `title`, else the first
/// whose title contains it (in `EnumWindows` order, i.e. top of the Z order first).
fn find_window(title: &str) -> Result<HWND, ActionError> {
    if title.is_empty() {
        return Err(ActionError::NotFound("an empty window title".to_string()));
    }
    let mut windows: Vec<(HWND, String)> = Vec::new();
    // SAFETY: `collect_window` only uses LPARAM as `&mut Vec<(HWND, String)>`,
    // and `windows` outlives EnumWindows, which calls back synchronously.
    let ok = unsafe { EnumWindows(Some(collect_window), &mut windows as *mut _ as LPARAM) };
    if ok == 0 {
        return Err(last_error("EnumWindows"));
    }
    windows
        .iter()
        .find(|(_, text)| text == title)
        .or_else(|| windows.iter().find(|(_, text)| text.contains(title)))
        .map(|(hwnd, _)| *hwnd)
        .ok_or_else(|| ActionError::NotFound(format!("no window titled \"{title}\"")))
}

/// EnumWindows callback: records each visible window that has a title.
///
/// Never panics (a panic cannot unwind through a Win32 callback).
unsafe extern "system" fn collect_window(hwnd: HWND, list: LPARAM) -> i32 {
    // SAFETY: `find_window` passes a `&mut Vec<(HWND, String)>` that is
    // alive and not otherwise borrowed while EnumWindows runs.
    let windows = unsafe { &mut *(list as *mut Vec<(HWND, String)>) };
    // SAFETY: `hwnd` is the window EnumWindows is reporting.
    if unsafe { IsWindowVisible(hwnd) } == 0 {
        return 1;
    }
    // SAFETY: as above.
    let len = unsafe { GetWindowTextLengthW(hwnd) };
    if len <= 0 {
        return 1;
    }
    let mut buffer = vec![0u16; len as usize + 1];
    // SAFETY: the buffer holds `buffer.len()` units, as passed.
    let copied = unsafe { GetWindowTextW(hwnd, buffer.as_mut_ptr(), buffer.len() as i32) };
    let copied = usize::try_from(copied).unwrap_or(0).min(buffer.len());
    windows.push((hwnd, String::from_utf16_lossy(&buffer[..copied])));
    1
}

/// A NUL-terminated UTF-16 copy of an OS string (paths cannot hold NUL).
fn wide_os(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// `GetLastError` of a failed call, as an ActionError naming the call.
fn last_error(call: &str) -> ActionError {
    ActionError::Failed(format!(
        "{call} failed: {}",
        std::io::Error::last_os_error()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_and_https_urls_are_openable() {
        for url in [
            "http://x",
            "http://example.com",
            "https://crm.example.com/case?id=42&x=%20",
            "HTTPS://EXAMPLE.COM/",
            "http://é.example/",
        ] {
            assert!(is_openable_url(url), "{url}");
        }
        for url in [
            "",
            "http://",
            "https://",
            "http:/x",
            "httpé://x",
            "file:///C:/Windows/notepad.exe",
            "javascript:alert(1)",
            "ms-settings:",
            "https://a b",
            "https://a\tb",
            "https://a\nb",
            "https://a\u{0}b",
            "https://a\u{85}b",
        ] {
            assert!(!is_openable_url(url), "{url:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(!is_openable_url(&long));
    }

    #[test]
    fn zero_keeps_the_current_size() {
        assert_eq!(keep_if_zero(0, 640), 640);
        assert_eq!(keep_if_zero(800, 640), 800);
        assert_eq!(keep_if_zero(u32::MAX, 640), i32::MAX);
    }
}
