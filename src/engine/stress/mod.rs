//! CPU and memory stressors through the [`Cluster`] stress hooks: on the simulator they change
//! the simulated usage; on a real cluster they exec into the target container.
//!
//! A task is driven by its owner's clock (the experiment loop, or `scaletui stress`): `start`,
//! then `poll` at [`StressTask::next_wake`], then `stop` — which always cleans up.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::cluster::Cluster;
use crate::engine::types::{PodInfo, PodPhase, StressHandle, StressKind};

/// A CPU stressor's parameters (PRODUCT.md §8, seed flags `--workers --duration --max-pods --refresh`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuStressParams {
    pub workers: u32,
    /// Seconds; 0 = until stopped.
    pub duration_s: f64,
    /// At most this many pods; 0 = all.
    pub max_pods: usize,
    /// Seconds between looks for new pods.
    pub refresh_s: f64,
}

/// A memory stressor's parameters (`--mb --duration --max-pods`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryStressParams {
    pub mib: u64,
    pub duration_s: f64,
    pub max_pods: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StressParams {
    Cpu(CpuStressParams),
    Memory(MemoryStressParams),
}

impl StressParams {
    pub fn kind(&self) -> StressKind {
        match self {
            StressParams::Cpu(_) => StressKind::Cpu,
            StressParams::Memory(_) => StressKind::Memory,
        }
    }

    pub fn duration_s(&self) -> f64 {
        match self {
            StressParams::Cpu(p) => p.duration_s,
            StressParams::Memory(p) => p.duration_s,
        }
    }

    fn max_pods(&self) -> usize {
        match self {
            StressParams::Cpu(p) => p.max_pods,
            StressParams::Memory(p) => p.max_pods,
        }
    }

