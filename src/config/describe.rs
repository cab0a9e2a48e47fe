//! The effective settings as `wsconnector check-config` prints them: one
//! `Name = value` per line, legacy names where they exist, secrets masked.

use std::fmt::Write as _;

use super::model::*;
use super::values::{duration_text, log_level_name, mode_name, size_text};

/// What a password looks like in any output.
pub const MASK: &str = "********";

/// Human-readable effective settings, one `Name = value` per line.
pub fn describe(cfg: &Config) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: String| {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "{name} = {value}");
    };
    line(
        "Config-file",
        match &cfg.source {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded => "(none: embedded defaults)".into(),
        },
    );
    line(
        "Socket-type",
        match cfg.socket_type {
            SocketType::Ws => "WS".into(),
            SocketType::Wss => "WSS".into(),
        },
    );
    line("Socket-port", cfg.port.to_string());
    if let Some(tls) = &cfg.tls {
        line(
            "Certificate-path",
            tls.certificate_path.display().to_string(),
        );
        line(
            "Key-path",
            tls.key_path
                .as_ref()
                .map_or("(none: the key is in the certificate file)".into(), |p| {
                    p.display().to_string()
                }),
        );
        line(
            "Password",
            if tls.password.0.is_empty() {
                "(none)".into()
            } else {
                MASK.into()
            },
        );
    }
    line("Log-level", log_level_name(cfg.log.level).into());
    line(
        "Log-path",
        cfg.log
            .path
            .as_ref()
            .map_or("(none: standard error only)".into(), |p| {
                p.display().to_string()
            }),
    );
    line("Filesize", size_text(cfg.log.file_size));
    line("MaxFiles", cfg.log.max_files.to_string());
    line("Log-values", cfg.log.log_values.to_string());
    line(
        "ByteSizeReader",
        size_text(cfg.limits.max_message_bytes as u64),
    );
    line("Mode", mode_name(cfg.mode).into());
    line(
        "AgentSocket",
        cfg.service.agent_socket.display().to_string(),
    );
    line("ServiceUser", cfg.service.service_user.clone());
    line("AllowOtherUsers", cfg.allow_other_users.to_string());
    line(
        "ExtraHostNames",
        if cfg.extra_host_names.is_empty() {
            "(none)".into()
        } else {
            cfg.extra_host_names.join(";")
        },
    );
    if cfg.origins.is_empty() {
        line("Origin", "(none besides the daemon's own pages)".into());
    }
    for o in &cfg.origins {
        let caps = o.capabilities.names();
        let mut v = format!(
            "{} capabilities={}",
            o.pattern,
            if caps.is_empty() {
                "(none)".into()
            } else {
                caps.join(",")
            }
        );
        let _ = write!(
            v,
            " read={} write={}",
            filter_text(&o.read),
            filter_text(&o.write)
        );
        if !o.open_url_patterns.is_empty() {
            let _ = write!(v, " openUrl={}", o.open_url_patterns.join(";"));
        }
        if o.from_bare_host {
            v.push_str(" (from a bare host name in AllowedHosts)");
        }
        line("Origin", v);
    }
    for p in &cfg.programs {
        let mut v = format!("{} path={}", p.name, p.path.display());
        if !p.args.is_empty() {
            let _ = write!(v, " args={:?}", p.args);
        }
        let _ = write!(
            v,
            " parameter={}",
            p.parameter_rule.as_deref().unwrap_or("(none allowed)")
        );
        if p.open_url {
            v.push_str(" openUrl=true (http/https parameters open as openUrl)");
        }
        line("Program", v);
    }
    line(
        "GenP2C",
        match (&cfg.gen_p2c.enabled, &cfg.gen_p2c.toolbar_title) {
            (false, _) => "disabled".to_string(),
            (true, None) => "enabled (RqStopGWT refused: no toolbarTitle)".to_string(),
            (true, Some(t)) => format!("enabled toolbarTitle={t:?}"),
        },
    );
    let l = &cfg.limits;
    for (name, value) in [
        ("MaxMessageBytes", size_text(l.max_message_bytes as u64)),
        ("MaxFrameBytes", size_text(l.max_frame_bytes as u64)),
        ("ReadBufferBytes", size_text(l.read_buffer_bytes as u64)),
        ("WriteBufferBytes", size_text(l.write_buffer_bytes as u64)),
        ("OutboxMessages", l.outbox_messages.to_string()),
        ("MaxConnections", l.max_connections.to_string()),
        (
            "MaxConnectionsPerUser",
            l.max_connections_per_user.to_string(),
        ),
        ("MaxEnvironments", l.max_environments.to_string()),
        (
            "MaxEnvironmentsPerConnection",
            l.max_environments_per_connection.to_string(),
        ),
        ("MaxVariables", l.max_variables.to_string()),
        (
            "MaxVariablesPerConnection",
            l.max_variables_per_connection.to_string(),
        ),
        (
            "MaxVariablesPerEnvironment",
            l.max_variables_per_environment.to_string(),
        ),
        ("MaxValueBytes", size_text(l.max_value_bytes as u64)),
        ("ReplayEvents", l.replay_events.to_string()),
    ] {
        line(&format!("Limits/{name}"), value);
    }
    let r = &l.rate;
    line("RateLimits/default", rate_text(r.default));
    for (action, limit) in &r.actions {
        line(&format!("RateLimits/{action}"), rate_text(*limit));
    }
    line(
        "RateLimits/malformedPerMinute",
        if r.malformed_per_minute == 0 {
            "0 (never closed)".into()
        } else {
            r.malformed_per_minute.to_string()
        },
    );
    let t = &cfg.timers;
    for (name, value) in [
        ("HandshakeTimeout", t.handshake),
        ("IdleTimeout", t.idle),
        ("PingInterval", t.ping_interval),
        ("PongTimeout", t.pong_timeout),
        ("HelloTimeout", t.hello),
        ("ResumeTokenTtl", t.resume_token_ttl),
        ("ShutdownGrace", t.shutdown_grace),
        ("PickupTimeout", t.pickup),
        ("ConfigReloadDebounce", t.config_reload_debounce),
        ("AgentActionTimeout", t.agent_action),
        ("AgentRestartDelay", t.agent_restart),
    ] {
        let mut text = duration_text(value);
        if name == "HelloTimeout" && value.is_zero() {
            text.push_str(" (off)");
        }
        line(&format!("Timers/{name}"), text);
    }
    out
}

/// `20/min quarantine=5m`, `unlimited`, `6000/min quarantine=until restart`.
fn rate_text(r: RateLimit) -> String {
    if r.per_minute == 0 {
        return "unlimited".into();
    }
    let q = if r.quarantine.is_zero() {
        "until restart".to_string()
    } else {
        duration_text(r.quarantine)
    };
    format!("{}/min quarantine={q}", r.per_minute)
}

fn filter_text(f: &VarFilter) -> String {
    if f.patterns.is_empty() {
        "(nothing)".into()
    } else {
        f.patterns.join(";")
    }
}
