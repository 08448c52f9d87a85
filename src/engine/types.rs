//! Domain types shared by the engine's parts (cluster, metrics, experiment, record).
//!
//! Times are `f64` seconds since the Unix epoch on the run's clock (virtual on the simulator, the
//! wall clock on a real cluster).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who is in control (PRODUCT.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    HpaOnly,
    AiScaler,
    #[default]
    Comparison,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::HpaOnly, Mode::AiScaler, Mode::Comparison];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::HpaOnly => "hpa_only",
            Mode::AiScaler => "ai_scaler",
            Mode::Comparison => "comparison",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hpa_only" => Ok(Mode::HpaOnly),
            "ai_scaler" => Ok(Mode::AiScaler),
            "comparison" => Ok(Mode::Comparison),
            _ => Err(format!("unknown mode {s:?} (hpa_only, ai_scaler, comparison)")),
        }
    }
}

/// What `ai_scaler` applies when the driving recommender has no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    Hold,
    #[default]
    HpaSim,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Hold => "hold",
            Fallback::HpaSim => "hpa_sim",
        }
    }
}

impl std::str::FromStr for Fallback {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hold" => Ok(Fallback::Hold),
            "hpa_sim" => Ok(Fallback::HpaSim),
            _ => Err(format!("unknown fallback {s:?} (hold, hpa_sim)")),
        }
    }
}

/// What the dashboard header shows about the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    /// `sim` or `kube`.
    pub backend: String,
    /// kubeconfig context (`simulated` on the simulator).
    pub context: String,
    pub namespace: String,
    pub deployment: String,
}

/// The Deployment's scale and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct DeploymentState {
    /// `spec.replicas` (what the scale subresource says).
    pub spec_replicas: i32,
    /// `status.replicas`: pods that exist (not terminating).
    pub status_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
}

impl DeploymentState {
    /// The deployment has finished converging to its spec.
    pub fn converged(&self) -> bool {
        self.spec_replicas == self.ready_replicas && self.spec_replicas == self.status_replicas
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PodPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

/// A container's resources (CPU in millicores, memory in MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ContainerInfo {
    pub name: String,
    pub cpu_request_m: Option<f64>,
    pub memory_request_mib: Option<f64>,
    pub cpu_limit_m: Option<f64>,
    pub memory_limit_mib: Option<f64>,
}

/// What the engine knows of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PodInfo {
    pub name: String,
    pub phase: PodPhase,
    /// The Ready condition: `None` when the pod has none yet.
    pub ready: Option<bool>,
    /// When the Ready condition last changed.
    pub ready_transition_at: Option<f64>,
    /// `status.startTime`.
    pub started_at: Option<f64>,
    pub deleting: bool,
    pub restarts: u32,
    /// When a container of the pod was last killed for running out of memory (Unix seconds),
    /// if its last termination was an OOM kill.
    pub last_oom_at: Option<f64>,
    pub containers: Vec<ContainerInfo>,
}

impl PodInfo {
    pub fn is_ready(&self) -> bool {
        self.phase == PodPhase::Running && self.ready == Some(true) && !self.deleting
    }

    /// Sum of the containers' CPU requests, when every container has one.
    pub fn cpu_request_m(&self) -> Option<f64> {
        self.containers.iter().map(|c| c.cpu_request_m).sum()
    }

    pub fn memory_request_mib(&self) -> Option<f64> {
        self.containers.iter().map(|c| c.memory_request_mib).sum()
    }
}

/// The live HPA object, when one exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HpaInfo {
    pub name: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub desired_replicas: Option<i32>,
    /// `(type, status, reason)` of its conditions.
    pub conditions: Vec<(String, String, String)>,
}

/// One pod's usage sample (like metrics.k8s.io PodMetrics).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PodUsage {
    pub pod: String,
    pub cpu_m: Option<f64>,
    pub memory_mib: Option<f64>,
    /// When the sample was taken and the window CPU was averaged over.
    pub at: f64,
    pub window_s: f64,
    /// Requests per second that reached the pod over the window (when the source knows).
    pub rps: Option<f64>,
    /// Requests queued in the pod, not in service (its share of a central queue included).
    pub waiting: Option<f64>,
    /// Requests queued or in service in the pod.
    pub in_flight: Option<f64>,
}

