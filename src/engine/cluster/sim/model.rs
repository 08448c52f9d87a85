//! The simulated cluster as a discrete-event simulation of requests: one Deployment behind a
//! Service, pods with a lifecycle, requests and limits, each request an entity with its arrival
//! time, CPU work and deadline, routed to a pod (or a central queue) and served by processor
//! sharing under the CPU limit; stress hooks, OOM kills, metrics-server-like samples and an HPA
//! controller that runs the `engine::hpa` code. It wires `events` (the order of things),
//! `workload` (arrivals, service laws), `station` (a pod serving), `router`, `pods` (lifecycle)
//! and `observe` (what is measured). Given a seed and the same inputs at the same times, it is
//! deterministic; between events nothing is stepped.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::events::{EventQueue, Next, Scheduled};
use super::observe::{Counts, LatencySummary, Observer, measure_cpu};
use super::pods::{SimPod, Snap};
use super::router::Router;
use super::station::{GONE, HTTP, Handle, IN_SERVICE, Slab, front_deadline};
use super::workload::{Arrivals, ServiceLaw};
use crate::config::{PodFigure, Routing, SimConfig};
use crate::engine::hpa::{self, HpaRunner, HpaSpec, ReconcileOptions};
use crate::engine::rng::Rng;
use crate::engine::scenario::LoadPlan;
use crate::engine::types::{
    ContainerInfo, DeploymentState, HpaInfo, PodInfo, PodPhase, PodUsage, RequestCounts, StressHandle, StressKind,
    Traffic,
};

const MIB: f64 = 1_048_576.0;

/// Purposes of the model's random streams (see [`Rng::stream`]).
mod streams {
    pub const ARRIVALS: u64 = 1;
    pub const SERVICE: u64 = 2;
    pub const ROUTING: u64 = 3;
    pub const NOISE: u64 = 4;
    pub const HTTP: u64 = 5;
}

#[derive(Debug, Clone)]
struct SimStress {
    pod: u64,
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

/// What an HTTP request to the simulated Service gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HttpOutcome {
    /// Answer 200; it spent this long in the model.
    Ok { latency_ms: f64 },
    /// Answer 503 (no ready pod, or the queue is full).
    Unavailable,
    /// Answer 500 (its pod was killed).
    Failed,
}

/// The central queue (`routing = "central_queue"`): a FIFO in front of all ready pods.
#[derive(Debug, Clone, Default)]
struct Central {
    queue: VecDeque<Handle>,
    waiting: u32,
    /// Every modelled request in central mode, in arrival order (their deadlines).
    order: VecDeque<Handle>,
}

/// The run's figures for `<csv stem>_summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunTotals {
    pub requests: Counts,
    pub latency_s: LatencySummary,
    pub cpu_core_seconds: f64,
    pub replica_seconds: f64,
    pub scale_events: u64,
    /// Time-average number of requests in the system (Little's L).
    pub mean_in_system: f64,
    /// CPU work of the requests served (core-seconds).
    pub served_work_core_seconds: f64,
    pub seconds: f64,
}

impl RunTotals {
    /// Mean CPU work of a served request (core-seconds).
    pub fn served_work_mean_s(&self) -> f64 {
        if self.requests.served > 0 { self.served_work_core_seconds / self.requests.served as f64 } else { 0.0 }
    }
}

/// One pod's figures now, for the exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFigures {
    pub name: String,
    pub phase: PodPhase,
    pub cpu_seconds_total: f64,
    pub memory_mib: f64,
    pub waiting: u32,
    pub in_flight: u32,
    pub requests_total: u64,
}

pub struct SimModel {
    cfg: SimConfig,
    law: ServiceLaw,
    rng_arrivals: Rng,
    rng_service: Rng,
    rng_noise: Rng,
    rng_http: Rng,
    router: Router,
    central_mode: bool,
    timeout: f64,
    base_latency_s: f64,
    start: f64,
    t: f64,
    queue: EventQueue,
    arrivals: Arrivals,
    slab: Slab,
    /// By station slot; slot 0 is the central queue's and holds no pod.
    pods: Vec<Option<SimPod>>,
    next_pod_id: u64,
    pod_prefix: String,
    endpoints: Vec<usize>,
    central: Central,
    spec_replicas: i32,
    stresses: BTreeMap<u64, SimStress>,
    next_stress_id: u64,
    hpa: Option<SimHpa>,
    hpa_name: String,
    hpa_template: HpaSpec,
    samples: BTreeMap<String, PodUsage>,
    sample_k: u64,
    snapshot_k: u64,
    obs: Observer,
    http_done: Vec<(u64, HttpOutcome)>,
    next_token: u64,
    cpu_of_removed: f64,
    replica_s: f64,
    replica_t: f64,
    scale_events: u64,
}

