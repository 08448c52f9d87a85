//! The simulated cluster against queueing theory: closed forms, not its own earlier output.
//! Each case runs at a fixed seed with enough requests that the estimate's standard error is a
//! third of the tolerance or less (long-run variances of M/M/1 waiting times grow like
//! 1/(1-rho)^4, which is what sets the counts below).
//!
//! - M/M/1 mean sojourn 1/(mu - lambda) at rho 0.5, 0.8, 0.9 (±3 %);
//! - M/M/4 mean wait by Erlang C at rho 0.5, 0.8, 0.95 with `central_queue` (±3 %);
//! - M/D/1 and M/G/1 (lognormal, cv 2) mean wait by Pollaczek-Khinchine (±3 %);
//! - M/M/1/K blocking probability (±3 %);
//! - Little's law L = lambda W within 1 %, on the default webapp (processor sharing, random
//!   routing);
//! - at zero load the latency p99 is the service law's p99; under overload throughput is the
//!   capacity and the rest is turned away or times out; half a core doubles a worker's time;
//! - a saturated pod reads at least 99 % of its limit, and an HPA at 90 % scales out.

use scaletui::config::{ArrivalKind, Routing, ServiceConfig, ServiceDistribution, SimConfig};
use scaletui::engine::cluster::sim::{RunTotals, SimModel};
use scaletui::engine::hpa::{HpaSpec, MetricSpec};
use scaletui::engine::scenario::LoadPlan;

fn no_hpa() -> HpaSpec {
    HpaSpec { min_replicas: 1, max_replicas: 10, metrics: vec![], behavior: None }
}

/// `pods` pods of one full core each, `workers` workers per pod, no timeout, unbounded queues,
/// no network time, no idle CPU: a plain queueing station.
fn station(pods: i32, workers: u32, service: ServiceConfig) -> SimConfig {
    SimConfig {
        seed: 7,
        hpa_present: false,
        initial_replicas: pods,
        cpu_limit_m: 1000.0 * f64::from(workers),
        cpu_request_m: 1000.0 * f64::from(workers),
        concurrency: workers,
        queue_capacity: u32::MAX,
        timeout_s: 0.0,
        base_latency_ms: 0.0,
        base_cpu_m: 0.0,
        memory_per_inflight_mib: 0.0,
        service,
        ..SimConfig::default()
    }
}

fn law(distribution: ServiceDistribution, mean_ms: f64, cv: f64) -> ServiceConfig {
    ServiceConfig { distribution, mean_ms, cv, ..ServiceConfig::default() }
}

/// Run `rps` of Poisson arrivals until about `requests` have arrived.
fn run(cfg: &SimConfig, rps: f64, requests: f64) -> RunTotals {
    let mut m = SimModel::new(cfg, 0.0, "webapp", "webapp-hpa", no_hpa());
    m.set_plan(Some(LoadPlan::constant(rps)));
    m.advance_to(requests / rps);
    m.totals()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    let err = (got - want).abs() / want;
    println!("{what}: {got:.6} vs theory {want:.6} ({:+.2} %)", (got - want) / want * 100.0);
    assert!(err <= tol, "{what}: {got} vs {want}: {:.2} % off (tolerance {:.1} %)", err * 100.0, tol * 100.0);
}

/// Mean wait in the queue = mean sojourn − mean service of the same requests.
fn mean_wait(t: &RunTotals, work_mean: f64) -> f64 {
    t.latency_s.mean.expect("served") - work_mean
}

#[test]
fn mm1_mean_sojourn_is_one_over_mu_minus_lambda() {
    // mu = 1000/s (1 ms of work at one core).
    let cfg = station(1, 1, law(ServiceDistribution::Exponential, 1.0, 1.0));
    for (rho, n) in [(0.5, 400_000.0), (0.8, 2_000_000.0), (0.9, 6_000_000.0)] {
        let lambda = rho * 1000.0;
        let t = run(&cfg, lambda, n);
        close(
            &format!("M/M/1 rho {rho} mean sojourn (s)"),
            t.latency_s.mean.expect("served"),
            1.0 / (1000.0 - lambda),
            0.03,
        );
    }
}

/// Erlang C: the probability that an arrival waits in M/M/c with offered load a = lambda/mu.
fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c) / (1.0 - rho);
    last / (sum + last)
}

