//! The direct-write path of a plain (non-TLS) websocket connection: the
//! socket shared between the connection task and the hub, so that an event
//! is written to every subscriber's socket by the request that caused it,
//! without waking one task per subscriber (issue 9: those wake-ups were
//! what kept the S=10/S=100 latency above Redis's; docs/performance.md).
//!
//! Every byte the server sends on such a connection goes through one FIFO
//! of whole frames behind a std mutex:
//! - the hub's text frames ([`Wire::send_text`], under the hub lock): with
//!   nothing queued and the wire not corked, header and payload go out in
//!   one `writev` at once; what the socket does not take is queued in order
//!   and the connection task is woken to finish it;
//! - tungstenite's own frames (pong, ping, close) through [`WireIo`], its
//!   `AsyncWrite`, which takes whole buffers into the same FIFO, so the two
//!   writers' frames never interleave.
//!
//! A batch of requests holds the wires of the connections its events go to
//! ([`Wire::hold`], by the hub) and releases them at its end: each socket
//! gets one `writev` per batch, not one per event (at saturation a batch is
//! dozens of pipelined requests, and the kernel's cost per write was most
//! of the daemon's CPU; docs/performance.md). The connection task also corks
//! its own wire while it handles the batch and uncorks it after: the
//! replies leave in one write, after the events they caused. It drains the
//! FIFO (with its write deadline) when woken. Reads go through [`WireIo`]
//! too: hyper's leftover bytes first, then the socket.
//!
//! A TLS connection cannot be shared this way (the TLS state is not
//! `Sync`-writable from two places) and keeps the task-per-write path.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::inspector::tap::{Direction, Tap};

/// Most queued chunks handed to one `writev` (each chunk is two slices).
const MAX_CHUNKS_PER_WRITE: usize = 32;

/// What became of a text frame offered with [`Wire::send_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written, or queued in order behind what was already queued.
    Accepted,
    /// `limit` whole frames are already waiting: the peer does not read.
    Full,
    /// A write failed earlier: the peer is gone.
    Broken,
}

/// One queued frame.
enum Chunk {
    /// A text frame from the hub: a 2-10 byte header and the shared payload.
    Text {
        header: [u8; 10],
        header_len: u8,
        payload: Utf8Bytes,
    },
    /// Bytes tungstenite wrote (its whole buffered frames).
    Raw(Vec<u8>),
}

impl Chunk {
    fn text(payload: Utf8Bytes) -> Chunk {
        let (header, header_len) = text_header(payload.len());
        Chunk::Text {
            header,
            header_len,
            payload,
        }
    }

    fn len(&self) -> usize {
        match self {
            Chunk::Text {
                header_len,
                payload,
                ..
            } => usize::from(*header_len) + payload.len(),
            Chunk::Raw(bytes) => bytes.len(),
        }
    }

    /// Appends the unwritten part (after `skip` bytes) as slices.
    fn slices<'a>(&'a self, skip: usize, out: &mut Vec<IoSlice<'a>>) {
        match self {
            Chunk::Text {
                header,
                header_len,
                payload,
            } => {
                let header = &header[..usize::from(*header_len)];
                if skip < header.len() {
                    out.push(IoSlice::new(&header[skip..]));
                    out.push(IoSlice::new(payload.as_bytes()));
                } else {
                    out.push(IoSlice::new(&payload.as_bytes()[skip - header.len()..]));
                }
            }
            Chunk::Raw(bytes) => out.push(IoSlice::new(&bytes[skip..])),
        }
    }
}

/// The header of an unmasked, final text frame of `len` bytes (RFC 6455
/// §5.2: a server never masks).
fn text_header(len: usize) -> ([u8; 10], u8) {
    let mut h = [0u8; 10];
    h[0] = 0x81;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// The FIFO and its flags.
#[derive(Default)]
struct Out {
    queue: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Text frames in `queue` (the outbox limit counts these).
    frames: usize,
    /// The connection task is handling requests: queue, do not write.
    corked: bool,
    /// A batch of requests (any connection's) holds this wire's frames:
    /// queue, do not write; the batch's end writes them.
    held: bool,
    /// A write failed: nothing more is written.
    broken: bool,
}

impl Out {
    /// Drops `n` written bytes from the front.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.queue.front() else {
                return;
            };
            let left = front.len() - self.front_written;
            if n < left {
                self.front_written += n;
                return;
            }
            n -= left;
            if matches!(front, Chunk::Text { .. }) {
                self.frames -= 1;
            }
            self.queue.pop_front();
            self.front_written = 0;
        }
    }
}

/// A plain websocket connection's socket, shared by its task and the hub.
pub struct Wire {
    stream: TcpStream,
    out: Mutex<Out>,
    /// Wakes the connection task: something is queued that it must write.
    wake: Notify,
    /// The inspector's trace of frames sent.
    tap: Arc<Tap>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let out = self.lock();
        f.debug_struct("Wire")
            .field("queued", &out.queue.len())
            .field("corked", &out.corked)
            .field("held", &out.held)
            .field("broken", &out.broken)
            .finish()
    }
}

