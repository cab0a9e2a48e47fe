//! Service mode for real on Linux (issue 8): the real binary runs
//! `wsconnector service run` as its own unprivileged account, two OS users
//! each run the real `wsconnector agent` and websocket clients (`setpriv`),
//! and the test checks what crosses between them: nothing.
//!
//! The websocket clients are this test binary itself, re-run as the user
//! (`ws_pipe_child`): it connects with the CRM origin, sends each stdin line
//! as a text frame and prints each frame it receives, so the test drives
//! every user's pages from here while the OS sees them as that user's.
//!
//! Needs root (to create users and switch to them); anything missing is a
//! loud SKIPPED line.
#![cfg(target_os = "linux")]

#[path = "support/banner.rs"]
mod banner;
#[path = "support/second_user.rs"]
mod second_user;
#[path = "support/skip.rs"]
mod skip;
#[path = "support/users.rs"]
mod users;

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_wsconnector");
const ORIGIN: &str = "http://crm.test";
/// Upper bound for anything awaited; normally milliseconds.
const DEADLINE: Duration = Duration::from_secs(15);

/// The scenarios share the OS users (and each user's agent): one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Users, or a loud skip.
fn prepared() -> bool {
    match users::ensure(&[users::SERVICE, users::ALICE, users::BOB]) {
        Ok(()) => true,
        Err(why) => {
            skip::skipped("service mode with real OS users", &why);
            false
        }
    }
}

