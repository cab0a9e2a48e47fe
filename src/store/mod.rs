//! The context store: environments and their variables, each connection's
//! registrations and subscriptions, epochs and sequence numbers, the bounded
//! replay buffers and the count limits. Plain Rust with no I/O and no async:
//! each operation validates everything first, then applies the change and
//! returns who must be told what (`Commit`); the hub turns that into messages.
//! The state table in docs/protocol.md describes every operation here.

pub mod names;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use crate::config::{Limits, VarFilter};
use crate::hub::{ConnId, ConnMap};
use crate::protocol::{ErrorCode, ALL_VARIABLES};

/// Why an operation was refused. Nothing was changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A name breaks the naming rules.
    #[error("{what} name {name:?} is invalid: it must {rule}")]
    InvalidName {
        /// `environment`, `variable` or `client`.
        what: &'static str,
        /// The refused name.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A value is an object or array.
    #[error("value of {name:?} must be a string, number, boolean or null, not an object or array")]
    InvalidValue {
        /// The variable.
        name: String,
    },
    /// A value is too long.
    #[error("value of {name:?} is {bytes} bytes of JSON; the limit is {limit}")]
    ValueTooLarge {
        /// The variable.
        name: String,
        /// Its size.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The connection has no registration in the environment.
    #[error("not registered in environment {environment:?}: call createEnvironment first")]
    NotRegistered {
        /// The environment.
        environment: String,
    },
    /// A count limit would be exceeded.
    #[error(
        "{what} limit of {limit} reached; remove data or unregister first (nothing was changed)"
    )]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The variable is outside the connection's write allow-list.
    #[error("writing {environment}.{name} is not allowed for this origin")]
    Forbidden {
        /// The environment.
        environment: String,
        /// The variable.
        name: String,
    },
    /// The request is well-formed JSON but its content does not fit the action.
    #[error("{0}")]
    BadRequest(String),
}

impl StoreError {
    /// The protocol's error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::InvalidName { .. } => ErrorCode::InvalidName,
            StoreError::InvalidValue { .. } => ErrorCode::InvalidValue,
            StoreError::ValueTooLarge { .. } => ErrorCode::ValueTooLarge,
            StoreError::NotRegistered { .. } => ErrorCode::NotRegistered,
            StoreError::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            StoreError::Forbidden { .. } => ErrorCode::Forbidden,
            StoreError::BadRequest(_) => ErrorCode::BadRequest,
        }
    }
}

/// What happened to an environment (one event).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A variable was set (also to its old value).
    Set {
        /// The variable.
        name: String,
        /// Its new value.
        value: Value,
    },
    /// A variable was removed.
    Removed {
        /// The variable.
        name: String,
    },
    /// Every variable was removed.
    Cleaned,
    /// The environment was removed.
    EnvRemoved,
}

impl Change {
    /// The variable concerned, for per-variable changes.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Change::Set { name, .. } | Change::Removed { name } => Some(name),
            Change::Cleaned | Change::EnvRemoved => None,
        }
    }
}

/// One committed change with its position in the environment's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Sequence number within the epoch (the first event is 1).
    pub seq: u64,
    /// The connection that made the change (never notified of it).
    pub writer: ConnId,
    /// The change.
    pub change: Change,
}

/// A connection to notify of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// The connection.
    pub conn: ConnId,
    /// Whether one of its matching subscriptions asked for `Values`.
    pub values: bool,
}

/// An event and who must receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The environment.
    pub environment: String,
    /// Its epoch.
    pub epoch: u64,
    /// The event.
    pub event: Event,
    /// Subscribed connections other than the writer (read filters not applied yet).
    pub recipients: Vec<Recipient>,
}

/// Position of an environment after an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The environment.
    pub environment: String,
    /// Its epoch.
    pub epoch: u64,
    /// Its seq (the last event's, 0 before any).
    pub seq: u64,
}

/// The result of a successful write: the events in commit order and where
/// each environment concerned now stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    /// Events in commit order.
    pub notices: Vec<Notice>,
    /// One head per environment concerned, in request order.
    pub heads: Vec<Head>,
}

/// What a reconnecting client can get for an environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay<'a> {
    /// Every event after the client's seq, in order (possibly none).
    Events(Vec<&'a Event>),
    /// History is gone, the epoch changed or the position is unknown: send the state.
    Snapshot,
    /// The environment does not exist.
    Missing,
}

