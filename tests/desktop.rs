//! Desktop actions through the hub with the recording platform: capabilities,
//! the allow-lists against bad inputs (nothing reaches the platform), the
//! replies, the pickup dialog's dedupe across connections, and the v1
//! GEN_P2C requests (off by default; when on, consumed and never stored,
//! broadcast or replayed).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsconnector::config::{Capabilities, Config, GenP2c, Program, VarFilter};
use wsconnector::hub::{Hub, HubSettings, Outgoing, PeerInfo, Session};
use wsconnector::peer::OsUser;
use wsconnector::platform::{
    ActionError, Call, LaunchSpec, PickupOutcome, Recording, Toast, WindowRequest,
};

const DEADLINE: Duration = Duration::from_secs(10);

fn programs() -> Vec<Program> {
    vec![
        Program {
            name: "touch".into(),
            path: PathBuf::from("/usr/bin/touch"),
            args: vec!["--".into()],
            parameter_rule: Some("^[A-Za-z0-9._-]{1,64}$".into()),
            open_url: false,
        },
        Program {
            name: "chrome.exe".into(),
            path: PathBuf::from("/usr/bin/chromium"),
            args: vec!["--new-window".into()],
            parameter_rule: Some(r"^https://crm\.example\.com/[A-Za-z0-9/?=&._-]*$".into()),
            open_url: false,
        },
        Program {
            name: "calc".into(),
            path: PathBuf::from("/usr/bin/gnome-calculator"),
            args: vec![],
            parameter_rule: None,
            open_url: false,
        },
        Program {
            name: "firefox.exe".into(),
            path: PathBuf::from("/usr/bin/firefox"),
            args: vec![],
            parameter_rule: Some("^[a-z]{1,16}$".into()),
            open_url: true,
        },
    ]
}

struct Setup {
    hub: Hub,
    rec: Arc<Recording>,
}

fn setup_with(gen_p2c: GenP2c) -> Setup {
    let rec = Arc::new(Recording::new());
    let hub = Hub::new(HubSettings {
        limits: Config::embedded().limits,
        resume_token_ttl: Duration::from_secs(60),
        host_name: "PC-042".into(),
        user_name: "alice".into(),
        platform: rec.clone(),
        programs: programs(),
        gen_p2c,
        pickup_timeout: Duration::from_secs(30),
        inspector_token: None,
    });
    Setup { hub, rec }
}

fn setup() -> Setup {
    setup_with(GenP2c::default())
}

const ALL: Capabilities = Capabilities::ALL;

fn peer(capabilities: Capabilities) -> PeerInfo {
    PeerInfo {
        os_user: OsUser {
            id: "uid:1000".into(),
            name: "alice".into(),
        },
        origin: Some("https://crm.example.com".into()),
        capabilities,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: vec![
            "https://crm.example.com/*".into(),
            "https://*.intranet.example.com/*".into(),
        ],
    }
}

struct Client {
    hub: Hub,
    session: Session,
    events: Vec<Value>,
}

fn text(msg: Outgoing) -> Value {
    match msg {
        Outgoing::Text(t) => serde_json::from_str(t.as_str()).expect("valid JSON"),
        Outgoing::Close { code, reason } => panic!("unexpected close {code} {reason}"),
    }
}

impl Client {
    fn open(s: &Setup, caps: Capabilities) -> Client {
        let mut session = s.hub.open(peer(caps));
        let hello = text(session.try_recv().expect("hello"));
        assert_eq!(hello["type"], "hello");
        Client {
            hub: s.hub.clone(),
            session,
            events: Vec::new(),
        }
    }

    /// The next message, waiting (polling) up to the deadline.
    fn next(&mut self) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(m) = self.session.try_recv() {
                return text(m);
            }
            assert!(Instant::now() < end, "no message in time");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends a request and returns its one reply (events on the way are kept).
    fn req(&mut self, v: Value) -> Value {
        self.hub.handle(self.session.id, &v.to_string());
        loop {
            let m = self.next();
            if m["type"] == "reply" {
                return m;
            }
            self.events.push(m);
        }
    }

