//! Parsers for the scalar values of `config.xml`: ports, sizes, durations,
//! booleans, enumerations, lists, host names, variable patterns and program
//! parameter rules.
//!
//! Each parser is pure and returns `Err(expected)`, a phrase saying what was
//! expected; the caller knows the file, the setting and the value, and turns
//! that into a `ConfigError` naming all four.

use std::time::Duration;

use super::model::{Capabilities, LogLevel, Mode, SocketType};

/// The result of a value parser: the value, or what was expected instead.
pub type Parsed<T> = Result<T, String>;

/// `WS` or `WSS`, any case.
pub fn socket_type(text: &str) -> Parsed<SocketType> {
    match text.trim().to_ascii_uppercase().as_str() {
        "WS" => Ok(SocketType::Ws),
        "WSS" => Ok(SocketType::Wss),
        _ => Err("WS or WSS".into()),
    }
}

/// A TCP port; 0 asks the OS for any free port (used by tests).
pub fn port(text: &str) -> Parsed<u16> {
    let t = text.trim();
    let expected = || "a port number from 1 to 65535 (0 = any free port, for tests)".to_string();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    t.parse::<u16>().map_err(|_| expected())
}

/// The legacy log levels OFF, FATAL, ERROR, WARN, INFO, DEBUG, ALL, any case.
pub fn log_level(text: &str) -> Parsed<LogLevel> {
    Ok(match text.trim().to_ascii_uppercase().as_str() {
        "OFF" => LogLevel::Off,
        "FATAL" => LogLevel::Fatal,
        "ERROR" => LogLevel::Error,
        "WARN" => LogLevel::Warn,
        "INFO" => LogLevel::Info,
        "DEBUG" => LogLevel::Debug,
        "ALL" => LogLevel::All,
        _ => return Err("one of OFF, FATAL, ERROR, WARN, INFO, DEBUG, ALL".into()),
    })
}

/// The legacy spelling of a log level, as `describe` prints it.
pub fn log_level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Off => "OFF",
        LogLevel::Fatal => "FATAL",
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
        LogLevel::All => "ALL",
    }
}

/// `single-user` or `service`, any case.
pub fn mode(text: &str) -> Parsed<Mode> {
    match text.trim().to_ascii_lowercase().as_str() {
        "single-user" => Ok(Mode::SingleUser),
        "service" => Ok(Mode::Service),
        _ => Err("single-user or service".into()),
    }
}

/// The configuration spelling of a mode.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::SingleUser => "single-user",
        Mode::Service => "service",
    }
}

/// `true` or `false`, any case (.NET writes `True`).
pub fn boolean(text: &str) -> Parsed<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("true or false".into()),
    }
}

/// A count: a whole number greater than zero.
pub fn count(text: &str) -> Parsed<usize> {
    let t = text.trim();
    let expected = || "a whole number greater than 0".to_string();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    match t.parse::<usize>() {
        Ok(0) | Err(_) => Err(expected()),
        Ok(n) => Ok(n),
    }
}

/// A whole number, zero allowed (`MaxFiles`).
pub fn whole_number(text: &str) -> Parsed<usize> {
    let t = text.trim();
    let expected = || "a whole number (0 or more)".to_string();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    t.parse::<usize>().map_err(|_| expected())
}

/// A size in bytes: `1048576`, or with a 1024-based `KB`, `MB` or `GB` suffix
/// (any case, optional space), such as `10MB`. Must be greater than zero.
pub fn size(text: &str) -> Parsed<u64> {
    let expected = || {
        "a size greater than 0, in bytes or with a KB, MB or GB suffix, such as 10MB".to_string()
    };
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(expected());
    }
    let factor: u64 = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return Err(expected()),
    };
    let n: u64 = number.parse().map_err(|_| expected())?;
    match n.checked_mul(factor) {
        Some(0) | None => Err(expected()),
        Some(bytes) => Ok(bytes),
    }
}

/// A size that must fit in memory (`usize`).
pub fn size_usize(text: &str) -> Parsed<usize> {
    let bytes = size(text)?;
    usize::try_from(bytes).map_err(|_| "a size this machine can address".to_string())
}

