//! The hub driven synchronously through its public API: every action and
//! error code, no-echo, subscriptions, the state table, atomic bulk writes,
//! typed values, limits, resume/replay, epochs and slow consumers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsconnector::config::{Capabilities, Config, Limits, VarFilter};
use wsconnector::hub::{Hub, HubSettings, Outgoing, PeerInfo, Session};
use wsconnector::peer::OsUser;

fn limits() -> Limits {
    Config::embedded().limits
}

fn settings_with(limits: Limits) -> HubSettings {
    HubSettings {
        limits,
        resume_token_ttl: Duration::from_secs(60),
        host_name: "PC-042".into(),
        user_name: "daemon-user".into(),
        platform: Arc::new(wsconnector::platform::Recording::new()),
        programs: Vec::new(),
        gen_p2c: Default::default(),
        pickup_timeout: Duration::from_secs(30),
        inspector_token: None,
    }
}

fn hub() -> Hub {
    Hub::new(settings_with(limits()))
}

fn peer() -> PeerInfo {
    PeerInfo {
        os_user: OsUser {
            id: "uid:1000".into(),
            name: "alice".into(),
        },
        origin: Some("https://crm.example.com".into()),
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: Vec::new(),
    }
}

fn native() -> PeerInfo {
    PeerInfo {
        origin: None,
        ..peer()
    }
}

/// One connection seen from the client side.
struct Client {
    hub: Hub,
    session: Session,
    hello: Value,
    /// Events received while waiting for replies.
    events: Vec<Value>,
}

fn text(msg: Outgoing) -> Value {
    match msg {
        Outgoing::Text(t) => serde_json::from_str(t.as_str()).expect("valid JSON"),
        Outgoing::Close { code, reason } => panic!("unexpected close {code} {reason}"),
    }
}

impl Client {
    fn open(hub: &Hub, peer: PeerInfo) -> Client {
        let mut session = hub.open(peer);
        let hello = text(session.try_recv().expect("hello first"));
        Client {
            hub: hub.clone(),
            session,
            hello,
            events: Vec::new(),
        }
    }

    fn token(&self) -> String {
        self.hello["resumeToken"].as_str().unwrap().to_string()
    }

    fn drain(&mut self) {
        while let Some(m) = self.session.try_recv() {
            let v = text(m);
            assert_eq!(v["type"], "event", "unexpected message {v}");
            self.events.push(v);
        }
    }

    /// Sends a raw frame and returns its one reply.
    fn raw(&mut self, frame: &str) -> Value {
        self.drain();
        self.hub.handle(self.session.id, frame);
        let reply = text(self.session.try_recv().expect("a reply"));
        assert_eq!(reply["type"], "reply", "{reply}");
        assert!(
            self.session.try_recv().is_none(),
            "exactly one message per request"
        );
        reply
    }

    fn req(&mut self, v: Value) -> Value {
        self.raw(&v.to_string())
    }

    fn ok(&mut self, v: Value) -> Value {
        let r = self.req(v.clone());
        assert_eq!(r["result"], "SUCCESS", "{v} -> {r}");
        assert!(r.get("errorCode").is_none());
        r
    }

    fn fail(&mut self, v: Value, code: &str) -> Value {
        let r = self.req(v.clone());
        assert_eq!(r["result"], "FAILURE", "{v} -> {r}");
        assert_eq!(r["errorCode"], code, "{v} -> {r}");
        assert!(r["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
        r
    }

    fn take_events(&mut self) -> Vec<Value> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    fn register(&mut self, env: &str, client: &str) -> Value {
        self.ok(json!({"action": "createEnvironment", "environment": env, "clientName": client}))
    }

    fn subscribe(&mut self, env: &str, name: &str, values: bool) {
        self.ok(json!({"action": "setNotificationsOn", "environment": env, "name": name, "values": values}));
    }

    fn set(&mut self, env: &str, name: &str, value: Value) -> Value {
        self.ok(json!({"action": "setContextVariable", "environment": env, "name": name, "value": value}))
    }

    fn get(&mut self, env: &str) -> Value {
        self.ok(json!({"action": "getEnvironment", "environment": env}))["data"].clone()
    }

    fn close(self) {
        self.hub.close(self.session.id);
    }
}

#[test]
fn hello_is_first_and_complete() {
    let h = hub();
    let c = Client::open(&h, peer());
    assert_eq!(c.hello["type"], "hello");
    assert_eq!(c.hello["protocol"], 1);
    assert_eq!(c.hello["product"], "wsconnector");
    assert_eq!(c.hello["version"], wsconnector::VERSION);
    assert_eq!(c.hello["capabilities"], json!(["data"]));
    assert_eq!(c.hello["user"], "alice");
    assert_eq!(c.hello["native"], false);
    assert_eq!(c.hello["origin"], "https://crm.example.com");
    let token = c.token();
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|ch| ch.is_ascii_hexdigit()));
    let n = Client::open(&h, native());
    assert_eq!(n.hello["native"], true);
    assert_eq!(n.hello["origin"], Value::Null);
    assert_ne!(n.token(), token, "tokens are random per connection");
    assert_eq!(h.connection_count(), 2);
    c.close();
    assert_eq!(h.connection_count(), 1);
}