    fn ok(&mut self, v: Value) -> Value {
        let r = self.req(v.clone());
        assert_eq!(r["result"], "SUCCESS", "{v} -> {r}");
        r
    }

    fn fail(&mut self, v: Value, code: &str) -> Value {
        let r = self.req(v.clone());
        assert_eq!(r["result"], "FAILURE", "{v} -> {r}");
        assert_eq!(r["errorCode"], code, "{v} -> {r}");
        assert!(r["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
        r
    }

    /// The next event (waiting for it).
    fn event(&mut self) -> Value {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        let m = self.next();
        assert_eq!(m["type"], "event", "{m}");
        m
    }

    fn quiet(&mut self) {
        assert!(self.events.is_empty(), "{:?}", self.events);
        assert!(self.session.try_recv().is_none(), "nothing more queued");
    }
}

fn requests() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "marker"}),
            "launch",
        ),
        (
            json!({"action": "openUrl", "url": "https://crm.example.com/case/1"}),
            "openUrl",
        ),
        (
            json!({"action": "setSizeWindow", "x": 0, "width": 0, "height": 0, "windowName": "CRM", "focus": true}),
            "window",
        ),
        (
            json!({"action": "showNotification", "title": "t", "message": "m", "duration": 5000, "color": "Red", "width": 300, "height": 100}),
            "notify",
        ),
        (
            json!({"action": "showPickupDialog", "title": "Call", "buttonText": "Take", "interactionId": "i-1"}),
            "dialog",
        ),
    ]
}

#[test]
fn without_the_capability_every_action_is_forbidden_and_nothing_happens() {
    let s = setup();
    for (req, cap) in requests() {
        // Every other capability, but not this one.
        let mut caps = ALL;
        match cap {
            "launch" => caps.launch = false,
            "openUrl" => caps.open_url = false,
            "window" => caps.window = false,
            "notify" => caps.notify = false,
            _ => caps.dialog = false,
        }
        let mut c = Client::open(&s, caps);
        let r = c.fail(req.clone(), "forbidden");
        assert!(r["errorMessage"].as_str().unwrap().contains(cap), "{r}");
        c.quiet();
    }
    // The data-only default, as for native clients.
    let mut c = Client::open(&s, Capabilities::DATA_ONLY);
    for (req, _) in requests() {
        c.fail(req, "forbidden");
    }
    assert!(s.rec.calls().is_empty(), "{:?}", s.rec.calls());
}

#[test]
fn each_granted_action_reaches_the_platform_once_with_checked_arguments() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    let r = c.ok(json!({"action": "launchProcess", "requestId": 7, "name": "TOUCH", "parameter": "marker-1.txt"}));
    assert_eq!(r["requestId"], 7);
    assert_eq!(r["action"], "launchProcess");
    assert_eq!(r["data"], json!({"pid": 4242}));
    c.ok(json!({"action": "launchProcess", "name": "calc"}));
    c.ok(json!({"action": "launchProcess", "name": "calc", "parameter": ""}));
    c.ok(json!({"action": "openUrl", "url": "https://x.intranet.example.com/a?b=c"}));
    c.ok(json!({"action": "setSizeWindow", "x": "10", "width": "800", "height": 600, "windowName": "CRM - case 1", "focus": "false"}));
    c.ok(json!({"action": "setSizeWindow", "windowName": "CRM"}));
    c.ok(json!({"action": "showNotification", "title": "Call", "message": "line 1\nline 2", "duration": "2500", "color": "Red", "width": "popupwidth", "height": 100}));
    c.ok(json!({"action": "showNotification", "title": "Call", "message": "m"}));
    c.quiet();
    assert_eq!(
        s.rec.calls(),
        vec![
            Call::Launch(LaunchSpec {
                name: "touch".into(),
                path: "/usr/bin/touch".into(),
                args: vec!["--".into(), "marker-1.txt".into()],
            }),
            Call::Launch(LaunchSpec {
                name: "calc".into(),
                path: "/usr/bin/gnome-calculator".into(),
                args: vec![],
            }),
            Call::Launch(LaunchSpec {
                name: "calc".into(),
                path: "/usr/bin/gnome-calculator".into(),
                args: vec![],
            }),
            Call::OpenUrl("https://x.intranet.example.com/a?b=c".into()),
            Call::Window(WindowRequest {
                title: "CRM - case 1".into(),
                x: 10,
                width: 800,
                height: 600,
                focus: false,
            }),
            Call::Window(WindowRequest {
                title: "CRM".into(),
                x: 0,
                width: 0,
                height: 0,
                focus: true,
            }),
            Call::Notify(Toast {
                title: "Call".into(),
                message: "line 1\nline 2".into(),
                duration: Duration::from_millis(2500),
                color: Some("Red".into()),
                width: None,
                height: Some(100),
            }),
            Call::Notify(Toast {
                title: "Call".into(),
                message: "m".into(),
                duration: Duration::from_millis(5000),
                color: None,
                width: None,
                height: None,
            }),
        ]
    );
}

