//! The embedded simulated cluster: [`SimModel`] (a discrete-event simulation of requests) behind a
//! lock, advanced lazily to the run's clock on every call, and a real HTTP endpoint on 127.0.0.1
//! whose requests enter the model like any other and are answered when the model finishes them
//! (so a real load generator measures the model's latency).

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, ClusterResult, HpaChange};
use crate::config::SimConfig;
use crate::engine::clock::SharedClock;
use crate::engine::hpa::HpaSpec;
use crate::engine::scenario::LoadPlan;
use crate::engine::types::{ClusterInfo, DeploymentState, HpaInfo, PodInfo, PodUsage, StressHandle, Traffic};

pub mod events;
pub mod exporter;
pub mod http;
pub mod model;
pub mod observe;
pub mod pods;
pub mod router;
pub mod station;
pub mod workload;

pub use model::{HttpOutcome, RunTotals, SimModel};

/// Lock the model and advance it to the clock's current time (a poisoned lock is taken over:
/// the model is stepped whole or not at all).
pub fn lock_advanced<'a>(model: &'a Mutex<SimModel>, clock: &SharedClock) -> MutexGuard<'a, SimModel> {
    let mut m = match model.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    m.advance_to(clock.now());
    m
}

/// State to restore on exit: the HPA as it was at start.
#[derive(Debug, Clone)]
struct Original {
    hpa: Option<HpaSpec>,
}

pub struct SimCluster {
    model: Arc<Mutex<SimModel>>,
    clock: SharedClock,
    namespace: String,
    deployment: String,
    read_only: bool,
    original: Original,
    server: OnceCell<http::SimServer>,
    exporter: OnceCell<exporter::ExporterServer>,
    cancel: CancellationToken,
}

impl SimCluster {
    pub fn new(
        cfg: &SimConfig,
        clock: SharedClock,
        namespace: &str,
        deployment: &str,
        hpa_name: &str,
        hpa_template: HpaSpec,
        read_only: bool,
    ) -> Arc<Self> {
        let model = SimModel::new(cfg, clock.now(), deployment, hpa_name, hpa_template);
        let original = Original { hpa: model.hpa_spec().cloned() };
        Arc::new(Self {
            model: Arc::new(Mutex::new(model)),
            clock,
            namespace: namespace.to_string(),
            deployment: deployment.to_string(),
            read_only,
            original,
            server: OnceCell::new(),
            exporter: OnceCell::new(),
            cancel: CancellationToken::new(),
        })
    }

    /// The model, advanced to the clock's current time.
    pub fn model(&self) -> MutexGuard<'_, SimModel> {
        lock_advanced(&self.model, &self.clock)
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Feed modelled traffic directly (scenarios, headless runs).
    pub fn set_plan(&self, plan: Option<LoadPlan>) {
        self.model().set_plan(plan);
    }

    /// The run's totals so far (requests by outcome, latency, CPU, replica-seconds).
    pub fn totals(&self) -> RunTotals {
        self.model().totals()
    }

    /// Traffic since the last call.
    pub fn take_traffic(&self) -> Option<Traffic> {
        self.model().take_traffic()
    }

    /// Start the HTTP endpoint (idempotent) and return its base URL.
    pub async fn serve(&self) -> ClusterResult<String> {
        let server = self
            .server
            .get_or_try_init(|| {
                http::SimServer::start(self.model.clone(), self.clock.clone(), self.cancel.child_token())
            })
            .await
            .map_err(|e| ClusterError::Other(format!("cannot start the simulator's HTTP endpoint: {e}")))?;
        Ok(server.url.clone())
    }

