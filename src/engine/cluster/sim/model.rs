//! The simulated cluster as a pure state machine stepped in fixed one-second steps: one
//! Deployment behind a Service, pods with a lifecycle, requests and limits, traffic with a
//! queueing model, stress hooks, metrics-server-like samples and an HPA controller that runs the
//! `engine::hpa` code. Given a seed and the same inputs at the same times, it is deterministic.

use std::collections::{BTreeMap, VecDeque};

use crate::config::SimConfig;
use crate::engine::hpa::{self, HpaRunner, HpaSpec, ReconcileOptions};
use crate::engine::rng::Rng;
use crate::engine::types::{
    ContainerInfo, DeploymentState, HpaInfo, PodInfo, PodPhase, PodUsage, StressHandle, StressKind, Traffic,
};

use super::stats::WeightedHistogram;

/// Seconds per simulation step.
pub const DT: f64 = 1.0;

/// Points of an exponential distribution as (−ln(1 − q), weight): 30 even steps up to the 95th
/// percentile and 10 finer ones in the tail, so p99 is resolved.
static QUANTILE_POINTS: std::sync::LazyLock<Vec<(f64, f64)>> = std::sync::LazyLock::new(|| {
    let body = (0..30).map(|k| ((f64::from(k) + 0.5) / 30.0 * 0.95, 0.95 / 30.0));
    let tail = (0..10).map(|k| (0.95 + (f64::from(k) + 0.5) / 10.0 * 0.05, 0.005));
    body.chain(tail).map(|(q, w)| (-(1.0 - q).ln(), w)).collect()
});
const MIB: f64 = 1_048_576.0;

/// A traffic plan the simulator consumes directly: requests/s as a function of seconds since
/// the start of the run.
pub trait TrafficPlan: Send + Sync {
    fn rate(&self, t_since_start: f64) -> f64;
}

#[derive(Debug, Clone)]
pub struct SimPod {
    pub name: String,
    created_at: f64,
    phase: PodPhase,
    started_at: Option<f64>,
    ready: Option<bool>,
    ready_transition_at: Option<f64>,
    /// When the pod becomes ready (after start and readiness delays).
    ready_at: f64,
    deleting_at: Option<f64>,
    restarts: u32,
    last_oom_at: Option<f64>,
    /// cAdvisor's `container_cpu_usage_seconds_total`.
    pub cpu_seconds_total: f64,
    pub cpu_m: f64,
    pub memory_mib: f64,
    backlog: f64,
    /// (time, cpu_seconds_total) for windowed averages; bounded.
    cpu_history: VecDeque<(f64, f64)>,
}

impl SimPod {
    fn serving(&self) -> bool {
        self.phase == PodPhase::Running && self.ready == Some(true) && self.deleting_at.is_none()
    }
}

#[derive(Debug, Clone)]
struct SimStress {
    pod: String,
    kind: StressKind,
    workers: u32,
    mib: f64,
    until: Option<f64>,
}

#[derive(Debug, Clone)]
struct SimHpa {
    name: String,
    runner: HpaRunner,
    next_sync: f64,
    desired: Option<i32>,
    current: Option<i32>,
    conditions: Vec<(String, String, String)>,
}

/// Traffic statistics accumulated since the last [`SimModel::take_traffic`].
#[derive(Debug, Clone, Default)]
struct TrafficAcc {
    seconds: f64,
    arrived: f64,
    served: f64,
    errors: f64,
    in_flight: f64,
    latency: WeightedHistogram,
}

/// What an HTTP request to the simulated Service gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HttpOutcome {
    /// Answer 200 after this many milliseconds.
    Ok { latency_ms: f64 },
    /// Answer 503 (no ready pod, or the queue is full).
    Unavailable,
}

pub struct SimModel {
    cfg: SimConfig,
    rng: Rng,
    http_rng: Rng,
    start: f64,
    t: f64,
    spec_replicas: i32,
    pods: Vec<SimPod>,
    next_pod_seq: u64,
    pod_prefix: String,
    plan: Option<Box<dyn TrafficPlan>>,
    http_pending: f64,
    http_rr: usize,
    stresses: BTreeMap<u64, SimStress>,
    next_stress_id: u64,
    hpa: Option<SimHpa>,
    hpa_name: String,
    hpa_template: HpaSpec,
    samples: BTreeMap<String, PodUsage>,
    next_sample_at: f64,
    acc: TrafficAcc,
    /// Per-serving-pod capacity (req/s), arrival rate and backlog of the last step, for HTTP.
    last_mu: f64,
    last_lambda: f64,
    last_backlog: f64,
    /// Counters for the exporter.
    pub requests_total: f64,
    pub errors_total: f64,
    pub export: super::exporter::ExportCounters,
}