#[test]
fn legacy_executable_names_map_to_declared_programs_or_say_what_to_declare() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    c.ok(json!({"action": "launchProcess", "name": "chrome.exe", "parameter": "https://crm.example.com/case?id=1"}));
    let r = c.fail(
        json!({"action": "launchProcess", "name": "notepad.exe"}),
        "unknown_program",
    );
    let m = r["errorMessage"].as_str().unwrap();
    assert!(m.contains("<Program name=\"notepad.exe\""), "{m}");
    assert_eq!(s.rec.calls().len(), 1);
}

#[test]
fn bad_arguments_are_refused_and_nothing_is_launched() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    let long = "a".repeat(10 * 1024);
    let cases: Vec<(Value, &str, &str)> = vec![
        // a path instead of a name
        (
            json!({"action": "launchProcess", "name": "/usr/bin/touch", "parameter": "x"}),
            "unknown_program",
            "path",
        ),
        (
            json!({"action": "launchProcess", "name": "C:\\Windows\\System32\\calc.exe"}),
            "unknown_program",
            "path",
        ),
        (
            json!({"action": "launchProcess", "name": "../touch"}),
            "unknown_program",
            "path",
        ),
        // not declared
        (
            json!({"action": "launchProcess", "name": "sh", "parameter": "-c id"}),
            "unknown_program",
            "declare",
        ),
        // shell metacharacters: refused by the rule (and never run through a shell anyway)
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "a; rm -rf ~"}),
            "invalid_argument",
            "rule",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "$(id)"}),
            "invalid_argument",
            "rule",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "`id`"}),
            "invalid_argument",
            "rule",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "a|b&c>d"}),
            "invalid_argument",
            "rule",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "--help"}),
            "invalid_argument",
            "option",
        ),
        // NUL, newline, control, length
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "a\u{0}b"}),
            "invalid_argument",
            "NUL",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "a\nb"}),
            "invalid_argument",
            "line break",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": "a\u{1b}b"}),
            "invalid_argument",
            "control",
        ),
        (
            json!({"action": "launchProcess", "name": "touch", "parameter": long}),
            "invalid_argument",
            "at most",
        ),
        (
            json!({"action": "launchProcess", "name": "touch\n"}),
            "invalid_argument",
            "line break",
        ),
        (
            json!({"action": "launchProcess", "name": long}),
            "invalid_argument",
            "at most",
        ),
        // a parameter for a program that takes none
        (
            json!({"action": "launchProcess", "name": "calc", "parameter": "x"}),
            "invalid_argument",
            "no parameter",
        ),
        // wrong types
        (
            json!({"action": "launchProcess", "name": 5}),
            "bad_request",
            "invalid",
        ),
        (json!({"action": "launchProcess"}), "bad_request", "name"),
        // openUrl: schemes, patterns, characters
        (
            json!({"action": "openUrl", "url": "file:///etc/passwd"}),
            "invalid_argument",
            "http",
        ),
        (
            json!({"action": "openUrl", "url": "javascript:alert(1)"}),
            "invalid_argument",
            "http",
        ),
        (
            json!({"action": "openUrl", "url": "https://evil.example.org/"}),
            "forbidden",
            "OpenUrl",
        ),
        (
            json!({"action": "openUrl", "url": "https://crm.example.com.evil.org/"}),
            "forbidden",
            "OpenUrl",
        ),
        (
            json!({"action": "openUrl", "url": "https://crm.example.com/a b"}),
            "invalid_argument",
            "spaces",
        ),
        (
            json!({"action": "openUrl", "url": "https://crm.example.com/\n"}),
            "invalid_argument",
            "line break",
        ),
        (
            json!({"action": "openUrl", "url": format!("https://crm.example.com/{long}")}),
            "invalid_argument",
            "at most",
        ),
        // window and toast arguments
        (
            json!({"action": "setSizeWindow", "windowName": ""}),
            "invalid_argument",
            "empty",
        ),
        (
            json!({"action": "setSizeWindow", "windowName": "a\u{0}"}),
            "invalid_argument",
            "NUL",
        ),
        (
            json!({"action": "setSizeWindow", "windowName": "w", "width": -5}),
            "invalid_argument",
            "width",
        ),
        (
            json!({"action": "setSizeWindow", "windowName": "w", "height": "tall"}),
            "invalid_argument",
            "height",
        ),
        (
            json!({"action": "setSizeWindow", "windowName": "w", "focus": "maybe"}),
            "invalid_argument",
            "focus",
        ),
        (
            json!({"action": "showNotification", "title": "a\nb", "message": "m"}),
            "invalid_argument",
            "line break",
        ),
        (
            json!({"action": "showNotification", "title": "t", "message": "m\u{0}"}),
            "invalid_argument",
            "NUL",
        ),
        (
            json!({"action": "showNotification", "title": "t", "message": long}),
            "invalid_argument",
            "at most",
        ),
        (
            json!({"action": "showNotification", "title": "t", "message": "m", "duration": 86_400_000}),
            "invalid_argument",
            "duration",
        ),
        (
            json!({"action": "showPickupDialog", "title": "t", "buttonText": "b", "interactionId": "a\nb"}),
            "invalid_argument",
            "line break",
        ),
        (
            json!({"action": "showPickupDialog", "title": "t", "buttonText": "b"}),
            "bad_request",
            "InteractionId",
        ),
    ];
    for (req, code, says) in cases {
        let r = c.fail(req.clone(), code);
        let m = r["errorMessage"].as_str().unwrap();
        assert!(m.contains(says), "{req} -> {m}");
    }
    c.quiet();
    assert!(s.rec.calls().is_empty(), "{:?}", s.rec.calls());
}

