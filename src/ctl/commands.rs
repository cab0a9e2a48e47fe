//! The data commands of `wsconnector ctl`: status, get, set, clean, watch,
//! dump and load. Each opens one connection, registers where the protocol
//! needs it (as client `wsconnector-ctl`; data outlives the connection), and
//! prints data on stdout only.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::client::{health, Client, Target};
use super::{CtlError, Format};

/// The `clientName` ctl registers with (the inspector shows it).
pub const CLIENT_NAME: &str = "wsconnector-ctl";

/// Prints one line of data on stdout (flushed: `watch` output is read live).
pub(super) fn print(text: &str) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| CtlError::Failed(format!("cannot write to stdout: {e}")))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Registers as `wsconnector-ctl` in `env` (creating it when absent).
pub(super) async fn register(client: &mut Client, env: &str) -> Result<(), CtlError> {
    client
        .request(
            "createEnvironment",
            json!({"environment": env, "clientName": CLIENT_NAME}),
        )
        .await
        .map(|_| ())
}

async fn all_data(client: &mut Client) -> Result<Map<String, Value>, CtlError> {
    match client.request("getData", json!({})).await?["data"].take() {
        Value::Object(m) => Ok(m),
        other => Err(CtlError::Failed(format!(
            "getData answered {other}, not an object"
        ))),
    }
}

fn no_environment(env: &str) -> CtlError {
    CtlError::Failed(format!("there is no environment {env:?}"))
}

/// `ctl status`
pub async fn status(target: &Target) -> Result<(), CtlError> {
    let h = health(target.port).await?;
    let mut client = Client::connect(target).await?;
    let status = client.request("getStatus", json!({})).await?["data"].take();
    let user = client.hello["user"].clone();
    client.close().await;
    // This connection is one of them; the others are the clients.
    let clients = status["connections"]
        .as_u64()
        .unwrap_or(1)
        .saturating_sub(1);
    print(&pretty(&json!({
        "product": h["product"],
        "version": h["version"],
        "protocol": h["protocol"],
        "scheme": target.scheme(),
        "port": target.port,
        "user": user,
        "clients": clients,
        "environments": status["environments"],
    })))
}

/// `ctl get [ENV [VAR]]`: read without registering, so nothing is created.
pub async fn get(
    target: &Target,
    env: Option<&str>,
    var: Option<&str>,
    raw: bool,
) -> Result<(), CtlError> {
    let mut client = Client::connect(target).await?;
    let mut data = all_data(&mut client).await?;
    client.close().await;
    let Some(env) = env else {
        return print(&pretty(&Value::Object(data)));
    };
    let Some(Value::Object(mut values)) = data.remove(env) else {
        return Err(no_environment(env));
    };
    let Some(var) = var else {
        return print(&pretty(&Value::Object(values)));
    };
    match values.remove(var) {
        Some(Value::String(s)) if raw => print(&s),
        Some(v) => print(&v.to_string()),
        None => Err(CtlError::Failed(format!(
            "environment {env:?} has no variable {var:?}"
        ))),
    }
}

/// A `NAME=VALUE` argument as a typed value (see `ctl set --help`).
pub fn parse_pair(pair: &str, as_string: bool) -> Result<(String, Value), CtlError> {
    let Some((name, text)) = pair.split_once('=') else {
        return Err(CtlError::Usage(format!(
            "{pair:?} is not NAME=VALUE (e.g. ANI=3225551234)"
        )));
    };
    if name.is_empty() {
        return Err(CtlError::Usage(format!("{pair:?} has no variable name")));
    }
    let value = if as_string {
        Value::String(text.to_string())
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null | Value::String(_))) => v,
            _ => Value::String(text.to_string()),
        }
    };
    Ok((name.to_string(), value))
}

/// `ctl set ENV NAME=VALUE...`: one atomic `setContextJSON`.
pub async fn set(
    target: &Target,
    env: &str,
    pairs: &[String],
    as_string: bool,
) -> Result<(), CtlError> {
    let items = pairs
        .iter()
        .map(|p| parse_pair(p, as_string).map(|(n, v)| json!({ n: v })))
        .collect::<Result<Vec<Value>, _>>()?;
    let mut client = Client::connect(target).await?;
    register(&mut client, env).await?;
    client
        .request("setContextJSON", json!({"environment": env, "data": items}))
        .await?;
    client.close().await;
    Ok(())
}

/// `ctl clean ENV`: only an environment that exists (never creates one).
pub async fn clean(target: &Target, env: &str) -> Result<(), CtlError> {
    let mut client = Client::connect(target).await?;
    if !all_data(&mut client).await?.contains_key(env) {
        return Err(no_environment(env));
    }
    register(&mut client, env).await?;
    client
        .request("cleanEnvironment", json!({ "environment": env }))
        .await?;
    client.close().await;
    Ok(())
}