/// One variable and who created it (for per-connection counts).
#[derive(Debug, Clone, PartialEq)]
struct Var {
    value: Value,
    creator: ConnId,
}

/// One environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Changes when the environment is (re)created and at daemon start.
    pub epoch: u64,
    /// The last event's sequence number in this epoch.
    pub seq: u64,
    vars: BTreeMap<String, Var>,
    registrations: BTreeSet<ConnId>,
    history: VecDeque<Event>,
}

impl Environment {
    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when it has no variables.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// One variable's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name).map(|v| &v.value)
    }

    /// The variables `filter` lets the reader see, as `{name: value}` (sorted by name).
    pub fn values(&self, environment: &str, filter: &VarFilter) -> Map<String, Value> {
        let all = filter.allows_all();
        self.vars
            .iter()
            .filter(|(name, _)| all || filter.allows(environment, name))
            .map(|(name, var)| (name.clone(), var.value.clone()))
            .collect()
    }

    /// Connections registered here.
    pub fn registrations(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.registrations.iter().copied()
    }

    /// The retained events, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Event> + '_ {
        self.history.iter()
    }
}

/// A connection's registration in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// The `clientName` it registered with.
    pub client_name: String,
    /// Subscribed variable (or `*`) -> whether events carry `Values`.
    pub subscriptions: BTreeMap<String, bool>,
}

/// What the store keeps per open connection.
#[derive(Debug, Clone, Default)]
struct ConnState {
    registrations: BTreeMap<String, Registration>,
    /// Live variables this connection created (per-connection limit).
    vars_created: usize,
}

/// The whole context of one OS user.
#[derive(Debug, Clone)]
pub struct Store {
    limits: Limits,
    envs: BTreeMap<String, Environment>,
    conns: ConnMap<ConnState>,
    total_vars: usize,
    /// Random per daemon start, so epochs of a restarted daemon differ.
    epoch_base: u64,
    epochs_issued: u64,
}

/// One write of a bulk operation: environment, variable, value.
pub type Write = (String, String, Value);

impl Store {
    /// An empty store. `epoch_base` should be random per daemon start (the
    /// hub draws it); epochs are `epoch_base + n` and stay below 2^53 so
    /// JavaScript reads them exactly.
    pub fn new(limits: Limits, epoch_base: u64) -> Store {
        Store {
            limits,
            envs: BTreeMap::new(),
            conns: ConnMap::default(),
            total_vars: 0,
            epoch_base: epoch_base % (1 << 52),
            epochs_issued: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Puts new limits in force (live reload). Nothing stored is removed for
    /// being over a lowered count limit (data goes only when a client asks):
    /// later writes are refused instead. Replay buffers are shortened at once
    /// to the new `replay_events`, oldest events first, as a push would.
    pub fn set_limits(&mut self, limits: Limits) {
        for e in self.envs.values_mut() {
            while e.history.len() > limits.replay_events {
                e.history.pop_front();
            }
        }
        self.limits = limits;
    }

    /// Start tracking a connection (idempotent).
    pub fn connect(&mut self, conn: ConnId) {
        self.conns.entry(conn).or_default();
    }

    /// The connection ended: drop its registrations and subscriptions, never data.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(state) = self.conns.remove(&conn) {
            for env in state.registrations.keys() {
                if let Some(e) = self.envs.get_mut(env) {
                    e.registrations.remove(&conn);
                }
            }
        }
    }

