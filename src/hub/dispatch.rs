//! Request dispatch: a text frame becomes a typed `Request` (or a FAILURE),
//! one `match` runs it against the store, and the reply and the events it
//! caused are queued while the hub's lock is held.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::desktop::{self, Job, Prepared};
use super::{
    push, to_text, Conn, ConnId, ConnMap, Held, HubSettings, Outgoing, PeerInfo, State, MAX_LINEAGE,
};
use crate::protocol::{
    ContextEvent, ErrorCode, EventName, Outcome, Reply, Request, ResumeEnvironment, ACTIONS,
    ALL_VARIABLES, CLEAR_DATA_KEY, MAX_REQUEST_ID_LEN, MAX_TOKEN_LEN,
};
use crate::store::{names, Change, Commit, Event, Head, Replay, Store, StoreError, Write};
use crate::xml;

/// Why a request failed, as the reply says it.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: ErrorCode,
    pub(super) message: String,
    /// Reply `data` of the failure (`retryAfterMs` of `rate_limited`).
    pub(super) data: Option<Value>,
}

impl Failure {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same failure with reply `data`.
    pub(super) fn with_data(mut self, data: Value) -> Failure {
        self.data = Some(data);
        self
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

/// A frame after parsing: what to echo, and the request or why there is none.
pub(super) struct Parsed {
    request_id: Option<Value>,
    action: Option<String>,
    request: Result<Request, Failure>,
}

impl Parsed {
    /// True when the frame itself was malformed (`bad_request` or
    /// `unknown_action` before any action ran): what the abuse counter counts.
    pub(super) fn is_malformed(&self) -> bool {
        matches!(&self.request, Err(f) if matches!(f.code, ErrorCode::BadRequest | ErrorCode::UnknownAction))
    }

    /// The action of a well-formed request: the rate limits' request type.
    pub(super) fn valid_action(&self) -> Option<&str> {
        match &self.request {
            Ok(_) => self.action.as_deref(),
            Err(_) => None,
        }
    }

    /// Replaces the request by `failure` (a refused request still gets its reply).
    pub(super) fn refuse(&mut self, failure: Failure) {
        self.request = Err(failure);
    }
}

/// Parses one text frame. `requestId` and `action` are taken from any JSON
/// object, even an otherwise invalid one, so failures can echo them.
pub(super) fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed {
        request_id: None,
        action: None,
        request: Err(Failure::new(ErrorCode::BadRequest, "")),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            parsed.request = Err(Failure::new(
                ErrorCode::BadRequest,
                format!("the message is not valid JSON ({e}); send one JSON object per text frame"),
            ));
            return parsed;
        }
    };
    let Value::Object(obj) = value else {
        parsed.request = Err(Failure::new(
            ErrorCode::BadRequest,
            "a request must be a JSON object with an \"action\" field",
        ));
        return parsed;
    };
    let id_error = match obj.get("requestId") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            parsed.request_id = Some(Value::Number(n.clone()));
            None
        }
        Some(Value::String(s)) if s.len() <= MAX_REQUEST_ID_LEN => {
            parsed.request_id = Some(Value::String(s.clone()));
            None
        }
        Some(_) => Some(format!(
            "requestId must be a string of at most {MAX_REQUEST_ID_LEN} bytes or a number"
        )),
    };
    match obj.get("action") {
        Some(Value::String(a)) => parsed.action = Some(a.clone()),
        Some(_) => {
            parsed.request = Err(Failure::new(
                ErrorCode::BadRequest,
                "\"action\" must be a string",
            ));
            return parsed;
        }
        None => {
            parsed.request = Err(Failure::new(
                ErrorCode::BadRequest,
                "the request has no \"action\"; see docs/protocol.md for the actions",
            ));
            return parsed;
        }
    }
    if let Some(message) = id_error {
        parsed.request = Err(Failure::new(ErrorCode::BadRequest, message));
        return parsed;
    }
    let action = parsed.action.as_deref().unwrap_or_default();
    if !ACTIONS.contains(&action) {
        parsed.request = Err(Failure::new(
            ErrorCode::UnknownAction,
            format!("unknown action {action:?}; see docs/protocol.md for the actions"),
        ));
        return parsed;
    }
    // Deserialized by reference, so the object is still there to say which
    // field was wrong (internally tagged enums buffer borrowed strings: the
    // cost is the one copy into the request).
    let value = Value::Object(obj);
    parsed.request = Request::deserialize(&value).map_err(|e| {
        let e = e.to_string();
        let field = value.as_object().and_then(|obj| wrong_field(obj, &e));
        let message = match field {
            Some(field) => format!("invalid {action} request: field `{field}`: {e}"),
            None => format!("invalid {action} request: {e}"),
        };
        Failure::new(ErrorCode::BadRequest, message)
    });
    if let Ok(Request::LoadXml {
        xml,
        root,
        prefix,
        environment,
        parsed: loaded,
    }) = &mut parsed.request
    {
        *loaded = Some(read_xml(xml, root, prefix, environment));
    }
    parsed
}

