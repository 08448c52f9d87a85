//! The open-loop HTTP load generator.
//!
//! The run is split across the load threads ([`Pool`]: one single-threaded runtime per core,
//! at least 8 connections each). Each thread's dispatcher walks its share of the schedule's send
//! times ([`Pacer`]: request n is due when the integral of the rate reaches n; thread k of T
//! takes requests k+1, k+1+T, …) and sleeps until each **absolute** deadline, so errors never
//! drift. At each deadline it hands the request to an idle connection slot of its thread; slots
//! are opened lazily up to the thread's share of the concurrency cap, and each keeps one HTTP/1.1
//! keep-alive connection. A request that falls due while every slot is busy is *late* (sent as
//! soon as one frees up); one still waiting a timeout after its time is *dropped* (never sent).
//! Latency runs from the **scheduled** send time to the complete answer (coordinated-omission
//! free, as in wrk2 and oha's latency correction); service time from the actual send.
//! Everything lands in per-second windows ([`Stats`], one set per thread, merged each second) —
//! no per-request storage.
//!
//! A closed-loop mode (`closed_loop`) measures the most a target serves: every slot sends its next
//! request as soon as the previous answer arrives, for the run's length (like `wrk`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::Schedule;
use super::client::{Client, ClientKind, Conn, RequestSpec};
use super::pacer::Pacer;
use super::pool::Pool;
use super::stats::{Aggregate, Counts, Percentiles, SecondReport, Stats};

/// How long after a second ends it is closed (answers still arriving for it).
const CLOSE_GRACE: Duration = Duration::from_millis(150);
/// Fewest connection slots per load thread.
const SLOTS_PER_THREAD: usize = 8;
/// At most this many distinct error messages are counted separately.
const MAX_ERROR_KINDS: usize = 16;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub schedule: Schedule,
    /// Stop after this many seconds even if the schedule goes on (`INFINITY`: at its end).
    pub limit_s: f64,
    /// Closed loop at `concurrency` connections instead of the schedule (runs `limit_s`).
    pub closed_loop: bool,
    pub url: String,
    pub concurrency: usize,
    pub timeout: Duration,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub client: ClientKind,
}

impl GeneratorConfig {
    /// A run of `params` against `url` (the caller resolves a missing URL to the cluster's target).
    pub fn from_params(p: &super::LoadParams, url: String) -> Self {
        Self {
            schedule: p.schedule.clone(),
            limit_s: f64::INFINITY,
            closed_loop: false,
            url,
            concurrency: p.concurrency,
            timeout: Duration::from_secs_f64(p.timeout_s.max(0.001)),
            method: p.method.clone(),
            headers: p.headers.clone(),
            body: p.body.clone(),
            client: ClientKind::Raw,
        }
    }

    /// Seconds the run lasts (`INFINITY`: until stopped).
    pub fn length_s(&self) -> f64 {
        if self.closed_loop { self.limit_s } else { self.schedule.duration().min(self.limit_s) }
    }
}

/// Sent to the owner as the run goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LoadEvent {
    Second(SecondReport),
    Finished(Box<Summary>),
}

/// The final account of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub url: String,
    pub client: ClientKind,
    pub closed_loop: bool,
    pub concurrency: usize,
    /// Requests the schedule asked for over the time the run lasted (open loop).
    pub planned: Option<u64>,
    pub elapsed_s: f64,
    /// Stopped before the schedule's end (Ctrl-C, a stop command).
    pub stopped_early: bool,
    pub counts: Counts,
    /// Answers per second over the run.
    pub achieved_rps: f64,
    /// Requests sent per second over the run.
    pub sent_rps: f64,
    /// From the scheduled send time (open loop) or the send (closed loop) to the answer.
    pub latency: Percentiles,
    /// From the actual send to the answer.
    pub service: Percentiles,
    /// TCP connections opened over the run (keep-alive keeps this near the concurrency used).
    pub connections_opened: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// One thread's aggregates: only its own slots write here, so the lock is never contended per