impl SimModel {
    /// A simulator starting at `start` (Unix seconds) for `deployment`, with `hpa_template` as the
    /// HPA that exists at start when `cfg.hpa_present`. The configuration was validated (an
    /// invalid service law falls back to the default one).
    pub fn new(cfg: &SimConfig, start: f64, deployment: &str, hpa_name: &str, hpa_template: HpaSpec) -> Self {
        let law = ServiceLaw::from_config(&cfg.service)
            .or_else(|_| ServiceLaw::from_config(&crate::config::ServiceConfig::default()))
            .unwrap_or(ServiceLaw::Deterministic(0.002));
        let seed = cfg.seed;
        let mut m = Self {
            law,
            rng_arrivals: Rng::stream(seed, streams::ARRIVALS),
            rng_service: Rng::stream(seed, streams::SERVICE),
            rng_noise: Rng::stream(seed, streams::NOISE),
            rng_http: Rng::stream(seed, streams::HTTP),
            router: Router::new(cfg.routing, Rng::stream(seed, streams::ROUTING)),
            central_mode: cfg.routing == Routing::CentralQueue,
            timeout: if cfg.timeout_s > 0.0 { cfg.timeout_s } else { f64::INFINITY },
            base_latency_s: cfg.base_latency_ms / 1000.0,
            cfg: cfg.clone(),
            start,
            t: start,
            queue: EventQueue::new(),
            arrivals: Arrivals::none(),
            slab: Slab::default(),
            pods: vec![None],
            next_pod_id: 0,
            pod_prefix: format!("{deployment}-7d9f8"),
            endpoints: Vec::new(),
            central: Central::default(),
            spec_replicas: cfg.initial_replicas,
            stresses: BTreeMap::new(),
            next_stress_id: 1,
            hpa: None,
            hpa_name: hpa_name.to_string(),
            hpa_template: hpa_template.clone(),
            samples: BTreeMap::new(),
            sample_k: 0,
            snapshot_k: 0,
            obs: Observer::new(start),
            http_done: Vec::new(),
            next_token: 1,
            cpu_of_removed: 0.0,
            replica_s: 0.0,
            replica_t: start,
            scale_events: 0,
        };
        // Pods that have been running for an hour: ready, idle, with a metrics history.
        let idle = (cfg.base_cpu_m / 1000.0).min(cfg.cpu_limit_m / 1000.0);
        let created = start - 3600.0;
        for _ in 0..cfg.initial_replicas.max(0) {
            let slot = m.free_slot();
            let (name, id) = m.new_pod_name();
            let mut pod = SimPod::new(name, id, created, cfg);
            pod.phase = PodPhase::Running;
            pod.started_at = Some(created);
            pod.ready = Some(true);
            pod.ready_transition_at = Some(created + cfg.start_delay_s + cfg.readiness_delay_s);
            pod.in_endpoints = true;
            pod.station.set_running(created, true);
            pod.station.sync(start);
            let mut k = 0;
            loop {
                let x = m.window_start_time(k);
                if x > start + 1e-9 {
                    break;
                }
                pod.snaps.push_back(Snap { t: x, cpu: idle * (x - created), arrivals: 0 });
                k += 1;
            }
            pod.snapshot(start);
            m.pods[slot] = Some(pod);
            m.endpoints.push(slot);
        }
        if cfg.hpa_present {
            m.create_hpa(hpa_template);
        }
        m.take_samples(start);
        m.sample_k = 1;
        m.queue.schedule(m.sample_time(1), Scheduled::MetricsSample);
        if m.snapshots_needed() {
            while m.window_start_time(m.snapshot_k) <= start + 1e-9 {
                m.snapshot_k += 1;
            }
            m.queue.schedule(m.window_start_time(m.snapshot_k), Scheduled::Snapshot);
        }
        m
    }

    fn sample_time(&self, k: u64) -> f64 {
        self.start + k as f64 * self.cfg.metrics_resolution_s
    }

    fn window_start_time(&self, k: u64) -> f64 {
        self.sample_time(k) - self.cfg.metrics_window_s
    }

    /// Window starts fall between sample times unless the window is a whole number of them.
    fn snapshots_needed(&self) -> bool {
        let r = self.cfg.metrics_window_s / self.cfg.metrics_resolution_s;
        (r - r.round()).abs() > 1e-9
    }

    fn free_slot(&mut self) -> usize {
        match self.pods.iter().skip(1).position(Option::is_none) {
            Some(i) => i + 1,
            None => {
                self.pods.push(None);
                self.pods.len() - 1
            }
        }
    }

    fn new_pod_name(&mut self) -> (String, u64) {
        // Deterministic pseudo-random suffix like a ReplicaSet's.
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let id = self.next_pod_seq();
        let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.cfg.seed;
        let mut s = String::new();
        for _ in 0..5 {
            s.push(ALPHA[(x % ALPHA.len() as u64) as usize] as char);
            x /= ALPHA.len() as u64;
        }
        (format!("{}-{s}", self.pod_prefix), id)
    }

    fn next_pod_seq(&mut self) -> u64 {
        let id = self.next_pod_id;
        self.next_pod_id += 1;
        id
    }

    fn slot_of(&self, id: u64) -> Option<usize> {
        self.pods.iter().position(|p| p.as_ref().is_some_and(|p| p.id == id))
    }

    fn slot_by_name(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.as_ref().is_some_and(|p| p.name == name))
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

    pub fn service_law(&self) -> &ServiceLaw {
        &self.law
    }

    /// Feed modelled traffic from a plan (its t = 0 is the start of the run) from now on;
    /// `None` stops it.
    pub fn set_plan(&mut self, plan: Option<LoadPlan>) {
        self.arrivals = match &plan {
            Some(p) => Arrivals::new(p, self.start, self.t, self.cfg.arrivals, &mut self.rng_arrivals),
            None => Arrivals::none(),
        };
        self.queue.set_arrival(self.arrivals.peek());
    }

    /// Process every event up to `now`.
    pub fn advance_to(&mut self, now: f64) {
        while let Some((t, next)) = self.queue.pop_until(now) {
            self.t = t;
            match next {
                Next::Arrival => self.on_arrival(t),
                Next::Station(0) => self.on_central_deadline(t),
                Next::Station(slot) => self.on_station(slot, t),
                Next::Scheduled(ev) => self.on_scheduled(ev, t),
            }
        }
        if now > self.t {
            self.t = now;
        }
    }

    // --- traffic -------------------------------------------------------------------------

    #[inline]
    fn on_arrival(&mut self, t: f64) {
        self.arrivals.pop(&mut self.rng_arrivals);
        let work = self.law.sample(&mut self.rng_service);
        let _ = self.admit(t, work, 0, 0);
        self.queue.set_arrival(self.arrivals.peek());
    }