/// Most fields `wrong_field` tries, so a message with thousands of unknown
/// fields costs a bounded amount of work on its (rare) error path.
const MAX_PROBED_FIELDS: usize = 64;

/// serde names a missing field but not one of the wrong type ("invalid type:
/// integer `42`, expected a string"). Deserializing each field alone beside
/// the action gives the same error for the culprit (serde stops at the first
/// bad field, in the message's order) and "missing field" or success for the
/// others, so the reply can name the field to fix.
fn wrong_field<'o>(obj: &'o Map<String, Value>, error: &str) -> Option<&'o str> {
    if error.starts_with("missing field") {
        return None;
    }
    let action = obj.get("action")?;
    obj.iter()
        .filter(|(k, _)| *k != "action" && *k != "requestId")
        .take(MAX_PROBED_FIELDS)
        .find(|(k, v)| {
            let mut alone = Map::new();
            alone.insert("action".to_string(), action.clone());
            alone.insert((*k).clone(), (*v).clone());
            matches!(Request::deserialize(&Value::Object(alone)), Err(e) if e.to_string() == error)
        })
        .map(|(k, _)| k.as_str())
}

/// Reads a `loadXML` document (docs/protocol.md §4.15).
fn read_xml(
    xml: &str,
    root: &Option<String>,
    prefix: &Option<String>,
    environment: &Option<String>,
) -> Result<xml::Loaded, xml::XmlError> {
    let opts = xml::LoadOptions {
        root: root.as_deref().unwrap_or_default(),
        prefix: prefix.as_deref().unwrap_or_default(),
        environment: environment.as_deref(),
    };
    xml::parse(xml, &opts)
}

/// What a successful request answers.
#[derive(Default)]
struct Answer {
    data: Option<Value>,
    head: Option<Head>,
    /// A desktop action a `GEN_P2C` bulk write asked for, to run after the reply.
    job: Option<Job>,
}

/// Runs a parsed request for `id`, queues its reply, then its events. A
/// desktop action is only checked here: the job returned must be run by the
/// caller after it released the lock.
pub(super) fn run(
    settings: &HubSettings,
    st: &mut State,
    id: ConnId,
    parsed: Parsed,
    now: Instant,
) -> Option<Job> {
    let Parsed {
        request_id,
        action,
        request,
    } = parsed;
    let result = match request {
        Ok(req) if desktop::is_desktop(&req) => {
            match desktop::prepare(settings, st, id, req, request_id.clone()) {
                // The reply comes when the platform call returns.
                Ok(Prepared::Later(job)) => return Some(job),
                Ok(Prepared::Now(data, job)) => Ok((
                    Answer {
                        data: Some(data),
                        head: None,
                        job,
                    },
                    Commit::default(),
                )),
                Err(f) => Err(f),
            }
        }
        other => other.and_then(|req| execute(settings, st, id, req, &request_id, now)),
    };
    let mut job = None;
    let (reply, commit) = match result {
        Ok((mut answer, commit)) => {
            job = answer.job.take();
            tracing::debug!(conn = id.0, action = action.as_deref(), request_id = ?request_id, "request ok");
            (
                Reply {
                    kind: "reply",
                    request_id,
                    action,
                    result: Outcome::Success,
                    data: answer.data,
                    epoch: answer.head.as_ref().map(|h| h.epoch),
                    seq: answer.head.as_ref().map(|h| h.seq),
                    error_code: None,
                    error_message: None,
                },
                commit,
            )
        }
        Err(f) => {
            tracing::debug!(conn = id.0, action = action.as_deref(), request_id = ?request_id, code = ?f.code, "request failed");
            (
                Reply {
                    kind: "reply",
                    request_id,
                    action,
                    result: Outcome::Failure,
                    data: f.data,
                    epoch: None,
                    seq: None,
                    error_code: Some(f.code),
                    error_message: Some(f.message),
                },
                Commit::default(),
            )
        }
    };
    push(
        &mut st.conns,
        &mut st.held,
        id,
        Outgoing::Text(to_text(&reply)),
    );
    fan_out(&st.store, &mut st.conns, &mut st.held, &commit);
    job
}

