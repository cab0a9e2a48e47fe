//! Wire types of the websocket protocol (docs/protocol.md is the contract):
//! the requests clients send, and the hello, replies and events the daemon
//! sends. Serde types only, with the protocol's limits and names as constants
//! beside them; all behaviour lives in `hub` and `store`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of this protocol, announced in the hello.
pub const PROTOCOL_VERSION: u32 = 1;
/// Product name announced in the hello.
pub const PRODUCT: &str = "wsconnector";

/// Longest environment name, in bytes.
pub const MAX_ENV_NAME_LEN: usize = 64;
/// Longest variable name, in bytes.
pub const MAX_VAR_NAME_LEN: usize = 128;
/// Longest `clientName`, in bytes.
pub const MAX_CLIENT_NAME_LEN: usize = 128;
/// Longest `requestId` string echoed back, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Longest resume token accepted, in bytes (tokens we issue are 32 hex digits).
pub const MAX_TOKEN_LEN: usize = 64;
/// Names no environment or variable may take: `*` means "every variable" in
/// subscriptions, the others would collide with JavaScript object internals.
pub const RESERVED_NAMES: &[&str] = &["*", "__proto__", "constructor", "prototype"];
/// The subscription name meaning "every variable of the environment".
pub const ALL_VARIABLES: &str = "*";
/// Websocket close code for a connection whose outbox overflowed (1013 "try
/// again later": the client may reconnect and resume).
pub const CLOSE_TOO_SLOW: u16 = 1013;
/// Websocket close code for a connection closed for abuse (1008 "policy
/// violation": too many malformed messages).
pub const CLOSE_POLICY: u16 = 1008;

/// Every action name the protocol knows, as written in `action`.
pub const ACTIONS: &[&str] = &[
    "createEnvironment",
    "removeEnvironment",
    "setContextVariable",
    "setContextJSON",
    "setAllJSON",
    "getEnvironment",
    "getData",
    "removeItemFromEnvironment",
    "cleanEnvironment",
    "setNotificationsOn",
    "setNotificationsOff",
    "getVersion",
    "getHost",
    "getUser",
    "resume",
    "setSizeWindow",
    "showNotification",
    "launchProcess",
    "showPickupDialog",
    "openUrl",
    "loadXML",
    "retrieveXML",
    "retrieveEnvironmentXML",
    "getStatus",
    "getInspectorToken",
];