#[test]
fn info_actions() {
    let h = hub();
    let mut c = Client::open(&h, peer());
    let r = c.ok(json!({"action": "getVersion", "requestId": 1}));
    assert_eq!(r["data"], wsconnector::VERSION);
    assert_eq!(r["requestId"], 1);
    assert_eq!(r["action"], "getVersion");
    assert_eq!(c.ok(json!({"action": "getHost"}))["data"], "PC-042");
    assert_eq!(c.ok(json!({"action": "getUser"}))["data"], "alice");
}

#[test]
fn every_data_action_succeeds() {
    let h = hub();
    let mut c = Client::open(&h, peer());
    let r = c.register("VOICE", "crm");
    assert_eq!(
        r["data"],
        json!({"environment": "VOICE", "clientName": "crm", "created": true})
    );
    assert_eq!(r["seq"], 0);
    let epoch = r["epoch"].as_u64().unwrap();
    c.register("EMAIL", "crm");
    let r = c.set("VOICE", "ANI", json!("3225551234"));
    assert_eq!(
        (r["epoch"].as_u64(), r["seq"].as_u64()),
        (Some(epoch), Some(1))
    );
    let r = c.ok(
        json!({"action": "setContextJSON", "environment": "VOICE", "data": [{"a": 1}, {"b": 2}]}),
    );
    assert_eq!(r["seq"], 3);
    let r = c.ok(json!({"action": "setAllJSON", "data": [
        {"environment": "VOICE", "data": {"c": 3}},
        {"environment": "EMAIL", "data": {"subject": "hi"}}
    ]}));
    assert_eq!(r["data"]["environments"][0]["seq"], 4);
    assert_eq!(r["data"]["environments"][1]["environment"], "EMAIL");
    assert_eq!(r["data"]["environments"][1]["seq"], 1);
    assert_eq!(
        c.get("VOICE"),
        json!({"ANI": "3225551234", "a": 1, "b": 2, "c": 3})
    );
    let all = c.ok(json!({"action": "getData"}))["data"].clone();
    assert_eq!(all["EMAIL"], json!({"subject": "hi"}));
    assert_eq!(all["VOICE"]["a"], 1);
    let r =
        c.ok(json!({"action": "removeItemFromEnvironment", "environment": "VOICE", "name": "a"}));
    assert_eq!(r["data"]["removed"], true);
    assert_eq!(r["seq"], 5);
    let r =
        c.ok(json!({"action": "removeItemFromEnvironment", "environment": "VOICE", "name": "a"}));
    assert_eq!(r["data"]["removed"], false);
    assert_eq!(r["seq"], 5, "removing a missing variable is no event");
    let r = c.ok(json!({"action": "cleanEnvironment", "environment": "VOICE"}));
    assert_eq!(r["seq"], 6);
    assert_eq!(c.get("VOICE"), json!({}));
    let r = c.ok(json!({"action": "setNotificationsOn", "environment": "VOICE", "name": "*"}));
    assert_eq!(
        r["data"],
        json!({"environment": "VOICE", "name": "*", "values": false})
    );
    assert_eq!(r["seq"], 6);
    c.ok(json!({"action": "setNotificationsOff", "environment": "VOICE", "name": "*"}));
    let r = c.ok(json!({"action": "removeEnvironment", "environment": "EMAIL"}));
    assert_eq!(
        r["data"],
        json!({"environment": "EMAIL", "cleaned": false, "removed": false})
    );
    let r = c.ok(json!({"action": "removeEnvironment", "environment": "VOICE", "cleanup": true}));
    assert_eq!(
        r["data"],
        json!({"environment": "VOICE", "cleaned": false, "removed": true})
    );
    let token = c.token();
    let r = c.ok(json!({"action": "resume", "token": token, "environments": []}));
    assert_eq!(r["data"], json!({"resumed": true, "environments": []}));
    assert!(c.take_events().is_empty(), "no echo of own changes");
}

