//! Soak mode (issue 6, scripts/soak.sh): hundreds of clients for minutes
//! against one daemon. Every client registers and subscribes to `*` in one of
//! a few environments; some publish, some keep reconnecting and `resume`.
//! Each client checks the environment's `seq` it sees: every event and every
//! reply to its own write must be exactly the next one, also across a
//! reconnect (the replayed events fill the gap), so any lost or duplicated
//! notification fails the run. The daemon's RSS is sampled all along and
//! must stay flat.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::LocalSet;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::median;
use crate::{fail, proc_stats, procs, ws, Res};

/// Options of `wsc-bench soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// The daemon binary (debug or release).
    #[arg(long)]
    pub daemon: PathBuf,
    /// How long clients publish, in seconds.
    #[arg(long, default_value_t = 180.0)]
    pub seconds: f64,
    /// Clients.
    #[arg(long, default_value_t = 300)]
    pub clients: usize,
    /// Environments the clients are spread over.
    #[arg(long, default_value_t = 4)]
    pub envs: usize,
    /// Sets per second of each publisher (one client in ten publishes).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Allowed growth of the median RSS of the last third over the first
    /// third, in percent (and at least `margin_kib`) before the run fails.
    #[arg(long, default_value_t = 10.0)]
    pub margin_pct: f64,
    /// Growth in KiB always tolerated (allocator noise on short runs).
    #[arg(long, default_value_t = 1024.0)]
    pub margin_kib: f64,
    /// Working directory for the config file.
    #[arg(long, default_value = "target/soak")]
    pub dir: PathBuf,
}

/// One client's view, read by the final check.
#[derive(Default, Clone)]
struct ClientState {
    env: usize,
    last_seq: u64,
    /// A set sent and not yet answered.
    outstanding: bool,
    /// Joined at least once.
    joined: bool,
}

#[derive(Default)]
struct Totals {
    delivered: u64,
    replayed: u64,
    sets: u64,
    reconnects: u64,
    snapshots: u64,
    errors: Vec<String>,
    /// Highest seq seen per environment.
    env_seq: Vec<u64>,
    /// The epoch of each environment (must never change: no restart).
    env_epoch: Vec<Option<u64>>,
    clients: Vec<ClientState>,
    stop: bool,
}

type Shared = Rc<RefCell<Totals>>;

fn err(sh: &Shared, what: String) {
    let mut t = sh.borrow_mut();
    if t.errors.len() < 20 {
        t.errors.push(what);
    }
}

