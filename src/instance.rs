//! One agent per OS user and session: an exclusive lock on a file in the
//! user's runtime folder, held for the agent's whole life.
//!
//! A lock (not a pid file) because the OS releases it when the process
//! dies, even on `kill -9` or a crash, so a stale file never blocks the next
//! start and a recycled pid never fools us. Beside the lock the owner writes
//! who it is (pid and executable) to a separate `.owner` file, only after it
//! holds the lock, so a second start can say which process runs. It is a
//! separate file because Windows locks are mandatory: nobody else could read
//! the locked file itself.

use std::fs::{self, File, OpenOptions};

use fs4::TryLockError;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the instance folder.
pub const LOCK_FILE_NAME: &str = "agent.lock";
/// Name of the file, beside the lock, that says who holds it.
pub const OWNER_FILE_NAME: &str = "agent.owner";

/// Why the agent may not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another agent of this user and session holds the lock.
    #[error("another wsconnector agent is already running for this user and session ({owner}; lock {})", lock.display())]
    AlreadyRunning {
        /// Who holds it, as its owner file says (`pid 123, /usr/bin/wsconnector`).
        owner: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock folder or file could not be created or locked.
    #[error("cannot use the single-instance lock {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// Held while the agent runs; dropping it (or the process ending) releases
/// the lock.
#[derive(Debug)]
pub struct InstanceLock {
    /// The locked file: the lock lives as long as this handle.
    _file: File,
    /// Where the lock is, for the log.
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the single-instance lock in `dir` (created if missing), or says who
/// holds it.
pub fn acquire(dir: &Path) -> Result<InstanceLock, InstanceError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstanceError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock_path = dir.join(LOCK_FILE_NAME);
    let owner_path = dir.join(OWNER_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    // Fully qualified: std's own `File::try_lock` needs Rust 1.89.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let owner = fs::read_to_string(&owner_path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "owner unknown".to_string());
            return Err(InstanceError::AlreadyRunning {
                owner,
                lock: lock_path,
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(InstanceError::Io {
                path: lock_path,
                source,
            })
        }
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown executable".to_string());
    let mut owner = File::create(&owner_path).map_err(io_err(&owner_path))?;
    writeln!(owner, "pid {}, {exe}", std::process::id()).map_err(io_err(&owner_path))?;
    Ok(InstanceLock {
        _file: file,
        path: lock_path,
    })
}

/// The folder for this user's (and on Windows this session's) lock.
///
/// Linux: `$XDG_RUNTIME_DIR/wsconnector` (per user, cleared at logout),
/// else `~/.cache/wsconnector` (per user), else `/tmp/wsconnector-<uid>`.
/// Windows: `%LOCALAPPDATA%\wsconnector\session-<id>` (per user; the session
/// id keeps one user's RDS/Citrix sessions apart).
pub fn default_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let base = std::env::var_os("LOCALAPPDATA")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        base.join("wsconnector")
            .join(format!("session-{}", session_id()))
    }
    #[cfg(not(windows))]
    {
        let dirs = directories::BaseDirs::new();
        match dirs {
            Some(d) => d
                .runtime_dir()
                .unwrap_or_else(|| d.cache_dir())
                .join("wsconnector"),
            None => std::env::temp_dir().join(format!("wsconnector-{}", current_uid())),
        }
    }
}

/// This process's Windows session (Remote Desktop / Citrix sessions of one
/// user each get their own agent).
#[cfg(windows)]
#[allow(unsafe_code)]
fn session_id() -> u32 {
    use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
    use windows_sys::Win32::System::Threading::GetCurrentProcessId;
    let mut id = 0u32;
    // SAFETY: `id` is a valid out pointer for the duration of the call.
    let ok = unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut id) };
    if ok == 0 {
        0
    } else {
        id
    }
}

#[cfg(unix)]
fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[cfg(all(not(unix), not(windows)))]
fn current_uid() -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_names_the_first_owner_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        assert_eq!(first.path(), dir.path().join(LOCK_FILE_NAME));
        match acquire(dir.path()) {
            Err(InstanceError::AlreadyRunning { owner, lock }) => {
                assert_eq!(
                    owner,
                    format!(
                        "pid {}, {}",
                        std::process::id(),
                        std::env::current_exe().unwrap().display()
                    )
                );
                assert_eq!(lock, dir.path().join(LOCK_FILE_NAME));
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        acquire(dir.path()).expect("free again once the first holder is gone");
    }
}
