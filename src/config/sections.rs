//! The recommenders' and the report's sections of the configuration: plain data with the
//! checks that need nothing but the values (the engine checks PromQL queries itself).

use serde::{Deserialize, Serialize};

/// `[recommenders.queue]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub enabled: bool,
    pub target: f64,
    pub cooldown_s: f64,
    pub min_replicas: i32,
    /// 0 = `scaling.max_replicas`.
    pub max_replicas: i32,
    /// Which traffic figure is q (without a query).
    pub signal: QueueSignal,
    /// A PromQL query for q on a real cluster; empty = the traffic's figure named by `signal`.
    pub query: String,
}

/// The traffic figure the queue rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueSignal {
    /// Requests queued, not in service.
    #[default]
    Waiting,
    /// Requests queued or in service.
    InFlight,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target: 10.0,
            cooldown_s: 150.0,
            min_replicas: 1,
            max_replicas: 0,
            signal: QueueSignal::Waiting,
            query: String::new(),
        }
    }
}

impl QueueConfig {
    /// The plain checks; the engine checks `query` as PromQL (`QueueRecommender::check_query`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let k = |s: &str| format!("recommenders.queue.{s}");
        if !(self.target.is_finite() && self.target > 0.0) {
            return Err((k("target"), format!("must be a positive queue length, not {}", self.target)));
        }
        if !(self.cooldown_s.is_finite() && self.cooldown_s >= 0.0) {
            return Err((k("cooldown_s"), format!("must be seconds >= 0, not {}", self.cooldown_s)));
        }
        if self.min_replicas < 1 {
            return Err((k("min_replicas"), "must be at least 1".into()));
        }
        if self.max_replicas != 0 && self.max_replicas < self.min_replicas {
            return Err((k("max_replicas"), "must be 0 (= scaling.max_replicas) or >= min_replicas".into()));
        }
        Ok(())
    }
}

/// `[recommenders.forecast]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    pub enabled: bool,
    /// `replicas` (the HPA's proposal) or `load` (requests/s, turned into replicas through the
    /// HPA's proposal at the current rate).
    pub signal: String,
    /// Any of `linear`, `holt_winters`, `lstm` (seed 003's LSTM predictor, one tick ahead).
    pub models: Vec<String>,
    /// `max`, `min`, `mean` or `median` over the HPA's value and the models' predictions.
    pub combine: String,
    pub look_ahead_s: f64,
    /// Linear regression: observations used.
    pub history_size: usize,
    /// Holt-Winters: season length in ticks, seasons kept, smoothing factors.
    pub season_length: usize,
    pub stored_seasons: usize,
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    /// Scale-down stabilization: the largest combined value of this many seconds is used.
    pub stabilization_window_s: f64,
    /// The LSTM's scale (values are divided by it for the network); 0 = max_replicas for the
    /// `replicas` signal, twice the first rate seen for `load`.
    pub lstm_scale: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            signal: "replicas".into(),
            models: vec!["linear".into(), "holt_winters".into()],
            combine: "max".into(),
            look_ahead_s: 60.0,
            history_size: 6,
            season_length: 20,
            stored_seasons: 4,
            alpha: 0.5,
            beta: 0.1,
            gamma: 0.3,
            stabilization_window_s: 60.0,
            lstm_scale: 0.0,
        }
    }
}

