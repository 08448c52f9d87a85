//! Configuration: the embedded, fully commented `config.toml` is the default; a user file is
//! found via `--config`, `$SCALETUI_CONFIG`, `./config.toml`, then the user config folder; flags
//! override the file. Unknown keys and bad values are errors naming the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

mod sections;
pub use sections::{
    ExternalPolicyConfig, ForecastConfig, LearnedConfig, QueueConfig, QueueSignal, RecommendersConfig, ReportConfig,
    RewardConfig, RewardPreset, VpaConfig,
};

use crate::engine::advisor::ResponseFormatKind;
use crate::engine::advisor::prompt::PromptTemplate;
use crate::engine::hpa::{BehaviorWritten, PolicyType, ScalingPolicy, ScalingRulesWritten, SelectPolicy};
use crate::engine::types::{Fallback, Mode};

/// The shipped default configuration, embedded in the binary.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub experiment: ExperimentConfig,
    pub cluster: ClusterConfig,
    pub scaling: ScalingConfig,
    pub metrics: MetricsConfig,
    pub advisor: AdvisorConfig,
    pub sim: SimConfig,
    pub load: LoadConfig,
    pub stress: StressConfig,
    pub ui: UiConfig,
    pub recommenders: RecommendersConfig,
    pub report: ReportConfig,
    pub policy: ExternalPolicyConfig,
    pub reward: RewardConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub mode: Mode,
    pub interval: f64,
    pub duration: f64,
    pub history_minutes: f64,
    pub output_dir: PathBuf,
    pub scenario: String,
    pub fallback: Fallback,
    pub verbose: bool,
    /// Which recommender's answer `ai_scaler` applies (`ai`, `queue`, `forecast`, `learned`).
    pub driver: String,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Comparison,
            interval: 30.0,
            duration: 0.0,
            history_minutes: 15.0,
            output_dir: PathBuf::from("./experiment_data"),
            scenario: String::new(),
            fallback: Fallback::HpaSim,
            verbose: false,
            driver: "ai".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Sim,
    Kube,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sim => "sim",
            Backend::Kube => "kube",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub backend: Backend,
    pub context: String,
    pub namespace: String,
    pub deployment: String,
    pub hpa_name: String,
    pub container: String,
    pub read_only: bool,
    pub keep_changes: bool,
    /// Seconds ai_scaler's Lease lasts without renewal (renewed every third of it).
    pub lease_duration_s: u32,
    /// Seconds the restore at exit keeps retrying while the API server does not answer.
    pub restore_retry_s: u32,
    /// At start, put back an HPA that an earlier run saved, removed and never restored
    /// (`--restore-hpa`; the dashboard asks instead).
    #[serde(skip)]
    pub restore_hpa: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sim,
            context: String::new(),
            namespace: "default".into(),
            deployment: "webapp".into(),
            hpa_name: "webapp-hpa".into(),
            container: "nginx".into(),
            read_only: false,
            keep_changes: false,
            lease_duration_s: 15,
            restore_retry_s: 60,
            restore_hpa: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingConfig {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub cpu_target: i32,
    pub memory_target: i32,
    /// The HPA's metrics (what scaletui creates, the simulated HPA and `hpa_sim` use).
    pub metrics: Vec<HpaMetric>,
    pub behavior: BehaviorConfig,
    /// How a driver's recommendation reaches the deployment in `ai_scaler`.
    pub apply_limits: ApplyLimits,
}

/// `[scaling] apply_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyLimits {
    /// Through `[scaling.behavior]`'s stabilization windows and policies, as the HPA would.
    #[default]
    Behavior,
    /// As recommended (clamped to min/max and `advisor.max_step` only).
    None,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        Self {
            min_replicas: 1,
            max_replicas: 10,
            cpu_target: 60,
            memory_target: 80,
            metrics: vec![HpaMetric::Cpu, HpaMetric::Memory],
            behavior: BehaviorConfig::default(),
            apply_limits: ApplyLimits::Behavior,
        }
    }
}

impl ScalingConfig {
    /// The metrics as HPA `spec.metrics` entries.
    pub fn hpa_metrics(&self) -> Vec<crate::engine::hpa::MetricSpec> {
        use crate::engine::hpa::{MetricSpec, MetricTarget};
        self.metrics
            .iter()
            .map(|m| match m {
                HpaMetric::Cpu => MetricSpec::resource_utilization("cpu", self.cpu_target),
                HpaMetric::Memory => MetricSpec::resource_utilization("memory", self.memory_target),
                HpaMetric::Pods { figure, target } => MetricSpec {
                    kind: "Pods".into(),
                    metric: Some(figure.metric_name().into()),
                    target: Some(MetricTarget {
                        average_value_milli: Some((target * 1000.0).round() as i64),
                        ..MetricTarget::default()
                    }),
                    ..MetricSpec::default()
                },
            })
            .collect()
    }

    pub fn uses(&self, m: &HpaMetric) -> bool {
        self.metrics.iter().any(|x| std::mem::discriminant(x) == std::mem::discriminant(m))
    }
}

/// A per-pod figure an HPA `Pods` metric can average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodFigure {
    /// Requests per second reaching the pod.
    Rps,
    /// Requests queued, not in service.
    Waiting,
    /// Requests queued or in service.
    InFlight,
}

