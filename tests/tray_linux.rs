//! The tray icon of the real binary on Linux, read the way a desktop's tray
//! host reads it: over D-Bus. A small StatusNotifierWatcher of our own owns
//! `org.kde.StatusNotifierWatcher` on the session bus; the agent registers
//! its StatusNotifierItem there; the test reads its `Title` and its
//! com.canonical.dbusmenu layout (`GetLayout`), watches the status line
//! follow a real websocket client, and clicks menu items with dbusmenu
//! `Event(id, "clicked", ...)`: "Reload configuration" reaches the daemon's
//! handler, "Quit" stops the daemon cleanly (exit 0, port free).
//!
//! Runs inside the session scripts/test-desktop.sh sets up (Xvfb + a private
//! D-Bus session bus); elsewhere (`WSC_DESKTOP_SESSION` unset) every test
//! returns at once, like tests/desktop_linux.rs.
#![cfg(target_os = "linux")]

#[path = "support/banner.rs"]
mod banner;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Structure, Value};

/// The binary under test: `$WSCONNECTOR_BIN` when set (scripts copy the
/// binary so a parallel build sharing the target dir cannot swap it), else
/// cargo's.
fn bin() -> String {
    std::env::var("WSCONNECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsconnector").to_string())
}
const DEADLINE: Duration = Duration::from_secs(15);
const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";
const WATCHER_PATH: &str = "/StatusNotifierWatcher";

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

// ----- the test StatusNotifierWatcher -----

/// Registrations seen: (sender's unique bus name, the service argument).
type Registered = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Registered,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: String, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        self.items.lock().unwrap().push((sender, service));
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// Owns the watcher name while it lives.
struct WatcherBus {
    conn: zbus::blocking::Connection,
    items: Registered,
}

impl WatcherBus {
    fn start() -> WatcherBus {
        let items = Registered::default();
        let conn = zbus::blocking::connection::Builder::session()
            .unwrap()
            .name(WATCHER_NAME)
            .unwrap()
            .serve_at(
                WATCHER_PATH,
                Watcher {
                    items: items.clone(),
                },
            )
            .unwrap()
            .build()
            .expect("own org.kde.StatusNotifierWatcher on the session bus");
        WatcherBus { conn, items }
    }

    /// The first item registered: (bus name to call, object path).
    fn wait_item(&self) -> (String, String) {
        let (sender, service) = wait_for("the tray item to register", || {
            self.items.lock().unwrap().first().cloned()
        });
        // The service is a bus name (then the path is the standard one) or
        // an object path on the sender's connection.
        if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_string())
        }
    }

    fn property<T: TryFrom<OwnedValue>>(&self, dest: &str, path: &str, iface: &str, name: &str) -> T
    where
        T::Error: std::fmt::Debug,
    {
        let proxy = zbus::blocking::fdo::PropertiesProxy::builder(&self.conn)
            .destination(dest.to_string())
            .unwrap()
            .path(path.to_string())
            .unwrap()
            .build()
            .unwrap();
        let v = proxy
            .get(iface.try_into().unwrap(), name)
            .unwrap_or_else(|e| panic!("{iface}.{name}: {e}"));
        T::try_from(v).unwrap()
    }
}

// ----- dbusmenu -----

/// One menu entry as GetLayout gives it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    id: i32,
    label: String,
    enabled: bool,
    visible: bool,
    separator: bool,
}

fn entry_of(value: &Value<'_>) -> Entry {
    let s: &Structure = match value {
        Value::Structure(s) => s,
        Value::Value(inner) => return entry_of(inner),
        other => panic!("menu entry is not a structure: {other:?}"),
    };
    let fields = s.fields();
    let id = match &fields[0] {
        Value::I32(i) => *i,
        other => panic!("menu id: {other:?}"),
    };
    let props: HashMap<String, OwnedValue> = match &fields[1] {
        Value::Dict(d) => d.try_clone().unwrap().try_into().unwrap(),
        other => panic!("menu props: {other:?}"),
    };
    let text = |k: &str| {
        props
            .get(k)
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
    };
    Entry {
        id,
        label: text("label").unwrap_or_default(),
        enabled: props
            .get("enabled")
            .map(|v| bool::try_from(v.try_clone().unwrap()).unwrap())
            .unwrap_or(true),
        visible: props
            .get("visible")
            .map(|v| bool::try_from(v.try_clone().unwrap()).unwrap())
            .unwrap_or(true),
        separator: text("type").as_deref() == Some("separator"),
    }
}

/// The top-level menu entries (GetLayout(0, -1, [])).
fn layout(conn: &zbus::blocking::Connection, dest: &str, menu: &str) -> Vec<Entry> {
    let reply = conn
        .call_method(
            Some(dest),
            menu,
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0i32, -1i32, Vec::<String>::new()),
        )
        .expect("GetLayout");
    type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
    let (_revision, (_id, _props, children)): (u32, Node) = reply.body().deserialize().unwrap();
    children.iter().map(|c| entry_of(c)).collect()
}