    /// A request arrives at `t`; `Err` when it is turned away at once.
    #[inline]
    fn admit(&mut self, t: f64, work: f64, flags: u8, token: u64) -> Result<Handle, ()> {
        self.obs.arrived();
        let modelled = flags & HTTP == 0;
        if self.central_mode {
            // The first free worker: on the pod with the fewest busy workers.
            let free = {
                let pods = &self.pods;
                self.endpoints
                    .iter()
                    .copied()
                    .filter(|s| pods[*s].as_ref().is_some_and(|p| p.station.has_free_worker()))
                    .min_by_key(|s| pods[*s].as_ref().map_or(u32::MAX, |p| p.station.busy))
            };
            let h = match free {
                Some(slot) => {
                    let h = self.slab.alloc(t, work, slot as u32, flags, token);
                    let Some(pod) = self.pods[slot].as_mut() else { return Err(()) };
                    let st = &mut pod.station;
                    st.sync(t);
                    st.start(h, &mut self.slab, slot as u32);
                    st.arrivals += 1;
                    st.retune();
                    let oom = st.in_system() >= pod.oom_at;
                    self.obs.entered(t);
                    if modelled {
                        self.central.order.push_back(h);
                    }
                    self.reschedule(slot);
                    if oom {
                        self.oom_kill(slot, t);
                    }
                    h
                }
                None if self.central.waiting < self.cfg.queue_capacity => {
                    let h = self.slab.alloc(t, work, 0, flags, token);
                    self.central.queue.push_back(h);
                    self.central.waiting += 1;
                    self.obs.entered(t);
                    if modelled {
                        self.central.order.push_back(h);
                    }
                    h
                }
                None => {
                    self.obs.rejected();
                    return Err(());
                }
            };
            self.reschedule_central();
            return Ok(h);
        }
        if self.endpoints.is_empty() {
            self.obs.rejected();
            return Err(());
        }
        let slot = {
            let pods = &self.pods;
            self.router.pick(&self.endpoints, |s| pods[s].as_ref().map_or(u32::MAX, |p| p.station.in_system()))
        };
        let Some(pod) = self.pods[slot].as_mut() else {
            self.obs.rejected();
            return Err(());
        };
        let st = &mut pod.station;
        if st.is_full() {
            self.obs.rejected();
            return Err(());
        }
        let h = self.slab.alloc(t, work, slot as u32, flags, token);
        st.sync(t);
        st.admit(h, &mut self.slab, slot as u32);
        st.arrivals += 1;
        if modelled {
            st.order.push_back(h);
        }
        st.retune();
        let oom = st.in_system() >= pod.oom_at;
        self.obs.entered(t);
        self.reschedule(slot);
        if oom {
            self.oom_kill(slot, t);
        }
        Ok(h)
    }

    /// Re-time a station's next own event (completion or a client's deadline).
    #[inline]
    fn reschedule(&mut self, slot: usize) {
        let timeout = self.timeout;
        let per_pod_deadlines = !self.central_mode && timeout.is_finite();
        let Some(pod) = self.pods[slot].as_mut() else {
            self.queue.set_station(slot, f64::INFINITY);
            return;
        };
        let st = &mut pod.station;
        st.next_done = st.completion_time(&self.slab);
        st.next_deadline =
            if per_pod_deadlines { front_deadline(&mut st.order, &self.slab, timeout) } else { f64::INFINITY };
        self.queue.set_station(slot, st.next_done.min(st.next_deadline));
    }

    fn reschedule_central(&mut self) {
        let t = if self.central_mode && self.timeout.is_finite() {
            front_deadline(&mut self.central.order, &self.slab, self.timeout)
        } else {
            f64::INFINITY
        };
        self.queue.set_station(0, t);
    }

    #[inline]
    fn on_station(&mut self, slot: usize, t: f64) {
        let Some(pod) = self.pods[slot].as_ref() else {
            self.queue.set_station(slot, f64::INFINITY);
            return;
        };
        if pod.station.next_done <= pod.station.next_deadline {
            self.complete(slot, t);
        } else {
            let h = self.pods[slot].as_mut().and_then(|p| p.station.order.pop_front());
            if let Some(h) = h {
                self.expire(h, t);
            }
            self.reschedule(slot);
        }
    }

    /// A service at `slot` ends at `t`.
    #[inline]
    fn complete(&mut self, slot: usize, t: f64) {
        let Some(pod) = self.pods[slot].as_mut() else { return };
        pod.station.sync(t);
        let Some(h) = pod.station.pop_done(&self.slab) else {
            self.reschedule(slot);
            return;
        };
        let r = *self.slab.get(h);
        self.obs.left(t);
        if r.flags & GONE == 0 {
            let latency = t - r.arrival + self.base_latency_s;
            self.obs.served(latency, r.work);
            if r.flags & HTTP != 0 {
                self.http_done.push((r.token, HttpOutcome::Ok { latency_ms: latency * 1000.0 }));
            }
        }
        self.slab.release(h);
        self.refill(slot);
        if let Some(pod) = self.pods[slot].as_mut() {
            pod.station.retune();
        }
        self.reschedule(slot);
        self.exit_if_drained(slot, t);
    }

    /// Give free workers at `slot` the next waiting requests (its own queue, or the central one
    /// while the pod is in the endpoints); call after a sync, retune after.
    #[inline]
    fn refill(&mut self, slot: usize) {
        let Some(pod) = self.pods[slot].as_mut() else { return };
        if !self.central_mode {
            pod.station.start_waiting(&mut self.slab, slot as u32);
            return;
        }
        if !pod.in_endpoints {
            return;
        }
        let mut took = false;
        while pod.station.has_free_worker() {
            let Some(h) = self.central.queue.pop_front() else { break };
            if !self.slab.live(h) {
                continue;
            }
            self.central.waiting -= 1;
            pod.station.start(h, &mut self.slab, slot as u32);
            took = true;
        }
        if took {
            pod.station.retune();
            self.reschedule_central();
        }
    }

    fn on_central_deadline(&mut self, t: f64) {
        if let Some(h) = self.central.order.pop_front() {
            self.expire(h, t);
        }
        self.reschedule_central();
    }

    /// The client of `h` gives up at `t`.
    fn expire(&mut self, h: Handle, t: f64) {
        if !self.slab.live(h) {
            return;
        }
        let r = self.slab.get_mut(h);
        if r.flags & GONE != 0 {
            return;
        }
        r.flags |= GONE;
        let r = *r;
        self.obs.timed_out();
        if self.cfg.finish_timed_out {
            return;
        }
        // The server drops it too.
        self.obs.left(t);
        let in_service = r.flags & IN_SERVICE != 0;
        if r.place == 0 {
            self.central.waiting -= 1;
            self.slab.release(h);
            return;
        }
        let slot = r.place as usize;
        if let Some(pod) = self.pods[slot].as_mut() {
            pod.station.sync(t);
            pod.station.forget(in_service);
        }
        self.slab.release(h);
        if in_service {
            self.refill(slot);
        }
        if let Some(pod) = self.pods[slot].as_mut() {
            pod.station.retune();
        }
        self.reschedule(slot);
        self.exit_if_drained(slot, t);
    }

