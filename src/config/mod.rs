//! Configuration: discovery of `config.xml`, parsing of the legacy and new
//! settings, validation with errors that name the file, the setting, the bad
//! value and what is expected, and the embedded defaults.
//!
//! INTERFACE CONTRACT (used by main and the server; keep these signatures):
//! - `Config::embedded() -> Config`: the built-in defaults (WS on 8443).
//! - `load_file(&Path) -> Result<Loaded, ConfigError>`.
//! - `discover(Option<&Path>) -> Result<Loaded, ConfigError>`: `--config`, else
//!   `config.xml` beside the executable, else the user's config directory,
//!   else embedded defaults.
//! - `describe(&Config) -> String`: the effective settings, secrets masked.
//!
//! Files: `parse` (XML to collected settings), `build` (collected settings
//! to a checked `Config`), `values` (scalar value syntax),
//! `error` (`ConfigError`), `discover` (which file), `describe` (check-config
//! output); `model` and `origin` hold the validated types.
//!
//! Rules an administrator relies on: names are case-insensitive; a setting
//! given twice is an error; unknown settings, elements and attributes are
//! warnings, never silently ignored and never fatal; relative paths resolve
//! against the folder of the config file; an origin listed both in
//! `AllowedHosts` and `Origins` takes its `Origins` entry; `Config::origins`
//! lists exact origins before wildcards, so the first match is the most
//! specific entry.

mod build;
mod describe;
mod discover;
mod error;
pub mod model;
pub mod origin;
mod parse;
mod values;

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

pub use describe::describe;
pub use discover::{candidate_dirs, discover, discover_in, CONFIG_FILE_NAME};
pub use error::ConfigError;
pub use model::*;
pub use origin::{OriginError, OriginPattern};

/// A validated configuration and the warnings found while reading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Problems that did not stop the load (unknown settings, risky values),
    /// each a full sentence naming the file; `check-config` prints them and
    /// the daemon logs them at start.
    pub warnings: Vec<String>,
}

/// Read and validate a `config.xml` file. Relative paths inside it resolve
/// against its folder.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    // An absolute path makes the "config file used" line and relative
    // settings independent of a later change of the working directory.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let label = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            file: label.clone(),
        },
        _ => ConfigError::Read {
            file: label.clone(),
            reason: e.to_string(),
        },
    })?;
    let text = decode(&bytes).map_err(|reason| ConfigError::Read {
        file: label,
        reason,
    })?;
    parse_str(&text, ConfigSource::File(path))
}

/// Validate `config.xml` text; `source` names it in messages (and gives the
/// folder for relative paths when it is a file).
pub fn parse_str(xml: &str, source: ConfigSource) -> Result<Loaded, ConfigError> {
    parse::parse(xml, source)
}

/// UTF-8 (with or without BOM), or UTF-16 with a BOM, as Windows editors save
/// "Unicode" files.
fn decode(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |rest: &[u8], big_endian: bool| {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| {
                let pair = [c[0], c.get(1).copied().unwrap_or(0)];
                if big_endian {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| "the file is not valid UTF-16 text".to_string())
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
        _ => String::from_utf8(bytes.to_vec())
            .map_err(|_| "the file is not UTF-8 text: save it as UTF-8".to_string()),
    }
}

/// Default port of the legacy connector.
pub const DEFAULT_PORT: u16 = 8443;
/// Legacy `ByteSizeReader` default: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Where the Linux service listens for session agents (systemd's
/// `RuntimeDirectory=wsconnector`).
pub const DEFAULT_AGENT_SOCKET: &str = "/run/wsconnector/agent.sock";
/// The account the Linux service runs as (systemd `User=` with `DynamicUser=`).
pub const DEFAULT_SERVICE_USER: &str = "wsconnector";

impl Config {
    /// The built-in defaults: WS on 8443, the daemon's own pages allowed for
    /// data only, no other origin, logs to stderr at INFO.
    pub fn embedded() -> Config {
        Config {
            source: ConfigSource::Embedded,
            socket_type: SocketType::Ws,
            port: DEFAULT_PORT,
            tls: None,
            log: LogConfig {
                level: LogLevel::Info,
                path: None,
                file_size: 10 * 1024 * 1024,
                max_files: 5,
                log_values: false,
            },
            origins: Vec::new(),
            programs: Vec::new(),
            gen_p2c: GenP2c::default(),
            extra_host_names: Vec::new(),
            allow_other_users: false,
            mode: Mode::SingleUser,
            service: ServiceSettings {
                agent_socket: PathBuf::from(DEFAULT_AGENT_SOCKET),
                service_user: DEFAULT_SERVICE_USER.into(),
            },
            limits: Limits {
                max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                max_frame_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                // tungstenite zeroes the whole read buffer before every
                // read and each connection keeps it: 4 KiB holds any
                // request of a real client in one read, where 64 KiB cost
                // 64 KiB of RSS per connection and a 64 KiB memset per
                // wake-up (issue 9's profile). Writes are gathered up to
                // 16 KiB (about 60 events) before a syscall.
                read_buffer_bytes: 4 * 1024,
                write_buffer_bytes: 16 * 1024,
                outbox_messages: 1024,
                max_connections: 256,
                max_connections_per_user: 128,
                max_environments: 256,
                max_environments_per_connection: 64,
                max_variables: 20_000,
                max_variables_per_connection: 5_000,
                max_variables_per_environment: 2_000,
                max_value_bytes: 64 * 1024,
                replay_events: 256,
                rate: RateLimits::default(),
            },
            timers: Timers {
                handshake: Duration::from_secs(10),
                idle: Duration::from_secs(30),
                ping_interval: Duration::from_secs(20),
                pong_timeout: Duration::from_secs(20),
                hello: Duration::from_secs(60),
                resume_token_ttl: Duration::from_secs(600),
                shutdown_grace: Duration::from_secs(5),
                pickup: Duration::from_secs(30),
                config_reload_debounce: Duration::from_millis(500),
                agent_action: Duration::from_secs(40),
                agent_restart: Duration::from_secs(1),
            },
        }
    }
}
