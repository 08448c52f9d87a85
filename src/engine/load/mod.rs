//! Load: rate schedules (pure) and the open-loop HTTP load generator.
pub mod client;
pub mod generator;
pub mod pacer;
pub mod pool;
pub mod raw;
pub mod schedule;
pub mod stats;
pub mod task;
pub mod wave;

use std::path::Path;

use serde::Serialize;

use crate::config::LoadConfig;

pub use generator::{GeneratorConfig, LoadEvent, LoadRun, Summary};
pub use schedule::{Level, Schedule};

/// What the load generator is asked to do (the `l` form, `scaletui load`, a scenario on a real
/// cluster).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadParams {
    pub schedule: Schedule,
    /// Target URL; `None`: the cluster's load target (the simulator's endpoint, a port-forward).
    pub url: Option<String>,
    /// Most requests in flight at once.
    pub concurrency: usize,
    pub timeout_s: f64,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl LoadParams {
    /// One line for the tasks panel and the events file.
    pub fn describe(&self) -> String {
        let s = match &self.schedule {
            Schedule::Constant { rps, duration_s } => format!("constant {rps:.0} rps for {duration_s:.0}s"),
            Schedule::Ramp { start_rps, end_rps, ramp_s, hold_s } => {
                format!("ramp {start_rps:.0}->{end_rps:.0} rps over {ramp_s:.0}s, hold {hold_s:.0}s")
            }
            Schedule::Step { levels } => format!("{} steps over {:.0}s", levels.len(), self.schedule.duration()),
            Schedule::Sine { min_rps, max_rps, period_s, duration_s } => {
                format!("sine {min_rps:.0}..{max_rps:.0} rps, period {period_s:.0}s, {duration_s:.0}s")
            }
            Schedule::Trace { values, step_s } => format!("trace of {} values every {step_s}s", values.len()),
            Schedule::Timestamps { times } => format!("{} requests at recorded times", times.len()),
        };
        match &self.url {
            Some(u) => format!("{s} -> {u}"),
            None => s,
        }
    }
}

impl LoadParams {
    /// The `[load]` section as parameters (pattern and seed semantics as in [`schedule_from_config`]).
    pub fn from_config(l: &LoadConfig) -> Result<Self, String> {
        Self::with_schedule(l, schedule_from_config(l, None)?)
    }
}

impl LoadParams {
    /// `schedule` with the rest (target, concurrency, timeout, request) from `[load]`.
    pub fn with_schedule(l: &LoadConfig, schedule: Schedule) -> Result<Self, String> {
        Ok(Self {
            schedule,
            url: (!l.url.trim().is_empty()).then(|| l.url.trim().to_string()),
            concurrency: l.concurrency,
            timeout_s: l.timeout_s,
            method: l.method.clone(),
            headers: parse_headers(&l.headers)?,
            body: (!l.body.is_empty()).then(|| l.body.clone()),
        })
    }
}

/// `Name: value` lines as pairs.
pub fn parse_headers(lines: &[String]) -> Result<Vec<(String, String)>, String> {
    lines
        .iter()
        .map(|h| match h.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("header {h:?} is not `Name: value`")),
        })
        .collect()
}

/// A schedule from the seed tool's parameters. The run lasts `duration + hold` seconds (as the
/// seed's load generator did); `ramp` rises from `ramp_start` to `ramp_end` over `ramp_duration`
/// then holds `ramp_end` for the rest; `step` climbs in `steps` equal steps over `ramp_duration`
/// then holds; `sine` swings between `ramp_start` and `ramp_end` with `period`; `constant` sends
/// `rps`; `trace` replays `trace` (one rate per second), cut at `duration + hold` when
/// `trace_limit` says so. `duration + hold = 0` runs a constant or sine until stopped.
pub fn schedule_from_config(l: &LoadConfig, trace_limit: Option<f64>) -> Result<Schedule, String> {
    let total = l.duration + l.hold;
    let until_stopped = total <= 0.0;
    let needs_length = |p: &str| {
        if until_stopped { Err(format!("pattern {p} needs duration + hold > 0")) } else { Ok(()) }
    };
    let total_or_inf = if until_stopped { f64::INFINITY } else { total };
    let s = match l.pattern.as_str() {
        "constant" => Schedule::Constant { rps: l.rps, duration_s: total_or_inf },
        "ramp" => {
            needs_length("ramp")?;
            let (a, b, r) = (l.ramp_start, l.ramp_end, l.ramp_duration);
            if r >= total {
                // Cut inside the ramp: a shorter ramp to the rate reached at the end.
                let end = if r > 0.0 { a + (b - a) * total / r } else { b };
                Schedule::Ramp { start_rps: a, end_rps: end, ramp_s: total, hold_s: 0.0 }
            } else {
                Schedule::Ramp { start_rps: a, end_rps: b, ramp_s: r, hold_s: total - r }
            }
        }
        "step" => {
            needs_length("step")?;
            let full = Schedule::steps_between(
                l.ramp_start,
                l.ramp_end,
                l.steps,
                l.ramp_duration,
                (total - l.ramp_duration).max(0.0),
            );
            cut(full, total)
        }
        "sine" => Schedule::Sine {
            min_rps: l.ramp_start.min(l.ramp_end),
            max_rps: l.ramp_start.max(l.ramp_end),
            period_s: l.period,
            duration_s: total_or_inf,
        },
        "trace" => {
            if l.trace.trim().is_empty() {
                return Err("pattern trace needs a trace file (--trace FILE)".into());
            }
            let full = Schedule::trace_file(Path::new(l.trace.trim()), 1.0)?;
            match trace_limit {
                Some(limit) if limit > 0.0 => cut(full, limit),
                _ => full,
            }
        }
        "wave" => {
            needs_length("wave")?;
            let w = wave::WaveParams { duration_s: total, ..wave::WaveParams::default() };
            w.validate()?;
            w.steps(l.wave_seed)
        }
        other => return Err(format!("unknown pattern {other:?} (constant, ramp, step, sine, trace, wave)")),
    };
    s.validate()?;
    Ok(s)
}

