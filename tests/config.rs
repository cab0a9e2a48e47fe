//! config.xml: every error kind, both legacy forms, the new sections,
//! warnings, discovery order and the check-config description.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wsconnector::config::{
    describe, discover_in, load_file, parse_str, Capabilities, Config, ConfigError, ConfigSource,
    Loaded, LogLevel, Mode, OriginPattern, SocketType,
};

const FILE: &str = "/etc/wsconnector/config.xml";

fn source() -> ConfigSource {
    ConfigSource::File(PathBuf::from(FILE))
}

fn load(xml: &str) -> Loaded {
    match parse_str(xml, source()) {
        Ok(l) => l,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The error for `xml`, with its message checked to name the file.
fn error(xml: &str) -> ConfigError {
    match parse_str(xml, source()) {
        Ok(l) => panic!("expected an error, got {:?}", l.config),
        Err(e) => {
            assert!(e.to_string().starts_with(FILE), "no file in: {e}");
            e
        }
    }
}

/// Wrap settings in a root element.
fn doc(body: &str) -> String {
    format!("<configuration>\n{body}\n</configuration>\n")
}

/// Assert an `Invalid` error about `setting` with `value`, whose expectation contains `expect`.
fn assert_invalid(e: &ConfigError, setting: &str, value: &str, expect: &str) {
    match e {
        ConfigError::Invalid {
            setting: s,
            value: v,
            expected,
            ..
        } => {
            assert_eq!(s, setting, "{e}");
            assert_eq!(v, value, "{e}");
            assert!(expected.contains(expect), "{e}");
        }
        other => panic!("expected Invalid for {setting}, got {other:?}"),
    }
}

// ----- error kinds -----

#[test]
fn bad_port() {
    let e = error(&doc("<Socket-port>84x3</Socket-port>"));
    assert_invalid(&e, "Socket-port", "84x3", "port number from 1 to 65535");
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}: Socket-port = \"84x3\": expected a port number from 1 to 65535 \
             (0 = any free port, for tests) (line 2)"
        )
    );
    let e = error(&doc("<Socket-port>70000</Socket-port>"));
    assert_invalid(&e, "Socket-port", "70000", "port number");
}

#[test]
fn port_zero_is_allowed_and_default_is_8443() {
    assert_eq!(load(&doc("<Socket-port>0</Socket-port>")).config.port, 0);
    assert_eq!(load(&doc("")).config.port, 8443);
}

#[test]
fn bad_socket_type() {
    let e = error(&doc("<Socket-type>TCP</Socket-type>"));
    assert_invalid(&e, "Socket-type", "TCP", "WS or WSS");
}

#[test]
fn bad_log_level() {
    let e = error(&doc("<Log-level>VERBOSE</Log-level>"));
    assert_invalid(
        &e,
        "Log-level",
        "VERBOSE",
        "OFF, FATAL, ERROR, WARN, INFO, DEBUG, ALL",
    );
}

#[test]
fn bad_size() {
    let e = error(&doc("<Filesize>10TB</Filesize>"));
    assert_invalid(&e, "Filesize", "10TB", "KB, MB or GB");
    let e = error(&doc("<ByteSizeReader>0</ByteSizeReader>"));
    assert_invalid(&e, "ByteSizeReader", "0", "greater than 0");
}

#[test]
fn bad_duration_and_missing_unit() {
    let e = error(&doc("<Timers><IdleTimeout>30</IdleTimeout></Timers>"));
    assert_invalid(&e, "Timers/IdleTimeout", "30", "add ms, s, m or h");
    let e = error(&doc("<Timers><PingInterval>5 days</PingInterval></Timers>"));
    assert_invalid(&e, "Timers/PingInterval", "5 days", "unit");
    let e = error(&doc(
        "<Timers><HandshakeTimeout>0s</HandshakeTimeout></Timers>",
    ));
    assert_invalid(&e, "Timers/HandshakeTimeout", "0s", "greater than zero");
}

#[test]
fn hello_timeout_zero_means_off() {
    let c = load(&doc("<Timers><HelloTimeout>0</HelloTimeout></Timers>")).config;
    assert_eq!(c.timers.hello, Duration::ZERO);
}

