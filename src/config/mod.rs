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

pub mod model;
pub mod origin;

use std::time::Duration;

pub use model::*;
pub use origin::{OriginError, OriginPattern};

/// Default port of the legacy connector.
pub const DEFAULT_PORT: u16 = 8443;
/// Legacy `ByteSizeReader` default: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

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
            extra_host_names: Vec::new(),
            allow_other_users: false,
            mode: Mode::SingleUser,
            limits: Limits {
                max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                max_frame_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                read_buffer_bytes: 64 * 1024,
                write_buffer_bytes: 64 * 1024,
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
            },
            timers: Timers {
                handshake: Duration::from_secs(10),
                idle: Duration::from_secs(30),
                ping_interval: Duration::from_secs(20),
                pong_timeout: Duration::from_secs(20),
                hello: Duration::from_secs(60),
                resume_token_ttl: Duration::from_secs(600),
                shutdown_grace: Duration::from_secs(5),
            },
        }
    }
}
