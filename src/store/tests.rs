//! Unit and property tests of the store.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn limits() -> Limits {
    crate::config::Config::embedded().limits
}

fn all() -> VarFilter {
    VarFilter::default()
}

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

fn store() -> Store {
    let mut s = Store::new(limits(), 1000);
    for c in [A, B, C] {
        s.connect(c);
    }
    s
}

fn set(s: &mut Store, c: ConnId, env: &str, name: &str, v: Value) -> Result<Commit, StoreError> {
    s.write(c, &[], vec![(env.into(), name.into(), v)], false, &all())
}

#[test]
fn register_creates_with_new_epoch_and_reregister_keeps_it() {
    let mut s = store();
    let (h, created) = s.register(A, "VOICE", "crm").unwrap();
    assert!(created);
    assert_eq!(h.seq, 0);
    let (h2, created2) = s.register(B, "VOICE", "toolbar").unwrap();
    assert!(!created2);
    assert_eq!(h.epoch, h2.epoch);
    let (other, _) = s.register(A, "EMAIL", "crm").unwrap();
    assert_ne!(other.epoch, h.epoch);
    s.register(A, "VOICE", "renamed").unwrap();
    assert_eq!(s.registration(A, "VOICE").unwrap().client_name, "renamed");
}

#[test]
fn writes_need_registration_and_valid_input() {
    let mut s = store();
    assert_eq!(
        set(&mut s, A, "VOICE", "x", json!(1)).unwrap_err().code(),
        ErrorCode::NotRegistered
    );
    s.register(A, "VOICE", "crm").unwrap();
    assert_eq!(
        set(&mut s, A, "VOICE", "a b", json!(1)).unwrap_err().code(),
        ErrorCode::InvalidName
    );
    assert_eq!(
        set(&mut s, A, "VOICE", "x", json!([1])).unwrap_err().code(),
        ErrorCode::InvalidValue
    );
    assert_eq!(
        set(&mut s, A, "VO ICE", "x", json!(1)).unwrap_err().code(),
        ErrorCode::InvalidName
    );
    let big = "x".repeat(limits().max_value_bytes);
    assert_eq!(
        set(&mut s, A, "VOICE", "x", json!(big)).unwrap_err().code(),
        ErrorCode::ValueTooLarge
    );
    let filter = VarFilter {
        patterns: vec!["VOICE.GEN_*".into()],
    };
    let err = s
        .write(
            A,
            &[],
            vec![("VOICE".into(), "ANI".into(), json!(1))],
            false,
            &filter,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert!(s
        .write(
            A,
            &[],
            vec![("VOICE".into(), "GEN_T2P".into(), json!(1))],
            false,
            &filter
        )
        .is_ok());
}

#[test]
fn events_go_to_subscribers_but_never_the_writer() {
    let mut s = store();
    for c in [A, B, C] {
        s.register(c, "VOICE", "same-name").unwrap();
    }
    s.subscribe(A, "VOICE", "GEN_T2P", false).unwrap();
    s.subscribe(B, "VOICE", "*", true).unwrap();
    let commit = set(&mut s, A, "VOICE", "GEN_T2P", json!("EvRinging")).unwrap();
    assert_eq!(commit.notices.len(), 1);
    assert_eq!(
        commit.notices[0].recipients,
        vec![Recipient {
            conn: B,
            values: true
        }]
    );
    let commit = set(&mut s, C, "VOICE", "GEN_T2P", json!("EvEstablished")).unwrap();
    assert_eq!(
        commit.notices[0].recipients,
        vec![
            Recipient {
                conn: A,
                values: false
            },
            Recipient {
                conn: B,
                values: true
            }
        ]
    );
    let commit = set(&mut s, C, "VOICE", "OTHER", json!(1)).unwrap();
    assert_eq!(
        commit.notices[0].recipients,
        vec![Recipient {
            conn: B,
            values: true
        }]
    );
    s.unsubscribe(B, "VOICE", "*").unwrap();
    let commit = set(&mut s, C, "VOICE", "OTHER", json!(1)).unwrap();
    assert!(commit.notices[0].recipients.is_empty());
    assert_eq!(commit.heads[0].seq, 4);
}

#[test]
fn bulk_write_is_atomic_and_ordered() {
    let mut s = store();
    s.register(A, "VOICE", "t").unwrap();
    s.register(A, "EMAIL", "t").unwrap();
    set(&mut s, A, "VOICE", "ANI", json!("123")).unwrap();
    let bad = vec![
        (
            "VOICE".to_string(),
            "GEN_T2P".to_string(),
            json!("EvRinging"),
        ),
        ("EMAIL".to_string(), "x".to_string(), json!({"no": 1})),
    ];
    assert!(s.write(A, &[], bad, false, &all()).is_err());
    assert_eq!(s.environment("VOICE").unwrap().get("GEN_T2P"), None);
    assert_eq!(s.environment("VOICE").unwrap().seq, 1);
    let good = vec![
        ("VOICE".to_string(), "ANI".to_string(), json!("456")),
        ("EMAIL".to_string(), "x".to_string(), json!(true)),
        (
            "VOICE".to_string(),
            "GEN_T2P".to_string(),
            json!("EvRinging"),
        ),
    ];
    let commit = s.write(A, &[], good, false, &all()).unwrap();
    let seqs: Vec<(String, u64)> = commit
        .notices
        .iter()
        .map(|n| (n.environment.clone(), n.event.seq))
        .collect();
    assert_eq!(
        seqs,
        vec![
            ("VOICE".into(), 2),
            ("EMAIL".into(), 1),
            ("VOICE".into(), 3)
        ]
    );
    assert_eq!(commit.heads.len(), 2);
}

#[test]
fn clear_data_clears_each_environment_once_first() {
    let mut s = store();
    s.register(A, "VOICE", "t").unwrap();
    set(&mut s, A, "VOICE", "old", json!(1)).unwrap();
    let w = vec![
        ("VOICE".to_string(), "a".to_string(), json!(1)),
        ("VOICE".to_string(), "b".to_string(), json!(2)),
    ];
    let commit = s.write(A, &[], w, true, &all()).unwrap();
    let kinds: Vec<&Change> = commit.notices.iter().map(|n| &n.event.change).collect();
    assert_eq!(kinds[0], &Change::Cleaned);
    assert_eq!(kinds.len(), 3);
    let env = s.environment("VOICE").unwrap();
    assert_eq!(env.get("old"), None);
    assert_eq!(env.len(), 2);
    assert_eq!(s.total_variables(), 2);
}

#[test]
fn write_clearing_clears_only_the_named_environments_and_counts_right() {
    let mut limits = limits();
    limits.max_variables_per_environment = 2;
    let mut s = Store::new(limits, 1000);
    s.connect(A);
    s.register(A, "VOICE", "t").unwrap();
    s.register(A, "EMAIL", "t").unwrap();
    set(&mut s, A, "VOICE", "v1", json!(1)).unwrap();
    set(&mut s, A, "VOICE", "v2", json!(2)).unwrap();
    set(&mut s, A, "EMAIL", "e1", json!(1)).unwrap();
    let envs = ["VOICE".to_string(), "EMAIL".to_string()];
    // Without the clear, two new names would exceed VOICE's limit of 2.
    let w = vec![
        ("VOICE".to_string(), "n1".to_string(), json!(1)),
        ("VOICE".to_string(), "n2".to_string(), json!(2)),
        ("EMAIL".to_string(), "e2".to_string(), json!(2)),
    ];
    assert_eq!(
        s.write_clearing(A, &envs, w.clone(), &[], &all())
            .unwrap_err()
            .code(),
        ErrorCode::LimitExceeded
    );
    let commit = s
        .write_clearing(A, &envs, w, &["VOICE".to_string()], &all())
        .unwrap();
    let kinds: Vec<(&str, &Change)> = commit
        .notices
        .iter()
        .map(|n| (n.environment.as_str(), &n.event.change))
        .collect();
    assert_eq!(kinds[0], ("VOICE", &Change::Cleaned));
    assert_eq!(kinds.len(), 4);
    assert!(kinds[1..]
        .iter()
        .all(|(_, c)| matches!(c, Change::Set { .. })));
    let voice = s.environment("VOICE").unwrap();
    assert_eq!((voice.get("v1"), voice.len()), (None, 2));
    assert_eq!(s.environment("EMAIL").unwrap().len(), 2);
    assert_eq!(s.total_variables(), 4);
    assert_eq!(s.variables_created_by(A), 4);
}

#[test]
fn clear_data_without_writes_still_clears() {
    let mut s = store();
    s.register(A, "VOICE", "t").unwrap();
    set(&mut s, A, "VOICE", "old", json!(1)).unwrap();
    let commit = s
        .write(A, &["VOICE".to_string()], vec![], true, &all())
        .unwrap();
    assert_eq!(commit.notices.len(), 1);
    assert_eq!(commit.notices[0].event.change, Change::Cleaned);
    assert!(s.environment("VOICE").unwrap().is_empty());
    let err = s
        .write(A, &["EMAIL".to_string()], vec![], true, &all())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotRegistered);
}

