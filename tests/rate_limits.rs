//! Rate limits with quarantine and the malformed-message abuse close:
//! hub-level with an injected clock (no sleeping) at the embedded defaults,
//! over a real websocket for the 1008 close, and the `<RateLimits>` section
//! of config.xml.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsconnector::config::{
    describe, parse_str, Capabilities, Config, ConfigError, ConfigSource, RateLimit, RateLimits,
    VarFilter,
};
use wsconnector::hub::{Hub, HubSettings, Outgoing, PeerInfo, Session};
use wsconnector::peer::OsUser;

// ----- hub harness with a movable clock -----

#[derive(Clone)]
struct TestClock(Arc<Mutex<Instant>>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(Instant::now())))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

fn settings(rate: RateLimits) -> HubSettings {
    let mut limits = Config::embedded().limits;
    limits.rate = rate;
    HubSettings {
        limits,
        resume_token_ttl: Duration::from_secs(60),
        host_name: "PC-042".into(),
        user_name: "alice".into(),
        platform: Arc::new(wsconnector::platform::Recording::new()),
        programs: Vec::new(),
        gen_p2c: Default::default(),
        pickup_timeout: Duration::from_secs(30),
        inspector_token: None,
    }
}

fn hub_with(rate: RateLimits) -> (Hub, TestClock) {
    let clock = TestClock::new();
    let c = clock.clone();
    let hub = Hub::with_clock(settings(rate), Arc::new(move || *c.0.lock().unwrap()));
    (hub, clock)
}

fn peer(user: &str, origin: Option<&str>) -> PeerInfo {
    PeerInfo {
        os_user: OsUser {
            id: format!("uid:{user}"),
            name: user.into(),
        },
        origin: origin.map(str::to_string),
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: Vec::new(),
    }
}

const CRM: Option<&str> = Some("https://crm.example.com");

fn text(msg: Outgoing) -> Value {
    match msg {
        Outgoing::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        Outgoing::Close { code, reason } => panic!("unexpected close {code} {reason}"),
    }
}

struct Client {
    hub: Hub,
    session: Session,
}

impl Client {
    fn open(hub: &Hub, peer: PeerInfo) -> Client {
        let mut session = hub.open(peer);
        let hello = text(session.try_recv().expect("hello"));
        assert_eq!(hello["type"], "hello");
        Client {
            hub: hub.clone(),
            session,
        }
    }

    fn raw(&mut self, frame: &str) -> Value {
        self.hub.handle(self.session.id, frame);
        let reply = text(self.session.try_recv().expect("a reply"));
        assert_eq!(reply["type"], "reply", "{reply}");
        reply
    }

    fn req(&mut self, v: Value) -> Value {
        self.raw(&v.to_string())
    }

    fn close(self) {
        self.hub.close(self.session.id);
    }
}

fn code(r: &Value) -> &str {
    r["errorCode"].as_str().unwrap_or("SUCCESS")
}

/// A well-formed request of each rate-limited desktop action.
fn desktop_request(action: &str) -> Value {
    match action {
        "launchProcess" => json!({"action": action, "name": "editor"}),
        "openUrl" => json!({"action": action, "url": "https://crm.example.com/"}),
        "setSizeWindow" => {
            json!({"action": action, "x": 0, "width": 0, "height": 0, "windowName": "W"})
        }
        "showNotification" => notify(),
        _ => json!({"action": action, "title": "t", "buttonText": "b"}),
    }
}

fn notify() -> Value {
    json!({"action": "showNotification", "title": "t", "message": "x"})
}

/// Hits the 20/min default of a desktop action: 20 requests run (here the
/// page lacks the capability, so they are `forbidden`), the 21st is refused.
fn exhaust_notifications(c: &mut Client) -> Value {
    for i in 0..20 {
        let r = c.req(notify());
        assert_eq!(code(&r), "forbidden", "request {i}: {r}");
    }
    c.req(notify())
}

// ----- desktop defaults: 20/min, 5 min quarantine -----

