//! Memory per connection: open many connections to a server (idle, or
//! registered and subscribed), then read the server's resident memory.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::runs::Target;
use crate::{proc_stats, redis, ws, Res};

/// Opens `count` connections (subscribed when `subscribed`) to the server
/// `pid` at `addr`; returns its RSS before and with them.
pub fn hold(
    target: Target,
    addr: SocketAddr,
    pid: u32,
    count: usize,
    subscribed: bool,
) -> Res<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let before = proc_stats::rss_kib(pid)?;
        let mut keep: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(count);
        for i in 0..count {
            match target {
                Target::Ws => {
                    let (mut c, _) = ws::connect(addr).await?;
                    if subscribed {
                        ws::join(&mut c, &format!("idle{i}"), true).await?;
                    }
                    keep.push(Box::new(c));
                }
                Target::Redis => {
                    if subscribed {
                        keep.push(Box::new(redis::subscriber(addr).await?));
                    } else {
                        let s = tokio::net::TcpStream::connect(addr).await?;
                        keep.push(Box::new(s));
                    }
                }
            }
        }
        // Let the server finish whatever each connection started.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let with = proc_stats::rss_kib(pid)?;
        drop(keep);
        Ok(json!({
            "rss_before_kib": before,
            "rss_with_kib": with,
            "connections": count,
            "per_connection_kib": (with as f64 - before as f64) / count as f64,
        }))
    })
}
