//! Desktop actions in the hub: every check happens here, under the hub's
//! lock (capability, declared program and its parameter rule, URL scheme and
//! the origin's URL patterns, argument types, lengths and characters); the
//! platform call then runs on a blocking thread without the lock, and its one
//! reply is queued when it returns (a reply to a connection that closed in
//! between is dropped). Every action, refused or performed, is written to the
//! audit log (tracing target `audit`, INFO) with origin, OS user, connection,
//! action, arguments (secrets masked) and result. A `launchProcess` whose
//! parameter is an http/https URL, naming a program declared `openUrl="true"`,
//! is checked, performed and audited as `openUrl` (the reply keeps its action).
//!
//! Also here: the pickup dialog's dedupe (one dialog per key, however many
//! connections ask; the result goes to each of them and into the VOICE
//! environment) and the v1 `GEN_P2C` requests, whose keys are consumed from
//! a bulk write before it reaches the store.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use serde_json::{json, Value};

use super::dispatch::{fan_out, Failure};
use super::{push, to_text, ConnId, Hub, HubSettings, Outgoing, PeerInfo, State};
use crate::config::{wildcard_match, Program, VarFilter};
use crate::platform::{
    ActionError, LaunchSpec, PickupDialog, PickupOutcome, Platform, Toast, WindowRequest,
};
use crate::protocol::{
    ErrorCode, EventName, Outcome, PickupEvent, Reply, Request, GEN_P2C_ENVIRONMENT, GEN_P2C_KEYS,
    INTERACTION_ID_VARIABLES, PICKUP_ENVIRONMENT, PICKUP_KEY_VARIABLE, PICKUP_RESULT_VARIABLE,
};
use crate::store::Write;

/// Longest program name.
pub const MAX_PROGRAM_NAME: usize = 128;
/// Longest launch parameter.
pub const MAX_PARAMETER: usize = 2048;
/// Longest URL (`openUrl`, `loginurl`).
pub const MAX_URL: usize = 2048;
/// Longest window title, toast title or dialog title.
pub const MAX_TITLE: usize = 256;
/// Longest toast message.
pub const MAX_MESSAGE: usize = 2048;
/// Longest button label.
pub const MAX_BUTTON: usize = 64;
/// Longest interaction id (pickup key).
pub const MAX_KEY: usize = 128;
/// Longest colour name.
pub const MAX_COLOR: usize = 32;
/// Largest window width or height, and the largest |x|.
pub const MAX_PIXELS: i64 = 100_000;
/// Longest toast duration, in milliseconds (10 minutes).
pub const MAX_DURATION_MS: i64 = 600_000;
/// Toast duration when none is given, in milliseconds.
pub const DEFAULT_DURATION_MS: i64 = 5_000;
/// Pickup dialogs showing at once (distinct keys): a page cannot flood the desktop.
pub const MAX_PICKUPS: usize = 4;
/// Program `RqStartGWT` starts when the request names none (the v1 default).
pub const GWT_DEFAULT_PROGRAM: &str = "iexplore.exe";
/// Label of the pickup button when the page gives an empty one.
const DEFAULT_BUTTON: &str = "Pick up";

/// Pickup dialogs showing now: key -> connections that asked, in order.
#[derive(Debug, Default)]
pub(super) struct Pickups {
    showing: HashMap<String, Vec<ConnId>>,
}

/// What the platform is asked to do.
#[derive(Debug, Clone)]
enum Work {
    Launch(LaunchSpec),
    OpenUrl(String),
    Window(WindowRequest),
    Notify(Toast),
    Pickup(PickupDialog),
    CloseWindow(String),
}

/// How the requester hears of the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// One reply when the platform call returns.
    Reply,
    /// `PickupResult` events (the reply was queued at once).
    PickupEvents,
    /// Only the audit log (a `GEN_P2C` write, already answered).
    AuditOnly,
}

