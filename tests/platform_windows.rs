//! The Windows desktop actions against a real Win32 (under Wine in CI:
//! scripts/test-windows.sh): a launched program gets exactly our argv, a
//! window the test creates is found, resized and focused, the pickup
//! dialog is clicked, dismissed and times out, a toast appears and goes.
//!
//! Wine runs everything as one user in one session with no window manager
//! policy: the foreground lock, other sessions and tokens cannot be shown
//! here (scripts/test-windows.sh lists them for a real Windows host).

#![cfg(windows)]
// The test drives Win32 directly to create and inspect windows.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{LocalFree, HWND, RECT};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Registry::{
    RegGetValueW, RegSetKeyValueW, HKEY_LOCAL_MACHINE, REG_SZ, RRF_RT_REG_SZ,
};
use windows_sys::Win32::UI::Shell::CommandLineToArgvW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DispatchMessageW, FindWindowW, GetDlgItem,
    GetForegroundWindow, GetMessageW, GetWindowLongW, GetWindowRect, GetWindowTextW, IsIconic,
    IsWindow, IsWindowVisible, PostMessageW, PostQuitMessage, RegisterClassExW, SendMessageW,
    ShowWindow, TranslateMessage, BM_CLICK, GWL_EXSTYLE, MSG, SW_MINIMIZE, WM_CLOSE, WM_DESTROY,
    WNDCLASSEXW, WS_EX_TOPMOST, WS_OVERLAPPEDWINDOW, WS_VISIBLE,
};
use wsconnector::platform::windows::{
    command_line, system, PICKUP_BUTTON_ID, PICKUP_CLASS, TOAST_CLASS,
};
use wsconnector::platform::{
    ActionError, LaunchSpec, PickupDialog, PickupOutcome, Toast, WindowRequest,
};

/// Generous: Wine starts processes and windows slowly on a loaded CI box.
const DEADLINE: Duration = Duration::from_secs(30);

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Polls `check` until it returns Some or the deadline passes.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `argv_marker` example, built next to this test binary.
fn marker_exe() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let exe = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join("argv_marker.exe");
    assert!(
        exe.is_file(),
        "{} is missing: build it first with `cargo build --target x86_64-pc-windows-gnu --example argv_marker`",
        exe.display()
    );
    exe
}

fn tricky_args() -> Vec<String> {
    [
        "plain",
        "two words",
        "",
        r#"say "hi""#,
        r"C:\dir with space\",
        r"C:\no\space\",
        r#"back\"slash"#,
        r#"\\"#,
        "tab\there",
        "%PATH% ^& | < > &&",
        "ünïcödé ☎",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn launch_passes_every_argument_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker file.json");
    let mut args = vec![marker.to_str().unwrap().to_string()];
    args.extend(tricky_args());
    let spec = LaunchSpec {
        name: "marker".into(),
        path: marker_exe(),
        args,
    };
    let pid = system().launch(&spec).unwrap();
    assert!(pid > 0);
    let written = wait_for("the marker file", || std::fs::read_to_string(&marker).ok());
    let got: Vec<String> = serde_json::from_str(&written).unwrap();
    assert_eq!(got, tricky_args());
}

#[test]
fn launch_refuses_batch_files_relative_paths_and_missing_programs() {
    let dir = tempfile::tempdir().unwrap();
    let platform = system();
    for name in ["run.bat", "run.CMD"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "@echo off\r\n").unwrap();
        let spec = LaunchSpec {
            name: name.into(),
            path,
            args: vec![],
        };
        assert!(
            matches!(platform.launch(&spec), Err(ActionError::Failed(m)) if m.contains("batch")),
            "{name}"
        );
    }
    let relative = LaunchSpec {
        name: "relative".into(),
        path: PathBuf::from("argv_marker.exe"),
        args: vec![],
    };
    assert!(matches!(
        platform.launch(&relative),
        Err(ActionError::Failed(_))
    ));
    let missing = LaunchSpec {
        name: "missing".into(),
        path: dir.path().join("nothing.exe"),
        args: vec![],
    };
    assert!(matches!(
        platform.launch(&missing),
        Err(ActionError::NotFound(_))
    ));
}

/// Our quoting against the real `CommandLineToArgvW`.
#[test]
fn command_lines_split_back_with_command_line_to_argv() {
    let program = r"C:\Program Files\App\app.exe";
    let args = tricky_args();
    let line = command_line(program, &args).unwrap();
    let line_w = wide(&line);
    let mut count = 0i32;
    // SAFETY: a NUL-terminated line and a live count; the returned block is
    // read within `count` entries and freed once with LocalFree.
    let got = unsafe {
        let argv = CommandLineToArgvW(line_w.as_ptr(), &mut count);
        assert!(!argv.is_null());
        let mut got = Vec::new();
        for i in 0..count as usize {
            let arg = *argv.add(i);
            let mut len = 0;
            while *arg.add(len) != 0 {
                len += 1;
            }
            got.push(String::from_utf16(std::slice::from_raw_parts(arg, len)).unwrap());
        }
        LocalFree(argv.cast());
        got
    };
    let mut want = vec![program.to_string()];
    want.extend(args);
    assert_eq!(got, want, "line {line}");
}

