//! Logging set-up: legacy levels, `RUST_LOG` override, size rotation with a
//! bounded number of archives, and clear errors for unusable log folders.
//! Each test uses its own subscriber (`with_default`), never the global one.

use std::fs;
use std::path::{Path, PathBuf};

use wsconnector::config::{LogConfig, LogLevel};
use wsconnector::logging::{self, LoggingError, LOG_FILE_NAME};

fn file_config(folder: &Path, level: LogLevel) -> LogConfig {
    LogConfig {
        level,
        path: Some(folder.to_path_buf()),
        file_size: 10 * 1024 * 1024,
        max_files: 5,
        log_values: false,
    }
}

/// Runs `body` under a subscriber built from `cfg`, flushes, and returns the
/// current log file's content ("" when it does not exist).
fn log_with(cfg: &LogConfig, env: Option<&str>, body: impl FnOnce()) -> String {
    let (subscriber, guard) = logging::build_subscriber(cfg, env).unwrap();
    tracing::subscriber::with_default(subscriber, body);
    // Dropping the guard drains the background writer.
    drop(guard);
    let file = cfg.path.as_ref().unwrap().join(LOG_FILE_NAME);
    fs::read_to_string(file).unwrap_or_default()
}

fn emit_each_level() {
    tracing::error!("marker-error");
    tracing::warn!("marker-warn");
    tracing::info!("marker-info");
    tracing::debug!("marker-debug");
    tracing::trace!("marker-trace");
}

#[test]
fn legacy_levels_select_what_is_written() {
    let all = ["error", "warn", "info", "debug", "trace"];
    let cases: [(LogLevel, &[&str]); 7] = [
        (LogLevel::Off, &[]),
        (LogLevel::Fatal, &["error"]),
        (LogLevel::Error, &["error"]),
        (LogLevel::Warn, &["error", "warn"]),
        (LogLevel::Info, &["error", "warn", "info"]),
        (LogLevel::Debug, &["error", "warn", "info", "debug"]),
        (LogLevel::All, &all),
    ];
    for (level, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let text = log_with(&file_config(dir.path(), level), None, emit_each_level);
        for name in all {
            let marker = format!("marker-{name}");
            assert_eq!(
                text.contains(&marker),
                expected.contains(&name),
                "{level:?}: {marker} in {text:?}"
            );
        }
        if level == LogLevel::Off {
            assert!(text.is_empty(), "OFF wrote {text:?}");
        }
    }
}

#[test]
fn file_lines_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let text = log_with(&file_config(dir.path(), LogLevel::Info), None, || {
        tracing::info!(port = 8443, "listening");
    });
    assert!(text.contains("listening"), "{text:?}");
    assert!(text.contains("port=8443"), "{text:?}");
    assert!(!text.contains('\u{1b}'), "ANSI escape in {text:?}");
}

#[test]
fn rust_log_overrides_the_configured_level() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), LogLevel::Off);
    let text = log_with(&cfg, Some("debug"), emit_each_level);
    assert!(text.contains("marker-debug"), "{text:?}");
    assert!(!text.contains("marker-trace"), "{text:?}");

    // A blank variable counts as unset.
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), LogLevel::Warn);
    let text = log_with(&cfg, Some("  "), emit_each_level);
    assert!(text.contains("marker-warn"), "{text:?}");
    assert!(!text.contains("marker-info"), "{text:?}");
}