/// A checked action waiting to run outside the lock.
#[derive(Debug, Clone)]
pub(super) struct Job {
    conn: ConnId,
    request_id: Option<Value>,
    /// The name in the audit log (`launchProcess`, `GEN_P2C RqStartGWT`).
    action: String,
    /// The name in the reply: the request's own action (differs from
    /// `action` when a `launchProcess` is performed as `openUrl`).
    reply_action: String,
    work: Work,
    answer: Answer,
    /// For the audit log.
    origin: Option<String>,
    os_user: String,
    /// Arguments as logged (secrets masked).
    args: String,
}

/// The result of checking a desktop request under the lock.
pub(super) enum Prepared {
    /// Run the job; its reply comes when it finishes.
    Later(Job),
    /// Answer now with `data`; run the job (if any) afterwards.
    Now(Value, Option<Job>),
}

/// True for the requests this module handles.
pub(super) fn is_desktop(req: &Request) -> bool {
    matches!(
        req,
        Request::SetSizeWindow { .. }
            | Request::ShowNotification { .. }
            | Request::LaunchProcess { .. }
            | Request::ShowPickupDialog { .. }
            | Request::OpenUrl { .. }
    )
}

/// Writes one audit record.
fn audit(
    origin: Option<&str>,
    os_user: &str,
    conn: ConnId,
    action: &str,
    args: &str,
    result: &str,
) {
    tracing::info!(
        target: "audit",
        origin = origin.unwrap_or("(native client)"),
        os_user,
        conn = conn.0,
        action,
        args,
        result,
        "desktop action"
    );
}

fn invalid(action: &str, message: String) -> Failure {
    Failure::new(ErrorCode::InvalidArgument, format!("{action}: {message}"))
}

