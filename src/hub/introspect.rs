//! Read-only views of the hub for the inspector: the connected clients and
//! the environments with their variables and `(epoch, seq)`.
//!
//! Nothing here runs unless an inspector asks: each call takes the hub's
//! lock once and copies what it reports, so the fan-out path pays nothing.

use std::time::UNIX_EPOCH;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{lock, Hub};
use crate::config::VarFilter;

/// One subscription of a client in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// The variable, or `*`.
    pub name: String,
    /// Whether its events carry the whole environment (`Values`).
    pub values: bool,
}

/// A client's registration in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientEnvironment {
    /// The environment.
    pub environment: String,
    /// The `clientName` it registered with.
    pub client_name: String,
    /// Its subscriptions there, by variable name.
    pub subscriptions: Vec<Subscription>,
}

/// One connected client as the inspector lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// The connection id (trace entries name it).
    pub id: u64,
    /// The OS user owning the connection.
    pub user: String,
    /// The page's origin; `None` for a native client.
    pub origin: Option<String>,
    /// True for a client without `Origin`.
    pub native: bool,
    /// The capabilities it was granted.
    pub capabilities: Vec<&'static str>,
    /// When it connected, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Text frames it sent.
    pub messages_in: u64,
    /// Messages queued for it (hello, replies, events).
    pub messages_out: u64,
    /// Where it is registered, by environment name.
    pub environments: Vec<ClientEnvironment>,
}

/// One environment as the inspector shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentInfo {
    /// Its name.
    pub name: String,
    /// Its epoch (new at each (re)creation).
    pub epoch: u64,
    /// Its last event's sequence number.
    pub seq: u64,
    /// Its variables, sorted by name.
    pub variables: Map<String, Value>,
    /// Connections registered in it.
    pub registrations: Vec<u64>,
}

impl Hub {
    /// Every open connection, by id.
    pub fn clients(&self) -> Vec<ClientInfo> {
        let st = lock(&self.inner.state);
        let mut out: Vec<ClientInfo> = st
            .conns
            .iter()
            .map(|(id, c)| ClientInfo {
                id: id.0,
                user: c.peer.os_user.name.clone(),
                origin: c.peer.origin.clone(),
                native: c.peer.origin.is_none(),
                capabilities: c.peer.capabilities.names(),
                since_ms: c
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                messages_in: c.msgs_in,
                messages_out: c.msgs_out,
                environments: st
                    .store
                    .registrations_of(*id)
                    .map(|(env, r)| ClientEnvironment {
                        environment: env.to_string(),
                        client_name: r.client_name.clone(),
                        subscriptions: r
                            .subscriptions
                            .iter()
                            .map(|(name, values)| Subscription {
                                name: name.clone(),
                                values: *values,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// Every environment with all its variables (no read allow-list: the
    /// inspector is the local user's own view).
    pub fn environments(&self) -> Vec<EnvironmentInfo> {
        let st = lock(&self.inner.state);
        let all = VarFilter::default();
        st.store
            .environments()
            .map(|(name, e)| EnvironmentInfo {
                name: name.to_string(),
                epoch: e.epoch,
                seq: e.seq,
                variables: e.values(name, &all),
                registrations: e.registrations().map(|c| c.0).collect(),
            })
            .collect()
    }
}