/// A client request, selected by its `action` field (`requestId` is read
/// separately so that failures can echo it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Request {
    /// Register this connection in an environment, creating it when absent.
    #[serde(rename_all = "camelCase")]
    CreateEnvironment {
        /// Environment name.
        environment: String,
        /// The client's self-chosen name (two tabs may share one).
        client_name: String,
    },
    /// Unregister from an environment; `cleanup` also clears or removes its data.
    RemoveEnvironment {
        /// Environment name.
        environment: String,
        /// Clear the variables (and remove the environment when this was the last registration).
        #[serde(default)]
        cleanup: bool,
    },
    /// Set one variable.
    SetContextVariable {
        /// Environment name.
        environment: String,
        /// Variable name.
        name: String,
        /// New value: a JSON scalar.
        value: Value,
    },
    /// Set several variables of one environment atomically.
    #[serde(rename = "setContextJSON", rename_all = "camelCase")]
    SetContextJson {
        /// Environment name.
        environment: String,
        /// Single-pair objects `{name: value}`, applied in order.
        data: Vec<Map<String, Value>>,
        /// Clear the environment first, so only `data` remains (v3 `CLEAR_DATA`).
        #[serde(default)]
        clear_data: bool,
    },
    /// Set variables of several environments atomically.
    #[serde(rename = "setAllJSON", rename_all = "camelCase")]
    SetAllJson {
        /// One entry per environment, applied in order.
        data: Vec<EnvironmentData>,
        /// Clear each named environment first (v3 `CLEAR_DATA`).
        #[serde(default)]
        clear_data: bool,
    },
    /// Read one environment: `{name: value}`.
    GetEnvironment {
        /// Environment name.
        environment: String,
    },
    /// Read every environment: `{environment: {name: value}}`.
    GetData {},
    /// Remove one variable.
    RemoveItemFromEnvironment {
        /// Environment name.
        environment: String,
        /// Variable name.
        name: String,
    },
    /// Remove every variable of an environment.
    CleanEnvironment {
        /// Environment name.
        environment: String,
    },
    /// Subscribe to changes of a variable (`*` = every variable).
    SetNotificationsOn {
        /// Environment name.
        environment: String,
        /// Variable name or `*`.
        name: String,
        /// Also receive the whole environment (`Values`) with each event.
        #[serde(default)]
        values: bool,
    },
    /// Unsubscribe (`*` = drop every subscription in the environment).
    SetNotificationsOff {
        /// Environment name.
        environment: String,
        /// Variable name or `*`.
        name: String,
    },
    /// The product version.
    GetVersion {},
    /// The machine name.
    GetHost {},
    /// The OS user name of this connection.
    GetUser {},
    /// After a reconnect: restore registrations and subscriptions and get what was missed.
    Resume {
        /// The resume token from the previous connection's hello.
        token: String,
        /// What to restore, per environment.
        #[serde(default)]
        environments: Vec<ResumeEnvironment>,
    },
    /// Desktop (`window`): find a window by title, resize it, bring it to the front (§3.2.15).
    #[serde(rename_all = "camelCase")]
    SetSizeWindow {
        /// Legacy first argument: horizontal position of a resized window (number or numeric string; default 0).
        #[serde(default)]
        x: Value,
        /// New width; 0 (the default) with `height` 0 keeps the size.
        #[serde(default)]
        width: Value,
        /// New height; 0 (the default) with `width` 0 keeps the size.
        #[serde(default)]
        height: Value,
        /// The window title (exact match first, then substring).
        window_name: String,
        /// Bring it to the front (boolean or "true"/"false"; default true).
        #[serde(default)]
        focus: Value,
    },
    /// Desktop (`notify`): show a toast (§3.2.16).
    ShowNotification {
        /// Title line.
        title: String,
        /// Body text (plain text).
        message: String,
        /// Milliseconds it stays (number or numeric string; default 5000).
        #[serde(default)]
        duration: Value,
        /// Legacy colour (`Red`, `#ff0000`): red means critical urgency.
        #[serde(default)]
        color: Option<String>,
        /// Legacy width hint (ignored where the platform sizes toasts).
        #[serde(default)]
        width: Value,
        /// Legacy height hint.
        #[serde(default)]
        height: Value,
    },
    /// Desktop (`launch`): start a program declared in config.xml (§3.2.17).
    LaunchProcess {
        /// The declared program name (`editor`, legacy `chrome.exe`); never a path.
        name: String,
        /// The one parameter, checked against the program's rule; absent or "" = none.
        #[serde(default)]
        parameter: Option<String>,
    },
    /// Desktop (`dialog`): the incoming-call pickup dialog (§3.2.18).
    #[serde(rename_all = "camelCase")]
    ShowPickupDialog {
        /// Title / caller text.
        title: String,
        /// Label of the pick-up button.
        button_text: String,
        /// The dedupe key; default: the VOICE environment's `InteractionId` or `gwt_interactionid`.
        #[serde(default)]
        interaction_id: Option<String>,
    },
    /// Desktop (`openUrl`): open an http/https URL allowed for this origin.
    OpenUrl {
        /// The URL.
        url: String,
    },
    /// v1 `LoadXML(xml, root, prefix)`: one atomic bulk write of the
    /// variables in an XML document (docs/protocol.md "XML shape").
    #[serde(rename = "loadXML")]
    LoadXml {
        /// The document.
        xml: String,
        /// Element whose content is loaded; absent or "" = `context`.
        #[serde(default)]
        root: Option<String>,
        /// Prepended to every variable name; absent or "" = none.
        #[serde(default)]
        prefix: Option<String>,
        /// Environment of variables outside an `<environment>` element.
        #[serde(default)]
        environment: Option<String>,
        /// Not on the wire: the document as read, filled in by the hub
        /// before it takes its lock (reading 1 MiB of XML must not stall
        /// every other connection).
        #[serde(skip)]
        parsed: Option<Result<crate::xml::Loaded, crate::xml::XmlError>>,
    },
    /// v1 `RetrieveXML()`: every readable environment as XML.
    #[serde(rename = "retrieveXML")]
    RetrieveXml {},
    /// v1 `RetrieveEnvironmentXML()`: one environment as XML.
    #[serde(rename = "retrieveEnvironmentXML")]
    RetrieveEnvironmentXml {
        /// Environment name.
        environment: String,
    },
    /// Native clients only (`wsconnector ctl status`): connections and
    /// environments at a glance.
    GetStatus {},
    /// Native clients only, service mode (`wsconnector inspect` on
    /// Windows): a one-time inspector token for this OS user.
    GetInspectorToken {},
}