#[test]
fn invalid_rust_log_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file_config(dir.path(), LogLevel::Info);
    match logging::build_subscriber(&cfg, Some("wsconnector=loud")) {
        Err(err @ LoggingError::EnvFilter { .. }) => {
            let message = err.to_string();
            assert!(message.contains("RUST_LOG"), "{message}");
            assert!(message.contains("wsconnector=loud"), "{message}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("invalid filter accepted"),
    }
}

#[test]
fn rotation_keeps_at_most_max_files_archives_of_bounded_size() {
    const FILE_SIZE: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        file_size: FILE_SIZE,
        max_files: 2,
        ..file_config(dir.path(), LogLevel::Info)
    };
    let lines = 200;
    let text = log_with(&cfg, None, || {
        for n in 0..lines {
            tracing::info!("rotation line {n:04} {}", "x".repeat(60));
        }
    });

    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            LOG_FILE_NAME.to_string(),
            format!("{LOG_FILE_NAME}.1"),
            format!("{LOG_FILE_NAME}.2")
        ]
    );

    // The newest line is in the current file, and no file is much bigger
    // than the limit: at most the limit plus the line that crossed it.
    let last = format!("rotation line {:04}", lines - 1);
    assert!(text.contains(&last), "{text:?}");
    let longest_line = text.lines().map(str::len).max().unwrap() + 1;
    for name in &names {
        let content = fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            content.len() as u64 <= FILE_SIZE + longest_line as u64,
            "{name} has {} bytes",
            content.len()
        );
        assert!(content.ends_with('\n'), "{name} ends mid-line");
        assert!(content.len() as u64 > FILE_SIZE / 2 || name == LOG_FILE_NAME);
    }
    // `.1` is the most recent archive: its lines come right before the
    // current file's first line.
    let first_current = line_number(text.lines().next().unwrap());
    let archive1 = fs::read_to_string(dir.path().join(format!("{LOG_FILE_NAME}.1"))).unwrap();
    let last_archived = line_number(archive1.lines().last().unwrap());
    assert_eq!(last_archived + 1, first_current);
}

/// The `n` of a `rotation line n` log line.
fn line_number(line: &str) -> usize {
    let rest = line.split("rotation line ").nth(1).unwrap();
    rest[..4].parse().unwrap()
}

#[test]
fn missing_log_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a").join("b");
    let text = log_with(&file_config(&folder, LogLevel::Info), None, || {
        tracing::info!("hello");
    });
    assert!(folder.is_dir());
    assert!(text.contains("hello"));
}

#[cfg(unix)]
#[test]
fn log_file_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    log_with(&file_config(dir.path(), LogLevel::Info), None, || {
        tracing::info!("hello");
    });
    let mode = fs::metadata(dir.path().join(LOG_FILE_NAME))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

#[test]
fn unusable_log_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file in the way: this fails even for root.
    let blocker = dir.path().join("not-a-folder");
    fs::write(&blocker, b"").unwrap();
    let folder: PathBuf = blocker.join("logs");
    match logging::build_subscriber(&file_config(&folder, LogLevel::Info), None) {
        Err(err @ LoggingError::CreateFolder { .. }) => {
            let message = err.to_string();
            assert!(message.contains(&folder.display().to_string()), "{message}");
            assert!(message.contains("Log-path"), "{message}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("unusable folder accepted"),
    }
}

#[test]
fn unopenable_log_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the log file should be.
    let file = dir.path().join(LOG_FILE_NAME);
    fs::create_dir(&file).unwrap();
    match logging::build_subscriber(&file_config(dir.path(), LogLevel::Info), None) {
        Err(err @ LoggingError::OpenFile { .. }) => {
            let message = err.to_string();
            assert!(message.contains(&file.display().to_string()), "{message}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("unopenable file accepted"),
    }
}

#[test]
fn zero_file_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        file_size: 0,
        ..file_config(dir.path(), LogLevel::Info)
    };
    assert!(matches!(
        logging::build_subscriber(&cfg, None),
        Err(LoggingError::ZeroFileSize)
    ));
}

#[test]
fn stderr_logging_builds_without_a_path() {
    let cfg = LogConfig {
        path: None,
        ..file_config(Path::new("."), LogLevel::Info)
    };
    let (subscriber, guard) = logging::build_subscriber(&cfg, None).unwrap();
    tracing::subscriber::with_default(subscriber, || tracing::info!("to stderr"));
    drop(guard);
}