#[test]
fn platform_failures_are_replies_with_a_reason_never_a_fake_success() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    s.rec
        .set_window(Err(ActionError::NotSupported("Wayland".into())));
    let r = c.fail(
        json!({"action": "setSizeWindow", "requestId": "w", "windowName": "CRM"}),
        "not_supported",
    );
    assert_eq!(r["requestId"], "w");
    assert!(r["errorMessage"].as_str().unwrap().contains("Wayland"));
    s.rec.set_window(Err(ActionError::NotFound(
        "no window titled \"CRM\"".into(),
    )));
    c.fail(
        json!({"action": "setSizeWindow", "windowName": "CRM"}),
        "not_found",
    );
    s.rec
        .set_launch(Err(ActionError::Failed("permission denied".into())));
    c.fail(
        json!({"action": "launchProcess", "name": "calc"}),
        "action_failed",
    );
    s.rec.set_notify(Err(ActionError::NotSupported(
        "no notification service".into(),
    )));
    c.fail(
        json!({"action": "showNotification", "title": "t", "message": "m"}),
        "not_supported",
    );
    s.rec
        .set_open_url(Err(ActionError::NotSupported("xdg-open".into())));
    c.fail(
        json!({"action": "openUrl", "url": "https://crm.example.com/"}),
        "not_supported",
    );
}

