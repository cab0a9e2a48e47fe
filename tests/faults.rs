//! Faults survived: `kill -9` of the real daemon process while a toolbar and
//! a CRM client are connected, then a restart on the same port. The
//! toolbar-like native client below reconnects, sees the new epoch in its
//! `resume` snapshot (protocol §4.13, "Epochs and sequence numbers") and
//! re-publishes its `GEN_T2P` state; the CRM client reconnects by itself,
//! resynchronises from its snapshot and ends with exactly the toolbar's
//! state. (The same fault for connector.js in Chromium:
//! tests/browser/faults.test.mjs.)
#![cfg(target_os = "linux")]

#[path = "support/banner.rs"]
mod banner;
mod common;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{next_json, send_json, Client, DEADLINE};
use futures_util::StreamExt;
use process::DaemonProcess;
use serde_json::{json, Map, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// How often a client retries while the daemon is down.
const RETRY: Duration = Duration::from_millis(50);
const ENV: &str = "VOICE";

/// Connects a native client to 127.0.0.1:`port`, retrying until the
/// deadline (the daemon may be down); returns it with its hello.
async fn connect_retrying(port: u16) -> (Client, Value) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let host = format!("localhost:{port}");
    let end = Instant::now() + process::PROCESS_DEADLINE;
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let req = format!("ws://{host}/").into_client_request().unwrap();
            if let Ok(Ok((mut ws, _))) =
                timeout(DEADLINE, tokio_tungstenite::client_async(req, tcp)).await
            {
                let hello = next_json(&mut ws).await;
                assert_eq!(hello["type"], "hello", "{hello}");
                return (ws, hello);
            }
        }
        assert!(Instant::now() < end, "the daemon never came back on {port}");
        tokio::time::sleep(RETRY).await;
    }
}

/// Sends `req` and returns its reply; events before it go to `events`.
async fn request(ws: &mut Client, req: Value, events: &mut Vec<Value>) -> Value {
    let id = req["requestId"].clone();
    send_json(ws, req).await;
    loop {
        let m = next_json(ws).await;
        if m["type"] == "reply" && m["requestId"] == id {
            return m;
        }
        events.push(m);
    }
}

/// Waits until the daemon's end reaches `ws`: EOF or a reset. A killed
/// daemon sends nothing first: no `stopping-service` event, no close frame.
async fn sees_the_end(ws: &mut Client) {
    let end = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("a killed daemon sent {other:?}"),
            }
        }
    };
    timeout(DEADLINE, end)
        .await
        .expect("the client notices the daemon is gone");
}

/// Where a client stands in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    epoch: u64,
    seq: u64,
}

impl Position {
    fn of(m: &Value) -> Position {
        Position {
            epoch: m["epoch"].as_u64().expect("epoch"),
            seq: m["seq"].as_u64().expect("seq"),
        }
    }
}

/// A toolbar-like native client: it owns the call state it publishes
/// (`GEN_T2P` and the call's attributes) and must put it back whenever the
/// daemon lost it, which a new epoch says.
struct Toolbar {
    ws: Client,
    /// The resume token of the last hello.
    token: String,
    /// What the toolbar publishes, in order.
    state: Vec<(String, Value)>,
    /// The last position seen in `ENV`.
    at: Position,
    next_id: u64,
}

impl Toolbar {
    async fn connect(port: u16, state: &[(&str, Value)]) -> Toolbar {
        let (ws, hello) = connect_retrying(port).await;
        let mut t = Toolbar {
            ws,
            token: hello["resumeToken"].as_str().unwrap().to_string(),
            state: state
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            at: Position { epoch: 0, seq: 0 },
            next_id: 1,
        };
        let r = t
            .call(json!({"action":"createEnvironment","environment":ENV,"clientName":"toolbar"}))
            .await;
        t.at = Position::of(&r);
        t.publish().await;
        t
    }

