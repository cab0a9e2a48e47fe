//! One measurement run of the fan-out workload, against wsconnector or Redis:
//! one publisher and S subscribers on one thread (a current-thread runtime),
//! either closed-loop (the next set only after every subscriber received the
//! previous one: latency) or with a window of outstanding sets (saturation:
//! delivered notifications/s and the server's CPU time per notification).
//! Every subscriber checks that it receives every set exactly once, in order;
//! any loss, duplicate or unexpected message fails the run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio::task::LocalSet;
use tokio_tungstenite::tungstenite::Message;

use crate::{fail, proc_stats, redis, stats, ws, Res};

/// Which server the run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// wsconnector over plain WS, the documented protocol.
    Ws,
    /// Redis pub/sub.
    Redis,
}

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The server to measure.
    #[arg(long, value_enum)]
    pub target: Target,
    /// Its address (127.0.0.1:PORT).
    #[arg(long)]
    pub addr: SocketAddr,
    /// Subscribers.
    #[arg(long, default_value_t = 1)]
    pub subs: usize,
    /// Bytes of each value.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Closed loop: measured sets (after `warmup`).
    #[arg(long, default_value_t = 2000)]
    pub count: u64,
    /// Closed loop: sets before measuring.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
    /// Saturation: sets outstanding at once (0 = closed-loop latency run).
    #[arg(long, default_value_t = 0)]
    pub window: u64,
    /// Saturation: measured seconds (after 0.5 s of warm-up).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Saturation: the server's process id, for its CPU time.
    #[arg(long)]
    pub pid: Option<u32>,
}

/// Bookkeeping shared by the publisher and the subscriber tasks.
struct Shared {
    subs: u32,
    /// Per subscriber: the next set index it must receive.
    expected: Vec<u64>,
    /// Receipts of each outstanding set, oldest first (index `completed`).
    counts: VecDeque<u32>,
    /// Sets every subscriber has received.
    completed: u64,
    /// When the last set was completed (its last receipt).
    completed_at: Instant,
    /// Notifications received in total.
    received: u64,
    /// Publisher replies received.
    replies: u64,
    /// The first error a task met.
    error: Option<String>,
    /// Wakes the publisher.
    wake: Rc<Notify>,
    /// wsconnector: the environment's seq before the first set of this run.
    seq_base: u64,
}

impl Shared {
    fn event(&mut self, sub: usize, idx: u64) {
        if self.error.is_some() {
            return;
        }
        let want = self.expected[sub];
        if idx != want {
            let what = if idx < want {
                "duplicate or reordered"
            } else {
                "LOST"
            };
            self.error = Some(format!(
                "subscriber {sub}: expected set {want}, got set {idx}: {what}"
            ));
            self.wake.notify_one();
            return;
        }
        self.expected[sub] = want + 1;
        self.received += 1;
        let Some(slot) = idx
            .checked_sub(self.completed)
            .and_then(|p| self.counts.get_mut(p as usize))
        else {
            self.error = Some(format!("set {idx} received before it was sent"));
            self.wake.notify_one();
            return;
        };
        *slot += 1;
        let mut done = false;
        while self.counts.front() == Some(&self.subs) {
            self.counts.pop_front();
            self.completed += 1;
            done = true;
        }
        if done {
            self.completed_at = Instant::now();
            self.wake.notify_one();
        }
    }

    fn failed(&mut self, what: String) {
        if self.error.is_none() {
            self.error = Some(what);
        }
        self.wake.notify_one();
    }
}

/// The publisher's sending side.
enum Sender {
    Ws(ws::Writer),
    Redis(tokio::net::tcp::OwnedWriteHalf),
}

impl Sender {
    async fn feed(&mut self, k: u64, value_bytes: usize) -> Res<()> {
        match self {
            Sender::Ws(w) => {
                w.feed(Message::text(ws::set_request(k, value_bytes)))
                    .await?
            }
            Sender::Redis(w) => w.write_all(&redis::publish_command(k, value_bytes)).await?,
        }
        Ok(())
    }

    async fn flush(&mut self) -> Res<()> {
        match self {
            Sender::Ws(w) => w.flush().await?,
            Sender::Redis(w) => w.flush().await?,
        }
        Ok(())
    }
}

