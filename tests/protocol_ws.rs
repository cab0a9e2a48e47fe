//! The protocol over real websockets through the daemon: no echo across two
//! tabs, typed values, a reconnect that resumes with replay, and a slow
//! consumer closed while a fast one gets every event.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

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

async fn connected(d: &wsconnector::app::Daemon) -> (Client, Value) {
    let mut ws = ws_connect(v4(d), &host(d), Some("https://crm.example.com")).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    (ws, hello)
}

#[tokio::test]
async fn two_tabs_same_client_name_no_echo_typed_values() {
    let d = start_with(|_| {}).await;
    let (mut a, _) = connected(&d).await;
    let (mut b, _) = connected(&d).await;
    for (ws, id) in [(&mut a, 1), (&mut b, 2)] {
        let r = request(ws, json!({"action":"createEnvironment","requestId":id,"environment":"VOICE","clientName":"crm"})).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
        let r = request(ws, json!({"action":"setNotificationsOn","requestId":id+10,"environment":"VOICE","name":"*"})).await;
        assert_eq!(r["result"], "SUCCESS", "{r}");
    }
    let r = request(
        &mut a,
        json!({"action":"setContextJSON","requestId":3,"environment":"VOICE",
        "data":[{"GEN_T2P":"EvRinging"},{"ANI":3225551234u64},{"vip":true},{"note":null}]}),
    )
    .await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = next_json(&mut b).await;
        assert_eq!(ev["event"], "ContextChanged", "{ev}");
        assert_eq!(ev["EnvironmentName"], "VOICE");
        got.push((ev["VarChanged"].clone(), ev["ValueChanged"].clone()));
    }
    assert_eq!(
        got,
        vec![
            (json!("GEN_T2P"), json!("EvRinging")),
            (json!("ANI"), json!(3225551234u64)),
            (json!("vip"), json!(true)),
            (json!("note"), Value::Null),
        ]
    );
    // B writes; A's first message after its own write is B's event, so A
    // never saw an echo of its own write.
    let r = request(&mut b, json!({"action":"setContextVariable","requestId":4,"environment":"VOICE","name":"GEN_P2T","value":"RqDial"})).await;
    assert_eq!(r["result"], "SUCCESS");
    let ev = next_json(&mut a).await;
    assert_eq!(
        (ev["VarChanged"].clone(), ev["ValueChanged"].clone()),
        (json!("GEN_P2T"), json!("RqDial")),
        "{ev}"
    );
    let r = request(
        &mut a,
        json!({"action":"getEnvironment","requestId":5,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(
        r["data"],
        json!({"GEN_T2P":"EvRinging","ANI":3225551234u64,"vip":true,"note":null,"GEN_P2T":"RqDial"})
    );
}

#[tokio::test]
async fn malformed_requests_fail_and_the_connection_stays() {
    let d = start_with(|_| {}).await;
    let (mut a, _) = connected(&d).await;
    send_json(&mut a, json!("not an object")).await;
    let r = next_json(&mut a).await;
    assert_eq!(
        (r["result"].clone(), r["errorCode"].clone()),
        (json!("FAILURE"), json!("bad_request")),
        "{r}"
    );
    use futures_util::SinkExt;
    a.send(tokio_tungstenite::tungstenite::Message::Text(
        "{oops".into(),
    ))
    .await
    .unwrap();
    let r = next_json(&mut a).await;
    assert_eq!(r["errorCode"], "bad_request", "{r}");
    let r = request(&mut a, json!({"action":"teleport","requestId":"x"})).await;
    assert_eq!(r["errorCode"], "unknown_action", "{r}");
    let r = request(
        &mut a,
        json!({"action":"launchProcess","requestId":"y","name":"calc"}),
    )
    .await;
    assert_eq!(r["result"], "FAILURE", "{r}");
    let r = request(&mut a, json!({"action":"getVersion","requestId":"z"})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
}

#[tokio::test]
async fn reconnect_resumes_with_missed_events_then_live_ones() {
    let d = start_with(|_| {}).await;
    let (mut toolbar, _) = connected(&d).await;
    request(&mut toolbar, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"toolbar"})).await;
    let (mut crm, hello) = connected(&d).await;
    let token = hello["resumeToken"].as_str().unwrap().to_string();
    let r = request(&mut crm, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"crm"})).await;
    request(
        &mut crm,
        json!({"action":"setNotificationsOn","requestId":2,"environment":"VOICE","name":"*"}),
    )
    .await;
    let own = request(&mut crm, json!({"action":"setContextVariable","requestId":3,"environment":"VOICE","name":"note","value":"mine"})).await;
    let (epoch, seq) = (own["epoch"].clone(), own["seq"].clone());
    assert_eq!(epoch, r["epoch"]);
    // The page reloads: the connection drops; the toolbar publishes meanwhile.
    drop(crm);
    eventually(|| d.state.tenants.connection_count() == 1).await;
    for (i, v) in ["EvRinging", "EvEstablished", "EvReleased"]
        .iter()
        .enumerate()
    {
        let r = request(&mut toolbar, json!({"action":"setContextVariable","requestId":10+i,"environment":"VOICE","name":"GEN_T2P","value":v})).await;
        assert_eq!(r["result"], "SUCCESS");
    }
    let (mut crm2, _) = connected(&d).await;
    let r = request(&mut crm2, json!({"action":"resume","requestId":"r","token":token,"environments":[
        {"environment":"VOICE","clientName":"crm","epoch":epoch,"seq":seq,"subscriptions":[{"name":"*","values":false}]}]})).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "replay", "{r}");
    let replayed: Vec<Value> = env["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ValueChanged"].clone())
        .collect();
    assert_eq!(
        replayed,
        vec![
            json!("EvRinging"),
            json!("EvEstablished"),
            json!("EvReleased")
        ]
    );
    // Then live events, in order.
    request(&mut toolbar, json!({"action":"setContextVariable","requestId":20,"environment":"VOICE","name":"GEN_T2P","value":"EvClosed"})).await;
    let ev = next_json(&mut crm2).await;
    assert_eq!(ev["ValueChanged"], "EvClosed", "{ev}");
}

