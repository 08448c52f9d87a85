//! `scaletui compare`: the same scenario on the simulator once per policy (headless, virtual
//! clock, one seed), each run recorded to `<out>/<policy>.csv`, then reported from those files
//! (so `scaletui report` on them gives the same figures).
//!
//! Policies: `hpa` / `hpa:T` (the HPA in control, CPU target T %), and `queue`, `forecast`,
//! `learned`, `ai` (that recommender drives ai_scaler), `exec:CMD` and `http:URL` (an external
//! policy drives it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{ReportConfig, RunData, Summary, load_run, summarize, table, write_outputs};
use crate::config::{Backend, Config, Speed};
use crate::engine::advisor::builtin::DRIVERS;
use crate::engine::experiment::Experiment;
use crate::engine::types::Mode;
use crate::run;

/// One arm of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The HPA in control (hpa_only), optionally with another CPU target.
    Hpa(Option<i32>),
    /// A recommender drives ai_scaler.
    Driver(String),
    /// A trained recommender (`dqn`, `learned`) with this model drives ai_scaler.
    Model { kind: String, path: String },
}

impl Policy {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s.split_once(':') {
            None if s == "hpa" => Ok(Policy::Hpa(None)),
            Some(("hpa", t)) => match t.parse::<i32>() {
                Ok(t) if (1..=10_000).contains(&t) => Ok(Policy::Hpa(Some(t))),
                _ => Err(format!("policy {s:?}: the CPU target must be a percentage, e.g. hpa:70")),
            },
            _ if crate::engine::advisor::external::is_external(s) => Ok(Policy::Driver(s.to_string())),
            Some((kind @ ("dqn" | "learned"), path)) if !path.trim().is_empty() => {
                Ok(Policy::Model { kind: kind.to_string(), path: path.trim().to_string() })
            }
            None if s == "vpa" => Err("policy vpa: the VPA recommends requests, not replicas; it cannot drive".into()),
            None if DRIVERS.contains(&s) => Ok(Policy::Driver(s.to_string())),
            _ => Err(format!(
                "unknown policy {s:?} (hpa, hpa:TARGET, ai, queue, forecast, learned, learned:MODEL, dqn, dqn:MODEL, exec:CMD, http:URL)"
            )),
        }
    }

    /// The label: `hpa`, `hpa-70`, `queue`, `exec:python3 policy.py`, …
    pub fn label(&self) -> String {
        match self {
            Policy::Driver(d) => d.clone(),
            Policy::Model { kind, path } => format!("{kind}:{path}"),
            other => other.slug(),
        }
    }

    /// The file name: the label with anything but letters, digits, `-`, `_` and `.` as `_`.
    pub fn slug(&self) -> String {
        match self {
            Policy::Hpa(None) => "hpa".into(),
            Policy::Hpa(Some(t)) => format!("hpa-{t}"),
            Policy::Driver(_) | Policy::Model { .. } => self
                .label()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
                .collect(),
        }
    }
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    pub scenario: String,
    pub policies: Vec<Policy>,
    pub seed: u64,
    /// Minutes; `None`: the scenario's length plus ten minutes to settle.
    pub duration_min: Option<f64>,
    pub out_dir: PathBuf,
}

/// The outcome: the report text, the failures, the wall time.
#[derive(Debug)]
pub struct CompareOutcome {
    pub text: String,
    pub summaries: Vec<Summary>,
    pub failures: Vec<String>,
    pub wall_s: f64,
}

/// The configuration of one arm: `policy` on `scenario` with `seed`, headless on the simulator
/// at full speed, recording into `run_dir`.
pub fn arm_config(base: &Config, scenario: &str, seed: u64, policy: &Policy, minutes: f64, run_dir: &Path) -> Config {
    let mut c = base.clone();
    c.cluster.backend = Backend::Sim;
    c.sim.speed = Speed::Max;
    c.sim.seed = seed;
    c.experiment.scenario = scenario.to_string();
    c.experiment.duration = minutes;
    c.experiment.output_dir = run_dir.to_path_buf();
    match policy {
        Policy::Hpa(target) => {
            c.experiment.mode = Mode::HpaOnly;
            if let Some(t) = target {
                c.scaling.cpu_target = *t;
            }
        }
        Policy::Driver(d) => {
            c.experiment.mode = Mode::AiScaler;
            c.experiment.driver = d.clone();
        }
        Policy::Model { kind, path } => {
            c.experiment.mode = Mode::AiScaler;
            c.experiment.driver = kind.clone();
            if kind == "dqn" {
                c.recommenders.dqn.model = path.clone();
            } else {
                c.recommenders.learned.model = path.clone();
            }
        }
    }
    c
}

/// The configuration of one arm of a single-seed comparison.
pub fn policy_config(base: &Config, spec: &CompareSpec, policy: &Policy, minutes: f64, run_dir: &Path) -> Config {
    arm_config(base, &spec.scenario, spec.seed, policy, minutes, run_dir)
}

