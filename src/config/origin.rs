//! Web origins as `AllowedHosts` writes them, and the exact matching the
//! handshake guard relies on.
//!
//! Browsers send `Origin` in one canonical form (lower-case scheme and host,
//! default port omitted, no path). We compare against that form byte for byte,
//! so look-alikes (`HTTPS://`, a trailing slash, `:443` spelled out, a suffix
//! such as `crm.example.com.evil.net`) never match. `null` never matches.

use std::fmt;

/// An allowed origin: exact, or with an explicit `*.` wildcard host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `http` or `https`.
    scheme: String,
    /// Host in lower case; for a wildcard, the suffix after `*.` (`example.com`).
    host: String,
    /// Explicit non-default port, if any.
    port: Option<u16>,
    /// True for `scheme://*.host`.
    wildcard: bool,
}

/// Why an `AllowedHosts` entry is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Scheme other than http/https.
    #[error("the scheme must be http or https")]
    Scheme,
    /// A path, query or fragment after the authority.
    #[error("an origin has no path: remove everything after the host and port")]
    Path,
    /// Empty or malformed host.
    #[error("the host name is empty or has characters a host name cannot have")]
    Host,
    /// Port not a number 1..=65535.
    #[error("the port must be a number from 1 to 65535")]
    Port,
    /// `*` somewhere other than a leading `*.` label.
    #[error("a wildcard is only allowed as the first label, as in https://*.example.com")]
    Wildcard,
    /// `null` or `*` given as an origin.
    #[error("'null' and '*' are never allowed origins")]
    Forbidden,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    if host.starts_with('[') {
        // IPv6 literal: hex digits, colons and dots inside brackets.
        return host.ends_with(']')
            && host.len() > 2
            && host[1..host.len() - 1]
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

impl OriginPattern {
    /// Parse `scheme://host[:port]` or `scheme://*.host[:port]`. Scheme and
    /// host are normalised to lower case and a default port is dropped, so
    /// the pattern compares against what browsers send.
    pub fn parse(text: &str) -> Result<OriginPattern, OriginError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("null") || text == "*" {
            return Err(OriginError::Forbidden);
        }
        let (scheme, rest) = text.split_once("://").ok_or(OriginError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(OriginError::Scheme);
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(OriginError::Path);
        }
        let (host, port) = split_host_port(rest)?;
        let mut host = host.to_ascii_lowercase();
        let mut wildcard = false;
        if let Some(suffix) = host.strip_prefix("*.") {
            wildcard = true;
            host = suffix.to_string();
        }
        if host.contains('*') {
            return Err(OriginError::Wildcard);
        }
        if !valid_host(&host) {
            return Err(OriginError::Host);
        }
        let port = port.filter(|p| *p != default_port(&scheme));
        Ok(OriginPattern {
            scheme,
            host,
            port,
            wildcard,
        })
    }

    /// The exact origin a browser sends for `scheme://host:port`.
    pub fn exact(scheme: &str, host: &str, port: u16) -> OriginPattern {
        OriginPattern {
            scheme: scheme.to_string(),
            host: host.to_ascii_lowercase(),
            port: Some(port).filter(|p| *p != default_port(scheme)),
            wildcard: false,
        }
    }

    /// True when this pattern is a `*.` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// True when a browser's `Origin` header value matches this pattern exactly.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin
            .strip_prefix(self.scheme.as_str())
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let host_part = match self.port {
            Some(port) => {
                let suffix = format!(":{port}");
                match rest.strip_suffix(suffix.as_str()) {
                    Some(h) => h,
                    None => return false,
                }
            }
            None => rest,
        };
        if !self.wildcard {
            return host_part == self.host;
        }
        // `*.example.com` matches `a.example.com` and `a.b.example.com`,
        // never `example.com` itself nor `evilexample.com`.
        match host_part.strip_suffix(self.host.as_str()) {
            Some(prefix) => {
                prefix.len() > 1
                    && prefix.ends_with('.')
                    && valid_host(&prefix[..prefix.len() - 1])
                    && !host_part.contains(':')
            }
            None => false,
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), OriginError> {
    // An IPv6 literal keeps its brackets; the port follows the closing bracket.
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (h, p) = authority.split_at(end + 1);
                (h, p.strip_prefix(':'))
            }
            None => return Err(OriginError::Host),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(OriginError::Port),
        },
        None => None,
    };
    Ok((host, port))
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_origin_matches_only_its_canonical_form() {
        let pat = p("https://CRM.example.com:443/");
        assert_eq!(pat.to_string(), "https://crm.example.com");
        assert!(pat.matches("https://crm.example.com"));
        for bad in [
            "https://crm.example.com/",
            "https://crm.example.com:443",
            "HTTPS://crm.example.com",
            "https://CRM.example.com",
            "http://crm.example.com",
            "https://crm.example.com.evil.net",
            "https://evilcrm.example.com",
            "https://crm.example.com:8443",
            "null",
            "",
        ] {
            assert!(!pat.matches(bad), "{bad} must not match");
        }
    }

    #[test]
    fn explicit_port_is_part_of_the_origin() {
        let pat = p("http://localhost:3000");
        assert!(pat.matches("http://localhost:3000"));
        assert!(!pat.matches("http://localhost"));
        assert!(!pat.matches("http://localhost:30000"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let pat = p("https://*.example.com");
        assert!(pat.matches("https://a.example.com"));
        assert!(pat.matches("https://a.b.example.com"));
        assert!(!pat.matches("https://example.com"));
        assert!(!pat.matches("https://evilexample.com"));
        assert!(!pat.matches("https://.example.com"));
        assert!(!pat.matches("http://a.example.com"));
        assert!(!pat.matches("https://a.example.com:444"));
    }

    #[test]
    fn ipv6_origin() {
        let pat = p("http://[::1]:8080");
        assert!(pat.matches("http://[::1]:8080"));
        assert!(!pat.matches("http://[::1]"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(OriginPattern::parse("null"), Err(OriginError::Forbidden));
        assert_eq!(OriginPattern::parse("*"), Err(OriginError::Forbidden));
        assert_eq!(OriginPattern::parse("ftp://x"), Err(OriginError::Scheme));
        assert_eq!(
            OriginPattern::parse("crm.example.com"),
            Err(OriginError::Scheme)
        );
        assert_eq!(OriginPattern::parse("https://x/y"), Err(OriginError::Path));
        assert_eq!(OriginPattern::parse("https://x:0"), Err(OriginError::Port));
        assert_eq!(
            OriginPattern::parse("https://x:99999"),
            Err(OriginError::Port)
        );
        assert_eq!(
            OriginPattern::parse("https://a.*.com"),
            Err(OriginError::Wildcard)
        );
        assert_eq!(OriginPattern::parse("https://"), Err(OriginError::Host));
        assert_eq!(OriginPattern::parse("https://a b"), Err(OriginError::Host));
    }
}
