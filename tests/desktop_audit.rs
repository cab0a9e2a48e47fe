//! The audit log of desktop actions, through the daemon's real logging set-up:
//! one INFO record (target `audit`) per action, refused or performed, with
//! origin, OS user, action, arguments and result — and no secrets (`loginurl`,
//! URL queries) or customer texts (toast and dialog texts).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wsconnector::config::{Capabilities, Config, GenP2c, LogConfig, LogLevel, Program, VarFilter};
use wsconnector::hub::{Hub, HubSettings, Outgoing, PeerInfo};
use wsconnector::logging::{self, LOG_FILE_NAME};
use wsconnector::peer::OsUser;
use wsconnector::platform::Recording;

fn reply(session: &mut wsconnector::hub::Session) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(Outgoing::Text(t)) = session.try_recv() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "reply" {
                return v;
            }
        }
        assert!(Instant::now() < end, "no reply in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_desktop_action_is_audited_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        level: LogLevel::Info,
        path: Some(dir.path().to_path_buf()),
        file_size: 10 * 1024 * 1024,
        max_files: 1,
        log_values: false,
    };
    let (subscriber, guard) = logging::build_subscriber(&cfg, None).unwrap();
    // The only test in this binary: the jobs log from other threads.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let rec = Arc::new(Recording::new());
    let hub = Hub::new(HubSettings {
        limits: Config::embedded().limits,
        resume_token_ttl: Duration::from_secs(60),
        host_name: "PC-042".into(),
        user_name: "alice".into(),
        platform: rec.clone(),
        programs: vec![
            Program {
                name: "browser".into(),
                path: PathBuf::from("/usr/bin/chromium"),
                args: vec![],
                parameter_rule: Some("^https://.*$".into()),
                open_url: false,
            },
            Program {
                name: "chrome.exe".into(),
                path: PathBuf::from("/usr/bin/chromium"),
                args: vec![],
                parameter_rule: None,
                open_url: true,
            },
        ],
        gen_p2c: GenP2c {
            enabled: true,
            toolbar_title: None,
        },
        pickup_timeout: Duration::from_secs(30),
        inspector_token: None,
    });
    let peer = |capabilities| PeerInfo {
        os_user: OsUser {
            id: "uid:1000".into(),
            name: "alice".into(),
        },
        origin: Some("https://crm.example.com".into()),
        capabilities,
        read: VarFilter::default(),
        write: VarFilter::default(),
        open_url_patterns: vec!["https://crm.example.com/*".into()],
    };
    let all = Capabilities::ALL;
    let mut page = hub.open(peer(all));
    let mut plain = hub.open(peer(Capabilities::DATA_ONLY));
    page.try_recv();
    plain.try_recv();
    let send = |s: &mut wsconnector::hub::Session, v: Value| {
        hub.handle(s.id, &v.to_string());
        reply(s)
    };
    let r = send(
        &mut plain,
        json!({"action": "launchProcess", "name": "browser"}),
    );
    assert_eq!(r["errorCode"], "forbidden");
    let r = send(
        &mut page,
        json!({"action": "launchProcess", "name": "browser", "parameter": "https://crm.example.com/"}),
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let r = send(
        &mut page,
        json!({"action": "openUrl", "url": "https://crm.example.com/case?token=SECRET-TOKEN"}),
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let r = send(
        &mut page,
        json!({"action": "launchProcess", "name": "chrome.exe", "parameter": "https://crm.example.com/x?t=LAUNCH-SECRET"}),
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let r = send(
        &mut page,
        json!({"action": "showNotification", "title": "Call", "message": "CUSTOMER-NAME"}),
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    send(
        &mut page,
        json!({"action": "createEnvironment", "environment": "Default", "clientName": "legacy"}),
    );
    let r = send(
        &mut page,
        json!({"action": "setContextJSON", "environment": "Default", "data": [
        {"GEN_P2C": "RqStartGWT"}, {"iexploreprocess": "browser"},
        {"loginurl": "https://wo.example.com/start.jsp?username=a&userpwd=TOPSECRET"}]}),
    );
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let end = Instant::now() + Duration::from_secs(10);
    while rec.calls().len() < 5 {
        assert!(Instant::now() < end, "{:?}", rec.calls());
        std::thread::sleep(Duration::from_millis(2));
    }
    // A GEN_P2C job answers nobody: wait for its audit record instead.
    let log_path = dir.path().join(LOG_FILE_NAME);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("GEN_P2C RqStartGWT") && log.matches("pid 4242").count() >= 2 {
            break;
        }
        assert!(Instant::now() < end, "GEN_P2C audit record missing:\n{log}");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(guard);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("desktop action"))
        .collect();
    assert!(audit.iter().all(|l| l.contains("audit")), "{audit:#?}");
    assert!(
        audit
            .iter()
            .all(|l| l.contains("https://crm.example.com") && l.contains("alice")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("launchProcess") && l.contains("refused: forbidden")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("launchProcess") && l.contains("pid 4242")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("openUrl") && l.contains("?(masked)")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("showNotification") && l.contains("13 bytes")),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("GEN_P2C RqStartGWT") && l.contains("loginurl=(secret)")),
        "{audit:#?}"
    );
    // A URL launched through an openUrl="true" program is logged as openUrl.
    assert!(
        audit.iter().any(|l| l.contains("action=\"openUrl\"")
            && l.contains(r#"(launchProcess name=\"chrome.exe\")"#)
            && l.contains("https://crm.example.com/x?(masked)")
            && l.contains("result=\"ok\"")),
        "{audit:#?}"
    );
    for secret in [
        "LAUNCH-SECRET",
        "SECRET-TOKEN",
        "CUSTOMER-NAME",
        "TOPSECRET",
        "userpwd",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
