//! Sweeps: every (scenario, policy, seed) run headless in virtual time on the simulator, spread
//! over worker threads, then described with statistics a reviewer accepts — per figure the mean,
//! standard deviation, median and a seeded bootstrap interval; paired differences against a
//! baseline policy with their interval, Wilcoxon's signed-rank p-value and Holm's correction; a
//! rank table — written as Markdown, `runs.csv` (long form), `stats.csv`, plots and one
//! self-contained `report.html`.
//!
//! Each run depends only on its triple, so the results do not depend on `--jobs`; the
//! simulator draws arrivals and service demands from their own random streams, so for a given
//! scenario and seed every policy sees the same requests (common random numbers) and the
//! differences between policies are paired by seed.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::analysis::MAIN;
pub use super::analysis::{Analysis, Cell, FIGURES, Figure, Paired, Stat, Table, analyse_groups, figure, tables};
use super::compare::{Policy, arm_config, never_answered, run_arm};
use super::{ReportConfig, RunData, load_run, summarize};
use crate::config::Config;

/// A row of the comparison: a policy with optional setting overrides (`--vary`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub label: String,
    pub slug: String,
    pub policy: Policy,
    pub overrides: Vec<(String, toml::Value)>,
}

/// A scenario of the sweep: the name given, its own name, and the configuration it runs on
/// (the file's, with the scenario's settings and the flags applied).
#[derive(Debug, Clone)]
pub struct SweepScenario {
    pub file: String,
    pub name: String,
    pub base: Config,
    pub minutes: f64,
}

#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub scenarios: Vec<SweepScenario>,
    pub arms: Vec<Arm>,
    pub seeds: Vec<u64>,
    pub jobs: usize,
    pub baseline: usize,
    pub resamples: usize,
    pub out_dir: PathBuf,
    /// Show progress on stderr.
    pub progress: bool,
}

/// `1..30`, `1,2,5`, `1..10,20`: the seeds, in order, without repeats.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let mut out: Vec<u64> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--seeds {s:?}: {part:?} is not a seed or a range like 1..30");
        let (a, b) = match part.split_once("..") {
            Some((a, b)) => (
                a.trim().parse::<u64>().map_err(|_| bad())?,
                b.trim().trim_start_matches('=').parse::<u64>().map_err(|_| bad())?,
            ),
            None => {
                let v = part.parse::<u64>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if b < a {
            return Err(format!("--seeds {s:?}: the range {part} is empty"));
        }
        if b - a >= 100_000 {
            return Err(format!("--seeds {s:?}: {part} is more than 100000 seeds"));
        }
        for v in a..=b {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    if out.is_empty() {
        return Err("--seeds: no seeds given".into());
    }
    Ok(out)
}

/// A value on the command line as TOML: `70`, `0.5`, `true`, `"x"`, else a bare string.
pub fn toml_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// `KEY=V1,V2` for each `--vary`: every combination of the values, in order.
pub fn parse_vary(items: &[String]) -> Result<Vec<Vec<(String, toml::Value)>>, String> {
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for item in items {
        let Some((key, values)) = item.split_once('=') else {
            return Err(format!("--vary {item:?}: expected KEY=V1,V2,... (e.g. scaling.cpu_target=50,60,70)"));
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("--vary {item:?}: the key must be a dotted configuration key"));
        }
        let values: Vec<&str> = values.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Err(format!("--vary {item:?}: no values"));
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.to_string(), toml_value(v)));
                    c
                })
            })
            .collect();
    }
    Ok(combos)
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The arms: every policy with every combination of the varied values.
pub fn arms(policies: &[Policy], combos: &[Vec<(String, toml::Value)>]) -> Vec<Arm> {
    let mut out = Vec::new();
    for p in policies {
        for c in combos {
            let mut label = p.label();
            let mut slug = p.slug();
            if !c.is_empty() {
                let parts: Vec<String> =
                    c.iter().map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), show(v))).collect();
                label = format!("{label} {}", parts.join(" "));
                slug = format!("{slug}_{}", file_safe(&parts.join("_")));
            }
            out.push(Arm { label, slug, policy: p.clone(), overrides: c.clone() });
        }
    }
    out
}

