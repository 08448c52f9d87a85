//! The `compare`, `report` and `train` subcommands: flags over the configuration, then the work.

use std::path::PathBuf;

use crate::cli::{CompareArgs, ReportArgs, TrainArgs};
use crate::config::Config;
use crate::engine::advisor::forest::ForestParams;
use crate::engine::advisor::learned::LabelParams;
use crate::engine::types::wall_now;

use super::compare::{CompareSpec, Policy, compare};
use super::{ReportConfig, report};

fn stamp() -> String {
    jiff::Timestamp::from_nanosecond((wall_now() * 1e9) as i128)
        .map(|t| t.strftime("%Y%m%d_%H%M%S").to_string())
        .unwrap_or_else(|_| "run".into())
}

fn report_cfg(cfg: &Config, slo_ms: Option<f64>) -> Result<ReportConfig, String> {
    let mut r = cfg.report.clone();
    if let Some(s) = slo_ms {
        r.slo_ms = s;
    }
    r.validate().map_err(|(k, m)| format!("--slo-ms (config {k}): {m}"))?;
    Ok(r)
}

/// `scaletui compare`; `Ok(false)` when a policy failed (the others are still reported).
pub fn run_compare(mut cfg: Config, a: &CompareArgs) -> Result<bool, String> {
    if let Some(i) = a.interval {
        if !(i.is_finite() && i > 0.0) {
            return Err(format!("--interval must be positive seconds, not {i}"));
        }
        cfg.experiment.interval = i;
    }
    if let Some(d) = a.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(format!("--duration must be positive minutes, not {d}"));
    }
    let policies =
        a.policies.split(',').filter(|p| !p.trim().is_empty()).map(Policy::parse).collect::<Result<Vec<_>, _>>()?;
    let spec = CompareSpec {
        scenario: a.scenario.clone(),
        policies,
        seed: a.seed,
        duration_min: a.duration,
        out_dir: a.output_dir.clone().unwrap_or_else(|| cfg.experiment.output_dir.join(format!("compare_{}", stamp()))),
    };
    let rcfg = report_cfg(&cfg, a.slo_ms)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let outcome = rt.block_on(compare(&cfg, &spec, &rcfg))?;
    crate::cli::print_out(&outcome.text)?;
    Ok(outcome.failures.is_empty())
}

/// `scaletui report`.
pub fn run_report(cfg: Config, a: &ReportArgs) -> Result<(), String> {
    let rcfg = report_cfg(&cfg, a.slo_ms)?;
    let out: PathBuf =
        a.output_dir.clone().unwrap_or_else(|| cfg.experiment.output_dir.join(format!("report_{}", stamp())));
    crate::cli::print_out(&report(&a.csv, a.by_phase, &out, &rcfg)?)
}

/// `scaletui train`.
pub fn run_train(cfg: Config, a: &TrainArgs) -> Result<(), String> {
    if a.trees == 0 || a.max_depth == 0 {
        return Err("--trees and --max-depth must be at least 1".into());
    }
    let labels = LabelParams {
        lookahead: a.lookahead,
        min_replicas: a.min_replicas.unwrap_or(cfg.scaling.min_replicas),
        max_replicas: a.max_replicas.unwrap_or(cfg.scaling.max_replicas),
        ..LabelParams::default()
    };
    if labels.min_replicas < 1 || labels.max_replicas < labels.min_replicas {
        return Err("--min-replicas must be >= 1 and --max-replicas >= --min-replicas".into());
    }
    let spec = crate::train::TrainSpec {
        inputs: a.csv.clone(),
        output: a.output.clone(),
        labels,
        params: ForestParams { trees: a.trees, max_depth: a.max_depth, seed: a.seed, ..ForestParams::default() },
        holdout: a.holdout,
    };
    crate::cli::print_out(&crate::train::train(&spec)?)
}