/// A string argument: at most `max` bytes, no NUL, no line break (unless
/// `newlines`), no other control character.
pub(super) fn check_text(
    action: &str,
    field: &str,
    value: &str,
    max: usize,
    newlines: bool,
) -> Result<(), Failure> {
    if value.len() > max {
        return Err(invalid(
            action,
            format!(
                "`{field}` is {} bytes long; at most {max} are allowed",
                value.len()
            ),
        ));
    }
    for c in value.chars() {
        let problem = match c {
            '\0' => "a NUL character",
            '\n' | '\r' if !newlines => "a line break",
            '\n' | '\r' | '\t' if newlines => continue,
            c if c.is_control() => "a control character",
            _ => continue,
        };
        return Err(invalid(
            action,
            format!(
                "`{field}` contains {problem} (U+{:04X}), which is not allowed",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A legacy number: a JSON integer or a string holding one; `null`/absent = `default`.
fn number(
    action: &str,
    field: &str,
    v: &Value,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, Failure> {
    let n = match v {
        Value::Null => return Ok(default),
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.trim().is_empty() => return Ok(default),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            action,
            format!("`{field}` must be a whole number from {min} to {max}, got {v}"),
        )),
    }
}

/// A legacy size hint: a number, or anything else (placeholder text) = none.
fn hint(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn flag(action: &str, field: &str, v: &Value, default: bool) -> Result<bool, Failure> {
    match v {
        Value::Null => Ok(default),
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(
            action,
            format!("`{field}` must be true or false, got {v}"),
        )),
    }
}

fn forbidden(capability: &str) -> Failure {
    Failure::new(
        ErrorCode::Forbidden,
        format!(
            "this origin is not granted the `{capability}` capability; an administrator can \
             grant it in config.xml (<Origin url=\"...\" capabilities=\"data {capability}\">)"
        ),
    )
}

/// The declared program `name` with `parameter`, or why not.
fn launch_spec(
    programs: &[Program],
    action: &str,
    field: &str,
    name: &str,
    parameter: Option<&str>,
) -> Result<LaunchSpec, Failure> {
    check_text(action, field, name, MAX_PROGRAM_NAME, false)?;
    if name.contains(['/', '\\']) {
        return Err(Failure::new(
            ErrorCode::UnknownProgram,
            format!(
                "{action}: {name:?} is a path; pass the name of a program declared in config.xml \
                 (<Programs><Program name=\"...\" path=\"...\"/></Programs>), never a path"
            ),
        ));
    }
    let Some(program) = programs.iter().find(|p| p.name.eq_ignore_ascii_case(name)) else {
        return Err(Failure::new(
            ErrorCode::UnknownProgram,
            format!(
                "{action}: no program named {name:?} is declared; an administrator can declare it \
                 in config.xml: <Programs><Program name=\"{name}\" path=\"ABSOLUTE PATH OF THE \
                 EXECUTABLE\" parameter=\"^ANCHORED RULE FOR THE PARAMETER$\"/></Programs>"
            ),
        ));
    };
    let mut args = program.args.clone();
    match parameter.filter(|p| !p.is_empty()) {
        None => {}
        Some(p) => {
            check_text(action, "parameter", p, MAX_PARAMETER, false)?;
            if p.starts_with('-') {
                // A program would read it as an option (`--config=...`),
                // whatever the rule's author had in mind.
                return Err(invalid(
                    action,
                    "the parameter starts with '-', so the program could read it as an option; \
                     it is never passed"
                        .into(),
                ));
            }
            let Some(rule) = &program.parameter_rule else {
                return Err(invalid(
                    action,
                    format!(
                        "program {:?} takes no parameter (config.xml declares no parameter rule for it)",
                        program.name
                    ),
                ));
            };
            // The rule was checked (valid, anchored at both ends) when the
            // configuration was loaded; a failure here is still refused.
            let matches = regex::Regex::new(rule).is_ok_and(|re| re.is_match(p));
            if !matches {
                return Err(invalid(
                    action,
                    format!(
                        "the parameter does not match the rule {rule} that config.xml sets for program {:?}",
                        program.name
                    ),
                ));
            }
            args.push(p.to_string());
        }
    }
    Ok(LaunchSpec {
        name: program.name.clone(),
        path: program.path.clone(),
        args,
    })
}

/// A `launchProcess` of a program declared with `openUrl="true"` whose
/// parameter is an http/https URL: `(url, program name)`, to be handled
/// exactly as `openUrl(url)`. `None` for any other request.
fn launch_as_open_url(programs: &[Program], req: &Request) -> Option<(String, String)> {
    let Request::LaunchProcess {
        name,
        parameter: Some(p),
    } = req
    else {
        return None;
    };
    let declared = programs
        .iter()
        .any(|pr| pr.open_url && pr.name.eq_ignore_ascii_case(name));
    let lower = p.trim_start().to_ascii_lowercase();
    (declared && (lower.starts_with("http://") || lower.starts_with("https://")))
        .then(|| (p.clone(), name.clone()))
}

/// An http/https URL without spaces or control characters.
fn check_url(action: &str, field: &str, url: &str) -> Result<(), Failure> {
    check_text(action, field, url, MAX_URL, false)?;
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(invalid(
            action,
            format!("`{field}` must be an http:// or https:// URL without spaces"),
        )),
    }
}

/// A URL as logged: the query and fragment (tokens, credentials) masked.
fn masked_url(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(i) => format!("{}?(masked)", &url[..i]),
        None => url.to_string(),
    }
}

/// Checks a desktop request for connection `id`. Refusals are audit-logged here.
pub(super) fn prepare(
    settings: &HubSettings,
    st: &mut State,
    id: ConnId,
    req: Request,
    request_id: Option<Value>,
) -> Result<Prepared, Failure> {
    let Some(conn) = st.conns.get(&id) else {
        return Err(Failure::new(ErrorCode::BadRequest, "connection is closing"));
    };
    let peer = conn.peer.clone();
    let (mut action, mut args) = describe(&req);
    let requested = action;
    let req = match launch_as_open_url(&settings.programs, &req) {
        Some((url, name)) => {
            action = "openUrl";
            args = format!("url={:?} (launchProcess name={name:?})", masked_url(&url));
            Request::OpenUrl { url }
        }
        None => req,
    };
    let result = check(settings, st, id, &peer, req);
    match result {
        Err(f) => {
            audit(
                peer.origin.as_deref(),
                &peer.os_user.name,
                id,
                action,
                &args,
                &format!("refused: {}", error_name(f.code)),
            );
            Err(f)
        }
        Ok(Checked::Run(work)) => {
            let mut job = job(&peer, id, request_id, action, args, work, Answer::Reply);
            job.reply_action = requested.to_string();
            Ok(Prepared::Later(job))
        }
        Ok(Checked::Pickup { key, dialog }) => {
            let shown = dialog.is_some();
            let job = dialog.map(|d| {
                job(
                    &peer,
                    id,
                    request_id,
                    action,
                    args.clone(),
                    Work::Pickup(d),
                    Answer::PickupEvents,
                )
            });
            if !shown {
                audit(
                    peer.origin.as_deref(),
                    &peer.os_user.name,
                    id,
                    action,
                    &args,
                    "joined the dialog already showing",
                );
            }
            Ok(Prepared::Now(json!({"key": key, "shown": shown}), job))
        }
    }
}

fn job(
    peer: &PeerInfo,
    conn: ConnId,
    request_id: Option<Value>,
    action: &str,
    args: String,
    work: Work,
    answer: Answer,
) -> Job {
    Job {
        conn,
        request_id,
        action: action.to_string(),
        reply_action: action.to_string(),
        work,
        answer,
        origin: peer.origin.clone(),
        os_user: peer.os_user.name.clone(),
        args,
    }
}

/// The action name and its arguments as the audit log shows them. Only
/// names, sizes and URL prefixes: toast and dialog texts are customer data.
fn describe(req: &Request) -> (&'static str, String) {
    match req {
        Request::SetSizeWindow {
            x,
            width,
            height,
            window_name,
            focus,
        } => (
            "setSizeWindow",
            format!("windowName={window_name:?} x={x} width={width} height={height} focus={focus}"),
        ),
        Request::ShowNotification {
            title,
            message,
            duration,
            color,
            ..
        } => (
            "showNotification",
            format!(
                "title=({} bytes) message=({} bytes) duration={duration} color={color:?}",
                title.len(),
                message.len()
            ),
        ),
        Request::LaunchProcess { name, parameter } => (
            "launchProcess",
            format!("name={name:?} parameter={parameter:?}"),
        ),
        Request::ShowPickupDialog {
            title,
            interaction_id,
            ..
        } => (
            "showPickupDialog",
            format!(
                "title=({} bytes) interactionId={interaction_id:?}",
                title.len()
            ),
        ),
        Request::OpenUrl { url } => ("openUrl", format!("url={:?}", masked_url(url))),
        _ => ("unknown", String::new()),
    }
}

enum Checked {
    Run(Work),
    Pickup {
        key: String,
        dialog: Option<PickupDialog>,
    },
}

fn check(
    settings: &HubSettings,
    st: &mut State,
    id: ConnId,
    peer: &PeerInfo,
    req: Request,
) -> Result<Checked, Failure> {
    let caps = peer.capabilities;
    match req {
        Request::LaunchProcess { name, parameter } => {
            if !caps.launch {
                return Err(forbidden("launch"));
            }
            let spec = launch_spec(
                &settings.programs,
                "launchProcess",
                "name",
                &name,
                parameter.as_deref(),
            )?;
            Ok(Checked::Run(Work::Launch(spec)))
        }
        Request::OpenUrl { url } => {
            if !caps.open_url {
                return Err(forbidden("openUrl"));
            }
            check_url("openUrl", "url", &url)?;
            if !peer
                .open_url_patterns
                .iter()
                .any(|p| wildcard_match(p, &url))
            {
                return Err(Failure::new(
                    ErrorCode::Forbidden,
                    format!(
                        "openUrl: the URL matches none of this origin's <OpenUrl> patterns in \
                         config.xml ({})",
                        if peer.open_url_patterns.is_empty() {
                            "it has none".to_string()
                        } else {
                            peer.open_url_patterns.join("; ")
                        }
                    ),
                ));
            }
            Ok(Checked::Run(Work::OpenUrl(url)))
        }
        Request::SetSizeWindow {
            x,
            width,
            height,
            window_name,
            focus,
        } => {
            if !caps.window {
                return Err(forbidden("window"));
            }
            let a = "setSizeWindow";
            check_text(a, "windowName", &window_name, MAX_TITLE, false)?;
            if window_name.trim().is_empty() {
                return Err(invalid(a, "`windowName` must not be empty".into()));
            }
            let x = number(a, "x", &x, 0, -MAX_PIXELS, MAX_PIXELS)?;
            let width = number(a, "width", &width, 0, 0, MAX_PIXELS)?;
            let height = number(a, "height", &height, 0, 0, MAX_PIXELS)?;
            let focus = flag(a, "focus", &focus, true)?;
            Ok(Checked::Run(Work::Window(WindowRequest {
                title: window_name,
                x: i32::try_from(x).unwrap_or(0),
                width: u32::try_from(width).unwrap_or(0),
                height: u32::try_from(height).unwrap_or(0),
                focus,
            })))
        }
        Request::ShowNotification {
            title,
            message,
            duration,
            color,
            width,
            height,
        } => {
            if !caps.notify {
                return Err(forbidden("notify"));
            }
            let a = "showNotification";
            check_text(a, "title", &title, MAX_TITLE, false)?;
            check_text(a, "message", &message, MAX_MESSAGE, true)?;
            if let Some(c) = &color {
                check_text(a, "color", c, MAX_COLOR, false)?;
            }
            let ms = number(
                a,
                "duration",
                &duration,
                DEFAULT_DURATION_MS,
                0,
                MAX_DURATION_MS,
            )?;
            let ms = if ms == 0 { DEFAULT_DURATION_MS } else { ms };
            Ok(Checked::Run(Work::Notify(Toast {
                title,
                message,
                duration: std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
                color: color.filter(|c| !c.trim().is_empty()),
                width: hint(&width),
                height: hint(&height),
            })))
        }
        Request::ShowPickupDialog {
            title,
            button_text,
            interaction_id,
        } => {
            if !caps.dialog {
                return Err(forbidden("dialog"));
            }
            let a = "showPickupDialog";
            check_text(a, "title", &title, MAX_TITLE, false)?;
            check_text(a, "buttonText", &button_text, MAX_BUTTON, false)?;
            let key = match interaction_id.filter(|k| !k.is_empty()) {
                Some(k) => {
                    check_text(a, "interactionId", &k, MAX_KEY, false)?;
                    k
                }
                None => current_interaction(st, &peer.read).ok_or_else(|| {
                    Failure::new(
                        ErrorCode::BadRequest,
                        format!(
                            "showPickupDialog: no interactionId given and the {PICKUP_ENVIRONMENT} \
                             environment has no readable {} value to use as the dialog's key",
                            INTERACTION_ID_VARIABLES.join(" or ")
                        ),
                    )
                })?,
            };
            if let Some(askers) = st.pickups.showing.get_mut(&key) {
                if !askers.contains(&id) {
                    askers.push(id);
                }
                return Ok(Checked::Pickup { key, dialog: None });
            }
            if st.pickups.showing.len() >= MAX_PICKUPS {
                return Err(Failure::new(
                    ErrorCode::LimitExceeded,
                    format!("showPickupDialog: {MAX_PICKUPS} pickup dialogs are already showing"),
                ));
            }
            st.pickups.showing.insert(key.clone(), vec![id]);
            let button_text = if button_text.trim().is_empty() {
                DEFAULT_BUTTON.to_string()
            } else {
                button_text
            };
            Ok(Checked::Pickup {
                dialog: Some(PickupDialog {
                    key: key.clone(),
                    title,
                    button_text,
                    timeout: settings.pickup_timeout,
                }),
                key,
            })
        }
        _ => Err(Failure::new(ErrorCode::BadRequest, "not a desktop action")),
    }
}

/// The VOICE environment's current interaction id, if the reader may see it.
fn current_interaction(st: &State, read: &VarFilter) -> Option<String> {
    let env = st.store.environment(PICKUP_ENVIRONMENT)?;
    INTERACTION_ID_VARIABLES.iter().find_map(|name| {
        if !read.allows(PICKUP_ENVIRONMENT, name) {
            return None;
        }
        match env.get(name)? {
            Value::String(s) if !s.is_empty() && check_text("", "", s, MAX_KEY, false).is_ok() => {
                Some(s.clone())
            }
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    })
}

/// With `GEN_P2C` enabled, single writes of its keys in `Default` are refused:
/// a request must arrive whole, and `loginurl` must never be stored.
pub(super) fn gen_p2c_single(
    settings: &HubSettings,
    environment: &str,
    name: &str,
) -> Result<(), Failure> {
    if settings.gen_p2c.enabled
        && environment == GEN_P2C_ENVIRONMENT
        && GEN_P2C_KEYS.contains(&name)
    {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            format!(
                "{name} in {GEN_P2C_ENVIRONMENT} belongs to a GEN_P2C request: send GEN_P2C and its \
                 keys together in one setContextJSON or setAllJSON"
            ),
        ));
    }
    Ok(())
}

/// With `GEN_P2C` enabled: takes the request and its keys out of a bulk
/// write (they are never stored), checks it, and returns the job to run.
pub(super) fn gen_p2c_bulk(
    settings: &HubSettings,
    peer: &PeerInfo,
    id: ConnId,
    request_id: Option<Value>,
    writes: &mut Vec<Write>,
) -> Result<Option<Job>, Failure> {
    if !settings.gen_p2c.enabled {
        return Ok(None);
    }
    let is_key = |w: &Write| w.0 == GEN_P2C_ENVIRONMENT && GEN_P2C_KEYS.contains(&w.1.as_str());
    if !writes.iter().any(is_key) {
        return Ok(None);
    }
    let mut keys: HashMap<String, Value> = HashMap::new();
    let mut rest = Vec::with_capacity(writes.len());
    for w in writes.drain(..) {
        if is_key(&w) {
            if !peer.write.allows(&w.0, &w.1) {
                return Err(Failure::new(
                    ErrorCode::Forbidden,
                    format!("{}.{} is outside this origin's write allow-list", w.0, w.1),
                ));
            }
            if keys.insert(w.1.clone(), w.2).is_some() {
                return Err(Failure::new(
                    ErrorCode::BadRequest,
                    format!("GEN_P2C: {} is given twice", w.1),
                ));
            }
        } else {
            rest.push(w);
        }
    }
    *writes = rest;
    let text = |name: &str| -> Result<Option<String>, Failure> {
        match keys.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid("GEN_P2C", format!("`{name}` must be a string"))),
        }
    };
    let Some(request) = text("GEN_P2C")? else {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            "GEN_P2C keys (process, argument, loginurl, iexploreprocess) were written without GEN_P2C; \
             send them together with GEN_P2C in one bulk write",
        ));
    };
    let refuse = |f: Failure, args: &str| {
        audit(
            peer.origin.as_deref(),
            &peer.os_user.name,
            id,
            "GEN_P2C",
            args,
            &format!("refused: {}", error_name(f.code)),
        );
        f
    };
    if !peer.capabilities.launch {
        return Err(refuse(forbidden("launch"), &format!("request={request:?}")));
    }
    let action = format!("GEN_P2C {request}");
    let (work, args) = match request.as_str() {
        "RqStartProcess" => {
            let process = text("process")?.unwrap_or_default();
            let argument = text("argument")?;
            let args = format!("process={process:?} argument={argument:?}");
            let spec = launch_spec(&settings.programs, &action, "process", &process, argument.as_deref())
                .map_err(|f| refuse(f, &args))?;
            (Work::Launch(spec), args)
        }
        "RqStartGWT" => {
            let program = text("iexploreprocess")?.unwrap_or_else(|| GWT_DEFAULT_PROGRAM.to_string());
            // loginurl carries credentials: never logged, not even masked.
            let args = format!("iexploreprocess={program:?} loginurl=(secret)");
            let Some(url) = text("loginurl")? else {
                return Err(refuse(invalid(&action, "`loginurl` is missing".into()), &args));
            };
            check_url(&action, "loginurl", &url).map_err(|f| refuse(f, &args))?;
            let spec = launch_spec(&settings.programs, &action, "iexploreprocess", &program, Some(&url))
                .map_err(|f| refuse(f, &args))?;
            (Work::Launch(spec), args)
        }
        "RqStopGWT" => {
            let Some(title) = settings.gen_p2c.toolbar_title.clone() else {
                return Err(refuse(
                    Failure::new(
                        ErrorCode::NotSupported,
                        "GEN_P2C RqStopGWT: config.xml names no toolbar window \
                         (<GenP2C enabled=\"true\" toolbarTitle=\"...\"/>)",
                    ),
                    "",
                ));
            };
            let args = format!("toolbarTitle={title:?}");
            (Work::CloseWindow(title), args)
        }
        other => {
            return Err(refuse(
                Failure::new(
                    ErrorCode::BadRequest,
                    format!("GEN_P2C: unknown request {other:?}; known: RqStartProcess, RqStartGWT, RqStopGWT"),
                ),
                "",
            ))
        }
    };
    Ok(Some(job(
        peer,
        id,
        request_id,
        &action,
        args,
        work,
        Answer::AuditOnly,
    )))
}