/// A duration with a unit: `250ms`, `10s`, `2m`, `1h` (any case, optional
/// space). A bare number is refused because `30` could mean seconds or
/// milliseconds; a bare `0` is unambiguous and accepted.
pub fn duration(text: &str) -> Parsed<Duration> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let unit = unit.trim_start().to_ascii_lowercase();
    if number.is_empty() {
        return Err("a duration with a unit: ms, s, m or h, such as 10s".into());
    }
    let n: u64 = number
        .parse()
        .map_err(|_| "a duration that is not absurdly large".to_string())?;
    if unit.is_empty() {
        if n == 0 {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "a duration with a unit: add ms, s, m or h, such as {n}s or {n}ms"
        ));
    }
    let secs_per: u64 = match unit.as_str() {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err("a duration with a unit: ms, s, m or h, such as 10s".into()),
    };
    n.checked_mul(secs_per)
        .map(Duration::from_secs)
        .ok_or_else(|| "a duration that is not absurdly large".to_string())
}

/// A duration in the largest unit that shows it exactly (`90s`, `2m`, `250ms`).
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A size in the largest 1024-based unit that shows it exactly (`10MB`, `1000`).
pub fn size_text(bytes: u64) -> String {
    for (factor, unit) in [(1u64 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")] {
        if bytes >= factor && bytes % factor == 0 {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

/// Split a list written with `;`, `,`, spaces or new lines; empty items dropped.
pub fn list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Capability names, separated like a list; unknown names are refused.
pub fn capabilities(text: &str) -> Parsed<Capabilities> {
    let mut caps = Capabilities::default();
    for name in list(text) {
        let flag = match name.to_ascii_lowercase().as_str() {
            "data" => &mut caps.data,
            "launch" => &mut caps.launch,
            "openurl" => &mut caps.open_url,
            "window" => &mut caps.window,
            "notify" => &mut caps.notify,
            "dialog" => &mut caps.dialog,
            _ => {
                return Err(format!(
                    "capability names from: data, launch, openUrl, window, notify, dialog \
                     ('{name}' is not one)"
                ))
            }
        };
        *flag = true;
    }
    Ok(caps)
}

/// A host name for `ExtraHostNames`: DNS labels of letters, digits and `-`,
/// no scheme, no port. Returned in lower case, as the `Host` header is compared.
pub fn host_name(text: &str) -> Parsed<String> {
    let host = text.trim().to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(host)
    } else {
        Err(
            "a host name such as crm-local.corp (letters, digits, '-' and '.'; no scheme, no port)"
                .into(),
        )
    }
}

/// One `ENV.VAR` allow-list pattern: exactly one `.`, both sides non-empty,
/// `*` as the only wildcard.
pub fn var_pattern(text: &str) -> Parsed<String> {
    let p = text.trim();
    let expected = || {
        "ENV.VAR patterns with exactly one '.', such as VOICE.* or *.CallId ('*' matches anything)"
            .to_string()
    };
    match p.split_once('.') {
        Some((env, var)) if !env.is_empty() && !var.is_empty() && !var.contains('.') => {
            if p.chars()
                .any(|c| c.is_control() || c == '"' || c == '<' || c == '>')
            {
                Err(expected())
            } else {
                Ok(p.to_string())
            }
        }
        _ => Err(expected()),
    }
}

/// A URL pattern for `openUrl`: an http or https URL, `*` as wildcard.
pub fn open_url_pattern(text: &str) -> Parsed<String> {
    let p = text.trim();
    let lower = p.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(p.to_string()),
        _ => Err("http:// or https:// URL patterns, such as https://crm.example.com/*".into()),
    }
}

/// A program parameter rule: a valid regular expression anchored at both
/// ends (`^...$`), so a parameter can never smuggle extra text around what
/// the rule describes. Alternatives must sit inside a group: `^a|b$` is not
/// anchored as a whole and is refused.
pub fn parameter_rule(text: &str) -> Parsed<String> {
    use regex_syntax::hir::Look;
    let rule = text.trim();
    let hir = regex_syntax::Parser::new().parse(rule).map_err(|e| {
        format!(
            "a valid regular expression ({})",
            first_line(&e.to_string())
        )
    })?;
    let props = hir.properties();
    if props.look_set_prefix().contains(Look::Start) && props.look_set_suffix().contains(Look::End)
    {
        Ok(rule.to_string())
    } else {
        Err(
            "a regular expression anchored at both ends, such as ^[A-Za-z0-9._-]{1,64}$ \
             (put alternatives in a group: ^(?:a|b)$)"
                .into(),
        )
    }
}

fn first_line(s: &str) -> String {
    // regex-syntax errors are multi-line pictures; the last line says what is wrong.
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Split a program's `args` attribute on spaces; double quotes group an
/// argument that contains spaces (`--title "My CRM"`).
pub fn arguments(text: &str) -> Parsed<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut have = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                have = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if in_quotes {
        return Err("arguments separated by spaces, with balanced double quotes".into());
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port(" 8443 "), Ok(8443));
        assert_eq!(port("0"), Ok(0));
        assert_eq!(port("65535"), Ok(65535));
        for bad in ["84x3", "", "65536", "-1", "+80", "80.0"] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("64KB"), Ok(64 * 1024));
        assert_eq!(size("10 mb"), Ok(10 * 1024 * 1024));
        assert_eq!(size("2Gb"), Ok(2 << 30));
        assert_eq!(size("7B"), Ok(7));
        for bad in [
            "",
            "0",
            "0KB",
            "10TB",
            "MB",
            "1.5MB",
            "-1",
            "10 M B",
            "99999999999999999999",
        ] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(size_text(10 << 20), "10MB");
        assert_eq!(size_text(1000), "1000");
        assert_eq!(size_text(1536), "1536");
        assert_eq!(size_text(64 << 10), "64KB");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("2 M"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        let err = duration("30").unwrap_err();
        assert!(err.contains("add ms, s, m or h"), "{err}");
        for bad in ["", "s", "10d", "1.5s", "-1s", "10 s s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration_text(Duration::from_millis(250)), "250ms");
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(duration_text(Duration::from_secs(600)), "10m");
    }

    #[test]
    fn lists_split_on_every_separator() {
        assert_eq!(list(" a;b, c\n\td ;;"), vec!["a", "b", "c", "d"]);
        assert!(list(" ; ").is_empty());
    }

    #[test]
    fn capability_names() {
        let c = capabilities("data notify,openUrl").unwrap();
        assert_eq!(c.names(), vec!["data", "openUrl", "notify"]);
        assert_eq!(capabilities(""), Ok(Capabilities::default()));
        assert!(capabilities("data fly").unwrap_err().contains("'fly'"));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("CTX.Corp.Local"), Ok("ctx.corp.local".into()));
        for bad in ["", "a..b", "-a.b", "a:80", "http://a", "a_b", "a b"] {
            assert!(host_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn var_patterns() {
        assert!(var_pattern("VOICE.*").is_ok());
        assert!(var_pattern("*.*").is_ok());
        for bad in ["VOICE", "A.B.C", ".x", "x.", ""] {
            assert!(var_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parameter_rules_must_be_anchored() {
        assert!(parameter_rule("^[A-Za-z0-9._-]{1,64}$").is_ok());
        assert!(parameter_rule("^(?:a|b)$").is_ok());
        for bad in ["[a-z]+", "^[a-z]+", "[a-z]+$", "^a|b$", "^a\\$", "(?m)^a$"] {
            assert!(parameter_rule(bad).is_err(), "{bad}");
        }
        assert!(parameter_rule("^[a-$")
            .unwrap_err()
            .contains("valid regular"));
    }

    #[test]
    fn argument_splitting() {
        assert_eq!(
            arguments(r#"--new-window  --title "My CRM" """#).unwrap(),
            vec!["--new-window", "--title", "My CRM", ""]
        );
        assert!(arguments("\"open").is_err());
        assert!(arguments("  ").unwrap().is_empty());
    }
}
