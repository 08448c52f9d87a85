//! Metric sources: the simulator's own figures, Prometheus, metrics-server. A source never fails
//! a tick: what it cannot read is left empty and its status says why.

use std::sync::Arc;

use async_trait::async_trait;

use super::cluster::Cluster;
use super::types::{MetricsSample, PodInfo, PodPhase, PodUsage, SourceStatus};

pub mod prometheus;
pub mod sim;

/// A source's name as people write it (`prometheus` -> `Prometheus`), for status lines.
pub fn display_name(name: &str) -> &str {
    match name {
        "prometheus" => "Prometheus",
        "sim" => "simulator",
        other => other,
    }
}

/// What a tick asks for.
#[derive(Debug, Clone)]
pub struct MetricsQuery {
    pub now: f64,
    pub namespace: String,
    pub deployment: String,
    pub container: String,
    /// The deployment's pods as the cluster lists them.
    pub pods: Vec<PodInfo>,
}

#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// `sim`, `prometheus`, `metrics-server`.
    fn name(&self) -> &'static str;

    /// The current values. Never fails: errors go into `status`.
    async fn sample(&self, q: &MetricsQuery) -> MetricsSample;

    /// Samples of the last `minutes` at `step_s` (advisor history, charts at start). Sources
    /// without history return an empty list.
    async fn history(&self, _q: &MetricsQuery, _minutes: f64, _step_s: f64) -> Result<Vec<MetricsSample>, String> {
        Ok(Vec::new())
    }
}

/// metrics.k8s.io through the cluster (works on both backends).
pub struct MetricsServer {
    cluster: Arc<dyn Cluster>,
}

impl MetricsServer {
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self { cluster }
    }
}

#[async_trait]
impl MetricsSource for MetricsServer {
    fn name(&self) -> &'static str {
        "metrics-server"
    }

    async fn sample(&self, q: &MetricsQuery) -> MetricsSample {
        match self.cluster.pod_metrics().await {
            Ok(per_pod) => aggregate(q.now, &q.pods, per_pod, SourceStatus::Ok),
            Err(e) => MetricsSample {
                at: q.now,
                status: SourceStatus::Degraded(format!("metrics.k8s.io: {e}")),
                ..aggregate(q.now, &q.pods, Vec::new(), SourceStatus::Ok)
            },
        }
    }
}

/// Build the seed's per-pod averages from per-pod usage and the pod list: CPU and memory are
/// averaged over the pods that have a sample; requests over running pods; `pod_count` counts
/// Running pods that are not terminating.
pub fn aggregate(now: f64, pods: &[PodInfo], per_pod: Vec<PodUsage>, status: SourceStatus) -> MetricsSample {
    let known: Vec<&PodUsage> = per_pod.iter().filter(|u| pods.iter().any(|p| p.name == u.pod)).collect();
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let running: Vec<&PodInfo> = pods.iter().filter(|p| p.phase == PodPhase::Running && !p.deleting).collect();
    MetricsSample {
        at: now,
        cpu_millicores: mean(known.iter().filter_map(|u| u.cpu_m).collect()),
        memory_mebibytes: mean(known.iter().filter_map(|u| u.memory_mib).collect()),
        cpu_request_millicores: mean(running.iter().filter_map(|p| p.cpu_request_m()).collect()),
        memory_request_mebibytes: mean(running.iter().filter_map(|p| p.memory_request_mib()).collect()),
        pod_count: Some(running.len() as u32),
        per_pod,
        traffic: None,
        status,
    }
}