    /// One environment.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.envs.get(name)
    }

    /// Every environment, by name.
    pub fn environments(&self) -> impl Iterator<Item = (&str, &Environment)> + '_ {
        self.envs.iter().map(|(n, e)| (n.as_str(), e))
    }

    /// Variables in the whole store.
    pub fn total_variables(&self) -> usize {
        self.total_vars
    }

    /// Live variables created by `conn`.
    pub fn variables_created_by(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.vars_created)
    }

    /// `conn`'s registration in `env`.
    pub fn registration(&self, conn: ConnId, env: &str) -> Option<&Registration> {
        self.conns.get(&conn)?.registrations.get(env)
    }

    /// Environments `conn` is registered in.
    pub fn registrations_of(
        &self,
        conn: ConnId,
    ) -> impl Iterator<Item = (&str, &Registration)> + '_ {
        self.conns
            .get(&conn)
            .into_iter()
            .flat_map(|c| c.registrations.iter().map(|(n, r)| (n.as_str(), r)))
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs_issued += 1;
        self.epoch_base + self.epochs_issued
    }

    fn head(&self, env: &str) -> Option<Head> {
        self.envs.get(env).map(|e| Head {
            environment: env.to_string(),
            epoch: e.epoch,
            seq: e.seq,
        })
    }

    /// Checks that `conn` could register in all of `envs` (names valid, count
    /// limits), without changing anything. `resume` uses it to be all-or-nothing.
    pub fn check_register(&self, conn: ConnId, envs: &[&str]) -> Result<(), StoreError> {
        let state = self.conns.get(&conn);
        let mut new_regs = BTreeSet::new();
        let mut new_envs = BTreeSet::new();
        for env in envs {
            names::check_environment_name(env).map_err(|rule| StoreError::InvalidName {
                what: "environment",
                name: env.to_string(),
                rule,
            })?;
            if !state.is_some_and(|s| s.registrations.contains_key(*env)) {
                new_regs.insert(*env);
            }
            if !self.envs.contains_key(*env) {
                new_envs.insert(*env);
            }
        }
        let regs = state.map_or(0, |s| s.registrations.len());
        if !new_regs.is_empty()
            && regs + new_regs.len() > self.limits.max_environments_per_connection
        {
            return Err(StoreError::LimitExceeded {
                what: "environments per connection",
                limit: self.limits.max_environments_per_connection,
            });
        }
        if !new_envs.is_empty() && self.envs.len() + new_envs.len() > self.limits.max_environments {
            return Err(StoreError::LimitExceeded {
                what: "environments",
                limit: self.limits.max_environments,
            });
        }
        Ok(())
    }

    /// `createEnvironment`: register `conn` in `env` (creating it with a new
    /// epoch when absent). Registering again only updates the client name.
    /// Returns the head and whether the environment was created.
    pub fn register(
        &mut self,
        conn: ConnId,
        env: &str,
        client_name: &str,
    ) -> Result<(Head, bool), StoreError> {
        names::check_client_name(client_name).map_err(|rule| StoreError::InvalidName {
            what: "client",
            name: client_name.to_string(),
            rule,
        })?;
        self.check_register(conn, &[env])?;
        let created = !self.envs.contains_key(env);
        if created {
            let epoch = self.next_epoch();
            self.envs.insert(
                env.to_string(),
                Environment {
                    epoch,
                    seq: 0,
                    vars: BTreeMap::new(),
                    registrations: BTreeSet::new(),
                    history: VecDeque::new(),
                },
            );
        }
        let state = self.conns.entry(conn).or_default();
        state
            .registrations
            .entry(env.to_string())
            .or_default()
            .client_name = client_name.to_string();
        if let Some(e) = self.envs.get_mut(env) {
            e.registrations.insert(conn);
        }
        let head = self.head(env).ok_or_else(|| StoreError::NotRegistered {
            environment: env.to_string(),
        })?;
        Ok((head, created))
    }

    /// The environment `conn` is registered in, or the error to answer.
    fn registered(&self, conn: ConnId, env: &str) -> Result<&Environment, StoreError> {
        names::check_environment_name(env).map_err(|rule| StoreError::InvalidName {
            what: "environment",
            name: env.to_string(),
            rule,
        })?;
        let registered = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.registrations.contains_key(env));
        match self.envs.get(env) {
            Some(e) if registered => Ok(e),
            _ => Err(StoreError::NotRegistered {
                environment: env.to_string(),
            }),
        }
    }

    /// `getEnvironment`: the environment, if `conn` is registered in it.
    pub fn read(&self, conn: ConnId, env: &str) -> Result<&Environment, StoreError> {
        self.registered(conn, env)
    }

    /// Refuses when `write` does not allow every current variable of `env`
    /// (cleaning removes them all).
    fn check_write_all(&self, env: &str, write: &VarFilter) -> Result<(), StoreError> {
        if write.allows_all() {
            return Ok(());
        }
        if let Some(e) = self.envs.get(env) {
            if let Some(name) = e.vars.keys().find(|n| !write.allows(env, n)) {
                return Err(StoreError::Forbidden {
                    environment: env.to_string(),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// `removeEnvironment`: drop `conn`'s registration and subscriptions in
    /// `env`. With `cleanup`, the variables are cleared (`EnvironmentCleaned`)
    /// when other connections stay registered, and the environment is removed
    /// (`EnvironmentRemoved`) when this was the last registration.
    pub fn unregister(
        &mut self,
        conn: ConnId,
        env: &str,
        cleanup: bool,
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        self.registered(conn, env)?;
        if cleanup {
            self.check_write_all(env, write)?;
        }
        if let Some(state) = self.conns.get_mut(&conn) {
            state.registrations.remove(env);
        }
        let mut commit = Commit::default();
        let Some(e) = self.envs.get_mut(env) else {
            return Ok(commit);
        };
        e.registrations.remove(&conn);
        if cleanup {
            if e.registrations.is_empty() {
                let notice = self.emit(env, conn, Change::EnvRemoved);
                commit.heads.push(Head {
                    environment: env.to_string(),
                    epoch: notice.epoch,
                    seq: notice.event.seq,
                });
                commit.notices.push(notice);
                self.drop_vars(env);
                self.envs.remove(env);
                return Ok(commit);
            }
            self.drop_vars(env);
            commit.notices.push(self.emit(env, conn, Change::Cleaned));
        }
        commit.heads.extend(self.head(env));
        Ok(commit)
    }

    /// Removes every variable of `env`, keeping counts right (no event).
    fn drop_vars(&mut self, env: &str) {
        let Some(e) = self.envs.get_mut(env) else {
            return;
        };
        let vars = std::mem::take(&mut e.vars);
        self.total_vars -= vars.len();
        for var in vars.values() {
            if let Some(c) = self.conns.get_mut(&var.creator) {
                c.vars_created = c.vars_created.saturating_sub(1);
            }
        }
    }

    /// Writes, all or nothing: `setContextVariable`, `setContextJSON` and
    /// `setAllJSON`. With `clear`, each named environment is cleared once
    /// before any write (one `EnvironmentCleaned` each, in request order);
    /// then one `ContextChanged` per write, in request order.
    ///
    /// `environments` names environments concerned even without a write
    /// (an empty `setAllJSON` entry with `clearData`); the environments of
    /// `writes` are added in order.
    pub fn write(
        &mut self,
        conn: ConnId,
        environments: &[String],
        writes: Vec<Write>,
        clear: bool,
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        self.write_inner(conn, environments, writes, &|_| clear, write)
    }

    /// [`Store::write`] that clears only the environments named in `clear`
    /// (a v3 `CLEAR_DATA=1` item names one environment of a bulk write).
    /// Every environment in `clear` must also be in `environments`.
    pub fn write_clearing(
        &mut self,
        conn: ConnId,
        environments: &[String],
        writes: Vec<Write>,
        clear: &[String],
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        self.write_inner(
            conn,
            environments,
            writes,
            &|env| clear.iter().any(|c| c == env),
            write,
        )
    }

    fn write_inner(
        &mut self,
        conn: ConnId,
        environments: &[String],
        writes: Vec<Write>,
        clear: &dyn Fn(&str) -> bool,
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        // Validate everything before changing anything.
        let mut order: Vec<String> = Vec::new();
        for env in environments {
            self.registered(conn, env)?;
            if !order.contains(env) {
                order.push(env.clone());
            }
        }
        for (env, name, value) in &writes {
            self.registered(conn, env)?;
            names::check_variable_name(name).map_err(|rule| StoreError::InvalidName {
                what: "variable",
                name: name.clone(),
                rule,
            })?;
            let bytes = names::scalar_size(value)
                .ok_or_else(|| StoreError::InvalidValue { name: name.clone() })?;
            if bytes > self.limits.max_value_bytes {
                return Err(StoreError::ValueTooLarge {
                    name: name.clone(),
                    bytes,
                    limit: self.limits.max_value_bytes,
                });
            }
            if !write.allows(env, name) {
                return Err(StoreError::Forbidden {
                    environment: env.clone(),
                    name: name.clone(),
                });
            }
            if !order.contains(env) {
                order.push(env.clone());
            }
        }
        for env in order.iter().filter(|e| clear(e)) {
            self.check_write_all(env, write)?;
        }
        self.check_counts(conn, &writes, &order, clear)?;

        // Apply.
        let mut commit = Commit::default();
        for env in order.iter().filter(|e| clear(e)) {
            self.drop_vars(env);
            commit.notices.push(self.emit(env, conn, Change::Cleaned));
        }
        for (env, name, value) in writes.iter() {
            let Some(e) = self.envs.get_mut(env) else {
                continue;
            };
            match e.vars.get_mut(name) {
                Some(var) => var.value = value.clone(),
                None => {
                    e.vars.insert(
                        name.clone(),
                        Var {
                            value: value.clone(),
                            creator: conn,
                        },
                    );
                    self.total_vars += 1;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.vars_created += 1;
                    }
                }
            }
            commit.notices.push(self.emit(
                env,
                conn,
                Change::Set {
                    name: name.clone(),
                    value: value.clone(),
                },
            ));
        }
        commit.heads = order.iter().filter_map(|env| self.head(env)).collect();
        Ok(commit)
    }

    /// Count limits for a write: per environment, in total and per connection.
    /// A count may stay above a (lowered) limit, but a write never raises it
    /// past one.
    fn check_counts(
        &self,
        conn: ConnId,
        writes: &[Write],
        order: &[String],
        clear: &dyn Fn(&str) -> bool,
    ) -> Result<(), StoreError> {
        let mut total = self.total_vars as i64;
        let mut own = self.variables_created_by(conn) as i64;
        let (mut total_up, mut own_up) = (false, false);
        for env in order {
            let Some(e) = self.envs.get(env) else {
                continue;
            };
            let mut names: BTreeSet<&str> = if clear(env) {
                total -= e.vars.len() as i64;
                own -= e.vars.values().filter(|v| v.creator == conn).count() as i64;
                BTreeSet::new()
            } else {
                e.vars.keys().map(String::as_str).collect()
            };
            for (_, name, _) in writes.iter().filter(|(en, _, _)| en == env) {
                if names.insert(name) {
                    total += 1;
                    own += 1;
                    total_up = true;
                    own_up = true;
                }
            }
            if names.len() > e.vars.len() && names.len() > self.limits.max_variables_per_environment
            {
                return Err(StoreError::LimitExceeded {
                    what: "variables per environment",
                    limit: self.limits.max_variables_per_environment,
                });
            }
        }
        if total_up && total > self.total_vars as i64 && total > self.limits.max_variables as i64 {
            return Err(StoreError::LimitExceeded {
                what: "variables",
                limit: self.limits.max_variables,
            });
        }
        let own_before = self.variables_created_by(conn) as i64;
        if own_up && own > own_before && own > self.limits.max_variables_per_connection as i64 {
            return Err(StoreError::LimitExceeded {
                what: "variables per connection",
                limit: self.limits.max_variables_per_connection,
            });
        }
        Ok(())
    }

    /// `removeItemFromEnvironment`: a `VarRemoved` event when the variable
    /// existed; nothing (and no event) when it did not.
    pub fn remove_variable(
        &mut self,
        conn: ConnId,
        env: &str,
        name: &str,
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        self.registered(conn, env)?;
        names::check_variable_name(name).map_err(|rule| StoreError::InvalidName {
            what: "variable",
            name: name.to_string(),
            rule,
        })?;
        if !write.allows(env, name) {
            return Err(StoreError::Forbidden {
                environment: env.to_string(),
                name: name.to_string(),
            });
        }
        let mut commit = Commit::default();
        let removed = self.envs.get_mut(env).and_then(|e| e.vars.remove(name));
        if let Some(var) = removed {
            self.total_vars -= 1;
            if let Some(c) = self.conns.get_mut(&var.creator) {
                c.vars_created = c.vars_created.saturating_sub(1);
            }
            commit.notices.push(self.emit(
                env,
                conn,
                Change::Removed {
                    name: name.to_string(),
                },
            ));
        }
        commit.heads.extend(self.head(env));
        Ok(commit)
    }

    /// `cleanEnvironment`: remove every variable; always an `EnvironmentCleaned` event.
    pub fn clean(
        &mut self,
        conn: ConnId,
        env: &str,
        write: &VarFilter,
    ) -> Result<Commit, StoreError> {
        self.registered(conn, env)?;
        self.check_write_all(env, write)?;
        self.drop_vars(env);
        let notice = self.emit(env, conn, Change::Cleaned);
        Ok(Commit {
            notices: vec![notice],
            heads: self.head(env).into_iter().collect(),
        })
    }

    /// `setNotificationsOn`: subscribe to `name` (or `*`); subscribing again
    /// updates the `values` option.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        env: &str,
        name: &str,
        values: bool,
    ) -> Result<(), StoreError> {
        if let Some(reg) = self.subscription_target(conn, env, name)? {
            reg.subscriptions.insert(name.to_string(), values);
        }
        Ok(())
    }

    /// `setNotificationsOff`: drop the subscription to `name`; `*` drops every
    /// subscription in the environment.
    pub fn unsubscribe(&mut self, conn: ConnId, env: &str, name: &str) -> Result<(), StoreError> {
        if let Some(reg) = self.subscription_target(conn, env, name)? {
            if name == ALL_VARIABLES {
                reg.subscriptions.clear();
            } else {
                reg.subscriptions.remove(name);
            }
        }
        Ok(())
    }

    /// The registration a (un)subscribe of `name` (a variable or `*`) applies
    /// to, after checking the registration and the name.
    fn subscription_target(
        &mut self,
        conn: ConnId,
        env: &str,
        name: &str,
    ) -> Result<Option<&mut Registration>, StoreError> {
        self.registered(conn, env)?;
        if name != ALL_VARIABLES {
            names::check_variable_name(name).map_err(|rule| StoreError::InvalidName {
                what: "variable",
                name: name.to_string(),
                rule,
            })?;
        }
        Ok(self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.registrations.get_mut(env)))
    }

    /// Whether `conn` is interested in `change` of `env`: `Some(values)` when
    /// one of its subscriptions matches (`values` = one asked for `Values`).
    /// Environment-wide changes interest every connection with a subscription.
    pub fn interest(&self, conn: ConnId, env: &str, change: &Change) -> Option<bool> {
        let reg = self.conns.get(&conn)?.registrations.get(env)?;
        match change.variable() {
            Some(name) => {
                let exact = reg.subscriptions.get(name).copied();
                let all = reg.subscriptions.get(ALL_VARIABLES).copied();
                match (exact, all) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(false) || b.unwrap_or(false)),
                }
            }
            None => {
                if reg.subscriptions.is_empty() {
                    None
                } else {
                    Some(reg.subscriptions.values().any(|v| *v))
                }
            }
        }
    }

    /// Appends an event to `env`'s history (bounded) and finds its recipients.
    fn emit(&mut self, env: &str, writer: ConnId, change: Change) -> Notice {
        let (epoch, seq, regs) = match self.envs.get_mut(env) {
            Some(e) => {
                e.seq += 1;
                (
                    e.epoch,
                    e.seq,
                    e.registrations.iter().copied().collect::<Vec<_>>(),
                )
            }
            None => (0, 0, Vec::new()),
        };
        let recipients = regs
            .into_iter()
            .filter(|c| *c != writer)
            .filter_map(|c| {
                self.interest(c, env, &change)
                    .map(|values| Recipient { conn: c, values })
            })
            .collect();
        let event = Event {
            seq,
            writer,
            change,
        };
        if let Some(e) = self.envs.get_mut(env) {
            if self.limits.replay_events > 0 {
                if e.history.len() >= self.limits.replay_events {
                    e.history.pop_front();
                }
                e.history.push_back(event.clone());
            }
        }
        Notice {
            environment: env.to_string(),
            epoch,
            event,
            recipients,
        }
    }

    /// What a client that last saw `(epoch, seq)` of `env` has missed.
    pub fn replay(&self, env: &str, epoch: Option<u64>, seq: Option<u64>) -> Replay<'_> {
        let Some(e) = self.envs.get(env) else {
            return Replay::Missing;
        };
        let (Some(epoch), Some(seq)) = (epoch, seq) else {
            return Replay::Snapshot;
        };
        if epoch != e.epoch || seq > e.seq {
            return Replay::Snapshot;
        }
        if seq == e.seq {
            return Replay::Events(Vec::new());
        }
        match e.history.front() {
            Some(first) if first.seq <= seq + 1 => {
                Replay::Events(e.history.iter().filter(|ev| ev.seq > seq).collect())
            }
            _ => Replay::Snapshot,
        }
    }
}

#[cfg(test)]
mod tests;
