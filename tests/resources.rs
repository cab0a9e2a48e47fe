//! Resource attacks against the real `wsconnector` binary, run as its own
//! process so its memory is its own (`/proc/PID/status`): frame headers
//! announcing 1 GiB and 2^63-1 bytes, a subscriber that never reads while
//! 10,000 events are published, and a 1000-connection flood from one OS
//! user while a second OS user still gets in. Each case asserts the exact
//! status or close code, prints the memory figures, and checks that the
//! other clients and their data are untouched.
#![cfg(target_os = "linux")]

#[path = "support/banner.rs"]
mod banner;
mod common;
#[path = "support/process.rs"]
mod process;
#[path = "support/second_user.rs"]
mod second_user;
#[path = "support/skip.rs"]
mod skip;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{next_json, raw_http_on, send_json, upgrade_head, Client, DEADLINE};
use futures_util::StreamExt;
use process::{DaemonProcess, Memory};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1024;

/// A native websocket client (no Origin) of `d`, past its hello.
async fn native(d: &DaemonProcess) -> Client {
    let mut ws = common::ws_connect(d.v4(), &d.host(), None).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    ws
}

/// Sends `req` and returns its reply (events that arrive first are skipped).
async fn request(ws: &mut Client, req: Value) -> Value {
    let id = req["requestId"].clone();
    send_json(ws, req).await;
    loop {
        let m = next_json(ws).await;
        if m["type"] == "reply" && m["requestId"] == id {
            return m;
        }
    }
}

async fn ok(ws: &mut Client, req: Value) -> Value {
    let r = request(ws, req).await;
    assert_eq!(r["result"], "SUCCESS", "{r}");
    r
}

fn print_memory(what: &str, before: Memory, after: Memory) {
    println!(
        "{what}: VmRSS {} -> {} KiB ({:+}), VmHWM {} -> {} KiB ({:+}), VmPeak {} -> {} KiB ({:+}), threads {} -> {}",
        before.rss_kib,
        after.rss_kib,
        after.rss_kib as i64 - before.rss_kib as i64,
        before.hwm_kib,
        after.hwm_kib,
        after.hwm_kib as i64 - before.hwm_kib as i64,
        before.vm_peak_kib,
        after.vm_peak_kib,
        after.vm_peak_kib as i64 - before.vm_peak_kib as i64,
        before.threads,
        after.threads,
    );
}

// ---------------------------------------------------------------------------
// 1. A frame header announcing a huge payload.

/// Upgrades a raw TCP connection; returns it after the 101 head.
async fn raw_ws(d: &DaemonProcess) -> TcpStream {
    let mut s = TcpStream::connect(d.v4()).await.unwrap();
    let r = raw_http_on(&mut s, &upgrade_head(&d.host(), &[])).await;
    assert_eq!(r.status, 101);
    s
}

/// The header of a masked text frame announcing `len` payload bytes (the
/// 64-bit length form), followed by a few payload bytes of it.
fn huge_frame_header(len: u64) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]); // mask
    f.extend_from_slice(b"{\"ac"); // the start of a payload that never ends
    f
}

/// Reads server frames until a close frame; returns its code.
async fn read_close_code(s: &mut TcpStream) -> u16 {
    let fut = async {
        loop {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.expect("a frame before EOF");
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.unwrap();
                len = u64::from(u16::from_be_bytes(l));
            } else if len == 127 {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).await.unwrap();
                len = u64::from_be_bytes(l);
            }
            assert!(len < 1 << 20, "server frame of {len} bytes");
            let mut payload = vec![0u8; len as usize];
            s.read_exact(&mut payload).await.unwrap();
            if h[0] & 0x0f == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    };
    timeout(DEADLINE, fut).await.expect("close frame in time")
}