    /// Everything in the pod at `slot` fails (the container died).
    fn kill_requests(&mut self, slot: usize, t: f64) {
        let Some(pod) = self.pods[slot].as_mut() else { return };
        pod.station.sync(t);
        let lost = pod.station.drain(&self.slab);
        for h in lost {
            let r = *self.slab.get(h);
            self.obs.left(t);
            if r.flags & GONE == 0 {
                self.obs.failed();
                if r.flags & HTTP != 0 {
                    self.http_done.push((r.token, HttpOutcome::Failed));
                }
            }
            self.slab.release(h);
        }
        self.reschedule(slot);
        self.reschedule_central();
    }

    fn check_memory(&mut self, slot: usize, t: f64) {
        let Some(pod) = self.pods[slot].as_ref() else { return };
        if pod.running() && pod.station.in_system() >= pod.oom_at {
            self.oom_kill(slot, t);
        }
    }

    /// The container goes over its memory limit: killed with what is in it, restarted; its
    /// stressors die with it.
    fn oom_kill(&mut self, slot: usize, t: f64) {
        self.kill_requests(slot, t);
        self.leave_endpoints(slot);
        let ready_in = self.cfg.start_delay_s + self.cfg.readiness_delay_s;
        let Some(pod) = self.pods[slot].as_mut() else { return };
        pod.restarts += 1;
        pod.last_oom_at = Some(t);
        pod.ready = Some(false);
        pod.ready_transition_at = Some(t);
        pod.epoch += 1;
        pod.shm_mib = 0.0;
        pod.stress_threads = 0;
        pod.update_oom_at(&self.cfg);
        pod.station.set_stress(t, 0);
        let (id, epoch, deleting) = (pod.id, pod.epoch, pod.deleting_at.is_some());
        self.stresses.retain(|_, s| s.pod != id);
        if !deleting {
            self.queue.schedule(t + ready_in, Scheduled::PodReady { pod: id, epoch });
        }
        self.reschedule(slot);
    }

    fn join_endpoints(&mut self, slot: usize) {
        if let Some(pod) = self.pods[slot].as_mut()
            && !pod.in_endpoints
        {
            pod.in_endpoints = true;
            self.endpoints.push(slot);
            self.endpoints.sort_unstable();
        }
    }

    fn leave_endpoints(&mut self, slot: usize) {
        if let Some(pod) = self.pods[slot].as_mut() {
            pod.in_endpoints = false;
        }
        self.endpoints.retain(|s| *s != slot);
    }

    /// A deleted pod that left the endpoints exits once it has nothing left to do.
    fn exit_if_drained(&mut self, slot: usize, t: f64) {
        if let Some(pod) = self.pods[slot].as_ref()
            && pod.deleting_at.is_some()
            && !pod.in_endpoints
            && pod.station.in_system() == 0
        {
            self.remove_pod(slot, t);
        }
    }

    fn remove_pod(&mut self, slot: usize, t: f64) {
        self.leave_endpoints(slot);
        let Some(pod) = self.pods[slot].take() else { return };
        self.cpu_of_removed += pod.cpu_seconds(t);
        self.stresses.retain(|_, s| s.pod != pod.id);
        self.samples.remove(&pod.name);
        self.queue.set_station(slot, f64::INFINITY);
    }

    // --- lifecycle -----------------------------------------------------------------------

    fn on_scheduled(&mut self, ev: Scheduled, t: f64) {
        match ev {
            Scheduled::PodRunning { pod } => {
                let ready_in = self.cfg.start_delay_s + self.cfg.readiness_delay_s;
                let Some(slot) = self.slot_of(pod) else { return };
                let Some(p) = self.pods[slot].as_mut() else { return };
                if p.phase != PodPhase::Pending {
                    return;
                }
                p.phase = PodPhase::Running;
                p.started_at = Some(t);
                p.ready = Some(false);
                p.ready_transition_at = Some(t);
                p.station.set_running(t, true);
                p.snapshot(t);
                let epoch = p.epoch;
                self.queue.schedule(t + ready_in, Scheduled::PodReady { pod, epoch });
            }
            Scheduled::PodReady { pod, epoch } => {
                let Some(slot) = self.slot_of(pod) else { return };
                let Some(p) = self.pods[slot].as_mut() else { return };
                if p.epoch != epoch || p.deleting_at.is_some() || !p.running() {
                    return;
                }
                p.ready = Some(true);
                p.ready_transition_at = Some(t);
                self.join_endpoints(slot);
                if let Some(p) = self.pods[slot].as_mut() {
                    p.station.sync(t);
                }
                self.refill(slot);
                self.reschedule(slot);
            }
            Scheduled::EndpointRemove { pod } => {
                if let Some(slot) = self.slot_of(pod) {
                    self.leave_endpoints(slot);
                    self.exit_if_drained(slot, t);
                }
            }
            Scheduled::PodKill { pod } => {
                if let Some(slot) = self.slot_of(pod) {
                    self.kill_requests(slot, t);
                    self.remove_pod(slot, t);
                }
            }
            Scheduled::StressEnd { id } => {
                if self.stresses.get(&id).is_some_and(|s| s.until.is_some_and(|u| u <= t + 1e-9)) {
                    self.stop_stress(id);
                }
            }
            Scheduled::Snapshot => {
                for p in self.pods.iter_mut().flatten().filter(|p| p.running()) {
                    p.snapshot(t);
                }
                self.snapshot_k += 1;
                self.queue.schedule(self.window_start_time(self.snapshot_k), Scheduled::Snapshot);
            }
            Scheduled::MetricsSample => {
                self.take_samples(t);
                self.sample_k += 1;
                self.queue.schedule(self.sample_time(self.sample_k), Scheduled::MetricsSample);
            }
            Scheduled::HpaSync => self.hpa_sync(t),
        }
    }

    /// Spec replicas change at `t`.
    fn set_spec(&mut self, replicas: i32, t: f64) {
        self.replica_s += f64::from(self.spec_replicas) * (t - self.replica_t);
        self.replica_t = t;
        if replicas != self.spec_replicas {
            self.scale_events += 1;
        }
        self.spec_replicas = replicas;
        self.reconcile_pods(t);
    }

