//! Invariant checks shared by the cargo-fuzz targets (`fuzz/`) and the
//! stable corpus test (`tests/fuzz_corpus.rs`), so a seed or a saved crash
//! is checked by exactly the same code in the normal `cargo test` as under
//! libFuzzer. Not part of the daemon's API: every function panics when an
//! invariant breaks, which is how a fuzzer reports a finding.
//!
//! Three surfaces: the hub (parser and dispatcher, driven through its public
//! API across three sessions), the handshake guard (`server::guard::check`)
//! and the configuration parser (`config::parse_str`). The corpus file
//! formats are plain text so seeds stay readable: see `fuzz/README.md`.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::config::{Capabilities, Config, ConfigSource, OriginEntry, OriginPattern, VarFilter};
use crate::hub::{Hub, HubSettings, Outgoing, PeerInfo, Session};
use crate::peer::OsUser;
use crate::protocol::MAX_REQUEST_ID_LEN;
use crate::server::guard::{self, GuardContext, Refusal};

/// Sessions the hub harness opens: two pages (one with allow-lists) and a
/// native client, so cross-connection events and filters are exercised.
pub const SESSIONS: usize = 3;

/// Small limits so a short input reaches every limit and overflow path.
fn small_limits() -> crate::config::Limits {
    let mut limits = Config::embedded().limits;
    limits.max_environments = 8;
    limits.max_environments_per_connection = 6;
    limits.max_variables = 64;
    limits.max_variables_per_connection = 48;
    limits.max_variables_per_environment = 24;
    limits.max_value_bytes = 256;
    limits.replay_events = 16;
    limits.outbox_messages = 64;
    limits
}

fn user() -> OsUser {
    OsUser {
        id: "uid:1000".into(),
        name: "alice".into(),
    }
}

/// The peer of session `i` (0: page with full access, 1: page restricted to
/// `VOICE` reads and `VOICE.Ani*` writes, 2: native client).
fn peer(i: usize) -> PeerInfo {
    let base = PeerInfo {
        os_user: user(),
        origin: Some("https://crm.example.com".into()),
        capabilities: Capabilities::DATA_ONLY,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: Vec::new(),
    };
    match i % SESSIONS {
        0 => base,
        1 => PeerInfo {
            origin: Some("https://softphone.example.org".into()),
            read: VarFilter {
                patterns: vec!["VOICE.*".into()],
            },
            write: VarFilter {
                patterns: vec!["VOICE.Ani*".into()],
            },
            ..base
        },
        _ => PeerInfo {
            origin: None,
            ..base
        },
    }
}

/// A hub with three open sessions; [`HubHarness::send`] checks every reply.
pub struct HubHarness {
    hub: Hub,
    sessions: Vec<Session>,
    /// Requests sent, for messages.
    sent: usize,
}

impl Default for HubHarness {
    fn default() -> Self {
        HubHarness::new()
    }
}

impl HubHarness {
    /// A fresh hub (Recording platform, small limits) with every session open
    /// and its hello checked.
    pub fn new() -> HubHarness {
        let settings = HubSettings {
            limits: small_limits(),
            resume_token_ttl: Duration::from_secs(60),
            host_name: "fuzz-host".into(),
            user_name: "alice".into(),
            platform: Arc::new(crate::platform::Recording::new()),
            programs: Vec::new(),
            gen_p2c: Default::default(),
            pickup_timeout: Duration::from_secs(1),
            inspector_token: None,
        };
        let hub = Hub::new(settings);
        let sessions = (0..SESSIONS).map(|i| open(&hub, i)).collect();
        HubHarness {
            hub,
            sessions,
            sent: 0,
        }
    }