impl ForecastConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let k = |s: &str| format!("recommenders.forecast.{s}");
        if !["replicas", "load"].contains(&self.signal.as_str()) {
            return Err((k("signal"), format!("must be \"replicas\" or \"load\", not {:?}", self.signal)));
        }
        if let Some(m) = self.models.iter().find(|m| !["linear", "holt_winters", "lstm"].contains(&m.as_str())) {
            return Err((k("models"), format!("unknown model {m:?} (linear, holt_winters, lstm)")));
        }
        if !(self.lstm_scale >= 0.0 && self.lstm_scale.is_finite()) {
            return Err((k("lstm_scale"), "must be >= 0 (0 = automatic)".into()));
        }
        if !["max", "min", "mean", "median"].contains(&self.combine.as_str()) {
            return Err((k("combine"), format!("must be max, min, mean or median, not {:?}", self.combine)));
        }
        if !(self.look_ahead_s.is_finite() && self.look_ahead_s >= 0.0) {
            return Err((k("look_ahead_s"), "must be seconds >= 0".into()));
        }
        if self.history_size < 2 {
            return Err((k("history_size"), "must be at least 2".into()));
        }
        if self.season_length < 2 {
            return Err((k("season_length"), "must be at least 2 ticks".into()));
        }
        if self.stored_seasons < 2 {
            return Err((k("stored_seasons"), "must be at least 2 (Holt-Winters needs two seasons)".into()));
        }
        for (n, v) in [("alpha", self.alpha), ("beta", self.beta), ("gamma", self.gamma)] {
            if !(0.0..=1.0).contains(&v) {
                return Err((k(n), format!("must be in 0..=1, not {v}")));
            }
        }
        if !(self.stabilization_window_s.is_finite() && self.stabilization_window_s >= 0.0) {
            return Err((k("stabilization_window_s"), "must be seconds >= 0".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VpaConfig {
    pub enabled: bool,
    pub target_percentile: f64,
    pub lower_bound_percentile: f64,
    pub upper_bound_percentile: f64,
    pub safety_margin: f64,
    pub half_life_h: f64,
    pub confidence_interval_h: f64,
    pub memory_aggregation_interval_h: f64,
    pub pod_min_cpu_millicores: f64,
    pub pod_min_memory_mib: f64,
    pub cpu_first_bucket_cores: f64,
    pub memory_first_bucket_bytes: f64,
    pub bucket_growth: f64,
}

impl Default for VpaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target_percentile: 0.9,
            lower_bound_percentile: 0.5,
            upper_bound_percentile: 0.95,
            safety_margin: 0.15,
            half_life_h: 24.0,
            confidence_interval_h: 24.0,
            memory_aggregation_interval_h: 24.0,
            pod_min_cpu_millicores: 25.0,
            pod_min_memory_mib: 250.0,
            cpu_first_bucket_cores: 0.01,
            memory_first_bucket_bytes: 1e7,
            bucket_growth: 0.05,
        }
    }
}

impl VpaConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let k = |s: &str| format!("recommenders.vpa.{s}");
        for (name, p) in [
            ("target_percentile", self.target_percentile),
            ("lower_bound_percentile", self.lower_bound_percentile),
            ("upper_bound_percentile", self.upper_bound_percentile),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err((k(name), format!("must be a fraction in 0..=1, not {p}")));
            }
        }
        for (name, v) in [
            ("half_life_h", self.half_life_h),
            ("confidence_interval_h", self.confidence_interval_h),
            ("memory_aggregation_interval_h", self.memory_aggregation_interval_h),
            ("cpu_first_bucket_cores", self.cpu_first_bucket_cores),
            ("memory_first_bucket_bytes", self.memory_first_bucket_bytes),
            ("bucket_growth", self.bucket_growth),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err((k(name), format!("must be a positive number, not {v}")));
            }
        }
        for (name, v) in [
            ("safety_margin", self.safety_margin),
            ("pod_min_cpu_millicores", self.pod_min_cpu_millicores),
            ("pod_min_memory_mib", self.pod_min_memory_mib),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err((k(name), format!("must be a number >= 0, not {v}")));
            }
        }
        Ok(())
    }
}

/// `[recommenders.learned]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LearnedConfig {
    /// A model written by `scaletui train`; empty: the learned recommender is off.
    pub model: String,
}

/// `[recommenders]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendersConfig {
    pub queue: QueueConfig,
    pub forecast: ForecastConfig,
    pub vpa: VpaConfig,
    pub learned: LearnedConfig,
    /// `[recommenders.dqn]`: seed 003's agent (training settings, and the model that drives).
    pub dqn: crate::engine::learn::dqn::DqnSettings,
}

impl RecommendersConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.queue.validate()?;
        self.forecast.validate()?;
        self.vpa.validate()?;
        self.dqn.validate().map_err(|m| ("recommenders.dqn".to_string(), m))
    }
}

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    pub slo_ms: f64,
    /// 50, 95 or 99.
    pub slo_percentile: u32,
    pub step_fraction: f64,
    pub step_min_rps: f64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self { slo_ms: 100.0, slo_percentile: 95, step_fraction: 0.25, step_min_rps: 10.0 }
    }
}

