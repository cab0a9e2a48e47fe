//! The v1 compatibility actions over real websockets: `loadXML`,
//! `retrieveXML`, `retrieveEnvironmentXML` (round trips, events, no echo,
//! allow-lists, limits, errors with line and column), v3 `CLEAR_DATA` in bulk
//! writes, unsubscribe `*`, and the native-only `getStatus`.

mod common;

use common::*;
use serde_json::{json, Value};
use wsconnector::config::VarFilter;

const CRM: &str = "https://crm.example.com";

async fn request(ws: &mut Client, v: Value) -> Value {
    let id = v["requestId"].clone();
    send_json(ws, v).await;
    loop {
        let m = next_json(ws).await;
        if m["type"] == "reply" && m["requestId"] == id {
            return m;
        }
    }
}

async fn ok(ws: &mut Client, v: Value) -> Value {
    let r = request(ws, v.clone()).await;
    assert_eq!(r["result"], "SUCCESS", "{v} -> {r}");
    r
}

async fn fails(ws: &mut Client, v: Value, code: &str) -> Value {
    let r = request(ws, v.clone()).await;
    assert_eq!(
        (r["result"].as_str(), r["errorCode"].as_str()),
        (Some("FAILURE"), Some(code)),
        "{v} -> {r}"
    );
    r
}

async fn client(d: &wsconnector::app::Daemon, origin: Option<&str>, envs: &[&str]) -> Client {
    let mut ws = ws_connect(v4(d), &host(d), origin).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    for (i, env) in envs.iter().enumerate() {
        ok(
            &mut ws,
            json!({"action":"createEnvironment","requestId":format!("c{i}"),"environment":env,"clientName":"t"}),
        )
        .await;
    }
    ws
}

async fn subscribe(ws: &mut Client, env: &str, name: &str) {
    ok(
        ws,
        json!({"action":"setNotificationsOn","requestId":format!("s-{env}-{name}"),"environment":env,"name":name}),
    )
    .await;
}

/// The next event (replies to other requests are not expected here).
async fn event(ws: &mut Client) -> Value {
    let m = next_json(ws).await;
    assert_eq!(m["type"], "event", "{m}");
    m
}

const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<context>
  <environment name="VOICE">
    <variable name="GEN_T2P">EvRinging</variable>
    <variable name="ANI" type="number">3225551234</variable>
    <variable name="vip" type="boolean">true</variable>
    <variable name="note" type="null"/>
    <variable name="markup">&lt;b onclick="x"&gt;O'Brien &amp; Sons&lt;/b&gt;</variable>
  </environment>
  <environment name="EMAIL">
    <variable name="subject">Invoice
line two</variable>
  </environment>
</context>"#;

#[tokio::test]
async fn load_xml_is_one_atomic_write_with_events_and_round_trips() {
    let d = start_with(|_| {}).await;
    let mut a = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    let mut b = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    subscribe(&mut b, "VOICE", "*").await;
    subscribe(&mut b, "EMAIL", "*").await;
    subscribe(&mut a, "EMAIL", "*").await;

    let r = ok(
        &mut a,
        json!({"action":"loadXML","requestId":1,"xml":DOC,"root":"","prefix":""}),
    )
    .await;
    let heads = r["data"]["environments"].as_array().unwrap();
    assert_eq!(heads.len(), 2, "{r}");
    assert_eq!(
        (heads[0]["environment"].as_str(), heads[0]["seq"].as_u64()),
        (Some("VOICE"), Some(5))
    );
    assert_eq!(
        (heads[1]["environment"].as_str(), heads[1]["seq"].as_u64()),
        (Some("EMAIL"), Some(1))
    );

    // B hears every variable, typed, in document order.
    let mut got = Vec::new();
    for _ in 0..6 {
        let ev = event(&mut b).await;
        assert_eq!(ev["event"], "ContextChanged", "{ev}");
        got.push((
            ev["EnvironmentName"].clone(),
            ev["VarChanged"].clone(),
            ev["ValueChanged"].clone(),
        ));
    }
    assert_eq!(
        got,
        vec![
            (json!("VOICE"), json!("GEN_T2P"), json!("EvRinging")),
            (json!("VOICE"), json!("ANI"), json!(3225551234u64)),
            (json!("VOICE"), json!("vip"), json!(true)),
            (json!("VOICE"), json!("note"), Value::Null),
            (
                json!("VOICE"),
                json!("markup"),
                json!("<b onclick=\"x\">O'Brien & Sons</b>")
            ),
            (json!("EMAIL"), json!("subject"), json!("Invoice\nline two")),
        ]
    );
    // No echo: A's next message is the answer to its next request, not an event.
    let r = ok(&mut a, json!({"action":"getVersion","requestId":2})).await;
    assert_eq!(r["requestId"], 2);

    // retrieveXML from B, loaded into a fresh daemon, gives the same data.
    let xml = ok(&mut b, json!({"action":"retrieveXML","requestId":3})).await["data"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        xml.contains("&lt;b onclick=\"x\"&gt;O'Brien &amp; Sons&lt;/b&gt;"),
        "{xml}"
    );
    let before = ok(&mut b, json!({"action":"getData","requestId":4})).await["data"].clone();
    let d2 = start_with(|_| {}).await;
    let mut c = client(&d2, None, &["VOICE", "EMAIL"]).await;
    ok(&mut c, json!({"action":"loadXML","requestId":5,"xml":xml})).await;
    let after = ok(&mut c, json!({"action":"getData","requestId":6})).await["data"].clone();
    assert_eq!(after, before);

    // retrieveEnvironmentXML: one environment, with its position.
    let r = ok(
        &mut b,
        json!({"action":"retrieveEnvironmentXML","requestId":7,"environment":"EMAIL"}),
    )
    .await;
    assert_eq!(r["seq"], 1, "{r}");
    let one = r["data"].as_str().unwrap();
    assert!(
        one.contains("<environment name=\"EMAIL\">") && !one.contains("VOICE"),
        "{one}"
    );
    d.shutdown();
    d2.shutdown();
}