impl PodFigure {
    pub const ALL: [PodFigure; 3] = [PodFigure::Rps, PodFigure::Waiting, PodFigure::InFlight];

    /// The custom metric's name in the HPA object (what a metrics adapter must serve).
    pub fn metric_name(self) -> &'static str {
        match self {
            PodFigure::Rps => "http_requests_per_second",
            PodFigure::Waiting => "http_requests_waiting",
            PodFigure::InFlight => "http_requests_in_flight",
        }
    }

    pub fn from_metric_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.metric_name() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PodFigure::Rps => "rps",
            PodFigure::Waiting => "waiting",
            PodFigure::InFlight => "in_flight",
        }
    }
}

/// One entry of `[scaling] metrics`: `"cpu"`, `"memory"` (utilization of the request, with
/// `cpu_target` / `memory_target`) or `{ pods = "rps" | "waiting" | "in_flight", target = N }`
/// (the average per pod).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HpaMetric {
    Cpu,
    Memory,
    Pods { figure: PodFigure, target: f64 },
}

impl Serialize for HpaMetric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            HpaMetric::Cpu => s.serialize_str("cpu"),
            HpaMetric::Memory => s.serialize_str("memory"),
            HpaMetric::Pods { figure, target } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("pods", figure.as_str())?;
                m.serialize_entry("target", target)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for HpaMetric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pods {
            pods: PodFigure,
            target: f64,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Pods(Pods),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "each metric is \"cpu\", \"memory\" or { pods = \"rps\" | \"waiting\" | \"in_flight\", target = N }",
            )
        })?;
        match raw {
            Raw::Name(n) if n == "cpu" => Ok(HpaMetric::Cpu),
            Raw::Name(n) if n == "memory" => Ok(HpaMetric::Memory),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "unknown metric {n:?}: \"cpu\", \"memory\" or {{ pods = \"rps\" | \"waiting\" | \"in_flight\", target = N }}"
            ))),
            Raw::Pods(p) if p.target.is_finite() && p.target > 0.0 => {
                Ok(HpaMetric::Pods { figure: p.pods, target: p.target })
            }
            Raw::Pods(p) => {
                Err(serde::de::Error::custom(format!("a pods metric needs a target > 0, not {}", p.target)))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviorConfig {
    pub scale_up: RulesConfig,
    pub scale_down: RulesConfig,
}

impl Default for BehaviorConfig {
    /// `deploy/hpa.yaml`: scale-up window 0 s, 100 %/15 s; scale-down window 60 s, 1 pod/30 s.
    fn default() -> Self {
        Self {
            scale_up: RulesConfig {
                stabilization_window_s: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![PolicyConfig { kind: PolicyType::Percent, value: 100, period_s: 15 }],
            },
            scale_down: RulesConfig {
                stabilization_window_s: 60,
                select_policy: SelectPolicy::Max,
                policies: vec![PolicyConfig { kind: PolicyType::Pods, value: 1, period_s: 30 }],
            },
        }
    }
}

impl BehaviorConfig {
    pub fn to_hpa(&self) -> BehaviorWritten {
        BehaviorWritten { scale_up: Some(self.scale_up.to_hpa()), scale_down: Some(self.scale_down.to_hpa()) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    pub stabilization_window_s: i32,
    pub select_policy: SelectPolicy,
    pub policies: Vec<PolicyConfig>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self { stabilization_window_s: 0, select_policy: SelectPolicy::Max, policies: Vec::new() }
    }
}

impl RulesConfig {
    fn to_hpa(&self) -> ScalingRulesWritten {
        ScalingRulesWritten {
            select_policy: Some(self.select_policy),
            stabilization_window_s: Some(self.stabilization_window_s),
            policies: Some(
                self.policies
                    .iter()
                    .map(|p| ScalingPolicy { kind: p.kind, value: p.value, period_s: p.period_s })
                    .collect(),
            ),
            tolerance: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(rename = "type")]
    pub kind: PolicyType,
    pub value: i32,
    pub period_s: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MetricsSourceKind {
    #[default]
    #[serde(rename = "")]
    Auto,
    #[serde(rename = "sim")]
    Sim,
    #[serde(rename = "prometheus")]
    Prometheus,
    #[serde(rename = "metrics-server")]
    MetricsServer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub source: MetricsSourceKind,
    pub prometheus_url: String,
    pub prometheus_timeout_s: f64,
    /// Values interpolated into the PromQL templates (see `engine::metrics::prometheus`).
    pub pod_regex: String,
    pub container_filter: String,
    pub rate_window: String,
    /// Samples older than this are not shown as current (0 = no check).
    pub max_sample_age_s: f64,
    pub queries: PromQueries,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            source: MetricsSourceKind::Auto,
            prometheus_url: "http://localhost:9090".into(),
            prometheus_timeout_s: 10.0,
            pod_regex: "{deployment}-[a-z0-9]+-[a-z0-9]+".into(),
            container_filter: r#"container!="", container!="POD""#.into(),
            rate_window: "1m".into(),
            max_sample_age_s: 120.0,
            queries: PromQueries::default(),
        }
    }
}

/// PromQL templates, one per value; an empty template is not queried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromQueries {
    pub cpu: String,
    pub memory: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub running_pods: String,
    pub sample_age: String,
    pub rps: String,
    pub served_rps: String,
    pub errors_per_s: String,
    pub latency_p50_ms: String,
    pub latency_p95_ms: String,
    pub latency_p99_ms: String,
    pub in_flight: String,
    pub waiting: String,
}

impl Default for PromQueries {
    fn default() -> Self {
        let pods = r#"namespace="{namespace}", pod=~"{pod_regex}""#;
        let http = r#"namespace="{namespace}", service="{deployment}""#;
        let request = |resource: &str, scale: &str| {
            format!(
                r#"sum by (pod) (max by (pod, container) (kube_pod_container_resource_requests{{{pods}, resource="{resource}", {{container_filter}}}})) {scale}"#
            )
        };
        let quantile = |q: &str| {
            format!(
                "histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{http}}}[{{rate_window}}]))) * 1000"
            )
        };
        Self {
            cpu: format!(
                "sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}, {{container_filter}}}}[{{rate_window}}])) * 1000"
            ),
            memory: format!(
                "sum by (pod) (container_memory_working_set_bytes{{{pods}, {{container_filter}}}}) / 1048576"
            ),
            cpu_request: request("cpu", "* 1000"),
            memory_request: request("memory", "/ 1048576"),
            running_pods: format!(r#"sum(max by (pod) (kube_pod_status_phase{{{pods}, phase="Running"}}))"#),
            sample_age: format!(
                "time() - max(timestamp(container_memory_working_set_bytes{{{pods}, {{container_filter}}}}))"
            ),
            rps: format!("sum(rate(http_requests_total{{{http}}}[{{rate_window}}]))"),
            served_rps: format!(r#"sum(rate(http_requests_total{{{http}, code!~"5.."}}[{{rate_window}}]))"#),
            errors_per_s: format!(
                r#"sum(rate(http_requests_total{{{http}, code=~"5.."}}[{{rate_window}}])) or (sum(rate(http_requests_total{{{http}}}[{{rate_window}}])) * 0)"#
            ),
            latency_p50_ms: quantile("0.5"),
            latency_p95_ms: quantile("0.95"),
            latency_p99_ms: quantile("0.99"),
            in_flight: format!("sum(http_requests_in_flight{{{http}}})"),
            waiting: format!(
                "sum(http_requests_waiting{{{http}}}) + (sum(dispatcher_queue_size{{{http}}}) or vector(0))"
            ),
        }
    }
}

impl PromQueries {
    /// (config key, template) in a fixed order.
    pub fn all(&self) -> [(&'static str, &str); 14] {
        [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("cpu_request", &self.cpu_request),
            ("memory_request", &self.memory_request),
            ("running_pods", &self.running_pods),
            ("sample_age", &self.sample_age),
            ("rps", &self.rps),
            ("served_rps", &self.served_rps),
            ("errors_per_s", &self.errors_per_s),
            ("latency_p50_ms", &self.latency_p50_ms),
            ("latency_p95_ms", &self.latency_p95_ms),
            ("latency_p99_ms", &self.latency_p99_ms),
            ("in_flight", &self.in_flight),
            ("waiting", &self.waiting),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvisorConfig {
    pub url: String,
    pub model: String,
    pub enabled: bool,
    pub timeout_s: f64,
    pub max_tokens: u32,
    pub history_rows: usize,
    pub max_step: i32,
    pub scale_while_converging: bool,
    /// How JSON is asked for: `json_object`, `json_schema` or `none` (weakened for the rest of
    /// the run when the server refuses it).
    pub response_format: ResponseFormatKind,
    /// The system and user messages (`[advisor.prompt]`).
    pub prompt: PromptTemplate,
}

impl Default for AdvisorConfig {
    fn default() -> Self {
        Self {
            url: "http://localhost:11434/v1".into(),
            model: "qwen2.5-coder:3b".into(),
            enabled: true,
            timeout_s: 60.0,
            max_tokens: 200,
            history_rows: 10,
            max_step: 0,
            scale_while_converging: false,
            response_format: ResponseFormatKind::JsonObject,
            prompt: PromptTemplate::default(),
        }
    }
}

/// Simulator clock speed: a factor of real time, or as fast as possible (headless only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Factor(f64),
    Max,
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Factor(x) => write!(f, "{x}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Factor(x)),
            _ => Err(format!("speed must be a positive number or \"max\", not {s:?}")),
        }
    }
}

/// Written as it is read: a number, or `"max"`.
impl Serialize for Speed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Factor(x) => s.serialize_f64(*x),
            Speed::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(x) if x.is_finite() && x > 0.0 => Ok(Speed::Factor(x)),
            Raw::N(x) => Err(serde::de::Error::custom(format!("speed must be positive, not {x}"))),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How requests arrive from the rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    /// A (non-homogeneous) Poisson process of the schedule's rate.
    #[default]
    Poisson,
    /// Evenly spaced: the n-th request when the schedule's integral reaches n.
    Uniform,
}

/// How the Service spreads requests over the ready pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// A ready pod picked at random (kube-proxy's default).
    #[default]
    Random,
    RoundRobin,
    /// The ready pod with the fewest requests in it.
    LeastOutstanding,
    /// One FIFO in front of all ready pods that hands each request to the first free worker
    /// (a dispatcher, as the elastic inference experiment has).
    CentralQueue,
}

/// The law of a request's CPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceDistribution {
    Deterministic,
    Exponential,
    #[default]
    Lognormal,
    Gamma,
    /// Samples from `samples_ms` or `file` (milliseconds, whitespace or comma separated).
    Empirical,
}

/// `[sim.service]`: the CPU work each request carries, in milliseconds of one full core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    pub distribution: ServiceDistribution,
    pub mean_ms: f64,
    /// Coefficient of variation (standard deviation / mean), lognormal and gamma.
    pub cv: f64,
    /// Empirical samples in milliseconds (inline).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples_ms: Vec<f64>,
    /// Empirical samples from a file (relative to the file that names it, else the working
    /// directory).
    pub file: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            distribution: ServiceDistribution::Lognormal,
            mean_ms: 2.0,
            cv: 1.0,
            samples_ms: Vec::new(),
            file: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub speed: Speed,
    pub seed: u64,
    pub initial_replicas: i32,
    pub hpa_present: bool,
    pub schedule_delay_s: f64,
    pub start_delay_s: f64,
    pub readiness_delay_s: f64,
    pub termination_grace_s: f64,
    pub endpoint_lag_s: f64,
    pub cpu_request_m: f64,
    pub cpu_limit_m: f64,
    pub memory_request_mib: f64,
    pub memory_limit_mib: f64,
    pub shm_size_mib: f64,
    pub base_cpu_m: f64,
    pub base_memory_mib: f64,
    pub memory_per_inflight_mib: f64,
    pub base_latency_ms: f64,
    pub arrivals: ArrivalKind,
    pub routing: Routing,
    pub concurrency: u32,
    pub queue_capacity: u32,
    pub timeout_s: f64,
    pub finish_timed_out: bool,
    pub noise: f64,
    pub metrics_resolution_s: f64,
    pub metrics_window_s: f64,
    pub hpa_sync_period_s: f64,
    pub baseline_rps: f64,
    pub exporter_listen: String,
    pub service: ServiceConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            speed: Speed::Factor(10.0),
            seed: 42,
            initial_replicas: 3,
            hpa_present: true,
            schedule_delay_s: 2.0,
            start_delay_s: 4.0,
            readiness_delay_s: 6.0,
            termination_grace_s: 10.0,
            endpoint_lag_s: 1.0,
            cpu_request_m: 100.0,
            cpu_limit_m: 200.0,
            memory_request_mib: 64.0,
            memory_limit_mib: 128.0,
            shm_size_mib: 64.0,
            base_cpu_m: 5.0,
            base_memory_mib: 20.0,
            memory_per_inflight_mib: 0.05,
            base_latency_ms: 0.5,
            arrivals: ArrivalKind::Poisson,
            routing: Routing::Random,
            concurrency: 8,
            queue_capacity: 100,
            timeout_s: 10.0,
            finish_timed_out: true,
            noise: 0.02,
            metrics_resolution_s: 15.0,
            metrics_window_s: 30.0,
            hpa_sync_period_s: 15.0,
            baseline_rps: 10.0,
            exporter_listen: "127.0.0.1:9464".into(),
            service: ServiceConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadConfig {
    pub pattern: String,
    pub rps: f64,
    pub ramp_start: f64,
    pub ramp_end: f64,
    pub ramp_duration: f64,
    pub hold: f64,
    pub duration: f64,
    pub steps: u32,
    pub period: f64,
    pub trace: String,
    /// The seed of pattern "wave" (seed 003's arrival-rate generator).
    pub wave_seed: u64,
    pub concurrency: usize,
    pub timeout_s: f64,
    pub method: String,
    pub url: String,
    pub headers: Vec<String>,
    pub body: String,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            pattern: "ramp".into(),
            rps: 50.0,
            ramp_start: 10.0,
            ramp_end: 150.0,
            ramp_duration: 120.0,
            hold: 0.0,
            duration: 300.0,
            steps: 4,
            period: 600.0,
            trace: String::new(),
            wave_seed: 100,
            concurrency: 256,
            timeout_s: 5.0,
            method: "GET".into(),
            url: String::new(),
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StressConfig {
    pub cpu: CpuStressConfig,
    pub memory: MemoryStressConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuStressConfig {
    pub workers: u32,
    pub duration: f64,
    pub max_pods: usize,
    pub refresh: f64,
}

impl Default for CpuStressConfig {
    fn default() -> Self {
        Self { workers: 2, duration: 300.0, max_pods: 0, refresh: 15.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryStressConfig {
    pub mb: u64,
    pub duration: f64,
    pub max_pods: usize,
}

impl Default for MemoryStressConfig {
    fn default() -> Self {
        Self { mb: 50, duration: 300.0, max_pods: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    pub theme: String,
    pub max_fps: u32,
    /// Seconds between control ticks when the dashboard runs on the simulated cluster; 0 = use
    /// `experiment.interval`. `--interval` overrides it.
    pub sim_interval: f64,
    /// Minutes of history the charts show (`+`/`-` zoom, `=` resets to this).
    pub window_minutes: f64,
    /// Hours of ticks the dashboard keeps for its charts and the `e` export.
    pub history_hours: f64,
    /// Key overrides: action name → keys (see the keys table in the README).
    #[serde(deserialize_with = "keys_map")]
    pub keys: BTreeMap<String, Vec<String>>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: "dark".into(),
            max_fps: 30,
            sim_interval: 10.0,
            window_minutes: 15.0,
            history_hours: 24.0,
            keys: BTreeMap::new(),
        }
    }
}

/// `[ui.keys]` values: one key (`quit = "q"`) or several (`quit = ["q", "ctrl-c"]`).
fn keys_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let raw = BTreeMap::<String, OneOrMany>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let keys = match v {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            };
            (k, keys)
        })
        .collect())
}

/// A configuration error: one line naming the file, the line and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        f.write_str(": ")?;
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOrigin {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::Embedded => f.write_str("built-in defaults"),
            ConfigOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The user config folder's file (`~/.config/scaletui/config.toml` on Linux).
pub fn user_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "scaletui", "scaletui").map(|d| d.config_dir().join("config.toml"))
}

/// Find the config file: `--config`, `$SCALETUI_CONFIG`, `./config.toml`, the user folder.
/// An explicit path that does not exist is an error; the implicit ones are optional.
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    let missing = |p: &Path, how: &str| ConfigError {
        file: p.display().to_string(),
        line: None,
        key: None,
        message: format!("config file not found (given by {how})"),
    };
    if let Some(p) = explicit {
        return if p.is_file() { Ok(Some(p.to_path_buf())) } else { Err(missing(p, "--config")) };
    }
    if let Some(p) = std::env::var_os("SCALETUI_CONFIG").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(Some(p)) } else { Err(missing(&p, "$SCALETUI_CONFIG")) };
    }
    let local = PathBuf::from("config.toml");
    if local.is_file() {
        return Ok(Some(local));
    }
    Ok(user_config_path().filter(|p| p.is_file()))
}