/// The configuration with `key` (dotted) set to `value`, checked like a config file.
pub fn set_key(cfg: &Config, key: &str, value: &toml::Value) -> Result<Config, String> {
    let mut table = toml::Table::try_from(cfg).map_err(|e| format!("--vary {key}: {e}"))?;
    let parts: Vec<&str> = key.split('.').collect();
    let mut at = &mut table;
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            at.insert((*p).to_string(), value.clone());
        } else {
            let next = at.entry((*p).to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = match next {
                toml::Value::Table(t) => t,
                _ => return Err(format!("--vary {key}: {p} is not a table of settings")),
            };
        }
    }
    let text = toml::to_string(&table).map_err(|e| format!("--vary {key}: {e}"))?;
    let cfg = crate::config::parse(&text, "--vary").map_err(|e| match e.key {
        Some(k) => format!("--vary {key}={}: key `{k}`: {}", show(value), e.message),
        None => format!("--vary {key}={}: {}", show(value), e.message),
    })?;
    crate::engine::check_config(&cfg).map_err(|(k, m)| format!("--vary {key}={}: key `{k}`: {m}", show(value)))?;
    Ok(cfg)
}

/// What a sweep leaves: the finished runs, the failures, whether it ran to the end.
#[derive(Debug)]
pub struct SweepOutcome {
    pub text: String,
    pub cells: Vec<Cell>,
    pub failures: Vec<String>,
    pub planned: usize,
    pub complete: bool,
    pub wall_s: f64,
}

/// A job's end: its record, `None` when it was cancelled, or why it failed.
type JobResult = Result<Option<RunData>, String>;

struct Job {
    scenario: usize,
    arm: usize,
    seed: u64,
}

fn run_dir(spec: &SweepSpec, j: &Job) -> PathBuf {
    spec.out_dir.join(file_safe(&spec.scenarios[j.scenario].name)).join(&spec.arms[j.arm].slug)
}

fn run_job(spec: &SweepSpec, j: &Job, rt: &tokio::runtime::Runtime, cancel: &CancellationToken) -> JobResult {
    let sc = &spec.scenarios[j.scenario];
    let arm = &spec.arms[j.arm];
    let dir = run_dir(spec, j);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scratch = dir.join(format!(".run-seed-{}", j.seed));
    let mut cfg = arm_config(&sc.base, &sc.file, j.seed, &arm.policy, sc.minutes, &scratch);
    for (k, v) in &arm.overrides {
        cfg = set_key(&cfg, k, v)?;
    }
    let csv = dir.join(format!("seed-{}.csv", j.seed));
    let Some(path) = rt.block_on(run_arm(&cfg, &arm.policy, &csv, cancel.child_token()))? else {
        return Ok(None);
    };
    let run = load_run(&path, &arm.label)?;
    if let Some(why) = never_answered(&run) {
        return Err(why);
    }
    Ok(Some(run))
}

/// Progress over the runs: a bar on a terminal, a plain line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
    show: bool,
}

impl Progress {
    fn new(total: usize, show: bool) -> Self {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} runs · {per_sec} · ETA {eta} {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        let now = Instant::now();
        Progress { bar, total, done: 0, started: now, last_line: now, show }
    }

    fn line(&self) -> String {
        let el = self.started.elapsed().as_secs_f64();
        let rate = if el > 0.0 { self.done as f64 / el } else { 0.0 };
        let eta = if rate > 0.0 { (self.total - self.done) as f64 / rate } else { f64::NAN };
        format!("sweep: {}/{} runs · {rate:.1} runs/s · ETA {eta:.0} s", self.done, self.total)
    }