#[test]
fn open_url_refuses_everything_but_http_and_https() {
    let platform = system();
    for url in [
        "file:///C:/windows/system32/notepad.exe",
        r"C:\windows\system32\notepad.exe",
        "javascript:alert(1)",
        "ms-settings:",
        "search-ms:query=x",
        "http://a b",
        "https://example.com/\nx",
        "https://",
        "httpx://example.com",
    ] {
        assert!(
            matches!(platform.open_url(url), Err(ActionError::Failed(_))),
            "{url:?} must be refused"
        );
    }
}

/// A top-level window on its own thread, which pumps its messages (other
/// threads' GetWindowTextW and SetWindowPos wait on that) until dropped.
struct TestWindow {
    hwnd: isize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestWindow {
    fn open(title: &str) -> Self {
        let title = title.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let class = wide("WscTestWindow");
            let title = wide(&title);
            // SAFETY: test code; strings live across the calls; the class is
            // registered once per process (a repeat fails harmlessly).
            unsafe {
                let instance = GetModuleHandleW(std::ptr::null());
                let info = WNDCLASSEXW {
                    cbSize: size_of::<WNDCLASSEXW>() as u32,
                    lpfnWndProc: Some(test_window_procedure),
                    hInstance: instance,
                    lpszClassName: class.as_ptr(),
                    ..Default::default()
                };
                RegisterClassExW(&info);
                let hwnd = CreateWindowExW(
                    0,
                    class.as_ptr(),
                    title.as_ptr(),
                    WS_OVERLAPPEDWINDOW | WS_VISIBLE,
                    200,
                    150,
                    320,
                    240,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    instance,
                    std::ptr::null(),
                );
                assert!(!hwnd.is_null());
                tx.send(hwnd as isize).unwrap();
                let mut msg = MSG::default();
                while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
                    TranslateMessage(&msg);
                    DispatchMessageW(&msg);
                }
            }
        });
        let hwnd = rx.recv().unwrap();
        Self {
            hwnd,
            thread: Some(thread),
        }
    }

    fn hwnd(&self) -> HWND {
        self.hwnd as HWND
    }

    fn rect(&self) -> (i32, i32, i32, i32) {
        let mut rect = RECT::default();
        // SAFETY: a live window and RECT.
        assert_ne!(unsafe { GetWindowRect(self.hwnd(), &mut rect) }, 0);
        (
            rect.left,
            rect.top,
            rect.right - rect.left,
            rect.bottom - rect.top,
        )
    }
}