/// One environment's part of `setAllJSON`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EnvironmentData {
    /// Environment name.
    pub environment: String,
    /// Variables to set, in order.
    pub data: Map<String, Value>,
}

/// One environment to restore in `resume`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeEnvironment {
    /// Environment name.
    pub environment: String,
    /// The `clientName` to register with.
    pub client_name: String,
    /// Epoch of the last event or snapshot the client saw (absent = never saw any).
    #[serde(default)]
    pub epoch: Option<u64>,
    /// Seq of the last event or snapshot the client saw.
    #[serde(default)]
    pub seq: Option<u64>,
    /// Subscriptions to restore.
    #[serde(default)]
    pub subscriptions: Vec<ResumeSubscription>,
}

/// One subscription to restore in `resume`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResumeSubscription {
    /// Variable name or `*`.
    pub name: String,
    /// Whether events should carry `Values`.
    #[serde(default)]
    pub values: bool,
}

/// Stable, machine-readable reasons for a FAILURE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, or a field missing or of the wrong type.
    BadRequest,
    /// `action` names no known action.
    UnknownAction,
    /// An environment, variable or client name breaks the naming rules.
    InvalidName,
    /// A value is not a JSON scalar.
    InvalidValue,
    /// A value's JSON text is longer than the configured limit.
    ValueTooLarge,
    /// The connection is not registered in the environment (call createEnvironment first).
    NotRegistered,
    /// A count limit (environments, variables) would be exceeded; nothing was changed.
    LimitExceeded,
    /// The connection lacks the capability or the variable is outside its allow-list.
    Forbidden,
    /// The platform cannot perform this action (e.g. window focus on Wayland).
    NotSupported,
    /// An argument of a desktop action is malformed, too long, holds control
    /// characters, or does not match the configured rule.
    InvalidArgument,
    /// `launchProcess` names no program declared in config.xml.
    UnknownProgram,
    /// The target of a desktop action (window, program file) does not exist.
    NotFound,
    /// The operating system refused or failed the desktop action.
    ActionFailed,
    /// `Mode = service`: no session agent of this user is connected, or it
    /// did not answer in time; data actions keep working.
    AgentUnavailable,
    /// Too many requests of this type from this OS user and origin: refused
    /// for the quarantine delay (`data.retryAfterMs`).
    RateLimited,
    /// `loadXML` got a document that is not well-formed or not in the
    /// documented shape; the message names line and column.
    InvalidXml,
}

/// `SUCCESS` or `FAILURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// The request was carried out.
    Success,
    /// Nothing was changed; see `errorCode`.
    Failure,
}

/// The first message on every connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello<'a> {
    /// Always `"hello"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `PROTOCOL_VERSION`.
    pub protocol: u32,
    /// `PRODUCT`.
    pub product: &'static str,
    /// Product version.
    pub version: &'static str,
    /// Capability names granted to this connection.
    pub capabilities: Vec<&'static str>,
    /// Token to present in `resume` after a reconnect.
    pub resume_token: &'a str,
    /// OS user name owning the connection.
    pub user: &'a str,
    /// True for a native client (no Origin).
    pub native: bool,
    /// The browser origin, `null` for a native client.
    pub origin: Option<&'a str>,
}

