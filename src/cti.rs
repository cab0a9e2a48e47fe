//! The contact-center toolbar vocabulary of reference §4.5.7: the events a
//! toolbar publishes in `GEN_T2P` (§4.5.7.2) and the requests pages write in
//! `GEN_P2T` (§4.5.7.1), and the one atomic write a toolbar makes for each.
//!
//! Pure data and builders, no I/O: the inspector's simulator and
//! `wsconnector simulate` both turn a [`ToolbarWrite`] into a
//! `setContextJSON` request (docs/protocol.md §4.4) and send it like any
//! client, so a simulated event reaches pages exactly as a real one does.

use serde_json::{json, Map, Value};

/// The variable a toolbar publishes its events in (Toolbar to Program).
pub const GEN_T2P: &str = "GEN_T2P";
/// The variable pages write their requests in (Program to Toolbar).
pub const GEN_P2T: &str = "GEN_P2T";
/// Variable holding the interaction's unique identifier.
pub const INTERACTION_ID: &str = "InteractionId";
/// Variable holding the caller's number (voice).
pub const ANI: &str = "ANI";
/// Variable holding the dialled number (voice).
pub const DNIS: &str = "DNIS";
/// Variable holding the parties of a voice call.
pub const PARTIES: &str = "Parties";
/// The environments (toolbar channels) a toolbar publishes in, in the order
/// the simulator offers them.
pub const CHANNELS: &[&str] = &["VOICE", "EMAIL", "CHAT", "WORKITEM", "AGENT"];
/// Longest custom event or request name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// One event of reference §4.5.7.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolbarEvent {
    /// The value written in `GEN_T2P`.
    pub name: &'static str,
    /// What it means, from the reference.
    pub description: &'static str,
    /// A new interaction arrives: the toolbar clears the environment first
    /// ("arrival of a new phonecall will clear the VOICE environment").
    pub new_interaction: bool,
    /// Published about an interaction: its data (InteractionId, ANI, ...)
    /// goes with it.
    pub interaction: bool,
}

const fn ev(
    name: &'static str,
    description: &'static str,
    new_interaction: bool,
    interaction: bool,
) -> ToolbarEvent {
    ToolbarEvent {
        name,
        description,
        new_interaction,
        interaction,
    }
}

/// Every `GEN_T2P` event of reference §4.5.7.2, in its order.
pub const EVENTS: &[ToolbarEvent] = &[
    ev(
        "EvConnectorStart",
        "a media/workspace is logged on for this channel",
        false,
        false,
    ),
    ev(
        "EvConnectorStop",
        "a media/workspace is logged out for this channel",
        false,
        false,
    ),
    ev(
        "EvReady",
        "the agent became ready for this channel",
        false,
        false,
    ),
    ev(
        "EvNotReady",
        "the agent became not ready for this channel",
        false,
        false,
    ),
    ev(
        "EvACW",
        "the agent is in after-call work for this channel",
        false,
        false,
    ),
    ev(
        "EvDialing",
        "dialing out (voice): a new outbound interaction",
        true,
        true,
    ),
    ev(
        "EvRinging",
        "a new inbound interaction is offered",
        true,
        true,
    ),
    ev(
        "EvEstablished",
        "an interaction was accepted on this channel",
        false,
        true,
    ),
    ev(
        "EvReleased",
        "a voice audio leg was disconnected",
        false,
        true,
    ),
    ev(
        "EvClosed",
        "an interaction is finished and removed",
        false,
        true,
    ),
    ev(
        "EvConsult",
        "a consult transfer is offered (instead of EvRinging)",
        true,
        true,
    ),
    ev(
        "EvTransferComplete",
        "a voice transfer completed (instead of EvReleased)",
        false,
        true,
    ),
    ev(
        "EvConferenceComplete",
        "a voice conference completed (instead of EvReleased)",
        false,
        true,
    ),
    ev("EvReply", "the user clicked 'reply email'", false, true),
    ev(
        "EvPreview",
        "a new outbound preview record is offered",
        true,
        true,
    ),
    ev(
        "EvPartyChanged",
        "the parties of the call changed",
        false,
        true,
    ),
    ev("EvHeld", "a voice interaction was put on hold", false, true),
    ev(
        "EvAllACW",
        "AGENT channel: overall status is after-call work",
        false,
        false,
    ),
    ev(
        "EvAllReady",
        "AGENT channel: overall status is ready",
        false,
        false,
    ),
    ev(
        "EvAllNotReady",
        "AGENT channel: overall status is not ready",
        false,
        false,
    ),
];

