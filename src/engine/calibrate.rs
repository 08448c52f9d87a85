//! `scaletui calibrate`: fit the simulator's service law to a real service from the outside.
//!
//! 1. **Probe** — one connection, closed loop, for `probe_s`: each request goes out when the
//!    previous answer is in, so the service never queues and the latencies are its service times
//!    (plus the network): their mean and coefficient of variation are the law's.
//! 2. **Sweep** — open-loop steps of rising rate with the load generator (from a quarter of what
//!    one worker can do, ×`growth` per step, `step_s` each) until it has fallen behind twice
//!    (answers per second, counted until the last answer is in, below 90 % of the offered rate,
//!    or a median latency four times the probe's: requests queue), errors pass 5 %, or `max_rps`
//!    is reached.
//! 3. **Fit** — the capacity is the most answers per second of a step that fell behind (the
//!    service was busy from the step's start to its last answer); by Little's law at saturation the service has
//!    `capacity × mean service time` workers. The profile gives each worker a full core, so the
//!    simulator reproduces times as measured (CPU is not visible from outside).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::load::client::ClientKind;
use super::load::{GeneratorConfig, LoadRun, Schedule};

#[derive(Debug, Clone)]
pub struct CalibrateParams {
    pub url: String,
    pub probe_s: f64,
    pub step_s: f64,
    pub growth: f64,
    pub max_rps: f64,
    pub concurrency: usize,
    pub timeout_s: f64,
}

impl Default for CalibrateParams {
    fn default() -> Self {
        Self {
            url: String::new(),
            probe_s: 5.0,
            step_s: 4.0,
            growth: 1.5,
            max_rps: 100_000.0,
            concurrency: 256,
            timeout_s: 10.0,
        }
    }
}

/// One step of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    pub offered_rps: f64,
    pub answered_rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
    pub behind: bool,
}

/// What was measured and fitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub url: String,
    pub probe_requests: u64,
    pub mean_ms: f64,
    pub cv: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub capacity_rps: f64,
    pub concurrency: u32,
    /// The sweep never fell behind: capacity and concurrency are lower bounds.
    pub saturated: bool,
    pub steps: Vec<Step>,
}

fn generator(p: &CalibrateParams, schedule: Schedule, closed: bool, secs: f64, conns: usize) -> GeneratorConfig {
    GeneratorConfig {
        schedule,
        limit_s: secs,
        closed_loop: closed,
        url: p.url.clone(),
        concurrency: conns,
        timeout: Duration::from_secs_f64(p.timeout_s),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        client: ClientKind::Hyper,
    }
}

async fn run(cfg: GeneratorConfig) -> Result<super::load::Summary, String> {
    LoadRun::start(cfg, |_| {}).await?.finish().await
}

pub fn validate(p: &CalibrateParams) -> Result<(), String> {
    let checks = [
        ("--probe-s", p.probe_s, 0.5),
        ("--step-s", p.step_s, 0.5),
        ("--max-rps", p.max_rps, 0.0),
        ("--timeout", p.timeout_s, 0.0),
    ];
    for (flag, v, min) in checks {
        if !(v.is_finite() && v > min) {
            return Err(format!("{flag} must be more than {min}, not {v}"));
        }
    }
    if !(p.growth.is_finite() && p.growth > 1.05 && p.growth <= 4.0) {
        return Err(format!("--growth must be in (1.05, 4], not {}", p.growth));
    }
    if p.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    Ok(())
}