/// Load the configuration from the located file (or the embedded defaults) and validate it.
pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigOrigin), ConfigError> {
    load_checked(explicit, |_| Ok(()))
}

/// Checks a caller adds to [`parse`] that need knowledge the configuration does not have (the
/// engine's PromQL templates: `crate::engine::check_config`); a failure's key is located in the
/// text like any other.
pub type ExtraCheck = fn(&Config) -> Result<(), (String, String)>;

/// [`load`] with `check` as well.
pub fn load_checked(explicit: Option<&Path>, check: ExtraCheck) -> Result<(Config, ConfigOrigin), ConfigError> {
    let parse = |text: &str, file: &str| parse_checked(text, file, check);
    match locate(explicit)? {
        None => Ok((parse(DEFAULT_CONFIG_TOML, "<built-in config.toml>")?, ConfigOrigin::Embedded)),
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                file: name.clone(),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            })?;
            Ok((parse(&text, &name)?, ConfigOrigin::File(path)))
        }
    }
}

/// Keys of the simulator before it simulated each request, and what replaced them.
const REPLACED_KEYS: [(&str, &str); 2] = [
    ("cpu_per_request_ms", "[sim.service] mean_ms (milliseconds of one full core per request)"),
    ("max_backlog_per_pod", "[sim] queue_capacity (requests a pod queues) and concurrency (its workers)"),
];