/// Connects everyone and spawns the reading tasks; returns the publisher's
/// sending side and what must stay alive for the run.
async fn setup(
    a: &RunArgs,
    shared: &Rc<RefCell<Shared>>,
) -> Res<(Sender, Vec<Box<dyn std::any::Any>>)> {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    match a.target {
        Target::Ws => {
            let mut base = None;
            for i in 0..a.subs {
                let (mut conn, _) = ws::connect(a.addr).await?;
                let seq = ws::join(&mut conn, &format!("sub{i}"), true).await?;
                shared.borrow_mut().seq_base = seq;
                if *base.get_or_insert(seq) != seq {
                    return Err(fail("the environment changed while subscribers joined"));
                }
                let (sink, mut stream) = conn.split();
                keep.push(Box::new(sink));
                let sh = shared.clone();
                tokio::task::spawn_local(async move {
                    loop {
                        match ws::next_frame(&mut stream).await {
                            Ok(ws::Frame::Event(seq)) => {
                                let mut s = sh.borrow_mut();
                                let idx = seq.wrapping_sub(s.seq_base + 1);
                                s.event(i, idx)
                            }
                            Ok(ws::Frame::Reply(_)) => sh
                                .borrow_mut()
                                .failed(format!("subscriber {i}: unexpected reply")),
                            Err(e) => {
                                sh.borrow_mut().failed(format!("subscriber {i}: {e}"));
                                return;
                            }
                        }
                    }
                });
            }
            let (mut conn, _) = ws::connect(a.addr).await?;
            let seq = ws::join(&mut conn, "publisher", false).await?;
            if base.is_some_and(|b| b != seq) {
                return Err(fail("the environment changed while the publisher joined"));
            }
            shared.borrow_mut().seq_base = seq;
            let (sink, mut stream) = conn.split();
            let sh = shared.clone();
            tokio::task::spawn_local(async move {
                loop {
                    match ws::next_frame(&mut stream).await {
                        Ok(ws::Frame::Reply(seq)) => {
                            let mut s = sh.borrow_mut();
                            let want = s.seq_base + s.replies + 1;
                            if seq != want {
                                s.failed(format!("publisher: reply seq {seq}, expected {want}"));
                            }
                            s.replies += 1;
                            s.wake.notify_one();
                        }
                        Ok(ws::Frame::Event(_)) => sh
                            .borrow_mut()
                            .failed("publisher: got an event (echo)".into()),
                        Err(e) => {
                            sh.borrow_mut().failed(format!("publisher: {e}"));
                            return;
                        }
                    }
                }
            });
            Ok((Sender::Ws(sink), keep))
        }
        Target::Redis => {
            for i in 0..a.subs {
                let (mut r, w) = redis::subscriber(a.addr).await?;
                keep.push(Box::new(w));
                let sh = shared.clone();
                tokio::task::spawn_local(async move {
                    loop {
                        match r.next().await.and_then(redis::message_index) {
                            Ok(idx) => sh.borrow_mut().event(i, idx),
                            Err(e) => {
                                sh.borrow_mut().failed(format!("subscriber {i}: {e}"));
                                return;
                            }
                        }
                    }
                });
            }
            let (mut r, w) = redis::publisher(a.addr).await?;
            let sh = shared.clone();
            let subs = a.subs as i64;
            tokio::task::spawn_local(async move {
                loop {
                    match r.next().await {
                        Ok(redis::Resp::Int(n)) => {
                            let mut s = sh.borrow_mut();
                            if n != subs {
                                s.failed(format!("PUBLISH reached {n} subscribers, not {subs}"));
                            }
                            s.replies += 1;
                            s.wake.notify_one();
                        }
                        Ok(other) => sh
                            .borrow_mut()
                            .failed(format!("publisher: unexpected {other:?}")),
                        Err(e) => {
                            sh.borrow_mut().failed(format!("publisher: {e}"));
                            return;
                        }
                    }
                }
            });
            Ok((Sender::Redis(w), keep))
        }
    }
}

/// Runs one measurement and returns its JSON result.
pub fn run(a: RunArgs) -> Res<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    local.block_on(&rt, async move {
        let wake = Rc::new(Notify::new());
        let shared = Rc::new(RefCell::new(Shared {
            subs: a.subs as u32,
            expected: vec![0; a.subs],
            counts: VecDeque::new(),
            completed: 0,
            completed_at: Instant::now(),
            received: 0,
            replies: 0,
            error: None,
            wake: wake.clone(),
            seq_base: 0,
        }));
        let (mut tx, _keep) = setup(&a, &shared).await?;
        let result = if a.window == 0 {
            latency(&a, &shared, &wake, &mut tx).await?
        } else {
            saturation(&a, &shared, &wake, &mut tx).await?
        };
        let s = shared.borrow();
        if let Some(e) = &s.error {
            return Err(fail(e.clone()));
        }
        Ok(result)
    })
}

