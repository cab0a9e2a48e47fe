//! Service mode's per-user context stores, in process: a peer identity that
//! maps each client's source port to a user stands in for the OS lookup, so
//! two "users" can connect from one test process. tests/service_linux.rs
//! proves the same with real OS users, the real service binary and real
//! session agents.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsconnector::app::{self, Daemon};
use wsconnector::config::{Capabilities, Config, Mode};
use wsconnector::peer::{OsUser, PeerError, PeerIdentity};

/// Owner of each client socket by its source port; unknown ports fail.
#[derive(Default)]
struct PortUsers {
    by_port: Mutex<HashMap<u16, OsUser>>,
}

impl PeerIdentity for PortUsers {
    fn owner_of(&self, peer: SocketAddr, local: SocketAddr) -> Result<OsUser, PeerError> {
        self.by_port
            .lock()
            .unwrap()
            .get(&peer.port())
            .cloned()
            .ok_or(PeerError::NotFound { peer, local })
    }
    fn current_user(&self) -> OsUser {
        user("wsconnector", 990)
    }
}

fn user(name: &str, uid: u32) -> OsUser {
    OsUser {
        id: format!("uid:{uid}"),
        name: name.into(),
    }
}

fn service_config() -> Config {
    let mut c = test_config();
    c.mode = Mode::Service;
    // The CRM page may also launch programs and notify: in service mode
    // those go to the user's session agent (none here: agent_unavailable).
    c.origins[0].capabilities = Capabilities::ALL;
    c
}

struct Service {
    daemon: Daemon,
    users: Arc<PortUsers>,
}

async fn service() -> Service {
    let users = Arc::new(PortUsers::default());
    let daemon = app::start(service_config(), users.clone())
        .await
        .expect("service starts");
    Service { daemon, users }
}

impl Service {
    /// A websocket of `who` (with the CRM origin unless `native`).
    async fn connect(&self, who: &OsUser, native: bool) -> (Client, Value) {
        let addr = v4(&self.daemon);
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        self.users.by_port.lock().unwrap().insert(port, who.clone());
        let tcp = socket.connect(addr).await.unwrap();
        let mut req = format!("ws://{}/", host(&self.daemon))
            .into_client_request()
            .unwrap();
        if !native {
            req.headers_mut()
                .insert("origin", "https://crm.example.com".parse().unwrap());
        }
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
        let hello = next_json(&mut ws).await;
        (ws, hello)
    }
}

/// Sends `v` and returns its reply (events that arrive first are skipped).
async fn request(ws: &mut Client, v: Value) -> Value {
    let id = v["requestId"].clone();
    send_json(ws, v).await;
    loop {
        let m = next_json(ws).await;
        if m["type"] == "reply" && m["requestId"] == id {
            return m;
        }
    }
}