impl SimModel {
    /// A simulator starting at `start` (Unix seconds) for `deployment`, with `hpa_template` as the
    /// HPA that exists at start when `cfg.hpa_present`.
    pub fn new(cfg: &SimConfig, start: f64, deployment: &str, hpa_name: &str, hpa_template: HpaSpec) -> Self {
        let mut m = Self {
            rng: Rng::new(cfg.seed),
            http_rng: Rng::new(cfg.seed ^ 0x005E_ED0F_4177),
            cfg: cfg.clone(),
            start,
            t: start,
            spec_replicas: cfg.initial_replicas,
            pods: Vec::new(),
            next_pod_seq: 0,
            pod_prefix: format!("{deployment}-7d9f8"),
            plan: None,
            http_pending: 0.0,
            http_rr: 0,
            stresses: BTreeMap::new(),
            next_stress_id: 1,
            hpa: None,
            hpa_name: hpa_name.to_string(),
            hpa_template: hpa_template.clone(),
            samples: BTreeMap::new(),
            next_sample_at: start,
            acc: TrafficAcc::default(),
            // Until the first step: an idle pod's capacity (not 0, which would answer the first
            // second's HTTP requests after minutes).
            last_mu: ((cfg.cpu_limit_m - cfg.base_cpu_m).max(0.0) / cfg.cpu_per_request_ms).max(0.01),
            last_lambda: 0.0,
            last_backlog: 0.0,
            requests_total: 0.0,
            errors_total: 0.0,
            export: Default::default(),
        };
        // Pods that have been running for an hour: ready, with a full metrics history.
        for _ in 0..cfg.initial_replicas.max(0) {
            let name = m.new_pod_name();
            let created = start - 3600.0;
            let mut pod = SimPod {
                name,
                created_at: created,
                phase: PodPhase::Running,
                started_at: Some(created),
                ready: Some(true),
                ready_transition_at: Some(created + cfg.start_delay_s + cfg.readiness_delay_s),
                ready_at: created,
                deleting_at: None,
                restarts: 0,
                last_oom_at: None,
                cpu_seconds_total: 3600.0 * cfg.base_cpu_m / 1000.0,
                cpu_m: cfg.base_cpu_m,
                memory_mib: cfg.base_memory_mib,
                backlog: 0.0,
                cpu_history: VecDeque::new(),
            };
            let window = cfg.metrics_window_s + cfg.metrics_resolution_s + 2.0;
            let mut t = start - window.ceil();
            while t <= start {
                pod.cpu_history.push_back((t, pod.cpu_seconds_total - (start - t) * cfg.base_cpu_m / 1000.0));
                t += DT;
            }
            m.pods.push(pod);
        }
        if cfg.hpa_present {
            m.create_hpa(hpa_template);
        }
        m.take_samples();
        m.next_sample_at = start + cfg.metrics_resolution_s;
        m
    }

    fn new_pod_name(&mut self) -> String {
        // Deterministic pseudo-random suffix like a ReplicaSet's.
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut x = self.next_pod_seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.cfg.seed;
        self.next_pod_seq += 1;
        let mut s = String::new();
        for _ in 0..5 {
            s.push(ALPHA[(x % ALPHA.len() as u64) as usize] as char);
            x /= ALPHA.len() as u64;
        }
        format!("{}-{s}", self.pod_prefix)
    }

    pub fn now(&self) -> f64 {
        self.t
    }