/// request; aligned so that two threads' counters never share a cache line.
#[repr(align(128))]
struct Shard {
    stats: Mutex<Stats>,
    in_flight: AtomicU64,
}

impl Shard {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        match self.stats.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// The state the generator's tasks share.
struct Ctx {
    client: Client,
    /// One per pool thread.
    shards: Vec<Shard>,
    errors: Mutex<BTreeMap<String, u64>>,
    opened: AtomicU64,
    timeout: Duration,
}

impl Ctx {
    fn shard(&self, i: usize) -> &Shard {
        &self.shards[i % self.shards.len()]
    }

    fn in_flight(&self) -> u64 {
        self.shards.iter().map(|s| s.in_flight.load(Ordering::Relaxed)).sum()
    }

    /// Close the seconds before `upto` in every shard; each second's windows merged.
    fn close_until(&self, upto: u64, target: impl Fn(u64) -> Option<f64>) -> Vec<(u64, Aggregate)> {
        let mut merged: Vec<(u64, Aggregate)> = Vec::new();
        for (i, sh) in self.shards.iter().enumerate() {
            let mut st = sh.stats();
            let closed = st.close_until(upto, &target);
            if i == 0 {
                merged = closed;
                continue;
            }
            for (sec, w) in closed {
                match merged.iter_mut().find(|(s, _)| *s == sec) {
                    Some((_, m)) => {
                        m.counts.add(&w.counts);
                        m.latency.add(&w.latency);
                        m.service.add(&w.service);
                    }
                    None => merged.push((sec, w.clone())),
                }
                st.recycle(w);
            }
        }
        merged.sort_by_key(|(s, _)| *s);
        merged
    }

    /// Every shard's interval, merged (and restarted).
    fn take_interval(&self) -> Aggregate {
        let mut all = Aggregate::default();
        let mut seconds = 0;
        for sh in &self.shards {
            let a = sh.stats().take_interval();
            seconds = seconds.max(a.seconds);
            all.add(&a);
        }
        // The shards' seconds are the same seconds: count them once.
        all.target /= self.shards.len().max(1) as f64;
        all.seconds = seconds;
        all
    }

    /// Every shard's totals, merged.
    fn total(&self) -> Aggregate {
        let mut all = Aggregate::default();
        for sh in &self.shards {
            all.add(&sh.stats().total);
        }
        all
    }

    fn error(&self, what: String) {
        let mut m = match self.errors.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if m.len() < MAX_ERROR_KINDS || m.contains_key(&what) {
            *m.entry(what).or_insert(0) += 1;
        } else {
            *m.entry("other".into()).or_insert(0) += 1;
        }
    }