    /// The ReplicaSet controller: create or delete pods to match `spec_replicas`. Deletes
    /// not-ready pods first, then the newest.
    fn reconcile_pods(&mut self, t: f64) {
        let alive: Vec<usize> =
            (1..self.pods.len()).filter(|s| self.pods[*s].as_ref().is_some_and(|p| p.deleting_at.is_none())).collect();
        let n = alive.len() as i32;
        if n < self.spec_replicas {
            for _ in n..self.spec_replicas {
                let slot = self.free_slot();
                let (name, id) = self.new_pod_name();
                self.pods[slot] = Some(SimPod::new(name, id, t, &self.cfg));
                self.queue.schedule(t + self.cfg.schedule_delay_s, Scheduled::PodRunning { pod: id });
            }
        } else if n > self.spec_replicas {
            let mut victims = alive;
            victims.sort_by(|a, b| {
                let (Some(pa), Some(pb)) = (&self.pods[*a], &self.pods[*b]) else { return std::cmp::Ordering::Equal };
                pa.in_endpoints
                    .cmp(&pb.in_endpoints)
                    .then(pb.created_at.total_cmp(&pa.created_at))
                    .then(pb.name.cmp(&pa.name))
            });
            for slot in victims.into_iter().take((n - self.spec_replicas) as usize) {
                self.delete_pod(slot, t);
            }
        }
    }

    fn delete_pod(&mut self, slot: usize, t: f64) {
        let (lag, grace) = (self.cfg.endpoint_lag_s, self.cfg.termination_grace_s);
        let Some(p) = self.pods[slot].as_mut() else { return };
        p.deleting_at = Some(t);
        let (id, serving, empty) = (p.id, p.in_endpoints, p.station.in_system() == 0);
        if !serving && empty {
            self.remove_pod(slot, t);
            return;
        }
        if serving {
            if lag > 0.0 {
                self.queue.schedule(t + lag, Scheduled::EndpointRemove { pod: id });
            } else {
                self.leave_endpoints(slot);
            }
        }
        self.queue.schedule(t + grace.max(lag), Scheduled::PodKill { pod: id });
        self.exit_if_drained(slot, t);
    }

    /// metrics-server: for each running pod with a long enough history, CPU averaged over the
    /// window (with measurement noise), the memory, and the per-pod request figures, stamped now.
    fn take_samples(&mut self, t: f64) {
        let w = self.cfg.metrics_window_s;
        let min_span = self.cfg.metrics_resolution_s.min(w);
        let central_waiting = f64::from(self.central.waiting);
        let serving = self.endpoints.len().max(1) as f64;
        let next_from = t + self.cfg.metrics_resolution_s - w;
        let mut samples = BTreeMap::new();
        for p in self.pods.iter_mut().flatten() {
            if !p.running() {
                continue;
            }
            p.snapshot(t);
            let Some(from) = p.window_start(t - w, t, min_span) else {
                p.trim(next_from);
                continue;
            };
            let Some(now) = p.snaps.back().copied() else { continue };
            let span = now.t - from.t;
            if !(span > 0.0) {
                continue;
            }
            let true_m = (now.cpu - from.cpu) / span * 1000.0;
            let cpu_m = measure_cpu(true_m, self.cfg.cpu_limit_m, self.cfg.noise, &mut self.rng_noise);
            let share = if p.in_endpoints { central_waiting / serving } else { 0.0 };
            samples.insert(
                p.name.clone(),
                PodUsage {
                    pod: p.name.clone(),
                    cpu_m: Some(cpu_m),
                    memory_mib: Some(p.memory_mib(&self.cfg)),
                    at: t,
                    window_s: span,
                    rps: Some((now.arrivals - from.arrivals) as f64 / span),
                    waiting: Some(f64::from(p.station.waiting) + share),
                    in_flight: Some(f64::from(p.station.in_system()) + share),
                },
            );
            p.trim(next_from);
        }
        self.samples = samples;
    }

    fn hpa_sync(&mut self, t: f64) {
        let Some(h) = self.hpa.as_ref() else { return };
        if (h.next_sync - t).abs() > 1e-6 {
            return;
        }
        let obs = self.hpa_observation();
        let period = self.cfg.hpa_sync_period_s;
        let Some(h) = self.hpa.as_mut() else { return };
        h.next_sync = t + period;
        self.queue.schedule(t + period, Scheduled::HpaSync);
        let out = h.runner.sync(t, &obs, ReconcileOptions::default());
        h.desired = Some(out.desired_replicas);
        h.current = Some(obs.status_replicas);
        h.conditions = out
            .conditions
            .iter()
            .map(|c| (c.kind.to_string(), if c.status { "True" } else { "False" }.to_string(), c.reason.to_string()))
            .collect();
        if out.rescale {
            self.set_spec(out.desired_replicas, t);
        }
    }

    /// What the HPA controller sees now (pods, metrics-server samples), in the HPA's units.
    pub fn hpa_observation(&self) -> hpa::Observation {
        let now = self.t;
        let pods = self.pod_infos();
        let samples: Vec<PodUsage> = self.samples.values().cloned().collect();
        hpa::Observation {
            spec_replicas: self.spec_replicas,
            status_replicas: self.status_replicas(),
            pods: pods.iter().map(|p| to_hpa_pod(p, now)).collect(),
            pod_resource_metrics: samples.iter().map(|u| to_hpa_sample(u, now)).collect(),
            pod_custom_metrics: pod_custom_metrics(&samples, now),
        }
    }

    fn status_replicas(&self) -> i32 {
        self.pods.iter().flatten().filter(|p| p.deleting_at.is_none()).count() as i32
    }

    fn live_pods(&self) -> Vec<&SimPod> {
        let mut v: Vec<&SimPod> = self.pods.iter().flatten().collect();
        v.sort_by_key(|p| p.id);
        v
    }

    pub fn deployment(&self) -> DeploymentState {
        let ready = self
            .pods
            .iter()
            .flatten()
            .filter(|p| p.running() && p.ready == Some(true) && p.deleting_at.is_none())
            .count() as i32;
        DeploymentState {
            spec_replicas: self.spec_replicas,
            status_replicas: self.status_replicas(),
            ready_replicas: ready,
            available_replicas: ready,
        }
    }