#[test]
fn a_reply_for_a_closed_connection_is_dropped() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    let mut other = Client::open(&s, ALL);
    s.rec.hold_pickups();
    c.ok(json!({"action": "showPickupDialog", "title": "t", "buttonText": "b", "interactionId": "k"}));
    s.hub.close(c.session.id);
    s.rec.answer_pickup(Ok(PickupOutcome::Dismissed));
    // The hub stays usable and the next dialog with that key is a new one.
    let r = other.ok(json!({"action": "showPickupDialog", "title": "t", "buttonText": "b", "interactionId": "k"}));
    let shown = r["data"]["shown"].as_bool().unwrap();
    if !shown {
        // The first dialog's end may not have been processed yet: wait for its event.
        let e = other.event();
        assert_eq!(e["event"], "PickupResult", "{e}");
    }
}

#[test]
fn one_pickup_dialog_per_key_and_every_asker_hears_the_result() {
    let s = setup();
    let mut a = Client::open(&s, ALL);
    let mut b = Client::open(&s, ALL);
    let mut watcher = Client::open(&s, Capabilities::DATA_ONLY);
    for c in [&mut a, &mut b, &mut watcher] {
        c.ok(json!({"action": "createEnvironment", "environment": "VOICE", "clientName": "crm"}));
    }
    watcher.ok(json!({"action": "setNotificationsOn", "environment": "VOICE", "name": "*"}));
    // The toolbar published the interaction; the pages give no key.
    watcher.ok(json!({"action": "setContextVariable", "environment": "VOICE", "name": "InteractionId", "value": "0001AaBb"}));
    s.rec.hold_pickups();
    let ra = a.ok(json!({"action": "showPickupDialog", "requestId": 1, "title": "Call from 32 2 555", "buttonText": "Take"}));
    assert_eq!(ra["data"], json!({"key": "0001AaBb", "shown": true}));
    let rb = b.ok(json!({"action": "showPickupDialog", "requestId": 2, "title": "Call from 32 2 555", "buttonText": "Take"}));
    assert_eq!(rb["data"], json!({"key": "0001AaBb", "shown": false}));
    // Asked again by the same tab: still the one dialog.
    a.ok(json!({"action": "showPickupDialog", "title": "x", "buttonText": "y", "interactionId": "0001AaBb"}));
    s.rec.answer_pickup(Ok(PickupOutcome::PickedUp));
    for c in [&mut a, &mut b] {
        let e = c.event();
        assert_eq!(
            e,
            json!({"type": "event", "event": "PickupResult", "key": "0001AaBb", "result": "pickedUp"})
        );
    }
    // The result is in VOICE, and a subscriber heard it as ordinary changes.
    let k = watcher.event();
    assert_eq!(
        (k["VarChanged"].as_str(), k["ValueChanged"].as_str()),
        (Some("PickupKey"), Some("0001AaBb")),
        "{k}"
    );
    let r = watcher.event();
    assert_eq!(
        (r["VarChanged"].as_str(), r["ValueChanged"].as_str()),
        (Some("PickupResult"), Some("pickedUp")),
        "{r}"
    );
    let env = watcher.ok(json!({"action": "getEnvironment", "environment": "VOICE"}));
    assert_eq!(env["data"]["PickupResult"], "pickedUp");
    let pickups: Vec<Call> = s
        .rec
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Pickup(_)))
        .collect();
    assert_eq!(pickups.len(), 1, "{pickups:?}");
    let Call::Pickup(d) = &pickups[0] else {
        unreachable!()
    };
    assert_eq!(
        (d.key.as_str(), d.title.as_str(), d.button_text.as_str()),
        ("0001AaBb", "Call from 32 2 555", "Take")
    );
    assert_eq!(d.timeout, Duration::from_secs(30));
    // A later call with the same key shows a new dialog.
    s.rec.answer_pickup(Ok(PickupOutcome::TimedOut));
    let r = a.ok(json!({"action": "showPickupDialog", "title": "t", "buttonText": "b"}));
    assert_eq!(r["data"]["shown"], true);
    let e = a.event();
    assert_eq!(e["result"], "timedOut");
    b.quiet();
}

