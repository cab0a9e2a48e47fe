//! From `config.xml` text to a validated `Config`.
//!
//! Two passes. The first walks the XML once and collects every scalar setting
//! (from elements and from .NET `appSettings`, names case-insensitive) under
//! its canonical name, refusing a setting given twice and warning about
//! anything it does not know; the `Origins` and `Programs` sections are parsed
//! on the way because they are lists of structured entries. The second pass
//! turns the collected text into typed values on top of `Config::embedded()`
//! and checks the rules that span settings (WSS needs a certificate,
//! per-connection limits within totals, ...).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use roxmltree::Node;

use super::error::{file_label, shown, ConfigError};
use super::model::*;
use super::origin::{OriginError, OriginPattern};
use super::values::{self, Parsed};
use super::Loaded;

/// Settings allowed directly under the root element or as appSettings keys,
/// by canonical name.
const ROOT_SETTINGS: &[&str] = &[
    "Socket-type",
    "Socket-port",
    "Log-level",
    "Log-path",
    "Password",
    "Certificate-path",
    "Key-path",
    "Filesize",
    "ByteSizeReader",
    "MaxFiles",
    "Log-values",
    "AllowedHosts",
    "ExtraHostNames",
    "AllowOtherUsers",
    "Mode",
];

/// Children of `<Limits>`. `MaxMessageBytes` is collected as `ByteSizeReader`.
pub(crate) const LIMIT_SETTINGS: &[&str] = &[
    "MaxMessageBytes",
    "MaxFrameBytes",
    "ReadBufferBytes",
    "WriteBufferBytes",
    "OutboxMessages",
    "MaxConnections",
    "MaxConnectionsPerUser",
    "MaxEnvironments",
    "MaxEnvironmentsPerConnection",
    "MaxVariables",
    "MaxVariablesPerConnection",
    "MaxVariablesPerEnvironment",
    "MaxValueBytes",
    "ReplayEvents",
];

/// Children of `<Timers>`.
pub(crate) const TIMER_SETTINGS: &[&str] = &[
    "HandshakeTimeout",
    "IdleTimeout",
    "PingInterval",
    "PongTimeout",
    "HelloTimeout",
    "ResumeTokenTtl",
    "ShutdownGrace",
];

/// Sections that are parsed as structures, not scalars.
const SECTIONS: &[&str] = &["Origins", "Programs", "Limits", "Timers", "appSettings"];

/// One scalar setting as written in the file.
#[derive(Debug, Clone)]
struct Given {
    /// The name to show in messages (`Socket-port`, `Limits/MaxMessageBytes`).
    name: String,
    /// The text value (for lists, every part joined with `;`).
    value: String,
    /// 1-based line.
    line: u32,
    /// Where it was written, for duplicate messages (`as <Socket-port> at line 3`).
    place: String,
}

/// An `<Origin>` entry with the line it was written on.
struct OriginAt {
    entry: OriginEntry,
    line: u32,
}

/// State of one parse: the file label, the folder relative paths resolve
/// against, the collected settings and the warnings so far.
struct Parser {
    file: String,
    base_dir: Option<PathBuf>,
    /// Byte offsets of every `\n`, to turn node offsets into line numbers.
    newlines: Vec<usize>,
    settings: HashMap<String, Given>,
    origins: Vec<OriginAt>,
    programs: Vec<(Program, u32)>,
    sections_seen: HashMap<String, u32>,
    warnings: Vec<String>,
}

/// Parse and validate `xml`; `source` names the file in messages and gives the
/// folder relative paths resolve against.
pub(crate) fn parse(xml: &str, source: ConfigSource) -> Result<Loaded, ConfigError> {
    let path = match &source {
        ConfigSource::File(p) => Some(p.as_path()),
        ConfigSource::Embedded => None,
    };
    let file = file_label(path);
    let base_dir = path.and_then(Path::parent).map(Path::to_path_buf);
    // A byte-order mark is common in files saved by Windows editors.
    let text = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let doc = roxmltree::Document::parse(text).map_err(|e| ConfigError::Xml {
        file: file.clone(),
        line: e.pos().row,
        column: e.pos().col,
        message: e.to_string(),
    })?;
    let mut p = Parser {
        file,
        base_dir,
        newlines: text.match_indices('\n').map(|(i, _)| i).collect(),
        settings: HashMap::new(),
        origins: Vec::new(),
        programs: Vec::new(),
        sections_seen: HashMap::new(),
        warnings: Vec::new(),
    };
    p.walk_root(doc.root_element())?;
    let config = p.build(source)?;
    Ok(Loaded {
        config,
        warnings: p.warnings,
    })
}