/// The one answer to a request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    /// Always `"reply"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request's `requestId`, when it had a string or number one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Value>,
    /// The request's `action`, when it had a string one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// SUCCESS or FAILURE.
    pub result: Outcome,
    /// The answer's payload, per action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Epoch of the environment the request concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Seq of that environment after the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why it failed (machine readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Why it failed and what to do (human readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Names of the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventName {
    /// A variable was set (also when the value did not change).
    ContextChanged,
    /// A variable was removed.
    VarRemoved,
    /// Every variable of the environment was removed.
    EnvironmentCleaned,
    /// The environment itself was removed.
    EnvironmentRemoved,
    /// The daemon's status changed (`stopping-service`).
    ServerStatus,
    /// A pickup dialog this connection asked for ended.
    PickupResult,
}

/// A change in an environment, in the reference v3 shape plus `epoch`/`seq`.
#[derive(Debug, Clone, Serialize)]
pub struct ContextEvent<'a> {
    /// Always `"event"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What happened.
    pub event: EventName,
    /// The environment.
    #[serde(rename = "EnvironmentName")]
    pub environment_name: &'a str,
    /// The variable set or removed (absent for environment-wide events).
    #[serde(rename = "VarChanged", skip_serializing_if = "Option::is_none")]
    pub var_changed: Option<&'a str>,
    /// The new value (ContextChanged only).
    #[serde(rename = "ValueChanged", skip_serializing_if = "Option::is_none")]
    pub value_changed: Option<&'a Value>,
    /// The environment's epoch.
    pub epoch: u64,
    /// This event's sequence number in the epoch.
    pub seq: u64,
    /// The whole environment after the write, for subscriptions that asked.
    #[serde(rename = "Values", skip_serializing_if = "Option::is_none")]
    pub values: Option<&'a Map<String, Value>>,
}

/// A server-status event (`stopping-service`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct StatusEvent<'a> {
    /// Always `"event"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `ServerStatus`.
    pub event: EventName,
    /// The status, e.g. `stopping-service`.
    pub status: &'a str,
}

/// The end of a pickup dialog, sent to every connection that asked for it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PickupEvent<'a> {
    /// Always `"event"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `PickupResult`.
    pub event: EventName,
    /// The dedupe key (interaction id) of the dialog.
    pub key: &'a str,
    /// `pickedUp`, `dismissed`, `timedOut`, or `failed` (see `errorCode`).
    pub result: &'a str,
    /// Why the dialog could not be shown (`failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Human-readable reason (`failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// v3 `CLEAR_DATA` (reference §4.5.5.2): in a bulk write, this item is
/// consumed (never stored) and, with value `"1"`, empties its environment
/// before the write.
pub const CLEAR_DATA_KEY: &str = "CLEAR_DATA";
/// Environment the v1 `GEN_P2C` requests are written to.
pub const GEN_P2C_ENVIRONMENT: &str = "Default";
/// The v1 request key and the keys it consumes with it (never stored).
pub const GEN_P2C_KEYS: &[&str] = &[
    "GEN_P2C",
    "process",
    "argument",
    "loginurl",
    "iexploreprocess",
];
/// Environment the pickup dialog reads its default key from and writes its result to.
pub const PICKUP_ENVIRONMENT: &str = "VOICE";
/// Variables holding the current interaction id, in the order they are tried.
pub const INTERACTION_ID_VARIABLES: &[&str] = &["InteractionId", "gwt_interactionid"];
/// Variable set to `pickedUp`, `dismissed`, `timedOut` or `failed` when a dialog ends.
pub const PICKUP_RESULT_VARIABLE: &str = "PickupResult";
/// Variable set to the dialog's key when a dialog ends (written before `PickupResult`).
pub const PICKUP_KEY_VARIABLE: &str = "PickupKey";
