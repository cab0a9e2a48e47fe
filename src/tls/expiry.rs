//! How long the server certificate has left, and the warning that announces
//! its renewal: in the log at start and once a day, in `/health`, in the tray
//! (which reads [`CertificateStatus`]) and in `wsconnector cert check`.
//!
//! Renewal makes a new CA that every browser must trust again (src/tls/cert.rs),
//! so the daemon never renews by itself: it warns [`RENEW_WARNING_DAYS`] ahead
//! and the administrator runs `wsconnector cert renew`.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::load::format_utc;
use crate::server::Shutdown;

/// The daemon warns this many days before the server certificate expires,
/// leaving IT two months to roll out `cert renew` (and the new CA).
pub const RENEW_WARNING_DAYS: i64 = 60;

/// The daily repetition of the warning while the daemon runs.
const WARNING_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// The server certificate's remaining validity, as `/health` reports it
/// (`certificate: {notAfter, daysLeft, warning}`) and the tray shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// End of validity of the server certificate (RFC 3339, UTC, in JSON).
    #[serde(serialize_with = "rfc3339_utc")]
    pub not_after: OffsetDateTime,
    /// Whole days left; negative once expired.
    pub days_left: i64,
    /// True within [`RENEW_WARNING_DAYS`] of the end (or after it).
    pub warning: bool,
}

impl CertificateStatus {
    /// The status of a certificate ending at `not_after`, seen at `now`.
    pub fn at(not_after: OffsetDateTime, now: OffsetDateTime) -> CertificateStatus {
        // Round down: "0 days left" already means less than a day.
        let days_left = (not_after - now).whole_days();
        CertificateStatus {
            not_after,
            days_left,
            warning: not_after - now < time::Duration::days(RENEW_WARNING_DAYS),
        }
    }

    /// The status now.
    pub fn now(not_after: OffsetDateTime) -> CertificateStatus {
        Self::at(not_after, OffsetDateTime::now_utc())
    }

    /// One line for the log, the tray tooltip and `cert check`, or `None`
    /// when there is nothing to warn about.
    pub fn warning_text(&self) -> Option<String> {
        if !self.warning {
            return None;
        }
        Some(
            if self.days_left < 0 || self.not_after <= OffsetDateTime::now_utc() {
                format!(
                    "the server certificate expired on {}: run `wsconnector cert renew` \
                 (browsers refuse wss:// until then)",
                    format_utc(self.not_after)
                )
            } else {
                format!(
                    "the server certificate expires on {} ({} days left): run \
                 `wsconnector cert renew` before then (it makes and trusts a new CA)",
                    format_utc(self.not_after),
                    self.days_left
                )
            },
        )
    }
}

/// The certificate in use by a running daemon (set by `app::start`).
impl crate::server::ServerState {
    /// Record the end of validity of the certificate in use.
    pub fn set_certificate_not_after(&self, not_after: OffsetDateTime) {
        if let Ok(mut n) = self.certificate_not_after.lock() {
            *n = Some(not_after);
        }
    }

    /// The certificate's remaining validity and renewal warning (`None` for
    /// plain WS): what `/health` reports and the tray shows.
    pub fn certificate_status(&self) -> Option<CertificateStatus> {
        let not_after = (*self.certificate_not_after.lock().ok()?)?;
        Some(CertificateStatus::now(not_after))
    }
}

/// `2027-03-04T05:06:07Z`: written by hand rather than by enabling time's
/// formatting features for one field.
fn rfc3339_utc<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let t = t.to_offset(time::UtcOffset::UTC);
    s.serialize_str(&format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// Logs the expiry warning now (if due) and then once a day until
/// `shutdown`. Spawned by `app::start` for WSS; it never renews anything.
pub async fn warn_daily(not_after: OffsetDateTime, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(WARNING_PERIOD);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Some(text) = CertificateStatus::now(not_after).warning_text() {
                    tracing::warn!("{text}");
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> time::Duration {
        time::Duration::days(n)
    }

    #[test]
    fn warns_within_sixty_days_only() {
        let now = OffsetDateTime::UNIX_EPOCH + day(20_000);
        let far = CertificateStatus::at(now + day(61), now);
        assert_eq!((far.days_left, far.warning), (61, false));
        assert_eq!(far.warning_text(), None);

        let near = CertificateStatus::at(now + day(59) + time::Duration::hours(3), now);
        assert_eq!((near.days_left, near.warning), (59, true));

        let gone = CertificateStatus::at(now - day(2), now);
        assert_eq!((gone.days_left, gone.warning), (-2, true));
        assert!(gone.warning_text().unwrap().contains("expired on"));
    }

    #[test]
    fn serializes_as_health_reports_it() {
        let now = OffsetDateTime::UNIX_EPOCH + day(20_000);
        let s = CertificateStatus::at(now + day(10), now);
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["daysLeft"], 10);
        assert_eq!(json["warning"], true);
        assert_eq!(json["notAfter"], "2024-10-14T00:00:00Z");
    }

    #[tokio::test(start_paused = true)]
    async fn daily_warning_stops_with_the_daemon() {
        let stop = Shutdown::new();
        let task = tokio::spawn(warn_daily(OffsetDateTime::now_utc() + day(5), stop.clone()));
        tokio::time::advance(WARNING_PERIOD * 2).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }
}
