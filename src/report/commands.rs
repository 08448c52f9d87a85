//! The `compare`, `report` and `train` subcommands: flags over the configuration, then the work.

use std::path::PathBuf;

use crate::cli::{CompareArgs, ReportArgs, TrainArgs};
use crate::config::Config;
use crate::engine::advisor::forest::ForestParams;
use crate::engine::advisor::learned::LabelParams;
use crate::engine::types::wall_now;

use super::compare::{CompareSpec, Policy, compare};
use super::sweep;
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

fn check_interval(cfg: &mut Config, a: &CompareArgs) -> Result<(), String> {
    if let Some(i) = a.interval {
        if !(i.is_finite() && i > 0.0) {
            return Err(format!("--interval must be positive seconds, not {i}"));
        }
        cfg.experiment.interval = i;
    }
    if let Some(d) = a.duration
        && !(d.is_finite() && d > 0.0 && d <= crate::config::MAX_DURATION_MIN)
    {
        return Err(format!(
            "--duration must be positive minutes, at most {} (a year), not {d}",
            crate::config::MAX_DURATION_MIN
        ));
    }
    Ok(())
}

/// `scaletui compare`: the exit code (0 all well, 1 a policy failed, 130 interrupted). The
/// configuration of each scenario is `file` with the scenario's settings and the `flags` over it.
pub fn run_compare(file: &Config, flags: &crate::cli::RunArgs, a: &CompareArgs) -> Result<u8, String> {
    let policies =
        a.policies.split(',').filter(|p| !p.trim().is_empty()).map(Policy::parse).collect::<Result<Vec<_>, _>>()?;
    let out_dir =
        a.output_dir.clone().unwrap_or_else(|| file.experiment.output_dir.join(format!("compare_{}", stamp())));
    if !a.is_sweep() {
        let scenario = a.scenario.first().cloned().unwrap_or_default();
        let mut cfg = crate::run::layered_config(file, flags, Some(&scenario))?;
        check_interval(&mut cfg, a)?;
        let spec = CompareSpec { scenario, policies, seed: a.seed, duration_min: a.duration, out_dir };
        let rcfg = report_cfg(&cfg, a.slo_ms)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let outcome = rt.block_on(compare(&cfg, &spec, &rcfg))?;
        crate::cli::print_out(&outcome.text)?;
        return Ok(if outcome.failures.is_empty() { 0 } else { 1 });
    }
    if policies.is_empty() {
        return Err("no policies given".into());
    }
    let seeds = match &a.seeds {
        Some(s) => sweep::parse_seeds(s)?,
        None => vec![a.seed],
    };
    let arms = sweep::arms(&policies, &sweep::parse_vary(&a.vary)?);
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = arms.iter().find(|x| !names.insert(x.slug.clone())) {
        return Err(format!("policy {} is given twice", dup.label));
    }
    let baseline = match &a.baseline {
        None => 0,
        Some(b) => arms
            .iter()
            .position(|x| x.label == *b || x.slug == *b || x.policy.slug() == *b || x.policy.label() == *b)
            .ok_or_else(|| {
                format!(
                    "--baseline {b:?} is not one of the policies ({})",
                    arms.iter().map(|x| x.label.as_str()).collect::<Vec<_>>().join(", ")
                )
            })?,
    };
    let mut scenarios = Vec::new();
    let mut rcfg = None;
    for name in &a.scenario {
        let mut cfg = crate::run::layered_config(file, flags, Some(name))?;
        check_interval(&mut cfg, a)?;
        let sc = crate::run::find_scenario(name).map_err(|e| e.to_string())?;
        if scenarios.iter().any(|x: &sweep::SweepScenario| x.name == sc.name) {
            return Err(format!("scenario {} is given twice", sc.name));
        }
        let minutes = a.duration.unwrap_or(((sc.length_s() + 600.0) / 60.0).ceil());
        if rcfg.is_none() {
            rcfg = Some(report_cfg(&cfg, a.slo_ms)?);
        }
        for arm in &arms {
            let mut c = cfg.clone();
            for (k, v) in &arm.overrides {
                c = sweep::set_key(&c, k, v)?;
            }
        }
        scenarios.push(sweep::SweepScenario { file: name.clone(), name: sc.name.clone(), base: cfg, minutes });
    }
    let rcfg = rcfg.ok_or("no scenario given")?;
    if a.resamples > 1_000_000 {
        return Err("--resamples: at most 1000000".into());
    }
    let jobs = match a.jobs {
        Some(0) => return Err("--jobs must be at least 1".into()),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    let spec =
        sweep::SweepSpec { scenarios, arms, seeds, jobs, baseline, resamples: a.resamples, out_dir, progress: true };
    let cancel = tokio_util::sync::CancellationToken::new();
    on_ctrl_c(
        cancel.clone(),
        "interrupted: keeping the finished runs and writing partial results (Ctrl-C again to quit now)",
    );
    let outcome = sweep::sweep(&spec, &rcfg, &cancel)?;
    crate::cli::print_out(&outcome.text)?;
    Ok(if !outcome.complete {
        130
    } else if outcome.failures.is_empty() {
        0
    } else {
        1
    })
}

/// The first Ctrl-C cancels `token` (work under way stops, what finished is kept); a second
/// one ends the process.
fn on_ctrl_c(token: tokio_util::sync::CancellationToken, message: &'static str) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\n{message}");
                token.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    });
}