/// Parse and validate a configuration text. Absent keys take the embedded defaults.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let cfg: Config = toml::from_str(text).map_err(|e| {
        let (line, key) = locate_toml_error(text, &e);
        let mut message = e.message().trim().replace('\n', " ");
        if message.starts_with("unknown field") {
            message = format!("unknown key: {message}");
            for (old, new) in REPLACED_KEYS {
                if message.contains(&format!("`{old}`")) {
                    message = format!("{message}; {old} was replaced by {new}");
                }
            }
        }
        ConfigError { file: file.to_string(), line, key, message }
    })?;
    validate(&cfg).map_err(|e| located(text, file, e))?;
    Ok(cfg)
}

/// A failed check of `key`, with the line of `text` that sets it.
fn located(text: &str, file: &str, (key, message): (String, String)) -> ConfigError {
    ConfigError { file: file.to_string(), line: find_key_line(text, &key), key: Some(key), message }
}

/// The longest run: a year, in minutes.
pub const MAX_DURATION_MIN: f64 = 525_600.0;

/// [`parse`] with `check` as well.
pub fn parse_checked(text: &str, file: &str, check: ExtraCheck) -> Result<Config, ConfigError> {
    let cfg = parse(text, file)?;
    check(&cfg).map_err(|e| located(text, file, e))?;
    Ok(cfg)
}

