//! Headless simulation speed and memory (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench headless
//!
//! 1. 24 h of the sine-day scenario at a 15 s interval, virtual clock, one core: wall time and
//!    simulated seconds per wall second.
//! 2. The same day with the advisor enabled and no model server listening (a closed port): the
//!    advisor backs off in virtual time, so the run should cost about what it costs without it.
//! 3. A 7-day run: resident memory after day 1 and after day 7 (it must stay flat: the CSV keeps
//!    the history, not RAM).

use std::time::Instant;

use scaletui::config::{self, Speed};
use scaletui::engine::experiment::Experiment;
use scaletui::run;
use tokio_util::sync::CancellationToken;

mod support;
use support::rss_kib;

fn run_days(days: f64, out: &std::path::Path) -> (f64, u64) {
    run_with(days, out, None)
}

/// `advisor_url`: enable the advisor against that URL.
fn run_with(days: f64, out: &std::path::Path, advisor_url: Option<&str>) -> (f64, u64) {
    let mut cfg = config::Config::default();
    cfg.experiment.interval = 15.0;
    cfg.experiment.duration = days * 24.0 * 60.0;
    cfg.experiment.mode = scaletui::engine::types::Mode::HpaOnly;
    cfg.experiment.output_dir = out.to_path_buf();
    cfg.experiment.scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/sine-day.toml").into();
    cfg.sim.speed = Speed::Max;
    // The simulation's own speed: no model server (benches/advisor.rs measures the advisor).
    cfg.advisor.enabled = false;
    if let Some(url) = advisor_url {
        cfg.advisor.enabled = true;
        cfg.advisor.url = url.to_string();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut parts = run::build(&cfg, false).await.expect("setup");
        let drain = tokio::spawn(async move { while parts.events.recv().await.is_some() {} });
        let exp = Experiment::new(parts.setup).expect("record");
        let t0 = Instant::now();
        let summary = exp.run(CancellationToken::new()).await;
        let wall = t0.elapsed().as_secs_f64();
        drain.abort();
        (wall, summary.rows)
    })
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let dir = tempfile::tempdir().expect("tempdir");
    let (wall, rows) = run_days(1.0, dir.path());
    println!(
        "24 h sine-day, 15 s interval: {rows} rows in {wall:.3} s wall = {:.0} simulated s per wall s ({:.0}x real time)",
        86_400.0 / wall,
        86_400.0 / wall
    );
    let rss_day1 = rss_kib();
    // A port nobody listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let url = format!("http://127.0.0.1:{port}/v1");
    let dir_ai = tempfile::tempdir().expect("tempdir");
    let (wall_ai, _) = run_with(1.0, dir_ai.path(), Some(&url));
    println!(
        "24 h sine-day with the advisor enabled and no model server: {wall_ai:.3} s wall = {:.2}x the run without the advisor",
        wall_ai / wall
    );
    let dir7 = tempfile::tempdir().expect("tempdir");
    let (wall7, rows7) = run_days(7.0, dir7.path());
    let rss_day7 = rss_kib();
    println!("7 days, 15 s interval: {rows7} rows in {wall7:.3} s wall");
    println!("resident memory: {rss_day1} KiB after the 1-day run, {rss_day7} KiB after the 7-day run");
}
