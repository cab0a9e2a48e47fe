//! From `config.xml` text to a validated `Config`.
//!
//! Two passes. The first walks the XML once and collects every scalar setting
//! (from elements and from .NET `appSettings`, names case-insensitive) under
//! its canonical name, refusing a setting given twice and warning about
//! anything it does not know; the `Origins` and `Programs` sections are parsed
//! on the way because they are lists of structured entries. The second pass,
//! in `build`, turns the collected text into typed values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use roxmltree::Node;

use super::error::{file_label, shown, ConfigError};
use super::model::*;
use super::origin::{OriginError, OriginPattern};
use super::values;
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
    "AgentSocket",
    "ServiceUser",
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
    "PickupTimeout",
    "ConfigReloadDebounce",
    "AgentActionTimeout",
    "AgentRestartDelay",
];

/// Sections that are parsed as structures, not scalars.
const SECTIONS: &[&str] = &[
    "Origins",
    "Programs",
    "Limits",
    "Timers",
    "appSettings",
    "GenP2C",
    "RateLimits",
];

/// One scalar setting as written in the file.
#[derive(Debug, Clone)]
pub(super) struct Given {
    /// The name to show in messages (`Socket-port`, `Limits/MaxMessageBytes`).
    pub(super) name: String,
    /// The text value (for lists, every part joined with `;`).
    pub(super) value: String,
    /// 1-based line.
    pub(super) line: u32,
    /// Where it was written, for duplicate messages (`as <Socket-port> at line 3`).
    pub(super) place: String,
}

/// An `<Origin>` entry with the line it was written on.
pub(super) struct OriginAt {
    /// The validated entry.
    pub(super) entry: OriginEntry,
    /// 1-based line of its `<Origin>` element.
    pub(super) line: u32,
}

