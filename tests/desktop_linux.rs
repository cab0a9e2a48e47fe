//! The Linux desktop for real, inside the session scripts/test-desktop.sh
//! sets up (Xvfb + openbox + a private D-Bus session bus): a real X11 window
//! found by title, focused (`_NET_ACTIVE_WINDOW`) and resized (geometry);
//! notifications against a small notification server on the bus that
//! records `Notify` and clicks the pickup button, and against Debian's
//! `dunst`; a declared program really starts, refused ones do not; and both
//! end to end over the daemon's websocket.
//!
//! Outside that session (`WSC_DESKTOP_SESSION` unset) every test returns at
//! once: `cargo test` on a headless machine has no X server or session bus,
//! and the desktop stage runs these for real (or says loudly why it cannot).
#![cfg(target_os = "linux")]

mod common;
#[path = "support/skip.rs"]
mod skip;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsconnector::config::{Capabilities, Program};
use wsconnector::platform::{
    self, ActionError, LaunchSpec, PickupDialog, PickupOutcome, Toast, WindowRequest,
};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ButtonPressEvent, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask,
    KeyButMask, PropMode, Window, WindowClass, BUTTON_PRESS_EVENT,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

const DEADLINE: Duration = Duration::from_secs(10);

/// True inside the desktop session; otherwise says why the test returns.
fn in_session(test: &str) -> bool {
    if std::env::var_os("WSC_DESKTOP_SESSION").is_some() {
        return true;
    }
    eprintln!("{test}: not in a desktop session; scripts/test-desktop.sh runs it");
    false
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- X11 -----

fn atom(conn: &RustConnection, name: &str) -> u32 {
    conn.intern_atom(false, name.as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom
}

/// A real top-level window titled `title`, mapped and managed by the WM.
fn make_window(conn: &RustConnection, root: Window, title: &str) -> Window {
    let w = conn.generate_id().unwrap();
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        w,
        root,
        50,
        50,
        300,
        200,
        0,
        WindowClass::INPUT_OUTPUT,
        x11rb::COPY_FROM_PARENT,
        &CreateWindowAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
    )
    .unwrap();
    let utf8 = atom(conn, "UTF8_STRING");
    let net_wm_name = atom(conn, "_NET_WM_NAME");
    conn.change_property8(PropMode::REPLACE, w, net_wm_name, utf8, title.as_bytes())
        .unwrap();
    conn.change_property8(
        PropMode::REPLACE,
        w,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        title.as_bytes(),
    )
    .unwrap();
    conn.map_window(w).unwrap();
    conn.flush().unwrap();
    let client_list = atom(conn, "_NET_CLIENT_LIST");
    wait_for("the window manager to manage the window", || {
        let r = conn
            .get_property(false, root, client_list, AtomEnum::WINDOW, 0, 1024)
            .ok()?
            .reply()
            .ok()?;
        let found = r.value32()?.any(|x| x == w);
        found.then_some(())
    });
    w
}

fn active_window(conn: &RustConnection, root: Window) -> Option<Window> {
    let active = atom(conn, "_NET_ACTIVE_WINDOW");
    let r = conn
        .get_property(false, root, active, AtomEnum::WINDOW, 0, 1)
        .ok()?
        .reply()
        .ok()?;
    let first = r.value32()?.next();
    first
}

#[test]
fn a_real_window_is_found_by_title_focused_and_resized() {
    if !in_session("window") {
        return;
    }
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let a = make_window(&conn, root, "wsc-test CRM window A");
    let b = make_window(&conn, root, "wsc-test other window B");
    let p = platform::system();
    // Focus A by its exact title, keeping its size.
    p.window(&WindowRequest {
        title: "wsc-test CRM window A".into(),
        x: 0,
        width: 0,
        height: 0,
        focus: true,
    })
    .expect("focus A");
    wait_for("A to be active", || {
        (active_window(&conn, root) == Some(a)).then_some(())
    });
    let g = conn.get_geometry(a).unwrap().reply().unwrap();
    assert_eq!((g.width, g.height), (300, 200), "zero sizes keep the size");
    // Resize and focus B, found by a part of its title.
    p.window(&WindowRequest {
        title: "other window".into(),
        x: 20,
        width: 640,
        height: 480,
        focus: true,
    })
    .expect("resize B");
    wait_for("B to be active", || {
        (active_window(&conn, root) == Some(b)).then_some(())
    });
    wait_for("B's new size", || {
        let g = conn.get_geometry(b).ok()?.reply().ok()?;
        ((g.width, g.height) == (640, 480)).then_some(())
    });
    // Not found, and never a fake success.
    let e = p
        .window(&WindowRequest {
            title: "no such window anywhere".into(),
            x: 0,
            width: 0,
            height: 0,
            focus: true,
        })
        .unwrap_err();
    assert!(matches!(e, ActionError::NotFound(_)), "{e:?}");
}

// ----- a notification server on the bus -----

/// One `Notify` call as the server saw it.
#[derive(Debug, Clone)]
struct Notified {
    id: u32,
    summary: String,
    body: String,
    actions: Vec<String>,
    urgency: Option<u8>,
    expire: i32,
}

struct TestServer {
    caps: Vec<String>,
    tx: mpsc::Sender<Notified>,
    closed: mpsc::Sender<u32>,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl TestServer {
    fn get_capabilities(&self) -> Vec<String> {
        self.caps.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        self.next += 1;
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        let _ = self.tx.send(Notified {
            id: self.next,
            summary,
            body,
            actions,
            urgency,
            expire: expire_timeout,
        });
        self.next
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        let _ = self.closed.send(id);
        let _ = Self::notification_closed(&emitter, id, 3).await;
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "wsc-test".into(),
            "wsconnector".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

const PATH: &str = "/org/freedesktop/Notifications";

/// The test server, owning the notification name while it lives.
struct Bus {
    conn: zbus::blocking::Connection,
    notified: mpsc::Receiver<Notified>,
    closed: mpsc::Receiver<u32>,
}

impl Bus {
    fn start() -> Bus {
        Bus::start_with(&["actions", "body", "body-markup"])
    }

    fn start_with(caps: &[&str]) -> Bus {
        let (tx, notified) = mpsc::channel();
        let (ctx, closed) = mpsc::channel();
        let conn = zbus::blocking::connection::Builder::session()
            .unwrap()
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at(
                PATH,
                TestServer {
                    caps: caps.iter().map(|c| c.to_string()).collect(),
                    tx,
                    closed: ctx,
                    next: 0,
                },
            )
            .unwrap()
            .build()
            .expect("own org.freedesktop.Notifications on the session bus");
        Bus {
            conn,
            notified,
            closed,
        }
    }

    fn next(&self) -> Notified {
        self.notified.recv_timeout(DEADLINE).expect("a Notify call")
    }

    fn emit(&self, f: impl FnOnce(&SignalEmitter<'static>) -> zbus::Result<()>) {
        let iface = self
            .conn
            .object_server()
            .interface::<_, TestServer>(PATH)
            .unwrap();
        f(iface.signal_emitter()).unwrap();
    }

    fn click(&self, id: u32, key: &str) {
        self.emit(|e| zbus::block_on(TestServer::action_invoked(e, id, key)));
    }

    fn close_by_user(&self, id: u32) {
        self.emit(|e| zbus::block_on(TestServer::notification_closed(e, id, 2)));
    }
}

#[test]
fn toasts_reach_the_notification_server_with_text_duration_and_urgency() {
    if !in_session("notify") {
        return;
    }
    let bus = Bus::start();
    let p = platform::system();
    p.notify(&Toast {
        title: "Incoming call".into(),
        message: "From <b>ACME</b> & co".into(),
        duration: Duration::from_millis(2500),
        color: Some("Red".into()),
        width: Some(300),
        height: None,
    })
    .expect("toast shown");
    let n = bus.next();
    assert_eq!(n.summary, "Incoming call");
    assert_eq!(
        n.body, "From &lt;b&gt;ACME&lt;/b&gt; &amp; co",
        "plain text escaped for a markup server"
    );
    assert_eq!(n.expire, 2500);
    assert_eq!(n.urgency, Some(2), "red is critical");
    assert!(n.actions.is_empty());
    p.notify(&Toast {
        title: "Note".into(),
        message: "m".into(),
        duration: Duration::from_secs(5),
        color: None,
        width: None,
        height: None,
    })
    .unwrap();
    assert_eq!(bus.next().urgency, Some(1));
}

fn dialog(key: &str, timeout: Duration) -> PickupDialog {
    PickupDialog {
        key: key.into(),
        title: "Call from 32 2 555 12 34".into(),
        button_text: "Take the call".into(),
        timeout,
    }
}

#[test]
fn the_pickup_notification_reports_click_dismiss_and_timeout() {
    if !in_session("pickup") {
        return;
    }
    let bus = Bus::start();
    // Clicked.
    let t = std::thread::spawn(|| platform::system().pickup(&dialog("k1", DEADLINE)));
    let n = bus.next();
    assert_eq!(
        n.actions,
        vec!["pickup".to_string(), "Take the call".to_string()]
    );
    assert_eq!(n.urgency, Some(2));
    bus.click(n.id, "pickup");
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::PickedUp));
    assert_eq!(
        bus.closed.recv_timeout(DEADLINE).unwrap(),
        n.id,
        "a clicked dialog is closed (some servers keep it otherwise)"
    );
    // Dismissed by the user.
    let t = std::thread::spawn(|| platform::system().pickup(&dialog("k2", DEADLINE)));
    let n = bus.next();
    bus.close_by_user(n.id);
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::Dismissed));
    // Nobody reacts: our own timer closes it.
    let t =
        std::thread::spawn(|| platform::system().pickup(&dialog("k3", Duration::from_millis(300))));
    let n = bus.next();
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::TimedOut));
    assert_eq!(
        bus.closed.recv_timeout(DEADLINE).unwrap(),
        n.id,
        "the dialog was closed"
    );
}