fn event_name(change: &Change) -> EventName {
    match change {
        Change::Set { .. } => EventName::ContextChanged,
        Change::Removed { .. } => EventName::VarRemoved,
        Change::Cleaned => EventName::EnvironmentCleaned,
        Change::EnvRemoved => EventName::EnvironmentRemoved,
    }
}

/// The wire form of a stored event.
fn context_event<'a>(
    environment: &'a str,
    epoch: u64,
    event: &'a Event,
    values: Option<&'a Map<String, Value>>,
) -> ContextEvent<'a> {
    ContextEvent {
        kind: "event",
        event: event_name(&event.change),
        environment_name: environment,
        var_changed: event.change.variable(),
        value_changed: match &event.change {
            Change::Set { value, .. } => Some(value),
            _ => None,
        },
        epoch,
        seq: event.seq,
        values,
    }
}

/// Queues each event for its recipients, in commit order. Each distinct
/// payload is serialized once: one without `Values`, and one with `Values`
/// per distinct read allow-list; recipients share the bytes.
pub(super) fn fan_out(store: &Store, conns: &mut ConnMap<Conn>, held: &mut Held, commit: &Commit) {
    for notice in &commit.notices {
        let env = store
            .environment(&notice.environment)
            .filter(|e| e.epoch == notice.epoch && notice.event.change != Change::EnvRemoved);
        let mut plain = None;
        let mut with_values: HashMap<Vec<String>, _> = HashMap::new();
        for r in &notice.recipients {
            let Some(conn) = conns.get(&r.conn) else {
                continue;
            };
            let read = &conn.peer.read;
            if let Some(var) = notice.event.change.variable() {
                if !read.allows(&notice.environment, var) {
                    continue;
                }
            }
            let text = match env {
                Some(env) if r.values => with_values
                    .entry(read.patterns.clone())
                    .or_insert_with(|| {
                        let values = env.values(&notice.environment, read);
                        to_text(&context_event(
                            &notice.environment,
                            notice.epoch,
                            &notice.event,
                            Some(&values),
                        ))
                    })
                    .clone(),
                _ => plain
                    .get_or_insert_with(|| {
                        to_text(&context_event(
                            &notice.environment,
                            notice.epoch,
                            &notice.event,
                            None,
                        ))
                    })
                    .clone(),
            };
            push(conns, held, r.conn, Outgoing::Text(text));
        }
    }
}

/// A `GEN_P2C` bulk write that acts on the desktop is a launch through
/// another door: it counts against the `launchProcess` rate limit, checked
/// before anything is written.
fn gen_p2c_rate(
    settings: &HubSettings,
    rate: &mut super::limits::RateLimiter,
    peer: &PeerInfo,
    job: &Option<Job>,
    now: Instant,
) -> Result<(), Failure> {
    if job.is_none() {
        return Ok(());
    }
    rate.check(
        &settings.limits.rate,
        &peer.os_user.id,
        peer.origin.as_deref(),
        "launchProcess",
        now,
    )
}