    pub fn start(&self) -> f64 {
        self.start
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Feed modelled traffic from a plan (headless runs, scenarios); `None` stops it.
    pub fn set_plan(&mut self, plan: Option<Box<dyn TrafficPlan>>) {
        self.plan = plan;
    }

    /// Step forward until the simulator's time reaches `now` (whole steps only).
    pub fn advance_to(&mut self, now: f64) {
        while self.t + DT <= now + 1e-9 {
            self.step();
        }
    }

    fn step(&mut self) {
        let t0 = self.t;
        let t1 = t0 + DT;
        self.lifecycle(t1);
        self.reconcile_pods(t1);
        self.expire_stress(t1);
        self.traffic_and_usage(t0, t1);
        self.t = t1;
        if self.t + 1e-9 >= self.next_sample_at {
            self.take_samples();
            self.next_sample_at += self.cfg.metrics_resolution_s;
        }
        self.hpa_sync();
    }

    fn lifecycle(&mut self, now: f64) {
        let c = &self.cfg;
        for p in &mut self.pods {
            if p.phase == PodPhase::Pending && now >= p.created_at + c.schedule_delay_s {
                p.phase = PodPhase::Running;
                p.started_at = Some(now);
                p.ready = Some(false);
                p.ready_transition_at = Some(now);
                p.ready_at = now + c.start_delay_s + c.readiness_delay_s;
            }
            if p.phase == PodPhase::Running && p.ready == Some(false) && p.deleting_at.is_none() && now >= p.ready_at {
                p.ready = Some(true);
                p.ready_transition_at = Some(now);
            }
        }
        let grace = c.termination_grace_s;
        let before = self.pods.len();
        self.pods.retain(|p| p.deleting_at.is_none_or(|d| now < d + grace));
        if self.pods.len() != before {
            let names: Vec<String> = self.pods.iter().map(|p| p.name.clone()).collect();
            self.stresses.retain(|_, s| names.contains(&s.pod));
            self.samples.retain(|k, _| names.contains(k));
        }
    }

    /// The ReplicaSet controller: create or delete pods to match `spec_replicas`. Deletes
    /// not-ready pods first, then the newest.
    fn reconcile_pods(&mut self, now: f64) {
        let alive = self.pods.iter().filter(|p| p.deleting_at.is_none()).count() as i32;
        if alive < self.spec_replicas {
            for _ in alive..self.spec_replicas {
                let name = self.new_pod_name();
                self.pods.push(SimPod {
                    name,
                    created_at: now,
                    phase: PodPhase::Pending,
                    started_at: None,
                    ready: None,
                    ready_transition_at: None,
                    ready_at: f64::INFINITY,
                    deleting_at: None,
                    restarts: 0,
                    last_oom_at: None,
                    cpu_seconds_total: 0.0,
                    cpu_m: 0.0,
                    memory_mib: 0.0,
                    backlog: 0.0,
                    cpu_history: VecDeque::new(),
                });
            }
        } else if alive > self.spec_replicas {
            let mut victims: Vec<usize> =
                (0..self.pods.len()).filter(|i| self.pods[*i].deleting_at.is_none()).collect();
            victims.sort_by(|a, b| {
                let (pa, pb) = (&self.pods[*a], &self.pods[*b]);
                pa.serving()
                    .cmp(&pb.serving())
                    .then(pb.created_at.total_cmp(&pa.created_at))
                    .then(pb.name.cmp(&pa.name))
            });
            for i in victims.into_iter().take((alive - self.spec_replicas) as usize) {
                self.pods[i].deleting_at = Some(now);
            }
        }
    }

    fn expire_stress(&mut self, now: f64) {
        self.stresses.retain(|_, s| s.until.is_none_or(|u| now < u));
    }

    fn traffic_and_usage(&mut self, t0: f64, t1: f64) {
        let c = self.cfg.clone();
        let since = t0 - self.start + DT / 2.0;
        let planned = self.plan.as_ref().map_or(0.0, |p| p.rate(since).max(0.0));
        let noisy = (planned * (1.0 + c.noise * self.rng.normal())).max(0.0);
        let http = std::mem::take(&mut self.http_pending);
        let lambda_total = noisy + http / DT;
        let serving: Vec<usize> = (0..self.pods.len()).filter(|i| self.pods[*i].serving()).collect();
        let n = serving.len();
        let mut served_total = 0.0;
        let mut errors_total = 0.0;
        let mut in_flight = 0.0;
        let lambda = if n > 0 { lambda_total / n as f64 } else { 0.0 };
        if n == 0 {
            errors_total = lambda_total * DT;
        }
        let cost = c.cpu_per_request_ms; // millicores per (request/s)
        let mut mu_sum = 0.0;
        let mut backlog_sum = 0.0;
        let mut latency_points: Vec<(f64, f64, f64)> = Vec::new(); // (fixed wait s, mean s, weight)
        for i in 0..self.pods.len() {
            let running = self.pods[i].phase == PodPhase::Running;
            let name = self.pods[i].name.clone();
            let (workers, shm) = self
                .stresses
                .values()
                .filter(|s| s.pod == name)
                .fold((0u32, 0.0), |(w, m), s| (w + s.workers, m + s.mib));
            let stress_demand = f64::from(workers) * 1000.0;
            let avail = (c.cpu_limit_m - c.base_cpu_m).max(0.0);
            let mut cpu = 0.0;
            let mut pod_in_flight = 0.0;
            if running {
                let is_serving = self.pods[i].serving();
                // CPU the web server can get: all of it, or — when busy loops compete — what is
                // left, but at least a fair share as one more runnable thread (CFS).
                let cap =
                    if workers > 0 { (avail - stress_demand).max(avail / (f64::from(workers) + 1.0)) } else { avail };
                let mu = (cap / cost).max(0.01); // requests/s this pod can serve
                let mut served = 0.0;
                if is_serving {
                    let p = &mut self.pods[i];
                    let backlog0 = p.backlog;
                    let mut backlog = (backlog0 + (lambda - mu) * DT).max(0.0);
                    let mut dropped = 0.0;
                    if backlog > c.max_backlog_per_pod {
                        dropped = backlog - c.max_backlog_per_pod;
                        backlog = c.max_backlog_per_pod;
                    }
                    served = (lambda * DT + backlog0 - backlog - dropped).max(0.0) / DT;
                    p.backlog = backlog;
                    errors_total += dropped;
                    served_total += served * DT;
                    mu_sum += mu;
                    backlog_sum += backlog;
                    // Response time: an M/M/1 sojourn on top of the queue already waiting.
                    let wait = backlog / mu;
                    let mean = if lambda < mu && backlog < 1e-9 {
                        (1.0 / (mu - lambda)).min(c.max_backlog_per_pod / mu)
                    } else {
                        1.0 / mu
                    };
                    pod_in_flight = backlog + served * (wait + mean);
                    latency_points.push((wait, mean, served * DT));
                }
                let traffic_used = served * cost;
                let stress_alloc = stress_demand.min((avail - traffic_used).max(0.0));
                let noise = 1.0 + c.noise * self.rng.normal();
                cpu = ((c.base_cpu_m + traffic_used) * noise.max(0.0) + stress_alloc).min(c.cpu_limit_m).max(0.0);
            }
            let p = &mut self.pods[i];
            p.cpu_m = cpu;
            p.cpu_seconds_total += cpu / 1000.0 * DT;
            if p.phase == PodPhase::Running || p.phase == PodPhase::Pending {
                p.cpu_history.push_back((t1, p.cpu_seconds_total));
                let keep = c.metrics_window_s + c.metrics_resolution_s + 5.0;
                while p.cpu_history.front().is_some_and(|(t, _)| *t < t1 - keep) {
                    p.cpu_history.pop_front();
                }
            }
            in_flight += pod_in_flight;
            p.memory_mib = if running {
                c.base_memory_mib + c.memory_per_inflight_mib * pod_in_flight + shm.min(c.shm_size_mib)
            } else {
                0.0
            };
            if running && p.memory_mib > c.memory_limit_mib {
                // OOM-killed: the container restarts; its stressors die with it.
                p.restarts += 1;
                p.last_oom_at = Some(t1);
                p.ready = Some(false);
                p.ready_transition_at = Some(t1);
                p.ready_at = t1 + c.start_delay_s + c.readiness_delay_s;
                p.backlog = 0.0;
                p.memory_mib = c.base_memory_mib;
                let pod = p.name.clone();
                self.stresses.retain(|_, s| s.pod != pod);
            }
        }
        // Latency distribution of this second: quantile points of each distinct per-pod
        // distribution (pods in the same state share one), weighted by the requests served.
        // HTTP requests record their own latencies.
        let planned_share = if lambda_total > 0.0 { noisy / lambda_total } else { 0.0 };
        let mut merged: Vec<(f64, f64, f64)> = Vec::with_capacity(2);
        for (wait, mean, weight) in latency_points {
            match merged.iter_mut().find(|(w, m, _)| w.to_bits() == wait.to_bits() && m.to_bits() == mean.to_bits()) {
                Some(e) => e.2 += weight,
                None => merged.push((wait, mean, weight)),
            }
        }
        for (wait, mean, weight) in merged {
            let w = weight * planned_share;
            if w <= 0.0 {
                continue;
            }
            for (z, share) in QUANTILE_POINTS.iter() {
                let ms = c.base_latency_ms + 1000.0 * (wait + mean * z);
                self.acc.latency.record(ms, w * share);
                self.export.record_latency(ms, w * share);
            }
        }
        self.last_mu = if n > 0 { mu_sum / n as f64 } else { 0.0 };
        self.last_lambda = lambda;
        self.last_backlog = if n > 0 { backlog_sum / n as f64 } else { 0.0 };
        self.acc.seconds += DT;
        self.acc.arrived += lambda_total * DT;
        self.acc.served += served_total;
        self.acc.errors += errors_total;
        self.acc.in_flight = in_flight;
        self.requests_total += lambda_total * DT;
        self.errors_total += errors_total;
        self.export.served_total += served_total;
        self.export.in_flight = in_flight;
    }

    /// metrics-server: for each running pod with enough history, CPU averaged over the window and
    /// the current memory, stamped now.
    fn take_samples(&mut self) {
        let w = self.cfg.metrics_window_s;
        let now = self.t;
        for p in &self.pods {
            if p.phase != PodPhase::Running {
                continue;
            }
            let Some(&(tn, cn)) = p.cpu_history.back() else { continue };
            // The oldest point at least `w` old, or the oldest we have if it spans a resolution.
            let from = p.cpu_history.iter().rev().find(|(t, _)| tn - t >= w - 1e-9).or_else(|| p.cpu_history.front());
            let Some(&(t0, c0)) = from else { continue };
            let span = tn - t0;
            if span + 1e-9 < self.cfg.metrics_resolution_s.min(w) {
                continue;
            }
            self.samples.insert(
                p.name.clone(),
                PodUsage {
                    pod: p.name.clone(),
                    cpu_m: Some((cn - c0) / span * 1000.0),
                    memory_mib: Some(p.memory_mib),
                    at: now,
                    window_s: span,
                },
            );
        }
    }

    fn hpa_sync(&mut self) {
        let Some(h) = self.hpa.as_ref() else { return };
        if self.t + 1e-9 < h.next_sync {
            return;
        }
        let obs = self.hpa_observation();
        let now = self.t;
        let period = self.cfg.hpa_sync_period_s;
        let Some(h) = self.hpa.as_mut() else { return };
        h.next_sync += period;
        let out = h.runner.sync(now, &obs, ReconcileOptions::default());
        h.desired = Some(out.desired_replicas);
        h.current = Some(obs.status_replicas);
        h.conditions = out
            .conditions
            .iter()
            .map(|c| (c.kind.to_string(), if c.status { "True" } else { "False" }.to_string(), c.reason.to_string()))
            .collect();
        if out.rescale {
            self.spec_replicas = out.desired_replicas;
        }
    }

    /// What the HPA controller sees now (pods, metrics-server samples), in the HPA's units.
    pub fn hpa_observation(&self) -> hpa::Observation {
        let now = self.t;
        let pods = self.pod_infos();
        hpa::Observation {
            spec_replicas: self.spec_replicas,
            status_replicas: self.status_replicas(),
            pods: pods.iter().map(|p| to_hpa_pod(p, now)).collect(),
            pod_resource_metrics: self.samples.values().map(|u| to_hpa_sample(u, now)).collect(),
        }
    }

    fn status_replicas(&self) -> i32 {
        self.pods.iter().filter(|p| p.deleting_at.is_none()).count() as i32
    }

    pub fn deployment(&self) -> DeploymentState {
        let ready = self.pods.iter().filter(|p| p.serving()).count() as i32;
        DeploymentState {
            spec_replicas: self.spec_replicas,
            status_replicas: self.status_replicas(),
            ready_replicas: ready,
            available_replicas: ready,
        }
    }

    pub fn pod_infos(&self) -> Vec<PodInfo> {
        let c = &self.cfg;
        self.pods
            .iter()
            .map(|p| PodInfo {
                name: p.name.clone(),
                phase: p.phase,
                ready: p.ready,
                ready_transition_at: p.ready_transition_at,
                started_at: p.started_at,
                deleting: p.deleting_at.is_some(),
                restarts: p.restarts,
                last_oom_at: p.last_oom_at,
                containers: vec![ContainerInfo {
                    name: "nginx".into(),
                    cpu_request_m: Some(c.cpu_request_m),
                    memory_request_mib: Some(c.memory_request_mib),
                    cpu_limit_m: Some(c.cpu_limit_m),
                    memory_limit_mib: Some(c.memory_limit_mib),
                }],
            })
            .collect()
    }

    /// The latest metrics-server-like samples.
    pub fn pod_metrics(&self) -> Vec<PodUsage> {
        self.samples.values().cloned().collect()
    }

    /// The pods themselves (true current usage), for the exporter and tests.
    pub fn pods(&self) -> &[SimPod] {
        &self.pods
    }

    pub fn scale(&mut self, replicas: i32) {
        self.spec_replicas = replicas.max(0);
    }

    pub fn create_hpa(&mut self, spec: HpaSpec) {
        let controller = hpa::ControllerConfig::default();
        let mut runner = HpaRunner::new(spec, controller);
        // Keep the history when the HPA is only updated.
        if let Some(old) = self.hpa.take() {
            runner.history = old.runner.history;
        }
        self.hpa = Some(SimHpa {
            name: self.hpa_name.clone(),
            runner,
            next_sync: self.t + self.cfg.hpa_sync_period_s,
            desired: None,
            current: None,
            conditions: Vec::new(),
        });
    }

    pub fn hpa_spec(&self) -> Option<&HpaSpec> {
        self.hpa.as_ref().map(|h| &h.runner.spec)
    }

    pub fn hpa_template(&self) -> &HpaSpec {
        &self.hpa_template
    }

    pub fn delete_hpa(&mut self) -> bool {
        self.hpa.take().is_some()
    }

    pub fn hpa_info(&self) -> Option<HpaInfo> {
        self.hpa.as_ref().map(|h| HpaInfo {
            name: h.name.clone(),
            min_replicas: h.runner.spec.min_replicas,
            max_replicas: h.runner.spec.max_replicas,
            current_replicas: h.current,
            desired_replicas: h.desired,
            conditions: h.conditions.clone(),
        })
    }

    fn pod_running(&self, pod: &str) -> Result<&SimPod, String> {
        match self.pods.iter().find(|p| p.name == pod) {
            Some(p) if p.phase == PodPhase::Running && p.deleting_at.is_none() => Ok(p),
            Some(_) => Err(format!("pod {pod} is not running")),
            None => Err(format!("pod {pod} not found")),
        }
    }

    pub fn stress_cpu(&mut self, pod: &str, workers: u32, duration_s: f64) -> Result<StressHandle, String> {
        self.pod_running(pod)?;
        let id = self.next_stress_id;
        self.next_stress_id += 1;
        let until = (duration_s > 0.0).then_some(self.t + duration_s);
        self.stresses.insert(id, SimStress { pod: pod.to_string(), kind: StressKind::Cpu, workers, mib: 0.0, until });
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Cpu })
    }

    pub fn shm_free_mib(&self, pod: &str) -> Result<f64, String> {
        self.pod_running(pod)?;
        let used: f64 = self.stresses.values().filter(|s| s.pod == pod).map(|s| s.mib).sum();
        Ok((self.cfg.shm_size_mib - used).max(0.0))
    }

    pub fn stress_memory(&mut self, pod: &str, mib: u64) -> Result<StressHandle, String> {
        let free = self.shm_free_mib(pod)?;
        let mib_f = mib as f64;
        if mib_f > free {
            return Err(format!(
                "/dev/shm in {pod} has {free:.0} MiB free, {mib} MiB requested (try --mb {})",
                (free - 5.0).max(1.0).floor()
            ));
        }
        let id = self.next_stress_id;
        self.next_stress_id += 1;
        self.stresses.insert(
            id,
            SimStress { pod: pod.to_string(), kind: StressKind::Memory, workers: 0, mib: mib_f, until: None },
        );
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Memory })
    }

    pub fn stop_stress(&mut self, id: u64) -> bool {
        self.stresses.remove(&id).is_some()
    }

    pub fn stop_all_stress(&mut self) -> usize {
        let n = self.stresses.len();
        self.stresses.clear();
        n
    }

    pub fn stress_active(&self, id: u64) -> bool {
        self.stresses.contains_key(&id)
    }

    /// Active stressors as (pod, kind, CPU workers, MiB).
    pub fn stress_list(&self) -> Vec<(String, StressKind, u32, f64)> {
        self.stresses.values().map(|s| (s.pod.clone(), s.kind, s.workers, s.mib)).collect()
    }

    /// (CPU workers, memory MiB held) across all pods.
    pub fn stress_totals(&self) -> (u32, f64) {
        self.stresses.values().fold((0, 0.0), |(w, m), s| (w + s.workers, m + s.mib))
    }

    /// Traffic since the last call: rates, errors and latency percentiles.
    pub fn take_traffic(&mut self) -> Option<Traffic> {
        let acc = std::mem::take(&mut self.acc);
        if acc.seconds <= 0.0 {
            return None;
        }
        Some(Traffic {
            rps: acc.arrived / acc.seconds,
            served_rps: acc.served / acc.seconds,
            errors_per_s: acc.errors / acc.seconds,
            p50_ms: acc.latency.quantile(0.50),
            p95_ms: acc.latency.quantile(0.95),
            p99_ms: acc.latency.quantile(0.99),
            in_flight: acc.in_flight,
        })
    }

    /// A real HTTP request arrives now: count it and decide its answer from the queue state.
    pub fn http_request(&mut self) -> HttpOutcome {
        self.http_pending += 1.0;
        let serving = self.pods.iter().filter(|p| p.serving()).count();
        if serving == 0 || self.last_backlog >= self.cfg.max_backlog_per_pod - 1e-9 {
            self.acc.errors += 1.0;
            self.errors_total += 1.0;
            return HttpOutcome::Unavailable;
        }
        self.http_rr = self.http_rr.wrapping_add(1);
        let mu = self.last_mu.max(0.01);
        let lambda = self.last_lambda;
        let wait = self.last_backlog / mu;
        let mean = if lambda < mu && self.last_backlog < 1e-9 {
            (1.0 / (mu - lambda)).min(self.cfg.max_backlog_per_pod / mu)
        } else {
            1.0 / mu
        };
        let ms = self.cfg.base_latency_ms + 1000.0 * (wait + self.http_rng.exponential(mean));
        self.acc.latency.record(ms, 1.0);
        self.export.record_latency(ms, 1.0);
        HttpOutcome::Ok { latency_ms: ms }
    }
}