impl Wire {
    /// Shares `stream` (already upgraded: the 101 response is written).
    pub fn new(stream: TcpStream, tap: Arc<Tap>) -> Wire {
        Wire {
            stream,
            out: Mutex::new(Out::default()),
            wake: Notify::new(),
            tap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A text frame from the hub for connection `conn`, written now when
    /// possible; refused when `limit` whole frames already wait. Never blocks.
    pub fn send_text(&self, conn: u64, payload: &Utf8Bytes, limit: usize) -> Sent {
        let mut out = self.lock();
        if out.broken {
            return Sent::Broken;
        }
        if out.frames >= limit {
            return Sent::Full;
        }
        // The inspector's trace: one atomic load while none is open.
        self.tap.record(conn, Direction::Out, payload.as_str());
        let chunk = Chunk::text(payload.clone());
        if !out.queue.is_empty() || out.corked || out.held {
            out.queue.push_back(chunk);
            out.frames += 1;
            // Whoever corked or holds the wire writes it when done.
            if !out.corked && !out.held {
                self.wake.notify_one();
            }
            return Sent::Accepted;
        }
        let mut slices = Vec::with_capacity(2);
        chunk.slices(0, &mut slices);
        let wrote = match self.stream.try_write_vectored(&slices) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                out.broken = true;
                self.wake.notify_one();
                return Sent::Broken;
            }
        };
        if wrote < chunk.len() {
            // The socket is full: the task finishes it once it is writable.
            out.queue.push_back(chunk);
            out.frames += 1;
            out.front_written = wrote;
            self.wake.notify_one();
        }
        Sent::Accepted
    }

    /// Bytes tungstenite wrote (whole frames), queued behind everything
    /// else; written by the next drain.
    fn queue_raw(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = self.lock();
        if out.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        out.queue.push_back(Chunk::Raw(bytes.to_vec()));
        Ok(())
    }

    /// Holds every write in the FIFO until [`Wire::uncork`].
    pub fn cork(&self) {
        self.lock().corked = true;
    }

    /// Writes what was corked (one `writev` for a batch of replies), unless
    /// a batch still holds the wire (its release writes it then).
    pub fn uncork(&self) {
        let mut out = self.lock();
        out.corked = false;
        self.write_unblocked(&mut out);
    }

    /// Holds every write in the FIFO until [`Wire::release`], for a batch
    /// of requests whose events go to this connection. True when it was not
    /// held already: the caller must then release it once.
    pub fn hold(&self) -> bool {
        !std::mem::replace(&mut self.lock().held, true)
    }

    /// The batch that held the wire is done: writes what waits, in one
    /// `writev`, unless the connection task has it corked.
    pub fn release(&self) {
        let mut out = self.lock();
        out.held = false;
        self.write_unblocked(&mut out);
    }

    /// After a cork or a hold ends: writes the FIFO unless the other one
    /// still blocks it. Whatever the socket does not take now is left for
    /// [`Wire::poll_drain`], and the task is woken for it.
    fn write_unblocked(&self, out: &mut Out) {
        if out.corked || out.held {
            return;
        }
        match self.write_queued(out) {
            Ok(true) => {}
            Ok(false) | Err(_) => self.wake.notify_one(),
        }
    }

    /// A slow consumer's close: whole frames not yet started are dropped,
    /// so the close frame is next (a partly written frame is finished: the
    /// framing must stay valid).
    pub fn discard_unsent(&self) {
        let mut out = self.lock();
        let keep = usize::from(out.front_written > 0);
        while out.queue.len() > keep {
            if let Some(Chunk::Text { .. }) = out.queue.pop_back() {
                out.frames -= 1;
            }
        }
    }

    /// Waits until the task has something to write.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Writes as much of the FIFO as the socket takes now; true once empty.
    fn write_queued(&self, out: &mut Out) -> io::Result<bool> {
        if out.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        while !out.queue.is_empty() {
            let mut slices = Vec::with_capacity(2 * MAX_CHUNKS_PER_WRITE);
            let mut skip = out.front_written;
            for chunk in out.queue.iter().take(MAX_CHUNKS_PER_WRITE) {
                chunk.slices(skip, &mut slices);
                skip = 0;
            }
            match self.stream.try_write_vectored(&slices) {
                Ok(0) => {
                    out.broken = true;
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => {
                    out.broken = true;
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Writes the whole FIFO, waiting for the socket as needed. Ready at
    /// once while corked or held (the uncork or release writes it).
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut out = self.lock();
                if out.corked || out.held || self.write_queued(&mut out)? {
                    return Poll::Ready(Ok(()));
                }
            }
            // `try_write` saw WouldBlock and cleared the readiness: this
            // registers for the next writable edge (or is ready at once if
            // it already came).
            ready!(self.stream.poll_write_ready(cx))?;
        }
    }

    /// Writes the whole FIFO.
    pub async fn drain(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }
}

/// The stream tungstenite reads and writes on a plain connection: reads
/// from the socket (hyper's leftover bytes first), writes into the wire's
/// FIFO.
pub struct WireIo {
    wire: Arc<Wire>,
    /// Bytes hyper read past the handshake.
    leftover: Bytes,
}

impl WireIo {
    /// Tungstenite's side of `wire`.
    pub fn new(wire: Arc<Wire>, leftover: Bytes) -> WireIo {
        // `leftover` is a view into hyper's read buffer (8 KiB or more):
        // keeping it, even empty, keeps that whole buffer for the life of
        // the connection. Copy the few bytes instead.
        let leftover = if leftover.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&leftover)
        };
        WireIo { wire, leftover }
    }
}