    /// One request on `conn`, due at `due`; everything recorded in `shard` (the thread's).
    /// `timer` is the slot's timeout timer, reset for each request (no allocation per request).
    async fn one(&self, shard: usize, conn: &mut Conn, timer: &mut Pin<Box<Sleep>>, due: Instant) {
        let sh = self.shard(shard);
        let sent = Instant::now();
        sh.in_flight.fetch_add(1, Ordering::Relaxed);
        sh.stats().window(sent).counts.sent += 1;
        let before = conn.opened;
        timer.as_mut().reset((sent + self.timeout).into());
        let result = tokio::select! {
            biased;
            r = self.client.send(conn) => Ok(r),
            _ = timer.as_mut() => Err(()),
        };
        let done = Instant::now();
        if conn.opened != before {
            self.opened.fetch_add(conn.opened - before, Ordering::Relaxed);
        }
        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut err = None;
        {
            let mut st = sh.stats();
            let w = st.window(done);
            match &result {
                Ok(Ok(status)) => {
                    w.counts.responses += 1;
                    let class = usize::from(status / 100).clamp(1, 5) - 1;
                    w.counts.status[class] += 1;
                    w.latency.record(done.saturating_duration_since(due));
                    w.service.record(done.saturating_duration_since(sent));
                }
                Ok(Err(e)) => {
                    w.counts.errors += 1;
                    err = Some(e.clone());
                }
                Err(_) => w.counts.timeouts += 1,
            }
        }
        if result.is_err() {
            conn.reset();
        }
        if let Some(e) = err {
            self.error(e);
        }
    }
}

/// A running generator. Dropping it stops the run.
pub struct LoadRun {
    cancel: CancellationToken,
    cancel_on_drop: DropGuard,
    ctx: Arc<Ctx>,
    closed_loop: bool,
    started: Instant,
    length_s: f64,
    join: tokio::task::JoinHandle<Summary>,
}

impl LoadRun {
    /// Check the request, build the client and start. `sink` gets a [`LoadEvent::Second`] per
    /// closed second and one [`LoadEvent::Finished`] at the end.
    pub async fn start(
        cfg: GeneratorConfig,
        sink: impl Fn(LoadEvent) + Send + Sync + 'static,
    ) -> Result<LoadRun, String> {
        if cfg.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if !cfg.closed_loop {
            cfg.schedule.validate()?;
        } else if !(cfg.limit_s > 0.0 && cfg.limit_s.is_finite()) {
            return Err("a closed-loop run needs a duration".into());
        }
        let spec = RequestSpec::new(&cfg.url, &cfg.method, &cfg.headers, cfg.body.as_deref())?;
        let client = Client::new(spec, cfg.client, cfg.concurrency).await?;
        let tracker = TaskTracker::new();
        // A thread per core, but at least SLOTS_PER_THREAD connections each: a small cap stays
        // one pool of connections (a request waits only when all of them are busy).
        let pool = match Pool::new(cfg.concurrency.div_ceil(SLOTS_PER_THREAD), tracker.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracker.close();
                return Err(e);
            }
        };
        let started = Instant::now();
        let ctx = Arc::new(Ctx {
            client,
            shards: (0..pool.threads())
                .map(|_| Shard { stats: Mutex::new(Stats::new(started)), in_flight: AtomicU64::new(0) })
                .collect(),
            errors: Mutex::new(BTreeMap::new()),
            opened: AtomicU64::new(0),
            timeout: cfg.timeout,
        });
        let cancel = CancellationToken::new();
        let length_s = cfg.length_s();
        let closed_loop = cfg.closed_loop;
        let join = tokio::spawn(run(cfg, ctx.clone(), pool, tracker, cancel.clone(), started, Arc::new(sink)));
        let cancel_on_drop = cancel.clone().drop_guard();
        Ok(LoadRun { cancel, cancel_on_drop, ctx, closed_loop, started, length_s, join })
    }

    /// Stop sending; requests in flight get a short grace, then count as cancelled.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Fraction of the run done (`None` when it runs until stopped).
    pub fn progress(&self) -> Option<f64> {
        self.length_s
            .is_finite()
            .then(|| (self.started.elapsed().as_secs_f64() / self.length_s.max(1e-9)).clamp(0.0, 1.0))
    }

    /// The seconds closed since the last call (per control tick).
    pub fn take_interval(&self) -> Aggregate {
        self.ctx.take_interval()
    }

    pub fn closed_loop(&self) -> bool {
        self.closed_loop
    }

    /// Wait for the end (after [`LoadRun::stop`], or the schedule's end).
    pub async fn finish(self) -> Result<Summary, String> {
        let LoadRun { join, cancel_on_drop, .. } = self;
        let out = join.await.map_err(|e| format!("the load generator failed: {e}"));
        cancel_on_drop.disarm();
        out
    }
}

type Sink = Arc<dyn Fn(LoadEvent) + Send + Sync>;

/// Tasks of a run: tracked (to wait for them) and abortable.
#[derive(Clone)]
struct Tracked {
    tracker: TaskTracker,
    abort: CancellationToken,
}