/// Convert a pod to the HPA's view with ages relative to `now`.
pub fn to_hpa_pod(p: &PodInfo, now: f64) -> hpa::Pod {
    hpa::Pod {
        name: p.name.clone(),
        phase: match p.phase {
            PodPhase::Pending => hpa::PodPhase::Pending,
            PodPhase::Running => hpa::PodPhase::Running,
            PodPhase::Succeeded => hpa::PodPhase::Succeeded,
            PodPhase::Failed => hpa::PodPhase::Failed,
            PodPhase::Unknown => hpa::PodPhase::Unknown,
        },
        deleting: p.deleting,
        ready_condition: p.ready.map(|r| if r { "True" } else { "False" }.to_string()),
        start_age_s: p.started_at.map(|t| now - t),
        ready_transition_age_s: p.ready_transition_at.map(|t| now - t),
        containers: p
            .containers
            .iter()
            .map(|c| {
                let mut req = BTreeMap::new();
                if let Some(cpu) = c.cpu_request_m {
                    req.insert("cpu".to_string(), cpu.round() as i64);
                }
                if let Some(mem) = c.memory_request_mib {
                    req.insert("memory".to_string(), (mem * MIB * 1000.0).round() as i64);
                }
                hpa::Container { name: c.name.clone(), request_milli: None, requests: Some(req) }
            })
            .collect(),
        init_containers: Vec::new(),
    }
}