/// Runs the soak; prints the figures and fails on loss, duplicates, errors
/// or growing memory.
pub fn run(a: SoakArgs) -> Res<()> {
    let daemon = procs::daemon(&a.daemon, None, &a.dir, a.clients + 64)?;
    eprintln!(
        "[soak] daemon pid {} on {} (started in {:.1} ms); {} clients, {} environments, {} s",
        daemon.pid,
        daemon.addr,
        daemon.startup.as_secs_f64() * 1000.0,
        a.clients,
        a.envs,
        a.seconds
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    let pid = daemon.pid;
    let addr = daemon.addr;
    let result = local.block_on(&rt, drive(a, addr, pid));
    drop(daemon);
    result
}

async fn drive(a: SoakArgs, addr: SocketAddr, pid: u32) -> Res<()> {
    let sh: Shared = Rc::new(RefCell::new(Totals {
        env_seq: vec![0; a.envs],
        env_epoch: vec![None; a.envs],
        clients: vec![ClientState::default(); a.clients],
        ..Totals::default()
    }));
    let setup = Instant::now();
    for i in 0..a.clients {
        let sh = sh.clone();
        let rate = a.rate;
        let envs = a.envs;
        tokio::task::spawn_local(async move {
            if let Err(e) = client(i, envs, rate, addr, sh.clone()).await {
                err(&sh, format!("client {i}: {e}"));
            }
        });
        // Pace the connects a little, as real pages do.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Wait until every client joined.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sh.borrow().clients.iter().any(|c| !c.joined) {
        if Instant::now() > deadline || !sh.borrow().errors.is_empty() {
            return Err(fail(format!(
                "clients did not all join: {:?}",
                sh.borrow().errors
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "[soak] {} clients joined in {:.1} s",
        a.clients,
        setup.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds);
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut next_print = start + Duration::from_secs(10);
    while Instant::now() < end {
        rss.push((start.elapsed().as_secs_f64(), proc_stats::rss_kib(pid)?));
        if !sh.borrow().errors.is_empty() {
            break;
        }
        if Instant::now() >= next_print {
            let t = sh.borrow();
            eprintln!(
                "[soak] {:>4.0} s: {} notifications, {} reconnects, RSS {} KiB",
                start.elapsed().as_secs_f64(),
                t.delivered,
                t.reconnects,
                rss.last().map_or(0, |r| r.1)
            );
            next_print += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    sh.borrow_mut().stop = true;
    // Every client must reach its environment's last seq.
    let deadline = Instant::now() + Duration::from_secs(20);
    let behind = loop {
        let (behind, failed) = {
            let t = sh.borrow();
            let behind: Vec<String> = t
                .clients
                .iter()
                .enumerate()
                .filter(|(_, c)| c.outstanding || c.last_seq != t.env_seq[c.env])
                .map(|(i, c)| format!("client {i} at seq {} of {}", c.last_seq, t.env_seq[c.env]))
                .collect();
            (behind, !t.errors.is_empty())
        };
        if behind.is_empty() || failed || Instant::now() > deadline {
            break behind;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let t = sh.borrow();
    let thirds = rss.len() / 3;
    let first: Vec<f64> = rss[..thirds].iter().map(|r| r.1 as f64).collect();
    let last: Vec<f64> = rss[rss.len() - thirds..]
        .iter()
        .map(|r| r.1 as f64)
        .collect();
    let (m1, m3) = (median(&first), median(&last));
    let peak = rss.iter().map(|r| r.1).max().unwrap_or(0);
    let summary = json!({
        "clients": a.clients,
        "seconds": elapsed,
        "notifications": t.delivered,
        "replayed": t.replayed,
        "notifications_per_s": t.delivered as f64 / elapsed,
        "sets": t.sets,
        "reconnects": t.reconnects,
        "snapshots": t.snapshots,
        "rss_first_kib": rss.first().map_or(0, |r| r.1),
        "rss_last_kib": rss.last().map_or(0, |r| r.1),
        "rss_peak_kib": peak,
        "rss_first_third_median_kib": m1,
        "rss_last_third_median_kib": m3,
        "lost_or_duplicate": t.errors.len(),
    });
    println!("{summary}");
    eprintln!(
        "[soak] {} notifications in {:.0} s ({:.0}/s; {} replayed after {} reconnects, {} snapshots), {} sets; \
         RSS first {} KiB, last {} KiB, peak {} KiB; median first third {:.0} KiB, last third {:.0} KiB",
        t.delivered,
        elapsed,
        t.delivered as f64 / elapsed,
        t.replayed,
        t.reconnects,
        t.snapshots,
        t.sets,
        rss.first().map_or(0, |r| r.1),
        rss.last().map_or(0, |r| r.1),
        peak,
        m1,
        m3
    );
    if !t.errors.is_empty() {
        return Err(fail(format!("FAILED: {}", t.errors.join("; "))));
    }
    if !behind.is_empty() {
        return Err(fail(format!(
            "FAILED: LOST notifications: {} clients never caught up: {}",
            behind.len(),
            behind
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    if t.delivered == 0 || t.sets == 0 {
        return Err(fail("FAILED: nothing was published or delivered"));
    }
    let allowed = (m1 * a.margin_pct / 100.0).max(a.margin_kib);
    if thirds > 0 && m3 - m1 > allowed {
        return Err(fail(format!(
            "FAILED: memory grows: median RSS {m1:.0} KiB in the first third, {m3:.0} KiB in the last (allowed +{allowed:.0} KiB)"
        )));
    }
    eprintln!(
        "[soak] PASSED: zero lost, zero duplicate; memory flat (last third {:+.0} KiB, allowed +{allowed:.0} KiB)",
        m3 - m1
    );
    Ok(())
}

/// Checks one seq against the client's last; returns false (and records
/// the error) when it is not exactly the next.
fn step(sh: &Shared, i: usize, seq: u64, what: &str) -> bool {
    let mut t = sh.borrow_mut();
    let c = &mut t.clients[i];
    let want = c.last_seq + 1;
    if seq != want {
        let kind = if seq < want { "DUPLICATE" } else { "LOST" };
        drop(t);
        err(
            sh,
            format!("client {i}: {what} with seq {seq}, expected {want}: {kind}"),
        );
        return false;
    }
    c.last_seq = seq;
    let env = c.env;
    t.env_seq[env] = t.env_seq[env].max(seq);
    true
}

fn env_name(e: usize) -> String {
    format!("SOAK{e}")
}

/// One client for the whole soak: publisher (1 in 10), reconnecting (1 in
/// 10) or a plain subscriber.
async fn client(i: usize, envs: usize, rate: f64, addr: SocketAddr, sh: Shared) -> Res<()> {
    // Roles cycle by tens and environments shift with each ten, so every
    // environment has publishers, subscribers and reconnecting clients.
    let env = (i % 10 + i / 10) % envs;
    let name = env_name(env);
    let publisher = i % 10 == 0;
    let reconnecting = i % 10 == 5;
    sh.borrow_mut().clients[i].env = env;
    let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut token = String::new();
    let mut counter = 0u64;
    let mut first = true;
    loop {
        if !first {
            // Offline for a moment, like a page reload, so events are
            // missed and must come back through the replay.
            tokio::time::sleep(Duration::from_millis(
                50 + (i as u64 * 53 + counter * 97) % 250,
            ))
            .await;
        }
        let (mut conn, hello_token) = ws::connect(addr).await?;
        if first {
            let r = ws::request(
                &mut conn,
                json!({"action": "createEnvironment", "environment": name, "clientName": format!("soak{i}")}),
            )
            .await?;
            check_epoch(&sh, env, &r)?;
            // Others may already be writing: this client's count starts at
            // its subscription reply's seq.
            let r = ws::request(
                &mut conn,
                json!({"action": "setNotificationsOn", "environment": name, "name": "*"}),
            )
            .await?;
            let seq = r["seq"].as_u64().ok_or_else(|| fail("no seq"))?;
            let mut t = sh.borrow_mut();
            t.clients[i].last_seq = seq;
            t.clients[i].joined = true;
            t.env_seq[env] = t.env_seq[env].max(seq);
            first = false;
        } else {
            resume(&mut conn, &sh, i, &token, &name).await?;
        }
        token = hello_token;
        let (mut sink, mut stream) = conn.split();
        // Stagger clients so they do not act in lockstep.
        let mut next_set = tokio::time::Instant::now() + period.mul_f64(1.0 + (i % 7) as f64 / 7.0);
        let reconnect_at = tokio::time::Instant::now()
            + Duration::from_millis(1500 + (i as u64 * 137 + counter * 31) % 2500);
        loop {
            let stop = sh.borrow().stop;
            let outstanding = sh.borrow().clients[i].outstanding;
            let timer = if reconnecting && !stop {
                reconnect_at
            } else if publisher && !stop && !outstanding {
                next_set
            } else {
                tokio::time::Instant::now() + Duration::from_secs(3600)
            };
            tokio::select! {
                msg = stream.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(c))) => return Err(fail(format!("closed by the daemon: {c:?}"))),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(e.into()),
                        None => return Err(fail("connection ended")),
                    };
                    let v: Value = serde_json::from_str(text.as_str())?;
                    let seq = v["seq"].as_u64().unwrap_or(0);
                    match (v["type"].as_str(), v["event"].as_str()) {
                        (Some("event"), Some("ContextChanged")) => {
                            if v["EnvironmentName"] != name.as_str() {
                                return Err(fail(format!("event of another environment: {text}")));
                            }
                            if !step(&sh, i, seq, "event") {
                                return Ok(());
                            }
                            sh.borrow_mut().delivered += 1;
                        }
                        (Some("reply"), _) if v["result"] == "SUCCESS" && v["action"] == "setContextVariable" => {
                            if !step(&sh, i, seq, "reply to its own set") {
                                return Ok(());
                            }
                            let mut t = sh.borrow_mut();
                            t.clients[i].outstanding = false;
                            t.sets += 1;
                        }
                        _ => return Err(fail(format!("unexpected message: {text}"))),
                    }
                }
                _ = sleep_until(timer) => {
                    if reconnecting {
                        // Leave like a reloaded page: a close frame, then a new connection.
                        let _ = sink.send(Message::Close(None)).await;
                        sh.borrow_mut().reconnects += 1;
                        counter += 1;
                        break;
                    }
                    counter += 1;
                    let value = format!("{i:06}-{counter:012}-{}", "v".repeat(80));
                    sh.borrow_mut().clients[i].outstanding = true;
                    sink.send(Message::text(
                        json!({"action": "setContextVariable", "environment": name, "name": format!("p{i}"), "value": value}).to_string(),
                    ))
                    .await?;
                    next_set += period;
                    let now = tokio::time::Instant::now();
                    if next_set < now {
                        next_set = now;
                    }
                }
            }
        }
    }
}

fn check_epoch(sh: &Shared, env: usize, reply: &Value) -> Res<()> {
    let Some(epoch) = reply["epoch"].as_u64() else {
        return Ok(());
    };
    let mut t = sh.borrow_mut();
    match t.env_epoch[env] {
        Some(e) if e != epoch => Err(fail(format!(
            "environment {} changed epoch {e} -> {epoch}",
            env_name(env)
        ))),
        _ => {
            t.env_epoch[env] = Some(epoch);
            Ok(())
        }
    }
}

/// Reconnect: `resume` with the previous connection's token and the last
/// seq; the replayed events must be exactly the missed ones.
async fn resume(conn: &mut ws::Ws, sh: &Shared, i: usize, token: &str, name: &str) -> Res<()> {
    let (last, env) = {
        let t = sh.borrow();
        (t.clients[i].last_seq, t.clients[i].env)
    };
    let epoch = sh.borrow().env_epoch[env].unwrap_or(0);
    let r = ws::request(
        conn,
        json!({"action": "resume", "token": token, "environments": [{
            "environment": name, "clientName": format!("soak{i}"), "epoch": epoch, "seq": last,
            "subscriptions": [{"name": "*", "values": false}]}]}),
    )
    .await?;
    let e = &r["data"]["environments"][0];
    let now_seq = e["seq"]
        .as_u64()
        .ok_or_else(|| fail(format!("resume reply without seq: {r}")))?;
    match e["mode"].as_str() {
        Some("replay") => {
            let events = e["events"].as_array().cloned().unwrap_or_default();
            for ev in &events {
                let seq = ev["seq"].as_u64().unwrap_or(0);
                if !step(sh, i, seq, "replayed event") {
                    return Err(fail("replay out of order"));
                }
            }
            let mut t = sh.borrow_mut();
            t.delivered += events.len() as u64;
            t.replayed += events.len() as u64;
            if t.clients[i].last_seq != now_seq {
                let got = t.clients[i].last_seq;
                drop(t);
                return Err(fail(format!(
                    "replay ends at seq {got} but the environment is at {now_seq}: LOST"
                )));
            }
        }
        Some("snapshot") => {
            // The history no longer reached back: a resynchronisation, not a loss.
            let mut t = sh.borrow_mut();
            t.snapshots += 1;
            t.clients[i].last_seq = now_seq;
        }
        other => return Err(fail(format!("resume mode {other:?}"))),
    }
    Ok(())
}
