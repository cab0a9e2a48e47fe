//! The whole benchmark in one run (scripts/bench.sh): the raw TCP floor,
//! Redis pub/sub and wsconnector with the same workload, memory, start-up
//! time and binary size; every configuration repeated, medians reported with
//! their ratios to the floor and to Redis from this same run, and the
//! results written as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::procs::{self, Proc};
use crate::runs::Target;
use crate::stats::median;
use crate::{fail, proc_stats, Res};

/// Options of `wsc-bench suite`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// The daemon's release binary.
    #[arg(long)]
    pub daemon: PathBuf,
    /// redis-server.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// Repeats of each latency configuration (medians are reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Repeats of each saturation, memory and start-up configuration.
    #[arg(long, default_value_t = 3)]
    pub repeats_heavy: usize,
    /// Connections of the memory test.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds measured per saturation run.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    pub out: PathBuf,
    /// Working directory for config files.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
}

/// Subscriber counts of the fan-out runs.
const SUBS: [usize; 3] = [1, 10, 100];
/// The latency runs: server and load generator share this CPU (a cross-CPU
/// wake-up costs tens of microseconds on this kind of VM).
const LATENCY_CPU: &str = "0";
/// Saturation: the load generator here, the server on `SERVER_CPU`.
const LOADGEN_CPU: &str = "0";
const SERVER_CPU: &str = "1";

/// Closed-loop sets per latency run (after a tenth as warm-up).
fn latency_sets(subs: usize) -> u64 {
    match subs {
        1 => 5000,
        10 => 2000,
        _ => 1000,
    }
}

/// Sets outstanding in a saturation run, whatever S: far below the daemon's
/// outbox bound (1,024 messages per subscriber), enough for both servers to
/// batch their writes.
const WINDOW: u64 = 100;

fn run_args(target: Target, p: &Proc, subs: usize, sat: Option<(f64, u64)>) -> Vec<String> {
    let t = match target {
        Target::Ws => "ws",
        Target::Redis => "redis",
    };
    let mut a = vec![
        "run".into(),
        "--target".into(),
        t.into(),
        "--addr".into(),
        p.addr.to_string(),
        "--subs".into(),
        subs.to_string(),
    ];
    match sat {
        None => {
            let n = latency_sets(subs);
            a.extend([
                "--count".into(),
                n.to_string(),
                "--warmup".into(),
                (n / 10).to_string(),
            ]);
        }
        Some((seconds, window)) => a.extend([
            "--window".into(),
            window.to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--pid".into(),
            p.pid.to_string(),
        ]),
    }
    a
}

/// Samples of every figure, by name, over the repeats.
#[derive(Default)]
struct Samples(BTreeMap<String, Vec<f64>>);

impl Samples {
    fn add(&mut self, name: &str, v: f64) {
        self.0.entry(name.to_string()).or_default().push(v);
    }
    fn add_json(&mut self, prefix: &str, v: &Value, keys: &[&str]) {
        for k in keys {
            if let Some(x) = v[*k].as_f64() {
                self.add(&format!("{prefix}.{k}"), x);
            }
        }
    }
    fn med(&self, name: &str) -> f64 {
        self.0.get(name).map_or(f64::NAN, |v| median(v))
    }
}

fn say(what: &str) {
    eprintln!("[bench] {what}");
}