/// The wire name of an error code (for the audit log).
fn error_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn action_error_code(e: &ActionError) -> ErrorCode {
    match e {
        ActionError::NotSupported(_) => ErrorCode::NotSupported,
        ActionError::NotFound(_) => ErrorCode::NotFound,
        ActionError::Failed(_) => ErrorCode::ActionFailed,
        ActionError::Unavailable(_) => ErrorCode::AgentUnavailable,
    }
}

/// What a platform call returned.
enum Done {
    Pid(u32),
    Nothing,
    Pickup(PickupOutcome),
}

fn perform(platform: &dyn Platform, work: &Work) -> Result<Done, ActionError> {
    match work {
        Work::Launch(spec) => platform.launch(spec).map(Done::Pid),
        Work::OpenUrl(url) => platform.open_url(url).map(|()| Done::Nothing),
        Work::Window(w) => platform.window(w).map(|()| Done::Nothing),
        Work::Notify(t) => platform.notify(t).map(|()| Done::Nothing),
        Work::Pickup(d) => platform.pickup(d).map(Done::Pickup),
        Work::CloseWindow(title) => platform.close_window(title).map(|()| Done::Nothing),
    }
}

/// Runs `job` on a blocking thread, then queues its answer: tokio's
/// blocking pool inside a runtime, a plain thread otherwise. A pickup dialog
/// always gets a plain thread: it may stay open for `PickupTimeout`, and a
/// runtime waits for its blocking pool when it shuts down, so a dialog must
/// not hold up the daemon's exit.
pub(super) fn spawn(hub: Hub, job: Job) {
    let long = matches!(job.work, Work::Pickup(_));
    // Kept to answer (and to end a pickup's dedupe entry) if no thread starts.
    let fallback = (hub.clone(), job.clone());
    let task = move || {
        let platform = hub.inner.settings.load().platform.clone();
        let done =
            std::panic::catch_unwind(AssertUnwindSafe(|| perform(platform.as_ref(), &job.work)))
                .unwrap_or_else(|_| {
                    Err(ActionError::Failed(
                        "internal error in the platform layer".into(),
                    ))
                });
        finish(&hub, job, done);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if !long => {
            rt.spawn_blocking(task);
        }
        _ => {
            if let Err(e) = std::thread::Builder::new()
                .name("wsc-desktop".into())
                .spawn(task)
            {
                tracing::error!(error = %e, "cannot start a thread for a desktop action");
                let (hub, job) = fallback;
                finish(
                    &hub,
                    job,
                    Err(ActionError::Failed(format!("cannot start a thread: {e}"))),
                );
            }
        }
    }
}