    fn step(&mut self, failed: Option<&str>) {
        self.done += 1;
        if let Some(b) = &self.bar {
            if let Some(f) = failed {
                b.println(format!("FAILED {f}"));
            }
            b.inc(1);
        } else if self.show {
            if let Some(f) = failed {
                eprintln!("FAILED {f}");
            }
            if self.last_line.elapsed().as_secs_f64() >= 2.0 || self.done == self.total {
                self.last_line = Instant::now();
                eprintln!("{}", self.line());
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Run every (scenario, arm, seed) on `spec.jobs` threads, then describe and write the outputs.
/// A cancelled `cancel` stops the runs under way (they are not kept) and reports what finished.
pub fn sweep(spec: &SweepSpec, rcfg: &ReportConfig, cancel: &CancellationToken) -> Result<SweepOutcome, String> {
    if spec.scenarios.is_empty() || spec.arms.is_empty() || spec.seeds.is_empty() {
        return Err("a sweep needs at least one scenario, policy and seed".into());
    }
    if spec.baseline >= spec.arms.len() {
        return Err("the baseline is not one of the policies".into());
    }
    std::fs::create_dir_all(&spec.out_dir).map_err(|e| format!("{}: {e}", spec.out_dir.display()))?;
    let mut jobs = Vec::new();
    for scenario in 0..spec.scenarios.len() {
        for arm in 0..spec.arms.len() {
            for &seed in &spec.seeds {
                jobs.push(Job { scenario, arm, seed });
            }
        }
    }
    let started = Instant::now();
    let planned = jobs.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> = Mutex::new((0..planned).map(|_| None).collect());
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    let threads = spec.jobs.clamp(1, planned);
    let mut progress = Progress::new(planned, spec.progress);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (jobs, next, results) = (&jobs, &next, &results);
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                loop {
                    if cancel.is_cancelled() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(j) = jobs.get(i) else { break };
                    let r = match &rt {
                        Ok(rt) => run_job(spec, j, rt, cancel),
                        Err(e) => Err(format!("cannot start the async runtime: {e}")),
                    };
                    let failed = match &r {
                        Err(e) => Some(format!(
                            "{} · {} · seed {}: {e}",
                            spec.scenarios[j.scenario].name, spec.arms[j.arm].label, j.seed
                        )),
                        Ok(_) => None,
                    };
                    let finished = !matches!(r, Ok(None));
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                    if finished {
                        let _ = tx.send(failed);
                    }
                }
            });
        }
        drop(tx);
        for failed in rx {
            progress.step(failed.as_deref());
        }
    });
    progress.finish();
    let wall_s = started.elapsed().as_secs_f64();
    let results = results.into_inner().map_err(|_| "a sweep worker panicked".to_string())?;
    let mut cells = Vec::new();
    let mut failures = Vec::new();
    for (j, r) in jobs.iter().zip(results) {
        match r {
            Some(Ok(Some(run))) => {
                let summary = summarize(&run, rcfg);
                cells.push(Cell { scenario: j.scenario, arm: j.arm, seed: j.seed, summary, run });
            }
            Some(Err(e)) => failures.push(format!(
                "{} · {} · seed {}: {e}",
                spec.scenarios[j.scenario].name, spec.arms[j.arm].label, j.seed
            )),
            Some(Ok(None)) | None => {}
        }
    }
    let complete = cells.len() + failures.len() == planned;
    let analysis = analyse(spec, &cells, rcfg);
    let mut text = format!(
        "{}sweep: {} scenario(s) × {} policies × {} seeds = {planned} runs; {} finished in {wall_s:.1} s ({:.1} runs/s, {threads} jobs)\n",
        if complete { "" } else { "PARTIAL (interrupted) " },
        spec.scenarios.len(),
        spec.arms.len(),
        spec.seeds.len(),
        cells.len(),
        cells.len() as f64 / wall_s.max(1e-9),
    );
    let _ = writeln!(
        text,
        "seeds {} · baseline {} · 95 % bootstrap intervals of the mean ({} resamples) · paired by seed: Wilcoxon signed-rank, Holm-corrected\n",
        seeds_text(&spec.seeds),
        spec.arms[spec.baseline].label,
        spec.resamples
    );
    let md = markdown_report(&analysis, &|s| format!(" ({} min per run)", spec.scenarios[s].minutes));
    text.push_str(&md);
    let files = write_outputs(spec, &cells, &analysis, rcfg, complete, &md, wall_s)?;
    for f in files {
        let _ = writeln!(text, "wrote {}", f.display());
    }
    for f in &failures {
        let _ = writeln!(text, "FAILED {f}");
    }
    Ok(SweepOutcome { text, cells, failures, planned, complete, wall_s })
}