#[test]
fn every_error_code() {
    let mut l = limits();
    l.max_environments_per_connection = 1;
    l.max_value_bytes = 10;
    let h = Hub::new(settings_with(l));
    let mut c = Client::open(&h, peer());
    // bad_request, echoing requestId when the frame is an object.
    let r = c.raw("{oops");
    assert_eq!(r["errorCode"], "bad_request");
    assert!(r.get("requestId").is_none());
    let r = c.raw("42");
    assert_eq!(r["errorCode"], "bad_request");
    let r = c.fail(
        json!({"requestId": "r1", "environment": "E"}),
        "bad_request",
    );
    assert_eq!(r["requestId"], "r1");
    let r = c.fail(
        json!({"requestId": "r2", "action": "createEnvironment"}),
        "bad_request",
    );
    assert_eq!(r["requestId"], "r2");
    assert_eq!(r["action"], "createEnvironment");
    c.fail(
        json!({"action": "setContextJSON", "environment": "E", "data": [{"a": 1, "b": 2}]}),
        "bad_request",
    );
    // unknown_action
    let r = c.fail(
        json!({"requestId": 9, "action": "format-c"}),
        "unknown_action",
    );
    assert_eq!(r["requestId"], 9);
    assert_eq!(r["action"], "format-c");
    // invalid_name
    c.fail(
        json!({"action": "createEnvironment", "environment": "__proto__", "clientName": "x"}),
        "invalid_name",
    );
    c.fail(
        json!({"action": "createEnvironment", "environment": "*", "clientName": "x"}),
        "invalid_name",
    );
    c.fail(
        json!({"action": "createEnvironment", "environment": "a b", "clientName": "x"}),
        "invalid_name",
    );
    c.fail(
        json!({"action": "createEnvironment", "environment": "E", "clientName": ""}),
        "invalid_name",
    );
    // not_registered
    c.fail(
        json!({"action": "setContextVariable", "environment": "E", "name": "x", "value": 1}),
        "not_registered",
    );
    c.fail(
        json!({"action": "getEnvironment", "environment": "E"}),
        "not_registered",
    );
    c.register("E", "crm");
    c.fail(
        json!({"action": "setContextVariable", "environment": "E", "name": "x y", "value": 1}),
        "invalid_name",
    );
    // invalid_value, value_too_large
    c.fail(
        json!({"action": "setContextVariable", "environment": "E", "name": "x", "value": {"a": 1}}),
        "invalid_value",
    );
    c.fail(
        json!({"action": "setContextVariable", "environment": "E", "name": "x", "value": [1]}),
        "invalid_value",
    );
    c.fail(json!({"action": "setContextVariable", "environment": "E", "name": "x", "value": "0123456789"}), "value_too_large");
    // limit_exceeded
    c.fail(
        json!({"action": "createEnvironment", "environment": "F", "clientName": "crm"}),
        "limit_exceeded",
    );
    // forbidden for desktop actions without their capability (the actions
    // themselves are tested in tests/desktop.rs)
    for request in [
        json!({"action": "setSizeWindow", "windowName": "w"}),
        json!({"action": "showNotification", "title": "t", "message": "m"}),
        json!({"action": "launchProcess", "name": "calc"}),
        json!({"action": "showPickupDialog", "title": "t", "buttonText": "b", "interactionId": "i"}),
        json!({"action": "openUrl", "url": "https://crm.example.com/"}),
    ] {
        c.fail(request, "forbidden");
    }
    // forbidden without the data capability
    let mut n = Client::open(
        &h,
        PeerInfo {
            capabilities: Capabilities::default(),
            ..peer()
        },
    );
    assert_eq!(n.hello["capabilities"], json!([]));
    n.fail(
        json!({"action": "createEnvironment", "environment": "E", "clientName": "x"}),
        "forbidden",
    );
    n.fail(json!({"action": "getData"}), "forbidden");
    n.fail(json!({"action": "resume", "token": "x"}), "forbidden");
    n.ok(json!({"action": "getVersion"}));
    assert_eq!(c.get("E"), json!({}), "failed requests changed nothing");
}

#[test]
fn no_echo_but_other_tabs_with_the_same_client_name_hear_it() {
    let h = hub();
    let mut tab1 = Client::open(&h, peer());
    let mut tab2 = Client::open(&h, peer());
    let mut toolbar = Client::open(&h, native());
    for c in [&mut tab1, &mut tab2] {
        c.register("VOICE", "crm");
        c.subscribe("VOICE", "*", false);
    }
    toolbar.register("VOICE", "toolbar");
    toolbar.subscribe("VOICE", "GEN_P2T", false);
    let r = tab1.set("VOICE", "GEN_P2T", json!("RqDial"));
    let expected = json!({
        "type": "event", "event": "ContextChanged", "EnvironmentName": "VOICE",
        "VarChanged": "GEN_P2T", "ValueChanged": "RqDial", "epoch": r["epoch"], "seq": 1
    });
    assert!(tab1.take_events().is_empty());
    assert_eq!(tab2.take_events(), vec![expected.clone()]);
    assert_eq!(toolbar.take_events(), vec![expected]);
    toolbar.set("VOICE", "GEN_T2P", json!("EvRinging"));
    assert_eq!(tab1.take_events().len(), 1);
    assert_eq!(tab2.take_events().len(), 1);
    assert!(toolbar.take_events().is_empty());
}

#[test]
fn named_and_star_subscriptions_values_and_read_filters() {
    let h = hub();
    let mut writer = Client::open(&h, native());
    let mut named = Client::open(&h, peer());
    let mut star = Client::open(&h, peer());
    let mut filtered = Client::open(
        &h,
        PeerInfo {
            read: VarFilter {
                patterns: vec!["VOICE.GEN_*".into()],
            },
            ..peer()
        },
    );
    for c in [&mut writer, &mut named, &mut star, &mut filtered] {
        c.register("VOICE", "x");
    }
    named.subscribe("VOICE", "GEN_T2P", false);
    star.subscribe("VOICE", "*", true);
    filtered.subscribe("VOICE", "*", true);
    writer.set("VOICE", "ANI", json!("123"));
    writer.set("VOICE", "GEN_T2P", json!("EvRinging"));
    let n = named.take_events();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["VarChanged"], "GEN_T2P");
    assert!(n[0].get("Values").is_none(), "Values only when asked");
    let s = star.take_events();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[1]["Values"],
        json!({"ANI": "123", "GEN_T2P": "EvRinging"})
    );
    let f = filtered.take_events();
    assert_eq!(f.len(), 1, "ANI is outside the read allow-list");
    assert_eq!(f[0]["Values"], json!({"GEN_T2P": "EvRinging"}));
    assert_eq!(filtered.get("VOICE"), json!({"GEN_T2P": "EvRinging"}));
    assert_eq!(
        filtered.ok(json!({"action": "getData"}))["data"],
        json!({"VOICE": {"GEN_T2P": "EvRinging"}})
    );
    // Off for one name, then `*` off drops everything.
    named.ok(json!({"action": "setNotificationsOff", "environment": "VOICE", "name": "GEN_T2P"}));
    star.ok(json!({"action": "setNotificationsOff", "environment": "VOICE", "name": "*"}));
    writer.set("VOICE", "GEN_T2P", json!("EvEstablished"));
    assert!(named.take_events().is_empty());
    assert!(star.take_events().is_empty());
    assert_eq!(filtered.take_events().len(), 1);
}

