//! The target of an experiment: one Deployment, its pods, its HPA. [`Cluster`] is implemented by
//! the embedded simulator ([`sim`]) and by a real cluster through kube-rs.

use async_trait::async_trait;

use super::hpa::HpaSpec;
use super::types::{ClusterInfo, DeploymentState, HpaInfo, PodInfo, PodUsage, StressHandle};

pub mod kube;
pub mod sim;

/// Errors in words a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("read-only mode: refusing to {0}")]
    ReadOnly(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not authorized: {0}")]
    Unauthorized(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Other(String),
}

pub type ClusterResult<T> = Result<T, ClusterError>;

/// What changed when an HPA was ensured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpaChange {
    Unchanged,
    Created,
    Replaced,
}

/// One Deployment on a cluster (simulated or real). Every write acts only on the configured
/// namespace and deployment; the backend remembers what it changed and [`Cluster::restore`] puts
/// it back.
#[async_trait]
pub trait Cluster: Send + Sync {
    fn info(&self) -> ClusterInfo;

    /// The Deployment's replicas (spec, status, ready).
    async fn deployment(&self) -> ClusterResult<DeploymentState>;

    /// The Deployment's pods (phase, readiness and its transition time, start, deletion, requests).
    async fn pods(&self) -> ClusterResult<Vec<PodInfo>>;

    /// Set `spec.replicas` through the scale subresource.
    async fn scale(&self, replicas: i32) -> ClusterResult<()>;

    /// The HPA for the deployment, if one exists.
    async fn hpa(&self) -> ClusterResult<Option<HpaInfo>>;

    /// Make sure an HPA as configured exists.
    async fn ensure_hpa(&self, spec: &HpaSpec) -> ClusterResult<HpaChange>;

    /// Delete the HPA; `false` when there was none.
    async fn delete_hpa(&self) -> ClusterResult<bool>;

    /// Per-pod usage, like metrics.k8s.io.
    async fn pod_metrics(&self) -> ClusterResult<Vec<PodUsage>>;

    /// Run `workers` busy loops in `pod` that end by themselves after `duration_s`.
    async fn stress_cpu(&self, pod: &str, workers: u32, duration_s: f64) -> ClusterResult<StressHandle>;

    /// Free MiB in the pod's /dev/shm.
    async fn shm_free_mib(&self, pod: &str) -> ClusterResult<f64>;

    /// Hold `mib` MiB in the pod's /dev/shm until stopped.
    async fn stress_memory(&self, pod: &str, mib: u64) -> ClusterResult<StressHandle>;

    /// Stop a stressor and clean up after it (the memory stressor's file is always removed).
    async fn stop_stress(&self, handle: &StressHandle) -> ClusterResult<()>;

    /// A URL that reaches the deployment's Service (the simulator's endpoint, a port-forward).
    async fn load_target(&self) -> ClusterResult<String>;

    /// Undo what this backend changed (HPA deleted or replaced, stressors left); returns a line
    /// per action taken.
    async fn restore(&self) -> ClusterResult<Vec<String>>;

    /// An HPA that an earlier run saved and removed and never put back, found at start (what it
    /// was and what to do), or why the check could not be made.
    fn saved_hpa_notice(&self) -> Option<String> {
        None
    }

    /// Put that HPA back and remove its saved copies; returns what was done.
    async fn restore_saved_hpa(&self) -> ClusterResult<String> {
        Err(ClusterError::Unsupported("no HPA was saved by an earlier run".into()))
    }

    /// Take control of the deployment for `ai_scaler` (a lease on a real cluster), or say who
    /// holds it.
    async fn take_control(&self) -> ClusterResult<()> {
        Ok(())
    }

    /// Give control up (leaving `ai_scaler`, at exit).
    async fn release_control(&self) {}
}
