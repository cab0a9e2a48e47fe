//! Request rate limits with quarantine (after reference 002) and the
//! malformed-message counter that ends an abusive connection.
//!
//! Limits are counted per (OS user id, origin or native, request type) in
//! fixed one-minute windows, like Workspace's service-client API: cheap, and
//! a page that reconnects keeps its counters and its quarantine because the
//! key holds nothing about the connection. Time comes from the hub's clock,
//! so tests move it instead of sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::dispatch::Failure;
use crate::config::{RateLimit, RateLimits};
use crate::protocol::ErrorCode;

/// The counting window of every limit.
pub(super) const WINDOW: Duration = Duration::from_secs(60);

/// Most (user, origin, type) entries kept. Keys come from allowed origins,
/// identified users and known actions, so real use stays far below this;
/// the cap only keeps memory bounded whatever happens.
pub(super) const MAX_ENTRIES: usize = 4096;

/// (OS user id, origin or `None` for native, action).
type Key = (String, Option<String>, String);

/// When a quarantine ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// At this instant.
    At(Instant),
    /// Never while this daemon runs (a configured quarantine of 0).
    Restart,
}

/// One key's counters.
#[derive(Debug)]
struct Entry {
    /// Start of the current one-minute window.
    window_start: Instant,
    /// Requests counted in that window.
    count: u32,
    /// Set once the limit was exceeded.
    quarantine: Option<Until>,
}

impl Entry {
    /// True when forgetting this entry changes nothing: no live quarantine
    /// and a window that has ended.
    fn expired(&self, now: Instant) -> bool {
        let quarantined = match self.quarantine {
            None => false,
            Some(Until::Restart) => true,
            Some(Until::At(t)) => t > now,
        };
        !quarantined && now.saturating_duration_since(self.window_start) >= WINDOW
    }
}

/// Every key's counters (lives in the hub's locked state).
#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    entries: HashMap<Key, Entry>,
}

impl RateLimiter {
    /// Counts one `action` request by `user` from `origin` at `now`; a
    /// `rate_limited` failure (with `retryAfterMs`) when it must be refused.
    pub(super) fn check(
        &mut self,
        limits: &RateLimits,
        user: &str,
        origin: Option<&str>,
        action: &str,
        now: Instant,
    ) -> Result<(), Failure> {
        let limit = limits.for_action(action);
        if limit.per_minute == 0 {
            return Ok(());
        }
        let key: Key = (
            user.to_string(),
            origin.map(str::to_string),
            action.to_string(),
        );
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            window_start: now,
            count: 0,
            quarantine: None,
        });
        match entry.quarantine {
            Some(Until::Restart) => return Err(limited(action, limit, None)),
            Some(Until::At(t)) if t > now => {
                return Err(limited(
                    action,
                    limit,
                    Some(t.saturating_duration_since(now)),
                ))
            }
            Some(Until::At(_)) => {
                // Served its time: a fresh window starts now.
                entry.quarantine = None;
                entry.window_start = now;
                entry.count = 0;
            }
            None => {}
        }
        if now.saturating_duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count <= limit.per_minute {
            return Ok(());
        }
        let (until, left) = if limit.quarantine.is_zero() {
            (Until::Restart, None)
        } else {
            (Until::At(now + limit.quarantine), Some(limit.quarantine))
        };
        entry.quarantine = Some(until);
        tracing::warn!(
            user,
            origin = origin.unwrap_or("native"),
            action,
            per_minute = limit.per_minute,
            quarantine_ms = limit.quarantine.as_millis() as u64,
            "rate limit reached: requests of this type are refused for the quarantine"
        );
        Err(limited(action, limit, left))
    }

    /// Entries held now (tests check the bound).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Before a new key: drop expired entries when the map is full, and if
    /// it is still full, the one whose window started first (quarantined
    /// entries last, so filling the map does not lift a quarantine early).
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        self.entries.retain(|_, e| !e.expired(now));
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.quarantine.is_some(), e.window_start))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }
}

