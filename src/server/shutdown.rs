//! The one shutdown signal. Ctrl-C, SIGTERM, a service stop or the tray's Quit
//! all trip the same token; every task watches it.

pub use tokio_util::sync::CancellationToken as Shutdown;
