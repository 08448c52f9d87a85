//! Sweep speed (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench sweep
//!
//! Three shipped scenarios (classic, step, trace-replay) × five policies (hpa:50, hpa:70,
//! hpa:90, queue, forecast) × 30 seeds = 450 runs headless in virtual time, on every core, then
//! the statistics, the tables, the plots and the HTML report. Prints the wall time and runs/s.

use std::time::Instant;

use scaletui::config::Config;
use scaletui::report::ReportConfig;
use scaletui::report::compare::Policy;
use scaletui::report::sweep::{SweepScenario, SweepSpec, arms, sweep};
use tokio_util::sync::CancellationToken;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    let base = Config::default();
    let scenarios = ["classic", "step", "trace-replay"]
        .iter()
        .map(|n| {
            let file = format!("{root}/scenarios/{n}.toml");
            let sc = scaletui::run::find_scenario(&file).expect("scenario");
            SweepScenario {
                base: sc.apply_settings(&base).expect("settings"),
                minutes: ((sc.length_s() + 600.0) / 60.0).ceil(),
                name: sc.name.clone(),
                file,
            }
        })
        .collect::<Vec<_>>();
    let policies: Vec<Policy> =
        ["hpa:50", "hpa:70", "hpa:90", "queue", "forecast"].iter().map(|p| Policy::parse(p).expect("policy")).collect();
    let jobs = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let spec = SweepSpec {
        scenarios,
        arms: arms(&policies, &[Vec::new()]),
        seeds: (1..=30).collect(),
        jobs,
        baseline: 1,
        resamples: 2000,
        out_dir: dir.path().join("sweep"),
        progress: false,
    };
    let t = Instant::now();
    let out = sweep(&spec, &ReportConfig::default(), &CancellationToken::new()).expect("sweep");
    let total = t.elapsed().as_secs_f64();
    println!(
        "sweep, 3 scenarios × 5 policies × 30 seeds = {} runs on {jobs} jobs: {:.2} s for the runs ({:.1} runs/s), {total:.2} s with statistics, plots and report",
        out.cells.len(),
        out.wall_s,
        out.cells.len() as f64 / out.wall_s
    );
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let md = out.text.lines().skip_while(|l| !l.starts_with("## ")).collect::<Vec<_>>().join("\n");
    println!("{md}");
}
