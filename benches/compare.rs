//! `scaletui compare` speed (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench compare
//!
//! Five policies on the classic scenario (15 simulated minutes each, virtual clock): hpa:70,
//! hpa:90, queue, forecast and learned (its model trained first on the other four's records).
//! Prints the wall time of the comparison (the runs, the report and the plots) and of training.

use std::time::Instant;

use scaletui::config::Config;
use scaletui::engine::advisor::forest::ForestParams;
use scaletui::engine::advisor::learned::LabelParams;
use scaletui::report::ReportConfig;
use scaletui::report::compare::{CompareSpec, Policy, compare};
use scaletui::train::{TrainSpec, train};

fn spec(out: &std::path::Path, policies: &[&str]) -> CompareSpec {
    CompareSpec {
        scenario: concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/classic.toml").into(),
        policies: policies.iter().map(|p| Policy::parse(p).expect("policy")).collect(),
        seed: 42,
        duration_min: None,
        out_dir: out.to_path_buf(),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.experiment.output_dir = dir.path().to_path_buf();
    let rcfg = ReportConfig::default();

    let four = ["hpa:70", "hpa:90", "queue", "forecast"];
    let first = dir.path().join("four");
    let out = rt.block_on(compare(&cfg, &spec(&first, &four), &rcfg)).expect("compare");
    println!("compare, 4 policies on classic: {:.3} s", out.wall_s);

    let model = dir.path().join("model.json");
    let t = Instant::now();
    let text = train(&TrainSpec {
        inputs: four.iter().map(|p| first.join(format!("{}.csv", p.replace(':', "-")))).collect(),
        output: model.clone(),
        labels: LabelParams::default(),
        params: ForestParams { trees: 100, ..ForestParams::default() },
        holdout: 0.2,
    })
    .expect("train");
    println!("train, 100 trees on 4 runs: {:.3} s", t.elapsed().as_secs_f64());
    print!("{text}");

    cfg.recommenders.learned.model = model.display().to_string();
    let five = ["hpa:70", "hpa:90", "queue", "forecast", "learned"];
    let t = Instant::now();
    let out = rt.block_on(compare(&cfg, &spec(&dir.path().join("five"), &five), &rcfg)).expect("compare");
    println!(
        "compare, 5 policies on classic: {:.3} s for the runs, {:.3} s with report and plots",
        out.wall_s,
        t.elapsed().as_secs_f64()
    );
    print!("{}", out.text);
}
