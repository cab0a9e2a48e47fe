//! Logging: turns [`LogConfig`] into a tracing subscriber.
//!
//! The legacy `Log-level` picks the level (`RUST_LOG`, when set, overrides it
//! for debugging); with a `Log-path` the log goes to `wsconnector.log` in that
//! folder, rotated at `Filesize` bytes with at most `MaxFiles` archives
//! (file-rotate names them `wsconnector.log.1`, `.2`, … newest first),
//! otherwise to stderr. Writing happens on a background thread
//! (tracing-appender) so a slow disk never stalls a connection task; the
//! returned [`LogGuard`] flushes what is queued when dropped.
//!
//! Customer data stays out of logs unless enabled: see [`value_for_log`].

use std::borrow::Cow;
use std::fs::{self, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing::Subscriber;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::{reload, Registry};

use crate::config::{LogConfig, LogLevel};

/// Name of the current log file inside `Log-path`.
pub const LOG_FILE_NAME: &str = "wsconnector.log";

/// What [`value_for_log`] prints instead of a value when value logging is off.
pub const HIDDEN: &str = "<hidden>";

/// The environment variable whose filter, when set, replaces `Log-level`.
pub const ENV_FILTER_VAR: &str = "RUST_LOG";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The `Log-path` folder does not exist and cannot be created.
    #[error("cannot create the log folder {} (Log-path): {source}", folder.display())]
    CreateFolder {
        /// The configured folder.
        folder: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The log file cannot be opened for appending.
    #[error("cannot open the log file {} for writing (Log-path): {source}", file.display())]
    OpenFile {
        /// The log file inside the configured folder.
        file: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// `Filesize` is zero, which would rotate on every line.
    #[error("log file size (Filesize) must be at least 1 byte")]
    ZeroFileSize,
    /// `RUST_LOG` is set but is not a valid filter.
    #[error("invalid {ENV_FILTER_VAR} filter {value:?}: {reason}")]
    EnvFilter {
        /// The variable's value.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Another global subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the background writer alive; dropping it flushes the queued lines.
/// Hold it in `main` until the daemon exits.
#[must_use = "dropping the guard stops file logging"]
#[derive(Debug)]
pub struct LogGuard {
    /// tracing-appender's guard: on drop it waits (bounded) for the writer
    /// thread to drain its queue.
    _worker: WorkerGuard,
}

/// A layer under the log's own formatting layer, where it can look spans up
/// (the service's per-user log forwarding, src/service/user_log.rs).
pub type InnerLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the subscriber for `cfg` as the global default, honouring
/// `RUST_LOG`, with `extra` on top (the agent's last-error capture for the
/// tray). Call once, early in `main`. `Log-level` stays live
/// ([`set_level`]) unless `RUST_LOG` chose the filter.
pub fn init<L>(cfg: &LogConfig, extra: L) -> Result<LogGuard, LoggingError>
where
    L: Layer<Box<dyn Subscriber + Send + Sync>> + Send + Sync + 'static,
{
    init_with(cfg, extra, None)
}

/// [`init`], with `inner` seeing every event that passes the level filter.
pub fn init_with<L>(
    cfg: &LogConfig,
    extra: L,
    inner: Option<InnerLayer>,
) -> Result<LogGuard, LoggingError>
where
    L: Layer<Box<dyn Subscriber + Send + Sync>> + Send + Sync + 'static,
{
    let env = std::env::var(ENV_FILTER_VAR).ok();
    let (subscriber, guard, setter) = build(cfg, env.as_deref(), inner)?;
    // Boxed so that any layer can sit on top of the opaque subscriber;
    // the dynamic call happens once per callsite interest check.
    let boxed: Box<dyn Subscriber + Send + Sync> = Box::new(subscriber);
    tracing::subscriber::set_global_default(boxed.with(extra))
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    if let Some(setter) = setter {
        // Only the global subscriber's level is live; init runs once.
        let _ = LIVE_LEVEL.set(setter);
    }
    Ok(guard)
}

/// Changes the level of the global subscriber (live reload of `Log-level`).
/// [`LevelChange::Fixed`] when `RUST_LOG` chose the filter, or logging was
/// not set up by [`init`] (tests): the level then stays as it is.
pub fn set_level(level: LogLevel) -> LevelChange {
    match LIVE_LEVEL.get() {
        Some(set) if set(level) => LevelChange::Applied,
        _ => LevelChange::Fixed,
    }
}

/// What [`set_level`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    /// The new level is in force.
    Applied,
    /// The level cannot change live (RUST_LOG, or no global subscriber of ours).
    Fixed,
}

/// Sets the global subscriber's level; true when it took effect.
type LevelSetter = Box<dyn Fn(LogLevel) -> bool + Send + Sync>;

/// The level setter of the subscriber [`init`] installed, when `Log-level`
/// (not `RUST_LOG`) chose its filter.
static LIVE_LEVEL: OnceLock<LevelSetter> = OnceLock::new();

/// Builds the subscriber for `cfg` without installing it, so tests can use it
/// with `tracing::subscriber::with_default`. `env_filter` is the value of
/// `RUST_LOG` (passed in rather than read here so tests do not depend on the
/// environment); when it is set and not blank it replaces `cfg.level`.
pub fn build_subscriber(
    cfg: &LogConfig,
    env_filter: Option<&str>,
) -> Result<(impl Subscriber + Send + Sync + 'static, LogGuard), LoggingError> {
    let (subscriber, guard, _) = build(cfg, env_filter, None)?;
    Ok((subscriber, guard))
}

/// [`build_subscriber`] plus, when `Log-level` chose the filter, a setter
/// that swaps it (tracing-subscriber's reload layer: a read lock per event
/// check, no cost once callsite interest is cached).
fn build(
    cfg: &LogConfig,
    env_filter: Option<&str>,
    inner: Option<InnerLayer>,
) -> Result<
    (
        impl Subscriber + Send + Sync + 'static,
        LogGuard,
        Option<LevelSetter>,
    ),
    LoggingError,
> {
    let from_env = env_filter.is_some_and(|v| !v.trim().is_empty());
    let filter = match env_filter.map(str::trim).filter(|value| !value.is_empty()) {
        Some(value) => EnvFilter::try_new(value).map_err(|err| LoggingError::EnvFilter {
            value: value.to_string(),
            reason: err.to_string(),
        })?,
        None => EnvFilter::default().add_directive(level_filter(cfg.level).into()),
    };

    let (writer, worker, ansi) = match &cfg.path {
        Some(folder) => {
            let file = open_rotating(folder, cfg.file_size, cfg.max_files)?;
            let (writer, worker) = background(file);
            // Colour codes are noise in a file.
            (writer, worker, false)
        }
        None => {
            let ansi = io::stderr().is_terminal();
            let (writer, worker) = background(io::stderr());
            (writer, worker, ansi)
        }
    };

    let (filter, handle) = reload::Layer::new(filter);
    let format = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    // The filter is a layer of the whole stack, so it decides for `inner`
    // too: an event the log drops is not forwarded either.
    let subscriber = tracing_subscriber::registry()
        .with(inner)
        .with(filter)
        .with(format);
    let setter: Option<LevelSetter> = (!from_env).then(|| {
        Box::new(move |level: LogLevel| {
            handle
                .reload(EnvFilter::default().add_directive(level_filter(level).into()))
                .is_ok()
        }) as LevelSetter
    });
    Ok((subscriber, LogGuard { _worker: worker }, setter))
}

/// The tracing level for a legacy `Log-level`.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Off => LevelFilter::OFF,
        // tracing has no FATAL; fatal conditions are logged as errors.
        LogLevel::Fatal | LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::All => LevelFilter::TRACE,
    }
}

/// `value` itself when value logging is enabled (`log_values`), otherwise
/// [`HIDDEN`]: context values are customer data and stay out of logs by
/// default.
pub fn value_for_log(value: &str, log_values: bool) -> Cow<'_, str> {
    if log_values {
        Cow::Borrowed(value)
    } else {
        Cow::Borrowed(HIDDEN)
    }
}

