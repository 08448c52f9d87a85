//! `scaletui train CSV... -o model.json`: fit the `learned` recommender's random forest on
//! recorded runs. Each tick with `lookahead` ticks after it becomes an example (features of it
//! and the ticks before; the label: the replica count that keeps the future utilization inside
//! the thresholds). The last `holdout` fraction of each run (in time) is held out: the model is
//! fitted on the rest and its RMSE and within-±1 accuracy on the held-out ticks are reported —
//! beside two simple baselines (keep the current count; the HPA's proposal) — and saved in the
//! model file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::engine::advisor::forest::{Forest, ForestParams};
use crate::engine::advisor::learned::{FEATURES, LabelParams, LearnedModel, MODEL_KIND, Obs, WINDOW, features, label};
use crate::report::load_run;

#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub labels: LabelParams,
    pub params: ForestParams,
    /// Fraction of each run, at its end, held out for evaluation.
    pub holdout: f64,
}

/// Examples of one run: (features, label, current replicas, HPA proposal).
pub type Example = (Vec<f64>, f64, f64, Option<f64>);

fn examples(obs: &[Obs], p: &LabelParams) -> Vec<Example> {
    (0..obs.len())
        .filter_map(|i| {
            let y = label(obs, i, p)?;
            let window = &obs[(i + 1).saturating_sub(WINDOW)..=i];
            Some((features(window), y, obs[i].current_replicas.unwrap_or(0.0), obs[i].hpa_raw_desired))
        })
        .collect()
}

/// RMSE and share within ±1 replica (after rounding and clamping) of predictions.
pub fn scores(pred: &[f64], truth: &[f64], min: i32, max: i32) -> (f64, f64) {
    if pred.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = pred.len() as f64;
    let rmse = (pred.iter().zip(truth).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / n).sqrt();
    let within = pred
        .iter()
        .zip(truth)
        .filter(|(p, t)| (p.round().clamp(f64::from(min), f64::from(max.max(min))) - **t).abs() <= 1.0)
        .count() as f64
        / n;
    (rmse, within)
}

/// Train, evaluate, save; returns the report text.
pub fn train(spec: &TrainSpec) -> Result<String, String> {
    if spec.inputs.is_empty() {
        return Err("no records given".into());
    }
    if !(0.0..1.0).contains(&spec.holdout) {
        return Err(format!("--holdout must be a fraction in [0, 1), not {}", spec.holdout));
    }
    if spec.labels.lookahead == 0 {
        return Err("--lookahead must be at least 1 tick".into());
    }
    let (train, test, mut out) = split(spec)?;
    if train.len() < 2 * spec.params.min_samples_leaf.max(1) || train.len() < 10 {
        return Err(format!(
            "only {} training examples: record longer runs (each tick needs {} ticks after it)",
            train.len(),
            spec.labels.lookahead
        ));
    }
    let x: Vec<Vec<f64>> = train.iter().map(|e| e.0.clone()).collect();
    let y: Vec<f64> = train.iter().map(|e| e.1).collect();
    let forest = Forest::fit(&x, &y, spec.params);
    let (min, max) = (spec.labels.min_replicas, spec.labels.max_replicas);
    let truth: Vec<f64> = test.iter().map(|e| e.1).collect();
    let pred: Vec<f64> = test.iter().map(|e| forest.predict(&e.0)).collect();
    let (rmse, within) = scores(&pred, &truth, min, max);
    let keep: Vec<f64> = test.iter().map(|e| e.2).collect();
    let (keep_rmse, keep_within) = scores(&keep, &truth, min, max);
    let hpa: Vec<f64> = test.iter().map(|e| e.3.unwrap_or(e.2)).collect();
    let (hpa_rmse, hpa_within) = scores(&hpa, &truth, min, max);
    let _ = writeln!(
        out,
        "random forest: {} trees, depth {}, {} features, {} training examples",
        spec.params.trees,
        spec.params.max_depth,
        FEATURES.len(),
        train.len()
    );
    if test.is_empty() {
        let _ = writeln!(out, "held out: none (--holdout 0); no figures");
    } else {
        let _ = writeln!(out, "held out ({} examples):", test.len());
        let _ = writeln!(out, "  model                 RMSE {rmse:.3}  within ±1 {:.1} %", within * 100.0);
        let _ = writeln!(out, "  keep current replicas RMSE {keep_rmse:.3}  within ±1 {:.1} %", keep_within * 100.0);
        let _ = writeln!(out, "  HPA proposal          RMSE {hpa_rmse:.3}  within ±1 {:.1} %", hpa_within * 100.0);
    }
    let model = LearnedModel {
        kind: MODEL_KIND.into(),
        version: 1,
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        labels: spec.labels,
        params: spec.params,
        holdout_rmse: if rmse.is_finite() { rmse } else { -1.0 },
        holdout_within_one: if within.is_finite() { within } else { -1.0 },
        training_rows: train.len(),
        forest,
    };
    save(&spec.output, &model)?;
    let _ = writeln!(out, "wrote {}", spec.output.display());
    Ok(out)
}

fn save(path: &Path, model: &LearnedModel) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string(model).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))
}

/// The training and held-out examples of `spec`'s records (the last `holdout` of each run in
/// time), and a line per run.
pub fn split(spec: &TrainSpec) -> Result<(Vec<Example>, Vec<Example>, String), String> {
    let mut train: Vec<Example> = Vec::new();
    let mut test: Vec<Example> = Vec::new();
    let mut out = String::new();
    for path in &spec.inputs {
        let run = load_run(path, "")?;
        let obs: Vec<Obs> = run.rows.iter().map(|r| r.obs).collect();
        let ex = examples(&obs, &spec.labels);
        let cut = ((ex.len() as f64) * (1.0 - spec.holdout)).round() as usize;
        let _ = writeln!(
            out,
            "{}: {} ticks, {} examples ({} for training, {} held out)",
            path.display(),
            obs.len(),
            ex.len(),
            cut,
            ex.len() - cut
        );
        let mut ex = ex;
        test.extend(ex.split_off(cut));
        train.extend(ex);
    }
    Ok((train, test, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_round_and_clamp() {
        let (rmse, within) = scores(&[2.4, 5.0, 12.0], &[2.0, 3.0, 10.0], 1, 10);
        assert!((rmse - ((0.16 + 4.0 + 4.0) / 3.0f64).sqrt()).abs() < 1e-12);
        assert!((within - 2.0 / 3.0).abs() < 1e-12, "2.4→2 ok, 5 vs 3 no, 12→10 ok");
    }
}
