//! `<csv stem>_summary.json`: the run's totals and the settings in force. On the simulator the
//! totals are the model's own (every request counted, latency percentiles over all served
//! requests); elsewhere they are added up from the recorded ticks and what the ticks do not
//! measure (per-request latency) is `null`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Row;
use crate::config::Config;
use crate::engine::cluster::sim::RunTotals;
use crate::engine::cluster::sim::observe::{Counts, LatencySummary};

/// The run's figures added up tick by tick (for backends without the model's totals).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    arrived: f64,
    served: f64,
    rejected: f64,
    timed_out: f64,
    failed: f64,
    cpu_core_seconds: f64,
    replica_seconds: f64,
    scale_events: u64,
    last: Option<(f64, Option<i32>, Option<f64>)>,
    first_t: Option<f64>,
}

impl Tally {
    /// Add a recorded tick: its traffic covers the time since the previous tick; replicas and
    /// CPU hold from the previous tick until this one.
    pub fn add(&mut self, row: &Row) {
        let dt = self.last.map_or(0.0, |(t, _, _)| (row.t - t).max(0.0));
        self.first_t.get_or_insert(row.t);
        if let Some(tr) = row.traffic {
            match tr.counts {
                Some(c) => {
                    self.arrived += c.arrived as f64;
                    self.served += c.served as f64;
                    self.rejected += c.rejected as f64;
                    self.timed_out += c.timed_out as f64;
                    self.failed += c.failed as f64;
                }
                None => {
                    let n = |x: f64| if x.is_finite() { x * dt } else { 0.0 };
                    self.arrived += n(tr.rps);
                    self.served += n(tr.served_rps);
                    self.rejected += n(tr.errors_per_s);
                }
            }
        }
        if let Some((_, spec, cores)) = self.last {
            self.replica_seconds += f64::from(spec.unwrap_or(0)) * dt;
            self.cpu_core_seconds += cores.unwrap_or(0.0) * dt;
            if spec.is_some() && row.current_replicas.is_some() && spec != row.current_replicas {
                self.scale_events += 1;
            }
        }
        let cores = match (row.cpu_millicores, row.pod_count) {
            (Some(m), Some(n)) => Some(m * f64::from(n) / 1000.0),
            _ => None,
        };
        self.last = Some((row.t, row.current_replicas, cores));
    }

    fn seconds(&self) -> f64 {
        match (self.first_t, self.last) {
            (Some(a), Some((b, _, _))) => b - a,
            _ => 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryFile {
    /// `simulator` (the model's exact totals) or `recorded ticks` (added up from the rows).
    pub source: &'static str,
    pub scenario: String,
    pub mode_at_start: String,
    pub seconds: f64,
    pub requests: Counts,
    /// `null` where the backend does not measure each request.
    pub latency_s: Option<LatencySummary>,
    pub cpu_core_seconds: f64,
    pub replica_seconds: f64,
    pub scale_events: u64,
    /// Time-average number of requests in the system (simulator only).
    pub mean_in_system: Option<f64>,
    pub settings: serde_json::Value,
}

/// The settings that shape an experiment's figures: the simulator, the HPA, the recommenders,
/// the control loop.
pub fn settings(cfg: &Config) -> serde_json::Value {
    let e = &cfg.experiment;
    serde_json::json!({
        "backend": cfg.cluster.backend.to_string(),
        "experiment": {
            "mode": e.mode.to_string(),
            "interval": e.interval,
            "driver": e.driver,
            "fallback": e.fallback,
        },
        "sim": cfg.sim,
        "scaling": cfg.scaling,
        "recommenders": cfg.recommenders,
    })
}

impl SummaryFile {
    pub fn from_model(t: &RunTotals, cfg: &Config, scenario: &str) -> Self {
        Self {
            source: "simulator",
            scenario: scenario.to_string(),
            mode_at_start: cfg.experiment.mode.to_string(),
            seconds: t.seconds,
            requests: t.requests,
            latency_s: Some(t.latency_s),
            cpu_core_seconds: t.cpu_core_seconds,
            replica_seconds: t.replica_seconds,
            scale_events: t.scale_events,
            mean_in_system: Some(t.mean_in_system),
            settings: settings(cfg),
        }
    }

    pub fn from_tally(t: &Tally, cfg: &Config, scenario: &str) -> Self {
        let r = |x: f64| x.round().max(0.0) as u64;
        Self {
            source: "recorded ticks",
            scenario: scenario.to_string(),
            mode_at_start: cfg.experiment.mode.to_string(),
            seconds: t.seconds(),
            requests: Counts {
                arrived: r(t.arrived),
                served: r(t.served),
                rejected: r(t.rejected),
                timed_out: r(t.timed_out),
                failed: r(t.failed),
            },
            latency_s: None,
            cpu_core_seconds: t.cpu_core_seconds,
            replica_seconds: t.replica_seconds,
            scale_events: t.scale_events,
            mean_in_system: None,
            settings: settings(cfg),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

/// `<dir>/<stem>_summary.json` beside `<dir>/<stem>.csv`.
pub fn summary_path(csv: &Path) -> PathBuf {
    PathBuf::from(format!("{}_summary.json", csv.with_extension("").display()))
}

/// Read the settings of a summary file (for `report`), if there is one beside the record.
pub fn read_settings(csv: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(summary_path(csv)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("settings").cloned()
}

/// One line of the settings that shape the figures (from [`settings`]' JSON): the simulator's
/// traffic model, the pods, the HPA's metrics and the control interval.
pub fn describe_settings(v: &serde_json::Value) -> String {
    let s = |p: &str| v.pointer(p).map(plain).unwrap_or_default();
    let metrics: Vec<String> = v
        .pointer("/scaling/metrics")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .map(|m| match m.as_str() {
                    Some("cpu") => format!("cpu {} %", s("/scaling/cpu_target")),
                    Some("memory") => format!("memory {} %", s("/scaling/memory_target")),
                    Some(o) => o.to_string(),
                    None => format!("{} {} per pod", s_of(m, "pods"), s_of(m, "target")),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut parts = Vec::new();
    if s("/backend") == "sim" {
        let service = match s("/sim/service/distribution").as_str() {
            "deterministic" => format!("deterministic {} ms", s("/sim/service/mean_ms")),
            "exponential" => format!("exponential mean {} ms", s("/sim/service/mean_ms")),
            "empirical" => "empirical".to_string(),
            d => format!("{d} mean {} ms cv {}", s("/sim/service/mean_ms"), s("/sim/service/cv")),
        };
        let timeout = match s("/sim/timeout_s").as_str() {
            "0" => "no timeout".to_string(),
            t => format!("timeout {t} s"),
        };
        parts.push(format!(
            "simulator: {} arrivals, {} routing, {} workers per pod, queue {}, {timeout}; work {service} of a core; pods {}m CPU limit",
            s("/sim/arrivals"),
            s("/sim/routing"),
            s("/sim/concurrency"),
            s("/sim/queue_capacity"),
            s("/sim/cpu_limit_m"),
        ));
    }
    parts.push(format!(
        "HPA {}..{} on {}",
        s("/scaling/min_replicas"),
        s("/scaling/max_replicas"),
        if metrics.is_empty() { "-".into() } else { metrics.join(", ") }
    ));
    parts.push(format!("interval {} s", s("/experiment/interval")));
    parts.join("; ")
}

fn s_of(v: &serde_json::Value, k: &str) -> String {
    v.get(k).map(plain).unwrap_or_default()
}

/// A JSON value as a person writes it: strings bare, whole numbers without `.0`.
fn plain(x: &serde_json::Value) -> String {
    match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