/// Check values that TOML types alone cannot: returns (dotted key, message).
pub fn validate(c: &Config) -> Result<(), (String, String)> {
    fn err(key: &str, msg: impl Into<String>) -> Result<(), (String, String)> {
        Err((key.to_string(), msg.into()))
    }
    if !(3..=3600).contains(&c.cluster.lease_duration_s) {
        return err(
            "cluster.lease_duration_s",
            format!("must be 3 to 3600 seconds, not {}", c.cluster.lease_duration_s),
        );
    }
    if c.cluster.restore_retry_s > 3600 {
        return err("cluster.restore_retry_s", format!("must be 0 to 3600 seconds, not {}", c.cluster.restore_retry_s));
    }
    let e = &c.experiment;
    if !(e.interval.is_finite() && e.interval > 0.0) {
        return err("experiment.interval", format!("must be a positive number of seconds, not {}", e.interval));
    }
    if !(e.duration.is_finite() && e.duration >= 0.0 && e.duration <= MAX_DURATION_MIN) {
        return err(
            "experiment.duration",
            format!("must be minutes from 0 (until stopped) to {MAX_DURATION_MIN} (a year), not {}", e.duration),
        );
    }
    if !(e.history_minutes.is_finite() && e.history_minutes > 0.0) {
        return err("experiment.history_minutes", format!("must be positive, not {}", e.history_minutes));
    }
    let s = &c.scaling;
    if s.min_replicas < 1 {
        return err("scaling.min_replicas", format!("must be at least 1, not {}", s.min_replicas));
    }
    if s.max_replicas < s.min_replicas {
        return err(
            "scaling.max_replicas",
            format!("must be >= min_replicas ({}), not {}", s.min_replicas, s.max_replicas),
        );
    }
    if !(1..=10_000).contains(&s.cpu_target) {
        return err("scaling.cpu_target", format!("must be a percentage in 1..=10000, not {}", s.cpu_target));
    }
    if !(1..=10_000).contains(&s.memory_target) {
        return err("scaling.memory_target", format!("must be a percentage in 1..=10000, not {}", s.memory_target));
    }
    if s.metrics.is_empty() {
        return err("scaling.metrics", "needs at least one metric (\"cpu\", \"memory\" or a pods metric)");
    }
    for (i, m) in s.metrics.iter().enumerate() {
        if s.metrics[..i].contains(m)
            || s.metrics[..i].iter().any(
                |o| matches!((o, m), (HpaMetric::Pods { figure: a, .. }, HpaMetric::Pods { figure: b, .. }) if a == b),
            )
        {
            return err("scaling.metrics", "lists a metric twice");
        }
    }
    for (dir, r) in [("scale_up", &s.behavior.scale_up), ("scale_down", &s.behavior.scale_down)] {
        if !(0..=3600).contains(&r.stabilization_window_s) {
            return err(
                &format!("scaling.behavior.{dir}.stabilization_window_s"),
                "must be 0..=3600 seconds (the Kubernetes limit)",
            );
        }
        if r.policies.is_empty() && r.select_policy != SelectPolicy::Disabled {
            return err(&format!("scaling.behavior.{dir}.policies"), "needs at least one policy");
        }
        for p in &r.policies {
            if p.value <= 0 || !(1..=1800).contains(&p.period_s) {
                return err(
                    &format!("scaling.behavior.{dir}.policies"),
                    "each policy needs value > 0 and period_s in 1..=1800",
                );
            }
        }
    }
    if !(c.metrics.prometheus_timeout_s > 0.0) {
        return err("metrics.prometheus_timeout_s", "must be positive");
    }
    if c.sim.exporter_listen.parse::<std::net::SocketAddr>().is_err() {
        return err(
            "sim.exporter_listen",
            format!("must be an address and port such as 127.0.0.1:9464, not {:?}", c.sim.exporter_listen),
        );
    }
    let a = &c.advisor;
    if !(a.timeout_s > 0.0) {
        return err("advisor.timeout_s", "must be positive");
    }
    if a.max_tokens == 0 {
        return err("advisor.max_tokens", "must be positive");
    }
    if a.max_step < 0 {
        return err("advisor.max_step", "must be >= 0 (0 = no limit)");
    }
    match reqwest::Url::parse(a.url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return err("advisor.url", format!("must be an http:// or https:// URL, not {:?}", a.url)),
    }
    if a.model.trim().is_empty() {
        return err("advisor.model", "must not be empty");
    }
    if let Err(e) = crate::engine::advisor::prompt::validate(&a.prompt) {
        let (part, msg) = e.split_once(": ").unwrap_or(("system", e.as_str()));
        return err(&format!("advisor.prompt.{part}"), msg);
    }
    let m = &c.sim;
    if m.initial_replicas < 0 {
        return err("sim.initial_replicas", "must be >= 0");
    }
    let non_negative = [
        ("sim.schedule_delay_s", m.schedule_delay_s),
        ("sim.start_delay_s", m.start_delay_s),
        ("sim.readiness_delay_s", m.readiness_delay_s),
        ("sim.termination_grace_s", m.termination_grace_s),
        ("sim.endpoint_lag_s", m.endpoint_lag_s),
        ("sim.base_cpu_m", m.base_cpu_m),
        ("sim.base_memory_mib", m.base_memory_mib),
        ("sim.memory_per_inflight_mib", m.memory_per_inflight_mib),
        ("sim.base_latency_ms", m.base_latency_ms),
        ("sim.timeout_s", m.timeout_s),
        ("sim.noise", m.noise),
        ("sim.baseline_rps", m.baseline_rps),
    ];
    for (k, v) in non_negative {
        if !(v.is_finite() && v >= 0.0) {
            return err(k, format!("must be a number >= 0, not {v}"));
        }
    }
    let positive = [
        ("sim.cpu_request_m", m.cpu_request_m),
        ("sim.cpu_limit_m", m.cpu_limit_m),
        ("sim.memory_request_mib", m.memory_request_mib),
        ("sim.memory_limit_mib", m.memory_limit_mib),
        ("sim.shm_size_mib", m.shm_size_mib),
        ("sim.metrics_resolution_s", m.metrics_resolution_s),
        ("sim.metrics_window_s", m.metrics_window_s),
        ("sim.hpa_sync_period_s", m.hpa_sync_period_s),
    ];
    for (k, v) in positive {
        if !(v.is_finite() && v > 0.0) {
            return err(k, format!("must be a number > 0, not {v}"));
        }
    }
    if m.noise > 0.5 {
        return err("sim.noise", "must be at most 0.5");
    }
    if m.concurrency == 0 {
        return err("sim.concurrency", "must be at least 1 worker per pod");
    }
    if let Err(e) = crate::engine::cluster::sim::workload::ServiceLaw::from_config(&m.service) {
        return err(&format!("sim.service.{}", e.0), e.1);
    }
    let l = &c.load;
    if !["constant", "ramp", "step", "sine", "trace", "wave"].contains(&l.pattern.as_str()) {
        return err("load.pattern", format!("must be constant, ramp, step, sine, trace or wave, not {:?}", l.pattern));
    }
    for (k, v) in [
        ("load.rps", l.rps),
        ("load.ramp_start", l.ramp_start),
        ("load.ramp_end", l.ramp_end),
        ("load.ramp_duration", l.ramp_duration),
        ("load.hold", l.hold),
        ("load.duration", l.duration),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return err(k, format!("must be a number >= 0, not {v}"));
        }
    }
    if !(l.period > 0.0) {
        return err("load.period", "must be positive");
    }
    if l.concurrency == 0 {
        return err("load.concurrency", "must be positive");
    }
    if !(l.timeout_s > 0.0) {
        return err("load.timeout_s", "must be positive");
    }
    let st = &c.stress;
    if st.cpu.workers == 0 {
        return err("stress.cpu.workers", "must be at least 1");
    }
    if !(st.cpu.duration >= 0.0) {
        return err("stress.cpu.duration", "must be >= 0 (0 = until stopped)");
    }
    if !(st.cpu.refresh > 0.0) {
        return err("stress.cpu.refresh", "must be positive");
    }
    if st.memory.mb == 0 {
        return err("stress.memory.mb", "must be at least 1");
    }
    if !(st.memory.duration >= 0.0) {
        return err("stress.memory.duration", "must be >= 0 (0 = until stopped)");
    }
    if c.ui.max_fps == 0 || c.ui.max_fps > 240 {
        return err("ui.max_fps", "must be 1..=240");
    }
    if !(c.ui.sim_interval.is_finite() && c.ui.sim_interval >= 0.0) {
        return err(
            "ui.sim_interval",
            format!("must be seconds >= 0 (0 = experiment.interval), not {}", c.ui.sim_interval),
        );
    }
    if !(c.ui.window_minutes.is_finite() && c.ui.window_minutes > 0.0) {
        return err("ui.window_minutes", format!("must be a positive number of minutes, not {}", c.ui.window_minutes));
    }
    if !(c.ui.history_hours.is_finite() && c.ui.history_hours > 0.0 && c.ui.history_hours <= 168.0) {
        return err("ui.history_hours", format!("must be hours in (0, 168], not {}", c.ui.history_hours));
    }
    crate::app::keymap::validate_overrides(&c.ui.keys)?;
    if e.driver.trim().is_empty() {
        return err(
            "experiment.driver",
            "must name a recommender (ai, queue, forecast, learned, dqn, dqn:DIR, exec:CMD, http:URL)",
        );
    }
    c.recommenders.validate()?;
    c.policy.validate()?;
    c.reward.validate()?;
    c.report.validate()
}