/// v3 `CLEAR_DATA` in a bulk write (reference §4.5.5.2): every such item is
/// taken out of `writes` (never stored); `"1"`, `1` or `true` adds its
/// environment to `clear`; `"0"`, `0`, `false`, `""` or `null` clear
/// nothing; any other value is refused.
fn take_clear_data(writes: &mut Vec<Write>, clear: &mut Vec<String>) -> Result<(), Failure> {
    if !writes.iter().any(|w| w.1 == CLEAR_DATA_KEY) {
        return Ok(());
    }
    let mut rest = Vec::with_capacity(writes.len());
    for w in writes.drain(..) {
        if w.1 != CLEAR_DATA_KEY {
            rest.push(w);
            continue;
        }
        let on = match &w.2 {
            Value::String(s) if s == "1" => true,
            Value::String(s) if s == "0" || s.is_empty() => false,
            Value::Number(n) if n.as_f64() == Some(1.0) => true,
            Value::Number(n) if n.as_f64() == Some(0.0) => false,
            Value::Bool(b) => *b,
            Value::Null => false,
            other => {
                return Err(Failure::new(
                    ErrorCode::InvalidValue,
                    format!("CLEAR_DATA in {:?} must be \"1\" (clear the environment first) or \"0\", not {other}", w.0),
                ))
            }
        };
        if on && !clear.contains(&w.0) {
            clear.push(w.0);
        }
    }
    *writes = rest;
    Ok(())
}

/// Everything the bulk writes (`setContextJSON`, `setAllJSON`, `loadXML`)
/// share: `CLEAR_DATA`, the v1 `GEN_P2C` door with its rate limit, then one
/// atomic store write.
#[allow(clippy::too_many_arguments)]
fn bulk_write(
    settings: &HubSettings,
    store: &mut Store,
    rate: &mut super::limits::RateLimiter,
    peer: &PeerInfo,
    id: ConnId,
    request_id: &Option<Value>,
    envs: &[String],
    mut writes: Vec<Write>,
    clear_all: bool,
    now: Instant,
) -> Result<(Commit, Option<Job>), Failure> {
    let mut clear = if clear_all { envs.to_vec() } else { Vec::new() };
    take_clear_data(&mut writes, &mut clear)?;
    let job = desktop::gen_p2c_bulk(settings, peer, id, request_id.clone(), &mut writes)?;
    gen_p2c_rate(settings, rate, peer, &job, now)?;
    let commit = store.write_clearing(id, envs, writes, &clear, &peer.write)?;
    Ok((commit, job))
}

/// The `data` of a multi-environment write: where each environment stands.
fn heads_data(commit: &Commit) -> Value {
    let heads: Vec<Value> = commit
        .heads
        .iter()
        .map(|h| json!({"environment": h.environment, "epoch": h.epoch, "seq": h.seq}))
        .collect();
    json!({ "environments": heads })
}

/// Refuses data actions to connections without the `data` capability.
fn need_data(peer: &PeerInfo) -> Result<(), Failure> {
    if peer.capabilities.data {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::Forbidden,
            "this origin is not granted data access; an administrator can grant the `data` capability in config.xml",
        ))
    }
}

fn commit_answer(commit: Commit, data: Option<Value>) -> (Answer, Commit) {
    let head = commit.heads.first().cloned();
    (
        Answer {
            data,
            head,
            job: None,
        },
        commit,
    )
}