#[test]
fn mmc_mean_wait_is_erlang_c_with_a_central_queue() {
    let c = 4;
    let cfg =
        SimConfig { routing: Routing::CentralQueue, ..station(c, 1, law(ServiceDistribution::Exponential, 1.0, 1.0)) };
    for (rho, n) in [(0.5, 3_000_000.0), (0.8, 4_000_000.0), (0.95, 24_000_000.0)] {
        let lambda = rho * 4000.0;
        let t = run(&cfg, lambda, n);
        let wq = erlang_c(c as u32, lambda / 1000.0) / (4000.0 - lambda);
        let work = t.served_work_mean_s();
        close(&format!("M/M/4 rho {rho} mean wait (s)"), mean_wait(&t, work), wq, 0.03);
    }
}

#[test]
fn md1_and_mg1_mean_wait_follow_pollaczek_khinchine() {
    // W_q = lambda E[S^2] / (2 (1 - rho)), E[S^2] = (1 + cv^2) E[S]^2.
    for (dist, cv, rho, n) in [
        (ServiceDistribution::Deterministic, 0.0, 0.8, 2_000_000.0),
        (ServiceDistribution::Lognormal, 2.0, 0.5, 16_000_000.0),
    ] {
        let cfg = station(1, 1, law(dist, 1.0, if cv > 0.0 { cv } else { 1.0 }));
        let lambda = rho * 1000.0;
        let t = run(&cfg, lambda, n);
        let s = 0.001;
        let wq = lambda * (1.0 + cv * cv) * s * s / (2.0 * (1.0 - rho));
        close(
            &format!("M/G/1 {dist:?} cv {cv} rho {rho} mean wait (s)"),
            mean_wait(&t, t.served_work_mean_s()),
            wq,
            0.03,
        );
    }
}

#[test]
fn mm1k_blocking_probability() {
    // K = 5 in the system: one in service, four waiting.
    let k = 5;
    let cfg = SimConfig { queue_capacity: 4, ..station(1, 1, law(ServiceDistribution::Exponential, 1.0, 1.0)) };
    for rho in [0.5, 0.9, 1.2] {
        let t = run(&cfg, rho * 1000.0, 2_000_000.0);
        let blocked = t.requests.rejected as f64 / t.requests.arrived as f64;
        let want = (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1));
        close(&format!("M/M/1/{k} rho {rho} blocking"), blocked, want, 0.03);
    }
}

#[test]
fn littles_law_holds_on_the_default_webapp() {
    // Processor sharing under a 200m limit, 8 workers and a queue per pod, random routing over
    // three pods, lognormal work: L = lambda W whatever the discipline.
    let cfg = SimConfig { hpa_present: false, base_latency_ms: 0.0, seed: 3, ..SimConfig::default() };
    let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", no_hpa());
    m.set_plan(Some(LoadPlan::constant(240.0)));
    m.advance_to(20_000.0);
    let t = m.totals();
    assert_eq!(t.requests.rejected + t.requests.timed_out + t.requests.failed, 0, "{t:?}");
    let lambda = t.requests.arrived as f64 / t.seconds;
    let w = t.latency_s.mean.expect("served");
    close("Little's law: time-average in system vs lambda W", t.mean_in_system, lambda * w, 0.01);
    assert!(t.mean_in_system > 1.0, "a real queue: L = {}", t.mean_in_system);
}

#[test]
fn at_zero_load_p99_is_the_service_laws_p99() {
    for (dist, cv) in [(ServiceDistribution::Lognormal, 1.5), (ServiceDistribution::Exponential, 1.0)] {
        let service = law(dist, 20.0, cv);
        let want = scaletui::engine::cluster::sim::workload::ServiceLaw::from_config(&service)
            .expect("law")
            .quantile(0.99)
            .expect("closed form");
        // One request every 100 s on average: a 20 ms request practically never meets another.
        let t = run(&station(1, 1, service), 0.01, 200_000.0);
        close(&format!("{dist:?} p99 at zero load (s)"), t.latency_s.p99.expect("p99"), want, 0.03);
    }
}