fn outcome_name(o: PickupOutcome) -> &'static str {
    match o {
        PickupOutcome::PickedUp => "pickedUp",
        PickupOutcome::Dismissed => "dismissed",
        PickupOutcome::TimedOut => "timedOut",
    }
}

/// Queues the answer of a finished job and audit-logs its result.
fn finish(hub: &Hub, job: Job, done: Result<Done, ActionError>) {
    let result_text = match &done {
        Ok(Done::Pid(pid)) => format!("ok: started, pid {pid}"),
        Ok(Done::Nothing) => "ok".to_string(),
        Ok(Done::Pickup(o)) => format!("ok: {}", outcome_name(*o)),
        Err(e) => format!("failed: {} ({e})", error_name(action_error_code(e))),
    };
    audit(
        job.origin.as_deref(),
        &job.os_user,
        job.conn,
        &job.action,
        &job.args,
        &result_text,
    );
    let mut guard = super::lock(&hub.inner.state);
    let st = &mut *guard;
    match job.answer {
        Answer::AuditOnly => {}
        Answer::Reply => {
            let (result, data, code, message) = match done {
                Ok(Done::Pid(pid)) => (Outcome::Success, Some(json!({"pid": pid})), None, None),
                Ok(_) => (Outcome::Success, None, None, None),
                Err(e) => (
                    Outcome::Failure,
                    None,
                    Some(action_error_code(&e)),
                    Some(format!("{}: {e}", job.action)),
                ),
            };
            let reply = Reply {
                kind: "reply",
                request_id: job.request_id,
                action: Some(job.reply_action),
                result,
                data,
                epoch: None,
                seq: None,
                error_code: code,
                error_message: message,
            };
            push(
                &mut st.conns,
                &mut st.held,
                job.conn,
                Outgoing::Text(to_text(&reply)),
            );
        }
        Answer::PickupEvents => {
            let Work::Pickup(dialog) = &job.work else {
                return;
            };
            let askers = st.pickups.showing.remove(&dialog.key).unwrap_or_default();
            let (result, code, message) = match &done {
                Ok(Done::Pickup(o)) => (outcome_name(*o), None, None),
                Ok(_) => (
                    "failed",
                    Some(ErrorCode::ActionFailed),
                    Some("unexpected platform answer".to_string()),
                ),
                Err(e) => (
                    "failed",
                    Some(action_error_code(e)),
                    Some(format!("showPickupDialog: {e}")),
                ),
            };
            let text = to_text(&PickupEvent {
                kind: "event",
                event: EventName::PickupResult,
                key: &dialog.key,
                result,
                error_code: code,
                error_message: message,
            });
            for c in &askers {
                push(
                    &mut st.conns,
                    &mut st.held,
                    *c,
                    Outgoing::Text(text.clone()),
                );
            }
            // Into VOICE as a normal write, so subscribers hear of it; the
            // writer is an asker registered there (the store needs a
            // registered writer; askers already got the event).
            let writer = askers.iter().copied().find(|c| {
                st.conns.contains_key(c) && st.store.registration(*c, PICKUP_ENVIRONMENT).is_some()
            });
            if let Some(w) = writer {
                let writes = vec![
                    (
                        PICKUP_ENVIRONMENT.to_string(),
                        PICKUP_KEY_VARIABLE.to_string(),
                        json!(dialog.key),
                    ),
                    (
                        PICKUP_ENVIRONMENT.to_string(),
                        PICKUP_RESULT_VARIABLE.to_string(),
                        json!(result),
                    ),
                ];
                match st.store.write(w, &[], writes, false, &VarFilter::default()) {
                    Ok(commit) => fan_out(&st.store, &mut st.conns, &mut st.held, &commit),
                    Err(e) => {
                        tracing::warn!(error = %e, key = %dialog.key, "cannot store the pickup result")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks_say_what_is_wrong() {
        let msg = |r: Result<(), Failure>| r.unwrap_err().message;
        assert!(msg(check_text("a", "f", "x\0y", 10, false)).contains("NUL"));
        assert!(msg(check_text("a", "f", "x\ny", 10, false)).contains("line break"));
        assert!(msg(check_text("a", "f", "x\u{7}y", 10, false)).contains("control"));
        assert!(msg(check_text("a", "f", &"x".repeat(11), 10, false)).contains("11 bytes"));
        assert!(check_text("a", "f", "two\nlines\ttab", 20, true).is_ok());
        assert!(check_text("a", "f", "x\0", 20, true).is_err());
    }

    #[test]
    fn urls_are_masked_after_the_path() {
        assert_eq!(
            masked_url("https://a.example/p?user=x&pwd=y"),
            "https://a.example/p?(masked)"
        );
        assert_eq!(masked_url("https://a.example/p"), "https://a.example/p");
    }

    #[test]
    fn only_http_and_https_urls() {
        for ok in ["https://a.example/", "HTTP://a.example"] {
            assert!(check_url("o", "url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://",
            "https:///x",
            "https://a b",
            "ms-settings:x",
        ] {
            assert!(check_url("o", "url", bad).is_err(), "{bad}");
        }
    }
}
