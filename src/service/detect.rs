//! Is the machine-wide service running? Exactly one mode binds the port
//! (DESIGN.md §2): a single-user `wsconnector run` refuses to start when
//! the service is up, and says what to run instead.

use crate::config::Config;

/// A description of the running service, or `None` when it is not running.
pub fn running(config: &Config) -> Option<String> {
    os_running(config)
}

#[cfg(unix)]
fn os_running(config: &Config) -> Option<String> {
    // The service accepts agents on this socket while it runs; a stale
    // socket file refuses the connection.
    let path = &config.service.agent_socket;
    std::os::unix::net::UnixStream::connect(path).ok().map(|_| {
        format!(
            "the wsconnector service is listening for session agents on {}",
            path.display()
        )
    })
}

#[cfg(windows)]
fn os_running(_config: &Config) -> Option<String> {
    super::windows::scm::service_pid().map(|pid| {
        format!(
            "the Windows service {} is running (pid {pid})",
            super::windows::scm::SERVICE_NAME
        )
    })
}

#[cfg(not(any(unix, windows)))]
fn os_running(_config: &Config) -> Option<String> {
    None
}
