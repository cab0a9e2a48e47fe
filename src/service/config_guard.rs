//! The service refuses a configuration file that users could modify: the
//! file decides which web origins may drive every user's desktop, so on a
//! shared host only administrators may write it (or the folders above it,
//! which would let someone swap the file).

use std::path::{Path, PathBuf};

/// Why the configuration file is not safe for the service.
#[derive(Debug, thiserror::Error)]
pub enum ConfigGuardError {
    /// The file or a folder above it can be changed by someone who is not
    /// an administrator.
    #[error(
        "{path} is {what} (owner uid {owner}, mode {mode:o}): users could change the service's \
         configuration. Fix: chown root:root {path} && chmod go-w {path}"
    )]
    Writable {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, in words.
        what: &'static str,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// It could not be inspected.
    #[error("cannot check {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Checks `file` and every folder above it: each must be owned by root or
/// by the service's own account (`service_uid`), and writable by nobody
/// else (no group or other write bit; a sticky world-writable folder such
/// as /tmp is refused too: anyone may create the file there first).
#[cfg(unix)]
pub fn check(file: &Path, service_uid: u32) -> Result<(), ConfigGuardError> {
    use std::os::unix::fs::MetadataExt;
    let file = std::path::absolute(file).map_err(|source| ConfigGuardError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let mut current: Option<&Path> = Some(&file);
    while let Some(path) = current {
        let meta = std::fs::metadata(path).map_err(|source| ConfigGuardError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
        let problem = if owner != 0 && owner != service_uid {
            Some("owned by an ordinary user")
        } else if mode & 0o022 != 0 {
            Some(if mode & 0o1000 != 0 {
                "in a folder anyone may create files in"
            } else {
                "writable by its group or by everyone"
            })
        } else {
            None
        };
        if let Some(what) = problem {
            return Err(ConfigGuardError::Writable {
                path: path.to_path_buf(),
                what,
                owner,
                mode,
            });
        }
        current = path.parent();
    }
    Ok(())
}
