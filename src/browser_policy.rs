//! `wsconnector browser-policy`: the managed browser policies that let the
//! configured CRM origins reach the daemon on the loopback without a Local
//! Network Access prompt, written from `AllowedHosts`/`Origins`.
//!
//! - Chrome, Chromium and Edge: `LoopbackNetworkAllowedForUrls` (Chrome/Edge
//!   146 and later: requests to 127.0.0.1, ::1 and localhost) and its
//!   predecessor `LocalNetworkAccessAllowedForUrls` (139/140 to 145, which
//!   also still applies after), both lists of URL patterns. A browser ignores a
//!   policy name it does not know, so writing both covers every version.
//! - Firefox: `LocalNetworkAccess.SkipDomains` (Firefox 150 and later), a
//!   list of domain names whose pages skip the checks.
//!
//! Formats: JSON files for Linux (`/etc/chromium/policies/managed/`,
//! `/etc/opt/chrome/policies/managed/`, `/etc/opt/edge/policies/managed/`,
//! Firefox's `/etc/firefox/policies/policies.json`), a `.reg` file for
//! Windows, and the values to type into the vendors' ADMX templates.
//! The daemon's own checks (Origin, Host, OS user) still apply: the policy
//! only removes the browser prompt, it grants nothing on our side.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, OriginPattern};

/// Chrome/Edge 146+: origins allowed to reach the loopback.
pub const LOOPBACK_POLICY: &str = "LoopbackNetworkAllowedForUrls";
/// Chrome 139-145 / Edge 140-145 (still honoured after): origins allowed to
/// reach local and loopback addresses.
pub const LEGACY_LNA_POLICY: &str = "LocalNetworkAccessAllowedForUrls";

/// The file name used in each managed-policy folder.
pub const CHROMIUM_FILE: &str = "wsconnector.json";
/// The Firefox policy file name (merge it into an existing one).
pub const FIREFOX_FILE: &str = "policies.json";
/// The Windows registry file name.
pub const REG_FILE: &str = "wsconnector-browser-policy.reg";

/// Registry keys of the Chromium family, under HKLM\SOFTWARE\Policies.
const CHROMIUM_REG_KEYS: &[(&str, &str)] = &[
    ("Google Chrome", r"Google\Chrome"),
    ("Microsoft Edge", r"Microsoft\Edge"),
    ("Chromium", "Chromium"),
];

/// Where each browser reads managed JSON policies on Linux.
pub const LINUX_CHROMIUM_DIRS: &[(&str, &str)] = &[
    ("Chromium", "/etc/chromium/policies/managed"),
    ("Google Chrome", "/etc/opt/chrome/policies/managed"),
    ("Microsoft Edge", "/etc/opt/edge/policies/managed"),
];

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON files for Linux (Chromium/Chrome/Edge managed policy, Firefox policies.json).
    LinuxJson,
    /// A .reg file for Windows (HKLM policies of Chrome, Edge, Chromium and Firefox).
    WindowsReg,
    /// The values to enter with the vendors' ADMX templates (Group Policy).
    Admx,
}

/// Why no policy can be written.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No web origin is configured.
    #[error("no allowed origin is configured (AllowedHosts/Origins in config.xml): there is nothing to allow")]
    NoOrigins,
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// The origins a policy must allow: every configured one except pages
/// served from the loopback itself (browsers do not gate those).
pub fn policy_origins(config: &Config) -> Vec<OriginPattern> {
    let mut out: Vec<OriginPattern> = Vec::new();
    for e in &config.origins {
        let text = e.pattern.to_string();
        let host = host_of(&text);
        let loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
        if !loopback && !out.contains(&e.pattern) {
            out.push(e.pattern.clone());
        }
    }
    out
}

/// The host of `scheme://host[:port]` (a wildcard keeps its `*.`).
fn host_of(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    if rest.starts_with('[') {
        return rest.split_inclusive(']').next().unwrap_or(rest);
    }
    rest.split(':').next().unwrap_or(rest)
}