#[test]
fn write_allow_list_refuses_and_applies_nothing() {
    let h = hub();
    let mut c = Client::open(
        &h,
        PeerInfo {
            write: VarFilter {
                patterns: vec!["VOICE.GEN_P2T".into()],
            },
            ..peer()
        },
    );
    c.register("VOICE", "crm");
    c.fail(
        json!({"action": "setContextJSON", "environment": "VOICE", "data": [{"GEN_P2T": "RqDial"}, {"ANI": "1"}]}),
        "forbidden",
    );
    assert_eq!(c.get("VOICE"), json!({}));
    c.set("VOICE", "GEN_P2T", json!("RqDial"));
}

#[test]
fn events_share_serialized_bytes() {
    let h = hub();
    let mut w = Client::open(&h, peer());
    let mut a = Client::open(&h, peer());
    let mut b = Client::open(&h, peer());
    for c in [&mut w, &mut a, &mut b] {
        c.register("VOICE", "x");
    }
    a.subscribe("VOICE", "*", true);
    b.subscribe("VOICE", "*", true);
    w.set("VOICE", "x", json!(1));
    let (Some(Outgoing::Text(ta)), Some(Outgoing::Text(tb))) =
        (a.session.try_recv(), b.session.try_recv())
    else {
        panic!("both get the event")
    };
    assert_eq!(
        ta.as_str().as_ptr(),
        tb.as_str().as_ptr(),
        "one serialization shared"
    );
}

#[test]
fn state_table_rows() {
    let h = hub();
    let mut a = Client::open(&h, peer());
    let mut b = Client::open(&h, peer());
    let mut observer = Client::open(&h, peer());
    for c in [&mut a, &mut b, &mut observer] {
        c.register("VOICE", "x");
    }
    observer.subscribe("VOICE", "*", false);
    a.set("VOICE", "x", json!(1));
    observer.take_events();

    // Row: disconnect keeps data; no event.
    a.close();
    assert_eq!(observer.get("VOICE"), json!({"x": 1}));
    assert!(observer.take_events().is_empty());

    // Row: removeEnvironment without cleanup keeps data; no event.
    b.ok(json!({"action": "removeEnvironment", "environment": "VOICE", "cleanup": false}));
    assert_eq!(observer.get("VOICE"), json!({"x": 1}));
    assert!(observer.take_events().is_empty());
    b.fail(
        json!({"action": "getEnvironment", "environment": "VOICE"}),
        "not_registered",
    );

    // Row: cleanup while others stay registered: cleaned, EnvironmentCleaned.
    b.register("VOICE", "x");
    let r = b.ok(json!({"action": "removeEnvironment", "environment": "VOICE", "cleanup": true}));
    assert_eq!(r["data"]["cleaned"], true);
    let ev = observer.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["event"], "EnvironmentCleaned");
    assert_eq!(ev[0]["seq"], 2);
    assert!(ev[0].get("VarChanged").is_none());
    assert_eq!(observer.get("VOICE"), json!({}));

    // Row: cleanup by the last registration removes; re-creation = new epoch.
    let before = observer.get_head("VOICE");
    let r = observer
        .ok(json!({"action": "removeEnvironment", "environment": "VOICE", "cleanup": true}));
    assert_eq!(r["data"]["removed"], true);
    assert_eq!(r["seq"], 3);
    let r = observer.register("VOICE", "x");
    assert_eq!(r["data"]["created"], true);
    assert_ne!(r["epoch"], before.0);
    assert_eq!(r["seq"], 0);

    // Row: cleanEnvironment is an event even when already empty.
    let mut sub = Client::open(&h, peer());
    sub.register("VOICE", "x");
    sub.subscribe("VOICE", "*", true);
    observer.ok(json!({"action": "cleanEnvironment", "environment": "VOICE"}));
    let ev = sub.take_events();
    assert_eq!(ev[0]["event"], "EnvironmentCleaned");
    assert_eq!(ev[0]["Values"], json!({}));
    // Row: removeItemFromEnvironment is a VarRemoved event.
    observer.set("VOICE", "y", json!(true));
    observer
        .ok(json!({"action": "removeItemFromEnvironment", "environment": "VOICE", "name": "y"}));
    let ev = sub.take_events();
    assert_eq!(ev[1]["event"], "VarRemoved");
    assert_eq!(ev[1]["VarChanged"], "y");
    assert!(ev[1].get("ValueChanged").is_none());
}

impl Client {
    fn get_head(&mut self, env: &str) -> (Value, Value) {
        let r = self.ok(json!({"action": "getEnvironment", "environment": env}));
        (r["epoch"].clone(), r["seq"].clone())
    }
}

