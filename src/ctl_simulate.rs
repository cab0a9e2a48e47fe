//! `wsconnector simulate ENV EVENT [--ani ...] [--dnis ...]
//! [--interaction-id ...] [--data KEY=VALUE ...]`: publishes a toolbar event
//! in `GEN_T2P` of the running daemon of this OS user, as one atomic write,
//! exactly as a toolbar would (`cti::event_write`). `--request RqDial`
//! writes a page's `GEN_P2T` request instead.
//!
//! It is a native websocket client (no `Origin`): the daemon admits it only
//! when it runs as the same OS user, and grants it data access only.
//!
//! Exit codes: 0 written; 1 the daemon refused the write (its errorCode and
//! message are printed); 2 bad arguments or configuration; 3 no daemon
//! answers.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{self, SocketType};
use crate::cti::{self, CtiError, EventData, ToolbarWrite};

/// How long connecting and each answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The `clientName` the simulator registers with.
pub const CLIENT_NAME: &str = "wsconnector-simulate";

/// `wsconnector simulate ...`
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The environment (toolbar channel), e.g. VOICE.
    pub environment: String,
    /// The event written in GEN_T2P (EvRinging, EvEstablished, ...), or with
    /// --request the request written in GEN_P2T (RqDial, RqReady, ...).
    pub event: String,
    /// Write EVENT as a page's GEN_P2T request instead of a toolbar event;
    /// --data gives its variables (e.g. outbound_phone=...).
    #[arg(long)]
    pub request: bool,
    /// The caller's number (ANI).
    #[arg(long, value_name = "NUMBER")]
    pub ani: Option<String>,
    /// The dialled number (DNIS).
    #[arg(long, value_name = "NUMBER")]
    pub dnis: Option<String>,
    /// The interaction's identifier (InteractionId).
    #[arg(long, value_name = "ID")]
    pub interaction_id: Option<String>,
    /// The parties of the call (Parties).
    #[arg(long, value_name = "PARTIES")]
    pub parties: Option<String>,
    /// Attached user data, in order (repeatable).
    #[arg(long = "data", value_name = "KEY=VALUE")]
    pub data: Vec<String>,
    /// The daemon's port; defaults to Socket-port of the configuration.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Print the daemon's reply as JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Why the simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Bad event, request or data.
    #[error(transparent)]
    Cti(#[from] CtiError),
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// WSS needs a TLS client, which this command does not have yet.
    #[error("the daemon speaks WSS (Socket-type); simulate connects over WS only for now")]
    Wss,
    /// Nothing answered, or not as wsconnector does.
    #[error("cannot reach the daemon on 127.0.0.1:{port}: {why}")]
    Unreachable {
        /// The port tried.
        port: u16,
        /// What went wrong.
        why: String,
    },
    /// The daemon refused the write.
    #[error("{code}: {message}")]
    Refused {
        /// The reply's errorCode.
        code: String,
        /// The reply's errorMessage.
        message: String,
        /// The whole reply.
        reply: Value,
    },
}

impl SimulateError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            SimulateError::Refused { .. } => 1,
            SimulateError::Cti(_) | SimulateError::Config(_) | SimulateError::Wss => 2,
            SimulateError::Unreachable { .. } => 3,
        }
    }
}

/// The write the arguments ask for.
pub fn write_for(args: &SimulateArgs) -> Result<ToolbarWrite, CtiError> {
    let data = args
        .data
        .iter()
        .map(|d| cti::parse_key_value(d))
        .collect::<Result<Vec<_>, _>>()?;
    if args.request {
        return cti::request_write(&args.environment, &args.event, &data);
    }
    let event_data = EventData {
        ani: args.ani.clone(),
        dnis: args.dnis.clone(),
        interaction_id: args.interaction_id.clone(),
        parties: args.parties.clone(),
        user_data: data,
    };
    cti::event_write(&args.environment, &args.event, &event_data)
}

/// Performs `write` on the daemon at `127.0.0.1:port` over WS and returns
/// its SUCCESS reply (with `epoch` and `seq`).
pub async fn perform(port: u16, write: &ToolbarWrite) -> Result<Value, SimulateError> {
    let unreachable = |why: String| SimulateError::Unreachable { port, why };
    let tcp = timeout(ANSWER_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let url = format!("ws://127.0.0.1:{port}/");
    let (mut ws, _) = timeout(ANSWER_TIMEOUT, tokio_tungstenite::client_async(url, tcp))
        .await
        .map_err(|_| unreachable("websocket handshake timed out".into()))?
        .map_err(|e| unreachable(format!("websocket handshake: {e}")))?;
    let hello = next_json(&mut ws).await.map_err(unreachable)?;
    if hello.get("product").and_then(Value::as_str) != Some(crate::server::PRODUCT) {
        return Err(unreachable("the peer is not wsconnector".into()));
    }
    let register = json!({
        "action": "createEnvironment",
        "requestId": "register",
        "environment": write.environment,
        "clientName": CLIENT_NAME,
    });
    let requests = [register, write.to_request(json!("write"))];
    let mut last = Value::Null;
    for request in requests {
        let id = request["requestId"].clone();
        ws.send(Message::text(request.to_string()))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let reply = loop {
            let msg = next_json(&mut ws).await.map_err(unreachable)?;
            if msg.get("type").and_then(Value::as_str) == Some("reply") && msg["requestId"] == id {
                break msg;
            }
        };
        if reply.get("result").and_then(Value::as_str) != Some("SUCCESS") {
            let text = |k: &str| {
                reply
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            return Err(SimulateError::Refused {
                code: text("errorCode"),
                message: text("errorMessage"),
                reply,
            });
        }
        last = reply;
    }
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    Ok(last)
}

async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<Value, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match timeout(ANSWER_TIMEOUT, ws.next()).await {
            Err(_) => return Err("no answer in time".into()),
            Ok(None) => return Err("the daemon closed the connection".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| e.to_string())
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err(format!(
                    "the daemon closed the connection: {}",
                    f.map(|f| f.reason.to_string()).unwrap_or_default()
                ))
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Loads the configuration, builds the write and performs it.
pub async fn simulate(
    config_file: Option<&Path>,
    args: &SimulateArgs,
) -> Result<Value, SimulateError> {
    let write = write_for(args)?;
    let loaded = config::discover(config_file)?;
    if loaded.config.socket_type == SocketType::Wss {
        return Err(SimulateError::Wss);
    }
    let port = args.port.unwrap_or(loaded.config.port);
    perform(port, &write).await
}

/// The subcommand: prints what was written (or the daemon's reason).
pub fn run(config_file: Option<&Path>, args: &SimulateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsconnector simulate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(simulate(config_file, args)) {
        Ok(reply) => {
            if args.json {
                println!("{reply}");
            } else {
                let variable = if args.request {
                    cti::GEN_P2T
                } else {
                    cti::GEN_T2P
                };
                println!(
                    "{} written to {}.{variable} (epoch {}, seq {})",
                    args.event, args.environment, reply["epoch"], reply["seq"]
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            match (&e, args.json) {
                (SimulateError::Refused { reply, .. }, true) => println!("{reply}"),
                _ => eprintln!("wsconnector simulate: {e}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