/// A scratch tree the service and the users can reach: under /run (root
/// owned, not world-writable) because the service refuses a config file
/// in a folder others may write, such as /tmp.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let root = PathBuf::from(format!("/run/wsc-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The agent socket's folder belongs to the service account (as
        // systemd's RuntimeDirectory would); marks are where launched
        // programs leave their traces.
        let run = root.join("run");
        std::fs::create_dir(&run).unwrap();
        chown(&run, users::SERVICE);
        let marks = root.join("marks");
        std::fs::create_dir(&marks).unwrap();
        std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o1777)).unwrap();
        Scratch { root }
    }

    fn socket(&self) -> PathBuf {
        self.root.join("run/agent.sock")
    }

    fn config(&self) -> PathBuf {
        self.root.join("config.xml")
    }

    fn mark(&self, name: &str) -> PathBuf {
        self.root.join("marks").join(name)
    }

    /// Writes config.xml: service mode, an ephemeral port, the CRM origin
    /// with every desktop capability, one program (`touch`), fast timers.
    fn write_config(&self, extra: &str) {
        let xml = format!(
            r#"<configuration>
  <Mode>service</Mode>
  <Socket-port>0</Socket-port>
  <Log-level>DEBUG</Log-level>
  <AgentSocket>{socket}</AgentSocket>
  <ServiceUser>{service}</ServiceUser>
  <Origins>
    <Origin url="{ORIGIN}" capabilities="data launch notify" />
  </Origins>
  <Programs>
    <Program name="mark" path="/usr/bin/touch" parameter="^/[A-Za-z0-9._/-]+$" />
  </Programs>
  <RateLimits>
    <RateLimit action="launchProcess" perMinute="6000" quarantine="1s"/>
  </RateLimits>
  <Timers>
    <AgentActionTimeout>5s</AgentActionTimeout>
    <AgentRestartDelay>50ms</AgentRestartDelay>
  </Timers>
  {extra}
</configuration>
"#,
            socket = self.socket().display(),
            service = users::SERVICE,
        );
        std::fs::write(self.config(), xml).unwrap();
        std::fs::set_permissions(self.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn chown(path: &Path, user: &str) {
    let ok = std::process::Command::new("chown")
        .arg(format!("{user}:"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown {user} {}", path.display());
}

/// A child process whose stderr goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Starts `wsconnector service run` as the service account; returns it
/// and its port (from the banner).
async fn start_service(s: &Scratch) -> (Proc, u16) {
    start_service_with(s, &[]).await
}

/// As `start_service`, with extra environment variables.
async fn start_service_with(s: &Scratch, env: &[(&str, String)]) -> (Proc, u16) {
    let log = s.log("service");
    let mut cmd: Command = users::command_as(users::SERVICE, BIN).into();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("--config")
        .arg(s.config())
        .args(["service", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = timeout(DEADLINE, lines.next_line())
        .await
        .expect("service banner in time")
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "service exited without a banner: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Proc { child, log }, banner::port_of(&line))
}

/// Starts `wsconnector agent --no-tray` as `user`.
fn start_agent(s: &Scratch, user: &str, tag: &str) -> Proc {
    let log = s.log(&format!("agent-{tag}"));
    let mut cmd: Command = users::command_as(user, BIN).into();
    cmd.arg("--config")
        .arg(s.config())
        .args(["agent", "--no-tray"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .kill_on_drop(true);
    Proc {
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// One websocket of an OS user, driven through a child process.
struct Page {
    proc: Proc,
    stdin: ChildStdin,
    frames: mpsc::UnboundedReceiver<String>,
    /// Frames that arrived before the reply a `request` waited for.
    early: VecDeque<Value>,
    next_id: u64,
}

impl Page {
    /// Opens a page of `user` on `port` with the CRM origin; returns after
    /// its hello.
    async fn open(s: &Scratch, user: &str, port: u16, tag: &str) -> (Page, Value) {
        Page::open_from(s, user, port, tag, ORIGIN).await
    }

    /// As `open`, from `origin` ("" for a native client).
    async fn open_from(
        s: &Scratch,
        user: &str,
        port: u16,
        tag: &str,
        origin: &str,
    ) -> (Page, Value) {
        let log = s.log(&format!("page-{tag}"));
        let exe = std::env::current_exe().unwrap();
        let mut cmd: Command = users::command_as(user, &exe).into();
        cmd.args([
            "--exact",
            "ws_pipe_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WSC_PIPE_URL", format!("ws://127.0.0.1:{port}/"))
        .env("WSC_PIPE_ORIGIN", origin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // libtest prints "test ws_pipe_child ... " without a line
                // break, so the first frame shares its line.
                if let Some(at) = line.find("WS< ") {
                    let _ = tx.send(line[at + 4..].to_string());
                } else if let Some(at) = line.find("WS# ") {
                    let _ = tx.send(format!("#{}", &line[at + 4..]));
                }
            }
        });
        let mut page = Page {
            proc: Proc { child, log },
            stdin,
            frames,
            early: VecDeque::new(),
            next_id: 0,
        };
        let hello = page.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        (page, hello)
    }

    /// The next frame as JSON; a close shows as `{"close": "code reason"}`.
    async fn next(&mut self) -> Value {
        if let Some(v) = self.early.pop_front() {
            return v;
        }
        self.recv().await
    }

    async fn recv(&mut self) -> Value {
        let frame = timeout(DEADLINE, self.frames.recv())
            .await
            .unwrap_or_else(|_| panic!("no frame in time; page log: {}", self.proc.log_text()))
            .unwrap_or_else(|| panic!("page process ended: {}", self.proc.log_text()));
        match frame.strip_prefix('#') {
            Some(close) => json!({ "close": close }),
            None => serde_json::from_str(&frame).unwrap(),
        }
    }

    /// Sends `request` (with a fresh requestId) and returns its reply;
    /// events arriving first are kept for `next`.
    async fn request(&mut self, mut request: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        request["requestId"] = json!(id);
        eprintln!("-> {request}");
        let mut line = request.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        loop {
            let m = self.recv().await;
            eprintln!("<- {m}");
            if m["type"] == "reply" && m["requestId"] == json!(id) {
                return m;
            }
            self.early.push_back(m);
        }
    }

    async fn register(&mut self, env: &str, client: &str) {
        let r = self
            .request(json!({"action":"createEnvironment","environment":env,"clientName":client}))
            .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
    }

    async fn set(&mut self, env: &str, name: &str, value: &str) {
        let r = self
            .request(
                json!({"action":"setContextVariable","environment":env,"name":name,"value":value}),
            )
            .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
    }

    async fn get(&mut self, env: &str, name: &str) -> Value {
        let r = self
            .request(json!({"action":"getEnvironment","environment":env}))
            .await;
        r["data"][name].clone()
    }

    async fn subscribe_all(&mut self, env: &str) {
        let r = self
            .request(json!({"action":"setNotificationsOn","environment":env,"name":"*"}))
            .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
    }

    /// `launchProcess` of the declared `touch` program on `path`.
    async fn launch_mark(&mut self, path: &Path) -> Value {
        self.request(
            json!({"action":"launchProcess","name":"mark","parameter":path.display().to_string()}),
        )
        .await
    }
}

/// Polls `cond` until it holds or the deadline passes.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Owner uid of a file.
fn owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

/// Launches the mark program from `page` until it succeeds (the agent may
/// still be connecting), then waits for the file and returns its owner.
async fn launch_until_ok(page: &mut Page, mark: &Path) -> u32 {
    let end = Instant::now() + DEADLINE;
    loop {
        let r = page.launch_mark(mark).await;
        if r["result"] == "SUCCESS" {
            break;
        }
        assert_eq!(r["errorCode"], "agent_unavailable", "{r}");
        assert!(
            Instant::now() < end,
            "the agent never became available: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until("the launched program's file", || mark.exists()).await;
    owner(mark).unwrap()
}

/// Not a test: the websocket client the other tests run as another OS user.
#[tokio::test]
#[ignore = "helper process, started by the service-mode tests as another OS user"]
async fn ws_pipe_child() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let url = std::env::var("WSC_PIPE_URL").expect("WSC_PIPE_URL");
    let origin = std::env::var("WSC_PIPE_ORIGIN").expect("WSC_PIPE_ORIGIN");
    let mut req = url.into_client_request().unwrap();
    // An empty origin: a native client (no Origin header).
    if !origin.is_empty() {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connects");
    let (mut tx, mut rx) = ws.split();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(line)) => tx.send(Message::text(line)).await.expect("send"),
                _ => break,
            },
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(t))) => println!("WS< {}", t.as_str()),
                Some(Ok(Message::Close(c))) => {
                    match c {
                        Some(c) => println!("WS# {} {}", u16::from(c.code), c.reason),
                        None => println!("WS# none"),
                    }
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => { println!("WS# error {e}"); break; }
                None => { println!("WS# eof"); break; }
            },
        }
    }
}

#[tokio::test]
async fn two_users_share_nothing_and_actions_reach_only_their_own_agent() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("iso");
    s.write_config("");
    let (mut service, port) = start_service(&s).await;
    let mut agent_a = start_agent(&s, users::ALICE, "alice");
    let mut agent_b = start_agent(&s, users::BOB, "bob");

    let (mut a_toolbar, _) = Page::open(&s, users::ALICE, port, "a-toolbar").await;
    let (mut a_crm, _) = Page::open(&s, users::ALICE, port, "a-crm").await;
    let (mut b_toolbar, _) = Page::open(&s, users::BOB, port, "b-toolbar").await;
    let (mut b_crm, _) = Page::open(&s, users::BOB, port, "b-crm").await;
    for (p, name) in [
        (&mut a_toolbar, "toolbar"),
        (&mut a_crm, "crm"),
        (&mut b_toolbar, "toolbar"),
        (&mut b_crm, "crm"),
    ] {
        p.register("VOICE", name).await;
    }
    a_crm.subscribe_all("VOICE").await;
    b_crm.subscribe_all("VOICE").await;

    // Same environment, same variable, each user's own value and event.
    a_toolbar.set("VOICE", "GEN_T2P", "EvRinging-alice").await;
    b_toolbar.set("VOICE", "GEN_T2P", "EvRinging-bob").await;
    let ev = a_crm.next().await;
    assert_eq!(ev["ValueChanged"], "EvRinging-alice", "{ev}");
    let ev = b_crm.next().await;
    assert_eq!(ev["ValueChanged"], "EvRinging-bob", "{ev}");
    assert_eq!(a_crm.get("VOICE", "GEN_T2P").await, "EvRinging-alice");
    assert_eq!(b_crm.get("VOICE", "GEN_T2P").await, "EvRinging-bob");
    for (p, name) in [(&mut a_crm, users::ALICE), (&mut b_crm, users::BOB)] {
        let r = p.request(json!({"action":"getUser"})).await;
        assert_eq!(r["data"], name, "{r}");
    }
    // `wsconnector ctl` of each user reads that user's store.
    for (user, value) in [
        (users::ALICE, "EvRinging-alice"),
        (users::BOB, "EvRinging-bob"),
    ] {
        let out = users::command_as(user, BIN)
            .arg("--config")
            .arg(s.config())
            .args([
                "ctl",
                "--port",
                &port.to_string(),
                "get",
                "VOICE",
                "GEN_T2P",
                "--raw",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctl as {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            value,
            "ctl as {user}"
        );
    }

    // Actions run in the requesting user's agent, as that user.
    let owner_a = launch_until_ok(&mut a_crm, &s.mark("from-alice")).await;
    let owner_b = launch_until_ok(&mut b_crm, &s.mark("from-bob")).await;
    assert_eq!(
        owner_a,
        users::uid(users::ALICE),
        "alice's launch ran as alice"
    );
    assert_eq!(owner_b, users::uid(users::BOB), "bob's launch ran as bob");

    // Killing alice's agent: her actions fail at once, her data stays,
    // bob is untouched.
    agent_a.kill9().await;
    let end = Instant::now() + DEADLINE;
    loop {
        let r = a_crm.launch_mark(&s.mark("while-dead")).await;
        if r["errorCode"] == "agent_unavailable" {
            break;
        }
        assert!(
            Instant::now() < end,
            "alice's actions still answered after kill -9: {r}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!s.mark("while-dead").exists());
    assert_eq!(a_crm.get("VOICE", "GEN_T2P").await, "EvRinging-alice");
    let owner_b2 = launch_until_ok(&mut b_crm, &s.mark("bob-again")).await;
    assert_eq!(owner_b2, users::uid(users::BOB));
    b_toolbar.set("VOICE", "GEN_T2P", "EvEstablished-bob").await;
    assert_eq!(b_crm.next().await["ValueChanged"], "EvEstablished-bob");

    // Alice's agent comes back: actions work again.
    let mut agent_a2 = start_agent(&s, users::ALICE, "alice-2");
    let owner_a2 = launch_until_ok(&mut a_crm, &s.mark("alice-again")).await;
    assert_eq!(owner_a2, users::uid(users::ALICE));

    // A second agent of bob takes over; the first one stops by itself
    // (rather than the two replacing each other in turn).
    let mut agent_b2 = start_agent(&s, users::BOB, "bob-2");
    let status = timeout(DEADLINE, agent_b.child.wait())
        .await
        .expect("the replaced agent stops")
        .unwrap();
    assert!(status.success(), "{status:?}: {}", agent_b.log_text());
    assert!(
        agent_b.log_text().contains("took over"),
        "{}",
        agent_b.log_text()
    );
    let owner_b3 = launch_until_ok(&mut b_crm, &s.mark("bob-third")).await;
    assert_eq!(owner_b3, users::uid(users::BOB));

    // Each user's own log: the service's lines about a user's connections
    // reach that user's agent (their journal under the user unit), and
    // nobody else's. ("wsc-peer-test" is a prefix of bob's name: match the
    // field with the space after it.)
    let (mut a_late, _) = Page::open(&s, users::ALICE, port, "a-late").await;
    let (mut b_late, _) = Page::open(&s, users::BOB, port, "b-late").await;
    let alice_field = format!("peer_user={} ", users::ALICE);
    let bob_field = format!("peer_user={} ", users::BOB);
    until("alice's agent logs her connection", || {
        agent_a2.log_text().contains(&alice_field)
    })
    .await;
    until("bob's agent logs his connection", || {
        agent_b2.log_text().contains(&bob_field)
    })
    .await;
    let (a_log, b_log) = (agent_a2.log_text(), agent_b2.log_text());
    let line = a_log
        .lines()
        .find(|l| l.contains(&alice_field) && l.contains("websocket connected"))
        .unwrap_or_default();
    assert!(
        line.contains("INFO service: websocket connected") && line.contains("ws{"),
        "the forwarded line keeps level, origin and message: {line}"
    );
    assert!(
        !a_log.contains(users::BOB),
        "alice's log names bob: {a_log}"
    );
    assert!(
        !b_log.contains(&alice_field),
        "bob's log has alice's lines: {b_log}"
    );
    for p in [&mut a_late, &mut b_late] {
        p.proc.kill9().await;
    }

    let log = service.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("context store created for this user"), "{log}");
    for p in [&mut a_toolbar, &mut a_crm, &mut b_toolbar, &mut b_crm] {
        p.proc.kill9().await;
    }
    agent_a2.kill9().await;
    agent_b2.kill9().await;
    service.kill9().await;
}

#[tokio::test]
async fn a_single_user_agent_refuses_to_start_beside_the_service() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("single");
    s.write_config("");
    let (mut service, _port) = start_service(&s).await;
    // Mode = service itself: `run` is not the way to start it.
    let out = users::command_as(users::ALICE, BIN)
        .arg("--config")
        .arg(s.config())
        .args(["run", "--no-tray"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wsconnector service run") && err.contains("wsconnector agent"),
        "{err}"
    );
    // A desktop configuration on a machine where the service runs: refused,
    // naming the service, instead of a second server on another port.
    let desktop = s.root.join("desktop.xml");
    std::fs::write(
        &desktop,
        format!(
            "<configuration><Socket-port>0</Socket-port><AgentSocket>{}</AgentSocket></configuration>",
            s.socket().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&desktop, std::fs::Permissions::from_mode(0o644)).unwrap();
    until("the service's agent socket", || s.socket().exists()).await;
    let out = users::command_as(users::ALICE, BIN)
        .arg("--config")
        .arg(&desktop)
        .args(["run", "--no-tray"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("service is listening for session agents"),
        "{err}"
    );
    service.kill9().await;
}

/// One raw HTTP request to the service as OS user `user`; the whole answer.
fn http_as(user: &str, port: u16, head: &str) -> String {
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/{port}; printf '%s' \"$REQ\" >&3; timeout 10 cat <&3");
    let out = users::command_as(user, "bash")
        .args(["-c", &script])
        .env(
            "REQ",
            format!("{head}\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wsconnector inspect --print-url` as `user`: the one-time URL's token.
fn inspect_token(s: &Scratch, user: &str, port: u16) -> String {
    let out = users::command_as(user, BIN)
        .arg("--config")
        .arg(s.config())
        .args(["inspect", "--print-url", "--port", &port.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inspect as {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim()
        .rsplit_once("token=")
        .expect("token in the URL")
        .1
        .to_string()
}

#[tokio::test]
async fn the_inspector_serves_each_user_only_with_their_own_token() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("inspect");
    s.write_config("");
    let (mut service, port) = start_service(&s).await;

    // Alice's token presented by bob's browser: refused (and burnt).
    let token = inspect_token(&s, users::ALICE, port);
    let r = http_as(
        users::BOB,
        port,
        &format!("GET /inspector?token={token} HTTP/1.1"),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    // Alice's own browser with a fresh token: a session cookie.
    let token = inspect_token(&s, users::ALICE, port);
    let r = http_as(
        users::ALICE,
        port,
        &format!("GET /inspector?token={token} HTTP/1.1"),
    );
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    let cookie = r
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let page = format!("GET /inspector HTTP/1.1\r\nCookie: {cookie}");
    let r = http_as(users::ALICE, port, &page);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // The same cookie from bob's browser opens nothing.
    let r = http_as(users::BOB, port, &page);
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");

    // Without the shared folder (how `inspect` and the tray work on
    // Windows): a native client of alice asks the service for a token.
    let (mut native, _) = Page::open_from(&s, users::ALICE, port, "a-native", "").await;
    let (mut web, _) = Page::open(&s, users::ALICE, port, "a-web").await;
    let r = web.request(json!({"action":"getInspectorToken"})).await;
    assert_eq!(r["errorCode"], "forbidden", "a web page gets no token: {r}");
    let r = native.request(json!({"action":"getInspectorToken"})).await;
    let token = r["data"].as_str().expect("a token").to_string();
    assert_eq!(token.len(), 32, "{r}");
    let open = format!("GET /inspector?token={token} HTTP/1.1");
    let r = http_as(users::BOB, port, &open);
    assert!(r.starts_with("HTTP/1.1 403"), "bob's browser: {r}");
    let r = http_as(users::ALICE, port, &open);
    assert!(r.starts_with("HTTP/1.1 303"), "alice's browser: {r}");
    let r = http_as(users::ALICE, port, &open);
    assert!(r.starts_with("HTTP/1.1 403"), "used once only: {r}");
    // A wrong guess burns the waiting token too.
    let r = native.request(json!({"action":"getInspectorToken"})).await;
    let token = r["data"].as_str().expect("a token").to_string();
    let r = http_as(
        users::ALICE,
        port,
        "GET /inspector?token=00000000000000000000000000000000 HTTP/1.1",
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http_as(
        users::ALICE,
        port,
        &format!("GET /inspector?token={token} HTTP/1.1"),
    );
    assert!(
        r.starts_with("HTTP/1.1 403"),
        "burnt by the wrong guess: {r}"
    );
    for p in [&mut native, &mut web] {
        p.proc.kill9().await;
    }
    service.kill9().await;
}

/// A private bus configured like the system bus (EXTERNAL auth, anyone may
/// connect), standing in for the machine's: no logind runs here.
struct Bus {
    child: std::process::Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bus(s: &Scratch) -> Option<Bus> {
    let socket = s.root.join("system_bus_socket");
    let config = s.root.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let child = match std::process::Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            skip::skipped(
                "wiping a user's context at logoff",
                &format!("dbus-daemon cannot run ({e}); apt-get install dbus-daemon"),
            );
            return None;
        }
    };
    let end = Instant::now() + DEADLINE;
    while !socket.exists() {
        assert!(Instant::now() < end, "the private bus did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(Bus {
        child,
        address: format!("unix:path={}", socket.display()),
    })
}

/// A connection to `address`; owning `org.freedesktop.login1` when
/// `as_logind` (the stand-in logind stays on the bus like the real one).
fn bus_connection(address: &str, as_logind: bool) -> zbus::blocking::Connection {
    let mut builder = zbus::blocking::connection::Builder::address(address).unwrap();
    if as_logind {
        builder = builder.name("org.freedesktop.login1").unwrap();
    }
    builder.build().unwrap()
}

/// Emits logind's `UserRemoved(uid)` from `conn`.
fn emit_user_removed(conn: &zbus::blocking::Connection, uid: u32) {
    let path = zbus::zvariant::ObjectPath::try_from(format!("/org/freedesktop/login1/user/_{uid}"))
        .unwrap();
    conn.emit_signal(
        None::<()>,
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "UserRemoved",
        &(uid, path),
    )
    .unwrap();
}

#[tokio::test]
async fn a_users_last_logoff_wipes_their_context_and_nobody_elses() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("logoff");
    s.write_config("");
    let Some(bus) = start_bus(&s) else { return };
    let (mut service, port) =
        start_service_with(&s, &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address.clone())]).await;
    until("the service watches logind", || {
        service.log_text().contains("watching logind")
    })
    .await;

    let (mut alice, _) = Page::open(&s, users::ALICE, port, "a").await;
    let (mut bob, _) = Page::open(&s, users::BOB, port, "b").await;
    alice.register("VOICE", "crm").await;
    bob.register("VOICE", "crm").await;
    alice.set("VOICE", "call", "alice-call").await;
    bob.set("VOICE", "call", "bob-call").await;

    let address = bus.address.clone();
    let logind = tokio::task::spawn_blocking(move || bus_connection(&address, true))
        .await
        .unwrap();
    // A forged UserRemoved for bob from a program that is not logind.
    let bob_uid = users::uid(users::BOB);
    let address = bus.address.clone();
    tokio::task::spawn_blocking(move || {
        emit_user_removed(&bus_connection(&address, false), bob_uid)
    })
    .await
    .unwrap();
    // (The bus does not even deliver it: the match rule names logind as the
    // sender. The watcher would also drop it after comparing the sender
    // with the name's owner.)
    // logind says alice's last session ended.
    let alice_uid = users::uid(users::ALICE);
    let stand_in = logind.clone();
    tokio::task::spawn_blocking(move || emit_user_removed(&stand_in, alice_uid))
        .await
        .unwrap();
    let closed = alice.next().await;
    assert_eq!(
        closed,
        json!({"close": "1001 user-session-ended"}),
        "service log: {}",
        service.log_text()
    );
    // Bob keeps his page and his data; alice's next session starts empty.
    assert_eq!(bob.get("VOICE", "call").await, "bob-call");
    let (mut alice2, _) = Page::open(&s, users::ALICE, port, "a2").await;
    alice2.register("VOICE", "crm").await;
    assert_eq!(alice2.get("VOICE", "call").await, Value::Null);
    let log = service.log_text();
    assert!(log.contains("context store was wiped"), "{log}");
    for p in [&mut alice, &mut bob, &mut alice2] {
        p.proc.kill9().await;
    }
    service.kill9().await;
    drop(bus);
}

/// Not a test: an agent of the running OS user that claims to be someone
/// else (`WSC_CLAIM_USER`) on the service socket `WSC_CLAIM_SOCKET`; prints
/// the service's answer.
#[tokio::test]
#[ignore = "helper process, started by the service-mode tests as another OS user"]
async fn unix_claim_child() {
    use tokio::io::AsyncReadExt;
    let path = std::env::var("WSC_CLAIM_SOCKET").expect("WSC_CLAIM_SOCKET");
    let claim = std::env::var("WSC_CLAIM_USER").expect("WSC_CLAIM_USER");
    let mut s = tokio::net::UnixStream::connect(path)
        .await
        .expect("connects");
    let hello = json!({"type": "hello", "version": 1, "user": claim, "pid": std::process::id()});
    s.write_all(format!("{hello}\n").as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = timeout(DEADLINE, s.read_to_string(&mut answer)).await;
    println!("LINK< {}", answer.trim());
}

/// Not a test: a fake "service" socket at `WSC_FAKE_SOCKET` served by the
/// running OS user; prints READY, then how many bytes its one client sent.
#[tokio::test]
#[ignore = "helper process, started by the service-mode tests as another OS user"]
async fn fake_service_child() {
    use tokio::io::AsyncReadExt;
    let path = std::env::var("WSC_FAKE_SOCKET").expect("WSC_FAKE_SOCKET");
    let listener = tokio::net::UnixListener::bind(&path).expect("binds");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    println!("READY");
    let (mut s, _) = timeout(DEADLINE, listener.accept())
        .await
        .expect("a client")
        .unwrap();
    let mut got = Vec::new();
    let _ = timeout(Duration::from_secs(2), s.read_to_end(&mut got)).await;
    println!("GOT {}", got.len());
}

/// Runs one of the helper children above as `user`; its stdout.
async fn child_as(user: &str, test: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd: Command = users::command_as(user, &exe).into();
    cmd.args([
        "--exact",
        test,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[tokio::test]
async fn an_agent_cannot_claim_another_user_nor_be_fooled_by_a_fake_service() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("claims");
    s.write_config("");
    let (mut service, port) = start_service(&s).await;
    until("the agent socket", || s.socket().exists()).await;

    // Bob's program says it is alice's agent: refused, never registered.
    let alice_id = format!("uid:{}", users::uid(users::ALICE));
    let claim = child_as(
        users::BOB,
        "unix_claim_child",
        &[
            ("WSC_CLAIM_SOCKET", s.socket().display().to_string()),
            ("WSC_CLAIM_USER", alice_id.clone()),
        ],
    )
    .await;
    let out = timeout(DEADLINE, claim.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains(r#""type":"refused""#), "{out}");
    assert!(!out.contains("welcome"), "{out}");
    // The service logs the refusal after sending it: wait for the line.
    let claimed = format!("claimed to be {alice_id}");
    until("the service logs the false claim", || {
        service.log_text().contains(&claimed)
    })
    .await;
    let (mut alice, _) = Page::open(&s, users::ALICE, port, "a").await;
    let r = alice.launch_mark(&s.mark("claimed")).await;
    assert_eq!(r["errorCode"], "agent_unavailable", "{r}");
    assert!(!s.mark("claimed").exists());

    // A fake service: bob serves a socket and alice's agent is pointed at
    // it. The agent checks who serves it and sends nothing.
    let fake_dir = s.root.join("fake");
    std::fs::create_dir(&fake_dir).unwrap();
    chown(&fake_dir, users::BOB);
    let fake_socket = fake_dir.join("agent.sock");
    let mut fake = child_as(
        users::BOB,
        "fake_service_child",
        &[("WSC_FAKE_SOCKET", fake_socket.display().to_string())],
    )
    .await;
    let mut fake_out = BufReader::new(fake.stdout.take().unwrap()).lines();
    loop {
        let line = timeout(DEADLINE, fake_out.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("READY");
        if line.contains("READY") {
            break;
        }
    }
    let fake_config = s.root.join("fake.xml");
    std::fs::write(
        &fake_config,
        format!(
            "<configuration><Mode>service</Mode><Socket-port>0</Socket-port>\
             <AgentSocket>{}</AgentSocket><ServiceUser>{}</ServiceUser>\
             <Timers><AgentRestartDelay>5s</AgentRestartDelay></Timers></configuration>",
            fake_socket.display(),
            users::SERVICE
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake_config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = s.log("agent-fooled");
    let mut agent = Proc {
        child: {
            let mut cmd: Command = users::command_as(users::ALICE, BIN).into();
            cmd.arg("--config")
                .arg(&fake_config)
                .args(["agent", "--no-tray"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .kill_on_drop(true);
            cmd.spawn().unwrap()
        },
        log,
    };
    until("the agent refuses the fake service", || {
        agent
            .log_text()
            .contains("its server runs as wsc-peer-test2")
    })
    .await;
    let mut sent = String::new();
    loop {
        match timeout(DEADLINE, fake_out.next_line())
            .await
            .unwrap()
            .unwrap()
        {
            Some(line) if line.contains("GOT ") => {
                sent = line;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        sent.ends_with("GOT 0"),
        "the agent sent something to a fake service: {sent:?}"
    );
    agent.kill9().await;
    alice.proc.kill9().await;
    service.kill9().await;
}

/// `service run` on `config` as the service account: exit code and stderr.
fn service_refusal(config: &Path) -> (Option<i32>, String) {
    let out = users::command_as(users::SERVICE, BIN)
        .arg("--config")
        .arg(config)
        .args(["service", "run"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_service_refuses_a_configuration_users_could_change() {
    let _serial = SERIAL.lock().await;
    if !prepared() {
        return;
    }
    let s = Scratch::new("guard");
    s.write_config("");
    // Writable by its group.
    std::fs::set_permissions(s.config(), std::fs::Permissions::from_mode(0o664)).unwrap();
    let (code, err) = service_refusal(&s.config());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("writable by its group or by everyone") && err.contains("chmod go-w"),
        "{err}"
    );
    // Owned by an ordinary user (who could rewrite it).
    std::fs::set_permissions(s.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    chown(&s.config(), users::ALICE);
    let (code, err) = service_refusal(&s.config());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("owned by an ordinary user"), "{err}");
    // In a folder a user owns (they could swap the file).
    chown(&s.config(), "root");
    let user_dir = s.root.join("alice-dir");
    std::fs::create_dir(&user_dir).unwrap();
    let moved = user_dir.join("config.xml");
    std::fs::copy(s.config(), &moved).unwrap();
    chown(&user_dir, users::ALICE);
    let (code, err) = service_refusal(&moved);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&user_dir.display().to_string()), "{err}");
    // Under /tmp (sticky, world-writable).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let in_tmp = tmp.path().join("config.xml");
    std::fs::copy(s.config(), &in_tmp).unwrap();
    let (code, err) = service_refusal(&in_tmp);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("anyone may create files in"), "{err}");
    // The root-owned 0644 file in root-owned folders starts (the other tests).
}