    async fn call(&mut self, mut req: Value) -> Value {
        req["requestId"] = json!(self.next_id);
        self.next_id += 1;
        let r = request(&mut self.ws, req, &mut Vec::new()).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        r
    }

    /// Writes the whole state in one atomic write.
    async fn publish(&mut self) {
        let data: Vec<Value> = self
            .state
            .iter()
            .map(|(k, v)| {
                let mut item = Map::new();
                item.insert(k.clone(), v.clone());
                Value::Object(item)
            })
            .collect();
        let r = self
            .call(json!({"action":"setContextJSON","environment":ENV,"data":data}))
            .await;
        self.at = Position::of(&r);
    }

    /// After losing the daemon: reconnect (retrying until it is back),
    /// `resume`, and re-publish when the environment is on a new epoch.
    /// Returns the resume entry and whether it re-published.
    async fn recover(&mut self, port: u16) -> (Value, bool) {
        let (ws, hello) = connect_retrying(port).await;
        self.ws = ws;
        let old_token = std::mem::replace(
            &mut self.token,
            hello["resumeToken"].as_str().unwrap().to_string(),
        );
        let r = self
            .call(json!({"action":"resume","token":old_token,"environments":[
                {"environment":ENV,"clientName":"toolbar","epoch":self.at.epoch,"seq":self.at.seq,"subscriptions":[]}]}))
            .await;
        let entry = r["data"]["environments"][0].clone();
        let now = Position::of(&entry);
        let lost = now.epoch != self.at.epoch;
        self.at = now;
        if lost {
            self.publish().await;
        }
        (entry, lost)
    }
}

/// A CRM-like native client: subscribed to everything in `ENV`, it keeps a
/// model of the context from its snapshot and the events that follow.
struct Crm {
    ws: Client,
    token: String,
    model: BTreeMap<String, Value>,
    at: Position,
}

impl Crm {
    async fn connect(port: u16) -> Crm {
        let (mut ws, hello) = connect_retrying(port).await;
        let mut ignored = Vec::new();
        let r = request(&mut ws, json!({"action":"createEnvironment","requestId":1,"environment":ENV,"clientName":"crm"}), &mut ignored).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        let r = request(
            &mut ws,
            json!({"action":"setNotificationsOn","requestId":2,"environment":ENV,"name":"*"}),
            &mut ignored,
        )
        .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        Crm {
            ws,
            token: hello["resumeToken"].as_str().unwrap().to_string(),
            model: BTreeMap::new(),
            at: Position::of(&r),
        }
    }

    fn apply(&mut self, ev: &Value) {
        assert_eq!(ev["type"], "event", "{ev}");
        let at = Position::of(ev);
        if at.epoch == self.at.epoch {
            assert_eq!(at.seq, self.at.seq + 1, "no gap, no duplicate: {ev}");
        }
        self.at = at;
        match ev["event"].as_str() {
            Some("ContextChanged") => {
                self.model.insert(
                    ev["VarChanged"].as_str().unwrap().to_string(),
                    ev["ValueChanged"].clone(),
                );
            }
            Some("VarRemoved") => {
                self.model.remove(ev["VarChanged"].as_str().unwrap());
            }
            Some("EnvironmentCleaned") => self.model.clear(),
            other => panic!("unexpected event {other:?}: {ev}"),
        }
    }

    /// Applies events until the model equals `want`.
    async fn until_model(&mut self, want: &BTreeMap<String, Value>) {
        let end = Instant::now() + DEADLINE;
        while &self.model != want {
            assert!(
                Instant::now() < end,
                "CRM model {:?}, want {want:?}",
                self.model
            );
            let ev = next_json(&mut self.ws).await;
            self.apply(&ev);
        }
    }

