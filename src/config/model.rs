//! The validated configuration: the one `Config` value every other module reads.
//!
//! `config.xml` (legacy names of reference §3.1.1 plus the new sections) and the
//! command-line flags are merged into this type before anything runs; nothing
//! outside `config` ever looks at raw XML.

use std::path::PathBuf;
use std::time::Duration;

use super::origin::OriginPattern;

/// Where the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A `config.xml` file on disk.
    File(PathBuf),
    /// No file was found: the built-in defaults.
    Embedded,
}

/// Whether the listener speaks plain WS or WSS (legacy `Socket-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// Plain websocket (`ws://`).
    Ws,
    /// Websocket over TLS (`wss://`).
    Wss,
}

/// Who binds the port (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One process per user does everything (the desktop default).
    SingleUser,
    /// A machine-wide service owns the port (shared Citrix/RDS hosts).
    Service,
}

/// Legacy `Log-level` values, mapped onto tracing levels by `logging`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// No logging at all.
    Off,
    /// Only fatal errors (tracing ERROR).
    Fatal,
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Informational messages (the default).
    Info,
    /// Debugging detail.
    Debug,
    /// Everything (tracing TRACE).
    All,
}

/// A secret string (certificate password) that never prints itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"********\"")
        }
    }
}

/// Logging settings (`Log-level`, `Log-path`, `Filesize`, `MaxFiles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Minimum level written.
    pub level: LogLevel,
    /// Folder for rotated log files; `None` logs to stderr only.
    pub path: Option<PathBuf>,
    /// Size at which the current file is rotated, in bytes.
    pub file_size: u64,
    /// How many archived files are kept besides the current one.
    pub max_files: usize,
    /// Whether context *values* (customer data) may appear in logs. Off by default.
    pub log_values: bool,
}

/// Certificate settings for WSS (`Certificate-path`, `Password`, `Key-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// A PKCS#12 `.pfx`/`.p12`, or a PEM file with the chain (and maybe the key).
    pub certificate_path: PathBuf,
    /// PEM private key, when it is not inside `certificate_path`.
    pub key_path: Option<PathBuf>,
    /// Password of the `.pfx` (legacy `Password`).
    pub password: Secret,
}

/// What an origin may do. Data access is the only capability enforced by the
/// foundation; the desktop ones are enforced by the platform layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Read and write context data (all of the §3.2 data actions).
    pub data: bool,
    /// `launchProcess` of declared programs.
    pub launch: bool,
    /// Open an http/https URL in the default browser.
    pub open_url: bool,
    /// Focus / resize windows (`setSizeWindow`).
    pub window: bool,
    /// Toasts (`showNotification`).
    pub notify: bool,
    /// The incoming-call pickup dialog (`showPickupDialog`).
    pub dialog: bool,
}

impl Capabilities {
    /// Data only: what native clients and (by default) allowed origins get.
    pub const DATA_ONLY: Capabilities = Capabilities {
        data: true,
        launch: false,
        open_url: false,
        window: false,
        notify: false,
        dialog: false,
    };

    /// Every capability (tests, and origins configured with all of them).
    pub const ALL: Capabilities = Capabilities {
        data: true,
        launch: true,
        open_url: true,
        window: true,
        notify: true,
        dialog: true,
    };

    /// The granted capability names, in the order the protocol lists them.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.data, "data"),
            (self.launch, "launch"),
            (self.open_url, "openUrl"),
            (self.window, "window"),
            (self.notify, "notify"),
            (self.dialog, "dialog"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// A list of `ENV.VAR` patterns (`*` matches any run of characters) deciding
/// which variables an origin may read or write. Empty pattern list = nothing;
/// the default is `*.*` = everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarFilter {
    /// The patterns as written, each `ENV.VAR` with optional `*` wildcards.
    pub patterns: Vec<String>,
}

impl Default for VarFilter {
    fn default() -> Self {
        VarFilter {
            patterns: vec!["*.*".to_string()],
        }
    }
}

impl VarFilter {
    /// True when `env`.`var` matches one of the patterns.
    pub fn allows(&self, env: &str, var: &str) -> bool {
        self.patterns.iter().any(|p| match p.split_once('.') {
            Some((pe, pv)) => wildcard_match(pe, env) && wildcard_match(pv, var),
            None => false,
        })
    }