/// `scaletui report`.
pub fn run_report(cfg: Config, a: &ReportArgs) -> Result<(), String> {
    let rcfg = report_cfg(&cfg, a.slo_ms)?;
    let out: PathBuf =
        a.output_dir.clone().unwrap_or_else(|| cfg.experiment.output_dir.join(format!("report_{}", stamp())));
    if !a.labels.is_empty() || a.group {
        if a.by_phase {
            return Err("--by-phase splits single runs; it does not combine with --label or --group".into());
        }
        let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
        for l in &a.labels {
            let Some((name, files)) = l.split_once('=').filter(|(n, _)| !n.trim().is_empty()) else {
                return Err(format!("--label {l:?}: expected NAME=A.csv,B.csv,..."));
            };
            let files: Vec<PathBuf> = files.split(',').filter(|f| !f.trim().is_empty()).map(PathBuf::from).collect();
            if files.is_empty() {
                return Err(format!("--label {l:?}: no files"));
            }
            groups.push((name.trim().to_string(), files));
        }
        for c in &a.csv {
            let path = PathBuf::from(c);
            let label = if a.group {
                sweep::recorded_policy(&super::load_run(&path, "")?)
            } else {
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| c.clone())
            };
            match groups.iter_mut().find(|g| g.0 == label) {
                Some(g) => g.1.push(path),
                None => groups.push((label, vec![path])),
            }
        }
        let text = sweep::report_groups(&groups, a.baseline.as_deref(), a.resamples, &out, &rcfg)?;
        return crate::cli::print_out(&text);
    }
    if a.csv.is_empty() {
        return Err("give recorded CSVs, or --label NAME=A.csv,B.csv".into());
    }
    crate::cli::print_out(&report(&a.csv, a.by_phase, &out, &rcfg)?)
}

/// `scaletui train`.
pub fn run_train(cfg: Config, a: &TrainArgs) -> Result<u8, String> {
    match &a.kind {
        Some(crate::cli::TrainKind::Dqn(d)) => run_train_dqn(cfg, d),
        Some(crate::cli::TrainKind::Forest(f)) => run_train_forest(cfg, f).map(|_| 0),
        None => run_train_forest(cfg, &a.forest).map(|_| 0),
    }
}

/// `scaletui train dqn`: 0 when done, 130 when interrupted (the checkpoint and the model so far
/// are kept).
fn run_train_dqn(cfg: Config, a: &crate::cli::TrainDqnArgs) -> Result<u8, String> {
    let mut overrides = Vec::new();
    for item in &a.set {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("--set {item:?}: expected KEY=VALUE (e.g. scaling.max_replicas=13)"));
        };
        overrides.push((k.trim().to_string(), sweep::toml_value(v.trim())));
    }
    let eval_seeds = match a.eval_seeds.trim() {
        "none" | "" => Vec::new(),
        s => sweep::parse_seeds(s)?,
    };
    if a.fresh {
        let ck = a.output.join("checkpoint");
        if ck.exists() {
            std::fs::remove_dir_all(&ck).map_err(|e| format!("{}: {e}", ck.display()))?;
        }
    }
    let spec = crate::rl::DqnTrainSpec {
        base: cfg,
        scenario: a.scenario.clone(),
        overrides,
        steps: a.steps,
        seed: a.seed,
        out: a.output.clone(),
        checkpoint_every: a.checkpoint_every,
        eval_seeds,
        resume: true,
        show: true,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    on_ctrl_c(cancel.clone(), "interrupted: saving the checkpoint and the model so far (Ctrl-C again to quit now)");
    let out = crate::rl::train_dqn(&spec, &cancel)?;
    let mut text = format!(
        "trained {} steps ({} episodes) in {:.1} s ({:.0} steps/s){}\nmodel: {}\n",
        out.steps,
        out.episodes,
        out.seconds,
        if out.seconds > 0.0 { out.steps as f64 / out.seconds } else { 0.0 },
        if out.interrupted { " — INTERRUPTED: resume with the same command" } else { "" },
        out.model_dir.display()
    );
    text += &format!("learning curve: {} (and .png, .svg)\n", out.model_dir.join("curve.csv").display());
    if !out.evaluation.is_empty() {
        text += &format!(
            "\nheld-out episodes ({}), greedy:\n{}",
            out.evaluation.first().map_or(0, |e| e.episodes),
            crate::rl::eval_table(&out.evaluation)
        );
    }
    crate::cli::print_out(&text)?;
    Ok(if out.interrupted { 130 } else { 0 })
}

fn run_train_forest(cfg: Config, a: &crate::cli::ForestArgs) -> Result<(), String> {
    let Some(output) = a.output.clone() else {
        return Err("train: -o/--output names the model file to write".into());
    };
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
        output,
        labels,
        params: ForestParams { trees: a.trees, max_depth: a.max_depth, seed: a.seed, ..ForestParams::default() },
        holdout: a.holdout,
    };
    crate::cli::print_out(&crate::train::train(&spec)?)
}