/// Case-insensitive lookup of a canonical name.
fn canonical(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

/// A close spelling of a known name (`SocketPort` for `Socket-port`), for hints.
fn suggestion(name: &str) -> Option<&'static str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let n = norm(name);
    ROOT_SETTINGS
        .iter()
        .chain(SECTIONS)
        .chain(LIMIT_SETTINGS)
        .chain(TIMER_SETTINGS)
        .copied()
        .find(|k| norm(k) == n)
}

/// The text directly inside an element (not inside its children), trimmed.
fn own_text(node: Node) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_string()
}

impl Parser {
    fn line(&self, node: Node) -> u32 {
        // Offsets of line starts are sorted: the line is how many start at or before.
        let n = self.newlines.partition_point(|&nl| nl < node.range().start);
        u32::try_from(n + 1).unwrap_or(u32::MAX)
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(format!("{}: {message}", self.file));
    }

    fn invalid(&self, setting: &str, value: &str, expected: String, line: u32) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            setting: setting.to_string(),
            value: shown(value),
            expected,
            line: (line > 0).then_some(line),
        }
    }

    fn duplicate(&self, setting: &str, first: &str, second: &str) -> ConfigError {
        ConfigError::Duplicate {
            file: self.file.clone(),
            setting: setting.to_string(),
            first: first.to_string(),
            second: second.to_string(),
        }
    }

    /// Warn about every attribute of `node` not in `known`.
    fn check_attributes(&mut self, node: Node, known: &[&str], what: &str) {
        let line = self.line(node);
        for a in node.attributes() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(a.name())) {
                self.warn(format!(
                    "unknown attribute {}=\"{}\" on {what} at line {line} is ignored",
                    a.name(),
                    shown(a.value())
                ));
            }
        }
    }

    /// Value of an attribute, name case-insensitive.
    fn attribute<'n>(node: Node<'n, '_>, name: &str) -> Option<&'n str> {
        node.attributes()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .map(|a| a.value())
    }

    /// Record a scalar setting, refusing a second one under the same canonical name.
    fn record(&mut self, key: &str, given: Given) -> Result<(), ConfigError> {
        if let Some(first) = self.settings.get(key) {
            return Err(self.duplicate(&given.name, &first.place, &given.place));
        }
        self.settings.insert(key.to_string(), given);
        Ok(())
    }

    /// A section element may appear once.
    fn enter_section(&mut self, name: &str, line: u32) -> Result<(), ConfigError> {
        if let Some(first) = self.sections_seen.get(name) {
            return Err(self.duplicate(
                name,
                &format!("as <{name}> at line {first}"),
                &format!("as <{name}> at line {line}"),
            ));
        }
        self.sections_seen.insert(name.to_string(), line);
        Ok(())
    }

    fn warn_unknown_element(&mut self, node: Node, inside: &str) {
        let line = self.line(node);
        let name = node.tag_name().name().to_string();
        let hint = suggestion(&name)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        self.warn(format!(
            "unknown setting <{name}> in {inside} at line {line} is ignored{hint}"
        ));
    }

    fn warn_stray_text(&mut self, node: Node, what: &str) {
        let text = own_text(node);
        if !text.is_empty() {
            let line = self.line(node);
            self.warn(format!(
                "text \"{}\" directly inside {what} at line {line} is ignored",
                shown(&text)
            ));
        }
    }

    fn walk_root(&mut self, root: Node) -> Result<(), ConfigError> {
        let root_name = format!("<{}>", root.tag_name().name());
        self.check_attributes(root, &[], &root_name);
        self.warn_stray_text(root, &root_name);
        for child in root.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            let line = self.line(child);
            if let Some(key) = canonical(name, ROOT_SETTINGS) {
                let given = self.scalar_element(child, key, key)?;
                self.record(key, given)?;
            } else if let Some(section) = canonical(name, SECTIONS) {
                self.enter_section(section, line)?;
                self.check_attributes(child, &[], &format!("<{section}>"));
                self.warn_stray_text(child, &format!("<{section}>"));
                match section {
                    "appSettings" => self.app_settings(child)?,
                    "Origins" => self.origins_section(child)?,
                    "Programs" => self.programs_section(child)?,
                    "Limits" => self.grouped(child, "Limits", LIMIT_SETTINGS)?,
                    _ => self.grouped(child, "Timers", TIMER_SETTINGS)?,
                }
            } else {
                self.warn_unknown_element(child, &root_name);
            }
        }
        Ok(())
    }

    /// A scalar given as an element. `AllowedHosts` and `ExtraHostNames` may
    /// also list `<Host>` children; their texts join the element's own text.
    fn scalar_element(
        &mut self,
        node: Node,
        key: &str,
        shown_name: &str,
    ) -> Result<Given, ConfigError> {
        let line = self.line(node);
        self.check_attributes(node, &[], &format!("<{shown_name}>"));
        let mut parts = vec![own_text(node)];
        let takes_hosts = matches!(key, "AllowedHosts" | "ExtraHostNames");
        for c in node.children().filter(Node::is_element) {
            if takes_hosts && c.tag_name().name().eq_ignore_ascii_case("Host") {
                self.check_attributes(c, &[], "<Host>");
                parts.push(own_text(c));
            } else {
                self.warn_unknown_element(c, &format!("<{shown_name}>"));
            }
        }
        parts.retain(|p| !p.is_empty());
        Ok(Given {
            name: shown_name.to_string(),
            value: parts.join(";"),
            line,
            place: format!("as <{}> at line {line}", node.tag_name().name()),
        })
    }

    /// `<appSettings><add key="Socket-port" value="8443"/></appSettings>`.
    fn app_settings(&mut self, node: Node) -> Result<(), ConfigError> {
        for child in node.children().filter(Node::is_element) {
            let line = self.line(child);
            if !child.tag_name().name().eq_ignore_ascii_case("add") {
                self.warn_unknown_element(child, "<appSettings>");
                continue;
            }
            self.check_attributes(child, &["key", "value"], "<add>");
            let Some(key) = Self::attribute(child, "key") else {
                self.warn(format!(
                    "<add> without a key attribute at line {line} is ignored"
                ));
                continue;
            };
            match canonical(key.trim(), ROOT_SETTINGS) {
                Some(canon) => {
                    let given = Given {
                        name: canon.to_string(),
                        // Not trimmed: an attribute is exact (a password may
                        // end with a space); typed values trim themselves.
                        value: Self::attribute(child, "value").unwrap_or("").to_string(),
                        line,
                        place: format!("as appSettings key \"{}\" at line {line}", key.trim()),
                    };
                    self.record(canon, given)?;
                }
                None => {
                    let hint = suggestion(key.trim())
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    self.warn(format!(
                        "unknown setting \"{}\" (appSettings key at line {line}) is ignored{hint}",
                        shown(key)
                    ));
                }
            }
        }
        Ok(())
    }

    /// `<Limits>` or `<Timers>`: one scalar child per field.
    fn grouped(
        &mut self,
        node: Node,
        section: &str,
        known: &[&'static str],
    ) -> Result<(), ConfigError> {
        for child in node.children().filter(Node::is_element) {
            match canonical(child.tag_name().name(), known) {
                Some(field) => {
                    let shown_name = format!("{section}/{field}");
                    let mut given = self.scalar_element(child, field, &shown_name)?;
                    given.place = format!("as <{section}><{field}> at line {}", given.line);
                    // The legacy ByteSizeReader and Limits/MaxMessageBytes are one setting.
                    let key = if field == "MaxMessageBytes" {
                        "ByteSizeReader".to_string()
                    } else {
                        shown_name
                    };
                    self.record(&key, given)?;
                }
                None => self.warn_unknown_element(child, &format!("<{section}>")),
            }
        }
        Ok(())
    }

    fn origins_section(&mut self, node: Node) -> Result<(), ConfigError> {
        for child in node.children().filter(Node::is_element) {
            if !child.tag_name().name().eq_ignore_ascii_case("Origin") {
                self.warn_unknown_element(child, "<Origins>");
                continue;
            }
            let at = self.origin(child)?;
            if let Some(first) = self
                .origins
                .iter()
                .find(|o| o.entry.pattern == at.entry.pattern)
            {
                return Err(self.duplicate(
                    &format!("Origins/Origin({})", at.entry.pattern),
                    &format!("at line {}", first.line),
                    &format!("at line {}", at.line),
                ));
            }
            self.origins.push(at);
        }
        Ok(())
    }

    fn origin(&mut self, node: Node) -> Result<OriginAt, ConfigError> {
        let line = self.line(node);
        self.check_attributes(node, &["url", "capabilities"], "<Origin>");
        let url = Self::attribute(node, "url").unwrap_or("").trim();
        let pattern = OriginPattern::parse(url).map_err(|e| {
            let hint = if url.is_empty() {
                "a url attribute with an origin such as https://crm.example.com".to_string()
            } else if e == OriginError::Scheme && !url.contains("://") {
                format!("an origin with its scheme, such as https://{url}")
            } else {
                format!("an origin such as https://crm.example.com: {e}")
            };
            self.invalid("Origins/Origin/url", url, hint, line)
        })?;
        let me = format!("Origins/Origin({pattern})");
        let capabilities = match Self::attribute(node, "capabilities") {
            None => Capabilities::DATA_ONLY,
            Some(text) => values::capabilities(text)
                .map_err(|e| self.invalid(&format!("{me}/capabilities"), text, e, line))?,
        };
        let mut read: Option<VarFilter> = None;
        let mut write: Option<VarFilter> = None;
        let mut open: Option<Vec<String>> = None;
        let mut seen: HashMap<&'static str, u32> = HashMap::new();
        for child in node.children().filter(Node::is_element) {
            let Some(field) = canonical(child.tag_name().name(), &["Read", "Write", "OpenUrl"])
            else {
                self.warn_unknown_element(child, &format!("<Origin url=\"{pattern}\">"));
                continue;
            };
            let cline = self.line(child);
            let setting = format!("{me}/{field}");
            if let Some(first) = seen.insert(field, cline) {
                return Err(self.duplicate(
                    &setting,
                    &format!("as <{field}> at line {first}"),
                    &format!("as <{field}> at line {cline}"),
                ));
            }
            self.check_attributes(child, &[], &format!("<{field}>"));
            let text = own_text(child);
            for c in child.children().filter(Node::is_element) {
                self.warn_unknown_element(c, &format!("<{field}>"));
            }
            let items = values::list(&text);
            if field == "OpenUrl" {
                let mut pats = Vec::new();
                for item in items {
                    pats.push(
                        values::open_url_pattern(&item)
                            .map_err(|e| self.invalid(&setting, &item, e, cline))?,
                    );
                }
                open = Some(pats);
            } else {
                let mut pats = Vec::new();
                for item in items {
                    pats.push(
                        values::var_pattern(&item)
                            .map_err(|e| self.invalid(&setting, &item, e, cline))?,
                    );
                }
                let filter = VarFilter { patterns: pats };
                if field == "Read" {
                    read = Some(filter);
                } else {
                    write = Some(filter);
                }
            }
        }
        let open_url_patterns = open.unwrap_or_default();
        if capabilities.open_url && open_url_patterns.is_empty() {
            self.warn(format!(
                "{me} at line {line} has the openUrl capability but no <OpenUrl> patterns: \
                 it may open no URL"
            ));
        }
        if !capabilities.open_url && !open_url_patterns.is_empty() {
            self.warn(format!(
                "{me} at line {line} lists <OpenUrl> patterns without the openUrl capability: \
                 they are unused"
            ));
        }
        Ok(OriginAt {
            entry: OriginEntry {
                pattern,
                capabilities,
                read: read.unwrap_or_default(),
                write: write.unwrap_or_default(),
                open_url_patterns,
                from_bare_host: false,
            },
            line,
        })
    }

    fn programs_section(&mut self, node: Node) -> Result<(), ConfigError> {
        for child in node.children().filter(Node::is_element) {
            if !child.tag_name().name().eq_ignore_ascii_case("Program") {
                self.warn_unknown_element(child, "<Programs>");
                continue;
            }
            let (program, line) = self.program(child)?;
            if let Some((_, first)) = self
                .programs
                .iter()
                .find(|(p, _)| p.name.eq_ignore_ascii_case(&program.name))
            {
                return Err(self.duplicate(
                    &format!("Programs/Program({})", program.name),
                    &format!("at line {first}"),
                    &format!("at line {line}"),
                ));
            }
            self.programs.push((program, line));
        }
        Ok(())
    }

    fn program(&mut self, node: Node) -> Result<(Program, u32), ConfigError> {
        let line = self.line(node);
        self.check_attributes(node, &["name", "path", "args", "parameter"], "<Program>");
        let name = Self::attribute(node, "name")
            .unwrap_or("")
            .trim()
            .to_string();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(self.invalid(
                "Programs/Program/name",
                &name,
                "a non-empty name that pages use to launch the program, such as notepad".into(),
                line,
            ));
        }
        let me = format!("Programs/Program({name})");
        let path_text = Self::attribute(node, "path").unwrap_or("").trim();
        let path = PathBuf::from(path_text);
        if path_text.is_empty() || !path.is_absolute() {
            return Err(self.invalid(
                &format!("{me}/path"),
                path_text,
                "the absolute path of the executable, such as /usr/bin/gedit or \
                 C:\\Windows\\notepad.exe"
                    .into(),
                line,
            ));
        }
        // Windows drops trailing dots and spaces from file names, so `x.bat.`
        // would still run a batch file through cmd.exe.
        let trimmed = path_text.trim_end_matches(['.', ' ']);
        let lower = trimmed.to_ascii_lowercase();
        if lower.ends_with(".bat") || lower.ends_with(".cmd") {
            return Err(self.invalid(
                &format!("{me}/path"),
                path_text,
                "an executable program: .bat and .cmd files run through cmd.exe, which \
                 re-parses arguments, so they are never launched"
                    .into(),
                line,
            ));
        }
        let mut args = match Self::attribute(node, "args") {
            Some(text) => values::arguments(text)
                .map_err(|e| self.invalid(&format!("{me}/args"), text, e, line))?,
            None => Vec::new(),
        };
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name().eq_ignore_ascii_case("Arg") {
                self.check_attributes(child, &[], "<Arg>");
                args.push(child.children().filter_map(|c| c.text()).collect());
            } else {
                self.warn_unknown_element(child, &format!("<Program name=\"{name}\">"));
            }
        }
        let parameter_rule = match Self::attribute(node, "parameter") {
            Some(rule) => Some(
                values::parameter_rule(rule)
                    .map_err(|e| self.invalid(&format!("{me}/parameter"), rule, e, line))?,
            ),
            None => None,
        };
        Ok((
            Program {
                name,
                path,
                args,
                parameter_rule,
            },
            line,
        ))
    }

    // ----- second pass -----

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

    fn build(&mut self, source: ConfigSource) -> Result<Config, ConfigError> {
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
        match frame {
            None => l.max_frame_bytes = message,
            Some((v, g)) if v > message => {
                return Err(self.invalid(
                    &g.name,
                    &g.value,
                    format!(
                        "at most {message_name} ({})",
                        values::size_text(message as u64)
                    ),
                    g.line,
                ))
            }
            Some((v, _)) => l.max_frame_bytes = v,
        }
        match value {
            None => l.max_value_bytes = l.max_value_bytes.min(message),
            Some((v, g)) if v > message => {
                return Err(self.invalid(
                    &g.name,
                    &g.value,
                    format!(
                        "at most {message_name} ({})",
                        values::size_text(message as u64)
                    ),
                    g.line,
                ))
            }
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
        let mut out = Vec::new();
        for scheme in ["http", "https"] {
            let pattern = OriginPattern::parse(&format!("{scheme}://{item}")).map_err(|e| {
                self.invalid(
                    &g.name,
                    item,
                    format!("origins such as https://crm.example.com, or host names: {e}"),
                    g.line,
                )
            })?;
            out.push(data_only(pattern, true));
        }
        self.warn(format!(
            "AllowedHosts entry \"{item}\" (line {}) is a bare host name: it allows {} and {}; \
             list the exact origin instead, such as {}",
            g.line, out[0].pattern, out[1].pattern, out[1].pattern
        ));
        Ok(out)
    }
}