/// Runs everything, prints the table, writes the JSON.
pub fn run(a: SuiteArgs) -> Res<()> {
    let started = std::time::Instant::now();
    let mut s = Samples::default();
    let mut raw: Vec<Value> = Vec::new();
    let lat_keys = ["p50_us", "p90_us", "p99_us", "max_us"];
    let sat_keys = [
        "notifications_per_s",
        "cpu_us_per_notification",
        "server_cpu_share",
    ];

    let size = std::fs::metadata(&a.daemon)
        .map_err(|e| fail(format!("{}: {e} (build it first)", a.daemon.display())))?
        .len();
    s.add("ws.binary_bytes", size as f64);

    say("start-up time and idle memory");
    for _ in 0..a.repeats_heavy.max(3) {
        let d = procs::daemon(&a.daemon, None, &a.dir, a.connections + 64)?;
        s.add("ws.startup_ms", d.startup.as_secs_f64() * 1000.0);
        drop(d);
        let r = procs::redis(&a.redis_server, None)?;
        s.add("redis.startup_ms", r.startup.as_secs_f64() * 1000.0);
    }

    say(&format!("memory with {} connections", a.connections));
    for _ in 0..a.repeats_heavy {
        for subscribed in [false, true] {
            let kind = if subscribed { "subscribed" } else { "idle" };
            for target in [Target::Ws, Target::Redis] {
                let p = match target {
                    Target::Ws => procs::daemon(&a.daemon, None, &a.dir, a.connections + 64)?,
                    Target::Redis => procs::redis(&a.redis_server, None)?,
                };
                let name = match target {
                    Target::Ws => "ws",
                    Target::Redis => "redis",
                };
                // Settle after start-up before reading the idle figure.
                std::thread::sleep(Duration::from_millis(300));
                let idle = proc_stats::rss_kib(p.pid)?;
                s.add(&format!("{name}.idle_rss_kib"), idle as f64);
                let v = procs::worker(
                    None,
                    &[
                        "hold".into(),
                        "--target".into(),
                        name.into(),
                        "--addr".into(),
                        p.addr.to_string(),
                        "--pid".into(),
                        p.pid.to_string(),
                        "--count".into(),
                        a.connections.to_string(),
                    ]
                    .into_iter()
                    .chain(subscribed.then(|| "--subscribed".to_string()))
                    .collect::<Vec<_>>(),
                )?;
                s.add_json(
                    &format!("{name}.conn_{kind}"),
                    &v,
                    &["per_connection_kib", "rss_with_kib"],
                );
                raw.push(json!({"figure": format!("{name}.conn_{kind}"), "result": v}));
            }
        }
    }

    say("latency (server and load generator on CPU 0)");
    {
        let echo = procs::echo(Some(LATENCY_CPU))?;
        let d = procs::daemon(&a.daemon, Some(LATENCY_CPU), &a.dir, 512)?;
        let r = procs::redis(&a.redis_server, Some(LATENCY_CPU))?;
        for rep in 0..a.repeats {
            say(&format!("latency repeat {}/{}", rep + 1, a.repeats));
            let v = procs::worker(
                Some(LATENCY_CPU),
                &[
                    "ping-pong".into(),
                    "--addr".into(),
                    echo.addr.to_string(),
                    "--count".into(),
                    "5000".into(),
                ],
            )?;
            s.add_json("floor.rtt", &v, &lat_keys);
            raw.push(json!({"figure": "floor.rtt", "result": v}));
            for subs in SUBS {
                for (name, target, p) in [("ws", Target::Ws, &d), ("redis", Target::Redis, &r)] {
                    let v = procs::worker(Some(LATENCY_CPU), &run_args(target, p, subs, None))?;
                    let fig = format!("{name}.lat_s{subs}");
                    s.add_json(&fig, &v, &lat_keys);
                    raw.push(json!({"figure": fig, "result": v}));
                }
            }
        }
    }

    say("saturation (load generator on CPU 0, server on CPU 1)");
    {
        let d = procs::daemon(&a.daemon, Some(SERVER_CPU), &a.dir, 512)?;
        let r = procs::redis(&a.redis_server, Some(SERVER_CPU))?;
        for rep in 0..a.repeats_heavy {
            say(&format!(
                "saturation repeat {}/{}",
                rep + 1,
                a.repeats_heavy
            ));
            for subs in [10, 100] {
                for (name, target, p) in [("ws", Target::Ws, &d), ("redis", Target::Redis, &r)] {
                    let args = run_args(target, p, subs, Some((a.seconds, WINDOW)));
                    let v = procs::worker(Some(LOADGEN_CPU), &args)?;
                    let fig = format!("{name}.sat_s{subs}");
                    s.add_json(&fig, &v, &sat_keys);
                    raw.push(json!({"figure": fig, "result": v}));
                }
            }
        }
    }

    let table = report(&s);
    println!("{table}");
    let medians: BTreeMap<&String, f64> = s.0.keys().map(|k| (k, s.med(k))).collect();
    let result = json!({
        "when_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "daemon": a.daemon,
        "repeats": a.repeats,
        "repeats_heavy": a.repeats_heavy,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "placement": {"latency": "server and load generator on CPU 0", "saturation": "load generator CPU 0, server CPU 1"},
        "medians": medians,
        "samples": s.0,
        "runs": raw,
        "table": table,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&result)?)?;
    eprintln!(
        "[bench] results written to {} ({:.0} s)",
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// The results table: each figure, its ratio to the floor and to Redis, and
/// the target for it.
fn report(s: &Samples) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "figure".into(),
        "wsconnector".into(),
        "Redis".into(),
        "TCP floor".into(),
        "ws/floor".into(),
        "ws/Redis".into(),
        "target (must / stretch)".into(),
    ]];
    let mut row = |name: &str, ws: f64, redis: f64, floor: f64, target: &str| {
        rows.push([
            name.into(),
            fmt(ws),
            fmt(redis),
            fmt(floor),
            ratio(ws, floor),
            ratio(ws, redis),
            target.into(),
        ]);
    };
    for subs in SUBS {
        for p in ["p50", "p90", "p99", "max"] {
            let k = format!("lat_s{subs}.{p}_us");
            let target = match (subs, p) {
                (1, "p50") => "ws/floor <= 2.0 / 1.5",
                (10 | 100, "p99") => "ws/Redis <= 1.0 / 0.8",
                _ => "",
            };
            row(
                &format!("S={subs} latency {p} (us)"),
                s.med(&format!("ws.{k}")),
                s.med(&format!("redis.{k}")),
                s.med(&format!("floor.rtt.{p}_us")),
                target,
            );
        }
    }
    for subs in [10, 100] {
        row(
            &format!("S={subs} saturation notifications/s"),
            s.med(&format!("ws.sat_s{subs}.notifications_per_s")),
            s.med(&format!("redis.sat_s{subs}.notifications_per_s")),
            f64::NAN,
            "",
        );
        row(
            &format!("S={subs} server CPU per notification (us)"),
            s.med(&format!("ws.sat_s{subs}.cpu_us_per_notification")),
            s.med(&format!("redis.sat_s{subs}.cpu_us_per_notification")),
            f64::NAN,
            "ws/Redis <= 2.0 / 1.0",
        );
        row(
            &format!("S={subs} server CPU share at saturation"),
            s.med(&format!("ws.sat_s{subs}.server_cpu_share")),
            s.med(&format!("redis.sat_s{subs}.server_cpu_share")),
            f64::NAN,
            "",
        );
    }
    let mib = |k: &str| s.med(k) / 1024.0;
    row(
        "idle RSS (MiB)",
        mib("ws.idle_rss_kib"),
        mib("redis.idle_rss_kib"),
        f64::NAN,
        "<= 8 / 5 MiB",
    );
    row(
        "RSS per idle connection (KiB)",
        s.med("ws.conn_idle.per_connection_kib"),
        s.med("redis.conn_idle.per_connection_kib"),
        f64::NAN,
        "",
    );
    row(
        "RSS per subscribed connection (KiB)",
        s.med("ws.conn_subscribed.per_connection_kib"),
        s.med("redis.conn_subscribed.per_connection_kib"),
        f64::NAN,
        "<= 16 / 8 KiB",
    );
    row(
        "start-up to listening (ms)",
        s.med("ws.startup_ms"),
        s.med("redis.startup_ms"),
        f64::NAN,
        "<= 50 / 20 ms",
    );
    row(
        "release binary (MiB)",
        s.med("ws.binary_bytes") / 1048576.0,
        f64::NAN,
        f64::NAN,
        "",
    );
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == 0 || c == 6 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&format!("|-{}-|\n", dashes.join("-|-")));
        }
    }
    out
}