    /// True when every variable is allowed (the common case, a fast path).
    pub fn allows_all(&self) -> bool {
        self.patterns.iter().any(|p| p == "*.*")
    }
}

/// `*` matches any (possibly empty) run of characters; everything else is literal.
///
/// Runs on every event for every recipient (read allow-lists), so it does
/// not allocate: it compares bytes, which is the same as comparing
/// characters because `*` is ASCII and a literal after it starts on a UTF-8
/// lead byte, which never equals a continuation byte.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// One allowed web origin with what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginEntry {
    /// Exact origin or an explicit `https://*.example.com` wildcard.
    pub pattern: OriginPattern,
    /// Granted capabilities (data only by default).
    pub capabilities: Capabilities,
    /// Variables this origin may read (gets, events, `Values`).
    pub read: VarFilter,
    /// Variables this origin may write.
    pub write: VarFilter,
    /// URL patterns `openUrl` may open for this origin (used by the platform layer).
    pub open_url_patterns: Vec<String>,
    /// True when this entry came from a legacy bare host name (`crm.example.com`).
    pub from_bare_host: bool,
}

/// A program `launchProcess` may start (enforced by the platform layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The name pages use (`chrome.exe`, `notepad`).
    pub name: String,
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// Fixed arguments placed before the parameter.
    pub args: Vec<String>,
    /// Anchored regular expression the parameter must match; `None` = no parameter allowed.
    pub parameter_rule: Option<String>,
    /// `openUrl="true"`: an http/https parameter is not passed to the program
    /// but handled exactly as `openUrl(parameter)` (the origin's `openUrl`
    /// capability and URL patterns, the default browser). For legacy pages
    /// that call `launchProcess('chrome.exe', 'https://...')`.
    pub open_url: bool,
}

/// The v1 `GEN_P2C` requests in the `Default` environment (`<GenP2C>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenP2c {
    /// Act on `RqStartProcess`, `RqStartGWT`, `RqStopGWT` (default false).
    pub enabled: bool,
    /// Title of the toolbar window `RqStopGWT` closes; `None` = `RqStopGWT` is refused.
    pub toolbar_title: Option<String>,
}

/// Size and count limits. Per-connection limits keep one page from exhausting
/// what the toolbar needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest websocket message, in bytes (legacy `ByteSizeReader`, default 1 MiB).
    pub max_message_bytes: usize,
    /// Largest single websocket frame, in bytes (default = `max_message_bytes`).
    pub max_frame_bytes: usize,
    /// Socket read buffer size, in bytes.
    pub read_buffer_bytes: usize,
    /// Socket write buffer size, in bytes.
    pub write_buffer_bytes: usize,
    /// Messages queued for one connection before it counts as too slow and is closed.
    pub outbox_messages: usize,
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections per OS user.
    pub max_connections_per_user: usize,
    /// Environments in the store in total.
    pub max_environments: usize,
    /// Environments one connection may create.
    pub max_environments_per_connection: usize,
    /// Variables in the store in total.
    pub max_variables: usize,
    /// Variables one connection may create.
    pub max_variables_per_connection: usize,
    /// Variables in one environment.
    pub max_variables_per_environment: usize,
    /// Largest value, in bytes of its JSON text.
    pub max_value_bytes: usize,
    /// Events kept per environment for replay after a reconnect.
    pub replay_events: usize,
    /// Per-minute request limits with quarantine, and the malformed-message
    /// threshold (`<RateLimits>`).
    pub rate: RateLimits,
}

/// Names of the desktop actions whose embedded default limit is
/// `DESKTOP_PER_MINUTE` per minute with a `DESKTOP_QUARANTINE` quarantine.
pub const DESKTOP_RATE_LIMITED: &[&str] = &[
    "launchProcess",
    "openUrl",
    "setSizeWindow",
    "showNotification",
    "showPickupDialog",
];

/// Embedded default: desktop actions allowed per minute.
pub const DESKTOP_PER_MINUTE: u32 = 20;
/// Embedded default: quarantine after a desktop action's limit is reached.
pub const DESKTOP_QUARANTINE: Duration = Duration::from_secs(300);
/// Embedded default: any other request type allowed per minute.
pub const DEFAULT_PER_MINUTE: u32 = 6000;
/// Embedded default: quarantine after another request type's limit is reached.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(60);
/// Embedded default: malformed messages per minute before a connection is closed with 1008.
pub const DEFAULT_MALFORMED_PER_MINUTE: u32 = 20;

/// One request type's limit (a fixed one-minute window, as in reference 002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per minute; 0 = unlimited.
    pub per_minute: u32,
    /// How long requests of this type are refused once the limit is
    /// exceeded; zero = until the daemon restarts.
    pub quarantine: Duration,
}

