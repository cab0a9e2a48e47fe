//! The handshake guard: decides, for every HTTP request (not only upgrades),
//! whether it may be served, from the `Host` and `Origin` headers and the OS
//! user owning the client socket.
//!
//! Pure logic with no I/O, so every refusal is unit-tested; `server::http`
//! turns a [`Refusal`] into the HTTP status and logs it.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, StatusCode};

use crate::config::{Capabilities, Config, OriginPattern, SocketType, VarFilter};
use crate::peer::OsUser;

/// A request the guard let through, with what the connection may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The browser origin, `None` for a native client.
    pub origin: Option<String>,
    /// The OS user owning the client socket.
    pub user: OsUser,
    /// Granted capabilities.
    pub capabilities: Capabilities,
    /// Readable variables.
    pub read: VarFilter,
    /// Writable variables.
    pub write: VarFilter,
    /// URL patterns `openUrl` may open (from the origin's entry; none otherwise).
    pub open_url_patterns: Vec<String>,
}

/// Why a request was refused; `status()` gives the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Two `Host` or two `Origin` headers.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// No `Host` header (HTTP/1.1 requires one).
    #[error("missing Host header")]
    MissingHost,
    /// A header value that is not visible ASCII.
    #[error("unreadable {0} header")]
    BadHeader(&'static str),
    /// `Host` names something other than loopback or an ExtraHostNames entry,
    /// or another port: DNS rebinding.
    #[error("Host {0:?} is not this daemon (allowed: localhost, 127.0.0.1, [::1], ExtraHostNames, with our port)")]
    ForeignHost(String),
    /// `Origin: null` (sandboxed frames, file: pages, redirects).
    #[error("Origin null is never allowed")]
    NullOrigin,
    /// An origin not in AllowedHosts / Origins.
    #[error("Origin {0:?} is not in AllowedHosts")]
    ForeignOrigin(String),
    /// The socket's owner could not be determined (fail closed).
    #[error("the OS user owning the client socket could not be determined: {0}")]
    UnknownPeer(String),
    /// Another OS user's socket, and AllowOtherUsers is off. (With it on,
    /// another user's browser connection gets data access only.)
    #[error("connection from OS user {peer} refused: the daemon runs as {me} (AllowOtherUsers is false)")]
    OtherUser {
        /// The client's user.
        peer: String,
        /// The daemon's user.
        me: String,
    },
    /// A native client (no Origin) from another OS user: never accepted.
    #[error("native client of OS user {peer} refused: clients without Origin must run as {me}")]
    OtherUserNative {
        /// The client's user.
        peer: String,
        /// The daemon's user.
        me: String,
    },
}

impl Refusal {
    /// The HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::DuplicateHeader(_) | Refusal::MissingHost | Refusal::BadHeader(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// What the guard needs to know about this daemon and this TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext<'a> {
    /// The effective configuration.
    pub config: &'a Config,
    /// The port we actually listen on (may differ from config when it is 0).
    pub port: u16,
    /// The daemon's OS user.
    pub me: &'a OsUser,
    /// Owner of the client socket, or why it is unknown.
    pub peer: &'a Result<OsUser, String>,
}

fn single<'h>(
    headers: &'h HeaderMap,
    name: &http::HeaderName,
    label: &'static str,
) -> Result<Option<&'h str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Refusal::DuplicateHeader(label));
    }
    first
        .map(|v| v.to_str().map_err(|_| Refusal::BadHeader(label)))
        .transpose()
}

/// True when `host` (a `Host` header value) names this daemon.
pub fn host_is_ours(host: &str, cx: &GuardContext<'_>) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => (format!("[{ip}]"), tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n.to_string(), Some(p)),
            None => (host.to_string(), None),
        }
    };
    let default_port = match cx.config.socket_type {
        SocketType::Ws => 80,
        SocketType::Wss => 443,
    };
    let port_ok = match port {
        // Digits only: `str::parse` would also take "+8443".
        Some(p) => {
            p.bytes().all(|b| b.is_ascii_digit())
                && !p.starts_with('0')
                && p.parse::<u16>().ok() == Some(cx.port)
        }
        None => cx.port == default_port,
    };
    if !port_ok {
        return false;
    }
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
        || cx.config.extra_host_names.iter().any(|h| h == name)
}

/// The daemon's own pages (demo, later the inspector) are served from these
/// origins; without an explicit `Origins` entry they get data access only.
fn own_origin(origin: &str, cx: &GuardContext<'_>) -> bool {
    let scheme = match cx.config.socket_type {
        SocketType::Ws => "http",
        SocketType::Wss => "https",
    };
    ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|h| OriginPattern::exact(scheme, h, cx.port).matches(origin))
}

/// What a browser origin may do: its capabilities, read and write
/// allow-lists and `openUrl` patterns.
type Grant = (Capabilities, VarFilter, VarFilter, Vec<String>);

