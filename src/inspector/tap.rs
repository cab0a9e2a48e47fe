//! The message trace the inspector shows: every text frame a websocket
//! client sends or receives, in a bounded ring, recorded only while at least
//! one inspector socket is open.
//!
//! When no inspector is open, recording is one relaxed atomic load per
//! frame and nothing else: the connection task calls [`Tap::record`]
//! unconditionally and it returns at once. The ring is emptied when the last
//! inspector closes, so no customer data lingers in memory for nobody.
//!
//! Values are shown (the inspector is the local user's own tool and shows
//! the environments' values anyway); `Log-values` governs the log files
//! only. A frame holding `loginurl` (a v1 `GEN_P2C` key that carries
//! credentials) is never recorded, exactly as it is never logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Most trace entries kept; older ones are dropped first.
pub const TRACE_CAPACITY: usize = 2000;
/// Longest frame text kept per entry, in bytes; longer ones are cut and
/// marked `truncated`.
pub const MAX_TRACE_TEXT: usize = 16 * 1024;
/// What replaces a frame that carries credentials.
pub const REDACTED: &str = "(a frame with GEN_P2C loginurl: not shown, it carries credentials)";

/// Which way a frame went, seen from the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to daemon (a request).
    In,
    /// Daemon to client (hello, reply, event).
    Out,
}

/// One traced frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEntry {
    /// Position in the trace, increasing from 1 for the daemon's life.
    pub seq: u64,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The client connection (the id in the client list).
    pub conn: u64,
    /// In or out.
    pub dir: Direction,
    /// The frame's text (cut at [`MAX_TRACE_TEXT`]).
    pub text: String,
    /// True when `text` was cut.
    pub truncated: bool,
}

/// The trace: a watcher count and the ring behind it.
#[derive(Debug, Default)]
pub struct Tap {
    /// Open inspector sockets; 0 means "record nothing".
    watchers: AtomicUsize,
    /// The ring and the next sequence number. A std mutex held for one push
    /// or one copy, never across `.await`.
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<TraceEntry>,
    last_seq: u64,
}

/// Keeps the tap recording while it lives (one per inspector socket).
#[derive(Debug)]
pub struct Watch {
    tap: Arc<Tap>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.tap.watchers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last inspector closed: forget what was recorded.
            let mut ring = self.tap.lock();
            ring.entries.clear();
        }
    }
}

impl Tap {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start recording until the returned guard is dropped.
    pub fn watch(self: &Arc<Self>) -> Watch {
        self.watchers.fetch_add(1, Ordering::AcqRel);
        Watch { tap: self.clone() }
    }

    /// True while an inspector is open.
    pub fn active(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Records one frame of connection `conn` if an inspector is open.
    #[inline]
    pub fn record(&self, conn: u64, dir: Direction, text: &str) {
        if !self.active() {
            return;
        }
        self.push(conn, dir, text);
    }

    #[cold]
    fn push(&self, conn: u64, dir: Direction, text: &str) {
        let (text, truncated) = if text.contains("loginurl") {
            (REDACTED.to_string(), false)
        } else if text.len() > MAX_TRACE_TEXT {
            let mut cut = MAX_TRACE_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            (text[..cut].to_string(), true)
        } else {
            (text.to_string(), false)
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut ring = self.lock();
        ring.last_seq += 1;
        let seq = ring.last_seq;
        if ring.entries.len() >= TRACE_CAPACITY {
            ring.entries.pop_front();
        }
        ring.entries.push_back(TraceEntry {
            seq,
            at_ms,
            conn,
            dir,
            text,
            truncated,
        });
    }

    /// Entries after `seq`, oldest first, at most `max`.
    pub fn since(&self, seq: u64, max: usize) -> Vec<TraceEntry> {
        let ring = self.lock();
        ring.entries
            .iter()
            .filter(|e| e.seq > seq)
            .take(max)
            .cloned()
            .collect()
    }

    /// Entries held now (tests).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_while_watched_and_forgets_after() {
        let tap = Arc::new(Tap::default());
        tap.record(1, Direction::In, "{}");
        assert!(tap.is_empty());
        let w = tap.watch();
        tap.record(1, Direction::In, "{\"a\":1}");
        tap.record(2, Direction::Out, "{\"b\":2}");
        let all = tap.since(0, 10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].conn, 2);
        assert_eq!(all[1].dir, Direction::Out);
        assert_eq!(tap.since(all[0].seq, 10), vec![all[1].clone()]);
        drop(w);
        assert!(tap.is_empty());
        tap.record(1, Direction::In, "{}");
        assert!(tap.is_empty());
    }

    #[test]
    fn ring_is_bounded_and_long_frames_are_cut() {
        let tap = Arc::new(Tap::default());
        let _w = tap.watch();
        for i in 0..TRACE_CAPACITY + 5 {
            tap.record(i as u64, Direction::In, "x");
        }
        assert_eq!(tap.len(), TRACE_CAPACITY);
        assert_eq!(tap.since(0, 1)[0].seq, 6);
        let long = "é".repeat(MAX_TRACE_TEXT);
        tap.record(1, Direction::Out, &long);
        let e = tap.since(0, usize::MAX).pop().unwrap();
        assert!(e.truncated);
        assert!(e.text.len() <= MAX_TRACE_TEXT);
        tap.record(1, Direction::In, r#"{"loginurl":"https://u:p@x"}"#);
        let e = tap.since(0, usize::MAX).pop().unwrap();
        assert_eq!(e.text, REDACTED);
    }
}
