//! `ConfigError`: why a configuration cannot be used. Every message names the
//! file (or "embedded"), the setting, the bad value and what is expected, so an
//! administrator can fix the file without reading code.

use std::path::Path;

/// A configuration that cannot be used. The daemon refuses to start with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--config` named a file that does not exist.
    #[error("{file}: the configuration file does not exist")]
    NotFound {
        /// The path as given.
        file: String,
    },
    /// The file exists but cannot be read, or is not UTF-8 text.
    #[error("{file}: cannot read the configuration file: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The OS error or encoding problem.
        reason: String,
    },
    /// The file is not well-formed XML.
    #[error("{file}: XML syntax error at line {line}, column {column}: {message}")]
    Xml {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: u32,
        /// 1-based column of the error.
        column: u32,
        /// What the XML parser found.
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{file}: {setting} = \"{value}\": expected {expected}{}", at_line(*.line))]
    Invalid {
        /// The file.
        file: String,
        /// The setting, with its section for nested ones (`Limits/MaxConnections`).
        setting: String,
        /// The value as written (shortened when very long; never a secret).
        value: String,
        /// What the setting accepts.
        expected: String,
        /// 1-based line of the setting, when known.
        line: Option<u32>,
    },
    /// The same setting is given twice (in one form or in both forms).
    #[error("{file}: {setting} is given twice, {first} and {second}: keep only one")]
    Duplicate {
        /// The file.
        file: String,
        /// The setting.
        setting: String,
        /// Where it is given first (`as <Socket-port> at line 3`).
        first: String,
        /// Where it is given again.
        second: String,
    },
}

fn at_line(line: Option<u32>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

impl ConfigError {
    /// The setting the error is about, when it is about one setting.
    pub fn setting(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { setting, .. } | ConfigError::Duplicate { setting, .. } => {
                Some(setting)
            }
            _ => None,
        }
    }
}

/// How a file is named in messages: the path as given, or "embedded".
pub(crate) fn file_label(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "embedded".to_string(),
    }
}

/// A value as shown in an error: control characters escaped, long values cut,
/// so one message stays on one readable line.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for (i, c) in value.trim().chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