#[test]
fn bulk_writes_are_atomic_and_events_see_the_final_state() {
    let h = hub();
    let mut toolbar = Client::open(&h, native());
    let mut crm = Client::open(&h, peer());
    toolbar.register("VOICE", "toolbar");
    toolbar.register("EMAIL", "toolbar");
    crm.register("VOICE", "crm");
    crm.register("EMAIL", "crm");
    crm.subscribe("VOICE", "*", true);
    crm.subscribe("EMAIL", "*", false);
    toolbar.set("VOICE", "ANI", json!("111"));
    crm.take_events();
    toolbar.fail(
        json!({"action": "setContextJSON", "environment": "VOICE",
               "data": [{"ANI": "222"}, {"GEN_T2P": {"bad": 1}}]}),
        "invalid_value",
    );
    toolbar.fail(
        json!({"action": "setAllJSON", "data": [
            {"environment": "VOICE", "data": {"ANI": "222"}},
            {"environment": "NOPE", "data": {"x": 1}}]}),
        "not_registered",
    );
    assert!(
        crm.take_events().is_empty(),
        "a failed bulk write emits nothing"
    );
    assert_eq!(crm.get("VOICE"), json!({"ANI": "111"}));
    toolbar.ok(json!({"action": "setContextJSON", "environment": "VOICE",
                      "data": [{"ANI": "222"}, {"GEN_T2P": "EvRinging"}]}));
    let ev = crm.take_events();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0]["VarChanged"].as_str(), ev[0]["seq"].as_u64()),
        (Some("ANI"), Some(2))
    );
    assert_eq!(
        (ev[1]["VarChanged"].as_str(), ev[1]["seq"].as_u64()),
        (Some("GEN_T2P"), Some(3))
    );
    for e in &ev {
        assert_eq!(
            e["Values"],
            json!({"ANI": "222", "GEN_T2P": "EvRinging"}),
            "post-write state"
        );
    }
    // setAllJSON across environments with clearData: cleans first, then writes in order.
    toolbar.ok(json!({"action": "setAllJSON", "clearData": true, "data": [
        {"environment": "EMAIL", "data": {"subject": "s"}},
        {"environment": "VOICE", "data": {"GEN_T2P": "EvReleased"}}]}));
    let ev = crm.take_events();
    let kinds: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["EnvironmentName"].as_str().unwrap().into(),
                e["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("EMAIL".into(), "EnvironmentCleaned".into()),
            ("VOICE".into(), "EnvironmentCleaned".into()),
            ("EMAIL".into(), "ContextChanged".into()),
            ("VOICE".into(), "ContextChanged".into()),
        ]
    );
    assert_eq!(ev[1]["Values"], json!({"GEN_T2P": "EvReleased"}));
    assert_eq!(crm.get("VOICE"), json!({"GEN_T2P": "EvReleased"}));
    // Every set is an event, even unchanged.
    toolbar.set("VOICE", "GEN_T2P", json!("EvReleased"));
    assert_eq!(crm.take_events().len(), 1);
}

#[test]
fn typed_values_round_trip() {
    let h = hub();
    let mut w = Client::open(&h, peer());
    let mut r = Client::open(&h, peer());
    w.register("E", "w");
    r.register("E", "r");
    r.subscribe("E", "*", false);
    let values = [
        json!("text é \"quoted\""),
        json!(""),
        json!(42),
        json!(-7),
        json!(9007199254740993u64),
        json!(1.5),
        json!(true),
        json!(false),
        json!(null),
    ];
    for (i, v) in values.iter().enumerate() {
        w.set("E", &format!("v{i}"), v.clone());
    }
    let events = r.take_events();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(&events[i]["ValueChanged"], v);
        assert_eq!(&r.get("E")[format!("v{i}")], v);
    }
    assert_eq!(
        r.ok(json!({"action": "getData"}))["data"]["E"]["v6"],
        json!(true)
    );
    // ValueChanged null is present (not omitted).
    assert!(events[8].as_object().unwrap().contains_key("ValueChanged"));
}

#[test]
fn per_connection_limits() {
    let mut l = limits();
    l.max_variables_per_connection = 2;
    let h = Hub::new(settings_with(l));
    let mut page = Client::open(&h, peer());
    let mut toolbar = Client::open(&h, native());
    page.register("VOICE", "crm");
    toolbar.register("VOICE", "toolbar");
    page.set("VOICE", "a", json!(1));
    page.set("VOICE", "b", json!(1));
    page.fail(
        json!({"action": "setContextVariable", "environment": "VOICE", "name": "c", "value": 1}),
        "limit_exceeded",
    );
    page.set("VOICE", "a", json!(2));
    toolbar.set("VOICE", "GEN_T2P", json!("EvRinging"));
    toolbar.set("VOICE", "c", json!(1));
    assert_eq!(
        toolbar.get("VOICE"),
        json!({"GEN_T2P": "EvRinging", "a": 2, "b": 1, "c": 1})
    );
}