async fn huge_frame_attack(d: &DaemonProcess, len: u64) {
    let mut s = raw_ws(d).await;
    s.write_all(&huge_frame_header(len)).await.unwrap();
    assert_eq!(read_close_code(&mut s).await, 1009, "frame of {len} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_frame_headers_are_closed_with_1009_without_allocating() {
    const ROUNDS: usize = 50;
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(dir.path(), "");

    // A bystander with stored data, connected throughout.
    let mut bystander = native(&d).await;
    ok(&mut bystander, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"toolbar"})).await;
    ok(&mut bystander, json!({"action":"setContextJSON","requestId":2,"environment":"VOICE","data":[{"GEN_T2P":"EvEstablished"},{"ANI":"3225551234"}]})).await;
    let stored = ok(
        &mut bystander,
        json!({"action":"getEnvironment","requestId":3,"environment":"VOICE"}),
    )
    .await;

    // Warm up (first connection's buffers, the peer-lookup thread), then measure.
    huge_frame_attack(&d, GIB).await;
    let before = d.memory();
    let mut after_first = None;
    for round in 0..ROUNDS {
        huge_frame_attack(&d, GIB).await;
        huge_frame_attack(&d, i64::MAX as u64).await;
        if round == 0 {
            after_first = Some(d.memory());
        }
    }
    let after = d.memory();
    print_memory(
        "1 GiB / 2^63-1 frame headers, first round",
        before,
        after_first.unwrap(),
    );
    print_memory(
        &format!("1 GiB / 2^63-1 frame headers, {ROUNDS} rounds"),
        before,
        after,
    );
    // Resident memory stays where it was (a generous constant, not a timing).
    assert!(
        after.hwm_kib <= before.hwm_kib + 8 * MIB,
        "peak RSS grew: {before:?} -> {after:?}"
    );
    assert!(
        after.rss_kib <= before.rss_kib + 8 * MIB,
        "RSS grew: {before:?} -> {after:?}"
    );
    // Not even reserved: a 1 GiB buffer would show in the virtual peak even
    // untouched (thread stacks and malloc arenas stay far below it).
    assert!(
        after.vm_peak_kib < before.vm_peak_kib + GIB / 1024 / 2,
        "virtual peak grew by half a GiB or more: {before:?} -> {after:?}"
    );

    // The bystander is still connected and its data is unchanged.
    let now = ok(
        &mut bystander,
        json!({"action":"getEnvironment","requestId":4,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(now["data"], stored["data"]);
    assert_eq!(
        (&now["epoch"], &now["seq"]),
        (&stored["epoch"], &stored["seq"])
    );
    // The log is written by a background thread after the close frame went
    // out: poll until every line is there (or the deadline says otherwise).
    let end = Instant::now() + DEADLINE;
    let mut log = d.log();
    while log.matches("exceeds ByteSizeReader").count() < 2 * ROUNDS + 1 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
        log = d.log();
    }
    assert_eq!(
        log.matches("exceeds ByteSizeReader").count(),
        2 * ROUNDS + 1,
        "every attack logged once as 1009:\n{log}"
    );
}

// ---------------------------------------------------------------------------
// 2. A subscriber that never reads.

/// A native client whose socket receive buffer is tiny, so its TCP window
/// fills as soon as it stops reading.
async fn tiny_window_client(d: &DaemonProcess) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(d.v4()).await.unwrap();
    let req = format!("ws://{}/", d.host()).into_client_request().unwrap();
    let (mut ws, _) = timeout(DEADLINE, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake in time")
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_dropped_while_a_fast_one_gets_all_10000_events() {
    const EVENTS: usize = 10_000;
    const BATCH: usize = 10;
    // How far the publisher may run ahead of the fast subscriber, in events:
    // well inside the 1024-message outbox, so "fast" is really fast.
    const AHEAD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    // A stalled writer is given up after PongTimeout (default 20 s): 2 s
    // keeps the test short; everything else is the shipped default.
    let d = DaemonProcess::start(dir.path(), "<Timers><PongTimeout>2s</PongTimeout></Timers>");
    let mut publisher = native(&d).await;
    let mut fast = native(&d).await;
    let mut slow = tiny_window_client(&d).await;
    // A call context of 20 variables of ~100 bytes, as a toolbar keeps it.
    ok(&mut publisher, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"toolbar"})).await;
    let context: Vec<Value> = (0..20)
        .map(|i| json!({format!("ATTR:{i:02}"): format!("{i:02}{}", "c".repeat(98))}))
        .collect();
    let r = ok(
        &mut publisher,
        json!({"action":"setContextJSON","requestId":2,"environment":"VOICE","data":context}),
    )
    .await;
    let start_seq = r["seq"].as_u64().unwrap();
    // The fast subscriber wants the changes; the slow one, like a CRM page,
    // the whole context with each change (`Values`, ~2.3 KB an event: 10,000
    // events are far more than the kernel's socket buffers absorb).
    for (ws, name, values) in [(&mut fast, "fast", false), (&mut slow, "slow", true)] {
        ok(ws, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":name})).await;
        ok(ws, json!({"action":"setNotificationsOn","requestId":2,"environment":"VOICE","name":"n","values":values})).await;
    }
    let before = d.memory();

    // The fast subscriber reads on its own task and reports its progress.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut seen = 0usize;
        while seen < EVENTS {
            let ev = next_json(&mut fast).await;
            assert_eq!(ev["event"], "ContextChanged", "{ev}");
            let seq = ev["seq"].as_u64().unwrap();
            assert_eq!(seq, start_seq + 1 + seen as u64, "no gap, no duplicate");
            let value = ev["ValueChanged"].as_str().unwrap();
            assert!(value.starts_with(&format!("{seen:06}:")), "{value}");
            seen += 1;
            let _ = progress_tx.send(seen);
        }
        (seen, fast)
    });

    // The publisher: setContextJSON batches (10,000 single writes would
    // exceed the default 6000-per-minute rate limit of one request type),
    // its replies read on their own task.
    let (mut pub_tx, mut pub_rx) = publisher.split();
    let replies = tokio::spawn(async move {
        let mut n = 0;
        while n < EVENTS / BATCH {
            let msg = timeout(DEADLINE, pub_rx.next())
                .await
                .expect("publisher reply in time")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                let r: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(r["result"], "SUCCESS", "{r}");
                n += 1;
            }
        }
        n
    });
    let pad = "x".repeat(92);
    let started = Instant::now();
    for b in 0..EVENTS / BATCH {
        let sent = b * BATCH;
        if sent >= AHEAD {
            timeout(DEADLINE, progress.wait_for(|seen| seen + AHEAD > sent))
                .await
                .expect("the fast subscriber keeps up")
                .unwrap();
        }
        let data: Vec<Value> = (sent..sent + BATCH)
            .map(|i| json!({"n": format!("{i:06}:{pad}")}))
            .collect();
        futures_util::SinkExt::send(
            &mut pub_tx,
            Message::Text(
                json!({"action":"setContextJSON","environment":"VOICE","data":data})
                    .to_string()
                    .into(),
            ),
        )
        .await
        .unwrap();
    }
    let (seen, mut fast) = timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast subscriber done")
        .unwrap();
    assert_eq!(seen, EVENTS);
    assert_eq!(replies.await.unwrap(), EVENTS / BATCH);
    println!(
        "10,000 events of ~100-byte values published and received in order in {:?}",
        started.elapsed()
    );

    // The daemon gave up on the slow subscriber: its outbox overflowed
    // (protocol §10), and since its socket takes no data the close frame
    // cannot even be written: it is dropped after PongTimeout (§12).
    d.wait_for_log(&["closing a connection that does not read its messages"])
        .await;
    let end_line = d
        .wait_for_log(&["websocket disconnected", "peer takes no data"])
        .await;
    assert!(
        !d.log().contains("code=1013"),
        "a 1013 close frame cannot have been written to a full socket"
    );
    println!("slow subscriber: {end_line}");
    let after = d.memory();
    print_memory(
        "10,000 events with a never-reading subscriber",
        before,
        after,
    );
    // Bounded: at most the outbox (1024 messages of ~2.3 KB) and the write
    // buffer, not the ~23 MB of events the slow subscriber was due; a
    // generous constant.
    assert!(
        after.hwm_kib <= before.hwm_kib + 12 * MIB,
        "peak RSS: {before:?} -> {after:?}"
    );

    // What the slow client finally reads: a gap-free prefix of what fitted
    // in the socket buffers, then the end without a close frame.
    let mut got = 0u64;
    let end = loop {
        match timeout(DEADLINE, slow.next())
            .await
            .expect("slow client ends")
        {
            Some(Ok(Message::Text(t))) => {
                let ev: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(ev["seq"].as_u64().unwrap(), start_seq + 1 + got, "in order");
                got += 1;
            }
            Some(Ok(Message::Close(frame))) => break format!("close {frame:?}"),
            Some(Ok(_)) => {}
            None => break "EOF".to_string(),
            Some(Err(e)) => break format!("error {e}"),
        }
    };
    println!("the slow subscriber received {got} of {EVENTS} events, then {end}");
    assert!((got as usize) < EVENTS, "the slow subscriber was cut off");
    assert!(!end.starts_with("close"), "{end}");

    // Publisher and fast subscriber still work; the data is the last write.
    let r = ok(
        &mut fast,
        json!({"action":"getEnvironment","requestId":9,"environment":"VOICE"}),
    )
    .await;
    assert_eq!(r["seq"].as_u64().unwrap(), start_seq + EVENTS as u64);
    assert!(r["data"]["n"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{:06}:", EVENTS - 1)));
}

// ---------------------------------------------------------------------------
// 3. A connection flood from one OS user.

/// Env var that turns `second_user_client` into the other user's client.
const CLIENT_ENV: &str = "WSC_RESOURCES_SECOND_USER_CLIENT";
const ORIGIN: &str = "https://crm.example.com";

/// Raises this process's open-file limit (inherited by the daemon it
/// starts) to at least `want`; `Err` says why it cannot.
fn raise_fd_limit(want: u64) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    if soft >= want {
        return Ok(());
    }
    if hard < want {
        return Err(format!("open-file limit {hard} is below the {want} needed"));
    }
    setrlimit(Resource::RLIMIT_NOFILE, want, hard).map_err(|e| e.to_string())
}