    /// Sends `frame` from session `who % SESSIONS` and checks: exactly one
    /// message comes back to it and it is a reply (so no connection receives
    /// its own write), echoing a valid `requestId`; every other session got
    /// only events. A session the hub closed (outbox overflow) is reopened.
    pub fn send(&mut self, who: usize, frame: &str) {
        let who = who % SESSIONS;
        self.sent += 1;
        let id = self.sessions[who].id;
        self.hub.handle(id, frame);
        let reply = match self.sessions[who].try_recv() {
            Some(Outgoing::Text(t)) => json(t.as_str()),
            other => panic!("request {} {frame:?}: no reply, got {other:?}", self.sent),
        };
        assert_eq!(reply["type"], "reply", "{frame:?} -> {reply}");
        match reply["result"].as_str() {
            Some("SUCCESS") => assert!(reply.get("errorCode").is_none(), "{reply}"),
            Some("FAILURE") => {
                assert!(reply["errorCode"].is_string(), "{reply}");
                assert!(
                    reply["errorMessage"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{reply}"
                );
            }
            _ => panic!("{frame:?} -> reply without result: {reply}"),
        }
        if let Some(expected) = echoed_id(frame) {
            assert_eq!(reply["requestId"], expected, "{frame:?} -> {reply}");
        }
        match self.sessions[who].try_recv() {
            None => {}
            // Repeated malformed messages end the connection with 1008 after
            // the last FAILURE; a real client would reconnect.
            Some(Outgoing::Close { code, .. }) if code == crate::protocol::CLOSE_POLICY => {
                assert_eq!(
                    reply["result"], "FAILURE",
                    "1008 only after a failure: {reply}"
                );
                self.hub.close(self.sessions[who].id);
                self.sessions[who] = open(&self.hub, who);
            }
            Some(extra) => {
                panic!("{frame:?}: a second message to the sender: {extra:?} (after {reply})")
            }
        }
        for i in (0..SESSIONS).filter(|&i| i != who) {
            let mut reopen = false;
            while let Some(msg) = self.sessions[i].try_recv() {
                match msg {
                    Outgoing::Text(t) => {
                        let v = json(t.as_str());
                        assert_eq!(v["type"], "event", "session {i} after {frame:?}: {v}");
                    }
                    Outgoing::Close { code, .. } => {
                        assert_eq!(code, crate::protocol::CLOSE_TOO_SLOW);
                        reopen = true;
                        break;
                    }
                }
            }
            if reopen {
                self.hub.close(self.sessions[i].id);
                self.sessions[i] = open(&self.hub, i);
            }
        }
    }

    /// Closes every session and checks that the hub forgot them.
    pub fn finish(self) {
        for s in &self.sessions {
            self.hub.close(s.id);
        }
        assert_eq!(self.hub.connection_count(), 0);
    }
}

fn open(hub: &Hub, i: usize) -> Session {
    let mut session = hub.open(peer(i));
    match session.try_recv() {
        Some(Outgoing::Text(t)) => assert_eq!(json(t.as_str())["type"], "hello"),
        other => panic!("no hello: {other:?}"),
    }
    session
}

fn json(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => panic!("the hub sent invalid JSON ({e}): {text}"),
    }
}

/// The `requestId` a reply to `frame` must echo, when the frame is a JSON
/// object with a string `action` and a valid id.
fn echoed_id(frame: &str) -> Option<Value> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(frame) else {
        return None;
    };
    if !obj.get("action").is_some_and(Value::is_string) {
        return None;
    }
    match obj.get("requestId")? {
        id @ Value::Number(_) => Some(id.clone()),
        Value::String(s) if s.len() <= MAX_REQUEST_ID_LEN => Some(Value::String(s.clone())),
        _ => None,
    }
}

/// Runs a `hub_frames` corpus file: one frame per line, optionally prefixed
/// with the session digit and a space (`1 {"action":"getData"}`); no prefix
/// means session 0. Blank lines are skipped.
pub fn hub_frames(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut h = HubHarness::new();
    for line in text.lines().take(256) {
        let (who, frame) = match line.as_bytes() {
            [d @ b'0'..=b'9', b' ', ..] => (usize::from(d - b'0'), &line[2..]),
            _ => (0, line),
        };
        if frame.trim().is_empty() {
            continue;
        }
        h.send(who, frame);
    }
    h.finish();
}

/// The configuration the guard is checked against: one exact origin with
/// every capability, one wildcard origin, one extra host name, port 8443.
pub fn guard_config() -> Config {
    let mut c = Config::embedded();
    let entry = |pattern: &str, capabilities| OriginEntry {
        pattern: OriginPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")),
        capabilities,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: vec!["https://*.example.com/*".into()],
        from_bare_host: false,
    };
    c.origins
        .push(entry("https://crm.example.com", Capabilities::ALL));
    c.origins
        .push(entry("https://*.example.org", Capabilities::DATA_ONLY));
    c.extra_host_names.push("ctx.corp.local".into());
    c
}