/// A Chrome enterprise URL pattern for an origin: `https://crm.example.com`,
/// `https://[*.]example.com:8443` for a wildcard (which also covers the
/// bare domain; our own Origin check stays exact).
pub fn chrome_pattern(origin: &OriginPattern) -> String {
    origin.to_string().replacen("://*.", "://[*.]", 1)
}

/// A Firefox `SkipDomains` entry: the host name (`*.example.com` for a wildcard).
pub fn firefox_domain(origin: &OriginPattern) -> String {
    host_of(&origin.to_string()).to_string()
}

/// The managed policy JSON of Chrome, Chromium and Edge.
pub fn chromium_json(origins: &[OriginPattern]) -> serde_json::Value {
    let patterns: Vec<String> = origins.iter().map(chrome_pattern).collect();
    serde_json::json!({
        LOOPBACK_POLICY: patterns,
        LEGACY_LNA_POLICY: patterns,
    })
}

/// Firefox's policies.json with the `LocalNetworkAccess` exception.
pub fn firefox_json(origins: &[OriginPattern]) -> serde_json::Value {
    let mut domains: Vec<String> = origins.iter().map(firefox_domain).collect();
    domains.dedup();
    serde_json::json!({
        "policies": {
            "LocalNetworkAccess": {
                "Enabled": true,
                "SkipDomains": domains,
            }
        }
    })
}

/// Escape a value for a .reg string.
fn reg_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Windows .reg file with every policy (HKLM, all users).
pub fn windows_reg(origins: &[OriginPattern]) -> String {
    let mut out = String::from("Windows Registry Editor Version 5.00\n\n");
    let list = |out: &mut String, key: &str, values: &[String]| {
        // Delete the key first so a removed origin does not linger.
        let _ = writeln!(out, "[-{key}]\n[{key}]");
        for (i, v) in values.iter().enumerate() {
            let _ = writeln!(out, "\"{}\"=\"{}\"", i + 1, reg_str(v));
        }
        out.push('\n');
    };
    let patterns: Vec<String> = origins.iter().map(chrome_pattern).collect();
    for (_, key) in CHROMIUM_REG_KEYS {
        for policy in [LOOPBACK_POLICY, LEGACY_LNA_POLICY] {
            list(
                &mut out,
                &format!(r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\{key}\{policy}"),
                &patterns,
            );
        }
    }
    let domains: Vec<String> = origins.iter().map(firefox_domain).collect();
    list(
        &mut out,
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Mozilla\Firefox\LocalNetworkAccess\SkipDomains",
        &domains,
    );
    out
}

/// The values to enter in the Group Policy editor with each vendor's ADMX.
pub fn admx_values(origins: &[OriginPattern]) -> String {
    let patterns: Vec<String> = origins.iter().map(chrome_pattern).collect();
    let domains: Vec<String> = origins.iter().map(firefox_domain).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Group Policy (ADMX) values for wsconnector's CRM origins.\n\
         Enable each policy below (Computer Configuration > Administrative Templates) and\n\
         enter one value per line. Install the vendors' current ADMX templates first:\n\
         older templates lack the newer policy names.\n"
    );
    for (browser, _) in CHROMIUM_REG_KEYS {
        for (policy, versions) in [
            (LOOPBACK_POLICY, "146 and later"),
            (LEGACY_LNA_POLICY, "139/140 to 145"),
        ] {
            let _ = writeln!(out, "{browser}: {policy} ({versions})");
            for p in &patterns {
                let _ = writeln!(out, "    {p}");
            }
        }
    }
    let _ = writeln!(
        out,
        "Mozilla Firefox: LocalNetworkAccess > SkipDomains (Firefox 150 and later)"
    );
    for d in &domains {
        let _ = writeln!(out, "    {d}");
    }
    out
}

/// What `browser-policy` produced: file name and content, and where to put it.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// File name to write.
    pub name: &'static str,
    /// Its content.
    pub content: String,
    /// Where it belongs, for the instructions.
    pub install_to: Vec<String>,
}