    /// Reconnects and resumes; returns the resume entry (snapshot or replay).
    async fn recover(&mut self, port: u16) -> Value {
        let (mut ws, hello) = connect_retrying(port).await;
        let old_token = std::mem::replace(
            &mut self.token,
            hello["resumeToken"].as_str().unwrap().to_string(),
        );
        let mut early = Vec::new();
        let r = request(
            &mut ws,
            json!({"action":"resume","requestId":"r","token":old_token,"environments":[
            {"environment":ENV,"clientName":"crm","epoch":self.at.epoch,"seq":self.at.seq,
             "subscriptions":[{"name":"*","values":false}]}]}),
            &mut early,
        )
        .await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        // Nothing of ours is live on the new connection before the reply.
        assert!(
            early.is_empty(),
            "events before the resume reply: {early:?}"
        );
        self.ws = ws;
        let entry = r["data"]["environments"][0].clone();
        match entry["mode"].as_str() {
            Some("snapshot") => {
                self.model = serde_json::from_value(entry["values"].clone()).unwrap();
                self.at = Position::of(&entry);
            }
            Some("replay") => {
                for ev in entry["events"].as_array().unwrap().clone() {
                    self.apply(&ev);
                }
            }
            other => panic!("resume mode {other:?}: {r}"),
        }
        entry
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_toolbar_republishes_on_the_new_epoch_and_crm_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = DaemonProcess::start(dir.path(), "");
    let port = d.port;
    let call_state = [
        ("GEN_T2P", json!("EvEstablished")),
        ("ANI", json!("3225551234")),
        ("InteractionId", json!("0001AaBb")),
        ("QueueWaitSeconds", json!(42)),
    ];
    let want: BTreeMap<String, Value> = call_state
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();

    let mut crm = Crm::connect(port).await;
    let mut toolbar = Toolbar::connect(port, &call_state).await;
    crm.until_model(&want).await;
    let old_epoch = toolbar.at.epoch;
    assert_eq!(crm.at, toolbar.at);

    // kill -9: no close frame, no stopping-service event, nothing flushed.
    let status = d.kill9();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    sees_the_end(&mut crm.ws).await;
    sees_the_end(&mut toolbar.ws).await;

    // Both clients retry on their own while the daemon is down; it comes
    // back on the same port.
    let crm_task = tokio::spawn(async move {
        let entry = crm.recover(port).await;
        (crm, entry)
    });
    let toolbar_task = tokio::spawn(async move {
        let (entry, republished) = toolbar.recover(port).await;
        (toolbar, entry, republished)
    });
    let restarted = Instant::now();
    let d2 = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || DaemonProcess::restart_on(&dir, "", port)
    })
    .await
    .unwrap();
    let (toolbar, t_entry, republished) = timeout(DEADLINE, toolbar_task).await.unwrap().unwrap();
    let (mut crm, c_entry) = timeout(DEADLINE, crm_task).await.unwrap().unwrap();
    println!(
        "after kill -9: restarted on {port}, toolbar resume {t_entry}, CRM resume {c_entry}, both back within {:?}",
        restarted.elapsed()
    );

    // The toolbar saw the new epoch in a snapshot (the old token means
    // nothing to the new daemon) and re-published.
    assert_eq!(t_entry["mode"], "snapshot", "{t_entry}");
    assert_ne!(t_entry["epoch"].as_u64().unwrap(), old_epoch);
    assert!(republished);
    // The CRM got a snapshot on the new epoch too, then the re-published
    // values as events (or already in its snapshot, if the toolbar was first).
    assert_eq!(c_entry["mode"], "snapshot", "{c_entry}");
    assert_eq!(c_entry["epoch"], t_entry["epoch"]);
    crm.until_model(&want).await;
    assert_eq!(crm.at, toolbar.at);

    // A newcomer reads exactly the toolbar's state on the new epoch.
    let (mut fresh, _) = connect_retrying(d2.port).await;
    let r = request(
        &mut fresh,
        json!({"action":"getData","requestId":1}),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(r["data"][ENV], serde_json::to_value(&want).unwrap(), "{r}");
    let log = d2.log();
    assert!(log.contains("websocket connected"), "{log}");
}