impl Tracked {
    fn wrap(&self, f: impl Future<Output = ()> + Send + 'static) -> impl Future<Output = ()> + Send + 'static {
        let abort = self.abort.clone();
        self.tracker.track_future(async move {
            tokio::select! {
                _ = abort.cancelled() => {}
                _ = f => {}
            }
        })
    }

    /// On the current thread's runtime (a pool thread).
    fn spawn_here(&self, f: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(self.wrap(f));
    }
}

async fn run(
    cfg: GeneratorConfig,
    ctx: Arc<Ctx>,
    pool: Pool,
    tracker: TaskTracker,
    cancel: CancellationToken,
    started: Instant,
    sink: Sink,
) -> Summary {
    let pacer = Pacer::new(cfg.schedule.clone(), cfg.limit_s);
    let done = CancellationToken::new();
    let target = target_fn(&cfg, &pacer);
    let reporter = tokio::spawn(report_seconds(ctx.clone(), started, done.clone(), target.clone(), sink.clone()));
    // Slots run on the pool's threads; `tracker` waits for them, `abort` ends them.
    let abort = CancellationToken::new();
    let tracked = Tracked { tracker: tracker.clone(), abort: abort.clone() };
    if cfg.closed_loop {
        let deadline = started + Duration::from_secs_f64(cfg.limit_s);
        for i in 0..cfg.concurrency {
            let (ctx, cancel) = (ctx.clone(), cancel.clone());
            let shard = i % pool.threads();
            pool.spawn_on(
                shard,
                tracked.wrap(async move {
                    let mut conn = Conn::default();
                    let mut timer = Box::pin(tokio::time::sleep(Duration::ZERO));
                    while !cancel.is_cancelled() && Instant::now() < deadline {
                        let now = Instant::now();
                        ctx.one(shard, &mut conn, &mut timer, now).await;
                    }
                }),
            );
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    } else {
        // Each thread paces its share of the requests (every n-th) with its share of the
        // connections, so a request never crosses threads.
        let n = pool.threads();
        for k in 0..n {
            let cap = cfg.concurrency / n + usize::from(k < cfg.concurrency % n);
            let share = pacer.clone().share(k as u64, n as u64);
            let job = dispatch(k, share, cap, ctx.clone(), cancel.clone(), started, tracked.clone());
            pool.spawn_on(k, tracked.wrap(job));
        }
    }
    drop(pool);
    tracker.close();
    // In flight: the natural end waits for every answer (each is bounded by the timeout);
    // a stop gives them a short grace, then ends them (counted as cancelled).
    tokio::select! {
        _ = tracker.wait() => {}
        _ = cancel.cancelled() => {
            let grace = cfg.timeout.min(Duration::from_secs(1));
            if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
                abort.cancel();
                tracker.wait().await;
                for sh in &ctx.shards {
                    let n = sh.in_flight.swap(0, Ordering::Relaxed);
                    sh.stats().window(Instant::now()).counts.cancelled += n;
                }
            }
        }
    }
    done.cancel();
    let _ = reporter.await;
    let elapsed = started.elapsed();
    let last = elapsed.as_secs_f64().ceil() as u64;
    let closed = ctx.close_until(last.max(1), |k| target(k));
    for (sec, w) in closed {
        let span = (elapsed.as_secs_f64() - sec as f64).clamp(0.0, 1.0);
        let r = second_report(sec, &w, &target, ctx.in_flight(), span);
        sink(LoadEvent::Second(r));
        ctx.shard(0).stats().recycle(w);
    }
    let summary = summarize(&cfg, &ctx, elapsed.as_secs_f64(), cancel.is_cancelled());
    sink(LoadEvent::Finished(Box::new(summary.clone())));
    summary
}

/// Requests the schedule asks for in second k (open loop), for the per-second target.
fn target_fn(cfg: &GeneratorConfig, pacer: &Pacer) -> Arc<dyn Fn(u64) -> Option<f64> + Send + Sync> {
    if cfg.closed_loop {
        return Arc::new(|_| None);
    }
    let s = pacer.schedule().clone();
    let end = pacer.end_s();
    Arc::new(move |k| {
        let a = (k as f64).min(end);
        let b = ((k + 1) as f64).min(end);
        Some(s.integral(b) - s.integral(a))
    })
}

fn second_report(
    sec: u64,
    w: &Aggregate,
    target: &Arc<dyn Fn(u64) -> Option<f64> + Send + Sync>,
    in_flight: u64,
    span_s: f64,
) -> SecondReport {
    SecondReport {
        second: sec,
        span_s,
        target_rps: target(sec).map(|t| if span_s > 0.0 && span_s < 1.0 { t / span_s } else { t }),
        counts: w.counts,
        p50_ms: w.latency.quantile_ms(0.50),
        p95_ms: w.latency.quantile_ms(0.95),
        p99_ms: w.latency.quantile_ms(0.99),
        in_flight,
    }
}

/// Close each second shortly after it ends and report it.
async fn report_seconds(
    ctx: Arc<Ctx>,
    started: Instant,
    done: CancellationToken,
    target: Arc<dyn Fn(u64) -> Option<f64> + Send + Sync>,
    sink: Sink,
) {
    let mut k: u64 = 1;
    loop {
        let at = started + Duration::from_secs(k) + CLOSE_GRACE;
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep_until(at.into()) => {}
        }
        let now_sec = started.elapsed().saturating_sub(CLOSE_GRACE).as_secs();
        let closed = ctx.close_until(now_sec, |s| target(s));
        let in_flight = ctx.in_flight();
        for (sec, w) in closed {
            sink(LoadEvent::Second(second_report(sec, &w, &target, in_flight, 1.0)));
            ctx.shard(0).stats().recycle(w);
        }
        k = now_sec.max(k) + 1;
    }
}

