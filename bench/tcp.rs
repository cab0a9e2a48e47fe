//! The raw floor: a small tokio TCP echo server of ours and a closed-loop
//! ping-pong client with the same message size as the fan-out runs.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{stats, Res};

/// Echoes every connection on a free loopback port until killed; prints the
/// port on the first line of stdout.
pub fn echo_server() -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        loop {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// `count` round trips of `bytes` bytes after `warmup` ones.
pub fn ping_pong(
    addr: SocketAddr,
    bytes: usize,
    count: u64,
    warmup: u64,
) -> Res<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let msg = vec![b'x'; bytes];
        let mut back = vec![0u8; bytes];
        let mut samples = Vec::with_capacity(count as usize);
        for k in 0..warmup + count {
            let t0 = Instant::now();
            s.write_all(&msg).await?;
            s.read_exact(&mut back).await?;
            if k >= warmup {
                samples.push(t0.elapsed().as_nanos() as u64);
            }
        }
        let p = stats::percentiles(&mut samples);
        Ok(json!({"p50_us": p.p50, "p90_us": p.p90, "p99_us": p.p99, "max_us": p.max, "round_trips": count}))
    })
}
