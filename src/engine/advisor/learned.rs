//! `learned`: a random forest trained on recorded runs (`scaletui train`) that proposes a
//! replica count from what a tick sees and the ticks before it. Labels follow the ML
//! autoscaling seed's idea: the replica count that keeps the *future* utilization (the
//! largest of the next `lookahead` ticks) inside the scale-up thresholds (CPU 70 %, memory 75 %
//! of the requests), and one more than now when the future p95 latency is over its threshold
//! (500 ms). Features are that seed's (utilization, their 10-sample means and slopes, request
//! rate, per-replica rate, latency, errors, queue) plus the HPA's proposal.

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::forest::{Forest, ForestParams};
use super::{RecOutput, RecommendInput, Recommender};
use crate::engine::record::Row;
use crate::engine::types::MetricsSample;

/// What one tick saw, as the CSV records it (the inputs of features and labels).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Obs {
    pub elapsed_s: f64,
    pub current_replicas: Option<f64>,
    pub ready_replicas: Option<f64>,
    pub cpu_m: Option<f64>,
    pub memory_mib: Option<f64>,
    pub cpu_request_m: Option<f64>,
    pub memory_request_mib: Option<f64>,
    pub pod_count: Option<f64>,
    pub rps: Option<f64>,
    pub errors_per_s: Option<f64>,
    pub p95_ms: Option<f64>,
    pub in_flight: Option<f64>,
    pub hpa_raw_desired: Option<f64>,
}

impl Obs {
    pub fn from_row(r: &Row) -> Self {
        Self::observe(r.elapsed_s, r.current_replicas, r.ready_replicas, &r.sample(), r.hpa_sim.raw_desired)
    }

    pub fn from_input(i: &RecommendInput<'_>) -> Self {
        let d = i.deployment;
        Self::observe(
            i.elapsed_s,
            d.map(|d| d.spec_replicas),
            d.map(|d| d.ready_replicas),
            i.sample,
            i.hpa_sim.raw_desired,
        )
    }

    fn observe(
        elapsed_s: f64,
        current: Option<i32>,
        ready: Option<i32>,
        s: &MetricsSample,
        hpa_raw_desired: Option<i32>,
    ) -> Self {
        Self {
            elapsed_s,
            current_replicas: current.map(f64::from),
            ready_replicas: ready.map(f64::from),
            cpu_m: s.cpu_millicores,
            memory_mib: s.memory_mebibytes,
            cpu_request_m: s.cpu_request_millicores,
            memory_request_mib: s.memory_request_mebibytes,
            pod_count: s.pod_count.map(f64::from),
            rps: s.traffic.map(|t| t.rps),
            errors_per_s: s.traffic.map(|t| t.errors_per_s),
            p95_ms: s.traffic.and_then(|t| t.p95_ms),
            in_flight: s.traffic.map(|t| t.in_flight),
            hpa_raw_desired: hpa_raw_desired.map(f64::from),
        }
    }

    fn cpu_util(&self) -> Option<f64> {
        match (self.cpu_m, self.cpu_request_m) {
            (Some(u), Some(r)) if r > 0.0 => Some(100.0 * u / r),
            _ => None,
        }
    }

    fn memory_util(&self) -> Option<f64> {
        match (self.memory_mib, self.memory_request_mib) {
            (Some(u), Some(r)) if r > 0.0 => Some(100.0 * u / r),
            _ => None,
        }
    }

    /// Total usage across running pods.
    fn total(per_pod: Option<f64>, pods: Option<f64>) -> Option<f64> {
        Some(per_pod? * pods?)
    }
}

/// Rows of recent history used for means and slopes (the seed's buffer of 10).
pub const WINDOW: usize = 10;

pub const FEATURES: [&str; 17] = [
    "current_replicas",
    "ready_replicas",
    "cpu_util_pct",
    "cpu_util_mean",
    "cpu_util_slope",
    "memory_util_pct",
    "memory_util_mean",
    "memory_util_slope",
    "rps",
    "rps_mean",
    "rps_slope",
    "rps_per_replica",
    "latency_p95_ms",
    "errors_per_s",
    "in_flight",
    "hpa_raw_desired",
    "cpu_total_m",
];