fn seeds_text(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if contiguous && seeds.len() > 2 => format!("{a}..{b}"),
        _ => seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
    }
}

pub fn analyse(spec: &SweepSpec, cells: &[Cell], _rcfg: &ReportConfig) -> Analysis {
    let arms: Vec<String> = spec.arms.iter().map(|a| a.label.clone()).collect();
    let scenarios: Vec<String> = spec.scenarios.iter().map(|s| s.name.clone()).collect();
    analyse_groups(&scenarios, &arms, spec.baseline, &spec.seeds, cells, spec.resamples)
}

/// The Markdown tables of every scenario; `subtitle` adds to each scenario's heading.
pub fn markdown_report(a: &Analysis, subtitle: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    for (s, name) in a.scenarios.iter().enumerate() {
        let _ = writeln!(out, "## {name}{}\n", subtitle(s));
        for (title, head, rows) in tables(a, s, Some(&MAIN)) {
            let _ = writeln!(out, "{title}\n");
            out.push_str(&super::markdown(&head, &rows));
            out.push('\n');
        }
    }
    out
}

fn write_csv(path: &Path, head: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<(), String> {
    let name = path.display().to_string();
    let mut w = csv::Writer::from_path(path).map_err(|e| format!("{name}: {e}"))?;
    w.write_record(head).map_err(|e| format!("{name}: {e}"))?;
    for r in rows {
        w.write_record(&r).map_err(|e| format!("{name}: {e}"))?;
    }
    w.flush().map_err(|e| format!("{name}: {e}"))
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        String::new()
    }
}

/// `runs.csv` (scenario, policy, seed, figure, value) and `stats.csv`.
pub fn write_tables(dir: &Path, a: &Analysis, cells: &[Cell]) -> Result<Vec<PathBuf>, String> {
    let runs = dir.join("runs.csv");
    write_csv(
        &runs,
        &["scenario", "policy", "seed", "figure", "value"],
        cells.iter().flat_map(|c| {
            FIGURES.iter().filter_map(move |f| {
                (f.get)(&c.summary).map(|v| {
                    vec![
                        a.scenarios[c.scenario].clone(),
                        a.arms[c.arm].clone(),
                        c.seed.to_string(),
                        f.name.into(),
                        num(v),
                    ]
                })
            })
        }),
    )?;
    let stats_csv = dir.join("stats.csv");
    let mut rows = Vec::new();
    for (s, per_arm) in a.stats.iter().enumerate() {
        for (arm, per_fig) in per_arm.iter().enumerate() {
            for (f, st) in per_fig.iter().enumerate() {
                let Some(d) = st.described else { continue };
                let mut r = vec![
                    a.scenarios[s].clone(),
                    a.arms[arm].clone(),
                    FIGURES[f].name.to_string(),
                    d.n.to_string(),
                    num(d.mean),
                    num(d.sd),
                    num(d.median),
                    num(d.ci_low),
                    num(d.ci_high),
                    a.arms[a.baseline].clone(),
                ];
                match st.paired {
                    Some(p) => r.extend([
                        p.delta.n.to_string(),
                        num(p.delta.mean),
                        num(p.delta.ci_low),
                        num(p.delta.ci_high),
                        p.p.map_or(String::new(), num),
                        p.holm.map_or(String::new(), num),
                    ]),
                    None => r.extend(std::iter::repeat_n(String::new(), 6)),
                }
                rows.push(r);
            }
        }
    }
    write_csv(
        &stats_csv,
        &[
            "scenario",
            "policy",
            "figure",
            "n",
            "mean",
            "sd",
            "median",
            "ci_low",
            "ci_high",
            "baseline",
            "paired_n",
            "delta_mean",
            "delta_ci_low",
            "delta_ci_high",
            "wilcoxon_p",
            "holm_p",
        ],
        rows.into_iter(),
    )?;
    Ok(vec![runs, stats_csv])
}