/// The open loop: hand each request to an idle slot at its scheduled time.
async fn dispatch(
    shard: usize,
    mut pacer: Pacer,
    cap: usize,
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    started: Instant,
    tracked: Tracked,
) {
    let timeout = ctx.timeout;
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<usize>();
    let mut slots: Vec<mpsc::Sender<Instant>> = Vec::new();
    let mut idle: Vec<usize> = Vec::new();
    // The end of the last wait for a free connection: a request that fell due before it was
    // held back by the cap (late), even if a connection is free when its turn comes.
    let mut busy_until: Option<Instant> = None;
    while let Some(due_s) = pacer.next_due() {
        let due = started + Duration::from_secs_f64(due_s);
        if due > Instant::now() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
        } else if cancel.is_cancelled() {
            break;
        }
        while let Ok(i) = idle_rx.try_recv() {
            idle.push(i);
        }
        let slot = if let Some(i) = idle.pop() {
            if busy_until.is_some_and(|b| due < b) {
                ctx.shard(shard).stats().window(Instant::now()).counts.late += 1;
            }
            i
        } else if slots.len() < cap {
            let (tx, rx) = mpsc::channel::<Instant>(1);
            let i = slots.len();
            slots.push(tx);
            tracked.spawn_here(slot_worker(shard, i, rx, idle_tx.clone(), ctx.clone()));
            i
        } else {
            // Every connection is busy: wait for one, at most until the request is a timeout
            // behind schedule; then it (and everything due before now − timeout) is dropped.
            let waited = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                r = tokio::time::timeout_at((due + timeout).into(), idle_rx.recv()) => r,
            };
            match waited {
                Ok(Some(i)) => {
                    let now = Instant::now();
                    busy_until = Some(now);
                    ctx.shard(shard).stats().window(now).counts.late += 1;
                    i
                }
                Ok(None) => break,
                Err(_) => {
                    let now = Instant::now();
                    busy_until = Some(now);
                    let behind = now.saturating_duration_since(started).saturating_sub(timeout);
                    let n = 1 + pacer.skip_until(behind.as_secs_f64());
                    ctx.shard(shard).stats().window(now).counts.dropped += n;
                    continue;
                }
            }
        };
        if let Some(tx) = slots.get(slot)
            && tx.try_send(due).is_err()
        {
            // The slot ended (cannot happen while the dispatcher holds its sender); count it.
            ctx.shard(shard).stats().window(Instant::now()).counts.dropped += 1;
        }
    }
}

