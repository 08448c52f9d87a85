//! `vpa`: the Kubernetes VPA recommender's request recommendations for the deployment's pods —
//! not replicas. Per-pod CPU samples go into a decaying histogram weighted by the pod's CPU
//! request (at least 0.1 core); each pod adds one memory peak per aggregation interval (a larger
//! sample in the same interval replaces the old peak). From them, as upstream
//! (`pkg/recommender/logic`): target = p90, lower bound = p50, upper bound = p95, each plus a 15 %
//! safety margin and at least the pod minimums (25 millicores, 250 MiB); the upper bound is
//! multiplied by `(1 + 1/confidence)` and the lower bound by `(1 + 0.001/confidence)^-2`, where
//! confidence grows with the history's length in days (`min(lifespan, samples / 1440)`). Values
//! are truncated to whole millicores and bytes and capped at 1e14, as upstream's
//! `ResourceAmount`.

pub mod histogram;

use std::collections::BTreeMap;

use async_trait::async_trait;

use self::histogram::{DecayingHistogram, HistogramOptions};
use super::{RecOutput, RecommendInput, Recommender};
pub use crate::config::VpaConfig;

const MIB: f64 = 1024.0 * 1024.0;
/// Upstream's `MaxResourceAmount` (millicores or bytes).
const MAX_AMOUNT: f64 = 1e14;
/// Upstream's minimal sample weight and the histogram epsilon derived from it.
const MIN_SAMPLE_WEIGHT: f64 = 0.1;
const EPSILON: f64 = 0.001 * MIN_SAMPLE_WEIGHT;

/// `[recommenders.vpa]`.
/// Upstream's `OOMBumpUpRatio` and `OOMMinBumpUp`.
const OOM_BUMP_UP_RATIO: f64 = 1.2;
const OOM_MIN_BUMP_UP_BYTES: f64 = 100.0 * 1024.0 * 1024.0;

/// Upstream's `resourceAmountFromFloat`: truncated, within [0, 1e14].
fn amount(x: f64) -> f64 {
    if x > MAX_AMOUNT {
        MAX_AMOUNT
    } else if !(x >= 0.0) {
        0.0
    } else {
        x.trunc()
    }
}

/// Per-pod memory peak bookkeeping (upstream's `ContainerState`).
#[derive(Debug, Clone, Default)]
struct PodState {
    last_cpu_at: Option<f64>,
    last_memory_at: Option<f64>,
    window_end: Option<f64>,
    memory_peak: f64,
}

/// The aggregated state of all the deployment's pods (upstream's `AggregateContainerState`).
#[derive(Debug, Clone)]
pub struct VpaState {
    pub cpu: DecayingHistogram,
    pub memory_peaks: DecayingHistogram,
    pub first_sample: Option<f64>,
    pub last_sample: Option<f64>,
    pub samples: u64,
    memory_interval_s: f64,
    pods: BTreeMap<String, PodState>,
}

impl VpaState {
    pub fn new(cfg: &VpaConfig) -> Result<Self, String> {
        let growth = 1.0 + cfg.bucket_growth;
        let cpu = HistogramOptions::exponential(1000.0, cfg.cpu_first_bucket_cores, growth, EPSILON)?;
        let memory = HistogramOptions::exponential(1e12, cfg.memory_first_bucket_bytes, growth, EPSILON)?;
        Ok(Self {
            cpu: DecayingHistogram::new(cpu, cfg.half_life_h * 3600.0),
            memory_peaks: DecayingHistogram::new(memory, cfg.half_life_h * 3600.0),
            first_sample: None,
            last_sample: None,
            samples: 0,
            memory_interval_s: cfg.memory_aggregation_interval_h * 3600.0,
            pods: BTreeMap::new(),
        })
    }

    /// A CPU sample (cores) measured at `t`, weighted by the request (cores). Duplicates and
    /// out-of-order samples of a pod are ignored.
    pub fn add_cpu(&mut self, pod: &str, t: f64, usage_cores: f64, request_cores: f64) {
        let st = self.pods.entry(pod.to_string()).or_default();
        if !(usage_cores >= 0.0) || st.last_cpu_at.is_some_and(|l| t <= l) {
            return;
        }
        st.last_cpu_at = Some(t);
        self.cpu.add(usage_cores, request_cores.max(MIN_SAMPLE_WEIGHT), t);
        self.last_sample = Some(self.last_sample.map_or(t, |l| l.max(t)));
        self.first_sample = Some(self.first_sample.map_or(t, |f| f.min(t)));
        self.samples += 1;
    }