/// One flood connection: a native upgrade request; returns the status and
/// the socket (kept open so an accepted one keeps its place).
async fn flood_one(addr: SocketAddr, host: String) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let r = raw_http_on(&mut s, &upgrade_head(&host, &[])).await;
    (r.status, s)
}

async fn flood(d: &DaemonProcess, n: usize) -> (Vec<TcpStream>, usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(flood_one(d.v4(), d.host()));
    }
    let (mut accepted, mut refused) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        let (status, s) = r.unwrap();
        match status {
            101 => accepted.push(s),
            503 => refused += 1,
            other => panic!("flood connection answered {other}"),
        }
    }
    (accepted, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1000_connection_flood_gets_503_over_the_cap_while_a_second_user_gets_in() {
    const FLOOD: usize = 1000;
    const PER_USER: usize = 128; // the shipped MaxConnectionsPerUser
    if let Err(why) = second_user::ensure_other_user() {
        skip::skipped("1000-connection flood with a second OS user", &why);
        return;
    }
    if let Err(why) = raise_fd_limit(4096) {
        skip::skipped("1000-connection flood with a second OS user", &why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(
        dir.path(),
        &format!("<AllowedHosts>{ORIGIN}</AllowedHosts><AllowOtherUsers>true</AllowOtherUsers>"),
    );
    // Our own toolbar, connected before the flood, with data.
    let mut toolbar = native(&d).await;
    ok(&mut toolbar, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"toolbar"})).await;
    ok(&mut toolbar, json!({"action":"setContextVariable","requestId":2,"environment":"VOICE","name":"GEN_T2P","value":"EvEstablished"})).await;
    let before = d.memory();

    let started = Instant::now();
    let (mut held, refused) = flood(&d, FLOOD).await;
    println!(
        "flood of {FLOOD}: {} upgraded, {refused} refused with 503, in {:?}",
        held.len(),
        started.elapsed()
    );
    // The toolbar holds one of our places.
    assert_eq!(held.len(), PER_USER - 1);
    assert_eq!(refused, FLOOD - (PER_USER - 1));
    d.wait_for_log(&["refused: connection cap reached"]).await;

    // While a second wave keeps hammering the daemon (waves of 50 until the
    // second user's client is done, at least 500 connections), the second OS
    // user connects and works, and our toolbar still gets answers.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let wave = {
        let addr = d.v4();
        let host = d.host();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while statuses.len() < FLOOD / 2 || !*stop.borrow() {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..50 {
                    set.spawn(flood_one(addr, host.clone()));
                }
                while let Some(r) = set.join_next().await {
                    statuses.push(r.unwrap().0);
                }
            }
            statuses
        })
    };
    let other = run_second_user_client(d.port).await;
    let t = Instant::now();
    let r = ok(
        &mut toolbar,
        json!({"action":"getEnvironment","requestId":3,"environment":"VOICE"}),
    )
    .await;
    println!(
        "our toolbar's getEnvironment during the second wave: {:?}",
        t.elapsed()
    );
    // The wave cannot end before this: it ran throughout.
    stop_tx.send(true).unwrap();
    let statuses = wave.await.unwrap();
    println!("second wave: {} connections", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 503),
        "second wave: {statuses:?}"
    );

    // The second user's client saw itself as that user and its write landed.
    assert_eq!(other["hello"]["user"], second_user::OTHER, "{other}");
    assert_eq!(other["hello"]["native"], false, "{other}");
    assert_eq!(other["set"]["result"], "SUCCESS", "{other}");
    assert_eq!(other["get"]["data"]["OTHER_USER_VAR"], "hello", "{other}");
    // Our data is untouched by the flood (the other user wrote its own variable).
    assert_eq!(r["data"]["GEN_T2P"], "EvEstablished", "{r}");

    let after = d.memory();
    print_memory("1000-connection flood + a second wave", before, after);
    // Bounded: 127 websockets, and at most a handful of blocking threads for
    // the peer-identity lookups (4 at once, whatever the flood) and other
    // blocking work; 60-90 more threads before the lookups were bounded.
    assert!(
        after.hwm_kib <= before.hwm_kib + 64 * MIB,
        "peak RSS: {before:?} -> {after:?}"
    );
    assert!(
        after.threads <= before.threads + 16,
        "threads: {before:?} -> {after:?}"
    );
    // The health route still answers at once.
    let mut s = TcpStream::connect(d.v4()).await.unwrap();
    let h = raw_http_on(&mut s, &format!("GET /health HTTP/1.1\nHost: {}", d.host())).await;
    assert_eq!(h.status, 200);

    // Freed places are usable again.
    held.truncate(PER_USER - 2);
    let end = Instant::now() + DEADLINE;
    loop {
        let (status, _s) = flood_one(d.v4(), d.host()).await;
        if status == 101 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < end, "a freed place was never given again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs this test binary again as the second OS user, in the
/// `second_user_client` role; returns what that client reported.
async fn run_second_user_client(port: u16) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().unwrap();
    // Others may execute it when it and every folder above it have the x
    // bit for others; otherwise (a target dir under /root) run a copy.
    let reachable = exe.ancestors().all(|p| {
        p.as_os_str().is_empty()
            || std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o001 != 0)
                .unwrap_or(false)
    });
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = if reachable {
        exe
    } else {
        let bin = bin_dir.path().join("resources-test");
        std::fs::copy(&exe, &bin).unwrap();
        std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    };
    let out = tokio::task::spawn_blocking(move || {
        let out = second_user::command_as_other(&bin)
            .args([
                "--exact",
                "second_user_client",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CLIENT_ENV, port.to_string())
            .output()
            .unwrap();
        drop(bin_dir);
        out
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "second user's client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        // The harness prints the test's name on the same line first.
        .find_map(|l| l.split_once("SECOND-USER-RESULT ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// Not a test of its own: the second OS user's websocket client, run by
/// `a_1000_connection_flood...` as that user through `setpriv`. Without
/// its environment variable it does nothing.
#[tokio::test]
async fn second_user_client() {
    let Ok(port) = std::env::var(CLIENT_ENV) else {
        return;
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let host = format!("localhost:{port}");
    let mut ws = common::ws_connect(addr, &host, Some(ORIGIN)).await;
    let hello = next_json(&mut ws).await;
    ok(&mut ws, json!({"action":"createEnvironment","requestId":1,"environment":"VOICE","clientName":"other-user-crm"})).await;
    let set = request(&mut ws, json!({"action":"setContextVariable","requestId":2,"environment":"VOICE","name":"OTHER_USER_VAR","value":"hello"})).await;
    let get = request(
        &mut ws,
        json!({"action":"getEnvironment","requestId":3,"environment":"VOICE"}),
    )
    .await;
    println!(
        "SECOND-USER-RESULT {}",
        json!({"hello": hello, "set": set, "get": get})
    );
}