#[test]
fn resume_replays_missed_events_once_without_own_writes_then_live() {
    let h = hub();
    let mut toolbar = Client::open(&h, native());
    let mut crm = Client::open(&h, peer());
    toolbar.register("VOICE", "toolbar");
    crm.register("VOICE", "crm");
    crm.subscribe("VOICE", "*", false);
    toolbar.set("VOICE", "GEN_T2P", json!("EvRinging"));
    let seen = crm.take_events();
    let epoch = seen[0]["epoch"].as_u64().unwrap();
    assert_eq!(seen[0]["seq"], 1);
    let token = crm.token();

    // The CRM sends a write whose reply it never reads, then its socket dies.
    h.handle(crm.session.id, &json!({"action": "setContextVariable", "environment": "VOICE", "name": "NOTE", "value": "mine"}).to_string());
    crm.close();
    toolbar.set("VOICE", "GEN_T2P", json!("EvEstablished"));
    toolbar.set("VOICE", "ANI", json!("123"));

    let mut crm2 = Client::open(&h, peer());
    let r = crm2.ok(
        json!({"action": "resume", "requestId": "rs", "token": token, "environments": [
        {"environment": "VOICE", "clientName": "crm", "epoch": epoch, "seq": 1,
         "subscriptions": [{"name": "*", "values": false}]}]}),
    );
    assert_eq!(r["requestId"], "rs");
    assert_eq!(r["data"]["resumed"], true);
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "replay");
    assert_eq!(env["epoch"], epoch);
    assert_eq!(env["seq"], 4);
    assert_eq!(env["created"], false);
    let replayed: Vec<(u64, &str)> = env["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["VarChanged"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replayed,
        vec![(3, "GEN_T2P"), (4, "ANI")],
        "seq 2 was the client's own write"
    );
    assert!(
        crm2.take_events().is_empty(),
        "replayed events are not also sent live"
    );
    // Subscriptions are restored: live events follow.
    toolbar.set("VOICE", "GEN_T2P", json!("EvReleased"));
    let live = crm2.take_events();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["seq"], 5);
    // The resumed connection's own writes are not echoed either.
    crm2.set("VOICE", "NOTE", json!("again"));
    assert!(crm2.take_events().is_empty());
    // A second reconnect with the new token still recognises the first
    // connection's writes as its own.
    let token2 = crm2.token();
    crm2.close();
    let mut crm3 = Client::open(&h, peer());
    let r = crm3.ok(
        json!({"action": "resume", "token": token2, "environments": [
        {"environment": "VOICE", "clientName": "crm", "epoch": epoch, "seq": 1,
         "subscriptions": [{"name": "*"}]}]}),
    );
    let seqs: Vec<u64> = r["data"]["environments"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![3, 4, 5],
        "seq 2 and 6 were written by this client's earlier connections"
    );
}

#[test]
fn resume_gives_snapshots_when_history_is_gone_or_the_epoch_changed() {
    let mut l = limits();
    l.replay_events = 2;
    let h = Hub::new(settings_with(l.clone()));
    let mut toolbar = Client::open(&h, native());
    let mut crm = Client::open(&h, peer());
    toolbar.register("VOICE", "t");
    let r = crm.register("VOICE", "crm");
    let epoch = r["epoch"].as_u64().unwrap();
    let token = crm.token();
    crm.close();
    for i in 0..3 {
        toolbar.set("VOICE", "n", json!(i));
    }
    let mut crm2 = Client::open(&h, peer());
    let r = crm2.ok(json!({"action": "resume", "token": token, "environments": [
        {"environment": "VOICE", "clientName": "crm", "epoch": epoch, "seq": 0,
         "subscriptions": [{"name": "n"}]}]}));
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "snapshot");
    assert_eq!(env["values"], json!({"n": 2}));
    assert_eq!(
        (env["epoch"].as_u64(), env["seq"].as_u64()),
        (Some(epoch), Some(3))
    );
    // A daemon restart is a new hub: new epoch, empty context, snapshot.
    let restarted = Hub::new(settings_with(l));
    let mut crm3 = Client::open(&restarted, peer());
    let r = crm3.ok(json!({"action": "resume", "token": token, "environments": [
        {"environment": "VOICE", "clientName": "crm", "epoch": epoch, "seq": 3}]}));
    assert_eq!(r["data"]["resumed"], false);
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "snapshot");
    assert_eq!(env["created"], true);
    assert_eq!(env["values"], json!({}));
    assert_ne!(env["epoch"], epoch);
    assert_eq!(env["seq"], 0);
}

#[test]
fn resume_after_the_environment_was_recreated_is_a_snapshot() {
    let h = hub();
    let mut a = Client::open(&h, peer());
    let r = a.register("VOICE", "a");
    let epoch = r["epoch"].as_u64().unwrap();
    let token = a.token();
    a.close();
    let mut b = Client::open(&h, peer());
    b.register("VOICE", "b");
    b.ok(json!({"action": "removeEnvironment", "environment": "VOICE", "cleanup": true}));
    b.register("VOICE", "b");
    b.set("VOICE", "x", json!(1));
    let mut a2 = Client::open(&h, peer());
    let r = a2.ok(json!({"action": "resume", "token": token, "environments": [
        {"environment": "VOICE", "clientName": "a", "epoch": epoch, "seq": 0}]}));
    assert_eq!(r["data"]["resumed"], true);
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "snapshot");
    assert_ne!(env["epoch"], epoch);
    assert_eq!(env["values"], json!({"x": 1}));
}

#[test]
fn resume_tokens_expire() {
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock_now = now.clone();
    let h = Hub::with_clock(
        settings_with(limits()),
        Arc::new(move || *clock_now.lock().unwrap()),
    );
    let mut a = Client::open(&h, peer());
    let r = a.register("VOICE", "a");
    let epoch = r["epoch"].as_u64().unwrap();
    let token = a.token();
    a.close();
    *now.lock().unwrap() += Duration::from_secs(59);
    let mut b = Client::open(&h, peer());
    let resume = json!({"action": "resume", "token": token, "environments": [
        {"environment": "VOICE", "clientName": "a", "epoch": epoch, "seq": 0}]});
    assert_eq!(b.ok(resume.clone())["data"]["resumed"], true);
    b.close();
    *now.lock().unwrap() += Duration::from_secs(2);
    let mut c = Client::open(&h, peer());
    let r = c.ok(resume);
    assert_eq!(r["data"]["resumed"], false);
    assert_eq!(r["data"]["environments"][0]["mode"], "snapshot");
}

