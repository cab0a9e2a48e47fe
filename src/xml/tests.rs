//! Unit tests of the XML shape: round trips, the v1 flat form, escaping and
//! errors with their line and column.

use super::*;
use serde_json::json;

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn load(xml: &str) -> Result<Loaded, XmlError> {
    parse(xml, &LoadOptions::default())
}

#[test]
fn round_trip_keeps_types_and_awkward_text() {
    let voice = map(json!({
        "ANI": "3225551234",
        "count": 3,
        "ratio": -1.5e-7,
        "big": 9007199254740993u64,
        "flag": true,
        "off": false,
        "none": null,
        "empty": "",
        "markup": "<b>&amp;</b> \"quoted\" 'single' ]]>",
        "spaces": "  leading and trailing  ",
        "lines": "a\r\nb\rc\n\td",
        "control": "bell\u{7}nul\u{0}",
        "unicode": "é 漢字 😀 \u{FFFE}",
        "ATTR:Segment": "gold",
    }));
    let empty = Map::new();
    let xml = render([("VOICE", &voice), ("EMPTY", &empty)]);
    let back = load(&xml).unwrap();
    assert_eq!(back.environments, vec!["VOICE", "EMPTY"]);
    let got: Map<String, Value> = back
        .writes
        .iter()
        .map(|(e, n, v)| {
            assert_eq!(e, "VOICE");
            (n.clone(), v.clone())
        })
        .collect();
    assert_eq!(got, voice, "{xml}");
}

#[test]
fn rendered_document_is_the_documented_shape() {
    let voice = map(json!({"ANI": "1 < 2 & 3", "n": 42, "b": true, "z": null}));
    let xml = render([("VOICE", &voice)]);
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<context>\n  <environment name=\"VOICE\">\n    \
         <variable name=\"ANI\">1 &lt; 2 &amp; 3</variable>\n    \
         <variable name=\"n\" type=\"number\">42</variable>\n    \
         <variable name=\"b\" type=\"boolean\">true</variable>\n    \
         <variable name=\"z\" type=\"null\"/>\n  </environment>\n</context>\n"
    );
}

#[test]
fn v1_flat_form_with_root_prefix_and_environment() {
    let xml = "<?xml version=\"1.0\"?>\n<crm><ignored><a>x</a></ignored>\n<customer>\n  \
               <Id>42</Id>\n  <Name>O&apos;Brien &amp; Sons</Name>\n  <Empty/>\n</customer></crm>";
    let opts = LoadOptions {
        root: "customer",
        prefix: "CRM_",
        environment: Some("VOICE"),
    };
    let got = parse(xml, &opts).unwrap();
    assert_eq!(got.environments, vec!["VOICE"]);
    assert_eq!(
        got.writes,
        vec![
            ("VOICE".into(), "CRM_Id".into(), json!("42")),
            ("VOICE".into(), "CRM_Name".into(), json!("O'Brien & Sons")),
            ("VOICE".into(), "CRM_Empty".into(), json!("")),
        ]
    );
    // Without an environment, variables outside <environment> are refused.
    let e = parse(
        xml,
        &LoadOptions {
            environment: None,
            ..opts
        },
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (4, 3), "{e}");
    assert!(e.message.contains("names no environment"), "{e}");
}

#[test]
fn typed_values_and_cdata() {
    let xml = r#"<context><environment name="E">
        <variable name="n" type="number"> 12.5 </variable>
        <variable name="b" type="boolean">false</variable>
        <variable name="c"><![CDATA[<raw & text>]]></variable>
        <variable name="j" encoding="json">"tab\there"</variable>
        <variable name="r">&#13;&#x1F600;</variable>
    </environment></context>"#;
    let got = load(xml).unwrap();
    let values: Vec<Value> = got.writes.into_iter().map(|w| w.2).collect();
    assert_eq!(
        values,
        vec![
            json!(12.5),
            json!(false),
            json!("<raw & text>"),
            json!("tab\there"),
            json!("\r😀")
        ]
    );
}

fn error(xml: &str) -> XmlError {
    load(xml).unwrap_err()
}

#[test]
fn bad_xml_names_line_and_column() {
    let e = error("<context>\n  <environment name=\"E\">\n    <variable name=\"a\">x</wrong>\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().starts_with("XML line 3, column "), "{e}");

    let e = error(
        "<context>\n<environment name=\"E\"><variable name=\"n\" type=\"number\">ten</variable>",
    );
    assert_eq!((e.line, e.column), (2, 23), "{e}");
    assert!(e.message.contains("not a number"), "{e}");

    let e = error("<context><environment name=\"E\"><variable name=\"x\">&nbsp;</variable></environment></context>");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("unknown entity"), "{e}");

    let e = error("<!DOCTYPE x [<!ENTITY a \"b\">]><context/>");
    assert!(e.message.contains("DOCTYPE"), "{e}");

    let e = error("<other/>");
    assert!(e.message.contains("no <context> element"), "{e}");

    let e = error("<context><environment name=\"bad name\"/></context>");
    assert!(e.message.contains("environment name"), "{e}");

    let e = error("<context><environment name=\"E\"><variable name=\"a b\">1</variable></environment></context>");
    assert!(e.message.contains("variable name"), "{e}");

    let e = error("<context><environment name=\"E\"><variable name=\"a\"><b/></variable></environment></context>");
    assert!(e.message.contains("holds text only"), "{e}");

    let e = error("<context>loose text</context>");
    assert!(e.message.contains("text outside"), "{e}");

    let e = error("<context><environment name=\"E\"><variable name=\"a\" type=\"date\">x</variable></environment></context>");
    assert!(e.message.contains("unknown"), "{e}");

    let e = error("<context><environment name=\"E\">");
    assert!(e.message.contains("ends inside"), "{e}");

    // Columns count characters, not bytes.
    let head = "<context>\n<environment name=\"E\"><variable name=\"a\">é漢😀</variable>";
    let e = error(&format!(
        "{head}<variable name=\"b\" type=\"boolean\">yes</variable>"
    ));
    let line2 = head.split('\n').nth(1).unwrap();
    assert_eq!((e.line, e.column), (2, line2.chars().count() + 1), "{e}");
}

#[test]
fn empty_root_and_empty_environment() {
    assert_eq!(load("<context/>").unwrap(), Loaded::default());
    let got = load("<context><environment name=\"E\"/></context>").unwrap();
    assert_eq!(got.environments, vec!["E"]);
    assert!(got.writes.is_empty());
}

#[test]
fn the_documented_error_example_is_what_we_say() {
    let xml = "<context>\n  <environment name=\"VOICE\">\n    <variable name=\"y\">1</variable>\n    <variable name=\"x\">2</wrong>\n";
    let e = load(xml).unwrap_err();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    assert!(
        doc.contains(&format!("\"loadXML: {e}\"")),
        "docs/protocol.md should quote: loadXML: {e}"
    );
}