/// The grant of an allowed `origin` (not `null`), or the refusal.
fn origin_grant(origin: &str, cx: &GuardContext<'_>) -> Result<Grant, Refusal> {
    match cx.config.origin_entry(origin) {
        Some(entry) => Ok((
            entry.capabilities,
            entry.read.clone(),
            entry.write.clone(),
            entry.open_url_patterns.clone(),
        )),
        None if own_origin(origin, cx) => Ok((
            Capabilities::DATA_ONLY,
            VarFilter::default(),
            VarFilter::default(),
            Vec::new(),
        )),
        None => Err(Refusal::ForeignOrigin(origin.to_string())),
    }
}

/// Decide whether a request may be served.
pub fn check(headers: &HeaderMap, cx: &GuardContext<'_>) -> Result<Admitted, Refusal> {
    let host = single(headers, &HOST, "Host")?.ok_or(Refusal::MissingHost)?;
    let origin = single(headers, &ORIGIN, "Origin")?;
    if !host_is_ours(host, cx) {
        return Err(Refusal::ForeignHost(host.to_string()));
    }
    if origin.is_some_and(|o| o.trim().eq_ignore_ascii_case("null")) {
        return Err(Refusal::NullOrigin);
    }
    let grant = origin.map(|o| origin_grant(o, cx)).transpose()?;
    let user = cx.peer.clone().map_err(Refusal::UnknownPeer)?;
    admit(origin, grant, user, cx)
}

/// What `user`, connecting from `origin` (`None` = native client), may do
/// under `cx.config`, or the refusal. The handshake and a live reload
/// (re-deciding open connections, `crate::reload`) both decide here, so
/// they cannot disagree.
pub fn decide(
    origin: Option<&str>,
    user: OsUser,
    cx: &GuardContext<'_>,
) -> Result<Admitted, Refusal> {
    let grant = origin.map(|o| origin_grant(o, cx)).transpose()?;
    admit(origin, grant, user, cx)
}