#[test]
fn a_failed_pickup_dialog_says_why_in_the_event() {
    let s = setup();
    let mut a = Client::open(&s, ALL);
    s.rec.answer_pickup(Err(ActionError::NotSupported(
        "no actions capability".into(),
    )));
    a.ok(json!({"action": "showPickupDialog", "title": "t", "buttonText": "b", "interactionId": "k"}));
    let e = a.event();
    assert_eq!(e["result"], "failed");
    assert_eq!(e["errorCode"], "not_supported");
}

fn gen_request(process: &str) -> Value {
    json!({"action": "setContextJSON", "environment": "Default", "data": [
        {"GEN_P2C": "RqStartProcess"}, {"process": process}, {"argument": "marker"}, {"Other": "kept"}]})
}

#[test]
fn gen_p2c_is_off_by_default_and_then_only_data() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    c.ok(json!({"action": "createEnvironment", "environment": "Default", "clientName": "legacy"}));
    c.ok(gen_request("touch"));
    let env = c.ok(json!({"action": "getEnvironment", "environment": "Default"}));
    assert_eq!(env["data"]["GEN_P2C"], "RqStartProcess");
    assert!(s.rec.calls().is_empty());
}

fn enabled() -> GenP2c {
    GenP2c {
        enabled: true,
        toolbar_title: Some("Workspace".into()),
    }
}

#[test]
fn gen_p2c_when_enabled_acts_once_and_its_keys_are_consumed() {
    let s = setup_with(enabled());
    let mut page = Client::open(&s, ALL);
    let mut listener = Client::open(&s, Capabilities::DATA_ONLY);
    for c in [&mut page, &mut listener] {
        c.ok(json!({"action": "createEnvironment", "environment": "Default", "clientName": "x"}));
    }
    listener.ok(json!({"action": "setNotificationsOn", "environment": "Default", "name": "*"}));
    let token_reply = listener.ok(json!({"action": "getEnvironment", "environment": "Default"}));
    let (epoch, seq) = (token_reply["epoch"].clone(), token_reply["seq"].clone());

    page.ok(gen_request("touch"));
    // The action ran once, with the declared program and the checked argument.
    let end = Instant::now() + DEADLINE;
    while s.rec.calls().is_empty() {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        s.rec.calls(),
        vec![Call::Launch(LaunchSpec {
            name: "touch".into(),
            path: "/usr/bin/touch".into(),
            args: vec!["--".into(), "marker".into()],
        })]
    );
    // Only the ordinary item was stored and broadcast.
    let e = listener.event();
    assert_eq!(e["VarChanged"], "Other", "{e}");
    listener.quiet();
    let env = listener.ok(json!({"action": "getEnvironment", "environment": "Default"}));
    assert_eq!(env["data"], json!({"Other": "kept"}));
    // A resume replays only the ordinary item: nothing to trigger again.
    let mut again = Client::open(&s, ALL);
    let r = again.ok(json!({"action": "resume", "token": "unknown-token", "environments": [
        {"environment": "Default", "clientName": "x", "epoch": epoch, "seq": seq, "subscriptions": [{"name": "*"}]}]}));
    assert_eq!(
        r["data"]["environments"][0]["values"],
        json!({"Other": "kept"})
    );
    // RqStartGWT: loginurl goes to the declared browser, never into the store.
    page.ok(
        json!({"action": "setAllJSON", "data": [{"environment": "Default", "data": {
        "GEN_P2C": "RqStartGWT", "iexploreprocess": "chrome.exe",
        "loginurl": "https://crm.example.com/gwt?username=a&userpwd=secret"}}]}),
    );
    // RqStopGWT closes the configured toolbar window.
    page.ok(json!({"action": "setContextJSON", "environment": "Default", "data": [{"GEN_P2C": "RqStopGWT"}]}));
    let end = Instant::now() + DEADLINE;
    while s.rec.calls().len() < 3 {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(2));
    }
    let calls = s.rec.calls();
    assert!(
        calls.contains(&Call::Launch(LaunchSpec {
            name: "chrome.exe".into(),
            path: "/usr/bin/chromium".into(),
            args: vec![
                "--new-window".into(),
                "https://crm.example.com/gwt?username=a&userpwd=secret".into()
            ],
        })),
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::CloseWindow("Workspace".into())),
        "{calls:?}"
    );
    listener.quiet();
    let all = listener.ok(json!({"action": "getData"}));
    assert!(!all.to_string().contains("secret"), "{all}");
    assert!(!all.to_string().contains("GEN_P2C"), "{all}");
}