/// Everything written from an analysis: `runs.csv`, `stats.csv`, `report.md`, the plots,
/// `report.html` and the `manifest` as `sweep.json`. `notes` head the reports.
pub fn write_all(
    dir: &Path,
    a: &Analysis,
    cells: &[Cell],
    rcfg: &ReportConfig,
    notes: &[String],
    md: &str,
    manifest: &serde_json::Value,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = write_tables(dir, a, cells)?;
    let mpath = dir.join("sweep.json");
    let text = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    std::fs::write(&mpath, text + "\n").map_err(|e| format!("{}: {e}", mpath.display()))?;
    files.push(mpath);
    let md_path = dir.join("report.md");
    let head: String = notes.iter().map(|n| format!("{n}\n\n")).collect();
    std::fs::write(&md_path, format!("{head}{md}")).map_err(|e| format!("{}: {e}", md_path.display()))?;
    files.push(md_path);
    let plots = super::sweep_plot::plot_sweep(dir, cells, a, rcfg)?;
    files.push(dir.join("plots").join(format!("*.png, *.svg ({} plots)", plots.svgs.len())));
    let html = dir.join("report.html");
    let title = notes.first().cloned().unwrap_or_else(|| "scaletui".into());
    super::html::write_report(&html, &title, &notes[1.min(notes.len())..], a, &plots.svgs)?;
    files.push(html);
    Ok(files)
}

fn write_outputs(
    spec: &SweepSpec,
    cells: &[Cell],
    a: &Analysis,
    rcfg: &ReportConfig,
    complete: bool,
    md: &str,
    wall_s: f64,
) -> Result<Vec<PathBuf>, String> {
    let settings = crate::engine::record::summary::settings(&spec.scenarios[0].base);
    let planned = spec.scenarios.len() * spec.arms.len() * spec.seeds.len();
    let manifest = serde_json::json!({
        "complete": complete,
        "planned_runs": planned,
        "finished_runs": cells.len(),
        "wall_s": wall_s,
        "scenarios": spec.scenarios.iter().map(|s| serde_json::json!({"file": s.file, "name": s.name, "minutes": s.minutes})).collect::<Vec<_>>(),
        "policies": spec.arms.iter().map(|a| serde_json::json!({"label": a.label, "dir": a.slug})).collect::<Vec<_>>(),
        "seeds": spec.seeds,
        "baseline": spec.arms[spec.baseline].label,
        "resamples": spec.resamples,
        "settings": settings,
    });
    let mut notes = vec![format!(
        "scaletui sweep: {} scenario(s) × {} policies × {} seeds",
        spec.scenarios.len(),
        spec.arms.len(),
        spec.seeds.len()
    )];
    if !complete {
        notes.push("PARTIAL: the sweep was interrupted; only finished runs are here.".into());
    }
    notes.push(format!(
        "seeds {} · baseline {} · 95 % bootstrap intervals of the mean ({} resamples) · paired by seed: Wilcoxon signed-rank, Holm-corrected · {} of {planned} runs finished",
        seeds_text(&spec.seeds),
        spec.arms[spec.baseline].label,
        spec.resamples,
        cells.len(),
    ));
    notes.push(format!("settings: {}", crate::engine::record::summary::describe_settings(&settings)));
    write_all(&spec.out_dir, a, cells, rcfg, &notes, md, &manifest)
}

/// The policy a record ran: its most frequent mode, with the driver in ai_scaler.
pub fn recorded_policy(run: &RunData) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in &run.rows {
        let key = if r.mode == "ai_scaler" && !r.driver.is_empty() {
            format!("ai_scaler:{}", r.driver)
        } else {
            r.mode.clone()
        };
        match counts.iter_mut().find(|c| c.0 == key) {
            Some(c) => c.1 += 1,
            None => counts.push((key, 1)),
        }
    }
    counts.into_iter().max_by_key(|c| c.1).map_or_else(|| "unknown".into(), |c| c.0)
}

