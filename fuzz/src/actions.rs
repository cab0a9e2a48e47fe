//! Structure-aware input for the `hub_actions` target: an `Arbitrary` script
//! of requests mirroring the protocol's actions (docs/protocol.md) with
//! arbitrary field values, plus raw frames. Shared with the stable corpus
//! test (tests/fuzz_corpus.rs includes this file with `#[path]`), so both
//! decode a corpus file the same way.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{json, Map, Value};

/// One whole input: requests sent in order, each by one of the sessions.
#[derive(Debug, Arbitrary)]
pub struct Script {
    /// The steps, at most `MAX_STEPS` of them are run.
    pub steps: Vec<Step>,
}

/// Longest script run (keeps one input fast).
pub const MAX_STEPS: usize = 64;

/// One request.
#[derive(Debug, Arbitrary)]
pub struct Step {
    /// Which session sends it (modulo the session count).
    pub session: u8,
    /// What it sends.
    pub frame: Frame,
}

/// A frame: a protocol action, a mangled one, or raw text.
#[derive(Debug, Arbitrary)]
pub enum Frame {
    /// A well-formed action with arbitrary field values.
    Action {
        /// The action.
        action: Action,
        /// Its `requestId`.
        request_id: Option<Scalar>,
    },
    /// An action whose JSON object had one field replaced or removed.
    Mangled {
        /// The action to start from.
        action: Action,
        /// Field to change (an existing one or a new name).
        field: Name,
        /// New value; `None` removes the field.
        value: Option<Json>,
    },
    /// Any text (bytes, lossily UTF-8).
    Raw(Vec<u8>),
}

/// Names drawn mostly from the ones the protocol and tests use, so inputs
/// hit the same environments and variables often.
#[derive(Debug, Arbitrary)]
pub enum Name {
    /// A common name.
    Known(u8),
    /// Any string.
    Any(String),
}

const NAMES: &[&str] = &[
    "VOICE",
    "EMAIL",
    "Default",
    "Ani",
    "AniNumber",
    "InteractionId",
    "*",
    "__proto__",
    "",
    "environment",
    "name",
    "value",
    "data",
    "clientName",
    "action",
    "requestId",
    "GEN_P2C",
    "cleanup",
    "values",
    "token",
];

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_string(),
            Name::Any(s) => s.clone(),
        }
    }
}

/// A JSON scalar.
#[derive(Debug, Arbitrary)]
pub enum Scalar {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (non-finite ones become `null`).
    Float(f64),
    /// A string.
    Str(String),
}

impl Scalar {
    fn json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => json!(b),
            Scalar::Int(i) => json!(i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::Str(s) => json!(s),
        }
    }
}

/// Any JSON value (shallow: nesting comes from `Raw` frames).
#[derive(Debug, Arbitrary)]
pub enum Json {
    /// A scalar.
    Scalar(Scalar),
    /// An array of scalars.
    Array(Vec<Scalar>),
    /// An object of scalars.
    Object(Vec<(Name, Scalar)>),
}

impl Json {
    fn json(&self) -> Value {
        match self {
            Json::Scalar(s) => s.json(),
            Json::Array(a) => Value::Array(a.iter().map(Scalar::json).collect()),
            Json::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.text(), v.json())).collect()),
        }
    }
}

/// One environment of `resume`: name, clientName, epoch, seq, subscriptions.
type ResumeEnv = (Name, Name, Option<u64>, Option<u64>, Vec<(Name, bool)>);

/// Every protocol action with its fields.
#[derive(Debug, Arbitrary)]
pub enum Action {
    /// `createEnvironment`.
    CreateEnvironment {
        environment: Name,
        client_name: Name,
    },
    /// `removeEnvironment`.
    RemoveEnvironment {
        environment: Name,
        cleanup: Option<bool>,
    },
    /// `setContextVariable`.
    SetContextVariable {
        environment: Name,
        name: Name,
        value: Json,
    },
    /// `setContextJSON`.
    SetContextJson {
        environment: Name,
        data: Vec<(Name, Json)>,
        clear_data: Option<bool>,
    },
    /// `setAllJSON`.
    SetAllJson {
        data: Vec<(Name, Vec<(Name, Json)>)>,
        clear_data: Option<bool>,
    },
    /// `getEnvironment`.
    GetEnvironment { environment: Name },
    /// `getData`.
    GetData,
    /// `removeItemFromEnvironment`.
    RemoveItemFromEnvironment { environment: Name, name: Name },
    /// `cleanEnvironment`.
    CleanEnvironment { environment: Name },
    /// `setNotificationsOn`.
    SetNotificationsOn {
        environment: Name,
        name: Name,
        values: Option<bool>,
    },
    /// `setNotificationsOff`.
    SetNotificationsOff { environment: Name, name: Name },
    /// `getVersion`.
    GetVersion,
    /// `getHost`.
    GetHost,
    /// `getUser`.
    GetUser,
    /// `resume` (the token is rarely valid: tokens are random).
    Resume {
        token: Name,
        environments: Vec<ResumeEnv>,
    },
    /// `setSizeWindow`.
    SetSizeWindow {
        x: Json,
        width: Json,
        height: Json,
        window_name: Name,
        focus: Json,
    },
    /// `showNotification`.
    ShowNotification {
        title: Name,
        message: Name,
        duration: Json,
    },
    /// `launchProcess`.
    LaunchProcess { name: Name, parameter: Option<Name> },
    /// `showPickupDialog`.
    ShowPickupDialog {
        title: Name,
        button_text: Name,
        interaction_id: Option<Name>,
    },
    /// `openUrl`.
    OpenUrl { url: Name },
    /// An unknown action name.
    Unknown(Name),
}