fn click(conn: &zbus::blocking::Connection, dest: &str, menu: &str, id: i32) {
    conn.call_method(
        Some(dest),
        menu,
        Some("com.canonical.dbusmenu"),
        "Event",
        &(id, "clicked", Value::I32(0), 0u32),
    )
    .expect("dbusmenu Event clicked");
}

/// Clicks Quit: the agent may leave the bus before its reply is delivered
/// (hosts ignore Event replies), so only a refused call is an error.
fn click_quit(conn: &zbus::blocking::Connection, dest: &str, menu: &str, id: i32) {
    match conn.call_method(
        Some(dest),
        menu,
        Some("com.canonical.dbusmenu"),
        "Event",
        &(id, "clicked", Value::I32(0), 0u32),
    ) {
        Ok(_) => {}
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.NoReply" => {}
        Err(e) => panic!("dbusmenu Event clicked (Quit): {e}"),
    }
}

// ----- the daemon -----

struct Agent {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

fn start_agent(extra_args: &[&str]) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.xml");
    std::fs::write(
        &cfg,
        "<configuration><Socket-port>0</Socket-port><Log-level>INFO</Log-level></configuration>",
    )
    .unwrap();
    // A stand-in xdg-open first on PATH records what the tray opens.
    let fake_bin = dir.path().join("bin");
    std::fs::create_dir(&fake_bin).unwrap();
    let opener = fake_bin.join("xdg-open");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            dir.path().join("opened.txt").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(extra_args)
        .env("PATH", path)
        .env("XDG_RUNTIME_DIR", dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let banner = banner::read_banner(&mut child, DEADLINE);
    let port = banner::port_of(&banner);
    Agent {
        child,
        port,
        stderr,
        _dir: dir,
    }
}

impl Agent {
    /// What the stand-in xdg-open was asked to open, one argument a line.
    fn opened(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("opened.txt")).unwrap_or_default()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_log(&self, needle: &str) {
        wait_for(&format!("{needle:?} in the daemon's log"), || {
            self.log().contains(needle).then_some(())
        });
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for("the daemon to exit", || self.child.try_wait().unwrap())
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind(("::1", port)).is_ok()
}

fn labels(entries: &[Entry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| !e.separator && e.visible)
        .map(|e| e.label.as_str())
        .collect()
}

fn id_of(entries: &[Entry], label: &str) -> i32 {
    entries
        .iter()
        .find(|e| e.label == label)
        .unwrap_or_else(|| panic!("no {label:?} in {entries:?}"))
        .id
}

#[test]
fn tray_item_registers_shows_status_and_quit_stops_the_daemon() {
    if !in_session("tray") {
        return;
    }
    let bus = WatcherBus::start();
    let mut agent = start_agent(&[]);
    let (dest, path) = bus.wait_item();
    assert!(
        dest.starts_with("org.kde.StatusNotifierItem-") || dest.starts_with(':'),
        "{dest}"
    );

    let title: String = bus.property(&dest, &path, "org.kde.StatusNotifierItem", "Title");
    assert_eq!(title, "wsconnector");
    let menu: OwnedObjectPath = bus.property(&dest, &path, "org.kde.StatusNotifierItem", "Menu");
    let menu = menu.as_str().to_string();

    let entries = layout(&bus.conn, &dest, &menu);
    assert_eq!(
        labels(&entries),
        vec![
            "No client connected",
            "Open demo page",
            "Open inspector",
            "Open log folder",
            "Reload configuration",
            "About wsconnector",
            "Quit"
        ],
        "{entries:?}"
    );
    assert!(!entries[0].enabled, "the status line is not a command");
    assert!(entries.iter().filter(|e| e.separator).count() >= 2);

    // Status at a glance follows a real client.
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, agent.port)).unwrap();
    let (ws, _) = tokio_tungstenite::tungstenite::client::client(
        format!("ws://127.0.0.1:{}/", agent.port),
        stream,
    )
    .expect("websocket handshake");
    wait_for("the status line to count the client", || {
        let entries = layout(&bus.conn, &dest, &menu);
        (entries[0].label == "1 client connected").then_some(())
    });
    drop(ws);

    // Open demo page: the default browser (xdg-open) gets the daemon's page.
    click(&bus.conn, &dest, &menu, id_of(&entries, "Open demo page"));
    let url = format!("http://127.0.0.1:{}/", agent.port);
    wait_for("xdg-open of the demo page", || {
        (agent.opened() == format!("{url}\n")).then_some(())
    });

    // Open inspector: the browser gets a one-time token URL for /inspector.
    click(&bus.conn, &dest, &menu, id_of(&entries, "Open inspector"));
    let prefix = format!("{url}inspector?token=");
    wait_for("xdg-open of the inspector", || {
        let opened = agent.opened();
        opened.lines().any(|l| l.starts_with(&prefix)).then_some(())
    });