    /// A memory sample (bytes): one peak per pod and aggregation interval.
    pub fn add_memory(&mut self, pod: &str, t: f64, bytes: f64) {
        self.memory_sample(pod, t, bytes, false);
    }

    /// An OOM kill of a pod's container at `t` (upstream's `RecordOOM`): a memory sample of
    /// what it needed, `max(used + 100 MiB, used × 1.2)` with `used` the larger of the request
    /// and the pod's current peak. Discarded when older than the pod's previous aggregation
    /// interval; returns whether it counted.
    pub fn add_oom(&mut self, pod: &str, t: f64, request_bytes: f64) -> bool {
        let interval = self.memory_interval_s;
        let st = self.pods.entry(pod.to_string()).or_default();
        if st.window_end.is_some_and(|end| t < end - interval) {
            return false;
        }
        let used = request_bytes.max(st.memory_peak);
        let needed = (used + OOM_MIN_BUMP_UP_BYTES).max(used * OOM_BUMP_UP_RATIO);
        self.memory_sample(pod, t, needed, true)
    }

    /// Upstream's `addMemorySample`: OOM samples are taken even when older than the last one.
    fn memory_sample(&mut self, pod: &str, t: f64, bytes: f64, oom: bool) -> bool {
        let interval = self.memory_interval_s;
        let st = self.pods.entry(pod.to_string()).or_default();
        if !(bytes >= 0.0) || (!oom && st.last_memory_at.is_some_and(|l| t < l)) {
            return false;
        }
        st.last_memory_at = Some(t);
        let window_end = *st.window_end.get_or_insert(t);
        let mut add_peak = false;
        if t < window_end {
            if st.memory_peak != 0.0 && bytes > st.memory_peak {
                self.memory_peaks.subtract(st.memory_peak, 1.0, window_end);
                add_peak = true;
            }
        } else {
            let shift = ((t - window_end) / interval).floor() * interval + interval;
            st.window_end = Some(window_end + shift);
            st.memory_peak = 0.0;
            add_peak = true;
        }
        if add_peak {
            let at = st.window_end.unwrap_or(t);
            st.memory_peak = bytes;
            self.memory_peaks.add(bytes, 1.0, at);
        }
        true
    }

    /// History length in confidence intervals: `min(lifespan, samples / minutes per interval)`.
    pub fn confidence(&self, interval_s: f64) -> f64 {
        let lifespan = match (self.first_sample, self.last_sample) {
            (Some(f), Some(l)) => (l - f) / interval_s,
            _ => 0.0,
        };
        let amount = self.samples as f64 / (interval_s / 60.0);
        lifespan.min(amount)
    }
}

/// Request recommendations (millicores and MiB).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VpaRecommendation {
    pub cpu_target_m: f64,
    pub cpu_lower_m: f64,
    pub cpu_upper_m: f64,
    pub memory_target_mib: f64,
    pub memory_lower_mib: f64,
    pub memory_upper_mib: f64,
    pub confidence: f64,
}

/// `base * (1 + multiplier / confidence)^exponent`, as upstream (an infinite or zero factor with
/// no history).
pub fn confidence_scaled(base: f64, multiplier: f64, exponent: f64, confidence: f64) -> f64 {
    amount(base * (1.0 + multiplier / confidence).powf(exponent))
}

/// Base estimate with margin: `amount(base) + amount(amount(base) * margin)`.
fn with_margin(base: f64, margin: f64) -> f64 {
    let b = amount(base);
    b + amount(b * margin)
}