fn pairs(data: &[(Name, Json)]) -> Value {
    Value::Array(
        data.iter()
            .map(|(k, v)| {
                let mut m = Map::new();
                m.insert(k.text(), v.json());
                Value::Object(m)
            })
            .collect(),
    )
}

fn object(data: &[(Name, Json)]) -> Value {
    Value::Object(data.iter().map(|(k, v)| (k.text(), v.json())).collect())
}

/// Inserts `key: value` when `value` is `Some`.
fn opt(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.to_string(), v);
    }
}

impl Action {
    /// The request as a JSON object.
    pub fn json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let name = match self {
            Action::CreateEnvironment {
                environment,
                client_name,
            } => {
                put("environment", json!(environment.text()));
                put("clientName", json!(client_name.text()));
                "createEnvironment"
            }
            Action::RemoveEnvironment {
                environment,
                cleanup,
            } => {
                put("environment", json!(environment.text()));
                opt(&mut m, "cleanup", cleanup.map(Value::Bool));
                "removeEnvironment"
            }
            Action::SetContextVariable {
                environment,
                name,
                value,
            } => {
                put("environment", json!(environment.text()));
                put("name", json!(name.text()));
                put("value", value.json());
                "setContextVariable"
            }
            Action::SetContextJson {
                environment,
                data,
                clear_data,
            } => {
                put("environment", json!(environment.text()));
                put("data", pairs(data));
                opt(&mut m, "clearData", clear_data.map(Value::Bool));
                "setContextJSON"
            }
            Action::SetAllJson { data, clear_data } => {
                let envs = data
                    .iter()
                    .map(|(env, vars)| json!({"environment": env.text(), "data": object(vars)}))
                    .collect();
                put("data", Value::Array(envs));
                opt(&mut m, "clearData", clear_data.map(Value::Bool));
                "setAllJSON"
            }
            Action::GetEnvironment { environment } => {
                put("environment", json!(environment.text()));
                "getEnvironment"
            }
            Action::GetData => "getData",
            Action::RemoveItemFromEnvironment { environment, name } => {
                put("environment", json!(environment.text()));
                put("name", json!(name.text()));
                "removeItemFromEnvironment"
            }
            Action::CleanEnvironment { environment } => {
                put("environment", json!(environment.text()));
                "cleanEnvironment"
            }
            Action::SetNotificationsOn {
                environment,
                name,
                values,
            } => {
                put("environment", json!(environment.text()));
                put("name", json!(name.text()));
                opt(&mut m, "values", values.map(Value::Bool));
                "setNotificationsOn"
            }
            Action::SetNotificationsOff { environment, name } => {
                put("environment", json!(environment.text()));
                put("name", json!(name.text()));
                "setNotificationsOff"
            }
            Action::GetVersion => "getVersion",
            Action::GetHost => "getHost",
            Action::GetUser => "getUser",
            Action::Resume {
                token,
                environments,
            } => {
                put("token", json!(token.text()));
                let envs = environments
                    .iter()
                    .map(|(env, client, epoch, seq, subs)| {
                        let subs: Vec<Value> = subs
                            .iter()
                            .map(|(n, v)| json!({"name": n.text(), "values": v}))
                            .collect();
                        json!({"environment": env.text(), "clientName": client.text(),
                               "epoch": epoch, "seq": seq, "subscriptions": subs})
                    })
                    .collect();
                put("environments", Value::Array(envs));
                "resume"
            }
            Action::SetSizeWindow {
                x,
                width,
                height,
                window_name,
                focus,
            } => {
                put("x", x.json());
                put("width", width.json());
                put("height", height.json());
                put("windowName", json!(window_name.text()));
                put("focus", focus.json());
                "setSizeWindow"
            }
            Action::ShowNotification {
                title,
                message,
                duration,
            } => {
                put("title", json!(title.text()));
                put("message", json!(message.text()));
                put("duration", duration.json());
                "showNotification"
            }
            Action::LaunchProcess { name, parameter } => {
                put("name", json!(name.text()));
                opt(
                    &mut m,
                    "parameter",
                    parameter.as_ref().map(|p| json!(p.text())),
                );
                "launchProcess"
            }
            Action::ShowPickupDialog {
                title,
                button_text,
                interaction_id,
            } => {
                put("title", json!(title.text()));
                put("buttonText", json!(button_text.text()));
                opt(
                    &mut m,
                    "interactionId",
                    interaction_id.as_ref().map(|p| json!(p.text())),
                );
                "showPickupDialog"
            }
            Action::OpenUrl { url } => {
                put("url", json!(url.text()));
                "openUrl"
            }
            Action::Unknown(name) => {
                m.insert("action".into(), json!(name.text()));
                return m;
            }
        };
        m.insert("action".into(), json!(name));
        m
    }
}

impl Frame {
    /// The text frame to send.
    pub fn text(&self) -> String {
        match self {
            Frame::Action { action, request_id } => {
                let mut m = action.json();
                if let Some(id) = request_id {
                    m.insert("requestId".into(), id.json());
                }
                Value::Object(m).to_string()
            }
            Frame::Mangled {
                action,
                field,
                value,
            } => {
                let mut m = action.json();
                match value {
                    Some(v) => m.insert(field.text(), v.json()),
                    None => m.remove(&field.text()),
                };
                Value::Object(m).to_string()
            }
            Frame::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

/// Decodes `data` as a script and runs it through the shared hub checks.
pub fn run(data: &[u8]) {
    let u = Unstructured::new(data);
    let Ok(script) = Script::arbitrary_take_rest(u) else {
        return;
    };
    let mut h = wsconnector::fuzzing::HubHarness::new();
    for step in script.steps.iter().take(MAX_STEPS) {
        h.send(usize::from(step.session), &step.frame.text());
    }
    h.finish();
}
