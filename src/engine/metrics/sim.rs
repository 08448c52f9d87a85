//! The simulator's own figures: metrics-server-like per-pod samples plus the traffic it served.

use std::sync::Arc;

use async_trait::async_trait;

use super::{MetricsQuery, MetricsSource, aggregate};
use crate::engine::cluster::sim::SimCluster;
use crate::engine::types::{MetricsSample, SourceStatus};

pub struct SimMetrics {
    sim: Arc<SimCluster>,
}

impl SimMetrics {
    pub fn new(sim: Arc<SimCluster>) -> Self {
        Self { sim }
    }
}

#[async_trait]
impl MetricsSource for SimMetrics {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn sample(&self, q: &MetricsQuery) -> MetricsSample {
        let (per_pod, traffic) = {
            let mut m = self.sim.model();
            (m.pod_metrics(), m.take_traffic())
        };
        let mut s = aggregate(q.now, &q.pods, per_pod, SourceStatus::Ok);
        s.traffic = traffic;
        s
    }
}