/// The managed window whose `_NET_WM_NAME` is `title`.
fn find_window(conn: &RustConnection, root: Window, title: &str) -> Option<Window> {
    let client_list = atom(conn, "_NET_CLIENT_LIST");
    let name = atom(conn, "_NET_WM_NAME");
    let utf8 = atom(conn, "UTF8_STRING");
    let r = conn
        .get_property(false, root, client_list, AtomEnum::WINDOW, 0, 1024)
        .ok()?
        .reply()
        .ok()?;
    let windows: Vec<Window> = r.value32()?.collect();
    windows.into_iter().find(|w| {
        conn.get_property(false, *w, name, utf8, 0, 1024)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|p| p.value == title.as_bytes())
    })
}

#[test]
fn without_notification_buttons_the_pickup_dialog_is_a_window() {
    if !in_session("pickup window") {
        return;
    }
    let bus = Bus::start_with(&["body"]);
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let title = "Call from 32 2 555 12 34";
    // Clicked on its button.
    let t = std::thread::spawn(|| platform::system().pickup(&dialog("w1", DEADLINE)));
    let w = wait_for("the pickup window", || find_window(&conn, root, title));
    let click = ButtonPressEvent {
        response_type: BUTTON_PRESS_EVENT,
        detail: 1,
        sequence: 0,
        time: 0,
        root,
        event: w,
        child: 0,
        root_x: 0,
        root_y: 0,
        event_x: 150,
        event_y: 70,
        state: KeyButMask::default(),
        same_screen: true,
    };
    conn.send_event(false, w, EventMask::BUTTON_PRESS, click)
        .unwrap();
    conn.flush().unwrap();
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::PickedUp));
    wait_for("the window to go", || {
        find_window(&conn, root, title).is_none().then_some(())
    });
    // Closed through the window manager.
    let t = std::thread::spawn(|| platform::system().pickup(&dialog("w2", DEADLINE)));
    let w = wait_for("the pickup window", || find_window(&conn, root, title));
    let close = ClientMessageEvent::new(32, w, atom(&conn, "_NET_CLOSE_WINDOW"), [0, 2, 0, 0, 0]);
    conn.send_event(
        false,
        root,
        EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
        close,
    )
    .unwrap();
    conn.flush().unwrap();
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::Dismissed));
    // Nobody reacts.
    let t =
        std::thread::spawn(|| platform::system().pickup(&dialog("w3", Duration::from_millis(300))));
    assert_eq!(t.join().unwrap(), Ok(PickupOutcome::TimedOut));
    assert!(bus.notified.try_recv().is_err(), "no notification was sent");
}