fn mean_slope(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (m, 0.0);
    }
    let mt = (n - 1.0) / 2.0;
    let sxx: f64 = (0..values.len()).map(|i| (i as f64 - mt).powi(2)).sum();
    let sxy: f64 = values.iter().enumerate().map(|(i, v)| (i as f64 - mt) * (v - m)).sum();
    (m, sxy / sxx)
}

/// The features of the last observation in `window` (oldest first, at most [`WINDOW`] used).
/// Unknown values are 0, as the seed does.
pub fn features(window: &[Obs]) -> Vec<f64> {
    let w = &window[window.len().saturating_sub(WINDOW)..];
    let Some(o) = w.last() else { return vec![0.0; FEATURES.len()] };
    let series = |f: fn(&Obs) -> Option<f64>| -> Vec<f64> { w.iter().filter_map(f).collect() };
    let (cpu_mean, cpu_slope) = mean_slope(&series(Obs::cpu_util));
    let (mem_mean, mem_slope) = mean_slope(&series(Obs::memory_util));
    let (rps_mean, rps_slope) = mean_slope(&series(|o| o.rps));
    let z = |v: Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(0.0);
    vec![
        z(o.current_replicas),
        z(o.ready_replicas),
        z(o.cpu_util()),
        cpu_mean,
        cpu_slope,
        z(o.memory_util()),
        mem_mean,
        mem_slope,
        z(o.rps),
        rps_mean,
        rps_slope,
        z(o.rps) / (z(o.current_replicas) + 1.0),
        z(o.p95_ms),
        z(o.errors_per_s),
        z(o.in_flight),
        z(o.hpa_raw_desired),
        z(Obs::total(o.cpu_m, o.pod_count)),
    ]
}

/// Labelling thresholds and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelParams {
    /// Ticks ahead that the label looks at.
    pub lookahead: usize,
    pub cpu_up_pct: f64,
    pub memory_up_pct: f64,
    pub latency_up_ms: f64,
    pub min_replicas: i32,
    pub max_replicas: i32,
}

impl Default for LabelParams {
    fn default() -> Self {
        Self {
            lookahead: 10,
            cpu_up_pct: 70.0,
            memory_up_pct: 75.0,
            latency_up_ms: 500.0,
            min_replicas: 1,
            max_replicas: 10,
        }
    }
}

/// The label of `rows[i]`: the smallest count whose projected utilization over the next
/// `lookahead` rows stays at or under the thresholds (total usage ÷ (count × request)); one more
/// than now if the future p95 latency exceeds its threshold. `None` without enough future rows
/// or without a replica count.
pub fn label(rows: &[Obs], i: usize, p: &LabelParams) -> Option<f64> {
    let current = rows.get(i)?.current_replicas?;
    let future = rows.get(i + 1..=i + p.lookahead)?;
    let mut need = f64::from(p.min_replicas);
    for o in future {
        if let (Some(total), Some(req)) = (Obs::total(o.cpu_m, o.pod_count), o.cpu_request_m)
            && req > 0.0
        {
            need = need.max((total / (req * p.cpu_up_pct / 100.0)).ceil());
        }
        if let (Some(total), Some(req)) = (Obs::total(o.memory_mib, o.pod_count), o.memory_request_mib)
            && req > 0.0
        {
            need = need.max((total / (req * p.memory_up_pct / 100.0)).ceil());
        }
    }
    let slow = future.iter().filter_map(|o| o.p95_ms).any(|l| l > p.latency_up_ms);
    if slow && need <= current {
        need = current + 1.0;
    }
    Some(need.clamp(f64::from(p.min_replicas), f64::from(p.max_replicas.max(p.min_replicas))))
}

/// The model file `scaletui train` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedModel {
    /// Always `scaletui-random-forest`.
    pub kind: String,
    pub version: u32,
    pub features: Vec<String>,
    pub labels: LabelParams,
    pub params: ForestParams,
    /// Held-out figures at training time.
    pub holdout_rmse: f64,
    pub holdout_within_one: f64,
    pub training_rows: usize,
    pub forest: Forest,
}

pub const MODEL_KIND: &str = "scaletui-random-forest";

