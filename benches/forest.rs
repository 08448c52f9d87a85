//! The `learned` recommender's random forest (engine/advisor/forest.rs) against smartcore's
//! `RandomForestRegressor` on the same data (a bench binary that prints figures; no assertions).
//!
//!   cargo bench --bench forest
//!
//! The records: four policies on the classic and step scenarios (15 simulated minutes each,
//! seeds 42 and 7). The examples and the held-out split are `scaletui train`'s (the last 20 % of
//! each run); both forests get the same settings (the seed's: 200 trees, depth 15, split 10,
//! leaf 4, every feature at every split) and are scored the same way (held-out RMSE and the share
//! within ±1 replica), with fit and predict times.

use std::time::Instant;

use scaletui::config::Config;
use scaletui::engine::advisor::forest::{Forest, ForestParams};
use scaletui::engine::advisor::learned::LabelParams;
use scaletui::report::ReportConfig;
use scaletui::report::compare::{CompareSpec, Policy, compare};
use scaletui::train::{TrainSpec, scores, split};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.experiment.output_dir = dir.path().to_path_buf();
    let four = ["hpa:70", "hpa:90", "queue", "forecast"];
    let mut inputs = Vec::new();
    for (scenario, seed) in [("classic", 42), ("step", 7)] {
        let out = dir.path().join(scenario);
        let spec = CompareSpec {
            scenario: format!("{}/scenarios/{scenario}.toml", env!("CARGO_MANIFEST_DIR")),
            policies: four.iter().map(|p| Policy::parse(p).expect("policy")).collect(),
            seed,
            duration_min: None,
            out_dir: out.clone(),
        };
        rt.block_on(compare(&cfg, &spec, &ReportConfig::default())).expect("compare");
        inputs.extend(four.iter().map(|p| out.join(format!("{}.csv", p.replace(':', "-")))));
    }
    let p = ForestParams::default();
    let labels = LabelParams::default();
    let spec = TrainSpec { inputs, output: dir.path().join("m.json"), labels, params: p, holdout: 0.2 };
    let (train, test, _) = split(&spec).expect("examples");
    let x: Vec<Vec<f64>> = train.iter().map(|e| e.0.clone()).collect();
    let y: Vec<f64> = train.iter().map(|e| e.1).collect();
    let xt: Vec<Vec<f64>> = test.iter().map(|e| e.0.clone()).collect();
    let truth: Vec<f64> = test.iter().map(|e| e.1).collect();
    let (min, max) = (labels.min_replicas, labels.max_replicas);
    println!("{} training examples, {} held out, {} features", x.len(), xt.len(), x[0].len());

    for seed in [42u64, 7, 1234] {
        let t = Instant::now();
        let ours = Forest::fit(&x, &y, ForestParams { seed, ..p });
        let fit_ours = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let pred: Vec<f64> = xt.iter().map(|r| ours.predict(r)).collect();
        let predict_ours = t.elapsed().as_secs_f64();
        let (rmse, within) = scores(&pred, &truth, min, max);
        println!(
            "seed {seed:>4}  scaletui  : held-out RMSE {rmse:.4}, within ±1 {:.1} %, fit {fit_ours:.3} s, predict {:.1} ms",
            within * 100.0,
            predict_ours * 1e3
        );

        let params = RandomForestRegressorParameters::default()
            .with_n_trees(p.trees)
            .with_max_depth(p.max_depth as u16)
            .with_min_samples_split(p.min_samples_split)
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_m(x[0].len())
            .with_seed(seed);
        let t = Instant::now();
        let mx = DenseMatrix::from_2d_vec(&x).expect("matrix");
        let theirs = RandomForestRegressor::fit(&mx, &y, params).expect("fit");
        let fit_theirs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mt = DenseMatrix::from_2d_vec(&xt).expect("matrix");
        let pred: Vec<f64> = theirs.predict(&mt).expect("predict");
        let predict_theirs = t.elapsed().as_secs_f64();
        let (rmse, within) = scores(&pred, &truth, min, max);
        println!(
            "seed {seed:>4}  smartcore : held-out RMSE {rmse:.4}, within ±1 {:.1} %, fit {fit_theirs:.3} s, predict {:.1} ms",
            within * 100.0,
            predict_theirs * 1e3
        );
    }
}