#[test]
fn desktop_default_is_20_per_minute_then_5_minutes_quarantine() {
    let (hub, clock) = hub_with(RateLimits::default());
    let mut c = Client::open(&hub, peer("alice", CRM));
    let r = exhaust_notifications(&mut c);
    assert_eq!(r["result"], "FAILURE");
    assert_eq!(code(&r), "rate_limited");
    assert_eq!(r["action"], "showNotification");
    assert_eq!(r["data"]["retryAfterMs"], 300_000, "{r}");
    let msg = r["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("showNotification") && msg.contains("20 per minute"),
        "{msg}"
    );
    assert!(msg.contains("for 5m"), "{msg}");

    // The time left counts down; other request types are unaffected.
    clock.advance(Duration::from_secs(299));
    let r = c.req(notify());
    assert_eq!(code(&r), "rate_limited");
    assert_eq!(r["data"]["retryAfterMs"], 1000);
    assert!(
        r["errorMessage"].as_str().unwrap().contains("for 1s"),
        "{r}"
    );
    for other in [
        "showPickupDialog",
        "launchProcess",
        "openUrl",
        "setSizeWindow",
    ] {
        let r = c.req(desktop_request(other));
        assert_eq!(code(&r), "forbidden", "{other}: {r}");
    }
    assert_eq!(code(&c.req(json!({"action": "getVersion"}))), "SUCCESS");

    // Quarantine over: a fresh window of 20.
    clock.advance(Duration::from_secs(1));
    let r = exhaust_notifications(&mut c);
    assert_eq!(code(&r), "rate_limited");
}

#[test]
fn every_desktop_action_has_the_20_per_minute_default() {
    for action in [
        "launchProcess",
        "showPickupDialog",
        "showNotification",
        "openUrl",
        "setSizeWindow",
    ] {
        let (hub, _clock) = hub_with(RateLimits::default());
        let mut c = Client::open(&hub, peer("alice", CRM));
        for _ in 0..20 {
            assert_eq!(code(&c.req(desktop_request(action))), "forbidden");
        }
        let r = c.req(desktop_request(action));
        assert_eq!(code(&r), "rate_limited", "{action}: {r}");
        assert_eq!(r["data"]["retryAfterMs"], 300_000);
    }
}

#[test]
fn a_busy_crm_page_is_not_bothered_and_the_6000_ceiling_holds() {
    let (hub, clock) = hub_with(RateLimits::default());
    let mut c = Client::open(&hub, peer("alice", CRM));
    assert_eq!(
        code(&c.req(
            json!({"action": "createEnvironment", "environment": "Crm", "clientName": "page"})
        )),
        "SUCCESS"
    );
    // 6000 writes and 6000 reads in the same minute all succeed.
    for i in 0..6000 {
        let r = c.req(
            json!({"action": "setContextVariable", "environment": "Crm", "name": "n", "value": i}),
        );
        assert_eq!(code(&r), "SUCCESS", "write {i}: {r}");
    }
    for i in 0..6000 {
        let r = c.req(json!({"action": "getEnvironment", "environment": "Crm"}));
        assert_eq!(code(&r), "SUCCESS", "read {i}: {r}");
    }
    // The 6001st write in the minute is refused and changes nothing.
    let r = c.req(
        json!({"action": "setContextVariable", "environment": "Crm", "name": "n", "value": -1}),
    );
    assert_eq!(code(&r), "rate_limited", "{r}");
    assert_eq!(r["data"]["retryAfterMs"], 60_000);
    let r = c.req(json!({"action": "getData"}));
    assert_eq!(code(&r), "SUCCESS");
    assert!(r.to_string().contains("5999"), "{r}");
    assert!(!r.to_string().contains("-1"), "{r}");
    // One minute of quarantine, then writes work again.
    clock.advance(Duration::from_secs(60));
    let r = c.req(
        json!({"action": "setContextVariable", "environment": "Crm", "name": "n", "value": 7}),
    );
    assert_eq!(code(&r), "SUCCESS", "{r}");
}