    /// One line for the tasks panel and the events file.
    pub fn describe(&self) -> String {
        let dur = |d: f64| if d > 0.0 { format!("{d:.0}s") } else { "until stopped".into() };
        let pods = |n: usize| if n > 0 { format!(", max {n} pods") } else { String::new() };
        match self {
            StressParams::Cpu(p) => {
                format!(
                    "{} workers/pod, {}{}, refresh {:.0}s",
                    p.workers,
                    dur(p.duration_s),
                    pods(p.max_pods),
                    p.refresh_s
                )
            }
            StressParams::Memory(p) => format!("{} MiB/pod, {}{}", p.mib, dur(p.duration_s), pods(p.max_pods)),
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TaskState {
    Starting,
    Running { pods: usize },
    Stopping,
    Done,
    Failed(String),
}

impl TaskState {
    pub fn label(&self) -> String {
        match self {
            TaskState::Starting => "starting".into(),
            TaskState::Running { pods } => format!("running on {pods} pod{}", if *pods == 1 { "" } else { "s" }),
            TaskState::Stopping => "stopping".into(),
            TaskState::Done => "done".into(),
            TaskState::Failed(why) => format!("failed: {why}"),
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self, TaskState::Done | TaskState::Failed(_))
    }
}

/// The longest a self-terminating CPU loop is given when the task runs "until stopped".
const UNTIL_STOPPED_CAP_S: f64 = 86_400.0;

#[derive(Debug)]
pub struct StressTask {
    pub params: StressParams,
    pub started_at: f64,
    pub deadline: Option<f64>,
    pub state: TaskState,
    handles: BTreeMap<String, StressHandle>,
    /// Every pod the task stressed at some point (what a finished task ran on).
    used: std::collections::BTreeSet<String>,
    next_refresh: Option<f64>,
}

impl StressTask {
    pub fn new(params: StressParams, now: f64) -> Self {
        let d = params.duration_s();
        Self {
            deadline: (d > 0.0).then_some(now + d),
            params,
            started_at: now,
            state: TaskState::Starting,
            handles: BTreeMap::new(),
            used: std::collections::BTreeSet::new(),
            next_refresh: None,
        }
    }

    /// Pods this task stresses right now.
    pub fn pods(&self) -> Vec<String> {
        self.handles.keys().cloned().collect()
    }

    /// (CPU workers, MiB) this task holds across its pods.
    pub fn load(&self) -> (u32, u64) {
        if self.state.finished() {
            return (0, 0);
        }
        let n = self.handles.len();
        match &self.params {
            StressParams::Cpu(p) => (p.workers * n as u32, 0),
            StressParams::Memory(p) => (0, p.mib * n as u64),
        }
    }

    /// The task's figures for the tasks panel: what it holds now, or what it ran with once it
    /// has finished.
    pub fn figures(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if self.state.finished() {
            let n = self.used.len();
            return match &self.params {
                StressParams::Cpu(p) => {
                    format!("ran {} worker{} per pod on {n} pod{}", p.workers, plural(p.workers as usize), plural(n))
                }
                StressParams::Memory(p) => format!("held {} MiB per pod on {n} pod{}", p.mib, plural(n)),
            };
        }
        let (workers, mib) = self.load();
        let n = self.handles.len();
        match &self.params {
            StressParams::Cpu(_) => format!("{workers} workers on {n} pod{}", plural(n)),
            StressParams::Memory(_) => format!("{mib} MiB held on {n} pod{}", plural(n)),
        }
    }

    /// Fraction of the duration elapsed (`None` for "until stopped").
    pub fn progress(&self, now: f64) -> Option<f64> {
        self.deadline.map(|d| ((now - self.started_at) / (d - self.started_at)).clamp(0.0, 1.0))
    }

    /// When `poll` should next run.
    pub fn next_wake(&self) -> Option<f64> {
        if self.state.finished() {
            return None;
        }
        match (self.deadline, self.next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn targets(&self, pods: Vec<PodInfo>) -> Vec<String> {
        let mut names: Vec<String> =
            pods.into_iter().filter(|p| p.phase == PodPhase::Running && !p.deleting).map(|p| p.name).collect();
        names.sort();
        let max = self.params.max_pods();
        if max > 0 {
            names.truncate(max);
        }
        names
    }

    /// Discover pods and start. Returns lines for the events record.
    pub async fn start(&mut self, cluster: &dyn Cluster, now: f64) -> Vec<String> {
        let mut log = Vec::new();
        let pods = match cluster.pods().await {
            Ok(p) => self.targets(p),
            Err(e) => {
                self.state = TaskState::Failed(format!("cannot list pods: {e}"));
                return log;
            }
        };
        if pods.is_empty() {
            self.state = TaskState::Failed("no running pods to stress".into());
            return log;
        }
        if let StressParams::Memory(p) = &self.params {
            // Check every pod first so a stressor never half-starts on a bad size.
            for pod in &pods {
                match cluster.shm_free_mib(pod).await {
                    Ok(free) if (p.mib as f64) <= free => {}
                    Ok(free) => {
                        self.state = TaskState::Failed(format!(
                            "/dev/shm in {pod} has {free:.0} MiB free, {} MiB asked (try {} MiB)",
                            p.mib,
                            (free - 5.0).max(1.0).floor()
                        ));
                        return log;
                    }
                    Err(e) => {
                        self.state = TaskState::Failed(format!("cannot check /dev/shm in {pod}: {e}"));
                        return log;
                    }
                }
            }
        }
        self.add_pods(cluster, pods, now, &mut log).await;
        if self.handles.is_empty() {
            if !matches!(self.state, TaskState::Failed(_)) {
                self.state = TaskState::Failed("could not start on any pod".into());
            }
            return log;
        }
        if let StressParams::Cpu(p) = &self.params {
            self.next_refresh = Some(now + p.refresh_s);
        }
        self.state = TaskState::Running { pods: self.handles.len() };
        log
    }

    async fn add_pods(&mut self, cluster: &dyn Cluster, pods: Vec<String>, now: f64, log: &mut Vec<String>) {
        let max = self.params.max_pods();
        for pod in pods {
            if self.handles.contains_key(&pod) {
                continue;
            }
            if max > 0 && self.handles.len() >= max {
                break;
            }
            let result = match &self.params {
                StressParams::Cpu(p) => {
                    let remaining = self.deadline.map_or(UNTIL_STOPPED_CAP_S, |d| d - now).max(1.0);
                    cluster.stress_cpu(&pod, p.workers, remaining.ceil()).await
                }
                StressParams::Memory(p) => cluster.stress_memory(&pod, p.mib).await,
            };
            match result {
                Ok(h) => {
                    log.push(format!("{} stress started on {pod}", self.params.kind().as_str()));
                    self.used.insert(pod.clone());
                    self.handles.insert(pod, h);
                }
                Err(e) => {
                    log.push(format!("{} stress on {pod} failed: {e}", self.params.kind().as_str()));
                    if self.handles.is_empty() {
                        self.state = TaskState::Failed(format!("{pod}: {e}"));
                    }
                }
            }
        }
    }

    /// Stop at the deadline; CPU stressors pick up new pods every refresh.
    pub async fn poll(&mut self, cluster: &dyn Cluster, now: f64) -> Vec<String> {
        let mut log = Vec::new();
        if self.state.finished() {
            return log;
        }
        if self.deadline.is_some_and(|d| now >= d - 1e-9) {
            log.extend(self.stop(cluster).await);
            return log;
        }
        if let (StressParams::Cpu(p), Some(at)) = (&self.params, self.next_refresh)
            && now >= at - 1e-9
        {
            let refresh = p.refresh_s;
            self.next_refresh = Some(now + refresh);
            if let Ok(pods) = cluster.pods().await {
                let alive: Vec<String> = pods
                    .iter()
                    .filter(|p| p.phase == PodPhase::Running && !p.deleting)
                    .map(|p| p.name.clone())
                    .collect();
                self.handles.retain(|pod, _| alive.contains(pod));
                let targets = self.targets(pods);
                self.add_pods(cluster, targets, now, &mut log).await;
            }
            self.state = TaskState::Running { pods: self.handles.len() };
        }
        log
    }

    /// Stop every stressor of this task and clean up (memory: the file is always removed).
    pub async fn stop(&mut self, cluster: &dyn Cluster) -> Vec<String> {
        let mut log = Vec::new();
        if self.state.finished() {
            return log;
        }
        self.state = TaskState::Stopping;
        let mut failures = Vec::new();
        for (pod, h) in std::mem::take(&mut self.handles) {
            if let Err(e) = cluster.stop_stress(&h).await {
                failures.push(format!("{pod}: {e}"));
            }
        }
        log.push(format!("{} stress stopped", self.params.kind().as_str()));
        self.state = if failures.is_empty() {
            TaskState::Done
        } else {
            TaskState::Failed(format!("cleanup failed on {}", failures.join("; ")))
        };
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SimConfig, Speed};
    use crate::engine::clock::Clock;
    use crate::engine::cluster::sim::SimCluster;
    use crate::engine::hpa::HpaSpec;

    fn sim() -> std::sync::Arc<SimCluster> {
        let cfg = SimConfig { hpa_present: false, noise: 0.0, ..SimConfig::default() };
        let spec = HpaSpec { min_replicas: 1, max_replicas: 10, metrics: vec![], behavior: None };
        SimCluster::new(&cfg, Clock::new(0.0, Speed::Max), "default", "webapp", "webapp-hpa", spec, false)
    }

    #[tokio::test]
    async fn cpu_stress_covers_new_pods_and_ends_at_deadline() {
        let c = sim();
        let mut t = StressTask::new(
            StressParams::Cpu(CpuStressParams { workers: 2, duration_s: 60.0, max_pods: 0, refresh_s: 15.0 }),
            0.0,
        );
        t.start(c.as_ref(), 0.0).await;
        assert_eq!(t.state, TaskState::Running { pods: 3 });
        c.scale(4).await.expect("scale");
        c.clock().sleep_until(30.0).await;
        t.poll(c.as_ref(), 30.0).await;
        assert_eq!(t.state, TaskState::Running { pods: 4 }, "refresh picked up the new pod");
        assert_eq!(t.load(), (8, 0));
        assert_eq!(t.figures(), "8 workers on 4 pods");
        c.clock().sleep_until(60.0).await;
        t.poll(c.as_ref(), 60.0).await;
        assert_eq!(t.state, TaskState::Done);
        assert_eq!(c.model().stress_totals().0, 0);
        assert_eq!(t.figures(), "ran 2 workers per pod on 4 pods", "a finished task says what it ran");
    }

    #[tokio::test]
    async fn memory_stress_checks_shm_and_cleans_up() {
        let c = sim();
        let mut t =
            StressTask::new(StressParams::Memory(MemoryStressParams { mib: 100, duration_s: 0.0, max_pods: 2 }), 0.0);
        t.start(c.as_ref(), 0.0).await;
        assert!(matches!(&t.state, TaskState::Failed(why) if why.contains("/dev/shm")), "{:?}", t.state);
        assert_eq!(c.model().stress_totals().1, 0.0, "nothing half-started");
        let mut t =
            StressTask::new(StressParams::Memory(MemoryStressParams { mib: 55, duration_s: 0.0, max_pods: 2 }), 0.0);
        t.start(c.as_ref(), 0.0).await;
        assert_eq!(t.state, TaskState::Running { pods: 2 });
        assert_eq!(c.model().stress_totals().1, 110.0);
        t.stop(c.as_ref()).await;
        assert_eq!(t.state, TaskState::Done);
        assert_eq!(c.model().stress_totals().1, 0.0);
        assert_eq!(t.figures(), "held 55 MiB per pod on 2 pods");
    }

    fn sim_with_hpa() -> std::sync::Arc<SimCluster> {
        let cfg = SimConfig { noise: 0.0, ..SimConfig::default() };
        let spec = crate::engine::experiment::hpa_spec(&crate::config::Config::default());
        SimCluster::new(&cfg, Clock::new(0.0, Speed::Max), "default", "webapp", "webapp-hpa", spec, false)
    }

    #[tokio::test]
    async fn cpu_stress_pegs_three_pods_at_the_limit_and_the_hpa_scales_up() {
        let c = sim_with_hpa();
        let limit = SimConfig::default().cpu_limit_m;
        let mut t = StressTask::new(
            StressParams::Cpu(CpuStressParams { workers: 2, duration_s: 120.0, max_pods: 3, refresh_s: 15.0 }),
            0.0,
        );
        t.start(c.as_ref(), 0.0).await;
        assert_eq!(t.state, TaskState::Running { pods: 3 });
        let stressed = t.pods();
        let mut now = 0.0;
        while now < 90.0 {
            now += 15.0;
            c.clock().sleep_until(now).await;
            t.poll(c.as_ref(), now).await;
        }
        assert_eq!(t.pods().len(), 3, "never more than --max-pods");
        let usage = c.pod_metrics().await.expect("metrics");
        for pod in &stressed {
            let u = usage.iter().find(|u| &u.pod == pod).expect("sample of a stressed pod");
            assert!((u.cpu_m.expect("cpu") - limit).abs() < 1.0, "{pod} at the CPU limit: {u:?}");
        }
        let d = c.deployment().await.expect("deployment");
        assert!(d.spec_replicas > 3, "the simulated HPA reacts: {d:?}");
        c.clock().sleep_until(120.0).await;
        t.poll(c.as_ref(), 120.0).await;
        assert_eq!(t.state, TaskState::Done);
        assert_eq!(c.model().stress_totals().0, 0);
    }

    #[tokio::test]
    async fn memory_stress_of_55_mib_is_visible_then_fully_removed() {
        let c = sim_with_hpa();
        let base = SimConfig::default().base_memory_mib;
        let shm = SimConfig::default().shm_size_mib;
        let mut t =
            StressTask::new(StressParams::Memory(MemoryStressParams { mib: 55, duration_s: 60.0, max_pods: 0 }), 0.0);
        t.start(c.as_ref(), 0.0).await;
        let pods = t.pods();
        assert_eq!(pods.len(), 3);
        c.clock().sleep_until(45.0).await;
        t.poll(c.as_ref(), 45.0).await;
        let usage = c.pod_metrics().await.expect("metrics");
        for pod in &pods {
            let u = usage.iter().find(|u| &u.pod == pod).expect("sample");
            assert!((u.memory_mib.expect("memory") - (base + 55.0)).abs() < 1.0, "55 MiB visible: {u:?}");
            assert!((c.shm_free_mib(pod).await.expect("shm") - (shm - 55.0)).abs() < 1e-9);
        }
        c.clock().sleep_until(60.0).await;
        t.poll(c.as_ref(), 60.0).await;
        assert_eq!(t.state, TaskState::Done);
        assert_eq!(c.model().stress_totals(), (0, 0.0));
        for pod in &pods {
            assert_eq!(c.shm_free_mib(pod).await.expect("shm"), shm, "the file is gone from {pod}");
        }
        c.clock().sleep_until(120.0).await;
        let usage = c.pod_metrics().await.expect("metrics");
        for pod in &pods {
            let u = usage.iter().find(|u| &u.pod == pod).expect("sample");
            assert!(u.memory_mib.expect("memory") < base + 1.0, "back to the base: {u:?}");
        }
    }
}