#[tokio::test]
async fn v1_flat_form_root_prefix_and_environment() {
    let d = start_with(|_| {}).await;
    let mut a = client(&d, Some(CRM), &["VOICE"]).await;
    let xml = "<crm><customer><Id>42</Id><Name>Ann</Name></customer></crm>";
    ok(
        &mut a,
        json!({"action":"loadXML","requestId":1,"xml":xml,"root":"customer","prefix":"CRM_","environment":"VOICE"}),
    )
    .await;
    let r = ok(
        &mut a,
        json!({"action":"getEnvironment","requestId":2,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["data"], json!({"CRM_Id":"42","CRM_Name":"Ann"}));
}

#[tokio::test]
async fn bad_xml_fails_with_line_and_column_and_changes_nothing() {
    let d = start_with(|_| {}).await;
    let mut a = client(&d, Some(CRM), &["VOICE"]).await;
    ok(&mut a, json!({"action":"setContextVariable","requestId":1,"environment":"VOICE","name":"x","value":1})).await;
    let bad = "<context>\n  <environment name=\"VOICE\">\n    <variable name=\"y\">1</variable>\n    <variable name=\"x\">2</wrong>\n";
    let r = fails(
        &mut a,
        json!({"action":"loadXML","requestId":2,"xml":bad}),
        "invalid_xml",
    )
    .await;
    let msg = r["errorMessage"].as_str().unwrap();
    assert!(msg.starts_with("loadXML: XML line 4, column "), "{msg}");
    let r = fails(
        &mut a,
        json!({"action":"loadXML","requestId":3,"xml":"<context><environment name=\"VOICE\"><variable name=\"n\" type=\"number\">ten</variable></environment></context>"}),
        "invalid_xml",
    )
    .await;
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("line 1, column 36"),
        "{r}"
    );
    // Not registered in one named environment: nothing at all is written.
    fails(
        &mut a,
        json!({"action":"loadXML","requestId":4,"xml":"<context><environment name=\"VOICE\"><variable name=\"y\">1</variable></environment><environment name=\"OTHER\"/></context>"}),
        "not_registered",
    )
    .await;
    let r = ok(
        &mut a,
        json!({"action":"getEnvironment","requestId":5,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(
        (r["data"].clone(), r["seq"].clone()),
        (json!({"x":1}), json!(1))
    );
    fails(
        &mut a,
        json!({"action":"loadXML","requestId":6}),
        "bad_request",
    )
    .await;
    fails(
        &mut a,
        json!({"action":"retrieveEnvironmentXML","requestId":7,"environment":"NOPE"}),
        "not_registered",
    )
    .await;
}

#[tokio::test]
async fn xml_respects_allow_lists_and_limits() {
    let d = start_with(|c| {
        let mut e = origin_entry("https://limited.example.com");
        e.read = VarFilter {
            patterns: vec!["VOICE.pub*".into()],
        };
        e.write = VarFilter {
            patterns: vec!["VOICE.pub*".into()],
        };
        c.origins.push(e);
        c.limits.max_value_bytes = 16;
        c.limits.max_variables_per_environment = 3;
    })
    .await;
    let mut full = client(&d, Some(CRM), &["VOICE"]).await;
    let mut lim = client(&d, Some("https://limited.example.com"), &["VOICE"]).await;
    ok(
        &mut full,
        json!({"action":"setContextJSON","requestId":1,"environment":"VOICE","data":[{"secret":"s"},{"pub1":"p"}]}),
    )
    .await;
    // Reads: only what the read allow-list allows.
    let xml = ok(&mut lim, json!({"action":"retrieveXML","requestId":2})).await["data"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(xml.contains("pub1") && !xml.contains("secret"), "{xml}");
    let xml = ok(
        &mut lim,
        json!({"action":"retrieveEnvironmentXML","requestId":3,"environment":"VOICE"}),
    )
    .await["data"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(xml.contains("pub1") && !xml.contains("secret"), "{xml}");
    // Writes: one forbidden variable refuses the whole document.
    let doc =
        |vars: &str| format!("<context><environment name=\"VOICE\">{vars}</environment></context>");
    fails(
        &mut lim,
        json!({"action":"loadXML","requestId":4,"xml":doc("<variable name=\"pub2\">a</variable><variable name=\"secret\">b</variable>")}),
        "forbidden",
    )
    .await;
    // Limits as for JSON.
    fails(
        &mut full,
        json!({"action":"loadXML","requestId":5,"xml":doc("<variable name=\"big\">0123456789abcdefghij</variable>")}),
        "value_too_large",
    )
    .await;
    fails(
        &mut full,
        json!({"action":"loadXML","requestId":6,"xml":doc("<a>1</a><b>2</b>"),"environment":"VOICE"}),
        "limit_exceeded",
    )
    .await;
    let r = ok(
        &mut full,
        json!({"action":"getEnvironment","requestId":7,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["data"], json!({"pub1":"p","secret":"s"}));
}

#[tokio::test]
async fn clear_data_in_bulk_writes_replaces_the_environment() {
    let d = start_with(|_| {}).await;
    let mut a = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    let mut b = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    subscribe(&mut b, "VOICE", "*").await;
    subscribe(&mut b, "EMAIL", "*").await;
    ok(
        &mut a,
        json!({"action":"setAllJSON","requestId":1,"data":[
        {"environment":"VOICE","data":{"ANI":"old","InteractionId":"i1"}},
        {"environment":"EMAIL","data":{"subject":"keep"}}]}),
    )
    .await;
    for _ in 0..3 {
        event(&mut b).await;
    }
    // setContextJSON: CLEAR_DATA anywhere in the items clears first.
    ok(
        &mut a,
        json!({"action":"setContextJSON","requestId":2,"environment":"VOICE",
        "data":[{"GEN_T2P":"EvRinging"},{"CLEAR_DATA":"1"},{"ANI":"new"}]}),
    )
    .await;
    let ev = event(&mut b).await;
    assert_eq!(
        (ev["event"].as_str(), ev["EnvironmentName"].as_str()),
        (Some("EnvironmentCleaned"), Some("VOICE")),
        "{ev}"
    );
    for var in ["GEN_T2P", "ANI"] {
        assert_eq!(event(&mut b).await["VarChanged"], var);
    }
    let r = ok(&mut a, json!({"action":"getData","requestId":3})).await;
    assert_eq!(
        r["data"],
        json!({"EMAIL":{"subject":"keep"},"VOICE":{"ANI":"new","GEN_T2P":"EvRinging"}})
    );

    // setAllJSON: only the environment that carries CLEAR_DATA=1 is cleared.
    ok(
        &mut a,
        json!({"action":"setAllJSON","requestId":4,"data":[
        {"environment":"VOICE","data":{"x":1}},
        {"environment":"EMAIL","data":{"CLEAR_DATA":1,"from":"bob"}}]}),
    )
    .await;
    let ev = event(&mut b).await;
    assert_eq!(
        (ev["event"].as_str(), ev["EnvironmentName"].as_str()),
        (Some("EnvironmentCleaned"), Some("EMAIL")),
        "{ev}"
    );
    assert_eq!(event(&mut b).await["VarChanged"], "x");
    assert_eq!(event(&mut b).await["VarChanged"], "from");
    // "0" clears nothing and is not stored either; a strange value is refused.
    ok(&mut a, json!({"action":"setContextJSON","requestId":5,"environment":"EMAIL","data":[{"CLEAR_DATA":"0"},{"cc":"ann"}]})).await;
    fails(&mut a, json!({"action":"setContextJSON","requestId":6,"environment":"EMAIL","data":[{"CLEAR_DATA":"yes"}]}), "invalid_value").await;
    let r = ok(&mut a, json!({"action":"getData","requestId":7})).await;
    assert_eq!(
        r["data"],
        json!({"EMAIL":{"cc":"ann","from":"bob"},"VOICE":{"ANI":"new","GEN_T2P":"EvRinging","x":1}})
    );
    // loadXML is a bulk write too.
    ok(&mut a, json!({"action":"loadXML","requestId":8,"environment":"VOICE","xml":"<context><CLEAR_DATA>1</CLEAR_DATA><ANI>xml</ANI></context>"})).await;
    let r = ok(
        &mut a,
        json!({"action":"getEnvironment","requestId":9,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["data"], json!({"ANI":"xml"}));
    // A single setContextVariable keeps CLEAR_DATA an ordinary variable.
    ok(&mut a, json!({"action":"setContextVariable","requestId":10,"environment":"VOICE","name":"CLEAR_DATA","value":"1"})).await;
    let r = ok(
        &mut a,
        json!({"action":"getEnvironment","requestId":11,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["data"], json!({"ANI":"xml","CLEAR_DATA":"1"}));
}

#[tokio::test]
async fn clear_data_needs_write_permission_for_every_variable() {
    let d = start_with(|c| {
        let mut e = origin_entry("https://limited.example.com");
        e.write = VarFilter {
            patterns: vec!["VOICE.pub*".into()],
        };
        c.origins.push(e);
    })
    .await;
    let mut full = client(&d, Some(CRM), &["VOICE"]).await;
    let mut lim = client(&d, Some("https://limited.example.com"), &["VOICE"]).await;
    ok(&mut full, json!({"action":"setContextVariable","requestId":1,"environment":"VOICE","name":"secret","value":"s"})).await;
    fails(
        &mut lim,
        json!({"action":"setContextJSON","requestId":2,"environment":"VOICE","data":[{"CLEAR_DATA":"1"},{"pub":"p"}]}),
        "forbidden",
    )
    .await;
    let r = ok(
        &mut full,
        json!({"action":"getEnvironment","requestId":3,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["data"], json!({"secret":"s"}));
}

#[tokio::test]
async fn unsubscribe_star_drops_every_subscription_of_the_environment() {
    let d = start_with(|_| {}).await;
    let mut a = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    let mut b = client(&d, Some(CRM), &["VOICE", "EMAIL"]).await;
    subscribe(&mut b, "VOICE", "ANI").await;
    subscribe(&mut b, "VOICE", "GEN_T2P").await;
    subscribe(&mut b, "VOICE", "*").await;
    subscribe(&mut b, "EMAIL", "*").await;
    ok(
        &mut b,
        json!({"action":"setNotificationsOff","requestId":"off","environment":"VOICE","name":"*"}),
    )
    .await;
    ok(&mut a, json!({"action":"setContextJSON","requestId":1,"environment":"VOICE","data":[{"ANI":"1"},{"GEN_T2P":"EvRinging"},{"other":"x"}]})).await;
    ok(
        &mut a,
        json!({"action":"cleanEnvironment","requestId":2,"environment":"VOICE"}),
    )
    .await;
    ok(&mut a, json!({"action":"setContextVariable","requestId":3,"environment":"EMAIL","name":"sentinel","value":1})).await;
    // The first event B gets is the EMAIL sentinel: nothing of VOICE.
    let ev = event(&mut b).await;
    assert_eq!(
        (ev["EnvironmentName"].as_str(), ev["VarChanged"].as_str()),
        (Some("EMAIL"), Some("sentinel")),
        "{ev}"
    );
}

#[tokio::test]
async fn get_status_is_for_native_clients_only() {
    let d = start_with(|_| {}).await;
    let mut page = client(&d, Some(CRM), &["VOICE"]).await;
    let mut native = client(&d, None, &[]).await;
    fails(
        &mut page,
        json!({"action":"getStatus","requestId":1}),
        "forbidden",
    )
    .await;
    let r = ok(&mut native, json!({"action":"getStatus","requestId":2})).await;
    assert_eq!(r["data"]["connections"], 2, "{r}");
    assert_eq!(r["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["data"]["environments"][0]["environment"], "VOICE");
    assert_eq!(r["data"]["environments"][0]["clients"], json!(["t"]));
    assert_eq!(r["data"]["environments"][0]["variables"], 0);
}

#[tokio::test]
async fn inspector_tokens_over_the_socket_are_for_the_service_only() {
    let d = start_with(|_| {}).await;
    let mut page = client(&d, Some(CRM), &["VOICE"]).await;
    let mut native = client(&d, None, &[]).await;
    fails(
        &mut page,
        json!({"action":"getInspectorToken","requestId":1}),
        "forbidden",
    )
    .await;
    // A single-user daemon's `wsconnector inspect` writes a token file.
    fails(
        &mut native,
        json!({"action":"getInspectorToken","requestId":2}),
        "not_supported",
    )
    .await;
}

#[test]
fn docs_name_every_action_and_error_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    for action in wsconnector::protocol::ACTIONS {
        assert!(
            doc.contains(&format!("\"action\": \"{action}\"")),
            "docs/protocol.md has no example of {action}"
        );
    }
    for code in ["invalid_xml", "invalid_value", "forbidden"] {
        assert!(doc.contains(&format!("| `{code}` |")), "{code}");
    }
}
