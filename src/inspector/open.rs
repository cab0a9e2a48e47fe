//! `wsconnector inspect`: finds the running daemon of this user, writes a
//! fresh one-time token for it and opens the inspector in the default
//! browser (or prints the URL with `--print-url`). The tray menu will call
//! [`inspector_url`] the same way.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::token::{self, TokenError};
use crate::config::{self, SocketType};

/// How long we wait for the daemon's `/health` answer. Nothing listening
/// fails at once (connection refused); this only bounds a daemon that
/// accepted and is slow, e.g. a loaded terminal server (3 s proved too
/// short under Wine on a busy 2-core machine).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// `wsconnector inspect [--print-url] [--port N]`
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Print the one-time URL instead of opening a browser (it works once,
    /// within a minute).
    #[arg(long)]
    pub print_url: bool,
    /// The daemon's port; defaults to Socket-port of the configuration.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

/// Why the inspector could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Nothing answers on the port, or not wsconnector.
    #[error("no wsconnector daemon answers on 127.0.0.1:{port} ({why}): start it with `wsconnector run`, or give --port")]
    NotRunning {
        /// The port tried.
        port: u16,
        /// What went wrong.
        why: String,
    },
    /// The token could not be written.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The browser could not be started.
    #[error("cannot open a browser ({0}); open this URL yourself within a minute: {1}")]
    Browser(String, String),
    /// The service did not give this user a token over the websocket.
    #[error("the service gave no inspector token: {0}")]
    Service(String),
}

/// True when `GET /health` on `port` answers as wsconnector. Plain HTTP is
/// answered on a WSS port too (for exactly this kind of probe).
pub fn daemon_answers(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, HEALTH_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(HEALTH_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.take(64 * 1024)
        .read_to_string(&mut body)
        .map_err(|e| e.to_string())?;
    if body.contains("\"product\":\"wsconnector\"") {
        Ok(())
    } else {
        Err("the answer is not wsconnector's".into())
    }
}

/// Writes a token for the daemon on `port` and returns the URL that redeems it.
pub fn inspector_url(port: u16, socket_type: SocketType) -> Result<String, InspectError> {
    let dir = token::runtime_dir().ok_or(TokenError::NoDirectory)?;
    let token = token::issue(&dir, port)?;
    Ok(url_with(port, socket_type, &token))
}

/// Service mode: writes this user's token into the service's shared
/// folder and returns the URL that redeems it (for this user's browser only).
#[cfg(unix)]
pub fn service_inspector_url(config: &config::Config, port: u16) -> Result<String, InspectError> {
    let dir = token::shared_dir(&config.service.agent_socket);
    let token = token::issue_shared(&dir, port)?;
    Ok(url_with(port, config.socket_type, &token))
}

/// Service mode without the shared token folder (Windows, whose service
/// offers none): asks the service, as a native websocket client of this
/// OS user, for a one-time token (`getInspectorToken`), which only this
/// user's browser can redeem. Blocking: runs its own small runtime, so call
/// it outside any async runtime (the CLI, the tray's menu thread).
pub fn service_token_url(
    target: &crate::ctl::client::Target,
    socket_type: SocketType,
) -> Result<String, InspectError> {
    let runtime = crate::app::runtime()
        .map_err(|e| InspectError::Service(format!("cannot start the async runtime: {e}")))?;
    let token = runtime.block_on(async {
        let mut client = crate::ctl::client::Client::connect(target)
            .await
            .map_err(|e| InspectError::Service(e.to_string()))?;
        let reply = client
            .request("getInspectorToken", serde_json::json!({}))
            .await
            .map_err(|e| InspectError::Service(e.to_string()))?;
        reply["data"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| InspectError::Service(format!("unexpected reply {reply}")))
    })?;
    Ok(url_with(target.port, socket_type, &token))
}

/// The inspector URL that redeems `token` on `port`.
pub fn url_with(port: u16, socket_type: SocketType, token: &str) -> String {
    let scheme = match socket_type {
        SocketType::Ws => "http",
        SocketType::Wss => "https",
    };
    format!("{scheme}://127.0.0.1:{port}/inspector?token={token}")
}

/// Opens the inspector; `Ok(Some(url))` when the URL is to be printed.
pub fn open(
    config_file: Option<&Path>,
    args: &InspectArgs,
) -> Result<Option<String>, InspectError> {
    let loaded = config::discover(config_file)?;
    let port = args.port.unwrap_or(loaded.config.port);
    daemon_answers(port).map_err(|why| InspectError::NotRunning { port, why })?;
    #[cfg(unix)]
    let url = if loaded.config.mode == config::Mode::Service {
        service_inspector_url(&loaded.config, port)?
    } else {
        inspector_url(port, loaded.config.socket_type)?
    };
    #[cfg(not(unix))]
    let url = if loaded.config.mode == config::Mode::Service {
        let target = crate::ctl::target_of(&loaded.config, port)
            .map_err(|e| InspectError::Service(e.to_string()))?;
        service_token_url(&target, loaded.config.socket_type)?
    } else {
        inspector_url(port, loaded.config.socket_type)?
    };
    if args.print_url {
        return Ok(Some(url));
    }
    crate::platform::system()
        .open_url(&url)
        .map_err(|e| InspectError::Browser(e.to_string(), url.clone()))?;
    Ok(None)
}

/// The `inspect` subcommand: exit 0 when opened (or printed), 3 when no
/// daemon answers, 1 otherwise.
pub fn run(config_file: Option<&Path>, args: &InspectArgs) -> ExitCode {
    match open(config_file, args) {
        Ok(Some(url)) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("inspector opened in the default browser");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsconnector inspect: {e}");
            match e {
                InspectError::NotRunning { .. } => ExitCode::from(3),
                InspectError::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