/// Waits until `done` holds (or a task failed, or 10 s pass).
async fn wait_until(
    shared: &Rc<RefCell<Shared>>,
    wake: &Notify,
    mut done: impl FnMut(&Shared) -> bool,
) -> Res<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        {
            let s = shared.borrow();
            if let Some(e) = &s.error {
                return Err(fail(e.clone()));
            }
            if done(&s) {
                return Ok(());
            }
        }
        if tokio::time::timeout_at(deadline, wake.notified())
            .await
            .is_err()
        {
            let s = shared.borrow();
            return Err(fail(format!(
                "stalled: {} sets completed, {} replies, {} notifications received (LOST notifications?)",
                s.completed, s.replies, s.received
            )));
        }
    }
}

async fn latency(
    a: &RunArgs,
    shared: &Rc<RefCell<Shared>>,
    wake: &Notify,
    tx: &mut Sender,
) -> Res<serde_json::Value> {
    let mut samples = Vec::with_capacity(a.count as usize);
    for k in 0..a.warmup + a.count {
        shared.borrow_mut().counts.push_back(0);
        let t0 = Instant::now();
        tx.feed(k, a.value_bytes).await?;
        tx.flush().await?;
        wait_until(shared, wake, |s| s.completed > k && s.replies > k).await?;
        if k >= a.warmup {
            let at = shared.borrow().completed_at;
            samples.push(at.duration_since(t0).as_nanos() as u64);
        }
    }
    check_all(shared, a.warmup + a.count)?;
    let p = stats::percentiles(&mut samples);
    Ok(json!({
        "p50_us": p.p50, "p90_us": p.p90, "p99_us": p.p99, "max_us": p.max,
        "sets": a.count, "notifications": a.count * a.subs as u64,
    }))
}

async fn saturation(
    a: &RunArgs,
    shared: &Rc<RefCell<Shared>>,
    wake: &Notify,
    tx: &mut Sender,
) -> Res<serde_json::Value> {
    let pid = a.pid.ok_or_else(|| fail("saturation needs --pid"))?;
    let start = Instant::now();
    let warm_until = start + Duration::from_millis(500);
    let end = warm_until + Duration::from_secs_f64(a.seconds);
    let mut sent = 0u64;
    let mut first: Option<(Instant, u64, u64)> = None;
    let last;
    loop {
        let now = Instant::now();
        if first.is_none() && now >= warm_until {
            first = Some((now, shared.borrow().received, proc_stats::cpu_ns(pid)?));
        }
        if now >= end {
            last = (now, shared.borrow().received, proc_stats::cpu_ns(pid)?);
            break;
        }
        let mut fed = false;
        loop {
            let (done, err) = {
                let s = shared.borrow();
                (s.completed, s.error.is_some())
            };
            if err || sent - done >= a.window {
                break;
            }
            shared.borrow_mut().counts.push_back(0);
            tx.feed(sent, a.value_bytes).await?;
            sent += 1;
            fed = true;
        }
        if fed {
            tx.flush().await?;
        }
        let target = sent;
        let window = a.window;
        // Wait for room in the window (or a failure), then refill.
        wait_until(shared, wake, |s| {
            s.error.is_some() || target - s.completed < window
        })
        .await?;
    }
    wait_until(shared, wake, |s| s.completed == sent && s.replies == sent).await?;
    check_all(shared, sent)?;
    let (t0, r0, c0) = first.ok_or_else(|| fail("run too short"))?;
    let (t1, r1, c1) = last;
    let delivered = r1 - r0;
    let secs = t1.duration_since(t0).as_secs_f64();
    Ok(json!({
        "notifications_per_s": delivered as f64 / secs,
        "cpu_us_per_notification": (c1 - c0) as f64 / 1000.0 / delivered.max(1) as f64,
        "server_cpu_share": (c1 - c0) as f64 / 1e9 / secs,
        "sets": sent, "notifications": sent * a.subs as u64, "window": a.window,
    }))
}

/// Every subscriber received exactly `sets` sets and the publisher `sets` replies.
fn check_all(shared: &Rc<RefCell<Shared>>, sets: u64) -> Res<()> {
    let s = shared.borrow();
    if let Some(e) = &s.error {
        return Err(fail(e.clone()));
    }
    for (i, &e) in s.expected.iter().enumerate() {
        if e != sets {
            return Err(fail(format!(
                "subscriber {i} received {e} of {sets} sets: LOST"
            )));
        }
    }
    if s.replies != sets {
        return Err(fail(format!("{} replies for {sets} sets", s.replies)));
    }
    Ok(())
}