/// The files of `format` for `config`.
pub fn render(config: &Config, format: Format) -> Result<Vec<PolicyFile>, PolicyError> {
    let origins = policy_origins(config);
    if origins.is_empty() {
        return Err(PolicyError::NoOrigins);
    }
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    Ok(match format {
        Format::LinuxJson => vec![
            PolicyFile {
                name: CHROMIUM_FILE,
                content: pretty(chromium_json(&origins)),
                install_to: LINUX_CHROMIUM_DIRS
                    .iter()
                    .map(|(b, d)| format!("{d}/{CHROMIUM_FILE} ({b})"))
                    .collect(),
            },
            PolicyFile {
                name: FIREFOX_FILE,
                content: pretty(firefox_json(&origins)),
                install_to: vec![
                    "/etc/firefox/policies/policies.json (merge into an existing file)".into(),
                ],
            },
        ],
        Format::WindowsReg => vec![PolicyFile {
            name: REG_FILE,
            content: windows_reg(&origins).replace('\n', "\r\n"),
            install_to: vec![format!(
                "reg import {REG_FILE} (as administrator), or push it by GPO"
            )],
        }],
        Format::Admx => vec![PolicyFile {
            name: "wsconnector-admx-values.txt",
            content: admx_values(&origins),
            install_to: vec!["the Group Policy editor".into()],
        }],
    })
}

/// Write `files` into `dir`; the paths written.
pub fn write_all(dir: &Path, files: &[PolicyFile]) -> Result<Vec<PathBuf>, PolicyError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    files
        .iter()
        .map(|f| {
            let path = dir.join(f.name);
            std::fs::write(&path, &f.content).map_err(err(&path))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Capabilities, OriginEntry, VarFilter};

    fn config(origins: &[&str]) -> Config {
        let mut c = Config::embedded();
        c.origins = origins
            .iter()
            .map(|o| OriginEntry {
                pattern: OriginPattern::parse(o).unwrap(),
                capabilities: Capabilities::DATA_ONLY,
                read: VarFilter::default(),
                write: VarFilter::default(),
                open_url_patterns: vec![],
                from_bare_host: false,
            })
            .collect();
        c
    }

    #[test]
    fn origins_become_chrome_patterns_and_firefox_domains() {
        let c = config(&[
            "https://crm.example.com",
            "https://*.example.org:8443",
            "http://127.0.0.1:8443",
        ]);
        let o = policy_origins(&c);
        assert_eq!(o.len(), 2, "loopback pages are not gated: {o:?}");
        let chrome = chromium_json(&o);
        assert_eq!(
            chrome[LOOPBACK_POLICY],
            serde_json::json!(["https://crm.example.com", "https://[*.]example.org:8443"])
        );
        assert_eq!(chrome[LEGACY_LNA_POLICY], chrome[LOOPBACK_POLICY]);
        let ff = firefox_json(&o);
        assert_eq!(
            ff["policies"]["LocalNetworkAccess"]["SkipDomains"],
            serde_json::json!(["crm.example.com", "*.example.org"])
        );
    }

    #[test]
    fn reg_file_lists_every_browser_key() {
        let o = policy_origins(&config(&["https://crm.example.com"]));
        let reg = windows_reg(&o);
        assert!(reg.starts_with("Windows Registry Editor Version 5.00"));
        for key in [
            r"[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Google\Chrome\LoopbackNetworkAllowedForUrls]",
            r"[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Edge\LocalNetworkAccessAllowedForUrls]",
            r"[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Mozilla\Firefox\LocalNetworkAccess\SkipDomains]",
        ] {
            assert!(reg.contains(key), "{key} missing in\n{reg}");
        }
        assert!(reg.contains("\"1\"=\"https://crm.example.com\""), "{reg}");
        assert!(reg.contains("\"1\"=\"crm.example.com\""), "{reg}");
    }

    #[test]
    fn no_origin_is_an_error() {
        assert!(matches!(
            render(&config(&["http://localhost:8443"]), Format::LinuxJson),
            Err(PolicyError::NoOrigins)
        ));
    }
}