#[test]
fn limits_refuse_without_evicting() {
    let mut l = limits();
    l.max_variables_per_connection = 2;
    l.max_variables_per_environment = 3;
    l.max_variables = 4;
    l.max_environments = 3;
    l.max_environments_per_connection = 2;
    let mut s = Store::new(l, 0);
    for c in [A, B, C] {
        s.connect(c);
    }
    s.register(A, "E1", "a").unwrap();
    s.register(A, "E2", "a").unwrap();
    let err = s.register(A, "E3", "a").unwrap_err();
    assert_eq!(err.code(), ErrorCode::LimitExceeded);
    s.register(B, "E1", "b").unwrap();
    s.register(B, "E3", "b").unwrap();
    assert_eq!(
        s.register(C, "E4", "c").unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
    set(&mut s, A, "E1", "a1", json!(1)).unwrap();
    set(&mut s, A, "E1", "a2", json!(1)).unwrap();
    assert_eq!(
        set(&mut s, A, "E1", "a3", json!(1)).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
    set(&mut s, A, "E1", "a1", json!(2)).unwrap(); // overwriting is not a new variable
    set(&mut s, B, "E1", "b1", json!(1)).unwrap();
    assert_eq!(
        set(&mut s, B, "E1", "b2", json!(1)).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
    set(&mut s, B, "E3", "b2", json!(1)).unwrap();
    assert_eq!(s.total_variables(), 4);
    assert_eq!(
        set(&mut s, C, "E1", "c", json!(1)).unwrap_err().code(),
        ErrorCode::NotRegistered
    );
    s.register(C, "E3", "c").unwrap();
    assert_eq!(
        set(&mut s, C, "E3", "c1", json!(1)).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
    assert_eq!(s.environment("E1").unwrap().len(), 3);
    // After a removal there is room again.
    s.remove_variable(A, "E1", "a2", &all()).unwrap();
    set(&mut s, C, "E3", "c1", json!(1)).unwrap();
    assert_eq!(s.variables_created_by(A), 1);
}

#[test]
fn state_table_disconnect_keeps_data() {
    let mut s = store();
    s.register(A, "VOICE", "a").unwrap();
    set(&mut s, A, "VOICE", "x", json!(1)).unwrap();
    s.disconnect(A);
    let env = s.environment("VOICE").unwrap();
    assert_eq!(env.get("x"), Some(&json!(1)));
    assert_eq!(env.registrations().count(), 0);
    assert_eq!(env.seq, 1);
}

#[test]
fn state_table_unregister_without_cleanup_keeps_data() {
    let mut s = store();
    s.register(A, "VOICE", "a").unwrap();
    set(&mut s, A, "VOICE", "x", json!(1)).unwrap();
    let commit = s.unregister(A, "VOICE", false, &all()).unwrap();
    assert!(commit.notices.is_empty());
    assert_eq!(s.environment("VOICE").unwrap().len(), 1);
    assert!(s.registration(A, "VOICE").is_none());
    assert_eq!(
        set(&mut s, A, "VOICE", "x", json!(1)).unwrap_err().code(),
        ErrorCode::NotRegistered
    );
}

#[test]
fn state_table_cleanup_with_others_registered_cleans() {
    let mut s = store();
    s.register(A, "VOICE", "a").unwrap();
    s.register(B, "VOICE", "b").unwrap();
    s.subscribe(B, "VOICE", "x", false).unwrap();
    set(&mut s, A, "VOICE", "x", json!(1)).unwrap();
    let commit = s.unregister(A, "VOICE", true, &all()).unwrap();
    assert_eq!(commit.notices.len(), 1);
    assert_eq!(commit.notices[0].event.change, Change::Cleaned);
    assert_eq!(
        commit.notices[0].recipients,
        vec![Recipient {
            conn: B,
            values: false
        }]
    );
    let env = s.environment("VOICE").unwrap();
    assert!(env.is_empty());
    assert_eq!(env.seq, 2);
    assert_eq!(s.total_variables(), 0);
}

#[test]
fn state_table_cleanup_by_last_registration_removes() {
    let mut s = store();
    let (h, _) = s.register(A, "VOICE", "a").unwrap();
    set(&mut s, A, "VOICE", "x", json!(1)).unwrap();
    let commit = s.unregister(A, "VOICE", true, &all()).unwrap();
    assert_eq!(commit.notices[0].event.change, Change::EnvRemoved);
    assert_eq!(commit.notices[0].event.seq, 2);
    assert!(s.environment("VOICE").is_none());
    assert_eq!(s.total_variables(), 0);
    let (h2, created) = s.register(A, "VOICE", "a").unwrap();
    assert!(created);
    assert_ne!(h.epoch, h2.epoch);
    assert_eq!(s.replay("VOICE", Some(h.epoch), Some(2)), Replay::Snapshot);
}

#[test]
fn state_table_cleanup_forbidden_by_write_filter() {
    let mut s = store();
    s.register(A, "VOICE", "a").unwrap();
    set(&mut s, A, "VOICE", "ANI", json!(1)).unwrap();
    let filter = VarFilter {
        patterns: vec!["VOICE.GEN_*".into()],
    };
    assert_eq!(
        s.unregister(A, "VOICE", true, &filter).unwrap_err().code(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        s.clean(A, "VOICE", &filter).unwrap_err().code(),
        ErrorCode::Forbidden
    );
    assert!(s.registration(A, "VOICE").is_some());
}

#[test]
fn remove_and_clean_are_events() {
    let mut s = store();
    s.register(A, "VOICE", "a").unwrap();
    s.register(B, "VOICE", "b").unwrap();
    s.subscribe(B, "VOICE", "*", false).unwrap();
    set(&mut s, A, "VOICE", "x", json!(1)).unwrap();
    let c = s.remove_variable(A, "VOICE", "x", &all()).unwrap();
    assert_eq!(
        c.notices[0].event.change,
        Change::Removed { name: "x".into() }
    );
    assert_eq!(c.notices[0].recipients.len(), 1);
    let c = s.remove_variable(A, "VOICE", "x", &all()).unwrap();
    assert!(
        c.notices.is_empty(),
        "removing a missing variable is no event"
    );
    let c = s.clean(A, "VOICE", &all()).unwrap();
    assert_eq!(c.notices[0].event.change, Change::Cleaned);
    assert_eq!(c.heads[0].seq, 3);
}

#[test]
fn replay_window() {
    let mut l = limits();
    l.replay_events = 3;
    let mut s = Store::new(l, 0);
    s.connect(A);
    let (h, _) = s.register(A, "VOICE", "a").unwrap();
    for i in 0..5 {
        set(&mut s, A, "VOICE", "x", json!(i)).unwrap();
    }
    let Replay::Events(ev) = s.replay("VOICE", Some(h.epoch), Some(2)) else {
        panic!("expected events")
    };
    assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(s.replay("VOICE", Some(h.epoch), Some(1)), Replay::Snapshot);
    assert_eq!(
        s.replay("VOICE", Some(h.epoch), Some(5)),
        Replay::Events(vec![])
    );
    assert_eq!(s.replay("VOICE", Some(h.epoch), Some(6)), Replay::Snapshot);
    assert_eq!(
        s.replay("VOICE", Some(h.epoch + 1), Some(5)),
        Replay::Snapshot
    );
    assert_eq!(s.replay("VOICE", None, None), Replay::Snapshot);
    assert_eq!(s.replay("NOPE", Some(1), Some(1)), Replay::Missing);
}

#[test]
fn epochs_differ_between_daemon_starts() {
    let mut s1 = Store::new(limits(), 1 << 30);
    let mut s2 = Store::new(limits(), 2 << 30);
    s1.connect(A);
    s2.connect(A);
    let (h1, _) = s1.register(A, "VOICE", "a").unwrap();
    let (h2, _) = s2.register(A, "VOICE", "a").unwrap();
    assert_ne!(h1.epoch, h2.epoch);
    assert!(h1.epoch < (1 << 53) && h2.epoch < (1 << 53));
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum Op {
    Register(u8, u8),
    Unregister(u8, u8, bool),
    Set(u8, u8, u8, i64),
    Bulk(u8, Vec<(u8, u8, i64)>, bool),
    Remove(u8, u8, u8),
    Clean(u8, u8),
    Subscribe(u8, u8, Option<u8>),
    Unsubscribe(u8, u8, Option<u8>),
    Disconnect(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0u8..4;
    let e = 0u8..3;
    let v = 0u8..5;
    prop_oneof![
        3 => (c.clone(), e.clone()).prop_map(|(c, e)| Op::Register(c, e)),
        1 => (c.clone(), e.clone(), any::<bool>()).prop_map(|(c, e, b)| Op::Unregister(c, e, b)),
        6 => (c.clone(), e.clone(), v.clone(), -3i64..3).prop_map(|(c, e, v, x)| Op::Set(c, e, v, x)),
        2 => (c.clone(), proptest::collection::vec((e.clone(), v.clone(), -3i64..3), 0..5), any::<bool>())
            .prop_map(|(c, w, b)| Op::Bulk(c, w, b)),
        1 => (c.clone(), e.clone(), v.clone()).prop_map(|(c, e, v)| Op::Remove(c, e, v)),
        1 => (c.clone(), e.clone()).prop_map(|(c, e)| Op::Clean(c, e)),
        2 => (c.clone(), e.clone(), proptest::option::of(v.clone())).prop_map(|(c, e, v)| Op::Subscribe(c, e, v)),
        1 => (c.clone(), e.clone(), proptest::option::of(v.clone())).prop_map(|(c, e, v)| Op::Unsubscribe(c, e, v)),
        1 => c.prop_map(Op::Disconnect),
    ]
}

fn env_name(e: u8) -> String {
    format!("E{e}")
}

fn var_name(v: u8) -> String {
    format!("v{v}")
}

type Mirror = BTreeMap<String, Value>;

/// Applies one event to a client-side copy of an environment.
fn apply(m: &mut Mirror, change: &Change) {
    match change {
        Change::Set { name, value } => {
            m.insert(name.clone(), value.clone());
        }
        Change::Removed { name } => {
            m.remove(name);
        }
        Change::Cleaned | Change::EnvRemoved => m.clear(),
    }
}

fn state(s: &Store, env: &str) -> Mirror {
    s.environment(env)
        .map(|e| e.values(env, &VarFilter::default()).into_iter().collect())
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn store_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut l = limits();
        l.max_variables = 9;
        l.max_variables_per_connection = 5;
        l.max_variables_per_environment = 4;
        l.max_environments = 2;
        l.max_environments_per_connection = 2;
        l.replay_events = 4;
        let mut s = Store::new(l.clone(), 77);
        // Snapshots of every environment state at every (epoch, seq) seen.
        let mut snapshots: BTreeMap<(String, u64, u64), Mirror> = BTreeMap::new();
        let mut last_seq: BTreeMap<(String, u64), u64> = BTreeMap::new();
        for op in ops {
            let conn = |c: u8| ConnId(u64::from(c));
            let commit = match op {
                Op::Register(c, e) => {
                    s.connect(conn(c));
                    s.register(conn(c), &env_name(e), "x").ok().map(|_| Commit::default())
                }
                Op::Unregister(c, e, b) => s.unregister(conn(c), &env_name(e), b, &all()).ok(),
                Op::Set(c, e, v, x) => set(&mut s, conn(c), &env_name(e), &var_name(v), json!(x)).ok(),
                Op::Bulk(c, w, b) => {
                    let w = w.into_iter().map(|(e, v, x)| (env_name(e), var_name(v), json!(x))).collect();
                    s.write(conn(c), &[], w, b, &all()).ok()
                }
                Op::Remove(c, e, v) => s.remove_variable(conn(c), &env_name(e), &var_name(v), &all()).ok(),
                Op::Clean(c, e) => s.clean(conn(c), &env_name(e), &all()).ok(),
                Op::Subscribe(c, e, v) => {
                    let name = v.map_or("*".to_string(), var_name);
                    s.subscribe(conn(c), &env_name(e), &name, true).ok().map(|_| Commit::default())
                }
                Op::Unsubscribe(c, e, v) => {
                    let name = v.map_or("*".to_string(), var_name);
                    s.unsubscribe(conn(c), &env_name(e), &name).ok().map(|_| Commit::default())
                }
                Op::Disconnect(c) => {
                    s.disconnect(conn(c));
                    Some(Commit::default())
                }
            };
            if let Some(commit) = commit {
                for n in &commit.notices {
                    // Never the writer; seq strictly increasing per epoch.
                    prop_assert!(n.recipients.iter().all(|r| r.conn != n.event.writer));
                    let key = (n.environment.clone(), n.epoch);
                    let prev = last_seq.get(&key).copied().unwrap_or(0);
                    prop_assert_eq!(n.event.seq, prev + 1);
                    last_seq.insert(key, n.event.seq);
                    // Recipients are exactly the interested, registered connections.
                    if n.event.change != Change::EnvRemoved {
                        for r in &n.recipients {
                            prop_assert_eq!(s.interest(r.conn, &n.environment, &n.event.change), Some(r.values));
                        }
                    }
                }
            }
            // Totals and limits.
            let sum: usize = s.environments().map(|(_, e)| e.len()).sum();
            prop_assert_eq!(sum, s.total_variables());
            prop_assert!(s.total_variables() <= l.max_variables);
            prop_assert!(s.environments().count() <= l.max_environments);
            for (_, e) in s.environments() {
                prop_assert!(e.len() <= l.max_variables_per_environment);
                prop_assert!(e.history().count() <= l.replay_events);
            }
            for c in 0..4u8 {
                prop_assert!(s.variables_created_by(ConnId(u64::from(c))) <= l.max_variables_per_connection);
                prop_assert!(s.registrations_of(ConnId(u64::from(c))).count() <= l.max_environments_per_connection);
            }
            // Record the current state of every environment, then check that
            // replay from every recorded position of the same epoch
            // reproduces the current state.
            for (name, e) in s.environments() {
                snapshots.insert((name.to_string(), e.epoch, e.seq), state(&s, name));
            }
            for ((name, epoch, seq), snap) in &snapshots {
                match s.replay(name, Some(*epoch), Some(*seq)) {
                    Replay::Events(events) => {
                        let mut m = snap.clone();
                        for (expect, ev) in (seq + 1..).zip(events) {
                            prop_assert_eq!(ev.seq, expect);
                            apply(&mut m, &ev.change);
                        }
                        prop_assert_eq!(&m, &state(&s, name));
                    }
                    Replay::Snapshot => {
                        let e = s.environment(name).unwrap();
                        prop_assert!(e.epoch != *epoch || e.seq - seq > l.replay_events as u64);
                    }
                    Replay::Missing => prop_assert!(s.environment(name).is_none()),
                }
            }
        }
    }
}
