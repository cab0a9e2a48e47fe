//! Live configuration reload, end to end: the daemon runs from a real
//! config.xml in a temporary folder, the test rewrites the file, and the
//! folder watcher (with a short `ConfigReloadDebounce`) applies it while real
//! websocket clients stay connected. Every wait polls with a deadline.
//!
//! The daemon's log is captured by one global subscriber for this test
//! binary; each test looks only at lines naming its own (unique) file.

mod common;

#[path = "support/banner.rs"]
mod banner;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wsconnector::app::Daemon;
use wsconnector::config::load_file;
use wsconnector::reload::{ReloadError, ReloadStats};

/// Quiet period in the test files: short, but long enough that one
/// `std::fs::write` (truncate, write, close) is one burst.
const DEBOUNCE: &str = "150ms";

const CRM: &str = "https://crm.example.com";
const TOOLBAR: &str = "https://toolbar.example.com";

// ----- log capture -----

/// Every line the daemon logged in this test binary.
fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captured log lines that contain every one of `needles`.
fn log_lines_with(needles: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

// ----- fixture -----

/// A daemon running from `dir/config.xml`.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    daemon: Daemon,
}

/// A whole config.xml: port 0, the short debounce, and `body`.
fn config_xml(body: &str) -> String {
    config_xml_with(DEBOUNCE, body)
}

/// A whole config.xml with the quiet period `debounce`.
fn config_xml_with(debounce: &str, body: &str) -> String {
    format!(
        "<configuration>\n<Socket-port>0</Socket-port>\n\
         <Timers><ConfigReloadDebounce>{debounce}</ConfigReloadDebounce></Timers>\n\
         {body}\n</configuration>\n"
    )
}