/// `scaletui report --label NAME=A.csv,B.csv ...`: statistics over repeated recorded runs, one
/// row per group; runs are paired by their position in each group.
pub fn report_groups(
    groups: &[(String, Vec<PathBuf>)],
    baseline: Option<&str>,
    resamples: usize,
    out_dir: &Path,
    rcfg: &ReportConfig,
) -> Result<String, String> {
    if groups.is_empty() {
        return Err("no runs to report".into());
    }
    let arms: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    let baseline = match baseline {
        None => 0,
        Some(b) => arms
            .iter()
            .position(|x| x == b)
            .ok_or_else(|| format!("--baseline {b:?} is not one of the groups ({})", arms.join(", ")))?,
    };
    let mut cells = Vec::new();
    for (arm, (label, files)) in groups.iter().enumerate() {
        for (i, f) in files.iter().enumerate() {
            let run = load_run(f, label)?;
            let summary = summarize(&run, rcfg);
            cells.push(Cell { scenario: 0, arm, seed: i as u64 + 1, summary, run });
        }
    }
    let longest = groups.iter().map(|g| g.1.len()).max().unwrap_or(0);
    let keys: Vec<u64> = (1..=longest as u64).collect();
    let scenarios = vec!["recorded runs".to_string()];
    let a = analyse_groups(&scenarios, &arms, baseline, &keys, &cells, resamples);
    let sizes: Vec<String> = groups.iter().map(|g| format!("{} {}", g.0, g.1.len())).collect();
    let notes = vec![
        format!("scaletui report: {} groups of recorded runs ({})", groups.len(), sizes.join(", ")),
        format!(
            "baseline {} · 95 % bootstrap intervals of the mean ({resamples} resamples) · paired by position in each group (the first run of one with the first of the other, …): Wilcoxon signed-rank, Holm-corrected",
            arms[baseline]
        ),
    ];
    let md = markdown_report(&a, &|_| String::new());
    let manifest = serde_json::json!({
        "complete": true,
        "groups": groups.iter().map(|g| serde_json::json!({"label": g.0, "files": g.1})).collect::<Vec<_>>(),
        "baseline": arms[baseline],
        "resamples": resamples,
    });
    let files = write_all(out_dir, &a, &cells, rcfg, &notes, &md, &manifest)?;
    let mut text = format!("{}\n{}\n\n{md}", notes[0], notes[1]);
    for f in files {
        let _ = writeln!(text, "wrote {}", f.display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seeds("1..5"), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(parse_seeds("3,1,3, 7..8"), Ok(vec![3, 1, 7, 8]));
        assert_eq!(parse_seeds("1..=2"), Ok(vec![1, 2]));
        assert!(parse_seeds("5..1").is_err());
        assert!(parse_seeds("x").is_err());
        assert!(parse_seeds("").is_err());
        assert!(parse_seeds("0..1000000").is_err());
    }

    #[test]
    fn vary_makes_every_combination_and_sets_keys() {
        let c = parse_vary(&["scaling.cpu_target=50,60".into(), "experiment.interval=15,30".into()]).expect("vary");
        assert_eq!(c.len(), 4);
        let a = arms(&[Policy::Hpa(None)], &c);
        assert_eq!(a[1].label, "hpa cpu_target=50 interval=30");
        assert_eq!(a[1].slug, "hpa_cpu_target_50_interval_30");
        let cfg = set_key(&Config::default(), "scaling.cpu_target", &toml::Value::Integer(55)).expect("set");
        assert_eq!(cfg.scaling.cpu_target, 55);
        let e = set_key(&Config::default(), "scaling.cpu_target", &toml::Value::String("x".into()));
        assert!(e.is_err());
        let e = set_key(&Config::default(), "scaling.no_such_key", &toml::Value::Integer(1)).err().unwrap_or_default();
        assert!(e.contains("no_such_key"), "{e}");
        assert!(parse_vary(&["nokey".into()]).is_err());
    }
}