/// Measure the service at `p.url`; `progress` gets a line per stage.
pub async fn calibrate(p: &CalibrateParams, progress: impl Fn(String)) -> Result<Fit, String> {
    validate(p)?;
    let probe = run(generator(p, Schedule::Constant { rps: 0.0, duration_s: p.probe_s }, true, p.probe_s, 1)).await?;
    let s = probe.service;
    let ok = probe.counts.status[1];
    if ok < 10 {
        return Err(format!(
            "the probe got {ok} successful answers from {} in {} s (errors: {:?}); is the service up?",
            p.url, p.probe_s, probe.errors_by_kind
        ));
    }
    let (Some(mean_ms), Some(sd), Some(p50_ms), Some(p99_ms)) = (s.mean_ms, s.stdev_ms, s.p50_ms, s.p99_ms) else {
        return Err("the probe measured no latencies".into());
    };
    progress(format!(
        "probe: {ok} requests one at a time: service mean {mean_ms:.3} ms, cv {:.3}, p50 {p50_ms:.3} ms, p99 {p99_ms:.3} ms",
        sd / mean_ms
    ));
    let mut rate = (0.25 * 1000.0 / mean_ms).max(1.0);
    let mut steps = Vec::new();
    let mut behind_steps = 0;
    while rate <= p.max_rps && behind_steps < 2 {
        let sched = Schedule::Constant { rps: rate, duration_s: p.step_s };
        let sum = run(generator(p, sched, false, p.step_s, p.concurrency)).await?;
        // Over the step and the drain of what it queued: a saturated service's throughput.
        let answered = sum.counts.status[1] as f64 / sum.elapsed_s.max(p.step_s);
        let errors = sum.counts.failed() + sum.counts.status[4];
        let sent = sum.counts.sent.max(1);
        let queued = sum.latency.p50_ms.is_some_and(|m| m > 4.0 * p50_ms + 1.0);
        let behind = answered < 0.9 * rate || queued;
        let step = Step {
            offered_rps: rate,
            answered_rps: answered,
            p50_ms: sum.latency.p50_ms,
            p99_ms: sum.latency.p99_ms,
            errors,
            behind,
        };
        progress(format!(
            "step {}: offered {rate:.1}/s, answered {answered:.1}/s, p50 {} ms, p99 {} ms, errors {errors}{}",
            steps.len() + 1,
            step.p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
            step.p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
            if behind { " (behind)" } else { "" }
        ));
        steps.push(step);
        if behind {
            behind_steps += 1;
        }
        if errors as f64 > 0.05 * sent as f64 {
            break;
        }
        rate *= p.growth;
        // Let what queued in the service drain before the next step.
        tokio::time::sleep(Duration::from_secs_f64((p.step_s / 2.0).min(2.0))).await;
    }
    let saturated = steps.iter().any(|s| s.behind);
    let capacity_rps = steps.iter().filter(|s| s.behind || !saturated).map(|s| s.answered_rps).fold(0.0, f64::max);
    let concurrency = (capacity_rps * mean_ms / 1000.0).round().max(1.0) as u32;
    Ok(Fit {
        url: p.url.clone(),
        probe_requests: ok,
        mean_ms,
        cv: sd / mean_ms,
        p50_ms,
        p99_ms,
        capacity_rps,
        concurrency,
        saturated,
        steps,
    })
}

/// The fit as a `[sim]` profile that scenarios include (`include = ["profile.toml"]`).
pub fn profile_toml(f: &Fit, measured_at: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# A simulator profile measured by `scaletui calibrate --url {}` ({measured_at}).", f.url);
    let _ = writeln!(t, "# Include it in a scenario: include = [\"this-file.toml\"]");
    let _ = writeln!(
        t,
        "# Probe: {} requests one at a time: service mean {:.4} ms, cv {:.3}, p50 {:.4} ms, p99 {:.4} ms.",
        f.probe_requests, f.mean_ms, f.cv, f.p50_ms, f.p99_ms
    );
    let _ = writeln!(t, "# Sweep (open loop):");
    for s in &f.steps {
        let _ = writeln!(
            t,
            "#   offered {:>10.1}/s  answered {:>10.1}/s  p50 {:>9} ms  p99 {:>9} ms  errors {}{}",
            s.offered_rps,
            s.answered_rps,
            s.p50_ms.map_or("-".into(), |v| format!("{v:.2}")),
            s.p99_ms.map_or("-".into(), |v| format!("{v:.2}")),
            s.errors,
            if s.behind { "  behind" } else { "" }
        );
    }
    if f.saturated {
        let _ = writeln!(
            t,
            "# Capacity {:.1} requests/s = {} workers x {:.4} ms (Little's law at saturation).",
            f.capacity_rps, f.concurrency, f.mean_ms
        );
    } else {
        let _ = writeln!(
            t,
            "# The sweep never saturated the service: {:.1} requests/s and {} workers are lower bounds.",
            f.capacity_rps, f.concurrency
        );
    }
    let _ = writeln!(t, "# Each worker gets a full core, so the simulator reproduces the times as measured.");
    let _ = writeln!(t, "[sim]");
    let _ = writeln!(t, "concurrency = {}", f.concurrency);
    let _ = writeln!(t, "cpu_limit_m = {}", u64::from(f.concurrency) * 1000);
    let _ = writeln!(t, "base_latency_ms = 0");
    let _ = writeln!(t);
    let _ = writeln!(t, "[sim.service]");
    if f.cv < 0.05 {
        let _ = writeln!(t, "distribution = \"deterministic\"");
    } else {
        let _ = writeln!(t, "distribution = \"lognormal\"");
        let _ = writeln!(t, "cv = {:.4}", f.cv);
    }
    let _ = writeln!(t, "mean_ms = {:.6}", f.mean_ms);
    t
}