#[test]
fn resume_is_all_or_nothing() {
    let mut l = limits();
    l.max_environments_per_connection = 1;
    let h = Hub::new(settings_with(l));
    let mut c = Client::open(&h, peer());
    let token = c.token();
    c.fail(
        json!({"action": "resume", "token": token, "environments": [
            {"environment": "A", "clientName": "c"}, {"environment": "B", "clientName": "c"}]}),
        "limit_exceeded",
    );
    c.fail(
        json!({"action": "resume", "token": token, "environments": [
            {"environment": "A", "clientName": "c", "subscriptions": [{"name": "bad name"}]}]}),
        "invalid_name",
    );
    c.fail(
        json!({"action": "resume", "token": token, "environments": [
            {"environment": "A", "clientName": "c"}, {"environment": "A", "clientName": "c"}]}),
        "bad_request",
    );
    c.fail(json!({"action": "resume", "token": ""}), "bad_request");
    assert_eq!(
        c.ok(json!({"action": "getData"}))["data"],
        json!({}),
        "nothing was created"
    );
}

#[test]
fn slow_consumer_is_closed_and_others_get_everything() {
    let mut l = limits();
    l.outbox_messages = 4;
    let h = Hub::new(settings_with(l));
    let mut writer = Client::open(&h, native());
    let mut healthy = Client::open(&h, peer());
    let mut slow = Client::open(&h, peer());
    for c in [&mut writer, &mut healthy, &mut slow] {
        c.register("VOICE", "x");
    }
    healthy.subscribe("VOICE", "*", false);
    slow.subscribe("VOICE", "*", false);
    let mut got = 0;
    for i in 0..20 {
        writer.set("VOICE", "n", json!(i));
        got += healthy.take_events().len();
        assert!(
            slow.session.queued() <= 4,
            "the outbox never exceeds its bound"
        );
    }
    assert_eq!(got, 20);
    match slow.session.try_recv() {
        Some(Outgoing::Close { code, reason }) => {
            assert_eq!(code, 1013);
            assert!(reason.starts_with("too slow"), "{reason}");
            assert!(reason.len() <= 123);
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // A dead connection gets no replies either; closing it frees it.
    h.handle(slow.session.id, r#"{"action":"getVersion"}"#);
    assert_eq!(h.connection_count(), 3);
    slow.close();
    assert_eq!(h.connection_count(), 2);
    writer.set("VOICE", "n", json!("after"));
    assert_eq!(healthy.take_events().len(), 1);
}

#[test]
fn server_status_reaches_every_connection() {
    let h = hub();
    let mut a = Client::open(&h, peer());
    let mut b = Client::open(&h, native());
    h.server_status("stopping-service");
    let expected = json!({"type": "event", "event": "ServerStatus", "status": "stopping-service"});
    assert_eq!(a.take_events(), vec![expected.clone()]);
    assert_eq!(b.take_events(), vec![expected]);
}

/// The next server frame on a plain connection's socket (unmasked text).
fn read_frame(socket: &mut std::net::TcpStream) -> Value {
    use std::io::Read;
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x81, "a final text frame");
    let len = match head[1] {
        126 => {
            let mut n = [0u8; 2];
            socket.read_exact(&mut n).unwrap();
            usize::from(u16::from_be_bytes(n))
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_holds_a_plain_connections_events_until_it_ends() {
    use std::io::Read;
    use wsconnector::inspector::tap::Tap;
    use wsconnector::server::wire::Wire;

    let h = hub();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A std client: its non-blocking read asks the kernel (tokio's
    // `try_read` would answer from its readiness cache).
    let mut socket = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let sub = h.open_direct(
        native(),
        Arc::new(Wire::new(server, Arc::new(Tap::default()))),
    );
    h.handle(
        sub.id,
        r#"{"action":"createEnvironment","environment":"E","clientName":"s"}"#,
    );
    h.handle(
        sub.id,
        r#"{"action":"setNotificationsOn","environment":"E","name":"*"}"#,
    );
    for kind in ["hello", "reply", "reply"] {
        assert_eq!(read_frame(&mut socket)["type"], kind);
    }
    let mut writer = Client::open(&h, peer());
    writer.register("E", "w");
    let batch = h.batch();
    writer.set("E", "a", json!(1));
    writer.set("E", "b", json!(2));
    // On loopback a write is in the peer's buffer when it returns.
    socket.set_nonblocking(true).unwrap();
    let err = socket.read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "held");
    socket.set_nonblocking(false).unwrap();
    drop(batch);
    for var in ["a", "b"] {
        assert_eq!(read_frame(&mut socket)["VarChanged"], var);
    }
    // With no batch open, an event is written at once.
    writer.set("E", "c", json!(3));
    assert_eq!(read_frame(&mut socket)["VarChanged"], "c");
}

#[tokio::test]
async fn session_recv_yields_messages_then_a_requested_close_first() {
    let h = hub();
    let mut s = h.open(peer());
    let hello = s.recv().await;
    assert!(matches!(&hello, Outgoing::Text(t) if t.as_str().contains("\"hello\"")));
    h.handle(s.id, r#"{"action":"getVersion","requestId":1}"#);
    h.handle(s.id, r#"{"action":"getHost","requestId":2}"#);
    let first = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap();
    assert!(matches!(&first, Outgoing::Text(t) if t.as_str().contains("\"requestId\":1")));
    // One reply is still queued; the close comes ahead of it.
    h.close_with(s.id, 1008, "policy");
    let closed = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap();
    assert_eq!(
        closed,
        Outgoing::Close {
            code: 1008,
            reason: "policy".into()
        }
    );
}

#[tokio::test]
async fn session_recv_wakes_for_an_overflow_close() {
    let mut l = limits();
    l.outbox_messages = 2;
    let h = Hub::new(settings_with(l));
    let mut slow = h.open(peer());
    let mut w = Client::open(&h, native());
    assert!(matches!(slow.recv().await, Outgoing::Text(_)));
    w.register("E", "w");
    h.handle(
        slow.id,
        r#"{"action":"createEnvironment","environment":"E","clientName":"s"}"#,
    );
    h.handle(
        slow.id,
        r#"{"action":"setNotificationsOn","environment":"E","name":"*"}"#,
    );
    // The outbox (2) is full now; a waiting recv must wake up for the close.
    let waiter = tokio::spawn(async move {
        let mut msgs = Vec::new();
        loop {
            let m = slow.recv().await;
            let done = matches!(m, Outgoing::Close { .. });
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    });
    // Let the waiter read both replies and block on an empty outbox.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    for i in 0..5 {
        w.set("E", "x", json!(i));
    }
    let msgs = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        msgs.last(),
        Some(Outgoing::Close { code: 1013, .. })
    ));
    assert_eq!(
        msgs.len(),
        3,
        "two replies, then the close ahead of the queued events: {msgs:?}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, u8, i64),
        Bulk(usize, Vec<(u8, i64)>),
        Remove(usize, u8),
        Clean(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let c = 0usize..3;
        prop_oneof![
            5 => (c.clone(), 0u8..4, any::<i64>()).prop_map(|(c, v, x)| Op::Set(c, v, x)),
            2 => (c.clone(), proptest::collection::vec((0u8..4, any::<i64>()), 1..4))
                .prop_map(|(c, w)| Op::Bulk(c, w)),
            1 => (c.clone(), 0u8..4).prop_map(|(c, v)| Op::Remove(c, v)),
            1 => c.prop_map(Op::Clean),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Three connections with the same clientName, subscribed to `*`,
        /// write at random: each receives every other connection's events
        /// exactly once, in seq order, never its own; together the events
        /// have no gap and rebuild the store's state.
        #[test]
        fn events_in_order_without_echo_rebuild_the_store(ops in proptest::collection::vec(op(), 1..40)) {
            let h = hub();
            let mut clients: Vec<Client> = (0..3).map(|_| Client::open(&h, peer())).collect();
            let mut own: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); 3];
            for c in clients.iter_mut() {
                c.register("E", "same");
                c.subscribe("E", "*", false);
            }
            for op in ops {
                let (who, reply, events) = match op {
                    Op::Set(c, v, x) => (c, clients[c].set("E", &format!("v{v}"), json!(x)), 1),
                    Op::Bulk(c, w) => {
                        let n = w.len() as u64;
                        let data: Vec<Value> = w.iter().map(|(v, x)| json!({ format!("v{v}"): x })).collect();
                        let r = clients[c].ok(json!({"action": "setContextJSON", "environment": "E", "data": data}));
                        (c, r, n)
                    }
                    Op::Remove(c, v) => {
                        let r = clients[c].ok(json!({"action": "removeItemFromEnvironment",
                                                     "environment": "E", "name": format!("v{v}")}));
                        let n = u64::from(r["data"]["removed"] == true);
                        (c, r, n)
                    }
                    Op::Clean(c) => (c, clients[c].ok(json!({"action": "cleanEnvironment", "environment": "E"})), 1),
                };
                // The writer's events are the last `events` seqs before its reply.
                let last = reply["seq"].as_u64().unwrap();
                own[who].extend((last + 1 - events)..=last);
            }
            let truth = clients[0].get("E");
            let mut all: BTreeMap<u64, Value> = BTreeMap::new();
            for (i, c) in clients.iter_mut().enumerate() {
                let evs = c.take_events();
                let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", seqs);
                let others: BTreeSet<u64> = own
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, s)| s.iter().copied())
                    .collect();
                prop_assert_eq!(seqs.len(), others.len(), "each event exactly once");
                prop_assert_eq!(seqs.iter().copied().collect::<BTreeSet<u64>>(), others);
                for e in evs {
                    all.insert(e["seq"].as_u64().unwrap(), e);
                }
            }
            // Every event reached someone: seqs 1..=n without a gap.
            let n = all.len() as u64;
            prop_assert!(all.keys().copied().eq(1..=n));
            let mut rebuilt = serde_json::Map::new();
            for e in all.values() {
                let name = e["VarChanged"].as_str().unwrap_or_default().to_string();
                match e["event"].as_str().unwrap() {
                    "ContextChanged" => {
                        rebuilt.insert(name, e["ValueChanged"].clone());
                    }
                    "VarRemoved" => {
                        rebuilt.remove(&name);
                    }
                    "EnvironmentCleaned" => rebuilt.clear(),
                    other => prop_assert!(false, "unexpected event {}", other),
                }
            }
            prop_assert_eq!(Value::Object(rebuilt), truth);
        }
    }
}