/// Log lines queued for the writer thread before new ones are dropped.
const LOG_QUEUE_LINES: usize = 4096;

/// Moves writes to a background thread. Lossy on purpose: if the disk cannot
/// keep up, dropping log lines beats blocking the runtime's worker threads.
fn background<W: io::Write + Send + 'static>(writer: W) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        // The default queue (128,000 lines) is a 4 MiB array the channel
        // initializes at start: a third of the idle daemon's memory
        // (issue 9). A few thousand lines absorb any burst we log.
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("wsconnector-log")
        .finish(writer)
}

/// Opens `folder/wsconnector.log` as a size-rotated file.
///
/// file-rotate panics when it cannot create the folder and silently drops
/// every line when it cannot open the file, so both are checked here first
/// to fail with an error that names the path.
fn open_rotating(
    folder: &Path,
    file_size: u64,
    max_files: usize,
) -> Result<FileRotate<AppendCount>, LoggingError> {
    let limit = usize::try_from(file_size).unwrap_or(usize::MAX);
    if limit == 0 {
        return Err(LoggingError::ZeroFileSize);
    }
    fs::create_dir_all(folder).map_err(|source| LoggingError::CreateFolder {
        folder: folder.to_path_buf(),
        source,
    })?;
    let file = folder.join(LOG_FILE_NAME);
    let options = open_options();
    options
        .open(&file)
        .map_err(|source| LoggingError::OpenFile {
            file: file.clone(),
            source,
        })?;
    Ok(FileRotate::new(
        file,
        AppendCount::new(max_files),
        // Rotate after the write that crosses the limit, so a line is never
        // split across two files.
        ContentLimit::BytesSurpassed(limit),
        Compression::None,
        Some(options),
    ))
}

/// How log files are opened: appended to, and on Unix readable by the owner
/// only, since even without values a log shows who used which application.
fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    // file-rotate requires read + create + append.
    options.read(true).create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_levels_map_onto_tracing_levels() {
        let expected = [
            (LogLevel::Off, LevelFilter::OFF),
            (LogLevel::Fatal, LevelFilter::ERROR),
            (LogLevel::Error, LevelFilter::ERROR),
            (LogLevel::Warn, LevelFilter::WARN),
            (LogLevel::Info, LevelFilter::INFO),
            (LogLevel::Debug, LevelFilter::DEBUG),
            (LogLevel::All, LevelFilter::TRACE),
        ];
        for (legacy, level) in expected {
            assert_eq!(level_filter(legacy), level, "{legacy:?}");
        }
    }

    #[test]
    fn values_are_hidden_unless_enabled() {
        assert_eq!(value_for_log("4711", false), HIDDEN);
        assert_eq!(value_for_log("4711", true), "4711");
        assert_eq!(value_for_log("", true), "");
    }
}