/// Runs a `guard` corpus file: `Name: value` header lines (bytes, so
/// invalid values reach the guard) plus directives `@peer other`, `@peer
/// unknown` and `@allow-other-users`. Lines that are no valid header name or
/// value are dropped, as the HTTP parser would refuse them.
pub fn guard_headers(data: &[u8]) {
    let mut config = guard_config();
    let me = user();
    let mut peer: Result<OsUser, String> = Ok(me.clone());
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n').take(64) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line {
            b"@peer other" => {
                peer = Ok(OsUser {
                    id: "uid:1001".into(),
                    name: "bob".into(),
                })
            }
            b"@peer unknown" => peer = Err("socket gone".into()),
            b"@allow-other-users" => config.allow_other_users = true,
            _ => {
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    continue;
                };
                let value = line[colon + 1..]
                    .strip_prefix(b" ")
                    .unwrap_or(&line[colon + 1..]);
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_bytes(value),
                ) {
                    headers.append(n, v);
                }
            }
        }
    }
    check_guard(&headers, &config, &me, &peer);
}

/// Checks `guard::check` on one header map: deterministic, and every
/// admission and refusal agrees with the headers it was given.
pub fn check_guard(
    headers: &HeaderMap,
    config: &Config,
    me: &OsUser,
    peer: &Result<OsUser, String>,
) {
    let cx = GuardContext {
        config,
        port: 8443,
        me,
        peer,
    };
    let result = guard::check(headers, &cx);
    assert_eq!(result, guard::check(headers, &cx), "not deterministic");
    let hosts: Vec<&HeaderValue> = headers.get_all(http::header::HOST).iter().collect();
    let origins: Vec<&HeaderValue> = headers.get_all(http::header::ORIGIN).iter().collect();
    match result {
        Ok(admitted) => {
            assert_eq!(hosts.len(), 1, "admitted without exactly one Host");
            assert!(origins.len() <= 1, "admitted with duplicate Origin");
            let host = hosts[0]
                .to_str()
                .unwrap_or_else(|_| panic!("unreadable Host admitted"));
            assert!(
                guard::host_is_ours(host, &cx),
                "foreign Host {host:?} admitted"
            );
            assert_eq!(
                peer.as_ref().ok(),
                Some(&admitted.user),
                "wrong user admitted"
            );
            match origins.first() {
                None => {
                    assert_eq!(admitted.origin, None);
                    assert_eq!(admitted.capabilities, Capabilities::DATA_ONLY);
                    assert_eq!(
                        admitted.user.id, me.id,
                        "native client of another user admitted"
                    );
                }
                Some(o) => {
                    let o = o
                        .to_str()
                        .unwrap_or_else(|_| panic!("unreadable Origin admitted"));
                    assert!(
                        !o.trim().eq_ignore_ascii_case("null"),
                        "Origin null admitted"
                    );
                    assert_eq!(admitted.origin.as_deref(), Some(o));
                    if admitted.user.id != me.id {
                        assert!(config.allow_other_users, "another user admitted");
                        assert!(
                            admitted.capabilities.names().iter().all(|c| *c == "data"),
                            "another user got a desktop capability"
                        );
                    }
                }
            }
        }
        Err(refusal) => {
            assert!(
                matches!(
                    refusal.status(),
                    StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
                ),
                "{refusal:?}"
            );
            assert!(!refusal.to_string().is_empty());
            if hosts.len() > 1 {
                assert_eq!(refusal, Refusal::DuplicateHeader("Host"));
            }
            if hosts.is_empty() {
                assert_eq!(refusal, Refusal::MissingHost);
            }
        }
    }
}

/// Checks `config::parse_str` on arbitrary text: no panic, the same answer
/// twice, a loaded configuration can be described, and every error and
/// warning is a non-empty sentence.
pub fn config_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let outcome = |r: Result<crate::config::Loaded, crate::config::ConfigError>| match r {
        Ok(loaded) => {
            assert!(loaded.warnings.iter().all(|w| !w.is_empty()));
            Ok((crate::config::describe(&loaded.config), loaded.warnings))
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            Err(message)
        }
    };
    let first = outcome(crate::config::parse_str(&text, ConfigSource::Embedded));
    let second = outcome(crate::config::parse_str(&text, ConfigSource::Embedded));
    assert_eq!(first, second, "config parsing is not deterministic");
    if let Ok((described, _)) = first {
        assert!(!described.is_empty());
    }
}