/// One `match` over the typed request.
fn execute(
    settings: &HubSettings,
    st: &mut State,
    id: ConnId,
    req: Request,
    request_id: &Option<Value>,
    now: Instant,
) -> Result<(Answer, Commit), Failure> {
    if let Request::Resume {
        token,
        environments,
    } = req
    {
        let Some(conn) = st.conns.get(&id) else {
            return Err(Failure::new(ErrorCode::BadRequest, "connection is closing"));
        };
        need_data(&conn.peer)?;
        let answer = resume(settings, st, id, &token, environments, now)?;
        return Ok((answer, Commit::default()));
    }
    let State {
        store, conns, rate, ..
    } = st;
    let Some(conn) = conns.get(&id) else {
        return Err(Failure::new(ErrorCode::BadRequest, "connection is closing"));
    };
    let peer = &conn.peer;
    let plain = |data: Value| {
        Ok((
            Answer {
                data: Some(data),
                head: None,
                job: None,
            },
            Commit::default(),
        ))
    };
    match req {
        Request::GetVersion {} => plain(json!(crate::VERSION)),
        Request::GetHost {} => plain(json!(settings.host_name)),
        Request::GetUser {} => plain(json!(peer.os_user.name)),
        // Answered before the match: checked under the lock, run outside it.
        Request::SetSizeWindow { .. }
        | Request::ShowNotification { .. }
        | Request::LaunchProcess { .. }
        | Request::ShowPickupDialog { .. }
        | Request::OpenUrl { .. } => Err(Failure::new(
            ErrorCode::BadRequest,
            "internal error: a desktop action reached the wrong handler; please report it",
        )),
        Request::CreateEnvironment {
            environment,
            client_name,
        } => {
            need_data(peer)?;
            let (head, created) = store.register(id, &environment, &client_name)?;
            let data =
                json!({"environment": environment, "clientName": client_name, "created": created});
            Ok((
                Answer {
                    data: Some(data),
                    head: Some(head),
                    job: None,
                },
                Commit::default(),
            ))
        }
        Request::RemoveEnvironment {
            environment,
            cleanup,
        } => {
            need_data(peer)?;
            let commit = store.unregister(id, &environment, cleanup, &peer.write)?;
            let removed = commit
                .notices
                .iter()
                .any(|n| n.event.change == Change::EnvRemoved);
            let data = json!({"environment": environment, "cleaned": cleanup && !removed, "removed": removed});
            Ok(commit_answer(commit, Some(data)))
        }
        Request::SetContextVariable {
            environment,
            name,
            value,
        } => {
            need_data(peer)?;
            desktop::gen_p2c_single(settings, &environment, &name)?;
            let commit = store.write(
                id,
                &[],
                vec![(environment, name, value)],
                false,
                &peer.write,
            )?;
            Ok(commit_answer(commit, None))
        }
        Request::SetContextJson {
            environment,
            data,
            clear_data,
        } => {
            need_data(peer)?;
            let mut writes: Vec<Write> = Vec::with_capacity(data.len());
            for (i, item) in data.into_iter().enumerate() {
                if item.len() != 1 {
                    return Err(Failure::new(
                        ErrorCode::BadRequest,
                        format!("setContextJSON: item {i} must be an object with exactly one name: value pair"),
                    ));
                }
                for (name, value) in item {
                    writes.push((environment.clone(), name, value));
                }
            }
            let (commit, job) = bulk_write(
                settings,
                store,
                rate,
                peer,
                id,
                request_id,
                std::slice::from_ref(&environment),
                writes,
                clear_data,
                now,
            )?;
            let mut answer = commit_answer(commit, None);
            answer.0.job = job;
            Ok(answer)
        }
        Request::SetAllJson { data, clear_data } => {
            need_data(peer)?;
            let mut envs = Vec::with_capacity(data.len());
            let mut writes: Vec<Write> = Vec::new();
            for entry in data {
                envs.push(entry.environment.clone());
                for (name, value) in entry.data {
                    writes.push((entry.environment.clone(), name, value));
                }
            }
            let (commit, job) = bulk_write(
                settings, store, rate, peer, id, request_id, &envs, writes, clear_data, now,
            )?;
            Ok((
                Answer {
                    data: Some(heads_data(&commit)),
                    head: None,
                    job,
                },
                commit,
            ))
        }
        Request::LoadXml {
            xml,
            root,
            prefix,
            environment,
            parsed,
        } => {
            need_data(peer)?;
            // `parse` read the document before the lock was taken.
            let loaded = parsed
                .unwrap_or_else(|| read_xml(&xml, &root, &prefix, &environment))
                .map_err(|e| Failure::new(ErrorCode::InvalidXml, format!("loadXML: {e}")))?;
            let (commit, job) = bulk_write(
                settings,
                store,
                rate,
                peer,
                id,
                request_id,
                &loaded.environments,
                loaded.writes,
                false,
                now,
            )?;
            Ok((
                Answer {
                    data: Some(heads_data(&commit)),
                    head: None,
                    job,
                },
                commit,
            ))
        }
        Request::RetrieveXml {} => {
            need_data(peer)?;
            let all = peer.read.allows_all();
            let envs: Vec<(&str, Map<String, Value>)> = store
                .environments()
                .map(|(name, env)| (name, env.values(name, &peer.read)))
                .filter(|(_, values)| all || !values.is_empty())
                .collect();
            plain(json!(xml::render(envs.iter().map(|(n, v)| (*n, v)))))
        }
        Request::RetrieveEnvironmentXml { environment } => {
            need_data(peer)?;
            let env = store.read(id, &environment)?;
            let values = env.values(&environment, &peer.read);
            let head = Head {
                environment: environment.clone(),
                epoch: env.epoch,
                seq: env.seq,
            };
            Ok((
                Answer {
                    data: Some(json!(xml::render([(environment.as_str(), &values)]))),
                    head: Some(head),
                    job: None,
                },
                Commit::default(),
            ))
        }
        Request::GetStatus {} => {
            if peer.origin.is_some() {
                return Err(Failure::new(
                    ErrorCode::Forbidden,
                    "getStatus is for native clients of this OS user (wsconnector ctl status), not for web pages",
                ));
            }
            let environments: Vec<Value> = store
                .environments()
                .map(|(name, env)| {
                    let clients: Vec<&str> = env
                        .registrations()
                        .filter_map(|c| store.registration(c, name))
                        .map(|r| r.client_name.as_str())
                        .collect();
                    json!({"environment": name, "epoch": env.epoch, "seq": env.seq,
                           "variables": env.len(), "clients": clients})
                })
                .collect();
            plain(json!({
                "version": crate::VERSION,
                "connections": conns.len(),
                "environments": environments,
            }))
        }
        Request::GetInspectorToken {} => {
            if peer.origin.is_some() {
                return Err(Failure::new(
                    ErrorCode::Forbidden,
                    "getInspectorToken is for native clients of this OS user (wsconnector inspect), not for web pages",
                ));
            }
            let Some(mint) = &settings.inspector_token else {
                return Err(Failure::new(
                    ErrorCode::NotSupported,
                    "getInspectorToken is answered in service mode only: `wsconnector inspect` writes a token file for a single-user daemon",
                ));
            };
            let token = mint().map_err(|e| Failure::new(ErrorCode::ActionFailed, e))?;
            plain(json!(token))
        }
        Request::GetEnvironment { environment } => {
            need_data(peer)?;
            let env = store.read(id, &environment)?;
            let head = Head {
                environment: environment.clone(),
                epoch: env.epoch,
                seq: env.seq,
            };
            Ok((
                Answer {
                    data: Some(Value::Object(env.values(&environment, &peer.read))),
                    head: Some(head),
                    job: None,
                },
                Commit::default(),
            ))
        }
        Request::GetData {} => {
            need_data(peer)?;
            let all = peer.read.allows_all();
            let mut out = Map::new();
            for (name, env) in store.environments() {
                let values = env.values(name, &peer.read);
                if all || !values.is_empty() {
                    out.insert(name.to_string(), Value::Object(values));
                }
            }
            plain(Value::Object(out))
        }
        Request::RemoveItemFromEnvironment { environment, name } => {
            need_data(peer)?;
            let commit = store.remove_variable(id, &environment, &name, &peer.write)?;
            let removed = !commit.notices.is_empty();
            Ok(commit_answer(commit, Some(json!({ "removed": removed }))))
        }
        Request::CleanEnvironment { environment } => {
            need_data(peer)?;
            let commit = store.clean(id, &environment, &peer.write)?;
            Ok(commit_answer(commit, None))
        }
        Request::SetNotificationsOn {
            environment,
            name,
            values,
        } => {
            need_data(peer)?;
            store.subscribe(id, &environment, &name, values)?;
            subscription_answer(store, environment, name, values)
        }
        Request::SetNotificationsOff { environment, name } => {
            need_data(peer)?;
            store.unsubscribe(id, &environment, &name)?;
            subscription_answer(store, environment, name, false)
        }
        // Answered before the match, which needs the whole state mutably.
        Request::Resume { .. } => Err(Failure::new(
            ErrorCode::BadRequest,
            "internal error: resume reached the wrong handler; please report it",
        )),
    }
}

