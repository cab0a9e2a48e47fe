//! Watches the folder of `config.xml` and reloads after a quiet period.
//!
//! The folder, not the file, is watched: editors that save by writing a
//! temporary file and renaming it over `config.xml` replace the file's
//! inode, and a watch on the old inode would go silent. Events for other
//! files in the folder are ignored, and so are reads (our own reload opens
//! the file).
//!
//! Debouncing is done here with tokio timers, not by a debouncer crate,
//! because the quiet period (`Timers/ConfigReloadDebounce`) is itself a live
//! setting, read again for every burst. A file that is briefly empty or
//! half-written when the quiet period ends fails validation, is logged and
//! changes nothing; the write that completes it is one more event and one
//! more reload.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{Event, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Reloader;
use crate::server::Shutdown;

/// Why the watcher could not start (the daemon still runs; SIGHUP and the
/// tray can still reload).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The daemon runs on embedded defaults.
    #[error("no config.xml in use: nothing to watch")]
    NoFile,
    /// The configuration file's path has no folder or file name.
    #[error("cannot watch {0}: not a file path")]
    BadPath(String),
    /// The OS watch could not be set up (e.g. the inotify limit is reached).
    #[error("cannot watch the folder of {file}: {source}")]
    Notify {
        /// The configuration file.
        file: String,
        /// What notify said.
        source: notify::Error,
    },
}

/// Starts watching the configuration file of `reloader`'s daemon until
/// `shutdown` is tripped.
pub fn spawn(reloader: Arc<Reloader>, shutdown: Shutdown) -> Result<JoinHandle<()>, WatchError> {
    let file = reloader.file().ok_or(WatchError::NoFile)?;
    let bad_path = || WatchError::BadPath(file.display().to_string());
    let dir = file.parent().ok_or_else(bad_path)?.to_path_buf();
    let name = file.file_name().ok_or_else(bad_path)?.to_os_string();
    let changed = Arc::new(Notify::new());
    let wake = changed.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| match res {
        Ok(event) if concerns(&event, &name) => wake.notify_one(),
        Ok(_) => {}
        // An error may hide a change (e.g. the event queue overflowed): reload.
        Err(e) => {
            tracing::warn!(error = %e, "config watcher error; re-reading the file");
            wake.notify_one();
        }
    })
    .map_err(|source| WatchError::Notify {
        file: file.display().to_string(),
        source,
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Notify {
            file: file.display().to_string(),
            source,
        })?;
    tracing::info!(file = %file.display(), "watching the configuration file for changes");
    Ok(tokio::spawn(async move {
        // Owned by the task: dropping it ends the OS watch.
        let _watcher = watcher;
        run(reloader, changed, shutdown).await;
    }))
}

/// Waits for a change, then for a quiet period, then reloads; repeats.
async fn run(reloader: Arc<Reloader>, changed: Arc<Notify>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed.notified() => {}
        }
        // Each new event restarts the quiet period.
        loop {
            let quiet = reloader.state.config().timers.config_reload_debounce;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = changed.notified() => continue,
                () = tokio::time::sleep(quiet) => break,
            }
        }
        let r = reloader.clone();
        // Reading the file blocks; the outcome is logged by `reload`.
        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
    }
}

/// True when `event` may have changed the file named `name` in the watched
/// folder. Reads (including our own) are not changes.
fn concerns(event: &Event, name: &OsString) -> bool {
    let is_change = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    is_change
        && (event.paths.is_empty()
            || event.need_rescan()
            || event
                .paths
                .iter()
                .any(|p| Path::file_name(p) == Some(name.as_os_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(path.into())
    }

    #[test]
    fn changes_to_the_file_count_and_reads_and_other_files_do_not() {
        let name = OsString::from("config.xml");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(concerns(&event(modify, "/etc/ws/config.xml"), &name));
        assert!(concerns(
            &event(EventKind::Create(CreateKind::File), "/etc/ws/config.xml"),
            &name
        ));
        // Rename over the file (vim, VS Code): the new name is ours.
        let rename = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path("/etc/ws/.config.xml.swp".into())
            .add_path("/etc/ws/config.xml".into());
        assert!(concerns(&rename, &name));
        assert!(concerns(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/etc/ws/config.xml"
            ),
            &name
        ));
        assert!(!concerns(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/etc/ws/config.xml"
            ),
            &name
        ));
        assert!(!concerns(&event(modify, "/etc/ws/wsconnector.log"), &name));
        assert!(concerns(&Event::new(modify), &name), "no path: assume ours");
    }
}