/// Convert a usage sample to a metrics.k8s.io-like sample in milli-units.
pub fn to_hpa_sample(u: &PodUsage, now: f64) -> hpa::PodResourceSample {
    let mut usage = BTreeMap::new();
    if let Some(cpu) = u.cpu_m {
        usage.insert("cpu".to_string(), cpu.round() as i64);
    }
    if let Some(mem) = u.memory_mib {
        usage.insert("memory".to_string(), (mem * MIB * 1000.0).round() as i64);
    }
    hpa::PodResourceSample {
        pod: u.pod.clone(),
        timestamp_age_s: now - u.at,
        window_s: u.window_s,
        containers: vec![hpa::ContainerUsage { name: "nginx".into(), usage_milli: None, usage: Some(usage) }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::hpa::MetricSpec;

    fn template() -> HpaSpec {
        HpaSpec {
            min_replicas: 1,
            max_replicas: 10,
            metrics: vec![MetricSpec::resource_utilization("cpu", 60), MetricSpec::resource_utilization("memory", 80)],
            behavior: Some(crate::config::BehaviorConfig::default().to_hpa()),
        }
    }

    struct Const(f64);
    impl TrafficPlan for Const {
        fn rate(&self, _: f64) -> f64 {
            self.0
        }
    }

    #[test]
    fn starts_ready_and_idle() {
        let cfg = SimConfig::default();
        let m = SimModel::new(&cfg, 1000.0, "webapp", "webapp-hpa", template());
        let d = m.deployment();
        assert_eq!((d.spec_replicas, d.ready_replicas), (3, 3));
        assert_eq!(m.pod_metrics().len(), 3);
        let cpu = m.pod_metrics()[0].cpu_m.expect("cpu");
        assert!((cpu - cfg.base_cpu_m).abs() < 0.5, "{cpu}");
    }

    #[test]
    fn load_scales_up_through_the_hpa_and_back_down() {
        let cfg = SimConfig { noise: 0.0, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        m.set_plan(Some(Box::new(Const(200.0))));
        m.advance_to(300.0);
        let up = m.deployment().spec_replicas;
        assert!(up >= 6, "scaled to {up}");
        m.set_plan(Some(Box::new(Const(5.0))));
        m.advance_to(1200.0);
        assert!(m.deployment().spec_replicas < up);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = |seed| {
            let cfg = SimConfig { seed, ..SimConfig::default() };
            let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
            m.set_plan(Some(Box::new(Const(120.0))));
            m.advance_to(200.0);
            (m.deployment().spec_replicas, m.pods().iter().map(|p| p.cpu_m.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1).1, run(2).1);
    }

    #[test]
    fn cpu_stress_pegs_the_limit_and_memory_stress_is_removed() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        let pod = m.pods()[0].name.clone();
        let h = m.stress_cpu(&pod, 2, 60.0).expect("stress");
        m.advance_to(10.0);
        assert_eq!(m.pods()[0].cpu_m, cfg.cpu_limit_m);
        m.advance_to(61.0);
        assert!(!m.stress_active(h.id), "expired at its deadline");
        assert!(m.stress_memory(&pod, 100).is_err(), "more than /dev/shm");
        let h = m.stress_memory(&pod, 55).expect("fits");
        m.advance_to(70.0);
        assert!((m.pods()[0].memory_mib - (cfg.base_memory_mib + 55.0)).abs() < 1.0);
        assert!(m.stop_stress(h.id));
        m.advance_to(72.0);
        assert!(m.pods()[0].memory_mib < cfg.base_memory_mib + 1.0);
    }

    #[test]
    fn over_the_memory_limit_the_container_is_oom_killed() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let cfg = SimConfig { memory_limit_mib: cfg.base_memory_mib + 30.0, ..cfg };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        let pod = m.pods()[0].name.clone();
        assert_eq!(m.pod_infos()[0].last_oom_at, None);
        let h = m.stress_memory(&pod, 40).expect("fits in /dev/shm");
        m.advance_to(5.0);
        let info = m.pod_infos().into_iter().find(|p| p.name == pod).expect("pod");
        assert_eq!(info.restarts, 1);
        assert!(info.last_oom_at.is_some_and(|t| t > 0.0 && t <= 5.0), "{info:?}");
        assert!(!m.stress_active(h.id), "the stressor died with the container");
    }

    #[test]
    fn saturation_queues_then_errors() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        m.set_plan(Some(Box::new(Const(30.0))));
        m.advance_to(30.0);
        let calm = m.take_traffic().expect("traffic");
        assert!(calm.errors_per_s < 1e-9 && calm.p99_ms.expect("p99") < 200.0, "{calm:?}");
        // 3 pods × ~97 req/s capacity; 600 req/s saturates them.
        m.set_plan(Some(Box::new(Const(600.0))));
        m.advance_to(90.0);
        let hot = m.take_traffic().expect("traffic");
        assert!(hot.errors_per_s > 100.0, "{hot:?}");
        assert!(hot.p50_ms.expect("p50") > 500.0, "{hot:?}");
    }
}
