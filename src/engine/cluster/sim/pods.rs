//! A simulated pod: its lifecycle (pending → running → ready → draining), requests and limits,
//! stress, OOM kills, and the station that serves its requests.

use std::collections::VecDeque;

use super::station::Station;
use crate::config::SimConfig;
use crate::engine::types::PodPhase;

/// The pod's CPU counter and request count at a moment (metrics windows are differences of two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    pub t: f64,
    pub cpu: f64,
    pub arrivals: u64,
}

#[derive(Debug, Clone)]
pub struct SimPod {
    pub name: String,
    /// Unique over the run (slots are reused, ids are not).
    pub id: u64,
    pub created_at: f64,
    pub phase: PodPhase,
    pub started_at: Option<f64>,
    pub ready: Option<bool>,
    pub ready_transition_at: Option<f64>,
    pub deleting_at: Option<f64>,
    pub restarts: u32,
    pub last_oom_at: Option<f64>,
    /// Bumped at each container restart: readiness events of an earlier container are void.
    pub epoch: u32,
    /// In the Service's endpoints (receives new requests).
    pub in_endpoints: bool,
    pub station: Station,
    /// MiB held in /dev/shm by memory stressors.
    pub shm_mib: f64,
    /// Busy-loop threads of CPU stressors.
    pub stress_threads: u32,
    pub snaps: VecDeque<Snap>,
    /// Requests in the pod at which its memory goes over the limit (see [`SimPod::update_oom_at`]).
    pub oom_at: u32,
}

impl SimPod {
    pub fn new(name: String, id: u64, created_at: f64, cfg: &SimConfig) -> Self {
        let station = Station::new(
            cfg.cpu_limit_m / 1000.0,
            cfg.concurrency,
            match cfg.routing {
                crate::config::Routing::CentralQueue => 0,
                _ => cfg.queue_capacity,
            },
            cfg.base_cpu_m / 1000.0,
            created_at,
        );
        Self {
            name,
            id,
            created_at,
            phase: PodPhase::Pending,
            started_at: None,
            ready: None,
            ready_transition_at: None,
            deleting_at: None,
            restarts: 0,
            last_oom_at: None,
            epoch: 0,
            in_endpoints: false,
            station,
            shm_mib: 0.0,
            stress_threads: 0,
            snaps: VecDeque::new(),
            oom_at: u32::MAX,
        }
        .with_oom_at(cfg)
    }

    fn with_oom_at(mut self, cfg: &SimConfig) -> Self {
        self.update_oom_at(cfg);
        self
    }

    /// The smallest number of requests in the pod for which [`SimPod::memory_mib`] exceeds the
    /// limit (so admitting a request checks one integer).
    pub fn update_oom_at(&mut self, cfg: &SimConfig) {
        let room = cfg.memory_limit_mib - cfg.base_memory_mib - self.shm_mib.min(cfg.shm_size_mib);
        self.oom_at = if room < 0.0 {
            0
        } else if cfg.memory_per_inflight_mib <= 0.0 {
            u32::MAX
        } else {
            let n = (room / cfg.memory_per_inflight_mib).floor() + 1.0;
            if n >= f64::from(u32::MAX) { u32::MAX } else { n as u32 }
        };
    }

    pub fn running(&self) -> bool {
        self.phase == PodPhase::Running
    }

    /// Working-set memory now: the base, what the requests in it hold, and /dev/shm.
    pub fn memory_mib(&self, cfg: &SimConfig) -> f64 {
        if !self.running() {
            return 0.0;
        }
        cfg.base_memory_mib
            + cfg.memory_per_inflight_mib * f64::from(self.station.in_system())
            + self.shm_mib.min(cfg.shm_size_mib)
    }

    /// cAdvisor's `container_cpu_usage_seconds_total` at `t`.
    pub fn cpu_seconds(&self, t: f64) -> f64 {
        self.station.cpu_at(t)
    }

    /// CPU usage now, millicores.
    pub fn cpu_m(&self) -> f64 {
        self.station.usage() * 1000.0
    }

    pub fn snapshot(&mut self, t: f64) {
        let s = Snap { t, cpu: self.station.cpu_at(t), arrivals: self.station.arrivals };
        if self.snaps.back().is_none_or(|b| b.t < t) {
            self.snaps.push_back(s);
        }
    }

    /// The snapshot a metrics window starting at `from` begins with: the one taken then, or —
    /// for a pod that started later — its first, if that leaves at least `min_span` seconds.
    pub fn window_start(&self, from: f64, to: f64, min_span: f64) -> Option<Snap> {
        let exact = self.snaps.iter().find(|s| (s.t - from).abs() < 1e-6);
        match exact {
            Some(s) => Some(*s),
            None => self.snaps.front().filter(|s| s.t > from && to - s.t + 1e-9 >= min_span).copied(),
        }
    }

    /// Drop snapshots older than `keep_from` (the next window's start).
    pub fn trim(&mut self, keep_from: f64) {
        while self.snaps.len() > 1 && self.snaps.front().is_some_and(|s| s.t < keep_from - 1e-6) {
            self.snaps.pop_front();
        }
    }
}
