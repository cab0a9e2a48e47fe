//! `wsconnector simulate ENV EVENT [--ani ...] [--dnis ...]
//! [--interaction-id ...] [--data KEY=VALUE ...]`: publishes a toolbar event
//! in `GEN_T2P` of the running daemon of this OS user, as one atomic write,
//! exactly as a toolbar would (`cti::event_write`). `--request RqDial`
//! writes a page's `GEN_P2T` request instead.
//!
//! It is a native websocket client (no `Origin`, the `wsconnector ctl`
//! client, over WS or WSS with the configured certificate pinned): the
//! daemon admits it only when it runs as the same OS user.
//!
//! Exit codes: 0 written; 1 the daemon refused the write (its errorCode and
//! message are printed); 2 bad arguments or configuration; 3 no daemon
//! answers.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};

use crate::cti::{self, CtiError, EventData, ToolbarWrite};
use crate::ctl::client::{Client, Target};
use crate::ctl::CtlError;
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
    /// Connecting, or the daemon's answer (the `wsconnector ctl` errors,
    /// with their exit codes).
    #[error(transparent)]
    Ctl(#[from] CtlError),
}

impl SimulateError {
    /// The process exit code for this error (the `ctl` codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            SimulateError::Cti(_) => 2,
            SimulateError::Ctl(e) => e.exit_code(),
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

/// Performs `write` on the daemon at `target` (WS, or WSS with its pinned
/// certificate) and returns its SUCCESS reply (with `epoch` and `seq`).
pub async fn perform(target: &Target, write: &ToolbarWrite) -> Result<Value, CtlError> {
    let mut client = Client::connect(target).await?;
    if client.hello.get("product").and_then(Value::as_str) != Some(crate::server::PRODUCT) {
        return Err(CtlError::Failed(format!(
            "the peer on 127.0.0.1:{} is not wsconnector",
            target.port
        )));
    }
    client
        .request(
            "createEnvironment",
            json!({"environment": write.environment, "clientName": CLIENT_NAME}),
        )
        .await?;
    // The write as a toolbar sends it; `request` adds action and requestId.
    let mut fields = write.to_request(Value::Null);
    if let Some(m) = fields.as_object_mut() {
        m.remove("action");
        m.remove("requestId");
    }
    let reply = client.request("setContextJSON", fields).await?;
    client.close().await;
    Ok(reply)
}

/// Loads the configuration, builds the write and performs it.
pub async fn simulate(
    config_file: Option<&Path>,
    args: &SimulateArgs,
) -> Result<Value, SimulateError> {
    let write = write_for(args)?;
    let target = crate::ctl::target_for(config_file, args.port)?;
    Ok(perform(&target, &write).await?)
}

/// The subcommand: prints what was written (or the daemon's reason).
pub fn run(config_file: Option<&Path>, args: &SimulateArgs) -> ExitCode {
    let runtime = match crate::app::runtime() {
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
                (SimulateError::Ctl(CtlError::Refused { code, message, .. }), true) => println!(
                    "{}",
                    json!({"result": "FAILURE", "errorCode": code, "errorMessage": message})
                ),
                _ => eprintln!("wsconnector simulate: {e}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