// ----- dunst, Debian's notification daemon -----

#[test]
fn dunst_receives_the_toast() {
    if !in_session("dunst") {
        return;
    }
    let Ok(mut dunst) = std::process::Command::new("dunst")
        .args(["-verbosity", "info"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        skip::skipped(
            "dunst test",
            "dunst is not installed (apt-get install dunst)",
        );
        return;
    };
    // Ready when dunst owns the name and answers.
    // Ready when the name has an owner (asking dunstctl could start a
    // second dunst through D-Bus activation).
    let conn = zbus::blocking::Connection::session().unwrap();
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).unwrap();
    wait_for("dunst on the bus", || {
        let name = zbus::names::BusName::try_from("org.freedesktop.Notifications").ok()?;
        dbus.name_has_owner(name).ok()?.then_some(())
    });
    let p = platform::system();
    let marker = format!("wsc-dunst-{}", std::process::id());
    p.notify(&Toast {
        title: marker.clone(),
        message: "dunst body".into(),
        duration: Duration::from_millis(200),
        color: None,
        width: None,
        height: None,
    })
    .expect("dunst shows the toast");
    // The toast expires quickly and lands in dunst's history.
    let history = wait_for("the toast in dunst's history", || {
        let out = std::process::Command::new("dunstctl")
            .arg("history")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&marker).then_some(text)
    });
    assert!(history.contains("dunst body"), "{history}");
    let _ = dunst.kill();
    let _ = dunst.wait();
}