/// Run one arm configured by [`arm_config`] (its `output_dir` is a scratch directory) and move
/// its record to `csv` (with `<stem>_events.csv` and `<stem>_summary.json` beside it).
/// `Ok(None)`: cancelled before the end; nothing is kept.
pub async fn run_arm(
    cfg: &Config,
    policy: &Policy,
    csv: &Path,
    cancel: CancellationToken,
) -> Result<Option<PathBuf>, String> {
    let run_dir = cfg.experiment.output_dir.clone();
    let mut parts = run::build(cfg, false).await.map_err(|e| e.to_string())?;
    let driver = match policy {
        Policy::Driver(d) => Some(d.as_str()),
        Policy::Model { kind, .. } => Some(kind.as_str()),
        Policy::Hpa(_) => None,
    };
    if let Some(d) = driver
        && !parts.setup.recommenders.iter().any(|r| r.name() == d)
    {
        return Err(match d {
            "ai" => {
                "the ai policy needs the AI advisor, which is off (advisor.enabled = false); nothing was run".into()
            }
            "dqn" => "the dqn policy needs a model: train one with `scaletui train dqn --scenario FILE -o DIR` and \
                      compare dqn:DIR (or set recommenders.dqn.model); nothing was run"
                .into(),
            "learned" => "the learned policy needs a model: train one with `scaletui train CSV... -o model.json` \
                          and compare learned:model.json (or set recommenders.learned.model); nothing was run"
                .into(),
            d => format!("no recommender named {d} is enabled; nothing was run"),
        });
    }
    let drain = tokio::spawn(async move { while parts.events.recv().await.is_some() {} });
    let exp =
        Experiment::new(parts.setup).map_err(|e| format!("cannot create the record in {}: {e}", run_dir.display()))?;
    let summary = exp.run(cancel.clone()).await;
    drain.abort();
    if cancel.is_cancelled() {
        let _ = std::fs::remove_dir_all(&run_dir);
        return Ok(None);
    }
    let events = csv.with_file_name(format!("{}_events.csv", csv.file_stem().unwrap_or_default().to_string_lossy()));
    std::fs::rename(&summary.csv_path, csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    std::fs::rename(&summary.events_path, &events).map_err(|e| format!("{}: {e}", events.display()))?;
    if let Some(js) = &summary.summary_path {
        let to = crate::engine::record::summary::summary_path(csv);
        std::fs::rename(js, &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    let _ = std::fs::remove_dir(&run_dir);
    Ok(Some(csv.to_path_buf()))
}

/// Run one arm; returns the path of its CSV in `out_dir`.
async fn run_policy(base: &Config, spec: &CompareSpec, policy: &Policy, minutes: f64) -> Result<PathBuf, String> {
    let slug = policy.slug();
    let run_dir = spec.out_dir.join(format!(".run-{slug}"));
    let cfg = policy_config(base, spec, policy, minutes, &run_dir);
    let csv = spec.out_dir.join(format!("{slug}.csv"));
    run_arm(&cfg, policy, &csv, CancellationToken::new()).await?.ok_or_else(|| "interrupted".to_string())
}

/// A driver that never answered: every ai_scaler tick applied the fallback.
pub fn never_answered(run: &RunData) -> Option<String> {
    let ticks: Vec<_> = run.rows.iter().filter(|r| r.mode == "ai_scaler").collect();
    let all_fallback = !ticks.is_empty() && ticks.iter().all(|r| matches!(r.applied_by.as_str(), "hpa_sim" | "hold"));
    all_fallback.then(|| {
        let note = ticks.last().map(|r| r.applied_note.clone()).unwrap_or_default();
        format!("the driver never gave an answer; every tick applied the fallback ({note})")
    })
}

/// Run every policy, then report from the recorded files.
pub async fn compare(base: &Config, spec: &CompareSpec, report_cfg: &ReportConfig) -> Result<CompareOutcome, String> {
    if spec.policies.is_empty() {
        return Err("no policies given".into());
    }
    let scenario = run::find_scenario(&spec.scenario).map_err(|e| e.to_string())?;
    let minutes = spec.duration_min.unwrap_or(((scenario.length_s() + 600.0) / 60.0).ceil());
    if !(minutes > 0.0) {
        return Err("the duration must be positive".into());
    }
    std::fs::create_dir_all(&spec.out_dir).map_err(|e| format!("{}: {e}", spec.out_dir.display()))?;
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for p in &spec.policies {
        let slug = p.label();
        match run_policy(base, spec, p, minutes).await {
            Ok(csv) => {
                let run = load_run(&csv, &slug)?;
                match never_answered(&run) {
                    Some(why) => failures.push(format!("{slug}: {why}")),
                    None => runs.push(run),
                }
            }
            Err(e) => failures.push(format!("{slug}: {e}")),
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let summaries: Vec<Summary> = runs.iter().map(|r| summarize(r, report_cfg)).collect();
    let settings = crate::engine::record::summary::describe_settings(&crate::engine::record::summary::settings(base));
    let mut text = format!(
        "scenario {} · seed {} · {minutes} min per policy · {} policies in {wall_s:.2} s\nsettings: {settings} (hpa:T sets the CPU target)\n\n",
        scenario.name,
        spec.seed,
        spec.policies.len()
    );
    if !runs.is_empty() {
        text.push_str(&table(&summaries, report_cfg));
        text.push('\n');
        for f in write_outputs(&spec.out_dir, &runs, &summaries, report_cfg)? {
            let _ = writeln!(text, "wrote {}", f.display());
        }
        for r in &runs {
            let _ = writeln!(text, "recorded {}", r.path.display());
        }
    }
    for f in &failures {
        let _ = writeln!(text, "FAILED {f}");
    }
    Ok(CompareOutcome { text, summaries, failures, wall_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(Policy::parse("hpa:70"), Ok(Policy::Hpa(Some(70))));
        assert_eq!(Policy::parse("hpa"), Ok(Policy::Hpa(None)));
        assert_eq!(Policy::parse(" queue "), Ok(Policy::Driver("queue".into())));
        assert_eq!(Policy::parse("hpa:70").map(|p| p.slug()), Ok("hpa-70".into()));
        assert!(Policy::parse("hpa:x").is_err());
        assert!(Policy::parse("vpa").err().is_some_and(|e| e.contains("requests")));
        assert!(Policy::parse("magic").is_err());
    }
}