fn admit(
    origin: Option<&str>,
    grant: Option<Grant>,
    user: OsUser,
    cx: &GuardContext<'_>,
) -> Result<Admitted, Refusal> {
    let same_user = user.id == cx.me.id;
    match grant {
        // No Origin: a native (fat) client, same OS user only, data only.
        None => {
            if !same_user {
                return Err(Refusal::OtherUserNative {
                    peer: user.name,
                    me: cx.me.name.clone(),
                });
            }
            Ok(Admitted {
                origin: None,
                user,
                capabilities: Capabilities::DATA_ONLY,
                read: VarFilter::default(),
                write: VarFilter::default(),
                open_url_patterns: Vec::new(),
            })
        }
        Some((capabilities, read, write, open_url_patterns)) => {
            if !same_user && !cx.config.allow_other_users {
                return Err(Refusal::OtherUser {
                    peer: user.name,
                    me: cx.me.name.clone(),
                });
            }
            // Another user's connection gets data access at most: desktop
            // actions would run programs, open URLs and show dialogs as
            // this daemon's user, and any local program can forge an Origin.
            let capabilities = if same_user {
                capabilities
            } else {
                Capabilities {
                    data: capabilities.data,
                    ..Capabilities::default()
                }
            };
            Ok(Admitted {
                origin: origin.map(str::to_string),
                user,
                capabilities,
                read,
                write,
                open_url_patterns,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OriginEntry, OriginPattern};
    use http::HeaderValue;

    fn me() -> OsUser {
        OsUser {
            id: "uid:1000".into(),
            name: "alice".into(),
        }
    }
    fn other() -> OsUser {
        OsUser {
            id: "uid:1001".into(),
            name: "bob".into(),
        }
    }
    fn config() -> Config {
        let mut c = Config::embedded();
        c.origins.push(OriginEntry {
            pattern: OriginPattern::parse("https://crm.example.com").unwrap(),
            capabilities: Capabilities::DATA_ONLY,
            read: VarFilter::default(),
            write: VarFilter::default(),
            open_url_patterns: vec![],
            from_bare_host: false,
        });
        c.extra_host_names.push("ctx.corp.local".into());
        c
    }
    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }
    fn run(
        c: &Config,
        peer: Result<OsUser, String>,
        h: &[(&str, &str)],
    ) -> Result<Admitted, Refusal> {
        let me = me();
        let cx = GuardContext {
            config: c,
            port: 8443,
            me: &me,
            peer: &peer,
        };
        check(&headers(h), &cx)
    }

    #[test]
    fn loopback_hosts_with_our_port_pass() {
        let c = config();
        for host in [
            "localhost:8443",
            "127.0.0.1:8443",
            "[::1]:8443",
            "LOCALHOST:8443",
            "ctx.corp.local:8443",
            "localhost.:8443",
        ] {
            assert!(run(&c, Ok(me()), &[("host", host)]).is_ok(), "{host}");
        }
    }

    #[test]
    fn rebinding_hosts_are_refused() {
        let c = config();
        for host in [
            "evil.com:8443",
            "localhost:8444",
            "localhost",
            "127.0.0.2:8443",
            "localhost:08443",
            "localhost:+8443",
            "localhost: 8443",
            "[::2]:8443",
            "localhost.evil.com:8443",
            "[::1",
            "",
        ] {
            assert!(
                matches!(
                    run(&c, Ok(me()), &[("host", host)]),
                    Err(Refusal::ForeignHost(_))
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn duplicate_and_missing_headers_are_400() {
        let c = config();
        let r = run(
            &c,
            Ok(me()),
            &[("host", "localhost:8443"), ("host", "localhost:8443")],
        );
        assert_eq!(r.unwrap_err().status(), StatusCode::BAD_REQUEST);
        let r = run(
            &c,
            Ok(me()),
            &[
                ("host", "localhost:8443"),
                ("origin", "https://crm.example.com"),
                ("origin", "https://crm.example.com"),
            ],
        );
        assert_eq!(r, Err(Refusal::DuplicateHeader("Origin")));
        assert_eq!(run(&c, Ok(me()), &[]), Err(Refusal::MissingHost));
    }

    #[test]
    fn origins_must_match_exactly() {
        let c = config();
        let ok = run(
            &c,
            Ok(me()),
            &[
                ("host", "localhost:8443"),
                ("origin", "https://crm.example.com"),
            ],
        )
        .unwrap();
        assert_eq!(ok.origin.as_deref(), Some("https://crm.example.com"));
        assert_eq!(ok.capabilities, Capabilities::DATA_ONLY);
        for o in [
            "https://crm.example.com.evil.net",
            "http://crm.example.com",
            "https://crm.example.com/",
            "https://CRM.example.com",
            "https://evil.com",
        ] {
            let r = run(&c, Ok(me()), &[("host", "localhost:8443"), ("origin", o)]);
            assert_eq!(
                r.clone().unwrap_err().status(),
                StatusCode::FORBIDDEN,
                "{o}"
            );
            assert!(matches!(r, Err(Refusal::ForeignOrigin(_))), "{o}");
        }
        assert_eq!(
            run(
                &c,
                Ok(me()),
                &[("host", "localhost:8443"), ("origin", "null")]
            ),
            Err(Refusal::NullOrigin)
        );
    }

    #[test]
    fn own_pages_get_data_only() {
        let c = config();
        let ok = run(
            &c,
            Ok(me()),
            &[
                ("host", "localhost:8443"),
                ("origin", "http://localhost:8443"),
            ],
        )
        .unwrap();
        assert_eq!(ok.capabilities, Capabilities::DATA_ONLY);
        assert!(run(
            &c,
            Ok(me()),
            &[
                ("host", "localhost:8443"),
                ("origin", "http://localhost:8444")
            ]
        )
        .is_err());
        assert!(run(
            &c,
            Ok(me()),
            &[
                ("host", "localhost:8443"),
                ("origin", "https://localhost:8443")
            ]
        )
        .is_err());
    }

    #[test]
    fn other_users_and_unknown_peers_are_refused() {
        let mut c = config();
        let h = [
            ("host", "localhost:8443"),
            ("origin", "https://crm.example.com"),
        ];
        assert!(matches!(
            run(&c, Ok(other()), &h),
            Err(Refusal::OtherUser { .. })
        ));
        assert!(matches!(
            run(&c, Err("gone".into()), &h),
            Err(Refusal::UnknownPeer(_))
        ));
        assert!(matches!(
            run(&c, Ok(other()), &[("host", "localhost:8443")]),
            Err(Refusal::OtherUserNative { .. })
        ));
        c.allow_other_users = true;
        assert_eq!(run(&c, Ok(other()), &h).unwrap().user, other());
        // ... with data access only, even for an origin granted everything.
        c.origins.push(OriginEntry {
            pattern: OriginPattern::parse("https://desk.example.com").unwrap(),
            capabilities: Capabilities::ALL,
            read: VarFilter::default(),
            write: VarFilter::default(),
            open_url_patterns: vec!["https://*".into()],
            from_bare_host: false,
        });
        let desk = [
            ("host", "localhost:8443"),
            ("origin", "https://desk.example.com"),
        ];
        assert_eq!(
            run(&c, Ok(me()), &desk).unwrap().capabilities,
            Capabilities::ALL
        );
        assert_eq!(
            run(&c, Ok(other()), &desk).unwrap().capabilities,
            Capabilities::DATA_ONLY
        );
        // Native clients stay same-user only even then.
        assert!(matches!(
            run(&c, Ok(other()), &[("host", "localhost:8443")]),
            Err(Refusal::OtherUserNative { .. })
        ));
    }

    #[test]
    fn native_clients_get_data_only() {
        let c = config();
        let ok = run(&c, Ok(me()), &[("host", "127.0.0.1:8443")]).unwrap();
        assert_eq!(ok.origin, None);
        assert_eq!(ok.capabilities, Capabilities::DATA_ONLY);
    }
}
