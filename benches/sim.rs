//! The discrete-event simulator's speed and memory (a bench binary that prints figures; no
//! assertions).
//!
//!   cargo bench --bench sim
//!
//! 1. The model alone (no control loop): 24 h of the sine-day load (about 8.4 million requests)
//!    with the default pods and the HPA scaling them; simulated requests per wall second.
//! 2. The same for other shapes of the traffic path: one M/M/1 pod near saturation, a central
//!    queue over 8 pods (M/M/8), least-outstanding routing over 10 pods with processor sharing.
//! 3. Cost per request as the run grows (1, 2, 4 days: linear) and resident memory after 1 and
//!    after 7 days (flat: nothing is kept per finished request).

use std::time::Instant;

use scaletui::config::{Config, Routing, ServiceConfig, ServiceDistribution, SimConfig};
use scaletui::engine::cluster::sim::SimModel;
use scaletui::engine::experiment::hpa_spec;
use scaletui::engine::load::Schedule;
use scaletui::engine::scenario::LoadPlan;

mod support;
use support::rss_kib;

fn sine_day(days: f64) -> LoadPlan {
    LoadPlan::single(
        Schedule::Sine { min_rps: 15.0, max_rps: 180.0, period_s: 86_400.0, duration_s: days * 86_400.0 },
        15.0,
    )
}

/// Run `plan` on a model of `sim` for `secs`; (wall seconds, requests arrived).
fn run(sim: &SimConfig, plan: LoadPlan, secs: f64) -> (f64, u64) {
    let cfg = Config::default();
    let mut m = SimModel::new(sim, 0.0, "webapp", "webapp-hpa", hpa_spec(&cfg));
    m.set_plan(Some(plan));
    let t0 = Instant::now();
    // Advance in 15 s steps as a control loop would (the traffic path is event-driven either way).
    let mut t = 0.0;
    while t < secs {
        t += 15.0;
        m.advance_to(t);
        let _ = m.take_traffic();
    }
    let wall = t0.elapsed().as_secs_f64();
    (wall, m.totals().requests.arrived)
}

fn report(label: &str, (wall, n): (f64, u64)) {
    println!("{label}: {n} requests in {wall:.3} s = {:.2} M simulated requests/s", n as f64 / wall / 1e6);
}

fn exp(mean_ms: f64) -> ServiceConfig {
    ServiceConfig { distribution: ServiceDistribution::Exponential, mean_ms, ..ServiceConfig::default() }
}

fn main() {
    let default = SimConfig::default();
    report("24 h sine-day, default pods with the HPA", run(&default, sine_day(1.0), 86_400.0));
    let mm1 = SimConfig {
        hpa_present: false,
        initial_replicas: 1,
        cpu_limit_m: 1000.0,
        concurrency: 1,
        queue_capacity: u32::MAX,
        timeout_s: 0.0,
        service: exp(1.0),
        ..default.clone()
    };
    report("M/M/1 at rho 0.9", run(&mm1, LoadPlan::constant(900.0), 10_000.0));
    let mmc = SimConfig { initial_replicas: 8, routing: Routing::CentralQueue, ..mm1.clone() };
    report("central queue over 8 pods at rho 0.9", run(&mmc, LoadPlan::constant(7_200.0), 2_000.0));
    let lo = SimConfig {
        hpa_present: false,
        initial_replicas: 10,
        routing: Routing::LeastOutstanding,
        service: exp(2.0),
        ..default.clone()
    };
    report("least outstanding over 10 pods, PS at 200m, rho 0.8", run(&lo, LoadPlan::constant(800.0), 10_000.0));
    for days in [1.0, 2.0, 4.0] {
        let (wall, n) = run(&default, sine_day(days), days * 86_400.0);
        println!("{days} day(s) of sine-day: {n} requests, {:.1} ns per request", wall / n as f64 * 1e9);
    }
    let (_, _) = run(&default, sine_day(1.0), 86_400.0);
    let rss1 = rss_kib();
    let (_, _) = run(&default, sine_day(7.0), 7.0 * 86_400.0);
    let rss7 = rss_kib();
    println!("resident memory: {rss1} KiB after a 1-day model, {rss7} KiB after a 7-day model");
}