/// Saves the way many editors do: a temporary file renamed over config.xml.
fn save_by_rename(path: &Path, xml: &str) {
    let tmp = path.with_file_name(".config.xml.tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(xml.as_bytes()).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn start_from_file(body: &str) -> Fixture {
    start_from_xml(&config_xml(body)).await
}

async fn start_from_xml(xml: &str) -> Fixture {
    log_buffer();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.xml");
    std::fs::write(&path, xml).unwrap();
    let loaded = load_file(&path).unwrap();
    // load_file makes the path absolute; log lines name that form.
    let path = match &loaded.config.source {
        wsconnector::config::ConfigSource::File(p) => p.clone(),
        other => panic!("expected a file source, got {other:?}"),
    };
    let daemon = start(loaded.config).await;
    Fixture {
        _dir: dir,
        path,
        daemon,
    }
}

impl Fixture {
    fn file(&self) -> String {
        self.path.display().to_string()
    }

    async fn connect(&self, origin: Option<&str>) -> Client {
        let mut ws = ws_connect(v4(&self.daemon), &host(&self.daemon), origin).await;
        let hello = next_json(&mut ws).await;
        assert_eq!(hello["type"], "hello", "{hello}");
        ws
    }

    /// Waits until the stats reach `want` (a reload is asynchronous).
    async fn until_stats(&self, want: ReloadStats) {
        let d = &self.daemon;
        let end = tokio::time::Instant::now() + DEADLINE;
        while d.reload_stats() != want {
            assert!(
                tokio::time::Instant::now() < end,
                "reload stats {:?}, expected {want:?}",
                d.reload_stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Sends a request and returns its reply (events that arrive first are skipped).
async fn request(ws: &mut Client, req: Value) -> Value {
    send_json(ws, req).await;
    loop {
        let msg = next_json(ws).await;
        if msg["type"] == "reply" {
            return msg;
        }
    }
}

async fn ok(ws: &mut Client, req: Value) -> Value {
    let reply = request(ws, req.clone()).await;
    assert_eq!(reply["result"], "SUCCESS", "{req} -> {reply}");
    reply
}

async fn error_code(ws: &mut Client, req: Value) -> String {
    let reply = request(ws, req.clone()).await;
    assert_eq!(reply["result"], "FAILURE", "{req} -> {reply}");
    reply["errorCode"].as_str().unwrap().to_string()
}

fn register(env: &str) -> Value {
    json!({"action": "createEnvironment", "environment": env, "clientName": "t"})
}

fn set(env: &str, name: &str, value: &str) -> Value {
    json!({"action": "setContextVariable", "environment": env, "name": name, "value": value})
}

/// The HTTP status of a websocket upgrade from `origin`.
async fn upgrade_status(d: &Daemon, origin: &str) -> u16 {
    raw_http(
        v4(d),
        &upgrade_head(&host(d), &[&format!("Origin: {origin}")]),
    )
    .await
    .status
}

// ----- tests -----

#[tokio::test]
async fn a_removed_origin_is_closed_with_1008_and_the_others_keep_working() {
    let f = start_from_file(&format!("<AllowedHosts>{CRM};{TOOLBAR}</AllowedHosts>")).await;
    let mut crm = f.connect(Some(CRM)).await;
    let mut toolbar = f.connect(Some(TOOLBAR)).await;
    let mut native = f.connect(None).await;
    ok(&mut crm, register("VOICE")).await;
    ok(&mut crm, set("VOICE", "ANI", "3225551234")).await;
    ok(&mut toolbar, register("VOICE")).await;
    ok(
        &mut toolbar,
        json!({"action": "setNotificationsOn", "environment": "VOICE", "name": "*"}),
    )
    .await;
    ok(&mut native, register("VOICE")).await;

    save_by_rename(
        &f.path,
        &config_xml(&format!("<AllowedHosts>{TOOLBAR}</AllowedHosts>")),
    );
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;

    let (code, reason) = close_frame(&mut crm).await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(
        reason.starts_with("origin-no-longer-allowed"),
        "reason {reason:?}"
    );
    // The toolbar still has the data the revoked page wrote, and its subscription.
    let env = ok(
        &mut toolbar,
        json!({"action": "getEnvironment", "environment": "VOICE"}),
    )
    .await;
    assert_eq!(env["data"]["ANI"], "3225551234", "{env}");
    ok(&mut native, set("VOICE", "GEN_T2P", "EvRinging")).await;
    let event = next_json(&mut toolbar).await;
    assert_eq!(event["event"], "ContextChanged", "{event}");
    assert_eq!(event["VarChanged"], "GEN_T2P");
    // New handshakes follow the new file.
    assert_eq!(upgrade_status(&f.daemon, CRM).await, 403);
    assert_eq!(upgrade_status(&f.daemon, TOOLBAR).await, 101);
    // Logged: the summary naming the file, and the closed connection.
    eventually(|| {
        !log_lines_with(&["configuration reloaded from", &f.file(), "1 closed"]).is_empty()
    })
    .await;
    assert!(
        !log_lines_with(&["lost access", CRM, "origin-no-longer-allowed"]).is_empty(),
        "the revocation is logged with the origin"
    );
    f.daemon.shutdown();
}

#[tokio::test]
async fn a_capability_granted_or_removed_takes_effect_on_the_open_connection() {
    let origin = |caps: &str| {
        config_xml(&format!(
            r#"<Origins><Origin url="{CRM}" capabilities="{caps}"/></Origins>"#
        ))
    };
    let f = start_from_file("").await;
    save_by_rename(&f.path, &origin(""));
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;
    let mut crm = f.connect(Some(CRM)).await;
    let get = json!({"action": "getData"});
    assert_eq!(error_code(&mut crm, get.clone()).await, "forbidden");

    save_by_rename(&f.path, &origin("data"));
    f.until_stats(ReloadStats {
        applied: 2,
        rejected: 0,
    })
    .await;
    ok(&mut crm, get.clone()).await;
    ok(&mut crm, register("VOICE")).await;

    save_by_rename(&f.path, &origin("notify"));
    f.until_stats(ReloadStats {
        applied: 3,
        rejected: 0,
    })
    .await;
    assert_eq!(error_code(&mut crm, get).await, "forbidden");
    assert_eq!(
        error_code(&mut crm, set("VOICE", "ANI", "1")).await,
        "forbidden"
    );
    f.daemon.shutdown();
}

#[tokio::test]
async fn read_and_write_allow_lists_change_on_the_open_connection() {
    let lists = |read: &str, write: &str| {
        format!(
            r#"<Origins><Origin url="{CRM}"><Read>{read}</Read><Write>{write}</Write></Origin></Origins>"#
        )
    };
    let f = start_from_file(&lists("VOICE.ANI", "VOICE.ANI")).await;
    let mut crm = f.connect(Some(CRM)).await;
    let mut native = f.connect(None).await;
    ok(&mut crm, register("VOICE")).await;
    ok(&mut native, register("VOICE")).await;
    ok(&mut native, set("VOICE", "SECRET", "s3")).await;
    ok(&mut crm, set("VOICE", "ANI", "1")).await;
    assert_eq!(
        error_code(&mut crm, set("VOICE", "NOTE", "x")).await,
        "forbidden"
    );
    let get = json!({"action": "getEnvironment", "environment": "VOICE"});
    let before = ok(&mut crm, get.clone()).await;
    assert_eq!(before["data"], json!({"ANI": "1"}), "{before}");

    save_by_rename(&f.path, &config_xml(&lists("VOICE.*", "VOICE.*")));
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;
    ok(&mut crm, set("VOICE", "NOTE", "x")).await;
    let after = ok(&mut crm, get.clone()).await;
    assert_eq!(
        after["data"],
        json!({"ANI": "1", "NOTE": "x", "SECRET": "s3"}),
        "{after}"
    );

    // And back: the next event is filtered by the narrower list at once.
    save_by_rename(&f.path, &config_xml(&lists("VOICE.ANI", "")));
    f.until_stats(ReloadStats {
        applied: 2,
        rejected: 0,
    })
    .await;
    assert_eq!(
        error_code(&mut crm, set("VOICE", "ANI", "2")).await,
        "forbidden"
    );
    ok(
        &mut crm,
        json!({"action": "setNotificationsOn", "environment": "VOICE", "name": "*"}),
    )
    .await;
    ok(&mut native, set("VOICE", "SECRET", "s4")).await;
    ok(&mut native, set("VOICE", "ANI", "3")).await;
    let event = next_json(&mut crm).await;
    assert_eq!(
        event["VarChanged"], "ANI",
        "SECRET is no longer readable: {event}"
    );
    f.daemon.shutdown();
}

#[tokio::test]
async fn store_limits_and_rate_limits_change_on_the_open_connection() {
    let f = start_from_file(&format!("<AllowedHosts>{CRM}</AllowedHosts>")).await;
    let mut crm = f.connect(Some(CRM)).await;
    ok(&mut crm, register("VOICE")).await;
    save_by_rename(
        &f.path,
        &config_xml(&format!(
            "<AllowedHosts>{CRM}</AllowedHosts>\
             <Limits><MaxEnvironmentsPerConnection>1</MaxEnvironmentsPerConnection></Limits>\
             <RateLimits><RateLimit action=\"getVersion\" perMinute=\"2\" quarantine=\"1m\"/></RateLimits>"
        )),
    );
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;
    // The registration it has stays; a second one is over the new limit.
    ok(&mut crm, set("VOICE", "ANI", "1")).await;
    assert_eq!(
        error_code(&mut crm, register("EMAIL")).await,
        "limit_exceeded"
    );
    let version = json!({"action": "getVersion"});
    ok(&mut crm, version.clone()).await;
    ok(&mut crm, version.clone()).await;
    assert_eq!(error_code(&mut crm, version).await, "rate_limited");
    f.daemon.shutdown();
}

#[tokio::test]
async fn an_invalid_or_truncated_file_is_rejected_and_the_running_configuration_stays() {
    let f = start_from_file(&format!("<AllowedHosts>{CRM}</AllowedHosts>")).await;
    let mut crm = f.connect(Some(CRM)).await;
    ok(&mut crm, register("VOICE")).await;

    // An invalid value (and the origin gone): nothing of it applies.
    save_by_rename(
        &f.path,
        &config_xml("<Limits><MaxConnections>lots</MaxConnections></Limits>"),
    );
    f.until_stats(ReloadStats {
        applied: 0,
        rejected: 1,
    })
    .await;
    let errors = log_lines_with(&[
        "ERROR",
        "configuration not reloaded",
        &f.file(),
        "Limits/MaxConnections",
        "lots",
    ]);
    assert_eq!(errors.len(), 1, "one ERROR naming file, setting and value");
    ok(&mut crm, set("VOICE", "ANI", "1")).await;
    assert_eq!(upgrade_status(&f.daemon, CRM).await, 101);
    assert_eq!(f.daemon.state.config().limits.max_connections, 256);

    // A file caught empty (an editor truncating before it writes) is
    // rejected too; the complete file that follows is applied.
    std::fs::write(&f.path, "").unwrap();
    f.until_stats(ReloadStats {
        applied: 0,
        rejected: 2,
    })
    .await;
    ok(&mut crm, set("VOICE", "ANI", "2")).await;
    save_by_rename(
        &f.path,
        &config_xml(&format!(
            "<AllowedHosts>{CRM}</AllowedHosts><Limits><MaxConnections>300</MaxConnections></Limits>"
        )),
    );
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 2,
    })
    .await;
    assert_eq!(f.daemon.state.config().limits.max_connections, 300);
    ok(&mut crm, set("VOICE", "ANI", "3")).await;
    assert!(
        !log_lines_with(&[&f.file(), "Limits/MaxConnections = 300"]).is_empty(),
        "the INFO summary names the changed setting"
    );
    f.daemon.shutdown();
}

// Worker threads: the watcher runs while the test writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_successive_writes_coalesce_into_one_reload() {
    let f = start_from_file("").await;
    let limit = |n: usize| {
        config_xml(&format!(
            "<Limits><MaxConnections>{n}</MaxConnections></Limits>"
        ))
    };
    // Twenty saves 10 ms apart (an editor's burst, 200 ms in all): each gap
    // is far inside the 150 ms quiet period, the whole burst is not.
    for n in 300..320 {
        std::fs::write(&f.path, limit(n)).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;
    assert_eq!(f.daemon.state.config().limits.max_connections, 319);
    // One more save, after the burst was applied: exactly one more reload.
    // Had the burst caused two reloads, this would make three.
    save_by_rename(&f.path, &limit(200));
    let end = tokio::time::Instant::now() + DEADLINE;
    while f.daemon.state.config().limits.max_connections != 200 {
        assert!(tokio::time::Instant::now() < end, "last save not applied");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        f.daemon.reload_stats(),
        ReloadStats {
            applied: 2,
            rejected: 0
        }
    );
    f.daemon.shutdown();
}

#[tokio::test]
async fn a_setting_that_needs_a_restart_is_logged_and_keeps_its_running_value() {
    let f = start_from_file(&format!("<AllowedHosts>{CRM}</AllowedHosts>")).await;
    let log_dir = f.path.with_file_name("logs");
    save_by_rename(
        &f.path,
        &config_xml(&format!(
            "<AllowedHosts>{CRM};{TOOLBAR}</AllowedHosts><Socket-type>WS</Socket-type>\
             <Log-path>{}</Log-path>",
            log_dir.display()
        ))
        .replace(
            "<Socket-port>0</Socket-port>",
            "<Socket-port>1</Socket-port>",
        ),
    );
    f.until_stats(ReloadStats {
        applied: 1,
        rejected: 0,
    })
    .await;
    for setting in ["Socket-port", "Log-path"] {
        let lines = log_lines_with(&["WARN", &f.file(), setting, "needs a restart"]);
        assert_eq!(lines.len(), 1, "{setting}: {lines:?}");
    }
    let config = f.daemon.state.config();
    assert_eq!(config.port, 0, "the running port stays");
    assert_eq!(config.log.path, None, "the running log stays");
    // The live part of the same file did apply.
    assert_eq!(upgrade_status(&f.daemon, TOOLBAR).await, 101);
    assert!(!log_dir.exists(), "no log folder was created");
    f.daemon.shutdown();
}

#[tokio::test]
async fn direct_reload_reports_changes_and_embedded_defaults_have_nothing_to_reload() {
    // An hour of quiet: only the direct call reloads.
    let f = start_from_xml(&config_xml_with("1h", "")).await;
    std::fs::write(
        &f.path,
        config_xml_with(
            "1h",
            "<Limits><MaxEnvironments>90</MaxEnvironments></Limits>",
        ),
    )
    .unwrap();
    let reloader = f.daemon.reloader();
    let report = tokio::task::spawn_blocking(move || reloader.reload())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.file, f.path);
    assert_eq!(
        report.applied,
        vec!["Limits/MaxEnvironments = 90".to_string()]
    );
    assert!(report.needs_restart.is_empty());
    assert_eq!(
        f.daemon
            .state
            .tenants
            .single_hub()
            .unwrap()
            .settings()
            .limits
            .max_environments,
        90
    );
    assert_eq!(
        f.daemon.reload_stats(),
        ReloadStats {
            applied: 1,
            rejected: 0
        }
    );
    f.daemon.shutdown();

    let embedded = start(test_config()).await;
    let reloader = embedded.reloader();
    let err = tokio::task::spawn_blocking(move || reloader.reload())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, ReloadError::NoFile);
    embedded.shutdown();
}

/// The real binary: SIGHUP re-reads the file (the watcher's quiet period is
/// an hour here, so only the signal can have done it); a new origin and a
/// new Log-level (INFO to DEBUG: the hub's debug lines appear) take effect.
#[cfg(unix)]
#[test]
fn sighup_reloads_the_configuration_of_the_running_binary() {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.xml");
    let logs = dir.path().join("logs");
    let xml = |hosts: &str, level: &str| {
        format!(
            "<configuration><Socket-port>0</Socket-port><Log-path>{}</Log-path>\
             <Log-level>{level}</Log-level>\
             <Timers><ConfigReloadDebounce>1h</ConfigReloadDebounce></Timers>\
             <AllowedHosts>{hosts}</AllowedHosts></configuration>",
            logs.display()
        )
    };
    std::fs::write(&path, xml(CRM, "INFO")).unwrap();
    /// Kills the daemon if an assertion fails before it is stopped.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // The shared CARGO_TARGET_DIR of parallel worktrees may hold another
    // branch's build here; the panic above then says so.
    const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");
    let child = Command::new(BIN)
        // RUST_LOG would fix the level.
        .env_remove("RUST_LOG")
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let port = banner::port_of(&banner::read_banner(&mut child.0, DEADLINE));
    // The status of an upgrade from `origin`; a refused connection may be
    // reset before its status line is read, so an I/O error is retried.
    let status = |origin: &str, child: &mut std::process::Child| {
        use std::io::Read;
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                panic!("the daemon exited ({exit}): is {BIN} built from this tree?");
            }
            let attempt = (|| -> std::io::Result<String> {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                write!(
                    s,
                    "GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Origin: {origin}\r\n\r\n"
                )?;
                let mut head = [0u8; 12];
                s.read_exact(&mut head)?;
                Ok(String::from_utf8_lossy(&head[9..12]).into_owned())
            })();
            match attempt {
                Ok(code) => return code,
                Err(e) => assert!(Instant::now() < end, "no HTTP status: {e}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(status(TOOLBAR, &mut child.0), "403");
    std::fs::write(&path, xml(&format!("{CRM};{TOOLBAR}"), "DEBUG")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let end = Instant::now() + DEADLINE;
    while status(TOOLBAR, &mut child.0) != "101" {
        assert!(Instant::now() < end, "SIGHUP did not reload in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log_file = logs.join("wsconnector.log");
    let logged = |needle: &str| {
        std::fs::read_to_string(&log_file)
            .unwrap_or_default()
            .contains(needle)
    };
    // "session opened" is a DEBUG line of the hub (the upgrade just made).
    while !(logged("SIGHUP received")
        && logged("configuration reloaded from")
        && logged("session opened"))
    {
        assert!(Instant::now() < end, "reload not logged in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "SIGHUP did not end it"
    );
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The hub side, without sockets: a regrant that fails closes the session
/// with 1008 ahead of what is queued (here its hello); one that succeeds
/// changes the grants the next request is checked against.
#[test]
fn hub_regrant_closes_ahead_of_the_queue_or_changes_the_grants() {
    use wsconnector::config::{Capabilities, Config, VarFilter};
    use wsconnector::hub::{Hub, HubSettings, Outgoing, PeerInfo};
    use wsconnector::peer::OsUser;

    let hub = Hub::new(HubSettings {
        limits: Config::embedded().limits,
        resume_token_ttl: Duration::from_secs(60),
        host_name: "PC".into(),
        user_name: "alice".into(),
        platform: Arc::new(wsconnector::platform::Recording::new()),
        programs: Vec::new(),
        gen_p2c: Default::default(),
        pickup_timeout: Duration::from_secs(30),
        inspector_token: None,
    });
    let peer = PeerInfo {
        os_user: OsUser {
            id: "uid:1".into(),
            name: "alice".into(),
        },
        origin: Some(CRM.into()),
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: Vec::new(),
    };
    let text = |msg: Option<Outgoing>| match msg {
        Some(Outgoing::Text(t)) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    };

    let mut kept = hub.open(peer.clone());
    assert_eq!(text(kept.try_recv())["type"], "hello");
    let out = hub.regrant(kept.id, |p| {
        Ok(PeerInfo {
            capabilities: Capabilities::default(),
            ..p.clone()
        })
    });
    assert_eq!(out.regranted, vec![kept.id]);
    hub.handle(kept.id, r#"{"action":"getData"}"#);
    assert_eq!(text(kept.try_recv())["errorCode"], "forbidden");

    let mut revoked = hub.open(peer);
    let out = hub.regrant(revoked.id, |_| Err("origin-no-longer-allowed: test".into()));
    assert_eq!(out.closed.len(), 1);
    assert_eq!(
        revoked.try_recv(),
        Some(Outgoing::Close {
            code: 1008,
            reason: "origin-no-longer-allowed: test".into()
        }),
        "the close comes before the queued hello"
    );
    hub.handle(revoked.id, r#"{"action":"getData"}"#);
    assert!(
        matches!(revoked.try_recv(), Some(Outgoing::Close { code: 1008, .. })),
        "nothing more is queued for a revoked connection"
    );
}