/// Traffic reaching the deployment (from the simulator, an exporter or the load generator).
/// A figure the source cannot provide is NaN (the record writes an empty cell).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Traffic {
    /// Requests/s arriving.
    pub rps: f64,
    /// Requests/s answered successfully.
    pub served_rps: f64,
    pub errors_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Mean latency of the requests answered.
    pub mean_ms: Option<f64>,
    /// Requests waiting or in service, now (a queue-length signal).
    pub in_flight: f64,
    /// Requests queued, not in service, now (a dispatcher's queue length).
    pub waiting: f64,
    /// The same per ready pod.
    pub in_flight_per_pod: f64,
    pub waiting_per_pod: f64,
    /// Requests by outcome over the span, when the source counts them.
    pub counts: Option<RequestCounts>,
}

/// Requests by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct RequestCounts {
    pub arrived: u64,
    pub served: u64,
    /// Turned away at once (no ready pod, queue full).
    pub rejected: u64,
    /// The client gave up.
    pub timed_out: u64,
    /// Lost with a pod (killed).
    pub failed: u64,
}

/// Health of a data source, shown on screen and recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub enum SourceStatus {
    #[default]
    Ok,
    /// Some values are missing; the message says which and why.
    Degraded(String),
    /// Nothing could be read since `since` (run clock).
    Unreachable { since: f64, error: String },
}

impl SourceStatus {
    /// For the record: `ok`, `degraded: …`, `unreachable since 2026-11-22T12:03:10Z: connection refused`.
    pub fn label(&self) -> String {
        match self {
            SourceStatus::Ok => "ok".into(),
            SourceStatus::Degraded(m) => format!("degraded: {m}"),
            SourceStatus::Unreachable { since, error } => match jiff::Timestamp::from_second(since.floor() as i64) {
                Ok(ts) => format!("unreachable since {ts}: {error}"),
                Err(_) => format!("unreachable: {error}"),
            },
        }
    }

    /// For a status line, in local time: `Prometheus unreachable since 12:03:10: connection refused`.
    /// `source` is the source's display name (see `metrics::display_name`).
    pub fn headline(&self, source: &str) -> String {
        match self {
            SourceStatus::Ok => format!("{source}: ok"),
            SourceStatus::Degraded(m) => format!("{source}: {m}"),
            SourceStatus::Unreachable { since, error } => {
                let at = jiff::Timestamp::from_second(since.floor() as i64)
                    .map(|ts| ts.to_zoned(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string());
                match at {
                    Ok(t) => format!("{source} unreachable since {t}: {error}"),
                    Err(_) => format!("{source} unreachable: {error}"),
                }
            }
        }
    }

    /// `ok`, `degraded` or `unreachable`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Degraded(_) => "degraded",
            SourceStatus::Unreachable { .. } => "unreachable",
        }
    }
}

/// One observation of the metrics (per-pod averages, as the seed CSV defines them).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct MetricsSample {
    pub at: f64,
    /// Average CPU per pod, millicores.
    pub cpu_millicores: Option<f64>,
    /// Average memory (working set) per pod, MiB.
    pub memory_mebibytes: Option<f64>,
    pub cpu_request_millicores: Option<f64>,
    pub memory_request_mebibytes: Option<f64>,
    /// Running pods.
    pub pod_count: Option<u32>,
    pub per_pod: Vec<PodUsage>,
    pub traffic: Option<Traffic>,
    pub status: SourceStatus,
}

/// The kind of a stressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StressKind {
    Cpu,
    Memory,
}

impl StressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StressKind::Cpu => "cpu",
            StressKind::Memory => "memory",
        }
    }
}

/// A stressor running on one pod, as the backend identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StressHandle {
    pub id: u64,
    pub pod: String,
    pub kind: StressKind,
}

/// Unix seconds to RFC 3339 UTC with microseconds.
pub fn rfc3339(t: f64) -> String {
    let nanos = (t * 1e9).round() as i128;
    match jiff::Timestamp::from_nanosecond(nanos) {
        Ok(ts) => format!("{ts:.6}"),
        Err(_) => String::new(),
    }
}

/// The wall clock as Unix seconds.
pub fn wall_now() -> f64 {
    jiff::Timestamp::now().as_nanosecond() as f64 / 1e9
}
