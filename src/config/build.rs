//! The second pass over `config.xml`: the collected setting texts become
//! typed values on top of `Config::embedded()`, and the rules that span
//! several settings are checked (WSS needs a certificate, a frame or value
//! never larger than a message, per-connection limits within their totals,
//! `Origins` entries winning over `AllowedHosts`).

use std::path::PathBuf;

use super::error::ConfigError;
use super::model::*;
use super::origin::OriginPattern;
use super::parse::{Given, Parser};
use super::values::{self, Parsed};

impl Parser {
    /// Parse one collected setting with `parse`, naming it in the error.
    fn typed<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Parsed<T>,
    ) -> Result<Option<(T, Given)>, ConfigError> {
        match self.settings.get(key) {
            None => Ok(None),
            Some(g) => match parse(&g.value) {
                Ok(v) => Ok(Some((v, g.clone()))),
                Err(expected) => Err(self.invalid(&g.name, &g.value, expected, g.line)),
            },
        }
    }

    /// A path setting; empty means unset. Relative paths resolve against the
    /// folder of the config file.
    fn path(&self, key: &str) -> Option<PathBuf> {
        let g = self.settings.get(key)?;
        let t = g.value.trim();
        if t.is_empty() {
            return None;
        }
        let p = PathBuf::from(t);
        Some(match (&self.base_dir, p.is_relative()) {
            (Some(base), true) => base.join(p),
            _ => p,
        })
    }

    /// Turn the collected settings into a checked `Config` read from `source`.
    pub(super) fn build(&mut self, source: ConfigSource) -> Result<Config, ConfigError> {
        let mut cfg = Config::embedded();
        cfg.source = source;
        if let Some((v, _)) = self.typed("Socket-type", values::socket_type)? {
            cfg.socket_type = v;
        }
        if let Some((v, _)) = self.typed("Socket-port", values::port)? {
            cfg.port = v;
        }
        self.build_tls(&mut cfg)?;
        self.build_log(&mut cfg)?;
        self.build_limits(&mut cfg)?;
        self.build_timers(&mut cfg)?;
        self.build_origins(&mut cfg)?;
        cfg.programs = std::mem::take(&mut self.programs)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if let Some(g) = self.gen_p2c.take() {
            cfg.gen_p2c = g;
        }
        if let Some(r) = self.rate_limits.take() {
            cfg.limits.rate = r;
        }
        if let Some(g) = self.settings.get("ExtraHostNames").cloned() {
            for item in values::list(&g.value) {
                let host = values::host_name(&item)
                    .map_err(|e| self.invalid(&g.name, &item, e, g.line))?;
                if !cfg.extra_host_names.contains(&host) {
                    cfg.extra_host_names.push(host);
                }
            }
        }
        if let Some((v, g)) = self.typed("AllowOtherUsers", values::boolean)? {
            cfg.allow_other_users = v;
            if v {
                self.warn(format!(
                    "AllowOtherUsers = true (line {}): other OS users on this machine may \
                     connect and read or change this user's context; use it only on a \
                     single-user machine or with Mode = service",
                    g.line
                ));
            }
        }
        if let Some((v, _)) = self.typed("Mode", values::mode)? {
            cfg.mode = v;
        }
        if let Some(p) = self.path("AgentSocket") {
            cfg.service.agent_socket = p;
        }
        if let Some(g) = self.settings.get("ServiceUser") {
            let name = g.value.trim();
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(self.invalid(
                    &g.name,
                    &g.value,
                    "an account name without spaces or slashes".into(),
                    g.line,
                ));
            }
            cfg.service.service_user = name.to_string();
        }
        Ok(cfg)
    }

    fn build_tls(&mut self, cfg: &mut Config) -> Result<(), ConfigError> {
        let cert = self.path("Certificate-path");
        let key = self.path("Key-path");
        let password = self
            .settings
            .get("Password")
            .map(|g| g.value.clone())
            .unwrap_or_default();
        match cfg.socket_type {
            SocketType::Ws => {
                let ignored: Vec<&str> = [
                    ("Certificate-path", cert.is_some()),
                    ("Key-path", key.is_some()),
                    ("Password", !password.is_empty()),
                ]
                .into_iter()
                .filter_map(|(n, set)| set.then_some(n))
                .collect();
                if !ignored.is_empty() {
                    self.warn(format!(
                        "{} set but Socket-type is WS: ignored (set Socket-type to WSS to use a certificate)",
                        ignored.join(", ")
                    ));
                }
            }
            SocketType::Wss => {
                let Some(certificate_path) = cert else {
                    let (value, line) = self
                        .settings
                        .get("Socket-type")
                        .map_or((String::new(), 0), |g| (g.value.clone(), g.line));
                    return Err(self.invalid(
                        "Socket-type",
                        &value,
                        "Certificate-path to be set as well: a .pfx/.p12 file (with Password) \
                         or a PEM file (with Key-path when the key is in a separate file)"
                            .into(),
                        line,
                    ));
                };
                let ext = certificate_path
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                let pkcs12 = ext == "pfx" || ext == "p12";
                if !password.is_empty() && !pkcs12 {
                    self.warn(
                        "Password is set but Certificate-path is not a .pfx/.p12 file: \
                         the password is only used to open a .pfx/.p12 and is ignored"
                            .into(),
                    );
                }
                if key.is_some() && pkcs12 {
                    self.warn(
                        "Key-path is set but Certificate-path is a .pfx/.p12 file, which holds \
                         the key itself: Key-path is ignored"
                            .into(),
                    );
                }
                cfg.tls = Some(TlsConfig {
                    certificate_path,
                    key_path: key,
                    password: Secret(password),
                });
            }
        }
        Ok(())
    }

    fn build_log(&mut self, cfg: &mut Config) -> Result<(), ConfigError> {
        if let Some((v, _)) = self.typed("Log-level", values::log_level)? {
            cfg.log.level = v;
        }
        cfg.log.path = self.path("Log-path");
        if let Some((v, _)) = self.typed("Filesize", values::size)? {
            cfg.log.file_size = v;
        }
        if let Some((v, _)) = self.typed("MaxFiles", values::whole_number)? {
            cfg.log.max_files = v;
        }
        if let Some((v, g)) = self.typed("Log-values", values::boolean)? {
            cfg.log.log_values = v;
            if v {
                self.warn(format!(
                    "Log-values = true (line {}): context values, which are customer data, \
                     will be written to the logs",
                    g.line
                ));
            }
        }
        Ok(())
    }

    fn build_limits(&mut self, cfg: &mut Config) -> Result<(), ConfigError> {
        let l = &mut cfg.limits;
        if let Some((v, _)) = self.typed("ByteSizeReader", values::size_usize)? {
            l.max_message_bytes = v;
        }
        let frame = self.typed("Limits/MaxFrameBytes", values::size_usize)?;
        let value = self.typed("Limits/MaxValueBytes", values::size_usize)?;
        for (key, field) in [
            ("Limits/ReadBufferBytes", &mut l.read_buffer_bytes),
            ("Limits/WriteBufferBytes", &mut l.write_buffer_bytes),
        ] {
            if let Some((v, _)) = self.typed(key, values::size_usize)? {
                *field = v;
            }
        }
        for (key, field) in [
            ("Limits/OutboxMessages", &mut l.outbox_messages),
            ("Limits/MaxConnections", &mut l.max_connections),
            (
                "Limits/MaxConnectionsPerUser",
                &mut l.max_connections_per_user,
            ),
            ("Limits/MaxEnvironments", &mut l.max_environments),
            (
                "Limits/MaxEnvironmentsPerConnection",
                &mut l.max_environments_per_connection,
            ),
            ("Limits/MaxVariables", &mut l.max_variables),
            (
                "Limits/MaxVariablesPerConnection",
                &mut l.max_variables_per_connection,
            ),
            (
                "Limits/MaxVariablesPerEnvironment",
                &mut l.max_variables_per_environment,
            ),
            ("Limits/ReplayEvents", &mut l.replay_events),
        ] {
            if let Some((v, _)) = self.typed(key, values::count)? {
                *field = v;
            }
        }
        // A frame or a value larger than a whole message could never arrive.
        // Unset, they follow the message size so a small legacy ByteSizeReader
        // keeps working.
        let message_name = self
            .settings
            .get("ByteSizeReader")
            .map_or("ByteSizeReader".to_string(), |g| g.name.clone());
        let message = l.max_message_bytes;
        let over_message = |g: &Given| {
            self.invalid(
                &g.name,
                &g.value,
                format!(
                    "at most {message_name} ({})",
                    values::size_text(message as u64)
                ),
                g.line,
            )
        };
        match frame {
            None => l.max_frame_bytes = message,
            Some((v, g)) if v > message => return Err(over_message(&g)),
            Some((v, _)) => l.max_frame_bytes = v,
        }
        match value {
            None => l.max_value_bytes = l.max_value_bytes.min(message),
            Some((v, g)) if v > message => return Err(over_message(&g)),
            Some((v, _)) => l.max_value_bytes = v,
        }
        let l = cfg.limits.clone();
        for (part, part_v, total, total_v) in [
            (
                "MaxConnectionsPerUser",
                l.max_connections_per_user,
                "MaxConnections",
                l.max_connections,
            ),
            (
                "MaxEnvironmentsPerConnection",
                l.max_environments_per_connection,
                "MaxEnvironments",
                l.max_environments,
            ),
            (
                "MaxVariablesPerConnection",
                l.max_variables_per_connection,
                "MaxVariables",
                l.max_variables,
            ),
            (
                "MaxVariablesPerEnvironment",
                l.max_variables_per_environment,
                "MaxVariables",
                l.max_variables,
            ),
        ] {
            if part_v > total_v {
                let part_key = format!("Limits/{part}");
                let total_key = format!("Limits/{total}");
                // Blame the setting that is in the file: when only the total
                // was lowered, the part still has its default.
                return Err(match self.settings.get(&part_key) {
                    Some(g) => self.invalid(
                        &part_key,
                        &g.value,
                        format!("at most {total_key} ({total_v}): a part cannot exceed the total"),
                        g.line,
                    ),
                    None => {
                        let (value, line) = self
                            .settings
                            .get(&total_key)
                            .map_or((total_v.to_string(), 0), |g| (g.value.clone(), g.line));
                        self.invalid(
                            &total_key,
                            &value,
                            format!(
                                "at least {part_key} ({part_v}, its default): lower {part_key} too"
                            ),
                            line,
                        )
                    }
                });
            }
        }
        Ok(())
    }

    fn build_timers(&mut self, cfg: &mut Config) -> Result<(), ConfigError> {
        let t = &mut cfg.timers;
        for (key, field, zero_ok) in [
            ("Timers/HandshakeTimeout", &mut t.handshake, false),
            ("Timers/IdleTimeout", &mut t.idle, false),
            ("Timers/PingInterval", &mut t.ping_interval, false),
            ("Timers/PongTimeout", &mut t.pong_timeout, false),
            ("Timers/HelloTimeout", &mut t.hello, true),
            ("Timers/ResumeTokenTtl", &mut t.resume_token_ttl, false),
            ("Timers/ShutdownGrace", &mut t.shutdown_grace, false),
            ("Timers/PickupTimeout", &mut t.pickup, false),
            (
                "Timers/ConfigReloadDebounce",
                &mut t.config_reload_debounce,
                false,
            ),
            ("Timers/AgentActionTimeout", &mut t.agent_action, false),
            ("Timers/AgentRestartDelay", &mut t.agent_restart, false),
        ] {
            if let Some((v, g)) = self.typed(key, values::duration)? {
                if v.is_zero() && !zero_ok {
                    return Err(self.invalid(
                        &g.name,
                        &g.value,
                        "a duration greater than zero, with a unit: ms, s, m or h".into(),
                        g.line,
                    ));
                }
                *field = v;
            }
        }
        Ok(())
    }

    /// `Origins` entries first (they win over the same origin in
    /// `AllowedHosts`), then `AllowedHosts` as data-only entries; exact
    /// origins before wildcards, so `Config::origin_entry` (first match)
    /// prefers the entry written for exactly that origin.
    fn build_origins(&mut self, cfg: &mut Config) -> Result<(), ConfigError> {
        let mut all: Vec<OriginEntry> = std::mem::take(&mut self.origins)
            .into_iter()
            .map(|o| o.entry)
            .collect();
        if let Some(g) = self.settings.get("AllowedHosts").cloned() {
            for item in values::list(&g.value) {
                for entry in self.allowed_host(&item, &g)? {
                    if !all.iter().any(|e| e.pattern == entry.pattern) {
                        all.push(entry);
                    }
                }
            }
        }
        let (exact, wild): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|e| !e.pattern.is_wildcard());
        cfg.origins = exact.into_iter().chain(wild).collect();
        Ok(())
    }

    /// One `AllowedHosts` entry: an origin, or a legacy bare host name that
    /// stands for http and https.
    fn allowed_host(&mut self, item: &str, g: &Given) -> Result<Vec<OriginEntry>, ConfigError> {
        let data_only = |pattern, from_bare_host| OriginEntry {
            pattern,
            capabilities: Capabilities::DATA_ONLY,
            read: VarFilter::default(),
            write: VarFilter::default(),
            open_url_patterns: Vec::new(),
            from_bare_host,
        };
        if item.eq_ignore_ascii_case("null") || item == "*" {
            return Err(self.invalid(
                &g.name,
                item,
                "origins such as https://crm.example.com: 'null' and '*' are never allowed".into(),
                g.line,
            ));
        }
        if item.contains("://") {
            let pattern = OriginPattern::parse(item).map_err(|e| {
                self.invalid(
                    &g.name,
                    item,
                    format!("origins such as https://crm.example.com: {e}"),
                    g.line,
                )
            })?;
            return Ok(vec![data_only(pattern, false)]);
        }
        let bare = |scheme: &str| {
            OriginPattern::parse(&format!("{scheme}://{item}")).map_err(|e| {
                self.invalid(
                    &g.name,
                    item,
                    format!("origins such as https://crm.example.com, or host names: {e}"),
                    g.line,
                )
            })
        };
        let (http, https) = (bare("http")?, bare("https")?);
        self.warn(format!(
            "AllowedHosts entry \"{item}\" (line {}) is a bare host name: it allows {http} \
             and {https}; list the exact origin instead, such as {https}",
            g.line
        ));
        Ok(vec![data_only(http, true), data_only(https, true)])
    }
}