#[test]
fn wss_without_certificate() {
    let e = error(&doc("<Socket-type>wss</Socket-type>"));
    assert_invalid(&e, "Socket-type", "wss", "Certificate-path");
}

#[test]
fn bad_origin() {
    let e = error(&doc(
        "<AllowedHosts>https://crm.example.com/app</AllowedHosts>",
    ));
    assert_invalid(&e, "AllowedHosts", "https://crm.example.com/app", "no path");
    let e = error(&doc("<AllowedHosts>ftp://files.example.com</AllowedHosts>"));
    assert_invalid(
        &e,
        "AllowedHosts",
        "ftp://files.example.com",
        "http or https",
    );
    let e = error(&doc(
        r#"<Origins><Origin url="crm.example.com"/></Origins>"#,
    ));
    assert_invalid(
        &e,
        "Origins/Origin/url",
        "crm.example.com",
        "https://crm.example.com",
    );
    let e = error(&doc(r#"<Origins><Origin/></Origins>"#));
    assert_invalid(&e, "Origins/Origin/url", "", "a url attribute");
}

#[test]
fn null_and_star_origins() {
    for bad in ["null", "NULL", "*"] {
        let e = error(&doc(&format!(
            "<AllowedHosts>https://a.example.com;{bad}</AllowedHosts>"
        )));
        assert_invalid(&e, "AllowedHosts", bad, "never allowed");
    }
    let e = error(&doc(r#"<Origins><Origin url="null"/></Origins>"#));
    assert_invalid(&e, "Origins/Origin/url", "null", "never allowed");
}

#[test]
fn bad_capability() {
    let e = error(&doc(
        r#"<Origins><Origin url="https://crm.example.com" capabilities="data fly"/></Origins>"#,
    ));
    assert_invalid(
        &e,
        "Origins/Origin(https://crm.example.com)/capabilities",
        "data fly",
        "'fly' is not one",
    );
}

#[test]
fn bad_var_pattern() {
    for bad in ["VOICE", "A.B.C"] {
        let e = error(&doc(&format!(
            r#"<Origins><Origin url="https://crm.example.com"><Read>VOICE.*;{bad}</Read></Origin></Origins>"#
        )));
        assert_invalid(
            &e,
            "Origins/Origin(https://crm.example.com)/Read",
            bad,
            "exactly one '.'",
        );
    }
}

#[test]
fn duplicate_setting_names_both_places() {
    // Same form twice.
    let e = error(&doc(
        "<Socket-port>1</Socket-port>\n<SOCKET-PORT>2</SOCKET-PORT>",
    ));
    match &e {
        ConfigError::Duplicate {
            setting,
            first,
            second,
            ..
        } => {
            assert_eq!(setting, "Socket-port");
            assert!(first.contains("line 2"), "{e}");
            assert!(second.contains("line 3"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Element and appSettings forms.
    let e = error(&doc(
        "<Socket-port>1</Socket-port>\n<appSettings><add key=\"socket-port\" value=\"2\"/></appSettings>",
    ));
    let text = e.to_string();
    assert!(text.contains("<Socket-port> at line 2"), "{text}");
    assert!(
        text.contains("appSettings key \"socket-port\" at line 3"),
        "{text}"
    );
    // ByteSizeReader and its alias Limits/MaxMessageBytes.
    let e = error(&doc(
        "<ByteSizeReader>1MB</ByteSizeReader><Limits><MaxMessageBytes>2MB</MaxMessageBytes></Limits>",
    ));
    assert!(matches!(e, ConfigError::Duplicate { .. }), "{e}");
    assert!(e.to_string().contains("MaxMessageBytes"), "{e}");
    // Two sections, two origins with the same url, two programs with one name.
    let e = error(&doc("<Limits/><Limits/>"));
    assert!(matches!(e, ConfigError::Duplicate { .. }), "{e}");
    let e = error(&doc(
        r#"<Origins><Origin url="https://a.example.com"/><Origin url="HTTPS://A.example.com:443"/></Origins>"#,
    ));
    assert!(matches!(e, ConfigError::Duplicate { .. }), "{e}");
    let e = error(&doc(
        r#"<Programs><Program name="x" path="/bin/true"/><Program name="X" path="/bin/false"/></Programs>"#,
    ));
    assert!(matches!(e, ConfigError::Duplicate { .. }), "{e}");
}

#[test]
fn program_path_not_absolute() {
    let e = error(&doc(
        r#"<Programs><Program name="ed" path="bin/gedit"/></Programs>"#,
    ));
    assert_invalid(
        &e,
        "Programs/Program(ed)/path",
        "bin/gedit",
        "absolute path",
    );
}

#[test]
fn batch_programs_are_refused() {
    for path in ["/opt/run.bat", "/opt/RUN.CMD", "/opt/run.bat. "] {
        let e = error(&doc(&format!(
            r#"<Programs><Program name="run" path="{path}"/></Programs>"#
        )));
        assert_invalid(
            &e,
            "Programs/Program(run)/path",
            path.trim(),
            ".bat and .cmd",
        );
    }
}

#[test]
fn unanchored_parameter_rule() {
    for rule in ["[a-z]+", "^[a-z]+", "^a|b$"] {
        let e = error(&doc(&format!(
            r#"<Programs><Program name="ed" path="/usr/bin/gedit" parameter="{rule}"/></Programs>"#
        )));
        assert_invalid(&e, "Programs/Program(ed)/parameter", rule, "anchored");
    }
}

#[test]
fn per_connection_limit_above_total() {
    let e = error(&doc(
        "<Limits><MaxConnections>10</MaxConnections><MaxConnectionsPerUser>11</MaxConnectionsPerUser></Limits>",
    ));
    assert_invalid(
        &e,
        "Limits/MaxConnectionsPerUser",
        "11",
        "at most Limits/MaxConnections (10)",
    );
    // Lowering only the total is caught too (the part keeps its default).
    let e = error(&doc("<Limits><MaxVariables>100</MaxVariables></Limits>"));
    assert_invalid(
        &e,
        "Limits/MaxVariables",
        "100",
        "at least Limits/MaxVariablesPerConnection (5000, its default)",
    );
    let e = error(&doc("<Limits><OutboxMessages>0</OutboxMessages></Limits>"));
    assert_invalid(&e, "Limits/OutboxMessages", "0", "greater than 0");
    let e = error(&doc(
        "<ByteSizeReader>64KB</ByteSizeReader><Limits><MaxFrameBytes>1MB</MaxFrameBytes></Limits>",
    ));
    assert_invalid(
        &e,
        "Limits/MaxFrameBytes",
        "1MB",
        "at most ByteSizeReader (64KB)",
    );
}

#[test]
fn xml_syntax_error_has_line_and_column() {
    let e = error("<configuration>\n  <Socket-port>8443</Socket-port>\n  <Log-level>INFO</Log-levl>\n</configuration>");
    match e {
        ConfigError::Xml { line, column, .. } => {
            assert_eq!(line, 3);
            assert!(column > 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_extra_host_name_and_booleans_and_mode() {
    let e = error(&doc(
        "<ExtraHostNames>ctx.corp.local;crm:8443</ExtraHostNames>",
    ));
    assert_invalid(&e, "ExtraHostNames", "crm:8443", "host name");
    let e = error(&doc("<AllowOtherUsers>yes</AllowOtherUsers>"));
    assert_invalid(&e, "AllowOtherUsers", "yes", "true or false");
    let e = error(&doc("<Mode>multi</Mode>"));
    assert_invalid(&e, "Mode", "multi", "single-user or service");
}

#[test]
fn missing_explicit_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.xml");
    let e = discover_in(Some(&missing), &[]).unwrap_err();
    assert!(matches!(e, ConfigError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope.xml"), "{e}");
}

// ----- forms and values -----

#[test]
fn legacy_app_settings_form() {
    let l = load(
        r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <appSettings>
    <add key="Socket-type" value="WSS"/>
    <add key="Socket-port" value="9443"/>
    <add key="Log-level" value="DEBUG"/>
    <add key="Log-path" value="C:\logs"/>
    <add key="Password" value="s3cret"/>
    <add key="Certificate-path" value="certs/localhost.pfx"/>
    <add key="Filesize" value="5MB"/>
    <add key="ByteSizeReader" value="65536"/>
    <add key="MaxFiles" value="3"/>
    <add key="AllowedHosts" value="https://crm.example.com;http://localhost:3000"/>
  </appSettings>
</configuration>"#,
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(c.socket_type, SocketType::Wss);
    assert_eq!(c.port, 9443);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.file_size, 5 * 1024 * 1024);
    assert_eq!(c.log.max_files, 3);
    assert_eq!(c.limits.max_message_bytes, 65536);
    assert_eq!(
        c.limits.max_frame_bytes, 65536,
        "frame follows the message size"
    );
    assert_eq!(
        c.limits.max_value_bytes, 65536,
        "value clamped to the message size"
    );
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(
        tls.certificate_path,
        Path::new("/etc/wsconnector/certs/localhost.pfx"),
        "relative to the config file's folder"
    );
    assert_eq!(tls.password.0, "s3cret");
    let origins: Vec<String> = c.origins.iter().map(|o| o.pattern.to_string()).collect();
    assert_eq!(
        origins,
        ["https://crm.example.com", "http://localhost:3000"]
    );
    assert!(c
        .origins
        .iter()
        .all(|o| o.capabilities == Capabilities::DATA_ONLY));
    assert!(c.origin_entry("https://crm.example.com").is_some());
    assert!(c.origin_entry("http://crm.example.com").is_none());
}

#[test]
fn elements_form_and_case_insensitive_names() {
    let l = load(&doc(r#"<SOCKET-TYPE>wss</SOCKET-TYPE>
<socket-port>8444</socket-port>
<log-LEVEL>warn</log-LEVEL>
<log-path>logs</log-path>
<certificate-path>/etc/ssl/localhost.pem</certificate-path>
<KEY-PATH>localhost.key</KEY-PATH>
<log-values>False</log-values>
<allowedhosts>
  <host>https://crm.example.com</host>
  <HOST>https://*.example.org</HOST>
</allowedhosts>
<extrahostnames>CTX.corp.local, crm-local.corp</extrahostnames>
<mode>Service</mode>
<limits><maxconnections>50</maxconnections><MAXCONNECTIONSPERUSER>5</MAXCONNECTIONSPERUSER></limits>
<TIMERS><idletimeout>250ms</idletimeout><resumetokenttl>1h</resumetokenttl></TIMERS>"#));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(c.socket_type, SocketType::Wss);
    assert_eq!(c.port, 8444);
    assert_eq!(c.log.level, LogLevel::Warn);
    assert_eq!(
        c.log.path.as_deref(),
        Some(Path::new("/etc/wsconnector/logs"))
    );
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.certificate_path, Path::new("/etc/ssl/localhost.pem"));
    assert_eq!(
        tls.key_path.as_deref(),
        Some(Path::new("/etc/wsconnector/localhost.key"))
    );
    assert_eq!(c.extra_host_names, ["ctx.corp.local", "crm-local.corp"]);
    assert_eq!(c.mode, Mode::Service);
    assert_eq!(c.limits.max_connections, 50);
    assert_eq!(c.limits.max_connections_per_user, 5);
    assert_eq!(c.timers.idle, Duration::from_millis(250));
    assert_eq!(c.timers.resume_token_ttl, Duration::from_secs(3600));
    assert_eq!(c.origins.len(), 2);
    assert!(c.origin_entry("https://a.example.org").is_some());
}

#[test]
fn sizes_with_suffixes() {
    let c = load(&doc(
        "<Filesize>512 kb</Filesize><ByteSizeReader>2MB</ByteSizeReader>\
         <Limits><MaxFrameBytes>64KB</MaxFrameBytes><MaxValueBytes>1mb</MaxValueBytes></Limits>",
    ))
    .config;
    assert_eq!(c.log.file_size, 512 * 1024);
    assert_eq!(c.limits.max_message_bytes, 2 * 1024 * 1024);
    assert_eq!(c.limits.max_frame_bytes, 64 * 1024);
    assert_eq!(c.limits.max_value_bytes, 1024 * 1024);
}

#[test]
fn max_message_bytes_alias() {
    let c = load(&doc(
        "<Limits><MaxMessageBytes>4MB</MaxMessageBytes></Limits>",
    ))
    .config;
    assert_eq!(c.limits.max_message_bytes, 4 << 20);
    assert_eq!(c.limits.max_frame_bytes, 4 << 20);
}

#[test]
fn bare_host_names_map_to_http_and_https_with_a_warning() {
    let l = load(&doc(
        "<AllowedHosts>crm.example.com;localhost:3000</AllowedHosts>",
    ));
    let c = &l.config;
    let origins: Vec<String> = c.origins.iter().map(|o| o.pattern.to_string()).collect();
    assert_eq!(
        origins,
        [
            "http://crm.example.com",
            "https://crm.example.com",
            "http://localhost:3000",
            "https://localhost:3000"
        ]
    );
    assert!(c.origins.iter().all(|o| o.from_bare_host));
    assert!(c
        .origins
        .iter()
        .all(|o| o.capabilities == Capabilities::DATA_ONLY));
    assert!(c.origin_entry("https://crm.example.com:443").is_none());
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("\"crm.example.com\""),
        "{}",
        l.warnings[0]
    );
    assert!(l.warnings[0].contains("exact origin"), "{}", l.warnings[0]);
    assert!(l.warnings[0].starts_with(FILE), "{}", l.warnings[0]);
}

#[test]
fn origins_section_wins_over_allowed_hosts() {
    let c = load(&doc(
        r#"<AllowedHosts>https://crm.example.com;https://*.example.com;https://other.example.net</AllowedHosts>
<Origins>
  <Origin url="https://crm.example.com" capabilities="data notify dialog">
    <Read>VOICE.*;AGENT.*</Read>
    <Write>VOICE.GEN_P2T</Write>
  </Origin>
  <Origin url="https://tool.example.net" capabilities="notify"/>
  <Origin url="https://open.example.net" capabilities="data openUrl">
    <OpenUrl>https://crm.example.com/*</OpenUrl>
  </Origin>
</Origins>"#,
    ))
    .config;
    let urls: Vec<String> = c.origins.iter().map(|o| o.pattern.to_string()).collect();
    assert_eq!(
        urls,
        [
            "https://crm.example.com",
            "https://tool.example.net",
            "https://open.example.net",
            "https://other.example.net",
            "https://*.example.com"
        ],
        "no duplicate, exact before wildcard"
    );
    let crm = c.origin_entry("https://crm.example.com").unwrap();
    assert_eq!(crm.capabilities.names(), ["data", "notify", "dialog"]);
    assert!(crm.read.allows("VOICE", "GEN_T2P"));
    assert!(!crm.read.allows("CRM", "x"));
    assert!(crm.write.allows("VOICE", "GEN_P2T"));
    assert!(!crm.write.allows("VOICE", "GEN_T2P"));
    // The wildcard from AllowedHosts still covers other subdomains, data only.
    let sub = c.origin_entry("https://a.example.com").unwrap();
    assert_eq!(sub.capabilities, Capabilities::DATA_ONLY);
    assert!(sub.read.allows_all());
    let tool = c.origin_entry("https://tool.example.net").unwrap();
    assert_eq!(tool.capabilities.names(), ["notify"]);
    let open = c.origin_entry("https://open.example.net").unwrap();
    assert_eq!(open.open_url_patterns, ["https://crm.example.com/*"]);
}

#[test]
fn missing_capabilities_means_data() {
    let c = load(&doc(
        r#"<Origins><Origin url="https://a.example.com"/></Origins>"#,
    ))
    .config;
    assert_eq!(c.origins[0].capabilities, Capabilities::DATA_ONLY);
    assert_eq!(
        c.origins[0].pattern,
        OriginPattern::parse("https://a.example.com").unwrap()
    );
}

#[test]
fn programs_section() {
    let c = load(&doc(
        r#"<Programs>
  <Program name="editor" path="/usr/bin/gedit" args='--new-window --title "My CRM"' parameter="^[A-Za-z0-9._-]{1,64}$">
    <Arg>--x y</Arg>
  </Program>
  <Program name="calc" path="/usr/bin/gnome-calculator"/>
</Programs>"#,
    ))
    .config;
    assert_eq!(c.programs.len(), 2);
    let ed = &c.programs[0];
    assert_eq!(ed.name, "editor");
    assert_eq!(ed.path, Path::new("/usr/bin/gedit"));
    assert_eq!(ed.args, ["--new-window", "--title", "My CRM", "--x y"]);
    assert_eq!(ed.parameter_rule.as_deref(), Some("^[A-Za-z0-9._-]{1,64}$"));
    assert_eq!(c.programs[1].parameter_rule, None);
    assert!(
        !ed.open_url && !c.programs[1].open_url,
        "openUrl is off by default"
    );
}

#[test]
fn program_open_url_attribute() {
    let l = load(&doc(r#"<Programs>
  <Program name="chrome.exe" path="/usr/bin/chromium" openUrl="True" parameter="^[a-z]{1,8}$"/>
  <Program name="ed" path="/usr/bin/gedit" OPENURL="false"/>
</Programs>"#));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(l.config.programs[0].open_url);
    assert!(!l.config.programs[1].open_url);
    let e = error(&doc(
        r#"<Programs><Program name="chrome.exe" path="/usr/bin/chromium" openUrl="yes"/></Programs>"#,
    ));
    assert_invalid(
        &e,
        "Programs/Program(chrome.exe)/openUrl",
        "yes",
        "true or false",
    );
}

#[test]
fn unknown_settings_are_warnings() {
    let l = load(&doc(r#"<SocketPort>1</SocketPort>
<appSettings><add key="Colour" value="blue"/></appSettings>
<Limits><MaxThings>3</MaxThings></Limits>
<Origins><Origin url="https://a.example.com" colour="red"/></Origins>"#));
    assert_eq!(l.config.port, 8443, "unknown settings change nothing");
    let all = l.warnings.join("\n");
    assert_eq!(l.warnings.len(), 4, "{all}");
    assert!(
        all.contains("<SocketPort>") && all.contains("did you mean Socket-port?"),
        "{all}"
    );
    assert!(all.contains("\"Colour\""), "{all}");
    assert!(all.contains("<MaxThings>"), "{all}");
    let l = load(&doc("<MaxConnections>3</MaxConnections>"));
    assert_eq!(l.config.limits.max_connections, 256);
    assert!(
        l.warnings[0].contains("MaxConnections belongs inside <Limits>"),
        "{:?}",
        l.warnings
    );
    assert!(all.contains("colour=\"red\""), "{all}");
}

#[test]
fn risky_settings_are_warnings() {
    let cases = [
        ("<Certificate-path>x.pfx</Certificate-path>", "Socket-type is WS"),
        (
            "<Socket-type>WSS</Socket-type><Certificate-path>x.pem</Certificate-path><Password>p</Password>",
            "only used to open a .pfx",
        ),
        ("<AllowOtherUsers>true</AllowOtherUsers>", "other OS users"),
        ("<Log-values>TRUE</Log-values>", "customer data"),
        (
            r#"<Origins><Origin url="https://a.example.com" capabilities="openUrl"/></Origins>"#,
            "no <OpenUrl> patterns",
        ),
    ];
    for (body, needle) in cases {
        let l = load(&doc(body));
        assert_eq!(l.warnings.len(), 1, "{body}: {:?}", l.warnings);
        assert!(l.warnings[0].contains(needle), "{body}: {}", l.warnings[0]);
    }
    let ws = load(&doc("<Certificate-path>x.pfx</Certificate-path>")).config;
    assert_eq!(ws.tls, None, "certificate ignored with WS");
}

#[test]
fn any_root_name_bom_and_utf16() {
    let c = load("\u{feff}<settings><Socket-port>1234</Socket-port></settings>").config;
    assert_eq!(c.port, 1234);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.xml");
    let text = "<?xml version=\"1.0\" encoding=\"utf-16\"?><configuration><Socket-port>4321</Socket-port></configuration>";
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(load_file(&path).unwrap().config.port, 4321);
}

// ----- discovery -----

fn write_config(dir: &Path, port: u16) {
    std::fs::write(
        dir.join("config.xml"),
        doc(&format!("<Socket-port>{port}</Socket-port>")),
    )
    .unwrap();
}

#[test]
fn discovery_order() {
    let exe = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let explicit = tempfile::tempdir().unwrap();
    let dirs = [exe.path().to_path_buf(), user.path().to_path_buf()];

    // Nothing anywhere: embedded defaults, no warnings.
    let l = discover_in(None, &dirs).unwrap();
    assert_eq!(l.config, Config::embedded());
    assert!(l.warnings.is_empty());

    // The user directory is used when the exe directory has none.
    write_config(user.path(), 2002);
    let l = discover_in(None, &dirs).unwrap();
    assert_eq!(l.config.port, 2002);
    assert_eq!(
        l.config.source,
        ConfigSource::File(user.path().join("config.xml"))
    );

    // The exe directory wins over the user directory.
    write_config(exe.path(), 1001);
    assert_eq!(discover_in(None, &dirs).unwrap().config.port, 1001);

    // --config wins over both.
    write_config(explicit.path(), 3003);
    let path = explicit.path().join("config.xml");
    assert_eq!(discover_in(Some(&path), &dirs).unwrap().config.port, 3003);

    // A broken file found by discovery is an error, not a silent fall-through.
    std::fs::write(exe.path().join("config.xml"), "<configuration>").unwrap();
    assert!(matches!(
        discover_in(None, &dirs),
        Err(ConfigError::Xml { .. })
    ));
}

// ----- describe -----

#[test]
fn describe_masks_the_password() {
    let c = load(&doc(
        "<Socket-type>WSS</Socket-type><Certificate-path>/c/localhost.pfx</Certificate-path>\
         <Password>hunter2-secret</Password><AllowedHosts>crm.example.com</AllowedHosts>\
         <Programs><Program name=\"ed\" path=\"/usr/bin/gedit\"/></Programs>",
    ))
    .config;
    let text = describe(&c);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("Password = ********"), "{text}");
    assert!(!format!("{c:?}").contains("hunter2"), "Debug masks it too");
    for line in [
        "Socket-type = WSS",
        "Socket-port = 8443",
        "Certificate-path = /c/localhost.pfx",
        "Log-level = INFO",
        "ByteSizeReader = 1MB",
        "Filesize = 10MB",
        "Origin = https://crm.example.com capabilities=data read=*.* write=*.* (from a bare host name in AllowedHosts)",
        "Program = ed path=/usr/bin/gedit parameter=(none allowed)",
        "Limits/MaxConnections = 256",
        "Timers/ResumeTokenTtl = 10m",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.lines().all(|l| l.contains(" = ")), "{text}");
}

#[test]
fn describe_embedded() {
    let text = describe(&Config::embedded());
    assert!(
        text.contains("Config-file = (none: embedded defaults)"),
        "{text}"
    );
    assert!(!text.contains("Password"), "{text}");
}

// ----- the shipped example -----

#[test]
fn example_file_parses_without_warnings_and_documents_every_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.xml.example");
    let text = std::fs::read_to_string(&path).unwrap();
    // Program paths must be absolute on the OS that runs the daemon.
    let for_this_os = if cfg!(windows) {
        text.replace("/usr/bin/gedit", r"C:\Windows\notepad.exe")
            .replace(
                "/usr/bin/chromium",
                r"C:\Program Files\Google\Chrome\Application\chrome.exe",
            )
    } else {
        text.clone()
    };
    let l =
        parse_str(&for_this_os, ConfigSource::File(path.clone())).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
    assert!(
        l.config.programs.iter().any(|p| p.open_url),
        "the example shows a program with openUrl=\"true\""
    );
    let embedded = Config::embedded();
    assert_eq!(
        l.config.limits, embedded.limits,
        "documented limit defaults"
    );
    assert_eq!(
        l.config.timers, embedded.timers,
        "documented timer defaults"
    );
    assert_eq!(l.config.port, embedded.port);
    assert_eq!(l.config.log.level, embedded.log.level);
    assert_eq!(l.config.log.file_size, embedded.log.file_size);
    assert_eq!(l.config.log.max_files, embedded.log.max_files);
    for name in [
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
        "Origins",
        "Programs",
        "ExtraHostNames",
        "AllowOtherUsers",
        "Mode",
        "appSettings",
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
        "HandshakeTimeout",
        "IdleTimeout",
        "PingInterval",
        "PongTimeout",
        "HelloTimeout",
        "ResumeTokenTtl",
        "ShutdownGrace",
        "PickupTimeout",
        "GenP2C",
        "toolbarTitle",
    ] {
        assert!(
            text.contains(name),
            "config.xml.example does not mention {name}"
        );
    }
    // Every capability name is documented.
    for cap in ["data", "launch", "openUrl", "window", "notify", "dialog"] {
        assert!(text.contains(cap), "{cap}");
    }
}

// ----- robustness -----

proptest::proptest! {
    /// Whatever the text, parsing returns a value or an error; it never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "[<>/a-zA-Z0-9=\"' \n;.:*^$-]{0,300}") {
        let _ = parse_str(&text, source());
    }

    /// Arbitrary values for known settings never panic either, and an
    /// accepted configuration always satisfies the cross-setting rules.
    #[test]
    fn arbitrary_values_never_panic(
        name in proptest::sample::select(vec![
            "Socket-type", "Socket-port", "Log-level", "Filesize", "ByteSizeReader",
            "MaxFiles", "AllowedHosts", "ExtraHostNames", "Mode", "Log-values",
        ]),
        value in "[a-zA-Z0-9 .:/*;-]{0,40}",
        limit in proptest::sample::select(vec![
            "MaxFrameBytes", "MaxValueBytes", "MaxConnectionsPerUser", "MaxVariables",
        ]),
        limit_value in "[0-9]{1,8}(KB|MB)?",
    ) {
        let xml = format!(
            "<c><{name}>{value}</{name}><Limits><{limit}>{limit_value}</{limit}></Limits></c>"
        );
        if let Ok(l) = parse_str(&xml, source()) {
            let lim = &l.config.limits;
            proptest::prop_assert!(lim.max_frame_bytes <= lim.max_message_bytes);
            proptest::prop_assert!(lim.max_value_bytes <= lim.max_message_bytes);
            proptest::prop_assert!(lim.max_connections_per_user <= lim.max_connections);
            proptest::prop_assert!(lim.max_variables_per_connection <= lim.max_variables);
        }
    }
}

#[test]
fn app_settings_password_is_exact() {
    let c = load(&doc(r#"<appSettings>
  <add key="Socket-type" value=" wss "/>
  <add key="Certificate-path" value=" c.pfx "/>
  <add key="Password" value=" pass word "/>
</appSettings>"#))
    .config;
    let tls = c.tls.unwrap();
    assert_eq!(tls.password.0, " pass word ", "attribute values are exact");
    assert_eq!(
        tls.certificate_path,
        Path::new("/etc/wsconnector/c.pfx"),
        "paths trimmed"
    );
}

// ----- desktop settings -----

#[test]
fn gen_p2c_is_off_by_default_and_enabled_with_a_warning() {
    let off = load(&doc(""));
    assert!(!off.config.gen_p2c.enabled);
    assert_eq!(off.config.gen_p2c.toolbar_title, None);
    assert!(describe(&off.config).contains("GenP2C"));
    let on = load(&doc(
        r#"<genp2c Enabled="TRUE" toolbarTitle=" Workspace "/>"#,
    ));
    assert!(on.config.gen_p2c.enabled);
    assert_eq!(
        on.config.gen_p2c.toolbar_title.as_deref(),
        Some("Workspace")
    );
    assert!(
        on.warnings.iter().any(|w| w.contains("GenP2C enabled")),
        "{:?}",
        on.warnings
    );
    let explicit_off = load(&doc(r#"<GenP2C enabled="false"/>"#));
    assert!(!explicit_off.config.gen_p2c.enabled);
    assert!(
        explicit_off.warnings.is_empty(),
        "{:?}",
        explicit_off.warnings
    );
    assert_invalid(
        &error(&doc(r#"<GenP2C enabled="yes please"/>"#)),
        "GenP2C/enabled",
        "yes please",
        "true",
    );
    assert!(matches!(
        error(&doc("<GenP2C/>\n<GenP2C/>")),
        ConfigError::Duplicate { .. }
    ));
    let unknown = load(&doc(r#"<GenP2C enabled="false" program="x"/>"#));
    assert!(
        unknown.warnings.iter().any(|w| w.contains("program")),
        "{:?}",
        unknown.warnings
    );
}

#[test]
fn pickup_timeout_has_a_default_and_can_be_set() {
    assert_eq!(load(&doc("")).config.timers.pickup, Duration::from_secs(30));
    let l = load(&doc("<Timers><PickupTimeout>45s</PickupTimeout></Timers>"));
    assert_eq!(l.config.timers.pickup, Duration::from_secs(45));
    error(&doc("<Timers><PickupTimeout>0s</PickupTimeout></Timers>"));
}