impl Drop for TestWindow {
    fn drop(&mut self) {
        // SAFETY: posting to our own window; its thread destroys it and quits.
        unsafe { PostMessageW(self.hwnd(), WM_CLOSE, 0, 0) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

unsafe extern "system" fn test_window_procedure(
    hwnd: HWND,
    message: u32,
    wparam: usize,
    lparam: isize,
) -> isize {
    if message == WM_DESTROY {
        // SAFETY: ends this window thread's loop.
        unsafe { PostQuitMessage(0) };
        return 0;
    }
    // SAFETY: default handling.
    unsafe { DefWindowProcW(hwnd, message, wparam, lparam) }
}

fn request(title: &str, x: i32, width: u32, height: u32, focus: bool) -> WindowRequest {
    WindowRequest {
        title: title.into(),
        x,
        width,
        height,
        focus,
    }
}

#[test]
fn window_is_found_by_exact_title_resized_to_the_left_top_and_focused() {
    let window = TestWindow::open("wsc window test: exact");
    // A second window whose title contains the first: the exact one wins.
    let decoy = TestWindow::open("wsc window test: exact (decoy)");
    let platform = system();
    platform
        .window(&request("wsc window test: exact", 40, 500, 360, true))
        .unwrap();
    let (x, y, width, height) = window.rect();
    assert_eq!((x, y, width, height), (40, 0, 500, 360));
    assert_eq!(decoy.rect(), (200, 150, 320, 240), "the decoy is untouched");
    focused_by_request("wsc window test: exact", &window);

    // Zero sizes keep size and position.
    platform
        .window(&request("wsc window test: exact", 300, 0, 0, true))
        .unwrap();
    assert_eq!(window.rect(), (40, 0, 500, 360));
}

#[test]
fn window_is_found_by_substring_restored_from_minimised_and_focused() {
    let window = TestWindow::open("wsc window test: substring 0815 - Editor");
    // SAFETY: our test window.
    unsafe { ShowWindow(window.hwnd(), SW_MINIMIZE) };
    wait_for("the window to minimise", || {
        // SAFETY: plain query.
        (unsafe { IsIconic(window.hwnd()) } != 0).then_some(())
    });
    system()
        .window(&request("substring 0815", 0, 0, 0, true))
        .unwrap();
    // SAFETY: plain query.
    assert_eq!(unsafe { IsIconic(window.hwnd()) }, 0, "restored");
    focused_by_request("substring 0815", &window);
}

/// Asks for focus until `window` is the foreground window: the other tests
/// of this binary run in parallel and their windows (the pickup dialog)
/// may take the foreground between our request and the check.
fn focused_by_request(title: &str, window: &TestWindow) {
    wait_for("the window to be in the foreground", || {
        system().window(&request(title, 0, 0, 0, true)).unwrap();
        // SAFETY: plain query.
        (unsafe { GetForegroundWindow() } == window.hwnd()).then_some(())
    });
}

#[test]
fn window_that_does_not_exist_is_not_found() {
    let got = system().window(&request(
        "wsc window test: no such window 4711",
        0,
        0,
        0,
        true,
    ));
    assert!(matches!(got, Err(ActionError::NotFound(_))), "{got:?}");
    let got = system().window(&request("", 0, 0, 0, true));
    assert!(matches!(got, Err(ActionError::NotFound(_))), "{got:?}");
}

fn dialog(title: &str, timeout: Duration) -> PickupDialog {
    PickupDialog {
        key: "interaction-1".into(),
        title: title.into(),
        button_text: "Pick & go".into(),
        timeout,
    }
}

/// Waits for the pickup window titled `title` to be shown (it exists a
/// moment earlier, while its controls are added); returns it as isize (Send).
fn find_pickup(title: &str) -> isize {
    let class = wide(PICKUP_CLASS);
    let title = wide(title);
    wait_for("the pickup window", || {
        // SAFETY: NUL-terminated strings; plain query on the result.
        let hwnd = unsafe { FindWindowW(class.as_ptr(), title.as_ptr()) };
        (!hwnd.is_null() && unsafe { IsWindowVisible(hwnd) } != 0).then_some(hwnd as isize)
    })
}

#[test]
fn pickup_button_click_picks_up() {
    let title = "Incoming call: +32 2 555 01 01";
    let clicker = std::thread::spawn(move || {
        let hwnd = find_pickup(title) as HWND;
        // SAFETY: FindWindowW just found it; SendMessageW waits for the
        // dialog's thread to handle the click.
        unsafe {
            assert_eq!(
                GetWindowLongW(hwnd, GWL_EXSTYLE) as u32 & WS_EX_TOPMOST,
                WS_EX_TOPMOST
            );
            let button = GetDlgItem(hwnd, PICKUP_BUTTON_ID);
            assert!(!button.is_null(), "the button has the documented id");
            let mut label = [0u16; 64];
            let len = GetWindowTextW(button, label.as_mut_ptr(), label.len() as i32);
            assert_eq!(
                String::from_utf16_lossy(&label[..len as usize]),
                "Pick && go"
            );
            SendMessageW(button, BM_CLICK, 0, 0);
        }
        hwnd as isize
    });
    let outcome = system()
        .pickup(&dialog(title, Duration::from_secs(60)))
        .unwrap();
    assert_eq!(outcome, PickupOutcome::PickedUp);
    let hwnd = clicker.join().unwrap() as HWND;
    // SAFETY: plain query on a (now destroyed) handle.
    assert_eq!(unsafe { IsWindow(hwnd) }, 0, "the dialog is gone");
}

#[test]
fn pickup_closed_is_dismissed() {
    let title = "Incoming call: dismiss me";
    let closer = std::thread::spawn(move || {
        let hwnd = find_pickup(title) as HWND;
        // SAFETY: posting WM_CLOSE to a window that exists.
        unsafe { PostMessageW(hwnd, WM_CLOSE, 0, 0) };
    });
    let outcome = system()
        .pickup(&dialog(title, Duration::from_secs(60)))
        .unwrap();
    closer.join().unwrap();
    assert_eq!(outcome, PickupOutcome::Dismissed);
}

#[test]
fn pickup_nobody_answers_times_out() {
    let title = "Incoming call: nobody home";
    let start = Instant::now();
    let outcome = system()
        .pickup(&dialog(title, Duration::from_millis(400)))
        .unwrap();
    assert_eq!(outcome, PickupOutcome::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(400));
    let class = wide(PICKUP_CLASS);
    let title = wide(title);
    // SAFETY: NUL-terminated strings.
    let left = unsafe { FindWindowW(class.as_ptr(), title.as_ptr()) };
    assert!(left.is_null(), "the timed-out dialog is gone");
}

#[test]
fn notify_shows_a_topmost_window_that_closes_after_the_duration() {
    let title = "wsc toast test";
    let duration = Duration::from_millis(1500);
    let start = Instant::now();
    system()
        .notify(&Toast {
            title: title.into(),
            message: "A message & more".into(),
            duration,
            color: Some("Red".into()),
            width: Some(300),
            height: Some(100),
        })
        .unwrap();
    let class = wide(TOAST_CLASS);
    let title_w = wide(title);
    // SAFETY: NUL-terminated strings; plain queries on the found window.
    let hwnd = unsafe { FindWindowW(class.as_ptr(), title_w.as_ptr()) };
    assert!(
        !hwnd.is_null(),
        "the toast is on screen when notify returns"
    );
    // SAFETY: as above.
    unsafe {
        assert_ne!(IsWindowVisible(hwnd), 0);
        assert_eq!(
            GetWindowLongW(hwnd, GWL_EXSTYLE) as u32 & WS_EX_TOPMOST,
            WS_EX_TOPMOST
        );
        assert_ne!(GetForegroundWindow(), hwnd, "a toast never takes the focus");
    }
    let mut rect = RECT::default();
    // SAFETY: a live window and RECT.
    unsafe { GetWindowRect(hwnd, &mut rect) };
    assert_eq!((rect.right - rect.left, rect.bottom - rect.top), (300, 100));
    wait_for("the toast to close", || {
        // SAFETY: plain query.
        (unsafe { IsWindow(hwnd) } == 0).then_some(())
    });
    assert!(
        start.elapsed() >= duration,
        "closed after {:?}",
        start.elapsed()
    );
}

#[test]
fn host_name_is_known() {
    assert!(!system().host_name().is_empty());
}

/// Whether this process runs under Wine (ntdll exports `wine_get_version`).
fn under_wine() -> bool {
    let ntdll = wide("ntdll.dll");
    // SAFETY: ntdll is always loaded; a NUL-terminated ANSI name.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// Under Wine, `argv_marker` registered as the machine's `http` handler
/// (`HKLM\Software\Classes\http\shell\open\command`, where Wine keeps its
/// `winebrowser` default and where it looks), with Wine's value put back
/// when dropped, also when the test fails.
struct HttpHandler {
    /// Wine's own command, NUL-terminated.
    original: Vec<u16>,
}

const HTTP_COMMAND_KEY: &str = r"Software\Classes\http\shell\open\command";

impl HttpHandler {
    fn register(command: &str) -> Self {
        let key = wide(HTTP_COMMAND_KEY);
        let mut original = vec![0u16; 2048];
        let mut bytes = (original.len() * 2) as u32;
        // SAFETY: a NUL-terminated key; the buffer holds `bytes` bytes.
        let status = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                std::ptr::null(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                original.as_mut_ptr().cast(),
                &mut bytes,
            )
        };
        assert_eq!(status, 0, "RegGetValueW(http handler)");
        original.truncate(bytes as usize / 2);
        set_http_command(&wide(command));
        Self { original }
    }
}

impl Drop for HttpHandler {
    fn drop(&mut self) {
        set_http_command(&self.original);
    }
}

fn set_http_command(value: &[u16]) {
    let key = wide(HTTP_COMMAND_KEY);
    // SAFETY: NUL-terminated key and REG_SZ data with its byte length.
    let status = unsafe {
        RegSetKeyValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            std::ptr::null(),
            REG_SZ,
            value.as_ptr().cast(),
            (value.len() * 2) as u32,
        )
    };
    assert_eq!(status, 0, "RegSetKeyValueW(http handler)");
}

/// The shell opens an http URL with the handler registered for `http`:
/// under Wine the test makes `argv_marker` that handler and sees the URL
/// arrive unchanged. On real Windows the default-browser choice is
/// hash-protected and must not be redirected by a test: skipped there, loudly.
#[test]
fn open_url_hands_the_url_to_the_registered_http_handler() {
    if !under_wine() {
        #[path = "support/skip.rs"]
        mod skip;
        skip::skipped(
            "open_url reaching the http handler",
            "only checked under Wine (a real Windows host protects the default browser choice)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("url marker.json");
    let command = format!(
        "\"{}\" \"{}\" \"%1\"",
        marker_exe().display(),
        marker.display()
    );
    let _handler = HttpHandler::register(&command);
    let url = "http://127.0.0.1:9/path?q=a%20b&x=1";
    system().open_url(url).unwrap();
    let written = wait_for("the URL marker", || std::fs::read_to_string(&marker).ok());
    let got: Vec<String> = serde_json::from_str(&written).unwrap();
    assert_eq!(got, vec![url.to_string()]);
}