/// The `rate_limited` failure; `left` is `None` for a quarantine until restart.
fn limited(action: &str, limit: RateLimit, left: Option<Duration>) -> Failure {
    let (when, data) = match left {
        Some(d) => {
            // Rounded up so a client never retries a moment too early.
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
            (format!("for {}", human(d)), json!({ "retryAfterMs": ms }))
        }
        None => (
            "until the daemon restarts".to_string(),
            json!({ "retryAfterMs": null, "untilRestart": true }),
        ),
    };
    Failure::new(
        ErrorCode::RateLimited,
        format!(
            "the rate limit for {action} ({} per minute) has been reached: further {action} \
             requests are refused {when}",
            limit.per_minute
        ),
    )
    .with_data(data)
}

/// `4m 59s`, `30s`, `1s` (seconds rounded up).
fn human(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}

/// One connection's malformed-message counter (a fixed one-minute window).
#[derive(Debug, Default)]
pub(super) struct MalformedCounter {
    window_start: Option<Instant>,
    count: u32,
}

impl MalformedCounter {
    /// Counts one malformed message at `now`; true when there were more than
    /// `per_minute` in the current window (0 = never).
    pub(super) fn hit(&mut self, now: Instant, per_minute: u32) -> bool {
        if per_minute == 0 {
            return false;
        }
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.count = 0;
            }
        }
        self.count = self.count.saturating_add(1);
        self.count > per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, quarantine: Duration) -> RateLimits {
        RateLimits {
            default: RateLimit {
                per_minute,
                quarantine,
            },
            actions: Vec::new(),
            malformed_per_minute: 3,
        }
    }

    #[test]
    fn window_resets_after_a_minute_without_quarantine() {
        let l = limits(2, Duration::from_secs(5));
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        assert!(r.check(&l, "u", None, "getData", t0).is_ok());
        assert!(r.check(&l, "u", None, "getData", t0).is_ok());
        let f = r.check(&l, "u", None, "getData", t0).unwrap_err();
        assert_eq!(f.code, ErrorCode::RateLimited);
        assert!(f.message.contains("for 5s"), "{}", f.message);
        assert_eq!(f.data, Some(json!({"retryAfterMs": 5000})));
        // After the quarantine a new window starts.
        let t1 = t0 + Duration::from_secs(5);
        assert!(r.check(&l, "u", None, "getData", t1).is_ok());
        assert!(r.check(&l, "u", None, "getData", t1).is_ok());
        assert!(r.check(&l, "u", None, "getData", t1).is_err());
    }

    #[test]
    fn zero_per_minute_is_unlimited() {
        let l = limits(0, Duration::ZERO);
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(r.check(&l, "u", None, "getData", t0).is_ok());
        }
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn map_stays_bounded_and_keeps_quarantines() {
        let l = limits(1, Duration::ZERO);
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        assert!(r.check(&l, "victim", None, "x", t0).is_ok());
        assert!(r.check(&l, "victim", None, "x", t0).is_err());
        for i in 0..(MAX_ENTRIES * 2) {
            let _ = r.check(
                &l,
                &format!("u{i}"),
                None,
                "x",
                t0 + Duration::from_millis(1),
            );
        }
        assert!(r.len() <= MAX_ENTRIES);
        // The quarantined key survived the flood.
        assert!(r
            .check(&l, "victim", None, "x", t0 + Duration::from_secs(3600))
            .is_err());
    }

    #[test]
    fn expired_entries_are_dropped_when_full() {
        let l = limits(5, Duration::from_secs(1));
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES {
            assert!(r.check(&l, &format!("u{i}"), None, "x", t0).is_ok());
        }
        assert_eq!(r.len(), MAX_ENTRIES);
        assert!(r.check(&l, "late", None, "x", t0 + WINDOW).is_ok());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn malformed_counter() {
        let mut c = MalformedCounter::default();
        let t0 = Instant::now();
        assert!(!c.hit(t0, 2));
        assert!(!c.hit(t0, 2));
        assert!(c.hit(t0, 2));
        let mut c = MalformedCounter::default();
        assert!(!c.hit(t0, 2));
        assert!(!c.hit(t0, 2));
        assert!(!c.hit(t0 + WINDOW, 2));
        let mut never = MalformedCounter::default();
        assert!((0..100).all(|_| !never.hit(t0, 0)));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(299_001)), "5m");
        assert_eq!(human(Duration::from_millis(298_500)), "4m 59s");
        assert_eq!(human(Duration::from_millis(1)), "1s");
        assert_eq!(human(Duration::from_secs(30)), "30s");
    }
}