#[test]
fn the_window_is_fixed_per_minute() {
    let (hub, clock) = hub_with(RateLimits::default());
    let mut c = Client::open(&hub, peer("alice", CRM));
    for _ in 0..20 {
        assert_eq!(code(&c.req(notify())), "forbidden");
    }
    // A new minute: 20 more are allowed without any quarantine.
    clock.advance(Duration::from_secs(60));
    for _ in 0..20 {
        assert_eq!(code(&c.req(notify())), "forbidden");
    }
    assert_eq!(code(&c.req(notify())), "rate_limited");
}

#[test]
fn quarantine_zero_lasts_until_restart() {
    let rate = RateLimits {
        actions: vec![(
            "getVersion".into(),
            RateLimit {
                per_minute: 2,
                quarantine: Duration::ZERO,
            },
        )],
        ..RateLimits::default()
    };
    let (hub, clock) = hub_with(rate.clone());
    let mut c = Client::open(&hub, peer("alice", CRM));
    assert_eq!(code(&c.req(json!({"action": "getVersion"}))), "SUCCESS");
    assert_eq!(code(&c.req(json!({"action": "getVersion"}))), "SUCCESS");
    let r = c.req(json!({"action": "getVersion"}));
    assert_eq!(code(&r), "rate_limited");
    assert_eq!(r["data"]["retryAfterMs"], Value::Null);
    assert_eq!(r["data"]["untilRestart"], true);
    assert!(r["errorMessage"]
        .as_str()
        .unwrap()
        .contains("until the daemon restarts"));
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        code(&c.req(json!({"action": "getVersion"}))),
        "rate_limited"
    );
    // A restarted daemon (a new hub) starts clean.
    let (hub2, _) = hub_with(rate);
    let mut c2 = Client::open(&hub2, peer("alice", CRM));
    assert_eq!(code(&c2.req(json!({"action": "getVersion"}))), "SUCCESS");
}

#[test]
fn reconnecting_keeps_the_limit_other_origins_and_users_do_not_share_it() {
    let (hub, _clock) = hub_with(RateLimits::default());
    let mut c = Client::open(&hub, peer("alice", CRM));
    assert_eq!(code(&exhaust_notifications(&mut c)), "rate_limited");
    c.close();
    // Same user and origin on a new connection: still in quarantine.
    let mut again = Client::open(&hub, peer("alice", CRM));
    let r = again.req(notify());
    assert_eq!(code(&r), "rate_limited");
    assert_eq!(r["data"]["retryAfterMs"], 300_000);
    // Another origin, native, another user: untouched.
    let mut other_origin = Client::open(&hub, peer("alice", Some("https://other.example.com")));
    assert_eq!(code(&other_origin.req(notify())), "forbidden");
    let mut native = Client::open(&hub, peer("alice", None));
    assert_eq!(code(&native.req(notify())), "forbidden");
    let mut bob = Client::open(&hub, peer("bob", CRM));
    assert_eq!(code(&bob.req(notify())), "forbidden");
    // And the limited one can still do everything else.
    assert_eq!(code(&again.req(json!({"action": "getData"}))), "SUCCESS");
}

#[test]
fn unlimited_when_per_minute_is_zero() {
    let rate = RateLimits {
        default: RateLimit {
            per_minute: 0,
            quarantine: Duration::from_secs(60),
        },
        ..RateLimits::default()
    };
    let (hub, _clock) = hub_with(rate);
    let mut c = Client::open(&hub, peer("alice", CRM));
    for _ in 0..10_000 {
        assert_eq!(code(&c.req(json!({"action": "getVersion"}))), "SUCCESS");
    }
}

// ----- abuse: malformed messages -----