#[tokio::test]
async fn daemon_restart_gives_a_snapshot_on_a_new_epoch() {
    let d = start_with(|_| {}).await;
    let (mut a, hello) = connected(&d).await;
    let r = request(&mut a, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"crm"})).await;
    let epoch = r["epoch"].clone();
    drop(a);
    d.shutdown();
    d.wait().await;
    let d2 = start_with(|_| {}).await;
    let (mut b, _) = connected(&d2).await;
    let r = request(
        &mut b,
        json!({"action":"resume","requestId":2,"token":hello["resumeToken"],"environments":[
        {"environment":"VOICE","clientName":"crm","epoch":epoch,"seq":0,"subscriptions":[]}]}),
    )
    .await;
    let env = &r["data"]["environments"][0];
    assert_eq!(env["mode"], "snapshot", "{r}");
    assert_ne!(env["epoch"], epoch);
    assert_eq!(env["values"], json!({}));
}

#[tokio::test]
async fn slow_consumer_is_closed_and_fast_one_gets_every_event() {
    const EVENTS: usize = 1_000;
    let d = start_with(|c| {
        c.limits.outbox_messages = 32;
        c.limits.write_buffer_bytes = 4096;
        c.timers.pong_timeout = Duration::from_millis(500);
    })
    .await;
    let (mut publisher, _) = connected(&d).await;
    let (mut fast, _) = connected(&d).await;
    let (mut slow, _) = connected(&d).await;
    for (ws, name) in [
        (&mut publisher, "toolbar"),
        (&mut fast, "fast"),
        (&mut slow, "slow"),
    ] {
        request(ws, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":name})).await;
        request(ws, json!({"action":"setNotificationsOn","requestId":2,"environment":"VOICE","name":"*","values":true})).await;
    }
    // `slow` stops reading from here on; `fast` reads concurrently and tells
    // the publisher how far it got, so a loaded CI machine can never make the
    // *fast* subscriber fall behind by more than a few events.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut seen = 0usize;
        while seen < EVENTS {
            let ev = next_json(&mut fast).await;
            if ev["event"] == "ContextChanged"
                && ev["EnvironmentName"] == "VOICE"
                && ev["VarChanged"] == "n"
            {
                assert_eq!(ev["ValueChanged"], json!(seen), "in order, none lost");
                seen += 1;
                let _ = progress_tx.send(seen);
            }
        }
        (seen, fast)
    });
    // Large values with `Values` on: far more bytes than the kernel's socket
    // buffers hold, so the never-reading client really falls behind.
    let filler = "x".repeat(16 * 1024);
    const AHEAD: usize = 8;
    for i in 0..EVENTS {
        if i >= AHEAD {
            tokio::time::timeout(DEADLINE, progress.wait_for(|seen| *seen + AHEAD > i))
                .await
                .expect("fast subscriber keeps up")
                .unwrap();
        }
        // `data` lets the publisher write without waiting for each reply.
        send_json(&mut publisher, json!({"action":"setContextJSON","environment":"VOICE","data":[{"n":i},{"pad":filler}]})).await;
        if i % 8 == 0 {
            // Keep our own replies drained so the publisher is never the slow one.
            while let Ok(Some(_)) = tokio::time::timeout(
                Duration::ZERO,
                futures_util::StreamExt::next(&mut publisher),
            )
            .await
            {}
        }
    }
    // Drain publisher replies concurrently with waiting for the fast reader.
    let drain = tokio::spawn(async move {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut publisher).await {}
    });
    let (seen, fast) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast reader done")
        .unwrap();
    assert_eq!(seen, EVENTS);
    // Publisher and fast subscriber are still connected; the slow one was
    // closed by the server.
    eventually(|| d.state.tenants.connection_count() == 2).await;
    // What reaches the slow client ends with the 1013 close frame, unless
    // the server had to give up writing to it at all (write timeout).
    match close_frame(&mut slow).await {
        Some((code, reason)) => assert_eq!(code, 1013, "{reason}"),
        None => println!("slow consumer dropped after the write timeout"),
    }
    drop(fast);
    drain.abort();
}
