//! The features learned policies see: seed 003's state, or any of the CSV's figures of a tick.

use crate::engine::advisor::external::Observation;

/// Seed 003's state: CPU utilisation / 100, arrival rate / max rate, replicas / max replicas
/// (each clipped to [0, 1]) and the rate's change over two ticks / max rate (clipped to [−1, 1]).
pub const SEED003_FEATURES: [&str; 4] = ["cpu", "rate", "replicas", "rate_trend"];

/// The figures an observation list may name: the CSV's columns for the tick (and a few ratios).
pub const FIGURES: &[&str] = &[
    "elapsed_s",
    "current_replicas",
    "ready_replicas",
    "min_replicas",
    "max_replicas",
    "cpu_millicores",
    "memory_mebibytes",
    "cpu_request_millicores",
    "memory_request_mebibytes",
    "cpu_utilization",
    "memory_utilization",
    "pod_count",
    "hpa_sim_desired",
    "hpa_sim_cpu_ratio",
    "hpa_sim_mem_ratio",
    "rps",
    "served_rps",
    "errors_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_mean_ms",
    "in_flight",
    "waiting",
    "arrived",
    "served",
    "rejected",
    "timed_out",
    "failed",
];

/// One figure of an observation by its CSV name (`None`: no value this tick, or no such name).
pub fn figure(o: &Observation, name: &str) -> Option<f64> {
    let i = |v: Option<i32>| v.map(f64::from);
    let u = |v: Option<u64>| v.map(|x| x as f64);
    match name {
        "elapsed_s" => Some(o.elapsed_s),
        "current_replicas" => i(o.current_replicas),
        "ready_replicas" => i(o.ready_replicas),
        "min_replicas" => Some(f64::from(o.min_replicas)),
        "max_replicas" => Some(f64::from(o.max_replicas)),
        "cpu_millicores" => o.cpu_millicores,
        "memory_mebibytes" => o.memory_mebibytes,
        "cpu_request_millicores" => o.cpu_request_millicores,
        "memory_request_mebibytes" => o.memory_request_mebibytes,
        "cpu_utilization" => o.cpu_utilization,
        "memory_utilization" => o.memory_utilization,
        "pod_count" => o.pod_count.map(f64::from),
        "hpa_sim_desired" => i(o.baseline),
        "hpa_sim_cpu_ratio" => o.hpa_sim_cpu_ratio,
        "hpa_sim_mem_ratio" => o.hpa_sim_mem_ratio,
        "rps" => o.rps,
        "served_rps" => o.served_rps,
        "errors_per_s" => o.errors_per_s,
        "latency_p50_ms" => o.latency_p50_ms,
        "latency_p95_ms" => o.latency_p95_ms,
        "latency_p99_ms" => o.latency_p99_ms,
        "latency_mean_ms" => o.latency_mean_ms,
        "in_flight" => o.in_flight,
        "waiting" => o.waiting,
        "arrived" => u(o.arrived),
        "served" => u(o.served),
        "rejected" => u(o.rejected),
        "timed_out" => u(o.timed_out),
        "failed" => u(o.failed),
        _ => None,
    }
}

/// The observation vector of `o`: seed 003's features when `observe` is empty, else the listed
/// figures (`rates`: the arrival rates seen so far, newest = `o`'s; `max_rps` divides seed
/// 003's rate features).
pub fn features(observe: &[String], max_rps: f64, o: &Observation, rates: &[f64]) -> Vec<f32> {
    if observe.is_empty() {
        let max_n = f64::from(o.max_replicas.max(1));
        let rate = o.rps.unwrap_or(0.0);
        let before = if rates.len() >= 3 { rates[rates.len() - 3] } else { rates.first().copied().unwrap_or(rate) };
        [
            (o.cpu_utilization.unwrap_or(0.0) / 100.0).clamp(0.0, 1.0),
            (rate / max_rps).clamp(0.0, 1.0),
            (f64::from(o.current_replicas.unwrap_or(0)) / max_n).clamp(0.0, 1.0),
            ((rate - before) / max_rps).clamp(-1.0, 1.0),
        ]
        .iter()
        .map(|x| *x as f32)
        .collect()
    } else {
        observe.iter().map(|n| figure(o, n).filter(|x| x.is_finite()).unwrap_or(0.0) as f32).collect()
    }
}
