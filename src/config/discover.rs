//! Which `config.xml` the daemon uses: `--config`, else the one beside the
//! executable (where the legacy WSSConn.exe kept it), else the one in the
//! user's configuration directory, else the embedded defaults.

use std::path::{Path, PathBuf};

use super::{load_file, Config, ConfigError, Loaded};

/// The file name looked for in each candidate folder.
pub const CONFIG_FILE_NAME: &str = "config.xml";

/// The folders searched when no `--config` is given, in order: the folder of
/// the running executable, then the user's configuration directory
/// (`~/.config/wsconnector` on Linux, `%APPDATA%\wsconnector\config` on Windows).
pub fn candidate_dirs() -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let user_dir = directories::ProjectDirs::from("", "", "wsconnector")
        .map(|dirs| dirs.config_dir().to_path_buf());
    exe_dir.into_iter().chain(user_dir).collect()
}

/// Load the configuration the daemon should use (see the module docs).
/// An explicit path must exist; a missing one is an error, never a silent
/// fall-back to defaults.
pub fn discover(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    discover_in(explicit, &candidate_dirs())
}

/// `discover` with the candidate folders given, so tests can use temporary
/// folders. The first folder holding a `config.xml` wins.
pub fn discover_in(explicit: Option<&Path>, dirs: &[PathBuf]) -> Result<Loaded, ConfigError> {
    if let Some(path) = explicit {
        return load_file(path);
    }
    for dir in dirs {
        let candidate = dir.join(CONFIG_FILE_NAME);
        // A candidate that exists but cannot be read (or is a folder) is an
        // error: falling through would silently run on other settings.
        if candidate.try_exists().unwrap_or(true) {
            return load_file(&candidate);
        }
    }
    Ok(Loaded {
        config: Config::embedded(),
        warnings: Vec::new(),
    })
}
