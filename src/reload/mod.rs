//! Live configuration: re-reads `config.xml`, validates the whole file with
//! the ordinary config parser, and puts what can change without a restart in
//! force at once; the running configuration stays when the file is invalid.
//!
//! One entry point, [`Reloader::reload`], serves every trigger: the folder
//! watcher (`watch`, debounced), SIGHUP on Unix (`main`) and the tray's
//! "Reload configuration" (through `app::Daemon::reload_config`).
//!
//! What a valid new file changes, in this order:
//! 1. the `ServerState` snapshot (origins, `ExtraHostNames`, limits, timers,
//!    `Log-values`, ...): every later handshake and request reads it;
//! 2. the hub's settings (store and rate limits, programs, `GenP2C`, resume
//!    and pickup timers) and, under the hub's lock, every open connection's
//!    grants: an origin that lost access is closed with 1008
//!    `origin-no-longer-allowed`; the others get their new capabilities and
//!    allow-lists for their next request and the next event. Stored data,
//!    registrations and subscriptions are untouched;
//! 3. the log level, when `Log-level` (not `RUST_LOG`) chose it.
//!
//! Step 1 comes before step 2 so a handshake racing the reload is caught by
//! one of them: admitted under the old file but opened after step 2, the
//! connection re-decides its own grants ([`recheck`]).
//!
//! Settings bound at start (`Socket-type`, `Socket-port`, the certificate,
//! `Mode`, `Log-path`, `Filesize`, `MaxFiles`) keep their running values; a
//! change is logged as a WARN that it needs a restart. The TLS certificate is
//! not re-loaded live: the acceptor is built once at start. Per-socket
//! settings fixed when a websocket opens (`ByteSizeReader`, frame and buffer
//! sizes, the outbox size, ping, pong and hello timers) apply to connections
//! opened after the reload.

pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{self, Config, ConfigError, ConfigSource};
use crate::hub::{ConnId, Hub, HubSettings, PeerInfo};
use crate::logging::LevelChange;
use crate::peer::OsUser;
use crate::server::guard::{self, GuardContext, Refusal};
use crate::server::ServerState;

/// Start of the close reason sent with 1008 to a connection whose origin a
/// reload removed (docs/protocol.md, close codes).
pub const ORIGIN_REVOKED: &str = "origin-no-longer-allowed";
/// Start of the close reason sent with 1008 to another OS user's connection
/// after a reload turned `AllowOtherUsers` off.
pub const OTHER_USER_REVOKED: &str = "other-user-no-longer-allowed";

/// Settings read once at start: a change needs a restart. Names as
/// `config::describe` prints them.
const RESTART_ONLY: &[&str] = &[
    "Socket-type",
    "Socket-port",
    "Certificate-path",
    "Key-path",
    "Password",
    "Mode",
    "Log-path",
    "Filesize",
    "MaxFiles",
];

/// `check-config` names that are lists of entries, one line each.
const LISTS: &[&str] = &["Origin", "Program"];

/// What one successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The file that was read.
    pub file: PathBuf,
    /// Changed settings now in force, each `Name = value` or
    /// `Name: +added, -removed` (names as `check-config` prints them).
    pub applied: Vec<String>,
    /// Changed settings that need a restart; their running values stay.
    pub needs_restart: Vec<String>,
    /// Open connections whose capabilities or allow-lists changed.
    pub regranted: usize,
    /// Open connections closed with 1008: id, origin and the close reason.
    pub closed: Vec<(ConnId, Option<String>, String)>,
    /// The parser's warnings about the new file (unknown settings, ...).
    pub warnings: Vec<String>,
}

impl ReloadReport {
    /// The one INFO line logged per reload.
    pub fn summary(&self) -> String {
        let changes = if self.applied.is_empty() {
            "no live setting changed".to_string()
        } else {
            format!("changed {}", self.applied.join("; "))
        };
        format!(
            "configuration reloaded from {}: {changes}; {} connection(s) re-granted, {} closed{}",
            self.file.display(),
            self.regranted,
            self.closed.len(),
            if self.needs_restart.is_empty() {
                String::new()
            } else {
                format!(
                    "; ignored until a restart: {}",
                    self.needs_restart.join(", ")
                )
            }
        )
    }
}