    /// Start the Prometheus exporter on `listen` (idempotent) and return its `/metrics` URL.
    pub async fn serve_exporter(&self, listen: &str) -> ClusterResult<String> {
        let server = self
            .exporter
            .get_or_try_init(|| {
                exporter::ExporterServer::start(
                    listen,
                    self.model.clone(),
                    self.clock.clone(),
                    &self.namespace,
                    &self.deployment,
                    self.cancel.child_token(),
                )
            })
            .await
            .map_err(|e| {
                ClusterError::Other(format!(
                    "cannot serve the Prometheus exporter on {listen}: {e} (set [sim] exporter_listen)"
                ))
            })?;
        Ok(server.url.clone())
    }

    fn write(&self, what: &str) -> ClusterResult<()> {
        if self.read_only { Err(ClusterError::ReadOnly(what.to_string())) } else { Ok(()) }
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[async_trait]
impl Cluster for SimCluster {
    fn info(&self) -> ClusterInfo {
        ClusterInfo {
            backend: "sim".into(),
            context: "simulated".into(),
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
        }
    }

    async fn deployment(&self) -> ClusterResult<DeploymentState> {
        Ok(self.model().deployment())
    }

    async fn pods(&self) -> ClusterResult<Vec<PodInfo>> {
        Ok(self.model().pod_infos())
    }

    async fn scale(&self, replicas: i32) -> ClusterResult<()> {
        self.write(&format!("scale {} to {replicas}", self.deployment))?;
        self.model().scale(replicas);
        Ok(())
    }

    async fn hpa(&self) -> ClusterResult<Option<HpaInfo>> {
        Ok(self.model().hpa_info())
    }

    async fn ensure_hpa(&self, spec: &HpaSpec) -> ClusterResult<HpaChange> {
        let mut m = self.model();
        let change = match m.hpa_spec() {
            Some(s) if s == spec => return Ok(HpaChange::Unchanged),
            Some(_) => HpaChange::Replaced,
            None => HpaChange::Created,
        };
        drop(m);
        self.write("create or update the HPA")?;
        m = self.model();
        m.create_hpa(spec.clone());
        Ok(change)
    }

    async fn delete_hpa(&self) -> ClusterResult<bool> {
        if self.model().hpa_spec().is_none() {
            return Ok(false);
        }
        self.write("delete the HPA")?;
        Ok(self.model().delete_hpa())
    }

    async fn pod_metrics(&self) -> ClusterResult<Vec<PodUsage>> {
        Ok(self.model().pod_metrics())
    }

    async fn stress_cpu(&self, pod: &str, workers: u32, duration_s: f64) -> ClusterResult<StressHandle> {
        self.write("start a CPU stressor")?;
        self.model().stress_cpu(pod, workers, duration_s).map_err(ClusterError::Other)
    }

    async fn shm_free_mib(&self, pod: &str) -> ClusterResult<f64> {
        self.model().shm_free_mib(pod).map_err(ClusterError::Other)
    }

    async fn stress_memory(&self, pod: &str, mib: u64) -> ClusterResult<StressHandle> {
        self.write("start a memory stressor")?;
        self.model().stress_memory(pod, mib).map_err(ClusterError::Other)
    }

    async fn stop_stress(&self, handle: &StressHandle) -> ClusterResult<()> {
        self.model().stop_stress(handle.id);
        Ok(())
    }

    async fn load_target(&self) -> ClusterResult<String> {
        self.serve().await
    }

    async fn restore(&self) -> ClusterResult<Vec<String>> {
        let mut done = Vec::new();
        let mut m = self.model();
        let stopped = m.stop_all_stress();
        if stopped > 0 {
            done.push(format!("stopped {stopped} stressor(s)"));
        }
        if self.read_only {
            return Ok(done);
        }
        match (&self.original.hpa, m.hpa_spec().cloned()) {
            (Some(orig), Some(now)) if *orig == now => {}
            (Some(orig), _) => {
                m.create_hpa(orig.clone());
                done.push("restored the HPA as it was at start".into());
            }
            (None, Some(_)) => {
                m.delete_hpa();
                done.push("deleted the HPA that did not exist at start".into());
            }
            (None, None) => {}
        }
        Ok(done)
    }
}
