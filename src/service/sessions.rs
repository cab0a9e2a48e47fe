//! When a user's last session on the machine ends, the service wipes their
//! context store (`Tenants::end_user`). On Linux systemd-logind says so:
//! `org.freedesktop.login1.Manager.UserRemoved(uid, path)` on the system bus
//! when a user's last session is gone (and, unless lingering is enabled,
//! their user manager with it). On Windows the Service Control Manager's
//! session-change events say it (src/service/windows).
//!
//! Only the owner of `org.freedesktop.login1` is believed: the match rule
//! names it as sender (the bus delivers only its signals) and each signal's
//! sender is compared with the name's current owner again, so another
//! program on the bus cannot make the service wipe someone's context.

use tokio::sync::mpsc::UnboundedSender;

/// logind's bus name, object and interface.
const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";

/// Watches logind on the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the
/// standard socket) on a thread of its own and sends the `OsUser::id`
/// (`uid:N`) of every user whose last session ended. Without a system bus
/// or logind it logs one WARN and returns: user contexts then live until
/// the service restarts.
#[cfg(target_os = "linux")]
pub fn watch_logind(ended: UnboundedSender<String>) {
    let spawned = std::thread::Builder::new()
        .name("wsconnector-logind".into())
        .spawn(move || {
            if let Err(e) = watch_blocking(&ended) {
                tracing::warn!(
                    "not watching logins ({e}): a user's context is kept until the service restarts"
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the logind watcher thread: {e}");
    }
}

#[cfg(target_os = "linux")]
fn watch_blocking(ended: &UnboundedSender<String>) -> Result<(), zbus::Error> {
    use zbus::blocking::{fdo::DBusProxy, Connection, MessageIterator};
    use zbus::message::Type;
    use zbus::names::BusName;
    use zbus::zvariant::OwnedObjectPath;
    use zbus::MatchRule;

    let conn = Connection::system()?;
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(LOGIND)?
        .path(LOGIND_PATH)?
        .interface(LOGIND_MANAGER)?
        .member("UserRemoved")?
        .build();
    let signals = MessageIterator::for_match_rule(rule, &conn, Some(256))?;
    let bus = DBusProxy::new(&conn)?;
    let logind = BusName::try_from(LOGIND)?;
    tracing::info!("watching logind: a user's context is wiped when their last session ends");
    for msg in signals {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("logind watcher: {e}");
                continue;
            }
        };
        let header = msg.header();
        let owner = bus.get_name_owner(logind.clone()).ok();
        let from_logind = matches!(
            (header.sender(), owner.as_ref()),
            (Some(sender), Some(owner)) if sender.as_str() == owner.as_str()
        );
        if !from_logind {
            tracing::warn!(sender = ?header.sender(), "a UserRemoved signal not sent by logind: ignored");
            continue;
        }
        match msg.body().deserialize::<(u32, OwnedObjectPath)>() {
            Ok((uid, _)) => {
                if ended.send(format!("uid:{uid}")).is_err() {
                    break;
                }
            }
            Err(e) => tracing::warn!("logind UserRemoved with an unexpected body: {e}"),
        }
    }
    Ok(())
}

/// Other Unix systems: no session tracking yet (logged once).
#[cfg(all(unix, not(target_os = "linux")))]
pub fn watch_logind(_ended: UnboundedSender<String>) {
    tracing::warn!(
        "no login tracking on this OS: a user's context is kept until the service restarts"
    );
}