fn subscription_answer(
    store: &Store,
    environment: String,
    name: String,
    values: bool,
) -> Result<(Answer, Commit), Failure> {
    let head = store.environment(&environment).map(|e| Head {
        environment: environment.clone(),
        epoch: e.epoch,
        seq: e.seq,
    });
    Ok((
        Answer {
            data: Some(json!({"environment": environment, "name": name, "values": values})),
            head,
            job: None,
        },
        Commit::default(),
    ))
}

/// `resume`: validate everything, adopt the old identity when the token is
/// still valid, restore registrations and subscriptions, and answer each
/// environment with the missed events (without the identity's own writes)
/// or a snapshot.
fn resume(
    settings: &HubSettings,
    st: &mut State,
    id: ConnId,
    token: &str,
    environments: Vec<ResumeEnvironment>,
    now: Instant,
) -> Result<Answer, Failure> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            format!("token must be the resumeToken of a hello (1 to {MAX_TOKEN_LEN} bytes)"),
        ));
    }
    let mut seen = BTreeSet::new();
    for e in &environments {
        if !seen.insert(e.environment.as_str()) {
            return Err(Failure::new(
                ErrorCode::BadRequest,
                format!("environment {:?} is listed twice", e.environment),
            ));
        }
        names::check_client_name(&e.client_name).map_err(|rule| StoreError::InvalidName {
            what: "client",
            name: e.client_name.clone(),
            rule,
        })?;
        for s in &e.subscriptions {
            if s.name != ALL_VARIABLES {
                names::check_variable_name(&s.name).map_err(|rule| StoreError::InvalidName {
                    what: "variable",
                    name: s.name.clone(),
                    rule,
                })?;
            }
        }
    }
    let env_names: Vec<&str> = environments
        .iter()
        .map(|e| e.environment.as_str())
        .collect();
    st.store.check_register(id, &env_names)?;

    // Identity: the connections whose writes are "own" for this client.
    let ttl = settings.resume_token_ttl;
    let old = st
        .tokens
        .get(token)
        .filter(|t| {
            t.closed_at
                .is_none_or(|at| now.saturating_duration_since(at) < ttl)
        })
        .map(|t| t.lineage.clone());
    let resumed = old.is_some();
    let own_token = st
        .conns
        .get(&id)
        .map(|c| c.token.clone())
        .unwrap_or_default();
    let mut lineage = old.unwrap_or_default();
    if let Some(t) = st.tokens.get_mut(&own_token) {
        for c in &t.lineage {
            if !lineage.contains(c) {
                lineage.push(*c);
            }
        }
        if lineage.len() > MAX_LINEAGE {
            lineage.drain(..lineage.len() - MAX_LINEAGE);
        }
        t.lineage = lineage.clone();
    }
    if !lineage.contains(&id) {
        lineage.push(id);
    }

    // Apply (validated above, so these succeed).
    let mut created = Vec::with_capacity(environments.len());
    for e in &environments {
        let (_, c) = st.store.register(id, &e.environment, &e.client_name)?;
        created.push(c);
        for s in &e.subscriptions {
            st.store.subscribe(id, &e.environment, &s.name, s.values)?;
        }
    }

    // Answer.
    let read = match st.conns.get(&id) {
        Some(c) => c.peer.read.clone(),
        None => return Err(Failure::new(ErrorCode::BadRequest, "connection is closing")),
    };
    let store = &st.store;
    let mut out = Vec::with_capacity(environments.len());
    for (e, created) in environments.iter().zip(created) {
        let name = e.environment.as_str();
        let Some(env) = store.environment(name) else {
            continue;
        };
        let wants_values = e.subscriptions.iter().any(|s| s.values);
        let mut entry = Map::new();
        entry.insert("environment".into(), json!(name));
        entry.insert("epoch".into(), json!(env.epoch));
        entry.insert("seq".into(), json!(env.seq));
        entry.insert("created".into(), json!(created));
        let replay = if resumed {
            store.replay(name, e.epoch, e.seq)
        } else {
            Replay::Snapshot
        };
        match replay {
            Replay::Events(events) => {
                let events: Vec<Value> = events
                    .into_iter()
                    .filter(|ev| !lineage.contains(&ev.writer))
                    .filter(|ev| store.interest(id, name, &ev.change).is_some())
                    .filter(|ev| ev.change.variable().is_none_or(|v| read.allows(name, v)))
                    .filter_map(|ev| {
                        serde_json::to_value(context_event(name, env.epoch, ev, None)).ok()
                    })
                    .collect();
                entry.insert("mode".into(), json!("replay"));
                entry.insert("events".into(), Value::Array(events));
                if wants_values {
                    entry.insert("values".into(), Value::Object(env.values(name, &read)));
                }
            }
            Replay::Snapshot | Replay::Missing => {
                entry.insert("mode".into(), json!("snapshot"));
                entry.insert("values".into(), Value::Object(env.values(name, &read)));
            }
        }
        out.push(Value::Object(entry));
    }
    Ok(Answer {
        data: Some(json!({"resumed": resumed, "environments": out})),
        head: None,
        job: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(text: &str) -> (Option<Value>, Option<String>, ErrorCode) {
        let p = parse(text);
        let code = match p.request {
            Err(f) => f.code,
            Ok(r) => panic!("parsed {r:?}"),
        };
        (p.request_id, p.action, code)
    }

    fn message(text: &str) -> String {
        match parse(text).request {
            Err(f) => f.message,
            Ok(r) => panic!("parsed {r:?}"),
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let m = message(r#"{"action": "createEnvironment", "environment": "E", "clientName": 42}"#);
        assert!(m.contains("field `clientName`"), "{m}");
        // The first bad field in the message's order, past unknown fields.
        let m = message(
            r#"{"action": "setNotificationsOn", "x": 1, "environment": "E", "name": [], "values": "yes"}"#,
        );
        assert!(m.contains("field `name`"), "{m}");
        let m = message(r#"{"action": "setAllJSON", "data": [{"environment": 1, "data": {}}]}"#);
        assert!(m.contains("field `data`"), "{m}");
        // serde already names a missing field.
        let m = message(r#"{"action": "getEnvironment"}"#);
        assert!(m.ends_with("missing field `environment`"), "{m}");
        // Past the probing bound the error is still reported, unnamed.
        let mut obj = Map::new();
        obj.insert("action".into(), json!("openUrl"));
        for i in 0..MAX_PROBED_FIELDS {
            obj.insert(format!("k{i}"), json!(i));
        }
        obj.insert("url".into(), json!(1));
        let m = message(&Value::Object(obj).to_string());
        assert!(
            m.starts_with("invalid openUrl request: invalid type"),
            "{m}"
        );
    }

    #[test]
    fn malformed_frames_fail_and_echo_what_they_can() {
        assert_eq!(failure("{not json").2, ErrorCode::BadRequest);
        assert_eq!(failure("[1,2]").2, ErrorCode::BadRequest);
        assert_eq!(
            failure(r#"{"requestId": 7}"#),
            (Some(json!(7)), None, ErrorCode::BadRequest)
        );
        assert_eq!(
            failure(r#"{"requestId": "r", "action": "fly"}"#),
            (
                Some(json!("r")),
                Some("fly".into()),
                ErrorCode::UnknownAction
            )
        );
        assert_eq!(
            failure(r#"{"requestId": "r", "action": "createEnvironment"}"#),
            (
                Some(json!("r")),
                Some("createEnvironment".into()),
                ErrorCode::BadRequest
            )
        );
        assert_eq!(
            failure(r#"{"requestId": {"x":1}, "action": "getVersion"}"#),
            (None, Some("getVersion".into()), ErrorCode::BadRequest)
        );
        assert_eq!(failure(r#"{"action": 5}"#).2, ErrorCode::BadRequest);
        assert_eq!(
            failure(r#"{"action": "setContextVariable", "environment": "E", "name": "x"}"#).2,
            ErrorCode::BadRequest,
            "a missing value is not null"
        );
        assert_eq!(
            failure(r#"{"action": "removeEnvironment", "environment": "E", "cleanup": "yes"}"#).2,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn load_xml_is_read_before_the_lock() {
        let text = json!({"action": "loadXML", "xml": "<context><environment name=\"E\"><a>1</a></environment></context>"}).to_string();
        let Ok(Request::LoadXml {
            parsed: Some(Ok(loaded)),
            ..
        }) = parse(&text).request
        else {
            panic!("not read");
        };
        assert_eq!(loaded.writes, vec![("E".into(), "a".into(), json!("1"))]);
        let text = json!({"action": "loadXML", "xml": "<context>"}).to_string();
        assert!(matches!(
            parse(&text).request,
            Ok(Request::LoadXml {
                parsed: Some(Err(_)),
                ..
            })
        ));
    }

    #[test]
    fn every_listed_action_parses() {
        for action in ACTIONS {
            let text = json!({
                "action": action,
                "environment": "E",
                "clientName": "c",
                "name": "x",
                "value": 1,
                "data": [],
                "token": "t",
                "windowName": "w",
                "title": "t",
                "message": "m",
                "buttonText": "b",
                "url": "https://example.com/",
                "xml": "<context/>",
            })
            .to_string();
            let p = parse(&text);
            assert!(p.request.is_ok(), "{action}: {:?}", p.request.err());
        }
    }
}
