//! The Redis side of the comparison: a minimal RESP client for pub/sub with
//! the same workload shape (one channel, one publisher, S subscribers,
//! payloads of the same size that name their set).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::{fail, Res};

/// The channel every benchmark client uses.
pub const CHANNEL: &str = "bench";

/// The PUBLISH command of the k-th set, its payload about `value_bytes` long.
pub fn publish_command(k: u64, value_bytes: usize) -> Vec<u8> {
    let head = format!("{k:012}:");
    let payload = format!(
        "{head}{}",
        "x".repeat(value_bytes.saturating_sub(head.len()))
    );
    format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{CHANNEL}\r\n${}\r\n{payload}\r\n",
        CHANNEL.len(),
        payload.len()
    )
    .into_bytes()
}

/// One RESP value, as much as the benchmark needs.
#[derive(Debug, PartialEq)]
pub enum Resp {
    /// `:n`
    Int(i64),
    /// `+text`
    Simple(String),
    /// A push or reply array; bulk strings are kept as bytes.
    Array(Vec<Vec<u8>>),
}

/// Buffered RESP reader over one socket half.
pub struct RespReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    pos: usize,
}

impl RespReader {
    /// Reads from `rd`.
    pub fn new(rd: OwnedReadHalf) -> RespReader {
        RespReader {
            rd,
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
        }
    }

    /// The next complete value.
    pub async fn next(&mut self) -> Res<Resp> {
        loop {
            if let Some((v, used)) = parse(&self.buf[self.pos..])? {
                self.pos += used;
                if self.pos == self.buf.len() {
                    self.buf.clear();
                    self.pos = 0;
                }
                return Ok(v);
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            self.buf.reserve(64 * 1024);
            let n = self.rd.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(fail("redis closed the connection"));
            }
        }
    }
}

fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let end = b.windows(2).position(|w| w == b"\r\n")?;
    Some((&b[..end], end + 2))
}

fn int(b: &[u8]) -> Res<i64> {
    std::str::from_utf8(b)?
        .parse()
        .map_err(|e| fail(format!("bad RESP integer: {e}")))
}

/// One value from the start of `b` and the bytes it used; `None` if incomplete.
fn parse(b: &[u8]) -> Res<Option<(Resp, usize)>> {
    let Some((head, mut used)) = line(b) else {
        return Ok(None);
    };
    match head.first() {
        Some(b':') => Ok(Some((Resp::Int(int(&head[1..])?), used))),
        Some(b'+') => Ok(Some((
            Resp::Simple(String::from_utf8_lossy(&head[1..]).into_owned()),
            used,
        ))),
        Some(b'-') => Err(fail(format!(
            "redis error: {}",
            String::from_utf8_lossy(&head[1..])
        ))),
        Some(b'*') => {
            let n = int(&head[1..])?;
            let mut items = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let Some((h, u)) = line(&b[used..]) else {
                    return Ok(None);
                };
                match h.first() {
                    Some(b'$') => {
                        let len = int(&h[1..])? as usize;
                        let start = used + u;
                        if b.len() < start + len + 2 {
                            return Ok(None);
                        }
                        items.push(b[start..start + len].to_vec());
                        used = start + len + 2;
                    }
                    Some(b':') => {
                        items.push(h[1..].to_vec());
                        used += u;
                    }
                    _ => return Err(fail("unexpected RESP array item")),
                }
            }
            Ok(Some((Resp::Array(items), used)))
        }
        _ => Err(fail(format!(
            "unexpected RESP: {}",
            String::from_utf8_lossy(head)
        ))),
    }
}

/// Connects a subscriber and waits for the subscription's confirmation. The
/// write half must be kept: dropping it would half-close the connection.
pub async fn subscriber(addr: SocketAddr) -> Res<(RespReader, OwnedWriteHalf)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (rd, mut wr) = tcp.into_split();
    let cmd = format!(
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{CHANNEL}\r\n",
        CHANNEL.len()
    );
    wr.write_all(cmd.as_bytes()).await?;
    let mut r = RespReader::new(rd);
    match r.next().await? {
        Resp::Array(items) if items.first().map(Vec::as_slice) == Some(b"subscribe") => {}
        other => return Err(fail(format!("unexpected SUBSCRIBE answer: {other:?}"))),
    }
    Ok((r, wr))
}

/// The set index a pushed message names (its payload starts with it).
pub fn message_index(v: Resp) -> Res<u64> {
    match v {
        Resp::Array(items) if items.len() == 3 && items[0] == b"message" => {
            let p = &items[2];
            let end = p.iter().position(|&c| c == b':').unwrap_or(p.len());
            Ok(std::str::from_utf8(&p[..end])?.parse()?)
        }
        other => Err(fail(format!("unexpected push: {other:?}"))),
    }
}

/// Connects a publisher.
pub async fn publisher(addr: SocketAddr) -> Res<(RespReader, OwnedWriteHalf)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (rd, wr) = tcp.into_split();
    Ok((RespReader::new(rd), wr))
}