/// `ctl watch [ENV] [--count N]`: events as JSON lines. "watching ..." on
/// stderr says the subscriptions are in place.
pub async fn watch(target: &Target, env: Option<&str>, count: Option<u64>) -> Result<(), CtlError> {
    let mut client = Client::connect(target).await?;
    let envs: Vec<String> = match env {
        Some(e) => vec![e.to_string()],
        None => all_data(&mut client).await?.keys().cloned().collect(),
    };
    if envs.is_empty() {
        return Err(CtlError::Failed(
            "there are no environments yet: name the one to watch (ctl watch VOICE)".into(),
        ));
    }
    for e in &envs {
        register(&mut client, e).await?;
        client
            .request(
                "setNotificationsOn",
                json!({"environment": e, "name": "*", "values": false}),
            )
            .await?;
    }
    // Registered before "watching" is printed: a Ctrl-C right after it
    // must end the watch cleanly, not kill the process.
    let mut interrupted = std::pin::pin!(interrupt()?);
    eprintln!("watching {}", envs.join(", "));
    let mut seen = 0u64;
    while count.is_none_or(|n| seen < n) {
        tokio::select! {
            event = client.next_event() => {
                print(&event?.to_string())?;
                seen += 1;
            }
            () = &mut interrupted => break,
        }
    }
    client.close().await;
    Ok(())
}

/// Ctrl-C, with the handler installed now (not at the first poll).
fn interrupt() -> Result<impl std::future::Future<Output = ()>, CtlError> {
    let cannot = |e: std::io::Error| CtlError::Failed(format!("cannot watch for Ctrl-C: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).map_err(cannot)?;
        Ok(async move {
            int.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        let mut c = tokio::signal::windows::ctrl_c().map_err(cannot)?;
        Ok(async move {
            c.recv().await;
        })
    }
}

/// `ctl dump [--format json|xml]`
pub async fn dump(target: &Target, format: Format) -> Result<(), CtlError> {
    let mut client = Client::connect(target).await?;
    let text = match format {
        Format::Json => pretty(&Value::Object(all_data(&mut client).await?)),
        Format::Xml => {
            let reply = client.request("retrieveXML", json!({})).await?;
            reply["data"]
                .as_str()
                .unwrap_or_default()
                .trim_end()
                .to_string()
        }
    };
    client.close().await;
    print(&text)
}

fn read_input(file: Option<&Path>) -> Result<String, CtlError> {
    let mut text = String::new();
    match file {
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        Some(p) if p == Path::new("-") => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        Some(p) => std::fs::read_to_string(p).map(|t| text = t),
    }
    .map_err(|e| {
        CtlError::Usage(format!(
            "cannot read {}: {e}",
            file.map_or("stdin".into(), |p| p.display().to_string())
        ))
    })?;
    Ok(text)
}

/// `ctl load [FILE] [--format json|xml]`: every environment of the dump in
/// one atomic write (`setAllJSON` or `loadXML`).
pub async fn load(
    target: &Target,
    file: Option<&Path>,
    format: Option<Format>,
) -> Result<(), CtlError> {
    let text = read_input(file)?;
    let format = format.unwrap_or(if text.trim_start().starts_with('<') {
        Format::Xml
    } else {
        Format::Json
    });
    let (envs, request) = match format {
        Format::Json => {
            let Ok(Value::Object(all)) = serde_json::from_str::<Value>(&text) else {
                return Err(CtlError::Usage(
                    "the JSON input must be an object {\"ENV\": {\"NAME\": value}} (what ctl dump writes)".into(),
                ));
            };
            let mut entries = Vec::with_capacity(all.len());
            for (env, data) in &all {
                if !data.is_object() {
                    return Err(CtlError::Usage(format!(
                        "environment {env:?} must map to an object of variables"
                    )));
                }
                entries.push(json!({"environment": env, "data": data}));
            }
            let envs: Vec<String> = all.keys().cloned().collect();
            (envs, ("setAllJSON", json!({ "data": entries })))
        }
        Format::Xml => {
            // Parsed here too, to register in every environment it names
            // (and to point at a mistake before connecting).
            let loaded = crate::xml::parse(&text, &crate::xml::LoadOptions::default())
                .map_err(|e| CtlError::Usage(e.to_string()))?;
            (loaded.environments, ("loadXML", json!({ "xml": text })))
        }
    };
    let mut client = Client::connect(target).await?;
    for env in &envs {
        register(&mut client, env).await?;
    }
    client.request(request.0, request.1).await?;
    client.close().await;
    eprintln!("loaded {} environment(s)", envs.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_typed_unless_asked_for_strings() {
        let p = |s| parse_pair(s, false).unwrap();
        assert_eq!(p("n=42"), ("n".into(), json!(42)));
        assert_eq!(p("x=-1.5"), ("x".into(), json!(-1.5)));
        assert_eq!(p("b=true"), ("b".into(), json!(true)));
        assert_eq!(p("z=null"), ("z".into(), Value::Null));
        assert_eq!(p("s=hello world"), ("s".into(), json!("hello world")));
        assert_eq!(p("q=\"42\""), ("q".into(), json!("42")));
        assert_eq!(p("zip=01234"), ("zip".into(), json!("01234")));
        assert_eq!(p("e="), ("e".into(), json!("")));
        assert_eq!(p("eq=a=b"), ("eq".into(), json!("a=b")));
        assert_eq!(p("o={\"a\":1}"), ("o".into(), json!("{\"a\":1}")));
        assert_eq!(parse_pair("n=42", true).unwrap(), ("n".into(), json!("42")));
        assert!(matches!(
            parse_pair("novalue", false),
            Err(CtlError::Usage(_))
        ));
        assert!(matches!(parse_pair("=1", false), Err(CtlError::Usage(_))));
    }
}