impl AsyncRead for WireIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.leftover.is_empty() {
            let n = self.leftover.len().min(buf.remaining());
            let head = self.leftover.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(self.wire.stream.poll_read_ready(cx))?;
            match self.wire.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // A stale readiness: poll again, which registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for WireIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Always the whole buffer: tungstenite hands over whole frames, and
        // a partial count would let the hub's frames in between.
        self.wire.queue_raw(buf)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the last owner drops it.
        self.wire.poll_drain(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn headers_follow_rfc_6455_length_forms() {
        assert_eq!(text_header(0).1, 2);
        assert_eq!(&text_header(125).0[..2], &[0x81, 125]);
        assert_eq!(&text_header(126).0[..4], &[0x81, 126, 0, 126]);
        assert_eq!(&text_header(65535).0[..4], &[0x81, 126, 0xff, 0xff]);
        let (h, n) = text_header(65536);
        assert_eq!(n, 10);
        assert_eq!(&h[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    async fn pair() -> (Arc<Wire>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (
            Arc::new(Wire::new(server, Arc::new(Tap::default()))),
            client,
        )
    }

    async fn read_exact(client: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        client.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test(flavor = "current_thread")]
    async fn corked_frames_wait_for_uncork_and_keep_their_order() {
        let (wire, mut client) = pair().await;
        // Let the reactor see the socket writable.
        std::future::poll_fn(|cx| wire.stream.poll_write_ready(cx))
            .await
            .unwrap();
        wire.cork();
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("a"), 8), Sent::Accepted);
        wire.queue_raw(&[0x8a, 0]).unwrap();
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("bc"), 8), Sent::Accepted);
        wire.uncork();
        let got = read_exact(&mut client, 3 + 2 + 4).await;
        assert_eq!(got, [0x81, 1, b'a', 0x8a, 0, 0x81, 2, b'b', b'c']);
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("d"), 8), Sent::Accepted);
        assert_eq!(read_exact(&mut client, 3).await, [0x81, 1, b'd']);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn held_frames_wait_for_the_release_and_for_the_cork() {
        let (wire, mut client) = pair().await;
        std::future::poll_fn(|cx| wire.stream.poll_write_ready(cx))
            .await
            .unwrap();
        assert!(wire.hold());
        assert!(!wire.hold(), "already held: one release is owed");
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("a"), 8), Sent::Accepted);
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("b"), 8), Sent::Accepted);
        // The task's drain leaves them to the release.
        wire.drain().await.unwrap();
        assert_eq!(wire.lock().queue.len(), 2);
        // Released while the task has it corked: the uncork writes them.
        wire.cork();
        wire.release();
        assert_eq!(wire.lock().queue.len(), 2);
        wire.uncork();
        assert!(wire.lock().queue.is_empty());
        assert_eq!(
            read_exact(&mut client, 6).await,
            [0x81, 1, b'a', 0x81, 1, b'b']
        );
        // Not held any more: written at once.
        assert_eq!(wire.send_text(1, &Utf8Bytes::from("c"), 8), Sent::Accepted);
        assert!(wire.lock().queue.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_stops_fills_the_fifo_to_its_limit() {
        let (wire, mut client) = pair().await;
        let payload = Utf8Bytes::from("x".repeat(60_000));
        let mut accepted = 0;
        let mut outcome = Sent::Accepted;
        for _ in 0..10_000 {
            outcome = wire.send_text(1, &payload, 4);
            if outcome != Sent::Accepted {
                break;
            }
            accepted += 1;
        }
        assert_eq!(outcome, Sent::Full, "the kernel buffers cannot take 600 MB");
        assert_eq!(wire.lock().frames, 4);
        // Once the client reads, a drain writes every accepted frame whole.
        let reader = tokio::spawn(async move {
            let mut total = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            let want = accepted * (4 + 60_000);
            while total < want {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0);
                total += n;
            }
            total
        });
        wire.drain().await.unwrap();
        assert_eq!(reader.await.unwrap(), accepted * 60_004);
        assert_eq!(wire.lock().frames, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn discard_keeps_a_partly_written_frame() {
        let (wire, _client) = pair().await;
        let payload = Utf8Bytes::from("y".repeat(60_000));
        while wire.send_text(1, &payload, 1_000) == Sent::Accepted && wire.lock().frames < 3 {}
        let partial = wire.lock().front_written > 0;
        wire.discard_unsent();
        let out = wire.lock();
        assert_eq!(out.queue.len(), usize::from(partial));
        assert_eq!(out.frames, usize::from(partial));
    }
}