/// One request of reference §4.5.7.1 and the variables that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolbarRequest {
    /// The value written in `GEN_P2T`.
    pub name: &'static str,
    /// What it asks for, from the reference.
    pub description: &'static str,
    /// The variables written with it, in the same environment.
    pub fields: &'static [&'static str],
}

/// Every `GEN_P2T` request of reference §4.5.7.1.
pub const REQUESTS: &[ToolbarRequest] = &[
    ToolbarRequest {
        name: "RqReady",
        description: "go ready for this channel (AGENT: every channel)",
        fields: &[],
    },
    ToolbarRequest {
        name: "RqNotReady",
        description: "go not ready for this channel (AGENT: every channel)",
        fields: &["reasoncode"],
    },
    ToolbarRequest {
        name: "RqDial",
        description: "VOICE: dial outbound_phone",
        fields: &["outbound_phone"],
    },
    ToolbarRequest {
        name: "RqCreateEmail",
        description: "EMAIL: a new email to email",
        fields: &["email"],
    },
    ToolbarRequest {
        name: "RqAttachData",
        description: "update the user data keyname=value of interaction InteractionId",
        fields: &["keyname", "value", INTERACTION_ID],
    },
];

/// The catalogue entry of a `GEN_T2P` event.
pub fn event(name: &str) -> Option<&'static ToolbarEvent> {
    EVENTS.iter().find(|e| e.name == name)
}

/// The catalogue entry of a `GEN_P2T` request.
pub fn request(name: &str) -> Option<&'static ToolbarRequest> {
    REQUESTS.iter().find(|r| r.name == name)
}

/// Why a toolbar write could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtiError {
    /// Not in the catalogue and not a plausible custom name.
    #[error("unknown {kind} {name:?}: known are {known}; a custom one must start with {prefix} and hold only letters, digits and _ (at most 64 bytes)")]
    UnknownName {
        /// `event` or `request`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// `Ev` or `Rq`.
        prefix: &'static str,
        /// The catalogue's names, comma separated.
        known: String,
    },
    /// The same variable given twice (e.g. `--ani` and `--data ANI=...`).
    #[error("variable {0:?} is given twice")]
    Duplicate(String),
    /// User data may not overwrite the event or request variable itself.
    #[error("variable {0:?} is written by the simulator itself: choose another name")]
    Reserved(String),
    /// A `--data` item without `=`.
    #[error("user data {0:?} is not KEY=VALUE")]
    NotKeyValue(String),
    /// An empty environment or variable name.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// What goes with an event: the interaction's identity and user data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventData {
    /// Caller number (`ANI`).
    pub ani: Option<String>,
    /// Dialled number (`DNIS`).
    pub dnis: Option<String>,
    /// `InteractionId`.
    pub interaction_id: Option<String>,
    /// `Parties` of a voice call.
    pub parties: Option<String>,
    /// Attached user data, in the order given.
    pub user_data: Vec<(String, String)>,
}

/// One atomic write a toolbar makes: `setContextJSON` of `data` in
/// `environment`, after clearing it when `clear_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolbarWrite {
    /// The environment (toolbar channel), e.g. `VOICE`.
    pub environment: String,
    /// Clear the environment first (a new interaction).
    pub clear_data: bool,
    /// Variables in write order; the `GEN_T2P`/`GEN_P2T` variable comes last,
    /// so a page reacting to its event has already heard of every other
    /// variable of the write.
    pub data: Vec<(String, Value)>,
}

impl ToolbarWrite {
    /// The protocol request for this write (docs/protocol.md §4.4).
    pub fn to_request(&self, request_id: Value) -> Value {
        let data: Vec<Value> = self
            .data
            .iter()
            .map(|(k, v)| {
                let mut m = Map::new();
                m.insert(k.clone(), v.clone());
                Value::Object(m)
            })
            .collect();
        json!({
            "action": "setContextJSON",
            "requestId": request_id,
            "environment": self.environment,
            "data": data,
            "clearData": self.clear_data,
        })
    }
}

fn known_names<T>(items: &[T], name: impl Fn(&T) -> &'static str) -> String {
    items.iter().map(name).collect::<Vec<_>>().join(", ")
}