async fn register(ws: &mut Client, env: &str, name: &str) {
    let r = request(
        ws,
        json!({"action":"createEnvironment","requestId":"reg","environment":env,"clientName":name}),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
}

async fn set(ws: &mut Client, env: &str, name: &str, value: &str) {
    let r = request(ws, json!({"action":"setContextVariable","requestId":"set","environment":env,"name":name,"value":value})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
}

/// The value of `env.name` as this connection reads it (null when unset
/// or when the environment does not exist in its store).
async fn get(ws: &mut Client, env: &str, name: &str) -> Value {
    let r = request(
        ws,
        json!({"action":"getEnvironment","requestId":"get","environment":env}),
    )
    .await;
    r["data"][name].clone()
}

#[tokio::test]
async fn each_user_has_their_own_store_events_and_name() {
    let s = service().await;
    let (alice, bob) = (user("alice", 1001), user("bob", 1002));
    let (mut a_toolbar, _) = s.connect(&alice, false).await;
    let (mut a_crm, _) = s.connect(&alice, false).await;
    let (mut b_toolbar, _) = s.connect(&bob, false).await;
    let (mut b_crm, _) = s.connect(&bob, false).await;
    for (ws, who) in [
        (&mut a_toolbar, "toolbar"),
        (&mut a_crm, "crm"),
        (&mut b_toolbar, "toolbar"),
        (&mut b_crm, "crm"),
    ] {
        register(ws, "VOICE", who).await;
    }
    for ws in [&mut a_crm, &mut b_crm] {
        let r = request(ws, json!({"action":"setNotificationsOn","requestId":"sub","environment":"VOICE","name":"*"})).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
    }
    assert_eq!(s.daemon.state.tenants.users().len(), 2);

    // The same environment and variable names, different values per user.
    set(&mut a_toolbar, "VOICE", "GEN_T2P", "EvRinging-alice").await;
    let ev = next_json(&mut a_crm).await;
    assert_eq!(ev["type"], "event", "{ev}");
    assert_eq!(ev["VarChanged"], "GEN_T2P", "{ev}");
    set(&mut b_toolbar, "VOICE", "GEN_T2P", "EvRinging-bob").await;
    let ev = next_json(&mut b_crm).await;
    assert_eq!(ev["VarChanged"], "GEN_T2P", "{ev}");

    let a = get(&mut a_crm, "VOICE", "GEN_T2P").await;
    let b = get(&mut b_crm, "VOICE", "GEN_T2P").await;
    assert_eq!(a, "EvRinging-alice");
    assert_eq!(b, "EvRinging-bob");

    // Bob's page got exactly one event: alice's write never reached it.
    // A marker write by bob's toolbar must be the very next thing it sees.
    set(&mut a_toolbar, "VOICE", "GEN_T2P", "EvEstablished-alice").await;
    set(&mut b_toolbar, "VOICE", "marker", "m").await;
    let next = next_json(&mut b_crm).await;
    assert_eq!(
        next["VarChanged"], "marker",
        "bob saw alice's event: {next}"
    );

    // getUser names the connection's own user.
    for (ws, name) in [(&mut a_crm, "alice"), (&mut b_crm, "bob")] {
        let r = request(ws, json!({"action":"getUser","requestId":"u"})).await;
        assert_eq!(r["data"], name, "{r}");
    }
}

#[tokio::test]
async fn native_clients_of_any_user_reach_their_own_store() {
    let s = service().await;
    let (alice, bob) = (user("alice", 1001), user("bob", 1002));
    let (mut a_page, _) = s.connect(&alice, false).await;
    register(&mut a_page, "CRM", "page").await;
    set(&mut a_page, "CRM", "case", "42").await;
    // In single-user mode another user's native client is refused; here
    // each user's fat client is served from that user's store.
    let (mut a_native, _) = s.connect(&alice, true).await;
    let (mut b_native, _) = s.connect(&bob, true).await;
    register(&mut a_native, "CRM", "fat-client").await;
    register(&mut b_native, "CRM", "fat-client").await;
    assert_eq!(get(&mut a_native, "CRM", "case").await, "42");
    let b = get(&mut b_native, "CRM", "case").await;
    assert_eq!(b, Value::Null, "bob must not see alice's CRM");
}

#[tokio::test]
async fn desktop_actions_without_an_agent_answer_agent_unavailable_and_data_keeps_working() {
    let s = service().await;
    let alice = user("alice", 1001);
    let (mut page, _) = s.connect(&alice, false).await;
    let r = request(
        &mut page,
        json!({"action":"showNotification","requestId":"n","title":"Call","message":"from 555"}),
    )
    .await;
    assert_eq!(r["result"], "FAILURE", "{r}");
    assert_eq!(r["errorCode"], "agent_unavailable", "{r}");
    register(&mut page, "VOICE", "crm").await;
    set(&mut page, "VOICE", "x", "still works").await;
    assert_eq!(get(&mut page, "VOICE", "x").await, "still works");
}

#[tokio::test]
async fn a_users_last_session_ending_wipes_only_their_store() {
    let s = service().await;
    let (alice, bob) = (user("alice", 1001), user("bob", 1002));
    let (mut a_page, _) = s.connect(&alice, false).await;
    let (mut b_page, _) = s.connect(&bob, false).await;
    register(&mut a_page, "VOICE", "crm").await;
    register(&mut b_page, "VOICE", "crm").await;
    set(&mut a_page, "VOICE", "call", "a").await;
    set(&mut b_page, "VOICE", "call", "b").await;

    assert!(s
        .daemon
        .state
        .tenants
        .end_user(&alice.id, wsconnector::service::run::SESSION_ENDED));
    assert_eq!(
        close_frame(&mut a_page).await,
        Some((1001, "user-session-ended".into()))
    );
    // Bob is untouched.
    assert_eq!(get(&mut b_page, "VOICE", "call").await, "b");
    // Alice's next session starts empty.
    let (mut a_again, _) = s.connect(&alice, false).await;
    let r = get(&mut a_again, "VOICE", "call").await;
    assert_eq!(r, Value::Null, "alice's data was not wiped");
    assert!(!s.daemon.state.tenants.end_user("uid:4242", "x"));
}

#[tokio::test]
async fn a_reload_re_decides_every_users_connections_in_their_own_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.xml");
    // The watcher waits 10 minutes: only the explicit reloads below apply.
    let xml = |origins: &str| {
        format!(
            "<configuration><Mode>service</Mode><Socket-port>0</Socket-port>\
             <Timers><ConfigReloadDebounce>10m</ConfigReloadDebounce></Timers>\
             <Origins>{origins}</Origins></configuration>"
        )
    };
    std::fs::write(
        &path,
        xml(r#"<Origin url="https://crm.example.com" capabilities="data notify"/>"#),
    )
    .unwrap();
    let loaded = wsconnector::config::load_file(&path).unwrap();
    let users = Arc::new(PortUsers::default());
    let daemon = app::start(loaded.config, users.clone()).await.unwrap();
    let s = Service { daemon, users };
    let (alice, bob) = (user("alice", 1001), user("bob", 1002));
    let (mut a_page, _) = s.connect(&alice, false).await;
    let (mut b_page, _) = s.connect(&bob, false).await;
    let (mut b_native, _) = s.connect(&bob, true).await;
    register(&mut b_native, "VOICE", "fat").await;
    set(&mut b_native, "VOICE", "kept", "yes").await;

    // notify withdrawn: both users' pages lose it, in their own stores.
    std::fs::write(
        &path,
        xml(r#"<Origin url="https://crm.example.com" capabilities="data"/>"#),
    )
    .unwrap();
    let report = s.daemon.reload_config().unwrap();
    assert_eq!(report.regranted, 2, "{report:?}");
    for page in [&mut a_page, &mut b_page] {
        let r = request(
            page,
            json!({"action":"showNotification","requestId":"n","title":"t","message":"m"}),
        )
        .await;
        assert_eq!(r["errorCode"], "forbidden", "{r}");
    }
    // The origin removed: every user's page closes with 1008; bob's native
    // client and his data stay.
    std::fs::write(&path, xml("")).unwrap();
    let report = s.daemon.reload_config().unwrap();
    assert_eq!(report.closed.len(), 2, "{report:?}");
    for page in [&mut a_page, &mut b_page] {
        let (code, reason) = close_frame(page).await.unwrap();
        assert_eq!(code, 1008);
        assert!(reason.starts_with("origin-no-longer-allowed"), "{reason}");
    }
    assert_eq!(get(&mut b_native, "VOICE", "kept").await, "yes");
}