/// A step or trace schedule cut at `limit` seconds.
fn cut(s: Schedule, limit: f64) -> Schedule {
    match s {
        Schedule::Step { levels } => {
            let mut out = Vec::new();
            let mut at = 0.0;
            for l in levels {
                if at >= limit {
                    break;
                }
                let d = l.duration_s.min(limit - at);
                at += l.duration_s;
                out.push(Level { rps: l.rps, duration_s: d });
            }
            Schedule::Step { levels: out }
        }
        Schedule::Trace { values, step_s } => {
            let n = ((limit / step_s).ceil() as usize).max(1);
            Schedule::Trace { values: values.into_iter().take(n).collect(), step_s }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pattern: &str) -> LoadConfig {
        LoadConfig { pattern: pattern.into(), ..LoadConfig::default() }
    }

    #[test]
    fn seed_semantics_total_is_duration_plus_hold() {
        let l = LoadConfig {
            ramp_start: 100.0,
            ramp_end: 1100.0,
            ramp_duration: 10.0,
            duration: 10.0,
            hold: 0.0,
            ..cfg("ramp")
        };
        let s = schedule_from_config(&l, None).expect("ramp");
        assert_eq!(s.total(), 6_000.0);
        let l = LoadConfig { rps: 2000.0, duration: 10.0, hold: 0.0, ..cfg("constant") };
        assert_eq!(schedule_from_config(&l, None).expect("constant").total(), 20_000.0);
        // The defaults: ramp 10->150 over 120 s, then 150 until 300 s.
        let s = schedule_from_config(&cfg("ramp"), None).expect("default ramp");
        assert_eq!(s.duration(), 300.0);
        assert_eq!(s.total(), 9_600.0 + 150.0 * 180.0);
        // A ramp longer than the run is cut where the run ends.
        let l = LoadConfig {
            ramp_start: 0.0,
            ramp_end: 100.0,
            ramp_duration: 20.0,
            duration: 10.0,
            hold: 0.0,
            ..cfg("ramp")
        };
        let s = schedule_from_config(&l, None).expect("cut ramp");
        assert_eq!((s.duration(), s.total()), (10.0, 250.0));
        let l = LoadConfig { duration: 100.0, hold: 0.0, ..cfg("step") };
        assert_eq!(schedule_from_config(&l, None).expect("step").duration(), 100.0);
        let l = LoadConfig { duration: 0.0, hold: 0.0, ..cfg("constant") };
        assert_eq!(schedule_from_config(&l, None).expect("endless").duration(), f64::INFINITY);
        assert!(schedule_from_config(&LoadConfig { duration: 0.0, hold: 0.0, ..cfg("ramp") }, None).is_err());
        assert!(schedule_from_config(&cfg("trace"), None).is_err());
        assert!(schedule_from_config(&cfg("zigzag"), None).is_err());
    }

    #[test]
    fn headers_parse() {
        let h = parse_headers(&["X-A: 1".into(), "Authorization: Bearer a:b".into()]).expect("ok");
        assert_eq!(h[1], ("Authorization".to_string(), "Bearer a:b".to_string()));
        assert!(parse_headers(&["nocolon".into()]).is_err());
    }
}