/// True for a custom name the catalogue does not list: the prefix, then
/// letters, digits or `_`.
fn plausible(name: &str, prefix: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.len() > prefix.len()
        && name.starts_with(prefix)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(item: &str) -> Result<(String, String), CtiError> {
    match item.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(CtiError::NotKeyValue(item.to_string())),
    }
}

fn push_unique(
    data: &mut Vec<(String, Value)>,
    name: &str,
    value: String,
    reserved: &str,
) -> Result<(), CtiError> {
    if name.is_empty() {
        return Err(CtiError::Empty("a variable name"));
    }
    if name == reserved {
        return Err(CtiError::Reserved(name.to_string()));
    }
    if data.iter().any(|(k, _)| k == name) {
        return Err(CtiError::Duplicate(name.to_string()));
    }
    data.push((name.to_string(), Value::String(value)));
    Ok(())
}

/// The write a toolbar makes to publish `event` in `environment`: the
/// interaction's variables (`InteractionId`, `ANI`, `DNIS`, `Parties`, then
/// user data in order), then `GEN_T2P`, all in one `setContextJSON`; a new
/// interaction (`EvRinging`, `EvDialing`, `EvConsult`, `EvPreview`) clears the
/// environment first, as the reference says the toolbar does. A name outside
/// the catalogue is accepted when it looks like an event (`Ev...`): toolbars
/// have custom ones.
pub fn event_write(
    environment: &str,
    event_name: &str,
    data: &EventData,
) -> Result<ToolbarWrite, CtiError> {
    if environment.is_empty() {
        return Err(CtiError::Empty("the environment"));
    }
    let entry = event(event_name);
    if entry.is_none() && !plausible(event_name, "Ev") {
        return Err(CtiError::UnknownName {
            kind: "event",
            name: event_name.to_string(),
            prefix: "Ev",
            known: known_names(EVENTS, |e| e.name),
        });
    }
    let mut vars = Vec::new();
    let fixed = [
        (INTERACTION_ID, &data.interaction_id),
        (ANI, &data.ani),
        (DNIS, &data.dnis),
        (PARTIES, &data.parties),
    ];
    for (name, value) in fixed {
        if let Some(v) = value {
            push_unique(&mut vars, name, v.clone(), GEN_T2P)?;
        }
    }
    for (k, v) in &data.user_data {
        push_unique(&mut vars, k, v.clone(), GEN_T2P)?;
    }
    vars.push((GEN_T2P.to_string(), Value::String(event_name.to_string())));
    Ok(ToolbarWrite {
        environment: environment.to_string(),
        clear_data: entry.is_some_and(|e| e.new_interaction),
        data: vars,
    })
}

/// The write a page makes to send `request` to the toolbar: its fields (in
/// `fields` order), then `GEN_P2T`, in one `setContextJSON` that clears nothing.
pub fn request_write(
    environment: &str,
    request_name: &str,
    fields: &[(String, String)],
) -> Result<ToolbarWrite, CtiError> {
    if environment.is_empty() {
        return Err(CtiError::Empty("the environment"));
    }
    if request(request_name).is_none() && !plausible(request_name, "Rq") {
        return Err(CtiError::UnknownName {
            kind: "request",
            name: request_name.to_string(),
            prefix: "Rq",
            known: known_names(REQUESTS, |r| r.name),
        });
    }
    let mut vars = Vec::new();
    for (k, v) in fields {
        push_unique(&mut vars, k, v.clone(), GEN_P2T)?;
    }
    vars.push((GEN_P2T.to_string(), Value::String(request_name.to_string())));
    Ok(ToolbarWrite {
        environment: environment.to_string(),
        clear_data: false,
        data: vars,
    })
}

/// The catalogue as JSON, for the inspector page (events, requests, channels).
pub fn catalogue_json() -> Value {
    json!({
        "channels": CHANNELS,
        "events": EVENTS.iter().map(|e| json!({
            "name": e.name,
            "description": e.description,
            "newInteraction": e.new_interaction,
            "interaction": e.interaction,
        })).collect::<Vec<_>>(),
        "requests": REQUESTS.iter().map(|r| json!({
            "name": r.name,
            "description": r.description,
            "fields": r.fields,
        })).collect::<Vec<_>>(),
    })
}
