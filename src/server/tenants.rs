//! Which context store serves a connection. In single-user mode there is
//! one store, the daemon user's. In service mode (`Mode = service`, shared
//! Citrix/RDS hosts) every OS user gets their own [`Hub`], created on their
//! first connection and dropped when their last session ends: nothing —
//! data, events, desktop actions, resume tokens, replay — crosses users,
//! because two users' connections never share a hub.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::config::Config;
use crate::hub::{Hub, HubSettings};
use crate::peer::OsUser;

/// Builds the hub settings of one user's store (their name for `getUser`,
/// the platform that reaches their session agent).
pub type SettingsFor = dyn Fn(&OsUser, &Config) -> HubSettings + Send + Sync;

/// The stores of this daemon, by OS user.
pub struct Tenants {
    kind: Kind,
}

enum Kind {
    /// One store for everyone the guard admits (the daemon's user, and with
    /// AllowOtherUsers other users' pages, data only).
    Single(Hub),
    /// One store per OS user.
    PerUser {
        hubs: Mutex<HashMap<String, (OsUser, Hub)>>,
        settings_for: Box<SettingsFor>,
    },
}

/// A std mutex held for a map lookup or insert only, never across `.await`;
/// recovers from poisoning like the hub does.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Tenants {
    /// Single-user mode: `hub` serves every connection.
    pub fn single(hub: Hub) -> Tenants {
        Tenants {
            kind: Kind::Single(hub),
        }
    }

    /// Service mode: a store per OS user, each built with `settings_for`.
    pub fn per_user(settings_for: Box<SettingsFor>) -> Tenants {
        Tenants {
            kind: Kind::PerUser {
                hubs: Mutex::new(HashMap::new()),
                settings_for,
            },
        }
    }

    /// True in service mode.
    pub fn is_per_user(&self) -> bool {
        matches!(self.kind, Kind::PerUser { .. })
    }

    /// The single-user store (`None` in service mode).
    pub fn single_hub(&self) -> Option<&Hub> {
        match &self.kind {
            Kind::Single(hub) => Some(hub),
            Kind::PerUser { .. } => None,
        }
    }

    /// The store that serves `user`'s connections, created on first use in
    /// service mode (a new store starts a new epoch, like a restart).
    pub fn hub_for(&self, user: &OsUser, config: &Config) -> Hub {
        match &self.kind {
            Kind::Single(hub) => hub.clone(),
            Kind::PerUser { hubs, settings_for } => {
                let mut hubs = lock(hubs);
                if let Some((_, hub)) = hubs.get(&user.id) {
                    return hub.clone();
                }
                let hub = Hub::new(settings_for(user, config));
                tracing::info!(user = %user.name, user_id = %user.id, "context store created for this user");
                hubs.insert(user.id.clone(), (user.clone(), hub.clone()));
                hub
            }
        }
    }

    /// Every store with its user (`None` for the single-user store).
    pub fn all(&self) -> Vec<(Option<OsUser>, Hub)> {
        match &self.kind {
            Kind::Single(hub) => vec![(None, hub.clone())],
            Kind::PerUser { hubs, .. } => lock(hubs)
                .values()
                .map(|(u, h)| (Some(u.clone()), h.clone()))
                .collect(),
        }
    }

    /// The users that have a store now (service mode; empty otherwise).
    pub fn users(&self) -> Vec<OsUser> {
        self.all().into_iter().filter_map(|(u, _)| u).collect()
    }

    /// Open websocket connections over all stores.
    pub fn connection_count(&self) -> usize {
        self.all().iter().map(|(_, h)| h.connection_count()).sum()
    }

    /// Service mode: `user_id`'s last session ended. Their connections are
    /// closed (1001 with `reason`) and their store is dropped with its data;
    /// a later connection of theirs starts an empty store. Returns whether
    /// the user had a store. Single-user mode: does nothing (the daemon's
    /// own user logging off stops the daemon instead).
    pub fn end_user(&self, user_id: &str, reason: &str) -> bool {
        let Kind::PerUser { hubs, .. } = &self.kind else {
            return false;
        };
        let removed = lock(hubs).remove(user_id);
        match removed {
            Some((user, hub)) => {
                let open = hub.connection_count();
                hub.close_all(crate::server::connection::close::GOING_AWAY, reason);
                tracing::info!(
                    user = %user.name,
                    user_id = %user.id,
                    open_connections = open,
                    "the user's last session ended: their context store was wiped"
                );
                true
            }
            None => false,
        }
    }
}