    // Open log folder without a Log-path: the error shows in the menu and
    // the item asks for attention.
    click(&bus.conn, &dest, &menu, id_of(&entries, "Open log folder"));
    wait_for("the last error in the menu", || {
        let entries = layout(&bus.conn, &dest, &menu);
        entries
            .iter()
            .any(|e| e.visible && e.label.starts_with("Last error: no Log-path is configured"))
            .then_some(())
    });
    let status: String = bus.property(&dest, &path, "org.kde.StatusNotifierItem", "Status");
    assert_eq!(status, "NeedsAttention");
    // The commands kept their ids (the error line was there, hidden).
    assert_eq!(
        id_of(&layout(&bus.conn, &dest, &menu), "Quit"),
        id_of(&entries, "Quit")
    );

    // Reload configuration reaches the daemon's handler.
    click(
        &bus.conn,
        &dest,
        &menu,
        id_of(&entries, "Reload configuration"),
    );
    agent.wait_log("tray: reload of the configuration requested");

    // Quit: clean exit, port free.
    click_quit(&bus.conn, &dest, &menu, id_of(&entries, "Quit"));
    let status = agent.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{}", agent.log());
    assert!(agent.log().contains("tray: Quit chosen"), "{}", agent.log());
    assert!(port_is_free(agent.port), "port {} still taken", agent.port);
}

/// No StatusNotifierWatcher on the bus: a warning, the daemon serves anyway,
/// and SIGTERM still stops it cleanly.
#[test]
fn without_a_tray_host_the_agent_warns_and_runs_headless() {
    if !in_session("tray") {
        return;
    }
    let conn = zbus::blocking::Connection::session().unwrap();
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).unwrap();
    wait_for("no watcher on the bus (another test's is released)", || {
        (!dbus
            .name_has_owner(WATCHER_NAME.try_into().unwrap())
            .unwrap())
        .then_some(())
    });
    let mut agent = start_agent(&[]);
    agent.wait_log("no tray host");
    assert!(
        agent.log().contains("running without a tray icon"),
        "{}",
        agent.log()
    );
    let health = health(agent.port);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    agent.sigterm();
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.log());
}

/// `--no-tray`: even with a watcher on the bus, nothing registers.
#[test]
fn no_tray_flag_never_registers_an_item() {
    if !in_session("tray") {
        return;
    }
    let bus = WatcherBus::start();
    let mut agent = start_agent(&["--no-tray"]);
    let health = health(agent.port);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    agent.sigterm();
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.log());
    // The process is gone: whatever it would have registered, it had.
    assert!(bus.items.lock().unwrap().is_empty());
    assert!(!agent.log().contains("tray:"), "{}", agent.log());
}

fn health(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// Service mode: the session agent's tray follows its link to the service.
#[test]
fn the_session_agents_tray_shows_its_link_to_the_service() {
    if !in_session("agent tray") {
        return;
    }
    // Under /run: the service refuses a config.xml in a folder anyone may
    // write (such as /tmp). Service and agent both run as this user here;
    // tests/service_linux.rs covers distinct accounts.
    let root = std::path::PathBuf::from(format!("/run/wsc-tray-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let cfg = root.join("config.xml");
    std::fs::write(
        &cfg,
        format!(
            "<configuration><Mode>service</Mode><Socket-port>0</Socket-port>\
             <AgentSocket>{}</AgentSocket><ServiceUser>{}</ServiceUser>\
             <Timers><AgentRestartDelay>50ms</AgentRestartDelay></Timers></configuration>",
            root.join("agent.sock").display(),
            me.trim()
        ),
    )
    .unwrap();
    let spawn = |args: &[&str]| {
        Command::new(bin())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut service = spawn(&["service", "run"]);
    let _ = banner::read_banner(&mut service, DEADLINE);
    let bus = WatcherBus::start();
    let mut agent = spawn(&["agent"]);
    let (dest, path) = bus.wait_item();
    let menu: OwnedObjectPath = bus.property(&dest, &path, "org.kde.StatusNotifierItem", "Menu");
    let menu = menu.as_str().to_string();
    wait_for("the status line to say connected", || {
        let entries = layout(&bus.conn, &dest, &menu);
        (entries[0].label == "Connected to the wsconnector service").then_some(())
    });
    // The service goes away: the agent's tray says so (and wants attention).
    let _ = service.kill();
    let _ = service.wait();
    wait_for("the status line to say not connected", || {
        let entries = layout(&bus.conn, &dest, &menu);
        entries[0]
            .label
            .starts_with("Not connected to the wsconnector service")
            .then_some(())
    });
    // Quit stops the agent cleanly.
    let entries = layout(&bus.conn, &dest, &menu);
    click_quit(&bus.conn, &dest, &menu, id_of(&entries, "Quit"));
    let status = wait_for("the agent to exit", || agent.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&root);
}