// ----- programs -----

fn touch_program(dir: &Path) -> Program {
    Program {
        name: "touch".into(),
        path: PathBuf::from("/usr/bin/touch"),
        args: vec!["--".into()],
        parameter_rule: Some(format!(
            "^{}/[a-z0-9-]{{1,32}}$",
            regex_escape(&dir.display().to_string())
        )),
        open_url: false,
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn a_declared_program_really_starts_detached() {
    if !in_session("launch") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let p = platform::system();
    let pid = p
        .launch(&LaunchSpec {
            name: "touch".into(),
            path: "/usr/bin/touch".into(),
            args: vec!["--".into(), marker.display().to_string()],
        })
        .expect("touch starts");
    assert!(pid > 0);
    wait_for("the marker file", || marker.exists().then_some(()));
    let e = p
        .launch(&LaunchSpec {
            name: "ghost".into(),
            path: "/nonexistent/ghost".into(),
            args: vec![],
        })
        .unwrap_err();
    assert!(matches!(e, ActionError::NotFound(_)), "{e:?}");
}

// ----- end to end over the daemon's websocket -----

async fn request(ws: &mut common::Client, v: Value) -> Value {
    common::send_json(ws, v).await;
    loop {
        let m = common::next_json(ws).await;
        if m["type"] == "reply" {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_launch_and_notify_over_the_websocket() {
    if !in_session("end to end") {
        return;
    }
    let bus = Bus::start();
    let dir = tempfile::tempdir().unwrap();
    let program = touch_program(dir.path());
    let d = common::start_with(|c| {
        let mut desk = common::origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities {
            data: true,
            launch: true,
            notify: true,
            ..Capabilities::default()
        };
        c.origins.push(desk);
        c.programs.push(program);
    })
    .await;
    let addr = common::v4(&d);
    let host = common::host(&d);
    let mut page = common::ws_connect(addr, &host, Some("https://desk.example.com")).await;
    let hello = common::next_json(&mut page).await;
    assert_eq!(hello["capabilities"], json!(["data", "launch", "notify"]));

    // Allowed: the file appears.
    let ok = dir.path().join("allowed");
    let r = request(&mut page, json!({"action": "launchProcess", "requestId": 1, "name": "touch", "parameter": ok.display().to_string()})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    assert!(r["data"]["pid"].as_u64().is_some_and(|p| p > 0), "{r}");
    let end = Instant::now() + DEADLINE;
    while !ok.exists() {
        assert!(Instant::now() < end, "the allowed program did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Refused: an unlisted program, a path, and every bad argument.
    let long = format!("{}/{}", dir.path().display(), "a".repeat(10 * 1024));
    let inside = |name: &str| dir.path().join(name).display().to_string();
    for (req, code) in [
        (
            json!({"action": "launchProcess", "name": "rm", "parameter": inside("x")}),
            "unknown_program",
        ),
        (
            json!({"action": "launchProcess", "name": "/usr/bin/touch", "parameter": inside("path")}),
            "unknown_program",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": format!("{};touch {}", inside("a"), inside("shell"))}),
            "invalid_argument",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": format!("{}$(id)", inside("sub"))}),
            "invalid_argument",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": format!("{}\u{0}x", inside("nul"))}),
            "invalid_argument",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": format!("{}\nx", inside("newline"))}),
            "invalid_argument",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": long}),
            "invalid_argument",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "/tmp/outside-the-dir"}),
            "invalid_argument",
        ),
    ] {
        let r = request(&mut page, req.clone()).await;
        assert_eq!(r["errorCode"], code, "{req} -> {r}");
    }

    // Notify reaches the notification server.
    let r = request(&mut page, json!({"action": "showNotification", "title": "e2e toast", "message": "hello", "duration": 1000, "color": "green"})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let n = tokio::task::spawn_blocking(move || bus.next())
        .await
        .unwrap();
    assert_eq!(
        (n.summary.as_str(), n.body.as_str(), n.expire),
        ("e2e toast", "hello", 1000)
    );

    // Without the capability nothing happens.
    let mut plain = common::ws_connect(addr, &host, Some("https://crm.example.com")).await;
    common::next_json(&mut plain).await;
    let denied = dir.path().join("denied");
    let r = request(&mut plain, json!({"action": "launchProcess", "name": "touch", "parameter": denied.display().to_string()})).await;
    assert_eq!(r["errorCode"], "forbidden", "{r}");
    let r = request(
        &mut plain,
        json!({"action": "showNotification", "title": "t", "message": "m"}),
    )
    .await;
    assert_eq!(r["errorCode"], "forbidden", "{r}");

    // Nothing but the allowed file was created.
    let made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, vec!["allowed".to_string()]);
    d.shutdown();
    d.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_window_and_pickup_over_the_websocket() {
    if !in_session("end to end window and pickup") {
        return;
    }
    let bus = Bus::start();
    let d = common::start_with(|c| {
        let mut desk = common::origin_entry("https://desk.example.com");
        desk.capabilities = Capabilities {
            data: true,
            window: true,
            dialog: true,
            ..Capabilities::default()
        };
        c.origins.push(desk);
    })
    .await;
    let addr = common::v4(&d);
    let host = common::host(&d);
    let mut tab1 = common::ws_connect(addr, &host, Some("https://desk.example.com")).await;
    let mut tab2 = common::ws_connect(addr, &host, Some("https://desk.example.com")).await;
    common::next_json(&mut tab1).await;
    common::next_json(&mut tab2).await;

    // A real window, focused and resized from the page.
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let w = make_window(&conn, root, "wsc-test e2e window");
    let r = request(&mut tab1, json!({"action": "setSizeWindow", "x": 0, "width": 500, "height": 400, "windowName": "wsc-test e2e window", "focus": true})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let end = Instant::now() + DEADLINE;
    loop {
        let g = conn.get_geometry(w).unwrap().reply().unwrap();
        if active_window(&conn, root) == Some(w) && (g.width, g.height) == (500, 400) {
            break;
        }
        assert!(Instant::now() < end, "window not focused and resized");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = request(
        &mut tab1,
        json!({"action": "setSizeWindow", "windowName": "no such window, really"}),
    )
    .await;
    assert_eq!(r["errorCode"], "not_found", "{r}");

    // Two tabs ask for the same call: one notification, both hear the click.
    let ask = json!({"action": "showPickupDialog", "title": "Call from ACME", "buttonText": "Take", "interactionId": "e2e-1"});
    let r1 = request(&mut tab1, ask.clone()).await;
    assert_eq!(r1["data"], json!({"key": "e2e-1", "shown": true}), "{r1}");
    let r2 = request(&mut tab2, ask).await;
    assert_eq!(r2["data"], json!({"key": "e2e-1", "shown": false}), "{r2}");
    let (bus, n) = tokio::task::spawn_blocking(move || {
        let n = bus.next();
        (bus, n)
    })
    .await
    .unwrap();
    assert_eq!(n.summary, "Call from ACME");
    bus.click(n.id, "pickup");
    for tab in [&mut tab1, &mut tab2] {
        let e = common::next_json(tab).await;
        assert_eq!(
            e,
            json!({"type": "event", "event": "PickupResult", "key": "e2e-1", "result": "pickedUp"})
        );
    }
    assert!(bus.notified.try_recv().is_err(), "exactly one notification");
    d.shutdown();
    d.wait().await;
}