#[test]
fn malformed_messages_close_with_1008_after_their_failure() {
    let (hub, clock) = hub_with(RateLimits::default());
    let mut c = Client::open(&hub, peer("alice", CRM));
    // 20 per minute are tolerated (a buggy page), spread over two minutes even more.
    for i in 0..20 {
        let frame = if i % 2 == 0 {
            "not json"
        } else {
            r#"{"action":"noSuchAction"}"#
        };
        let r = c.raw(frame);
        assert!(matches!(code(&r), "bad_request" | "unknown_action"), "{r}");
        assert!(c.session.try_recv().is_none());
    }
    // Failures of well-formed requests are not malformed.
    let r = c.req(json!({"action": "getEnvironment", "environment": "Nope"}));
    assert_eq!(r["result"], "FAILURE");
    clock.advance(Duration::from_secs(60));
    for _ in 0..20 {
        assert_eq!(code(&c.raw("[]")), "bad_request");
    }
    // The 21st in a minute still gets its FAILURE, then the close.
    let r = c.raw(r#"{"action": 5}"#);
    assert_eq!(code(&r), "bad_request");
    match c.session.try_recv() {
        Some(Outgoing::Close { code, reason }) => {
            assert_eq!(code, 1008);
            assert!(
                reason.contains("malformed") && reason.len() <= 123,
                "{reason}"
            );
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    // Nothing more is answered.
    hub.handle(c.session.id, r#"{"action":"getVersion"}"#);
    assert!(matches!(
        c.session.try_recv(),
        Some(Outgoing::Close { code: 1008, .. }) | None
    ));
}

#[test]
fn malformed_zero_never_closes() {
    let rate = RateLimits {
        malformed_per_minute: 0,
        ..RateLimits::default()
    };
    let (hub, _clock) = hub_with(rate);
    let mut c = Client::open(&hub, peer("alice", CRM));
    for _ in 0..500 {
        assert_eq!(code(&c.raw("{")), "bad_request");
        assert!(c.session.try_recv().is_none());
    }
}

// ----- abuse over a real websocket -----

#[tokio::test]
async fn abusive_websocket_is_closed_1008_while_another_client_keeps_working() {
    use common::*;
    let d = start(test_config()).await;
    let (addr, h) = (v4(&d), host(&d));
    let mut good = ws_connect(addr, &h, Some("https://crm.example.com")).await;
    assert_eq!(next_json(&mut good).await["type"], "hello");
    send_json(&mut good, json!({"action": "createEnvironment", "environment": "Crm", "clientName": "good", "requestId": 1})).await;
    assert_eq!(next_json(&mut good).await["result"], "SUCCESS");
    send_json(&mut good, json!({"action": "setContextVariable", "environment": "Crm", "name": "id", "value": "42", "requestId": 2})).await;
    assert_eq!(next_json(&mut good).await["result"], "SUCCESS");

    let mut bad = ws_connect(addr, &h, Some("https://crm.example.com")).await;
    assert_eq!(next_json(&mut bad).await["type"], "hello");
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    for i in 0..21 {
        let frame = match i % 3 {
            0 => "garbage".to_string(),
            1 => json!({"action": "dropDatabase", "environment": "Crm"}).to_string(),
            // A known action with a missing field.
            _ => json!({"action": "setContextVariable", "environment": "Crm", "value": i})
                .to_string(),
        };
        bad.send(Message::Text(frame.into())).await.unwrap();
    }
    // Every malformed message got its FAILURE, then the close.
    for i in 0..21 {
        let r = next_json(&mut bad).await;
        assert_eq!(r["result"], "FAILURE", "reply {i}: {r}");
        assert!(matches!(code(&r), "bad_request" | "unknown_action"), "{r}");
    }
    let (close_code, reason) = close_frame(&mut bad).await.expect("a close frame");
    assert_eq!(close_code, 1008, "{reason}");
    assert!(reason.contains("malformed"), "{reason}");

    // The other client still works and the data is untouched.
    send_json(
        &mut good,
        json!({"action": "getEnvironment", "environment": "Crm", "requestId": 3}),
    )
    .await;
    let r = next_json(&mut good).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    assert_eq!(r["data"]["id"], "42", "{r}");
    d.shutdown();
}

// ----- config.xml -----

fn parse(xml: &str) -> Result<wsconnector::config::Loaded, ConfigError> {
    parse_str(
        &format!("<configuration>\n{xml}\n</configuration>\n"),
        ConfigSource::File("/etc/wsconnector/config.xml".into()),
    )
}

#[test]
fn embedded_defaults() {
    let r = Config::embedded().limits.rate;
    assert_eq!(
        r.default,
        RateLimit {
            per_minute: 6000,
            quarantine: Duration::from_secs(60)
        }
    );
    assert_eq!(r.malformed_per_minute, 20);
    for a in [
        "launchProcess",
        "showPickupDialog",
        "showNotification",
        "openUrl",
        "setSizeWindow",
    ] {
        assert_eq!(
            r.for_action(a),
            RateLimit {
                per_minute: 20,
                quarantine: Duration::from_secs(300)
            },
            "{a}"
        );
    }
    assert_eq!(r.for_action("setContextVariable"), r.default);
    let text = describe(&Config::embedded());
    assert!(
        text.contains("RateLimits/default = 6000/min quarantine=1m"),
        "{text}"
    );
    assert!(
        text.contains("RateLimits/showPickupDialog = 20/min quarantine=5m"),
        "{text}"
    );
    assert!(
        text.contains("RateLimits/malformedPerMinute = 20"),
        "{text}"
    );
}

#[test]
fn rate_limits_section_overrides() {
    let l = parse(
        r#"<RateLimits perMinute="1000" quarantine="30s" malformedPerMinute="0">
             <RateLimit action="showpickupdialog" perMinute="5" quarantine="0"/>
             <RateLimit action="getData" perMinute="0"/>
             <RateLimit action="openUrl" quarantine="10m"/>
           </RateLimits>"#,
    )
    .unwrap();
    let r = &l.config.limits.rate;
    assert_eq!(
        r.default,
        RateLimit {
            per_minute: 1000,
            quarantine: Duration::from_secs(30)
        }
    );
    assert_eq!(r.malformed_per_minute, 0);
    assert_eq!(
        r.for_action("showPickupDialog"),
        RateLimit {
            per_minute: 5,
            quarantine: Duration::ZERO
        }
    );
    assert_eq!(r.for_action("getData").per_minute, 0);
    // Unset attributes keep that action's embedded default.
    assert_eq!(
        r.for_action("openUrl"),
        RateLimit {
            per_minute: 20,
            quarantine: Duration::from_secs(600)
        }
    );
    assert_eq!(r.for_action("launchProcess").per_minute, 20);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("showPickupDialog") && w.contains("until the daemon restarts")),
        "{:?}",
        l.warnings
    );
    assert!(describe(&l.config).contains("RateLimits/getData = unlimited"));
}

#[test]
fn rate_limits_section_errors() {
    let invalid = |xml: &str, setting: &str, expect: &str| match parse(xml) {
        Err(ConfigError::Invalid {
            setting: s,
            expected,
            ..
        }) => {
            assert_eq!(s, setting);
            assert!(expected.contains(expect), "{expected}");
        }
        other => panic!(
            "{xml}: expected Invalid {setting}, got {:?}",
            other.map(|l| l.config)
        ),
    };
    invalid(
        r#"<RateLimits><RateLimit action="dial" perMinute="5"/></RateLimits>"#,
        "RateLimits/RateLimit/action",
        "protocol action",
    );
    invalid(
        r#"<RateLimits><RateLimit action="openUrl" perMinute="-1"/></RateLimits>"#,
        "RateLimits/RateLimit(openUrl)/perMinute",
        "whole number",
    );
    invalid(
        r#"<RateLimits><RateLimit action="openUrl" quarantine="5"/></RateLimits>"#,
        "RateLimits/RateLimit(openUrl)/quarantine",
        "unit",
    );
    invalid(
        r#"<RateLimits perMinute="lots"/>"#,
        "RateLimits/perMinute",
        "whole number",
    );
    invalid(
        r#"<RateLimits malformedPerMinute="99999999999"/>"#,
        "RateLimits/malformedPerMinute",
        "whole number",
    );
    match parse(
        r#"<RateLimits><RateLimit action="openUrl"/><RateLimit action="OPENURL"/></RateLimits>"#,
    ) {
        Err(ConfigError::Duplicate { setting, .. }) => {
            assert_eq!(setting, "RateLimits/RateLimit(openUrl)")
        }
        other => panic!("expected Duplicate, got {:?}", other.map(|l| l.config)),
    }
    match parse("<RateLimits/><RateLimits/>") {
        Err(ConfigError::Duplicate { setting, .. }) => assert_eq!(setting, "RateLimits"),
        other => panic!("expected Duplicate, got {:?}", other.map(|l| l.config)),
    }
    // Unknown children and attributes are warnings, like everywhere else.
    let l = parse(r#"<RateLimits burst="3"><Limit/></RateLimits>"#).unwrap();
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
}

#[test]
fn example_file_documents_the_rate_limit_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.xml.example");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = if cfg!(windows) {
        text.replace("/usr/bin/gedit", r"C:\Windows\notepad.exe")
            .replace(
                "/usr/bin/chromium",
                r"C:\Program Files\Google\Chrome\Application\chrome.exe",
            )
    } else {
        text
    };
    let l = parse_str(&text, ConfigSource::File(path)).unwrap();
    assert_eq!(l.config.limits.rate, RateLimits::default());
    for name in [
        "<RateLimits",
        "perMinute",
        "quarantine",
        "malformedPerMinute",
        "rate_limited",
        "retryAfterMs",
    ] {
        assert!(
            text.contains(name),
            "config.xml.example does not mention {name}"
        );
    }
    let protocol = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"),
    )
    .unwrap();
    for name in [
        "`rate_limited`",
        "retryAfterMs",
        "untilRestart",
        "malformedPerMinute",
        "| 20 | 5 min |",
        "| 6 000 | 1 min |",
    ] {
        assert!(
            protocol.contains(name),
            "docs/protocol.md does not mention {name}"
        );
    }
}