/// Why a reload did not happen. The running configuration stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The daemon runs on the embedded defaults: there is no file to re-read.
    #[error(
        "the daemon runs on the embedded default configuration: there is no config.xml to reload"
    )]
    NoFile,
    /// The file is missing, unreadable or invalid (the error names file,
    /// setting and value).
    #[error("configuration not reloaded, the running configuration stays in force: {0}")]
    Invalid(#[from] ConfigError),
}

/// How many reloads were applied and rejected since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Valid files put in force (including files with no change).
    pub applied: u64,
    /// Files rejected as missing or invalid.
    pub rejected: u64,
}

/// Re-reads and applies the configuration of one running daemon. Cheap to
/// share (`Arc`); every trigger calls [`Reloader::reload`].
pub struct Reloader {
    /// The daemon's shared state, whose configuration is replaced.
    state: Arc<ServerState>,
    /// One reload at a time (watcher, SIGHUP and tray may race). A std
    /// mutex: held for a synchronous read-validate-apply, never across `.await`.
    busy: Mutex<()>,
    /// Reloads applied.
    applied: AtomicU64,
    /// Reloads rejected.
    rejected: AtomicU64,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for the daemon behind `state`.
    pub fn new(state: Arc<ServerState>) -> Arc<Reloader> {
        Arc::new(Reloader {
            state,
            busy: Mutex::new(()),
            applied: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// The file the configuration comes from; `None` on embedded defaults.
    pub fn file(&self) -> Option<PathBuf> {
        match &self.state.config().source {
            ConfigSource::File(p) => Some(p.clone()),
            ConfigSource::Embedded => None,
        }
    }

    /// Reloads applied and rejected so far.
    pub fn stats(&self) -> ReloadStats {
        ReloadStats {
            applied: self.applied.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Re-reads the file, validates it and applies it (see the module docs).
    /// Logs the outcome: one INFO line on success, one ERROR naming file,
    /// setting and value on rejection, a WARN per setting that needs a
    /// restart. Blocking (reads a small file): call it off the async workers.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.state.config();
        let ConfigSource::File(path) = &old.source else {
            tracing::warn!("{}", ReloadError::NoFile);
            return Err(ReloadError::NoFile);
        };
        let loaded = match config::load_file(path) {
            Ok(l) => l,
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let err = ReloadError::Invalid(e);
                tracing::error!("{err}");
                return Err(err);
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("config: {w}");
        }
        let report = self.apply(&old, loaded.config, path.clone(), loaded.warnings);
        self.applied.fetch_add(1, Ordering::Relaxed);
        tracing::info!("{}", report.summary());
        Ok(report)
    }

    fn apply(
        &self,
        old: &Config,
        mut new: Config,
        file: PathBuf,
        warnings: Vec<String>,
    ) -> ReloadReport {
        let mut report = ReloadReport {
            file,
            warnings,
            ..ReloadReport::default()
        };
        for (name, change) in changes(old, &new) {
            if RESTART_ONLY.contains(&name.as_str()) {
                tracing::warn!(
                    "config reload: {name} changed in {} ({change}) but needs a restart to take effect; the running value stays",
                    report.file.display()
                );
                report.needs_restart.push(name);
            } else {
                report.applied.push(change);
            }
        }
        keep_restart_only(old, &mut new);
        if new.log.level != old.log.level
            && crate::logging::set_level(new.log.level) == LevelChange::Fixed
        {
            tracing::warn!(
                "config reload: Log-level changed in {} but the log filter is fixed (RUST_LOG is set): it needs a restart",
                report.file.display()
            );
        }
        let new = Arc::new(new);
        // Before the hub: a handshake from now on sees the new origins.
        self.state.set_config(new.clone());
        let state = &self.state;
        // Every store: in service mode one per OS user, each re-deciding
        // its own user's connections.
        for (_, hub) in state.tenants.all() {
            let settings = live_settings(&hub.settings(), &new);
            let outcome = hub.reconfigure(settings, |peer| {
                regrant(peer, &new, state.port, state.owner_for(Some(&peer.os_user)))
            });
            for (id, origin, reason) in &outcome.closed {
                tracing::info!(conn = id.0, ?origin, %reason, "config reload: closing a connection that lost access");
            }
            report.regranted += outcome.regranted.len();
            report.closed.extend(outcome.closed);
        }
        if let Some(hook) = state.on_reload.get() {
            hook(&new);
        }
        report
    }
}

/// The hub settings of `config`, keeping what is not configuration (host and
/// user name, the platform) from `current`.
fn live_settings(current: &HubSettings, config: &Config) -> HubSettings {
    HubSettings {
        limits: config.limits.clone(),
        resume_token_ttl: config.timers.resume_token_ttl,
        programs: config.programs.clone(),
        gen_p2c: config.gen_p2c.clone(),
        pickup_timeout: config.timers.pickup,
        ..current.clone()
    }
}

/// Puts the running values of the settings bound at start back into `new`,
/// so the snapshot always describes what is really in force.
fn keep_restart_only(old: &Config, new: &mut Config) {
    new.socket_type = old.socket_type;
    new.port = old.port;
    new.tls = old.tls.clone();
    new.mode = old.mode;
    new.log.path = old.log.path.clone();
    new.log.file_size = old.log.file_size;
    new.log.max_files = old.log.max_files;
}

/// The grants an open connection has under `config`, or why it lost access.
/// Native clients (no Origin) never depend on the configuration.
fn regrant(peer: &PeerInfo, config: &Config, port: u16, me: &OsUser) -> Result<PeerInfo, String> {
    let owner = Ok(peer.os_user.clone());
    let cx = GuardContext {
        config,
        port,
        me,
        peer: &owner,
    };
    // The handshake's own decision, so a reload grants exactly what a new
    // connection would get (e.g. data only for another OS user).
    match guard::decide(peer.origin.as_deref(), peer.os_user.clone(), &cx) {
        Ok(a) => Ok(PeerInfo {
            capabilities: a.capabilities,
            read: a.read,
            write: a.write,
            open_url_patterns: a.open_url_patterns,
            ..peer.clone()
        }),
        Err(Refusal::OtherUser { .. } | Refusal::OtherUserNative { .. }) => Err(format!(
            "{OTHER_USER_REVOKED}: AllowOtherUsers was turned off by a configuration reload"
        )),
        Err(_) => Err(format!(
            "{ORIGIN_REVOKED}: the origin was removed from AllowedHosts by a configuration reload"
        )),
    }
}

/// Re-decides the grants of connection `id` against the configuration in
/// force now. The connection task calls it right after opening its session:
/// a reload that ran between its handshake and `Hub::open` did not see it.
pub fn recheck(state: &ServerState, hub: &Hub, id: ConnId) {
    let outcome = hub.regrant(id, |peer| {
        // Read inside the hub's lock: never older than a reload that
        // already re-granted the other connections.
        regrant(
            peer,
            &state.config(),
            state.port,
            state.owner_for(Some(&peer.os_user)),
        )
    });
    for (id, origin, reason) in &outcome.closed {
        tracing::info!(conn = id.0, ?origin, %reason, "config reload: closing a connection that lost access");
    }
}

/// The settings that differ between `old` and `new`, by name, in
/// `check-config` order, each with a short text of the change.
fn changes(old: &Config, new: &Config) -> Vec<(String, String)> {
    let lines = |c: &Config| -> BTreeMap<String, Vec<String>> {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in config::describe(c).lines() {
            if let Some((name, value)) = line.split_once(" = ") {
                by_name
                    .entry(name.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
        by_name
    };
    let (before, after) = (lines(old), lines(new));
    let order: Vec<String> = config::describe(new)
        .lines()
        .chain(config::describe(old).lines())
        .filter_map(|l| l.split_once(" = ").map(|(n, _)| n.to_string()))
        .collect();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let empty = Vec::new();
    for name in order {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let (b, a) = (
            before.get(&name).unwrap_or(&empty),
            after.get(&name).unwrap_or(&empty),
        );
        if b == a {
            continue;
        }
        let text = match (b.as_slice(), a.as_slice()) {
            // Origins and programs are lists even with one entry.
            ([_], [value]) if !LISTS.contains(&name.as_str()) => format!("{name} = {value}"),
            _ => {
                let added = a.iter().filter(|v| !b.contains(v)).map(|v| format!("+{v}"));
                let removed = b.iter().filter(|v| !a.contains(v)).map(|v| format!("-{v}"));
                format!(
                    "{name}: {}",
                    added.chain(removed).collect::<Vec<_>>().join(", ")
                )
            }
        };
        out.push((name, text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Capabilities, OriginEntry, OriginPattern, VarFilter};

    fn entry(origin: &str, capabilities: Capabilities) -> OriginEntry {
        OriginEntry {
            pattern: OriginPattern::parse(origin).unwrap(),
            capabilities,
            read: VarFilter::default(),
            write: VarFilter::default(),
            open_url_patterns: vec![],
            from_bare_host: false,
        }
    }

    fn user(id: &str) -> OsUser {
        OsUser {
            id: id.into(),
            name: id.into(),
        }
    }

    fn peer(origin: Option<&str>, os_user: OsUser) -> PeerInfo {
        PeerInfo {
            os_user,
            origin: origin.map(str::to_string),
            capabilities: Capabilities::DATA_ONLY,
            read: VarFilter::default(),
            write: VarFilter::default(),
            open_url_patterns: vec![],
        }
    }

    #[test]
    fn changes_name_scalars_and_list_entries() {
        let old = Config::embedded();
        let mut new = old.clone();
        new.limits.max_connections = 7;
        new.port = 9000;
        new.origins
            .push(entry("https://crm.example.com", Capabilities::DATA_ONLY));
        let c = changes(&old, &new);
        let names: Vec<&str> = c.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"Socket-port"), "{c:?}");
        assert!(names.contains(&"Origin"), "{c:?}");
        assert!(
            c.iter().any(|(_, t)| t == "Limits/MaxConnections = 7"),
            "{c:?}"
        );
        let origin = &c.iter().find(|(n, _)| n == "Origin").unwrap().1;
        assert!(origin.contains("+https://crm.example.com"), "{origin}");
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let old = Config::embedded();
        let mut new = old.clone();
        new.port = 1;
        new.log.path = Some("/elsewhere".into());
        new.limits.max_connections = 3;
        keep_restart_only(&old, &mut new);
        assert_eq!(new.port, old.port);
        assert_eq!(new.log.path, None);
        assert_eq!(new.limits.max_connections, 3, "live settings are kept");
    }

    #[test]
    fn regrant_follows_the_new_origin_entry_or_revokes() {
        let me = user("uid:1");
        let mut cfg = Config::embedded();
        cfg.origins
            .push(entry("https://crm.example.com", Capabilities::ALL));
        let p = peer(Some("https://crm.example.com"), me.clone());
        let granted = regrant(&p, &cfg, 8443, &me).unwrap();
        assert_eq!(granted.capabilities, Capabilities::ALL);

        let err = regrant(
            &peer(Some("https://gone.example.com"), me.clone()),
            &cfg,
            8443,
            &me,
        )
        .unwrap_err();
        assert!(err.starts_with(ORIGIN_REVOKED), "{err}");

        let native = peer(None, me.clone());
        assert_eq!(
            regrant(&native, &Config::embedded(), 8443, &me)
                .unwrap()
                .capabilities,
            Capabilities::DATA_ONLY
        );

        let other = peer(Some("https://crm.example.com"), user("uid:2"));
        let err = regrant(&other, &cfg, 8443, &me).unwrap_err();
        assert!(err.starts_with(OTHER_USER_REVOKED), "{err}");
        cfg.allow_other_users = true;
        // As at the handshake: another user's page gets data access at most.
        assert_eq!(
            regrant(&other, &cfg, 8443, &me).unwrap().capabilities,
            Capabilities::DATA_ONLY
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        // RFC 6455: at most 123 bytes of reason.
        let me = user("uid:1");
        let err = regrant(
            &peer(Some("https://x.example"), me.clone()),
            &Config::embedded(),
            1,
            &me,
        )
        .unwrap_err();
        assert!(err.len() <= 123, "{} bytes", err.len());
    }
}