    pub fn pod_infos(&self) -> Vec<PodInfo> {
        let c = &self.cfg;
        self.live_pods()
            .into_iter()
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

    /// Each pod's figures now (true values, no noise), in creation order.
    pub fn pod_figures(&self) -> Vec<PodFigures> {
        let t = self.t;
        self.live_pods()
            .into_iter()
            .map(|p| PodFigures {
                name: p.name.clone(),
                phase: p.phase,
                cpu_seconds_total: p.cpu_seconds(t),
                memory_mib: p.memory_mib(&self.cfg),
                waiting: p.station.waiting,
                in_flight: p.station.in_system(),
                requests_total: p.station.arrivals,
            })
            .collect()
    }

    /// CPU usage of each pod now (millicores), in creation order.
    pub fn cpu_now_m(&self) -> Vec<f64> {
        self.live_pods().into_iter().map(|p| p.cpu_m()).collect()
    }

    pub fn scale(&mut self, replicas: i32) {
        let t = self.t;
        self.set_spec(replicas.max(0), t);
    }

    pub fn create_hpa(&mut self, spec: HpaSpec) {
        let controller = hpa::ControllerConfig::default();
        let mut runner = HpaRunner::new(spec, controller);
        // Keep the history when the HPA is only updated.
        if let Some(old) = self.hpa.take() {
            runner.history = old.runner.history;
        }
        let next_sync = self.t + self.cfg.hpa_sync_period_s;
        self.queue.schedule(next_sync, Scheduled::HpaSync);
        self.hpa = Some(SimHpa {
            name: self.hpa_name.clone(),
            runner,
            next_sync,
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

    fn running_slot(&self, pod: &str) -> Result<usize, String> {
        match self.slot_by_name(pod) {
            Some(s) if self.pods[s].as_ref().is_some_and(|p| p.running() && p.deleting_at.is_none()) => Ok(s),
            Some(_) => Err(format!("pod {pod} is not running")),
            None => Err(format!("pod {pod} not found")),
        }
    }

    fn apply_stress(&mut self, slot: usize) {
        let t = self.t;
        let Some(p) = self.pods[slot].as_mut() else { return };
        let id = p.id;
        let (threads, shm) =
            self.stresses.values().filter(|s| s.pod == id).fold((0u32, 0.0), |(w, m), s| (w + s.workers, m + s.mib));
        p.stress_threads = threads;
        p.shm_mib = shm;
        p.update_oom_at(&self.cfg);
        p.station.set_stress(t, threads);
        self.reschedule(slot);
        self.check_memory(slot, t);
    }

    pub fn stress_cpu(&mut self, pod: &str, workers: u32, duration_s: f64) -> Result<StressHandle, String> {
        let slot = self.running_slot(pod)?;
        let pod_id = self.pods[slot].as_ref().map_or(0, |p| p.id);
        let id = self.next_stress_id;
        self.next_stress_id += 1;
        let until = (duration_s > 0.0).then_some(self.t + duration_s);
        self.stresses.insert(id, SimStress { pod: pod_id, kind: StressKind::Cpu, workers, mib: 0.0, until });
        if let Some(u) = until {
            self.queue.schedule(u, Scheduled::StressEnd { id });
        }
        self.apply_stress(slot);
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Cpu })
    }

    pub fn shm_free_mib(&self, pod: &str) -> Result<f64, String> {
        let slot = self.running_slot(pod)?;
        let used = self.pods[slot].as_ref().map_or(0.0, |p| p.shm_mib);
        Ok((self.cfg.shm_size_mib - used).max(0.0))
    }

    pub fn stress_memory(&mut self, pod: &str, mib: u64) -> Result<StressHandle, String> {
        let free = self.shm_free_mib(pod)?;
        let slot = self.running_slot(pod)?;
        let mib_f = mib as f64;
        if mib_f > free {
            return Err(format!(
                "/dev/shm in {pod} has {free:.0} MiB free, {mib} MiB requested (try --mb {})",
                (free - 5.0).max(1.0).floor()
            ));
        }
        let pod_id = self.pods[slot].as_ref().map_or(0, |p| p.id);
        let id = self.next_stress_id;
        self.next_stress_id += 1;
        self.stresses
            .insert(id, SimStress { pod: pod_id, kind: StressKind::Memory, workers: 0, mib: mib_f, until: None });
        self.apply_stress(slot);
        Ok(StressHandle { id, pod: pod.to_string(), kind: StressKind::Memory })
    }

    pub fn stop_stress(&mut self, id: u64) -> bool {
        let Some(s) = self.stresses.remove(&id) else { return false };
        if let Some(slot) = self.slot_of(s.pod) {
            self.apply_stress(slot);
        }
        true
    }

    pub fn stop_all_stress(&mut self) -> usize {
        let ids: Vec<u64> = self.stresses.keys().copied().collect();
        for id in &ids {
            self.stop_stress(*id);
        }
        ids.len()
    }

    pub fn stress_active(&self, id: u64) -> bool {
        self.stresses.contains_key(&id)
    }

    /// Active stressors as (pod, kind, CPU workers, MiB).
    pub fn stress_list(&self) -> Vec<(String, StressKind, u32, f64)> {
        self.stresses
            .values()
            .map(|s| {
                let name = self.slot_of(s.pod).and_then(|i| self.pods[i].as_ref()).map(|p| p.name.clone());
                (name.unwrap_or_default(), s.kind, s.workers, s.mib)
            })
            .collect()
    }

    /// (CPU workers, memory MiB held) across all pods.
    pub fn stress_totals(&self) -> (u32, f64) {
        self.stresses.values().fold((0, 0.0), |(w, m), s| (w + s.workers, m + s.mib))
    }

    /// Requests waiting (in pods and in a central queue) and in the system, now.
    pub fn queue_figures(&self) -> (u32, u64) {
        let waiting: u32 = self.pods.iter().flatten().map(|p| p.station.waiting).sum::<u32>() + self.central.waiting;
        (waiting, self.obs.in_system)
    }

    /// Requests waiting in the central queue now.
    pub fn central_waiting(&self) -> u32 {
        self.central.waiting
    }

    /// Traffic since the last call: rates, counts, latency percentiles, queues now.
    pub fn take_traffic(&mut self) -> Option<Traffic> {
        let (counts, lat, secs) = self.obs.take_tick(self.t);
        if secs <= 0.0 {
            return None;
        }
        let (waiting, in_flight) = self.queue_figures();
        let serving = self.endpoints.len();
        let per_pod = |x: f64| if serving > 0 { x / serving as f64 } else { f64::NAN };
        let ms = |v: Option<f64>| v.map(|s| s * 1000.0);
        Some(Traffic {
            rps: counts.arrived as f64 / secs,
            served_rps: counts.served as f64 / secs,
            errors_per_s: (counts.rejected + counts.timed_out + counts.failed) as f64 / secs,
            p50_ms: ms(lat.p50),
            p95_ms: ms(lat.p95),
            p99_ms: ms(lat.p99),
            mean_ms: ms(lat.mean),
            in_flight: in_flight as f64,
            waiting: f64::from(waiting),
            in_flight_per_pod: per_pod(in_flight as f64),
            waiting_per_pod: per_pod(f64::from(waiting)),
            counts: Some(RequestCounts {
                arrived: counts.arrived,
                served: counts.served,
                rejected: counts.rejected,
                timed_out: counts.timed_out,
                failed: counts.failed,
            }),
        })
    }

    /// The run's totals so far.
    pub fn totals(&self) -> RunTotals {
        let t = self.t;
        let cpu: f64 = self.pods.iter().flatten().map(|p| p.cpu_seconds(t)).sum::<f64>() + self.cpu_of_removed;
        // Initial pods ran idle before the start.
        let before: f64 = self.initial_cpu();
        RunTotals {
            requests: self.obs.run.counts,
            latency_s: self.obs.run.summary(),
            cpu_core_seconds: cpu - before,
            replica_seconds: self.replica_s + f64::from(self.spec_replicas) * (t - self.replica_t),
            scale_events: self.scale_events,
            mean_in_system: self.obs.mean_in_system(t),
            served_work_core_seconds: self.obs.run.work_s,
            seconds: t - self.start,
        }
    }

    fn initial_cpu(&self) -> f64 {
        let idle = (self.cfg.base_cpu_m / 1000.0).min(self.cfg.cpu_limit_m / 1000.0);
        f64::from(self.cfg.initial_replicas.max(0)) * idle * 3600.0
    }

    /// Served requests that took at most `le_s`, since the start (for the exporter's histogram).
    pub fn served_le(&self, le_s: f64) -> u64 {
        self.obs.run.count_le(le_s)
    }

    /// Sum of the served requests' latencies (seconds).
    pub fn served_latency_sum_s(&self) -> f64 {
        self.obs.run.latency_sum_s()
    }

    /// A real HTTP request arrives now: it enters the model like any other (its work from its
    /// own random stream, so modelled traffic is unchanged by it). `Ok(token)`: the outcome
    /// comes later through [`SimModel::take_http_done`].
    pub fn http_request(&mut self) -> Result<u64, HttpOutcome> {
        let token = self.next_token;
        self.next_token += 1;
        let work = self.law.sample(&mut self.rng_http);
        let t = self.t;
        match self.admit(t, work, HTTP, token) {
            Ok(_) => Ok(token),
            Err(()) => Err(HttpOutcome::Unavailable),
        }
    }

    /// HTTP requests finished since the last call.
    pub fn take_http_done(&mut self) -> Vec<(u64, HttpOutcome)> {
        std::mem::take(&mut self.http_done)
    }

    /// Requests alive in the model (in queues or in service).
    pub fn requests_in_system(&self) -> usize {
        self.slab.len()
    }
}

/// Each pods metric's per-pod samples, keyed by its HPA metric name.
fn pod_custom_metrics(samples: &[PodUsage], now: f64) -> BTreeMap<String, Vec<hpa::PodValueSample>> {
    let mut out = BTreeMap::new();
    for figure in PodFigure::ALL {
        let v: Vec<hpa::PodValueSample> = samples
            .iter()
            .filter_map(|u| {
                let x = match figure {
                    PodFigure::Rps => u.rps,
                    PodFigure::Waiting => u.waiting,
                    PodFigure::InFlight => u.in_flight,
                }?;
                Some(hpa::PodValueSample {
                    pod: u.pod.clone(),
                    value_milli: (x * 1000.0).round() as i64,
                    timestamp_age_s: now - u.at,
                    window_s: u.window_s,
                })
            })
            .collect();
        if !v.is_empty() {
            out.insert(figure.metric_name().to_string(), v);
        }
    }
    out
}

/// The pods metrics of a set of per-pod samples, for an HPA observation.
pub fn custom_metrics_of(samples: &[PodUsage], now: f64) -> BTreeMap<String, Vec<hpa::PodValueSample>> {
    pod_custom_metrics(samples, now)
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
    use crate::config::{ServiceConfig, ServiceDistribution};
    use crate::engine::hpa::MetricSpec;

    fn template() -> HpaSpec {
        HpaSpec {
            min_replicas: 1,
            max_replicas: 10,
            metrics: vec![MetricSpec::resource_utilization("cpu", 60), MetricSpec::resource_utilization("memory", 80)],
            behavior: Some(crate::config::BehaviorConfig::default().to_hpa()),
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
        assert_eq!(m.totals().cpu_core_seconds, 0.0, "nothing used since the start");
    }

    #[test]
    fn load_scales_up_through_the_hpa_and_back_down() {
        let cfg = SimConfig { noise: 0.0, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        // 200 req/s × 2 ms = 0.4 cores of work: 3 pods at 133 m each, 222 % of the 60 m target.
        m.set_plan(Some(LoadPlan::constant(200.0)));
        m.advance_to(300.0);
        let up = m.deployment().spec_replicas;
        assert!(up >= 6, "scaled to {up}");
        m.set_plan(Some(LoadPlan::constant(5.0)));
        m.advance_to(1200.0);
        assert!(m.deployment().spec_replicas < up);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = |seed| {
            let cfg = SimConfig { seed, ..SimConfig::default() };
            let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
            m.set_plan(Some(LoadPlan::constant(120.0)));
            m.advance_to(200.0);
            let cpu: Vec<u64> = m.pod_metrics().iter().map(|u| u.cpu_m.unwrap_or(0.0).to_bits()).collect();
            (m.deployment().spec_replicas, cpu, m.totals().requests)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1).1, run(2).1);
    }

    #[test]
    fn cpu_stress_pegs_the_limit_and_memory_stress_is_removed() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        let pod = m.pod_figures()[0].name.clone();
        let h = m.stress_cpu(&pod, 2, 60.0).expect("stress");
        m.advance_to(10.0);
        assert_eq!(m.cpu_now_m()[0], cfg.cpu_limit_m);
        m.advance_to(46.0);
        let sample = m.pod_metrics().into_iter().find(|u| u.pod == pod).expect("sample");
        assert_eq!(sample.cpu_m, Some(cfg.cpu_limit_m), "a stressed pod reads its limit");
        m.advance_to(61.0);
        assert!(!m.stress_active(h.id), "expired at its deadline");
        assert!(m.stress_memory(&pod, 100).is_err(), "more than /dev/shm");
        let h = m.stress_memory(&pod, 55).expect("fits");
        m.advance_to(70.0);
        assert!((m.pod_figures()[0].memory_mib - (cfg.base_memory_mib + 55.0)).abs() < 1.0);
        assert!(m.stop_stress(h.id));
        m.advance_to(72.0);
        assert!(m.pod_figures()[0].memory_mib < cfg.base_memory_mib + 1.0);
    }

    #[test]
    fn stress_slows_requests_by_sharing_the_cpu() {
        // One pod, one worker, a full core, 10 ms requests: alone 10 ms; beside a busy loop the
        // two threads share the core and a request takes 20 ms.
        let cfg = SimConfig {
            noise: 0.0,
            hpa_present: false,
            initial_replicas: 1,
            cpu_limit_m: 1000.0,
            concurrency: 1,
            base_latency_ms: 0.0,
            arrivals: crate::config::ArrivalKind::Uniform,
            service: ServiceConfig {
                distribution: ServiceDistribution::Deterministic,
                mean_ms: 10.0,
                ..ServiceConfig::default()
            },
            ..SimConfig::default()
        };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        m.set_plan(Some(LoadPlan::constant(10.0)));
        m.advance_to(10.0);
        let calm = m.take_traffic().expect("traffic");
        assert!((calm.mean_ms.expect("mean") - 10.0).abs() < 1e-6, "{calm:?}");
        let pod = m.pod_figures()[0].name.clone();
        m.stress_cpu(&pod, 1, 0.0).expect("stress");
        m.advance_to(20.0);
        let hot = m.take_traffic().expect("traffic");
        assert!((hot.mean_ms.expect("mean") - 20.0).abs() < 1e-6, "{hot:?}");
    }

    #[test]
    fn over_the_memory_limit_the_container_is_oom_killed() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let cfg = SimConfig { memory_limit_mib: cfg.base_memory_mib + 30.0, ..cfg };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        let pod = m.pod_figures()[0].name.clone();
        assert_eq!(m.pod_infos()[0].last_oom_at, None);
        m.advance_to(2.0);
        let h = m.stress_memory(&pod, 40).expect("fits in /dev/shm");
        m.advance_to(5.0);
        let info = m.pod_infos().into_iter().find(|p| p.name == pod).expect("pod");
        assert_eq!(info.restarts, 1);
        assert!(info.last_oom_at.is_some_and(|t| t > 0.0 && t <= 5.0), "{info:?}");
        assert!(!m.stress_active(h.id), "the stressor died with the container");
        assert_eq!(m.deployment().ready_replicas, 2, "not ready while it restarts");
        m.advance_to(16.0);
        assert_eq!(m.deployment().ready_replicas, 3, "ready again after start + readiness");
    }

    #[test]
    fn saturation_queues_then_turns_requests_away() {
        let cfg = SimConfig { noise: 0.0, hpa_present: false, ..SimConfig::default() };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        m.set_plan(Some(LoadPlan::constant(30.0)));
        m.advance_to(30.0);
        let calm = m.take_traffic().expect("traffic");
        assert!(calm.errors_per_s < 1e-9 && calm.p99_ms.expect("p99") < 200.0, "{calm:?}");
        // 3 pods × 100 req/s capacity (0.2 cores / 2 ms); 600 req/s saturates them: throughput is
        // the capacity, the queues fill and the rest is turned away.
        m.set_plan(Some(LoadPlan::constant(600.0)));
        m.advance_to(60.0);
        let _ = m.take_traffic();
        m.advance_to(120.0);
        let hot = m.take_traffic().expect("traffic");
        assert!((hot.served_rps - 300.0).abs() < 10.0, "{hot:?}");
        assert!((hot.errors_per_s - 300.0).abs() < 15.0, "{hot:?}");
        assert!(hot.p50_ms.expect("p50") > 500.0, "{hot:?}");
        assert!(hot.waiting > 250.0, "the queues are nearly full: {hot:?}");
        let c = hot.counts.expect("counts");
        assert!(c.rejected > 0 && c.timed_out == 0, "{c:?}");
    }

    #[test]
    fn a_deleted_pod_drains_and_what_is_left_after_the_grace_period_fails() {
        // Slow requests (5 s each at one core) on one worker: scaling 2 -> 1 leaves the deleted
        // pod's queue to drain; the grace period ends first and the rest fails.
        let cfg = SimConfig {
            noise: 0.0,
            hpa_present: false,
            initial_replicas: 2,
            cpu_limit_m: 1000.0,
            concurrency: 1,
            timeout_s: 0.0,
            termination_grace_s: 7.0,
            arrivals: crate::config::ArrivalKind::Uniform,
            routing: Routing::RoundRobin,
            service: ServiceConfig {
                distribution: ServiceDistribution::Deterministic,
                mean_ms: 5000.0,
                ..ServiceConfig::default()
            },
            ..SimConfig::default()
        };
        let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", template());
        m.set_plan(Some(LoadPlan::single(crate::engine::load::Schedule::Constant { rps: 4.0, duration_s: 1.0 }, 0.0)));
        m.advance_to(1.0);
        assert_eq!(m.totals().requests.arrived, 4);
        m.scale(1);
        m.advance_to(30.0);
        let r = m.totals().requests;
        // The deleted pod had two: one finished at 5 s, the other was cut at 8 s (1 + 7).
        assert_eq!((r.served, r.failed), (3, 1), "{r:?}");
        assert_eq!(m.pod_figures().len(), 1);
    }
}