#[test]
fn gen_p2c_launches_count_as_launch_process() {
    use wsconnector::config::{GenP2c, Program};
    let rec = Arc::new(wsconnector::platform::Recording::new());
    let mut s = settings(RateLimits::default());
    s.platform = rec.clone();
    s.gen_p2c = GenP2c {
        enabled: true,
        toolbar_title: None,
    };
    s.programs = vec![Program {
        name: "touch".into(),
        path: "/usr/bin/touch".into(),
        args: vec![],
        parameter_rule: Some("^[a-z0-9]{1,16}$".into()),
        open_url: false,
    }];
    let clock = TestClock::new();
    let c2 = clock.clone();
    let hub = Hub::with_clock(s, Arc::new(move || *c2.0.lock().unwrap()));
    let mut caps = Capabilities::DATA_ONLY;
    caps.launch = true;
    let mut page = Client::open(
        &hub,
        PeerInfo {
            capabilities: caps,
            ..peer("alice", CRM)
        },
    );
    assert_eq!(
        code(&page.req(
            json!({"action": "createEnvironment", "environment": "Default", "clientName": "legacy"})
        )),
        "SUCCESS"
    );
    let gen = |i: u32| {
        json!({"action": "setContextJSON", "environment": "Default", "data": [
            {"GEN_P2C": "RqStartProcess"}, {"process": "touch"}, {"argument": "m"}, {"Other": i}]})
    };
    for i in 0..20 {
        assert_eq!(code(&page.req(gen(i))), "SUCCESS", "GEN_P2C {i}");
    }
    let r = page.req(gen(99));
    assert_eq!(code(&r), "rate_limited", "{r}");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("launchProcess"),
        "{r}"
    );
    // The refused write stored nothing; the one counter also covers launchProcess.
    let env = page.req(json!({"action": "getEnvironment", "environment": "Default"}));
    assert_eq!(env["data"]["Other"], 19, "{env}");
    let r = page.req(json!({"action": "launchProcess", "name": "touch", "parameter": "x"}));
    assert_eq!(code(&r), "rate_limited", "{r}");
    // Exactly 20 launches reached the platform.
    let end = Instant::now() + common::DEADLINE;
    while rec.calls().len() < 20 {
        assert!(Instant::now() < end, "launches: {}", rec.calls().len());
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rec.calls().len(), 20);
}
