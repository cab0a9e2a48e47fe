//! The fuzz seed corpora (fuzz/corpus/<target>/) as ordinary stable tests:
//! every file is run through the same checks the cargo-fuzz targets use
//! (`wsconnector::fuzzing`, and fuzz/src/actions.rs for the structure-aware
//! hub target), so a seed or a saved crash that breaks an invariant fails
//! the normal `cargo test`. Each test also insists its corpus is there and
//! not empty, so a moved directory cannot pass silently.

use std::path::PathBuf;

#[path = "../fuzz/src/actions.rs"]
#[allow(dead_code, missing_docs)]
mod actions;

/// Every file of fuzz/corpus/<target>, sorted, with its contents.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: expected a seed corpus, found {} files",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("read corpus file");
            (p, data)
        })
        .collect()
}

/// Runs `check` on every file, naming the file that fails.
fn run_all(target: &str, check: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        eprintln!("{target}: {}", path.display());
        check(&data);
    }
}

#[test]
fn hub_frames_corpus() {
    run_all("hub_frames", wsconnector::fuzzing::hub_frames);
}

#[test]
fn hub_actions_corpus() {
    run_all("hub_actions", actions::run);
}

#[test]
fn guard_corpus() {
    run_all("guard", wsconnector::fuzzing::guard_headers);
}

#[test]
fn config_corpus() {
    run_all("config", wsconnector::fuzzing::config_text);
}

/// The harness itself must be able to fail: a frame sequence with a valid
/// exchange passes, and the checks see real replies and events.
#[test]
fn hub_harness_sees_events_and_replies() {
    let mut h = wsconnector::fuzzing::HubHarness::new();
    h.send(
        0,
        r#"{"action":"createEnvironment","environment":"VOICE","clientName":"a"}"#,
    );
    h.send(
        2,
        r#"{"action":"createEnvironment","environment":"VOICE","clientName":"b"}"#,
    );
    h.send(
        0,
        r#"{"action":"setNotificationsOn","environment":"VOICE","name":"*"}"#,
    );
    // Session 2's write produces an event for session 0: `send` checks it is an event.
    h.send(2, r#"{"action":"setContextVariable","environment":"VOICE","name":"Ani","value":"1","requestId":7}"#);
    // Found by hub_actions: without serde_json's `float_roundtrip` a float
    // requestId (or value) came back one ulp off.
    h.send(
        1,
        r#"{"action":"getVersion","requestId":1.0884108273381906e-16}"#,
    );
    h.finish();
}

/// The guard check refuses what it must: a corpus line format that is
/// decoded wrongly would make every file trivially pass.
#[test]
fn guard_lines_are_decoded() {
    use http::{HeaderMap, HeaderValue};
    use wsconnector::fuzzing::{check_guard, guard_config};
    use wsconnector::peer::OsUser;
    let me = OsUser {
        id: "uid:1000".into(),
        name: "alice".into(),
    };
    let mut headers = HeaderMap::new();
    headers.append("host", HeaderValue::from_static("localhost:8443"));
    headers.append(
        "origin",
        HeaderValue::from_static("https://crm.example.com"),
    );
    let config = guard_config();
    check_guard(&headers, &config, &me, &Ok(me.clone()));
    let cx = wsconnector::server::guard::GuardContext {
        config: &config,
        port: 8443,
        me: &me,
        peer: &Ok(me.clone()),
    };
    assert!(wsconnector::server::guard::check(&headers, &cx).is_ok());
    headers.append("host", HeaderValue::from_static("localhost:8443"));
    assert!(wsconnector::server::guard::check(&headers, &cx).is_err());
}