/// State of one parse: the file label, the folder relative paths resolve
/// against, the collected settings and the warnings so far.
pub(super) struct Parser {
    /// The file as named in messages.
    pub(super) file: String,
    /// Folder that relative paths resolve against (the config file's).
    pub(super) base_dir: Option<PathBuf>,
    /// Byte offsets of every `\n`, to turn node offsets into line numbers.
    pub(super) newlines: Vec<usize>,
    /// Scalar settings by canonical name (`Socket-port`, `Limits/MaxConnections`;
    /// `Limits/MaxMessageBytes` is collected as `ByteSizeReader`).
    pub(super) settings: HashMap<String, Given>,
    /// `<Origin>` entries in file order.
    pub(super) origins: Vec<OriginAt>,
    /// `<Program>` entries in file order, with their lines.
    pub(super) programs: Vec<(Program, u32)>,
    /// `<GenP2C>`, when given.
    pub(super) gen_p2c: Option<GenP2c>,
    /// The `<RateLimits>` section, when given.
    pub(super) rate_limits: Option<RateLimits>,
    /// Sections met so far and their lines, to refuse a second one.
    pub(super) sections_seen: HashMap<String, u32>,
    /// Warnings so far, each prefixed with the file.
    pub(super) warnings: Vec<String>,
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
        gen_p2c: None,
        rate_limits: None,
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

/// A per-minute count: a whole number, 0 = unlimited.
fn per_minute(text: &str) -> values::Parsed<u32> {
    let expected = || "a whole number of requests per minute (0 = unlimited)".to_string();
    let n = values::whole_number(text).map_err(|_| expected())?;
    u32::try_from(n).map_err(|_| expected())
}

/// Case-insensitive lookup of a canonical name.
fn canonical(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

/// A hint for an unknown name: a close spelling of a known one
/// (`SocketPort` for `Socket-port`), or the section a field belongs in
/// (`MaxConnections` goes inside `<Limits>`). Empty when nothing is close.
fn hint(name: &str) -> String {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let n = norm(name);
    let find = |known: &[&'static str]| known.iter().copied().find(|k| norm(k) == n);
    if let Some(k) = find(ROOT_SETTINGS).or_else(|| find(SECTIONS)) {
        format!(" (did you mean {k}?)")
    } else if let Some(k) = find(LIMIT_SETTINGS) {
        format!(" ({k} belongs inside <Limits>)")
    } else if let Some(k) = find(TIMER_SETTINGS) {
        format!(" ({k} belongs inside <Timers>)")
    } else {
        String::new()
    }
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

    pub(super) fn warn(&mut self, message: String) {
        self.warnings.push(format!("{}: {message}", self.file));
    }

    pub(super) fn invalid(
        &self,
        setting: &str,
        value: &str,
        expected: String,
        line: u32,
    ) -> ConfigError {
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
        let hint = hint(&name);
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
                if section == "GenP2C" {
                    self.gen_p2c_element(child)?;
                    continue;
                }
                if section == "RateLimits" {
                    self.rate_limits_section(child)?;
                    continue;
                }
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
                    let hint = hint(key.trim());
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

    /// `<RateLimits perMinute="6000" quarantine="1m" malformedPerMinute="20">`
    /// with `<RateLimit action="showPickupDialog" perMinute="20" quarantine="5m"/>`
    /// children. Unset attributes and unlisted actions keep the embedded
    /// defaults (`RateLimits::default()`).
    fn rate_limits_section(&mut self, node: Node) -> Result<(), ConfigError> {
        let line = self.line(node);
        self.check_attributes(
            node,
            &["perMinute", "quarantine", "malformedPerMinute"],
            "<RateLimits>",
        );
        self.warn_stray_text(node, "<RateLimits>");
        let mut out = RateLimits::default();
        out.default = self.rate_limit(node, "RateLimits", out.default, line)?;
        if let Some(text) = Self::attribute(node, "malformedPerMinute") {
            out.malformed_per_minute = per_minute(text)
                .map_err(|e| self.invalid("RateLimits/malformedPerMinute", text, e, line))?;
        }
        let mut seen: HashMap<String, u32> = HashMap::new();
        for child in node.children().filter(Node::is_element) {
            if !child.tag_name().name().eq_ignore_ascii_case("RateLimit") {
                self.warn_unknown_element(child, "<RateLimits>");
                continue;
            }
            let cline = self.line(child);
            self.check_attributes(child, &["action", "perMinute", "quarantine"], "<RateLimit>");
            self.warn_stray_text(child, "<RateLimit>");
            for c in child.children().filter(Node::is_element) {
                self.warn_unknown_element(c, "<RateLimit>");
            }
            let text = Self::attribute(child, "action").unwrap_or("").trim();
            // Action names are case-sensitive on the wire; accept any case here
            // and store the protocol's spelling.
            let Some(action) = crate::protocol::ACTIONS
                .iter()
                .copied()
                .find(|a| a.eq_ignore_ascii_case(text))
            else {
                return Err(self.invalid(
                    "RateLimits/RateLimit/action",
                    text,
                    "a protocol action name such as showPickupDialog (docs/protocol.md §4)".into(),
                    cline,
                ));
            };
            let me = format!("RateLimits/RateLimit({action})");
            if let Some(first) = seen.insert(action.to_string(), cline) {
                return Err(self.duplicate(
                    &me,
                    &format!("at line {first}"),
                    &format!("at line {cline}"),
                ));
            }
            let base = out.for_action(action);
            let limit = self.rate_limit(child, &me, base, cline)?;
            match out.actions.iter_mut().find(|(a, _)| a == action) {
                Some((_, l)) => *l = limit,
                None => out.actions.push((action.to_string(), limit)),
            }
        }
        self.rate_limits = Some(out);
        Ok(())
    }

    /// The `perMinute` and `quarantine` attributes of `node` over `base`.
    fn rate_limit(
        &mut self,
        node: Node,
        me: &str,
        base: RateLimit,
        line: u32,
    ) -> Result<RateLimit, ConfigError> {
        let mut limit = base;
        if let Some(text) = Self::attribute(node, "perMinute") {
            limit.per_minute = per_minute(text)
                .map_err(|e| self.invalid(&format!("{me}/perMinute"), text, e, line))?;
        }
        if let Some(text) = Self::attribute(node, "quarantine") {
            limit.quarantine = values::duration(text)
                .map_err(|e| self.invalid(&format!("{me}/quarantine"), text, e, line))?;
            if limit.quarantine.is_zero() && limit.per_minute > 0 {
                self.warn(format!(
                    "{me} quarantine = 0 (line {line}): once its limit is reached, requests                      are refused until the daemon restarts"
                ));
            }
        }
        Ok(limit)
    }

    /// `<GenP2C enabled="true" toolbarTitle="Workspace"/>`.
    fn gen_p2c_element(&mut self, node: Node) -> Result<(), ConfigError> {
        let line = self.line(node);
        self.check_attributes(node, &["enabled", "toolbarTitle"], "<GenP2C>");
        self.warn_stray_text(node, "<GenP2C>");
        for c in node.children().filter(Node::is_element) {
            self.warn_unknown_element(c, "<GenP2C>");
        }
        let enabled = match Self::attribute(node, "enabled") {
            None => false,
            Some(text) => {
                values::boolean(text).map_err(|e| self.invalid("GenP2C/enabled", text, e, line))?
            }
        };
        let toolbar_title = match Self::attribute(node, "toolbarTitle").map(str::trim) {
            None | Some("") => None,
            Some(t) if t.chars().any(char::is_control) => {
                return Err(self.invalid(
                    "GenP2C/toolbarTitle",
                    t,
                    "a window title without control characters".into(),
                    line,
                ))
            }
            Some(t) => Some(t.to_string()),
        };
        if enabled {
            self.warn(format!(
                "GenP2C enabled (line {line}): pages with the launch capability may start \
                 declared programs through the v1 GEN_P2C requests"
            ));
        }
        self.gen_p2c = Some(GenP2c {
            enabled,
            toolbar_title,
        });
        Ok(())
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
        self.check_attributes(
            node,
            &["name", "path", "args", "parameter", "openUrl"],
            "<Program>",
        );
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
        let open_url = match Self::attribute(node, "openUrl") {
            None => false,
            Some(text) => values::boolean(text)
                .map_err(|e| self.invalid(&format!("{me}/openUrl"), text, e, line))?,
        };
        Ok((
            Program {
                name,
                path,
                args,
                parameter_rule,
                open_url,
            },
            line,
        ))
    }
}