#[test]
fn under_overload_throughput_is_the_capacity() {
    // Two pods of one worker at one core, 10 ms each: 200 requests/s at most. 500/s offered,
    // 50 waiting per pod at most, clients give up after 2 s.
    let cfg = SimConfig {
        queue_capacity: 50,
        timeout_s: 2.0,
        ..station(2, 1, law(ServiceDistribution::Exponential, 10.0, 1.0))
    };
    let secs = 2_000.0;
    let mut m = SimModel::new(&cfg, 0.0, "webapp", "webapp-hpa", no_hpa());
    m.set_plan(Some(LoadPlan::constant(500.0)));
    m.advance_to(secs);
    let t = m.totals();
    let r = t.requests;
    let in_system = m.requests_in_system() as u64;
    assert_eq!(r.arrived, r.served + r.rejected + r.timed_out + r.failed + in_system, "every request accounted for");
    close("throughput under overload (req/s)", r.served as f64 / secs, 200.0, 0.01);
    close("turned away or timed out (req/s)", (r.rejected + r.timed_out) as f64 / secs, 300.0, 0.01);
    // Unbounded queues, clients that give up after 5 s, a server that drops what they gave up:
    // the queue settles at 5 s of work and the server still does its capacity.
    let cfg = SimConfig { queue_capacity: u32::MAX, timeout_s: 5.0, finish_timed_out: false, ..cfg };
    let t = run(&cfg, 500.0, 500.0 * secs);
    close("throughput with unbounded queues (req/s)", t.requests.served as f64 / secs, 200.0, 0.01);
    close("timed out (req/s)", t.requests.timed_out as f64 / secs, 300.0, 0.01);
    // A server that finishes what its clients gave up on keeps both cores busy on answers nobody
    // reads: the queue grows without end and good throughput collapses.
    let cfg = SimConfig { finish_timed_out: true, ..cfg };
    let t = run(&cfg, 500.0, 500.0 * secs);
    close("CPU busy (cores)", t.cpu_core_seconds / secs, 2.0, 0.01);
    assert!(t.requests.served < secs as u64, "goodput collapses: {:?}", t.requests);
}

#[test]
fn half_a_core_doubles_a_single_workers_service_time() {
    let mut cfg = station(1, 1, law(ServiceDistribution::Deterministic, 10.0, 1.0));
    cfg.arrivals = ArrivalKind::Uniform;
    let full = run(&cfg, 1.0, 100.0);
    cfg.cpu_limit_m = 500.0;
    let half = run(&cfg, 1.0, 100.0);
    close("one core: sojourn (s)", full.latency_s.mean.expect("served"), 0.010, 0.001);
    close("half a core: sojourn (s)", half.latency_s.mean.expect("served"), 0.020, 0.001);
    // The pod used the same CPU for the same work.
    close("CPU for the same work (core-s)", half.cpu_core_seconds, full.cpu_core_seconds, 0.001);
}

#[test]
fn a_saturated_pod_reads_its_limit_and_hpa_90_scales_out() {
    // Inference-like pods: request = limit = one core, one worker, 200 ms per request (5/s per
    // pod). 20/s is twice what two pods can do; measurement noise is on (the default).
    let cfg = SimConfig {
        seed: 11,
        hpa_present: false,
        initial_replicas: 2,
        cpu_request_m: 1000.0,
        cpu_limit_m: 1000.0,
        concurrency: 1,
        queue_capacity: 100_000,
        timeout_s: 60.0,
        service: law(ServiceDistribution::Lognormal, 200.0, 0.3),
        ..SimConfig::default()
    };
    assert!(cfg.noise > 0.0);
    let mut m = SimModel::new(&cfg, 0.0, "ml-app", "ml-app-hpa", no_hpa());
    m.set_plan(Some(LoadPlan::constant(20.0)));
    let mut readings = Vec::new();
    for k in 3..20 {
        m.advance_to(f64::from(k) * 15.0);
        readings.extend(m.pod_metrics().iter().map(|u| u.cpu_m.expect("cpu")));
    }
    assert_eq!(readings.len(), 34);
    for r in &readings {
        assert!(*r >= 0.99 * cfg.cpu_limit_m, "a saturated pod read {r} m of {} m", cfg.cpu_limit_m);
    }
    // An HPA on CPU at 90 % of the request sees 100 % and scales out.
    m.create_hpa(HpaSpec {
        min_replicas: 1,
        max_replicas: 6,
        metrics: vec![MetricSpec::resource_utilization("cpu", 90)],
        behavior: Some(scaletui::config::BehaviorConfig::default().to_hpa()),
    });
    m.advance_to(400.0);
    let d = m.deployment();
    assert!(d.spec_replicas >= 4, "HPA at 90 % scaled out from 2: {d:?}");
}