/// Upstream's pod resource recommender over the aggregated state.
pub fn recommend(cfg: &VpaConfig, s: &VpaState) -> VpaRecommendation {
    let conf = s.confidence(cfg.confidence_interval_h * 3600.0);
    let min_cpu = amount(cfg.pod_min_cpu_millicores);
    let min_mem = amount(cfg.pod_min_memory_mib * MIB);
    let cpu = |p: f64| with_margin(s.cpu.percentile(p) * 1000.0, cfg.safety_margin);
    let mem = |p: f64| with_margin(s.memory_peaks.percentile(p), cfg.safety_margin);
    let cpu_target = cpu(cfg.target_percentile).max(min_cpu);
    let cpu_lower = confidence_scaled(cpu(cfg.lower_bound_percentile), 0.001, -2.0, conf).max(min_cpu);
    let cpu_upper = confidence_scaled(cpu(cfg.upper_bound_percentile), 1.0, 1.0, conf).max(min_cpu);
    let mem_target = mem(cfg.target_percentile).max(min_mem);
    let mem_lower = confidence_scaled(mem(cfg.lower_bound_percentile), 0.001, -2.0, conf).max(min_mem);
    let mem_upper = confidence_scaled(mem(cfg.upper_bound_percentile), 1.0, 1.0, conf).max(min_mem);
    VpaRecommendation {
        cpu_target_m: cpu_target,
        cpu_lower_m: cpu_lower,
        cpu_upper_m: cpu_upper,
        memory_target_mib: mem_target / MIB,
        memory_lower_mib: mem_lower / MIB,
        memory_upper_mib: mem_upper / MIB,
        confidence: conf,
    }
}

/// The `vpa` recommender.
pub struct VpaRecommender {
    cfg: VpaConfig,
    state: VpaState,
    /// Per pod, the OOM kill already taken (`None` until the first tick: kills from before
    /// the run are not observed, as upstream's OOM observer only sees them happen).
    ooms_seen: Option<BTreeMap<String, f64>>,
    /// OOM kills taken into the memory histogram.
    ooms: u64,
}

impl VpaRecommender {
    pub fn new(cfg: VpaConfig) -> Result<Self, String> {
        let state = VpaState::new(&cfg)?;
        Ok(Self { cfg, state, ooms_seen: None, ooms: 0 })
    }

    /// Take the OOM kills that happened since the last tick.
    fn observe_ooms(&mut self, input: &RecommendInput<'_>) {
        let first = self.ooms_seen.is_none();
        let seen = self.ooms_seen.get_or_insert_with(BTreeMap::new);
        for p in input.pods {
            let Some(at) = p.last_oom_at else { continue };
            if seen.get(&p.name).is_some_and(|s| *s >= at) {
                continue;
            }
            seen.insert(p.name.clone(), at);
            if first {
                continue;
            }
            let request_mib = p
                .containers
                .iter()
                .filter_map(|c| c.memory_request_mib)
                .reduce(f64::max)
                .or(input.sample.memory_request_mebibytes)
                .unwrap_or(0.0);
            if self.state.add_oom(&p.name, at, request_mib * MIB) {
                self.ooms += 1;
            }
        }
    }
}

pub const VPA_COLUMNS: [&str; 8] = [
    "cpu_target_m",
    "cpu_lower_m",
    "cpu_upper_m",
    "memory_target_mib",
    "memory_lower_mib",
    "memory_upper_mib",
    "confidence",
    "samples",
];

#[async_trait]
impl Recommender for VpaRecommender {
    fn name(&self) -> &str {
        "vpa"
    }

    fn columns(&self) -> Vec<String> {
        VPA_COLUMNS.iter().map(|c| c.to_string()).collect()
    }