impl ReportConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(self.slo_ms.is_finite() && self.slo_ms > 0.0) {
            return Err(("report.slo_ms".into(), format!("must be positive milliseconds, not {}", self.slo_ms)));
        }
        if ![50, 95, 99].contains(&self.slo_percentile) {
            return Err(("report.slo_percentile".into(), format!("must be 50, 95 or 99, not {}", self.slo_percentile)));
        }
        if !(self.step_fraction.is_finite() && self.step_fraction >= 0.0) {
            return Err(("report.step_fraction".into(), "must be a fraction >= 0".into()));
        }
        if !(self.step_min_rps.is_finite() && self.step_min_rps >= 0.0) {
            return Err(("report.step_min_rps".into(), "must be requests/s >= 0".into()));
        }
        Ok(())
    }
}

/// `[policy]`: an external policy driving `ai_scaler` (`--driver exec:CMD` or `http:URL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalPolicyConfig {
    /// Seconds to wait for each answer (on the virtual clock: wall seconds, then the fallback).
    pub timeout_s: f64,
    /// Extra seconds for the first answer of a process (interpreter start, imports).
    pub startup_s: f64,
    /// Recent rows sent with each observation (`history`).
    pub history_rows: usize,
}

impl Default for ExternalPolicyConfig {
    fn default() -> Self {
        Self { timeout_s: 5.0, startup_s: 10.0, history_rows: 10 }
    }
}

impl ExternalPolicyConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("policy.{k}"), m));
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return err("timeout_s", format!("must be a positive number of seconds, not {}", self.timeout_s));
        }
        if !(self.startup_s.is_finite() && self.startup_s >= 0.0) {
            return err("startup_s", format!("must be seconds >= 0, not {}", self.startup_s));
        }
        if self.history_rows > 1000 {
            return err("history_rows", format!("must be at most 1000, not {}", self.history_rows));
        }
        Ok(())
    }
}

/// Which reward a learning policy gets (`[reward] preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardPreset {
    /// Seed 003's reward: response-time cost, replica cost, action alignment.
    #[default]
    Seed003,
    /// scaletui's own objective: SLO violations (`[report] slo_*`), failed requests and
    /// core-seconds.
    SloCost,
}

/// `[reward]`: the reward of the Python environment (and of learned policies trained on the
/// simulator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    pub preset: RewardPreset,
    /// seed003: the response-time bounds, seconds (the seed's Tmax 0.7, Tmin 0.2).
    pub tmax_s: f64,
    pub tmin_s: f64,
    /// seed003: the response time counted for a request that failed (rejected or timed out).
    pub failed_rt_s: f64,
    /// seed003: the base arrival rate in requests per minute (the one-replica bonus applies
    /// below 20 % of it).
    pub base_rate_rpm: f64,
    /// slo_cost: the weights of an SLO-violating tick, of the failed share of requests and of
    /// one core in use for one tick.
    pub slo_weight: f64,
    pub error_weight: f64,
    pub core_weight: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            preset: RewardPreset::Seed003,
            tmax_s: 0.7,
            tmin_s: 0.2,
            failed_rt_s: 1.0,
            base_rate_rpm: 80.0,
            slo_weight: 1.0,
            error_weight: 2.0,
            core_weight: 0.1,
        }
    }
}

impl RewardConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("reward.{k}"), m));
        if !(self.tmin_s.is_finite() && self.tmin_s >= 0.0 && self.tmax_s.is_finite() && self.tmax_s > self.tmin_s) {
            return err("tmax_s", format!("needs 0 <= tmin_s < tmax_s, not {} and {}", self.tmin_s, self.tmax_s));
        }
        for (k, v) in [
            ("failed_rt_s", self.failed_rt_s),
            ("base_rate_rpm", self.base_rate_rpm),
            ("slo_weight", self.slo_weight),
            ("error_weight", self.error_weight),
            ("core_weight", self.core_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(k, format!("must be a number >= 0, not {v}"));
            }
        }
        Ok(())
    }
}