#[test]
fn gen_p2c_refusals_store_nothing_and_run_nothing() {
    let s = setup_with(enabled());
    let mut page = Client::open(&s, ALL);
    let mut data_only = Client::open(&s, Capabilities::DATA_ONLY);
    for c in [&mut page, &mut data_only] {
        c.ok(json!({"action": "createEnvironment", "environment": "Default", "clientName": "x"}));
    }
    // Without the launch capability.
    data_only.fail(gen_request("touch"), "forbidden");
    // Keys one at a time are refused: a request arrives whole, loginurl is never stored.
    page.fail(json!({"action": "setContextVariable", "environment": "Default", "name": "GEN_P2C", "value": "RqStartProcess"}), "bad_request");
    page.fail(json!({"action": "setContextVariable", "environment": "Default", "name": "loginurl", "value": "https://x/?pwd=1"}), "bad_request");
    // Keys without GEN_P2C, unknown requests, undeclared or path programs, bad arguments.
    page.fail(json!({"action": "setContextJSON", "environment": "Default", "data": [{"process": "touch"}]}), "bad_request");
    page.fail(json!({"action": "setContextJSON", "environment": "Default", "data": [{"GEN_P2C": "RqFormatDisk"}]}), "bad_request");
    page.fail(gen_request("/usr/bin/touch"), "unknown_program");
    page.fail(gen_request("bash"), "unknown_program");
    page.fail(
        json!({"action": "setContextJSON", "environment": "Default", "data": [
        {"GEN_P2C": "RqStartProcess"}, {"process": "touch"}, {"argument": "x; reboot"}]}),
        "invalid_argument",
    );
    page.fail(json!({"action": "setContextJSON", "environment": "Default", "data": [
        {"GEN_P2C": "RqStartGWT"}, {"loginurl": "file:///etc/shadow"}, {"iexploreprocess": "chrome.exe"}]}), "invalid_argument");
    page.fail(
        json!({"action": "setContextJSON", "environment": "Default", "data": [
        {"GEN_P2C": "RqStartGWT"}, {"loginurl": "https://crm.example.com/x"}]}),
        "unknown_program",
    );
    let env = page.ok(json!({"action": "getEnvironment", "environment": "Default"}));
    assert_eq!(env["data"], json!({}));
    assert!(s.rec.calls().is_empty(), "{:?}", s.rec.calls());
    // Other environments are untouched by the rule.
    page.ok(json!({"action": "createEnvironment", "environment": "VOICE", "clientName": "x"}));
    page.ok(json!({"action": "setContextVariable", "environment": "VOICE", "name": "process", "value": "x"}));
}