impl LearnedModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let m: LearnedModel =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a scaletui model: {e}", path.display()))?;
        if m.kind != MODEL_KIND || m.version != 1 {
            return Err(format!("{}: not a scaletui model ({} v{})", path.display(), m.kind, m.version));
        }
        if m.features != FEATURES {
            return Err(format!(
                "{}: the model was trained on other features ({}); train it again with this scaletui",
                path.display(),
                m.features.join(", ")
            ));
        }
        Ok(m)
    }

    pub fn predict(&self, window: &[Obs]) -> f64 {
        self.forest.predict(&features(window))
    }
}

pub struct LearnedRecommender {
    model: LearnedModel,
}

impl LearnedRecommender {
    pub fn new(model: LearnedModel) -> Self {
        Self { model }
    }
}

#[async_trait]
impl Recommender for LearnedRecommender {
    fn name(&self) -> &str {
        "learned"
    }

    fn columns(&self) -> Vec<String> {
        vec!["raw".into()]
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let now = Obs::from_input(input);
        if now.current_replicas.is_none() {
            return RecOutput {
                replicas: None,
                status: "deployment state unknown".into(),
                values: vec![String::new()],
                ..RecOutput::default()
            };
        }
        let start = input.history.len().saturating_sub(WINDOW - 1);
        let mut window: Vec<Obs> = input.history[start..].iter().map(Obs::from_row).collect();
        window.push(now);
        let raw = self.model.predict(&window);
        if !raw.is_finite() {
            return RecOutput {
                replicas: None,
                status: "failed: the model gave no number".into(),
                values: vec![String::new()],
                ..RecOutput::default()
            };
        }
        let n = (raw.round() as i32).clamp(input.min_replicas, input.max_replicas.max(input.min_replicas));
        RecOutput { replicas: Some(n), status: "ok".into(), values: vec![format!("{raw:.3}")], ..RecOutput::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(replicas: f64, cpu_m: f64, p95: f64) -> Obs {
        Obs {
            current_replicas: Some(replicas),
            pod_count: Some(replicas),
            cpu_m: Some(cpu_m),
            cpu_request_m: Some(100.0),
            memory_mib: Some(10.0),
            memory_request_mib: Some(64.0),
            p95_ms: Some(p95),
            ..Obs::default()
        }
    }

    #[test]
    fn labels_keep_future_utilization_under_the_thresholds() {
        let p = LabelParams { lookahead: 2, ..LabelParams::default() };
        // Now 2 pods at 50 m; later 2 pods at 140 m (280 m in total): 280 / 70 → 4 replicas.
        let rows = [obs(2.0, 50.0, 10.0), obs(2.0, 60.0, 10.0), obs(2.0, 140.0, 10.0)];
        assert_eq!(label(&rows, 0, &p), Some(4.0));
        assert_eq!(label(&rows, 1, &p), None, "not enough future rows");
        // Memory counts too: 3 pods × 40 MiB = 120 MiB over 48 MiB per replica → 3.
        let mut heavy = rows;
        heavy[2].memory_mib = Some(60.0);
        assert_eq!(label(&heavy, 0, &p), Some(4.0), "CPU still needs 4");
        heavy[2].cpu_m = Some(10.0);
        assert_eq!(label(&heavy, 0, &p), Some(3.0), "120 / 48 → 3");
        // Low usage: the minimum; slow answers: one more than now.
        let calm = [obs(3.0, 10.0, 10.0), obs(3.0, 10.0, 10.0), obs(3.0, 10.0, 10.0)];
        assert_eq!(label(&calm, 0, &p), Some(1.0));
        let slow = [obs(3.0, 10.0, 10.0), obs(3.0, 10.0, 900.0), obs(3.0, 10.0, 10.0)];
        assert_eq!(label(&slow, 0, &p), Some(4.0));
    }

    #[test]
    fn features_use_means_and_slopes() {
        let w: Vec<Obs> = (0..4).map(|i| obs(2.0, 20.0 * f64::from(i + 1), 5.0)).collect();
        let f = features(&w);
        assert_eq!(f.len(), FEATURES.len());
        assert_eq!(f[0], 2.0);
        assert_eq!(f[2], 80.0, "cpu util of the last row");
        assert_eq!(f[3], 50.0, "mean of 20, 40, 60, 80");
        assert!((f[4] - 20.0).abs() < 1e-12, "slope per sample");
        assert_eq!(f[16], 160.0, "2 pods × 80 m");
        assert_eq!(features(&[]), vec![0.0; FEATURES.len()]);
    }
}