/// Rate limits keyed by (OS user, origin or native, request type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// The limit of every request type not listed in `actions`.
    pub default: RateLimit,
    /// Limits of named actions (exact protocol action names).
    pub actions: Vec<(String, RateLimit)>,
    /// Malformed messages (`bad_request`, `unknown_action`) one connection may
    /// send per minute; one more closes it with 1008. 0 = never closed.
    pub malformed_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        let desktop = RateLimit {
            per_minute: DESKTOP_PER_MINUTE,
            quarantine: DESKTOP_QUARANTINE,
        };
        RateLimits {
            default: RateLimit {
                per_minute: DEFAULT_PER_MINUTE,
                quarantine: DEFAULT_QUARANTINE,
            },
            actions: DESKTOP_RATE_LIMITED
                .iter()
                .map(|a| ((*a).to_string(), desktop))
                .collect(),
            malformed_per_minute: DEFAULT_MALFORMED_PER_MINUTE,
        }
    }
}

impl RateLimits {
    /// The limit that applies to `action`.
    pub fn for_action(&self, action: &str) -> RateLimit {
        self.actions
            .iter()
            .find(|(a, _)| a == action)
            .map_or(self.default, |(_, l)| *l)
    }
}

/// Every timer is a setting so tests can run them in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    /// Deadline for TLS plus the HTTP request head.
    pub handshake: Duration,
    /// An HTTP connection that has not upgraded and sits idle this long is closed.
    pub idle: Duration,
    /// Interval between server pings on an idle websocket.
    pub ping_interval: Duration,
    /// A websocket that answers no ping within this time is closed.
    pub pong_timeout: Duration,
    /// A websocket that sends no request within this time after the hello is closed; zero = never.
    pub hello: Duration,
    /// How long a resume token stays valid after its connection ended.
    pub resume_token_ttl: Duration,
    /// How long shutdown waits for clients to close before exiting anyway.
    pub shutdown_grace: Duration,
    /// A pickup dialog nobody answers closes itself after this (`timedOut`).
    pub pickup: Duration,
    /// Quiet time after the last change to `config.xml` before it is
    /// re-read, so an editor's burst of writes becomes one reload.
    pub config_reload_debounce: Duration,
    /// Service mode: how long a desktop action waits for the user's session
    /// agent to answer (longer than `pickup`, which the agent runs).
    pub agent_action: Duration,
    /// Service mode: first delay before a dead session agent is restarted
    /// (Windows) or an agent reconnects to the service; it doubles up to a
    /// minute.
    pub agent_restart: Duration,
}

/// Service mode (`Mode = service`): how the machine-wide service and the
/// per-session agents find and verify each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Linux: the Unix socket the service listens on for session agents.
    pub agent_socket: PathBuf,
    /// Linux: the account the service runs as; an agent talks only to a
    /// socket whose peer runs as this user (`SO_PEERCRED`).
    pub service_user: String,
}

/// The effective, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, or embedded defaults.
    pub source: ConfigSource,
    /// WS or WSS.
    pub socket_type: SocketType,
    /// TCP port on 127.0.0.1 and ::1 (0 = ephemeral, for tests).
    pub port: u16,
    /// Certificate settings; `Some` whenever `socket_type` is `Wss`.
    pub tls: Option<TlsConfig>,
    /// Logging.
    pub log: LogConfig,
    /// Allowed web origins with their capabilities.
    pub origins: Vec<OriginEntry>,
    /// Programs `launchProcess` may start.
    pub programs: Vec<Program>,
    /// The v1 `GEN_P2C` requests (off by default).
    pub gen_p2c: GenP2c,
    /// Customer DNS names resolving to 127.0.0.1 that may appear in `Host`.
    pub extra_host_names: Vec<String>,
    /// Accept connections from other OS users (default false).
    pub allow_other_users: bool,
    /// Who binds the port.
    pub mode: Mode,
    /// Service-mode settings (used by `wsconnector service` and `agent`).
    pub service: ServiceSettings,
    /// Size and count limits.
    pub limits: Limits,
    /// Timers.
    pub timers: Timers,
}

impl Config {
    /// Find the entry for a browser's `Origin` header value, if it is allowed.
    pub fn origin_entry(&self, origin: &str) -> Option<&OriginEntry> {
        self.origins.iter().find(|e| e.pattern.matches(origin))
    }
}