#[test]
fn a_url_parameter_of_an_open_url_program_is_handled_exactly_as_open_url() {
    let s = setup();
    let mut c = Client::open(&s, ALL);
    // Legacy `launchProcess('firefox.exe', url)`: opened in the default
    // browser, the reply still names the request's action, no pid.
    let r = c.ok(json!({"action": "launchProcess", "requestId": 3, "name": "Firefox.exe", "parameter": "https://crm.example.com/case/9?t=1"}));
    assert_eq!(r["requestId"], 3);
    assert_eq!(r["action"], "launchProcess");
    assert!(r.get("data").is_none_or(Value::is_null), "{r}");
    // The program's own rule (^[a-z]{1,16}$) does not apply to URLs, and
    // its fixed path is never started for them.
    c.ok(json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "https://x.intranet.example.com/a"}));
    // URLs outside the origin's <OpenUrl> patterns, or not openable, are
    // refused as openUrl refuses them.
    for bad in [
        "https://crm.example.com.evil.org/x",
        "https://evil.example/crm.example.com/",
        "http://",
        "https://crm.example.com/a b",
    ] {
        let code = if bad.contains(' ') || bad == "http://" {
            "invalid_argument"
        } else {
            "forbidden"
        };
        c.fail(
            json!({"action": "launchProcess", "name": "firefox.exe", "parameter": bad}),
            code,
        );
    }
    // A program without openUrl="true" keeps its launch rules for URLs.
    c.ok(json!({"action": "launchProcess", "name": "chrome.exe", "parameter": "https://crm.example.com/a"}));
    // Non-URL parameters: the normal launch rules of the open-URL program.
    let r = c.ok(json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "profile"}));
    assert_eq!(r["data"], json!({"pid": 4242}));
    c.fail(
        json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "file:///etc/passwd"}),
        "invalid_argument",
    );
    c.quiet();
    assert_eq!(
        s.rec.calls(),
        vec![
            Call::OpenUrl("https://crm.example.com/case/9?t=1".into()),
            Call::OpenUrl("https://x.intranet.example.com/a".into()),
            Call::Launch(LaunchSpec {
                name: "chrome.exe".into(),
                path: "/usr/bin/chromium".into(),
                args: vec!["--new-window".into(), "https://crm.example.com/a".into()],
            }),
            Call::Launch(LaunchSpec {
                name: "firefox.exe".into(),
                path: "/usr/bin/firefox".into(),
                args: vec!["profile".into()],
            }),
        ]
    );
}

#[test]
fn a_url_parameter_of_an_open_url_program_needs_the_open_url_capability() {
    let s = setup();
    // launch granted, openUrl not: the URL is refused, nothing runs.
    let mut caps = ALL;
    caps.open_url = false;
    let mut c = Client::open(&s, caps);
    let r = c.fail(
        json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "https://crm.example.com/case/1"}),
        "forbidden",
    );
    assert_eq!(r["action"], "launchProcess", "{r}");
    assert!(
        r["errorMessage"].as_str().unwrap().contains("openUrl"),
        "{r}"
    );
    // Its non-URL parameters still launch under the launch capability.
    c.ok(json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "profile"}));
    // openUrl granted, launch not: the URL opens, a plain launch is refused.
    let mut caps = ALL;
    caps.launch = false;
    let mut d = Client::open(&s, caps);
    d.ok(json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "https://crm.example.com/case/2"}));
    d.fail(
        json!({"action": "launchProcess", "name": "firefox.exe", "parameter": "profile"}),
        "forbidden",
    );
    c.quiet();
    d.quiet();
    assert_eq!(
        s.rec.calls(),
        vec![
            Call::Launch(LaunchSpec {
                name: "firefox.exe".into(),
                path: "/usr/bin/firefox".into(),
                args: vec!["profile".into()],
            }),
            Call::OpenUrl("https://crm.example.com/case/2".into()),
        ]
    );
}
