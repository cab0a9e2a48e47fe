//! No tray on this OS yet (macOS is not supported): the agent runs headless.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use super::{AboutInfo, TrayError, TrayEvent, TrayStatus};

/// Never constructed.
pub(super) struct Backend;

impl Backend {
    /// Always [`TrayError::NoHost`].
    pub(super) fn new(
        _sender: Sender<TrayEvent>,
        _status: &TrayStatus,
        _about: &AboutInfo,
    ) -> Result<Backend, TrayError> {
        Err(TrayError::NoHost("no tray support on this OS".to_string()))
    }
}

impl super::Backend for Backend {
    fn update(&mut self, _status: &TrayStatus) {}

    fn wait(&mut self, events: &Receiver<TrayEvent>, timeout: Duration) -> Option<TrayEvent> {
        events.recv_timeout(timeout).ok()
    }
}

/// Not supported here.
pub(super) fn open_folder(_folder: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "opening folders is not supported on this OS",
    ))
}
