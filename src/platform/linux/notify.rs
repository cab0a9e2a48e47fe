//! Toasts and the pickup dialog as freedesktop notifications
//! (`org.freedesktop.Notifications` on the session bus), spoken with zbus
//! directly: the pickup dialog must subscribe to `ActionInvoked` and
//! `NotificationClosed` *before* it sends `Notify`, or a fast click could be
//! missed, and it needs the close reason to tell "dismissed" from "expired".
//! Body text is plain: where the server renders markup it is escaped.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::zvariant::Value;

use crate::platform::{ActionError, PickupDialog, PickupOutcome, Toast};

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const IFACE: &str = "org.freedesktop.Notifications";
/// Shown as the sending application.
const APP_NAME: &str = "wsconnector";
/// Action key of the pickup button.
pub(crate) const PICKUP_ACTION: &str = "pickup";
/// freedesktop urgency levels.
const URGENCY_NORMAL: u8 = 1;
const URGENCY_CRITICAL: u8 = 2;

fn bus_error(e: zbus::Error) -> ActionError {
    match &e {
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" =>
        {
            ActionError::NotSupported(
                "no notification service is running on the session bus".into(),
            )
        }
        zbus::Error::Address(_) | zbus::Error::InputOutput(_) => ActionError::NotSupported(
            format!("no D-Bus session bus to show notifications on ({e})"),
        ),
        _ => ActionError::Failed(format!("notification service: {e}")),
    }
}

/// Legacy colour names and `#rrggbb` values that mean "alarm" become critical
/// urgency (the freedesktop spec has no colours).
pub(crate) fn urgency(color: Option<&str>) -> u8 {
    let Some(c) = color.map(|c| c.trim().to_ascii_lowercase()) else {
        return URGENCY_NORMAL;
    };
    let reddish = match c.strip_prefix('#') {
        Some(hex) if hex.len() == 6 => {
            let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
            channel(0) >= 0xc0 && channel(2) < 0x60 && channel(4) < 0x60
        }
        _ => matches!(c.as_str(), "red" | "darkred" | "crimson" | "critical"),
    };
    if reddish {
        URGENCY_CRITICAL
    } else {
        URGENCY_NORMAL
    }
}

/// Escapes the three characters that notification markup interprets.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

async fn proxy(conn: &zbus::Connection) -> Result<zbus::Proxy<'static>, ActionError> {
    zbus::Proxy::new(conn, DEST, PATH, IFACE)
        .await
        .map_err(bus_error)
}

async fn capabilities(p: &zbus::Proxy<'_>) -> Result<Vec<String>, ActionError> {
    p.call("GetCapabilities", &()).await.map_err(bus_error)
}

struct Note<'a> {
    summary: &'a str,
    body: String,
    actions: Vec<&'a str>,
    urgency: u8,
    expire: i32,
}

async fn send(p: &zbus::Proxy<'_>, note: &Note<'_>) -> Result<u32, ActionError> {
    let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
    hints.insert("urgency", Value::from(note.urgency));
    p.call(
        "Notify",
        &(
            APP_NAME,
            0u32,
            "",
            note.summary,
            note.body.as_str(),
            &note.actions,
            hints,
            note.expire,
        ),
    )
    .await
    .map_err(bus_error)
}

async fn session() -> Result<zbus::Connection, ActionError> {
    zbus::Connection::session().await.map_err(|e| {
        ActionError::NotSupported(format!(
            "no D-Bus session bus to show notifications on ({e})"
        ))
    })
}

/// `showNotification`.
pub(super) fn toast(toast: &Toast) -> Result<(), ActionError> {
    zbus::block_on(async {
        let conn = session().await?;
        let p = proxy(&conn).await?;
        let caps = capabilities(&p).await?;
        let body = if caps.iter().any(|c| c == "body-markup") {
            escape(&toast.message)
        } else {
            toast.message.clone()
        };
        send(
            &p,
            &Note {
                summary: &toast.title,
                body,
                actions: Vec::new(),
                urgency: urgency(toast.color.as_deref()),
                expire: millis(toast.duration),
            },
        )
        .await
        .map(|_| ())
    })
}

/// A timer that works in any executor: a thread waits for `after` unless the
/// returned guard is dropped first (then it ends at once).
fn timer(
    after: Duration,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (fire_tx, fire_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("wsc-pickup-timer".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(after) {
                let _ = fire_tx.send(());
            }
        });
    if let Err(e) = spawned {
        // Without a timer the server's own expiry still ends the dialog.
        tracing::warn!(error = %e, "cannot start the pickup dialog timer");
    }
    (fire_rx, stop_tx)
}

/// `showPickupDialog`: a critical notification with a pick-up button; blocks
/// until it is clicked, closed or times out.
pub(super) fn pickup(dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
    zbus::block_on(async {
        let conn = session().await?;
        let p = proxy(&conn).await?;
        let caps = capabilities(&p).await?;
        if !caps.iter().any(|c| c == "actions") {
            return Err(ActionError::NotSupported(
                "the notification service cannot show buttons (no \"actions\" capability)".into(),
            ));
        }
        // Subscribe first, so no answer can slip by between Notify and here.
        let mut invoked = p.receive_signal("ActionInvoked").await.map_err(bus_error)?;
        let mut closed = p
            .receive_signal("NotificationClosed")
            .await
            .map_err(bus_error)?;
        let body = if caps.iter().any(|c| c == "body-markup") {
            escape(&dialog.title)
        } else {
            dialog.title.clone()
        };
        let id = send(
            &p,
            &Note {
                summary: &dialog.title,
                body,
                actions: vec![PICKUP_ACTION, dialog.button_text.as_str()],
                urgency: URGENCY_CRITICAL,
                expire: millis(dialog.timeout),
            },
        )
        .await?;
        let (mut fire, _stop) = timer(dialog.timeout);
        let outcome = loop {
            tokio::select! {
                msg = invoked.next() => {
                    let Some(msg) = msg else { break PickupOutcome::Dismissed };
                    if let Ok((nid, key)) = msg.body().deserialize::<(u32, String)>() {
                        if nid == id && key == PICKUP_ACTION {
                            // Some servers keep a notification after a click.
                            let _ = p.call::<_, _, ()>("CloseNotification", &(id,)).await;
                            break PickupOutcome::PickedUp;
                        }
                    }
                }
                msg = closed.next() => {
                    let Some(msg) = msg else { break PickupOutcome::Dismissed };
                    if let Ok((nid, reason)) = msg.body().deserialize::<(u32, u32)>() {
                        if nid == id {
                            break if reason == 1 { PickupOutcome::TimedOut } else { PickupOutcome::Dismissed };
                        }
                    }
                }
                _ = &mut fire => {
                    let _ = p.call::<_, _, ()>("CloseNotification", &(id,)).await;
                    break PickupOutcome::TimedOut;
                }
            }
        };
        Ok(outcome)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_colours_are_critical() {
        for c in ["Red", "red", " RED ", "#ff0000", "#E01010", "crimson"] {
            assert_eq!(urgency(Some(c)), URGENCY_CRITICAL, "{c}");
        }
        for c in ["green", "#00ff00", "#ffffff", "", "popupcolor"] {
            assert_eq!(urgency(Some(c)), URGENCY_NORMAL, "{c}");
        }
        assert_eq!(urgency(None), URGENCY_NORMAL);
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape("<b>A&B</b>"), "&lt;b&gt;A&amp;B&lt;/b&gt;");
    }
}