    fn can_drive(&self) -> bool {
        false
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let s = input.sample;
        let request_cores = s.cpu_request_millicores.map_or(0.0, |r| r / 1000.0);
        for u in &s.per_pod {
            if let Some(cpu) = u.cpu_m {
                self.state.add_cpu(&u.pod, u.at, cpu / 1000.0, request_cores);
            }
            if let Some(mem) = u.memory_mib {
                self.state.add_memory(&u.pod, u.at, mem * MIB);
            }
        }
        self.observe_ooms(input);
        if self.state.cpu.is_empty() && self.state.memory_peaks.is_empty() {
            return RecOutput {
                replicas: None,
                status: "no samples yet".into(),
                ai: None,
                values: vec![String::new(); VPA_COLUMNS.len()],
            };
        }
        let r = recommend(&self.cfg, &self.state);
        let f0 = |x: f64| format!("{x:.0}");
        let f1 = |x: f64| format!("{x:.1}");
        RecOutput {
            replicas: None,
            status: match self.ooms {
                0 => "ok".into(),
                n => format!("ok ({n} OOM kill{} taken)", if n == 1 { "" } else { "s" }),
            },
            ai: None,
            values: vec![
                f0(r.cpu_target_m),
                f0(r.cpu_lower_m),
                f0(r.cpu_upper_m),
                f1(r.memory_target_mib),
                f1(r.memory_lower_mib),
                f1(r.memory_upper_mib),
                format!("{:.5}", r.confidence),
                self.state.samples.to_string(),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    //! The numbers of upstream's `estimator_test.go`.
    use super::*;

    #[test]
    fn percentile_estimator_on_the_default_histograms() {
        let cfg = VpaConfig::default();
        let mut s = VpaState::new(&cfg).expect("state");
        for v in [1.0, 2.0, 3.0] {
            s.cpu.histogram.add(v, 1.0);
            s.memory_peaks.histogram.add(v * 1e9, 1.0);
        }
        // Within 5 % (histogram rounding): p20 of CPU is 1 core, p50 of memory is 2e9 bytes.
        let cpu = s.cpu.percentile(0.2);
        let mem = s.memory_peaks.percentile(0.5);
        assert!((cpu - 1.0).abs() / 1.0 < 0.05, "{cpu}");
        assert!((mem - 2e9).abs() / 2e9 < 0.05, "{mem}");
    }

    #[test]
    fn confidence_multiplier() {
        let cfg = VpaConfig::default();
        let mut s = VpaState::new(&cfg).expect("state");
        // No history: +INF (capped) or zero.
        assert_eq!(confidence_scaled(3140.0, 1.0, 1.0, s.confidence(86_400.0)), 1e14);
        assert_eq!(confidence_scaled(3140.0, 1.0, -1.0, s.confidence(86_400.0)), 0.0);
        for i in 0..9 {
            s.add_cpu("p", f64::from(i) * 120.0, 1.0, 1.0);
        }
        assert_eq!(s.confidence(86_400.0), 0.00625);
        // 3.14 cores × (1 + 0.1/0.00625)^2 = 907.46 cores; memory likewise.
        assert_eq!(confidence_scaled(3140.0, 0.1, 2.0, s.confidence(86_400.0)) / 1000.0, 907.46);
        assert_eq!(confidence_scaled(3.14e9, 0.1, 2.0, s.confidence(86_400.0)), 9.0746e11);
        // An 18-minute confidence interval: confidence 0.5, 4.521 cores (truncated millicores).
        assert_eq!(s.confidence(18.0 * 60.0), 0.5);
        assert_eq!(confidence_scaled(3140.0, 0.1, 2.0, s.confidence(1080.0)) / 1000.0, 4.521);
        assert_eq!(confidence_scaled(3.14e9, 0.1, 2.0, s.confidence(1080.0)), 4.5216e9);
    }

    #[test]
    fn margin_and_minimums() {
        // Upstream compares with the constant 3.14 * 1.1, which Go evaluates exactly.
        assert_eq!(with_margin(3140.0, 0.1) / 1000.0, 3.454);
        assert_eq!(with_margin(3.14e9, 0.1), 3.454e9);
        let cfg = VpaConfig { pod_min_cpu_millicores: 200.0, ..VpaConfig::default() };
        let s = VpaState::new(&cfg).expect("state");
        let r = recommend(&cfg, &s);
        assert_eq!(r.cpu_target_m, 200.0, "the minimum applies on an empty history");
        assert_eq!(r.memory_target_mib, 250.0);
    }

    #[test]
    fn memory_keeps_one_peak_per_interval() {
        let cfg = VpaConfig::default();
        let mut s = VpaState::new(&cfg).expect("state");
        let t0 = 1_700_000_000.0;
        s.add_memory("p", t0, 100e6);
        s.add_memory("p", t0 + 60.0, 300e6);
        s.add_memory("p", t0 + 120.0, 200e6);
        // One peak (300 MB) in the window; the 100 MB one was replaced. A percentile is the end
        // of the bucket it falls in.
        let o = s.memory_peaks.histogram.options;
        let end = |v: f64| o.bucket_start(o.find_bucket(v) + 1);
        assert_eq!(s.memory_peaks.percentile(0.0), end(300e6));
        assert_eq!(s.memory_peaks.percentile(1.0), end(300e6));
        // The next day starts a new window with its own peak.
        s.add_memory("p", t0 + 86_400.0 + 1.0, 100e6);
        assert_eq!(s.memory_peaks.percentile(0.0), end(100e6));
        assert_eq!(s.memory_peaks.percentile(1.0), end(300e6));
    }

    #[test]
    fn recommends_from_pod_samples() {
        let cfg = VpaConfig::default();
        let mut s = VpaState::new(&cfg).expect("state");
        let t0 = 1_700_000_000.0;
        for i in 0..2880 {
            // Two days of one sample a minute: 100 to 199 millicores, uniformly.
            s.add_cpu("p", t0 + f64::from(i) * 60.0, 0.1 + f64::from(i % 100) / 1000.0, 0.1);
        }
        let r = recommend(&cfg, &s);
        // p90 ≈ 190 m (+ one 5 % bucket) + 15 % margin.
        assert!(r.cpu_target_m > 190.0 * 1.15 && r.cpu_target_m < 200.0 * 1.15 * 1.05, "{r:?}");
        assert!(r.cpu_lower_m < r.cpu_target_m && r.cpu_target_m < r.cpu_upper_m, "{r:?}");
        // About two days of history: the upper bound is about 1.5 × p95 with margin.
        assert!((r.confidence - 2.0).abs() < 0.01, "{r:?}");
    }

    #[test]
    fn an_oom_kill_records_what_the_pod_needed() {
        let cfg = VpaConfig::default();
        let mut s = VpaState::new(&cfg).expect("state");
        let t0 = 1_700_000_000.0;
        s.add_memory("p", t0, 50.0 * MIB);
        // Within the same interval: max(64 MiB request, 50 MiB peak) → max(+100 MiB, ×1.2) = 164 MiB.
        assert!(s.add_oom("p", t0 + 60.0, 64.0 * MIB));
        let peak = s.pods.get("p").map(|p| p.memory_peak);
        assert_eq!(peak, Some(164.0 * MIB));
        // A large pod: ×1.2 wins over +100 MiB.
        assert!(s.add_oom("q", t0, 1000.0 * MIB));
        assert_eq!(s.pods.get("q").map(|p| p.memory_peak), Some(1200.0 * MIB));
        // Older than the previous aggregation interval: discarded.
        let day = cfg.memory_aggregation_interval_h * 3600.0;
        s.add_memory("r", t0 + 3.0 * day, 10.0 * MIB);
        assert!(!s.add_oom("r", t0 + 3.0 * day - 2.0 * day, 64.0 * MIB));
    }

    #[tokio::test]
    async fn the_recommender_takes_oom_kills_seen_during_the_run() {
        use crate::engine::record::HpaSim;
        use crate::engine::types::{ContainerInfo, MetricsSample, Mode, PodInfo, PodUsage};
        let mut rec = VpaRecommender::new(VpaConfig::default()).expect("vpa");
        let t0 = 1_700_000_000.0;
        let pod = |oom: Option<f64>| PodInfo {
            name: "p".into(),
            last_oom_at: oom,
            containers: vec![ContainerInfo { memory_request_mib: Some(400.0), ..ContainerInfo::default() }],
            ..PodInfo::default()
        };
        let mut ask = async |now: f64, pods: Vec<PodInfo>| {
            let sample = MetricsSample {
                per_pod: vec![PodUsage {
                    pod: "p".into(),
                    at: now,
                    cpu_m: Some(10.0),
                    memory_mib: Some(300.0),
                    ..PodUsage::default()
                }],
                ..MetricsSample::default()
            };
            let sim = HpaSim::default();
            let input = RecommendInput {
                elapsed_s: now - t0,
                mode: Mode::Comparison,
                pods: &pods,
                ..RecommendInput::at(now, &sample, &sim)
            };
            rec.recommend(&input).await
        };
        let target = |o: &RecOutput| o.values[3].parse::<f64>().expect("memory target");
        // An OOM kill from before the run is not taken.
        let o = ask(t0, vec![pod(Some(t0 - 600.0))]).await;
        assert_eq!(o.status, "ok");
        assert!(target(&o) < 400.0, "the 300 MiB used, with margin: {o:?}");
        // One during the run is: max(400 MiB request + 100 MiB, × 1.2) = 500 MiB, with the 15 % margin.
        let o = ask(t0 + 15.0, vec![pod(Some(t0 + 10.0))]).await;
        assert_eq!(o.status, "ok (1 OOM kill taken)");
        assert!(target(&o) >= 500.0 * 1.15, "{o:?}");
        // The same kill again is not counted twice.
        let o = ask(t0 + 30.0, vec![pod(Some(t0 + 10.0))]).await;
        assert_eq!(o.status, "ok (1 OOM kill taken)");
    }
}