/// A connection slot: one keep-alive connection, one request at a time.
async fn slot_worker(
    shard: usize,
    id: usize,
    mut rx: mpsc::Receiver<Instant>,
    idle: mpsc::UnboundedSender<usize>,
    ctx: Arc<Ctx>,
) {
    let mut conn = Conn::default();
    let mut timer = Box::pin(tokio::time::sleep(Duration::ZERO));
    while let Some(due) = rx.recv().await {
        ctx.one(shard, &mut conn, &mut timer, due).await;
        if idle.send(id).is_err() {
            break;
        }
    }
}

fn summarize(cfg: &GeneratorConfig, ctx: &Ctx, elapsed_s: f64, stopped: bool) -> Summary {
    let total = ctx.total();
    let t = &total;
    let planned = (!cfg.closed_loop).then(|| {
        let end = cfg.length_s().min(elapsed_s);
        (cfg.schedule.integral(end) + 1e-9).floor() as u64
    });
    let errors = match ctx.errors.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    Summary {
        url: cfg.url.clone(),
        client: ctx.client.kind(),
        closed_loop: cfg.closed_loop,
        concurrency: cfg.concurrency,
        planned,
        elapsed_s,
        stopped_early: stopped,
        counts: t.counts,
        achieved_rps: t.counts.responses as f64 / elapsed_s.max(1e-9),
        sent_rps: t.counts.sent as f64 / elapsed_s.max(1e-9),
        latency: t.latency.summary(),
        service: t.service.summary(),
        connections_opened: ctx.opened.load(Ordering::Relaxed),
        errors_by_kind: errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A local server answering after `delay` (every request), on 127.0.0.1:0.
    async fn server(delay: Duration) -> (String, CancellationToken) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().fallback(move || async move {
            tokio::time::sleep(delay).await;
            "ok"
        });
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(c.cancelled_owned()).await;
        });
        (format!("http://{addr}/"), cancel)
    }

    fn cfg(url: String, schedule: Schedule) -> GeneratorConfig {
        GeneratorConfig {
            schedule,
            limit_s: f64::INFINITY,
            closed_loop: false,
            url,
            concurrency: 64,
            timeout: Duration::from_secs(5),
            method: "GET".into(),
            headers: vec![],
            body: None,
            client: ClientKind::Raw,
        }
    }

    async fn run_to_end(c: GeneratorConfig) -> (Summary, Vec<SecondReport>) {
        let seconds = Arc::new(Mutex::new(Vec::new()));
        let s2 = seconds.clone();
        let finished = Arc::new(AtomicBool::new(false));
        let f2 = finished.clone();
        let run = LoadRun::start(c, move |e| match e {
            LoadEvent::Second(r) => s2.lock().expect("lock").push(r),
            LoadEvent::Finished(_) => f2.store(true, Ordering::SeqCst),
        })
        .await
        .expect("starts");
        let summary = run.finish().await.expect("summary");
        assert!(finished.load(Ordering::SeqCst), "the Finished event was sent");
        let seconds = seconds.lock().expect("lock").clone();
        (summary, seconds)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_the_integral_and_reports_each_second() {
        let (url, stop) = server(Duration::ZERO).await;
        let s = Schedule::Ramp { start_rps: 50.0, end_rps: 250.0, ramp_s: 2.0, hold_s: 1.0 };
        let (sum, secs) = run_to_end(cfg(url, s)).await;
        assert_eq!(sum.planned, Some(550));
        assert_eq!(sum.counts.sent, 550);
        assert_eq!(sum.counts.responses, 550);
        assert_eq!(sum.counts.status[1], 550);
        assert_eq!(secs.iter().map(|r| r.counts.sent).sum::<u64>(), 550, "seconds add up to the total");
        assert_eq!(secs[0].target_rps, Some(100.0));
        assert!(sum.latency.p99_ms.is_some() && sum.service.p50_ms.is_some());
        assert!(sum.connections_opened >= 1 && sum.connections_opened <= 64, "keep-alive: {}", sum.connections_opened);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_makes_requests_late_then_drops_them() {
        // One connection, answers after 300 ms, 20 requests/s: most requests wait for the
        // connection (late); with a 1 s timeout the backlog beyond a second is dropped.
        let (url, stop) = server(Duration::from_millis(300)).await;
        let mut c = cfg(url, Schedule::Constant { rps: 20.0, duration_s: 3.0 });
        c.concurrency = 1;
        c.timeout = Duration::from_secs(1);
        let (sum, _) = run_to_end(c).await;
        let k = sum.counts;
        assert_eq!(k.sent + k.dropped, 60, "every scheduled request is sent or dropped: {k:?}");
        assert!(k.late >= 5, "{k:?}");
        assert!(k.dropped >= 20, "{k:?}");
        assert!(k.sent <= 15, "one connection serves about 3 per second: {k:?}");
        // Latency from the scheduled time includes the wait for the connection.
        let lat = sum.latency.p50_ms.expect("p50");
        let svc = sum.service.p50_ms.expect("p50");
        assert!(lat > svc + 100.0, "latency {lat} vs service {svc}");
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeouts_errors_and_stop() {
        let (url, stop) = server(Duration::from_secs(3)).await;
        let mut c = cfg(url, Schedule::Constant { rps: 10.0, duration_s: 1.0 });
        c.timeout = Duration::from_millis(200);
        let (sum, _) = run_to_end(c).await;
        assert_eq!((sum.counts.timeouts, sum.counts.responses), (10, 0));
        stop.cancel();

        // Nothing listens: connection refused, counted per kind.
        let dead = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let url = format!("http://{}/", dead.local_addr().expect("addr"));
        drop(dead);
        let (sum, _) = run_to_end(cfg(url, Schedule::Constant { rps: 20.0, duration_s: 0.5 })).await;
        assert_eq!(sum.counts.errors, 10);
        assert_eq!(sum.errors_by_kind.get("connect: connection refused"), Some(&10), "{:?}", sum.errors_by_kind);

        // An endless run stops on request.
        let (url, stop) = server(Duration::ZERO).await;
        let run = LoadRun::start(cfg(url, Schedule::Constant { rps: 100.0, duration_s: f64::INFINITY }), |_| {})
            .await
            .expect("starts");
        assert_eq!(run.progress(), None);
        tokio::time::sleep(Duration::from_millis(500)).await;
        run.stop();
        let sum = run.finish().await.expect("summary");
        assert!(sum.stopped_early);
        assert!(sum.counts.sent >= 30 && sum.counts.sent <= 70, "{:?}", sum.counts);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_gives_requests_in_flight_a_short_grace() {
        let (url, stop) = server(Duration::from_secs(3)).await;
        let run = LoadRun::start(cfg(url, Schedule::Constant { rps: 10.0, duration_s: f64::INFINITY }), |_| {})
            .await
            .expect("starts");
        tokio::time::sleep(Duration::from_millis(550)).await;
        let t0 = Instant::now();
        run.stop();
        let sum = run.finish().await.expect("summary");
        assert!(t0.elapsed() < Duration::from_millis(2500), "did not wait for the 3 s answers");
        assert!(sum.stopped_early);
        assert_eq!(sum.counts.cancelled, sum.counts.sent, "{:?}", sum.counts);
        assert!(sum.counts.sent >= 3, "{:?}", sum.counts);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reqwest_client_sends_method_headers_and_body() {
        // A server that echoes what it got into the status: 201 for POST with the header and body.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let url = format!("http://{}/p?q=1", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(
            |m: axum::http::Method, uri: axum::http::Uri, h: axum::http::HeaderMap, body: String| async move {
                let ok = m == axum::http::Method::POST
                    && uri.path() == "/p"
                    && uri.query() == Some("q=1")
                    && h.get("x-test").is_some_and(|v| v == "yes")
                    && body == "{\"a\":1}";
                if ok { axum::http::StatusCode::CREATED } else { axum::http::StatusCode::BAD_REQUEST }
            },
        );
        let stop = CancellationToken::new();
        let c = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(c.cancelled_owned()).await;
        });
        for client in [ClientKind::Raw, ClientKind::Hyper, ClientKind::Reqwest] {
            let mut c = cfg(url.clone(), Schedule::Constant { rps: 20.0, duration_s: 0.5 });
            c.method = "post".into();
            c.headers = vec![("X-Test".into(), "yes".into())];
            c.body = Some("{\"a\":1}".into());
            c.client = client;
            let (sum, _) = run_to_end(c).await;
            assert_eq!(sum.client, client);
            assert_eq!(
                (sum.counts.sent, sum.counts.status[1], sum.counts.failed()),
                (10, 10, 0),
                "{client:?}: {:?}",
                sum.counts
            );
        }
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_the_server_closed_while_idle_are_replaced() {
        // A server that answers one request per connection with keep-alive, then closes the
        // connection 100 ms later without saying so (as servers do with idle connections).
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                });
            }
        });
        for client in [ClientKind::Raw, ClientKind::Hyper] {
            let mut c = cfg(url.clone(), Schedule::Constant { rps: 4.0, duration_s: 2.0 });
            c.timeout = Duration::from_secs(2);
            c.client = client;
            let (sum, _) = run_to_end(c).await;
            assert_eq!(
                (sum.counts.sent, sum.counts.responses),
                (8, 8),
                "{client:?} {:?} {:?}",
                sum.counts,
                sum.errors_by_kind
            );
            assert_eq!(sum.counts.failed(), 0, "{client:?} {:?}", sum.errors_by_kind);
        }
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_raw_client_reads_every_framing_split_across_writes() {
        // Answers in turn: a 100 Continue then a sized answer, a chunked answer with trailers,
        // an answer until close, each written in small pieces with pauses; then garbage.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let url = format!("http://{}/p?q=1", listener.local_addr().expect("addr"));
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n0123456789",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n",
            b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nuntil the end",
        ];
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen_srv = seen.clone();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut k = 0usize;
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen_srv.clone();
                let mut buf = vec![0u8; 4096];
                loop {
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    if got.is_empty() {
                        break;
                    }
                    seen.lock().expect("lock").push(String::from_utf8_lossy(&got).into_owned());
                    if k >= answers.len() {
                        let _ = sock.write_all(b"garbage\r\n\r\n").await;
                        k += 1;
                        break;
                    }
                    for piece in answers[k].chunks(7) {
                        let _ = sock.write_all(piece).await;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    k += 1;
                    if k == 3 {
                        break; // closes: the third answer ends with the connection
                    }
                }
            }
        });
        let mut c = cfg(url, Schedule::Constant { rps: 4.0, duration_s: 1.0 });
        c.concurrency = 1;
        c.timeout = Duration::from_secs(2);
        let (sum, _) = run_to_end(c).await;
        assert_eq!(sum.client, ClientKind::Raw);
        assert_eq!(sum.counts.sent, 4, "{:?}", sum.counts);
        assert_eq!((sum.counts.status[1], sum.counts.status[4]), (2, 1), "{:?} {:?}", sum.counts, sum.errors_by_kind);
        assert_eq!(sum.counts.errors, 1, "{:?}", sum.errors_by_kind);
        assert!(sum.errors_by_kind.keys().any(|k| k.starts_with("malformed answer")), "{:?}", sum.errors_by_kind);
        assert_eq!(sum.connections_opened, 2, "one connection until the close, then a new one");
        let seen = seen.lock().expect("lock");
        assert!(seen[0].starts_with("GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:"), "{}", seen[0]);
        server.abort();
    }

    #[tokio::test]
    async fn bad_requests_are_refused_before_starting() {
        assert!(
            LoadRun::start(cfg("nope".into(), Schedule::Constant { rps: 1.0, duration_s: 1.0 }), |_| {}).await.is_err()
        );
        let mut c = cfg("http://127.0.0.1:9/".into(), Schedule::Constant { rps: -1.0, duration_s: 1.0 });
        assert!(LoadRun::start(c.clone(), |_| {}).await.is_err());
        c.schedule = Schedule::Constant { rps: 1.0, duration_s: 1.0 };
        c.concurrency = 0;
        assert!(LoadRun::start(c, |_| {}).await.is_err());
    }
}
