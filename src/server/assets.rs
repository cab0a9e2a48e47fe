//! The files the daemon serves itself, embedded at build time: the
//! connector library (`js-client/connector.js` and `connector.mjs`, exactly
//! the files the binary was built with) and the demo page (`web/`).
//!
//! Pure data and header rules, no I/O: `server::http` runs the guard first
//! and then asks [`find`] for the path.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The connector library, embedded from `js-client/`: the classic script
/// (global `Connector`) and the ES module source.
mod connector {
    /// `js-client/connector.js`, the generated classic build.
    pub const CLASSIC: &str = include_str!("../../js-client/connector.js");
    /// `js-client/connector.mjs`, the ES module source.
    pub const MODULE: &str = include_str!("../../js-client/connector.mjs");
}

/// The policy of every daemon page: only our own scripts and styles, no
/// inline code, sockets only to loopback, never framed. `'self'` already
/// covers `ws:`/`wss:` to the page's own host and port (CSP 3); the explicit
/// loopback sources let a page served from one loopback name reach the other
/// (`[::1]` cannot be written as a CSP host source, `'self'` covers it).
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; \
     connect-src 'self' ws://localhost:* ws://127.0.0.1:* wss://localhost:* wss://127.0.0.1:*; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes, as built into the binary.
    pub body: &'static str,
    /// Whether other origins may read it with CORS (module scripts and
    /// `fetch` need it; the guard has already admitted the origin).
    pub cross_origin: bool,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every embedded file, by path.
pub static ASSETS: [Asset; 5] = [
    Asset {
        path: "/connector.js",
        content_type: JS,
        body: connector::CLASSIC,
        cross_origin: true,
    },
    Asset {
        path: "/connector.mjs",
        content_type: JS,
        body: connector::MODULE,
        cross_origin: true,
    },
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/demo.html"),
        cross_origin: false,
    },
    Asset {
        path: "/demo.js",
        content_type: JS,
        body: include_str!("../../web/demo.js"),
        cross_origin: false,
    },
    Asset {
        path: "/demo.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/demo.css"),
        cross_origin: false,
    },
];

/// The embedded file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// FNV-1a, 64 bits: enough to tell two builds' files apart for caching (not
/// a security property), and needs no extra crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Asset {
    /// The strong validator of this file, computed once per process.
    pub fn etag(&self) -> &'static str {
        static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
        let etags = ETAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|a| format!("\"{:016x}\"", fnv1a(a.body.as_bytes())))
                .collect()
        });
        ASSETS
            .iter()
            .position(|a| std::ptr::eq(a, self))
            .and_then(|i| etags.get(i))
            .map(String::as_str)
            .unwrap_or("\"0\"")
    }

    /// True when the request's `If-None-Match` names the current file.
    fn not_modified(&self, request: &HeaderMap) -> bool {
        let etag = self.etag();
        request.get_all(IF_NONE_MATCH).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
                .unwrap_or(false)
        })
    }

    /// The response for a `GET` (or `HEAD`, when `head`): the file, or 304
    /// when the client's copy is current. Cross-origin headers are the
    /// caller's business.
    pub fn respond(&self, request: &HeaderMap, head: bool) -> Response<Full<Bytes>> {
        let not_modified = self.not_modified(request);
        let body = if head || not_modified {
            Bytes::new()
        } else {
            Bytes::from_static(self.body.as_bytes())
        };
        let mut r = Response::new(Full::new(body));
        if not_modified {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        // Revalidate every time: the daemon may have been upgraded, and a
        // 304 costs one loopback round trip.
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(self.etag()) {
            h.insert(ETAG, v);
        }
        security_headers(h);
        r
    }
}

/// The headers every daemon page and file carries.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_its_etag_follows_its_bytes() {
        for a in &ASSETS {
            assert!(std::ptr::eq(find(a.path).unwrap(), a));
            assert!(
                a.etag().starts_with('"') && a.etag().len() == 18,
                "{}",
                a.etag()
            );
        }
        for a in &ASSETS {
            for b in &ASSETS {
                assert_eq!(
                    a.etag() == b.etag(),
                    a.body == b.body,
                    "{} {}",
                    a.path,
                    b.path
                );
            }
        }
        assert!(find("/nothing").is_none());
    }

    #[test]
    fn a_matching_if_none_match_gives_304_without_body() {
        let a = find("/demo.css").unwrap();
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(a.etag()).unwrap());
        let r = a.respond(&h, false);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        let r = a.respond(&h, false);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-cache");
    }

    #[test]
    fn the_demo_has_no_inline_script_or_style() {
        let html = find("/").unwrap().body;
        assert!(html.contains("<script src=\"/connector.js\" defer></script>"));
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("<style"), "inline style");
        let lower = html.to_ascii_lowercase();
        let handler = lower.match_indices(" on").any(|(i, _)| {
            let rest = &lower[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "inline event handler attribute");
    }

    #[test]
    fn fnv_is_the_published_function() {
        // Test vectors of FNV-1a 64.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