/// Line and dotted key of a TOML error. An unknown key is looked up by name after the span's
/// start (for tables in arrays the span covers the whole table).
pub fn locate_toml_error(text: &str, e: &toml::de::Error) -> (Option<usize>, Option<String>) {
    let Some(span) = e.span() else { return (None, None) };
    let msg = e.message();
    if let Some(name) = msg.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
        let mut offset = span.start.min(text.len());
        for l in text[offset..].split_inclusive('\n') {
            let t = l.trim_start();
            if t.strip_prefix(name).is_some_and(|r| r.trim_start().starts_with('=')) {
                let at = offset + (l.len() - t.len());
                return (Some(line_of(text, at)), key_at(text, at));
            }
            offset += l.len();
        }
    }
    (Some(line_of(text, span.start)), key_at(text, span.start))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The dotted key of the assignment at `offset` (section header + key), if it is one.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[start..end];
    let key = line.split('=').next()?.trim().trim_matches('"');
    if !line.contains('=') || key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match section {
        Some(s) if !s.is_empty() => format!("{s}.{key}"),
        _ => key.to_string(),
    })
}

/// The line where a dotted key (`section.key`) is assigned, if written in the file.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') && !l.starts_with("[[") {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        let Some((k, _)) = l.split_once('=') else { continue };
        let k = k.trim().trim_matches('"');
        if (current == section && k == key) || (!current.is_empty() && format!("{current}.{k}") == dotted) {
            return Some(i + 1);
        }
        if current.is_empty() && k == dotted {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_config_parses_to_the_defaults() {
        let cfg = parse(DEFAULT_CONFIG_TOML, "config.toml").expect("embedded config parses");
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn the_printed_config_loads_back() {
        // What `scaletui config` prints.
        let mut cfg = Config::default();
        cfg.sim.speed = Speed::Max;
        cfg.scaling.metrics.push(HpaMetric::Pods { figure: PodFigure::Waiting, target: 5.0 });
        cfg.sim.service.samples_ms = vec![1.0, 2.5];
        let text = toml::to_string_pretty(&cfg).expect("serializes");
        let back = parse(&text, "printed.toml").expect("loads back");
        assert_eq!(back, cfg);
        let text = toml::to_string_pretty(&Config::default()).expect("serializes");
        assert_eq!(parse(&text, "printed.toml").expect("loads back"), Config::default());
    }

    #[test]
    fn hpa_metrics_are_checked() {
        let cfg = parse("[scaling]\nmetrics = [\"cpu\", { pods = \"rps\", target = 40 }]\n", "m.toml").expect("parses");
        let specs = cfg.scaling.hpa_metrics();
        assert_eq!(specs[1].kind, "Pods");
        assert_eq!(specs[1].metric.as_deref(), Some("http_requests_per_second"));
        assert_eq!(specs[1].target.as_ref().and_then(|t| t.average_value_milli), Some(40_000));
        for bad in [
            "metrics = []",
            "metrics = [\"gpu\"]",
            "metrics = [\"cpu\", \"cpu\"]",
            "metrics = [{ pods = \"rps\", target = 0 }]",
        ] {
            let e = parse(&format!("[scaling]\n{bad}\n"), "m.toml").expect_err(bad);
            assert_eq!(e.key.as_deref(), Some("scaling.metrics"), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_of_the_old_simulator_say_what_replaced_them() {
        let e = parse("[sim]\ncpu_per_request_ms = 3\n", "o.toml").expect_err("removed");
        assert!(e.message.contains("[sim.service] mean_ms"), "{e}");
        let e = parse("[sim]\nmax_backlog_per_pod = 3\n", "o.toml").expect_err("removed");
        assert!(e.message.contains("queue_capacity"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = "[experiment]\nmode = \"hpa_only\"\nintervall = 5\n";
        let e = parse(text, "my.toml").expect_err("unknown key");
        assert_eq!(e.file, "my.toml");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("experiment.intervall"));
        assert!(e.message.contains("unknown"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn negative_interval_names_line_and_key() {
        let text = "[sim]\nseed = 1\n\n[experiment]\ninterval = -5\n";
        let e = parse(text, "c.toml").expect_err("negative interval");
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("experiment.interval")));
        assert_eq!(e.to_string(), "c.toml:5: key `experiment.interval`: must be a positive number of seconds, not -5");
    }

    #[test]
    fn bad_toml_and_bad_types_are_located() {
        let e = parse("[experiment\nmode = 1\n", "x.toml").expect_err("bad toml");
        assert_eq!(e.line, Some(1));
        let e = parse("[experiment]\nmode = \"fast\"\n", "x.toml").expect_err("bad mode");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("experiment.mode")));
        let e = parse("[sim]\nspeed = -2\n", "x.toml").expect_err("bad speed");
        assert_eq!(e.key.as_deref(), Some("sim.speed"));
    }

    #[test]
    fn advisor_keys_are_checked() {
        let e = parse("[advisor]\nurl = \"localhost:11434\"\n", "a.toml").expect_err("bad url");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("advisor.url")));
        let e = parse("[advisor]\nresponse_format = \"yaml\"\n", "a.toml").expect_err("bad format");
        assert_eq!(e.key.as_deref(), Some("advisor.response_format"));
        let e = parse("[advisor.prompt]\nuser = \"pods {pods}\"\n", "a.toml").expect_err("bad placeholder");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("advisor.prompt.user")));
        assert!(e.message.contains("unknown placeholder {pods}"), "{e}");
        let cfg = parse("[advisor.prompt]\nuser = \"{current_replicas} pods\"\n", "a.toml").expect("parses");
        assert_eq!(cfg.advisor.prompt.user, "{current_replicas} pods");
        assert_eq!(cfg.advisor.prompt.system, PromptTemplate::default().system, "the other message keeps its default");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let cfg = parse("[scaling]\nmax_replicas = 7\n", "p.toml").expect("parses");
        assert_eq!(cfg.scaling.max_replicas, 7);
        assert_eq!(cfg.scaling.min_replicas, 1);
        assert_eq!(cfg.experiment.interval, 30.0);
        assert_eq!(cfg.sim.speed, Speed::Factor(10.0));
        let cfg = parse("[sim]\nspeed = \"max\"\n", "p.toml").expect("parses");
        assert_eq!(cfg.sim.speed, Speed::Max);
    }
}
