//! Scenarios: a TOML file that scripts an experiment on a timeline — load phases, CPU/memory
//! stress windows and mode switches at given times (seconds after the start of the run).
//!
//! ```toml
//! name = "classic"
//! description = "ramp 10→150 rps over 120 s, hold 180 s, CPU and memory stress"
//! baseline_rps = 10          # between and after load phases (default: sim.baseline_rps)
//!
//! [[load]]                   # phases run one after another unless `at_s` is given
//! pattern = "ramp"           # constant | ramp | step | sine | trace | timestamps | wave
//! start_rps = 10
//! end_rps = 150
//! ramp_s = 120
//! hold_s = 180
//!
//! [[stress]]
//! kind = "cpu"               # cpu | memory
//! at_s = 60
//! duration_s = 180
//! workers = 4
//!
//! [[mode]]
//! at_s = 600
//! mode = "ai_scaler"
//!
//! # The experiment's settings, over the config file (flags given on the command line win):
//! include = ["profiles/nginx-local.toml"]   # [sim]/[scaling]/... tables of other files, first
//! [sim]                      # any key of the config's [sim], e.g. routing, concurrency
//! routing = "central_queue"
//! [sim.service]
//! distribution = "lognormal"
//! mean_ms = 200
//! cv = 0.3
//! [scaling]                  # min/max, targets, metrics, behavior
//! metrics = ["cpu"]
//! [recommenders.queue]
//! target = 50
//! [experiment]               # interval, duration, fallback, driver, mode
//! [reward]                   # the reward of learning policies (train dqn, the Python env)
//! interval = 15
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::wave::WaveParams;
use super::load::{Level, Schedule};
use super::types::{Mode, StressKind};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    baseline_rps: Option<f64>,
    #[serde(default)]
    load: Vec<LoadPhaseFile>,
    #[serde(default)]
    stress: Vec<StressWindow>,
    #[serde(default)]
    mode: Vec<ModeSwitch>,
    /// Files whose settings tables come first (relative to this file).
    #[serde(default)]
    include: Vec<PathBuf>,
    sim: Option<toml::Table>,
    scaling: Option<toml::Table>,
    recommenders: Option<toml::Table>,
    experiment: Option<toml::Table>,
    reward: Option<toml::Table>,
}

/// The tables of the configuration a scenario (or a file it includes) may set.
#[derive(Debug, Clone, PartialEq, Default)]
struct SettingsTables {
    sim: Option<toml::Table>,
    scaling: Option<toml::Table>,
    recommenders: Option<toml::Table>,
    experiment: Option<toml::Table>,
    reward: Option<toml::Table>,
}

/// A settings file (`include`): only those tables (and a name and description).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    sim: Option<toml::Table>,
    scaling: Option<toml::Table>,
    recommenders: Option<toml::Table>,
    experiment: Option<toml::Table>,
    reward: Option<toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadPhaseFile {
    pattern: String,
    at_s: Option<f64>,
    rps: Option<f64>,
    duration_s: Option<f64>,
    start_rps: Option<f64>,
    end_rps: Option<f64>,
    ramp_s: Option<f64>,
    hold_s: Option<f64>,
    steps: Option<u32>,
    levels: Option<Vec<Level>>,
    min_rps: Option<f64>,
    max_rps: Option<f64>,
    period_s: Option<f64>,
    /// Trace file, relative to the scenario file.
    file: Option<PathBuf>,
    values: Option<Vec<f64>>,
    step_s: Option<f64>,
    /// Multiply a trace's values.
    scale: Option<f64>,
    /// `wave`: the generator's seed (absent: the run's `sim.seed`, so every seed of a sweep or a
    /// training run sees another draw of the same workload).
    seed: Option<u64>,
    base_rpm: Option<f64>,
    amplitude_rpm: Option<f64>,
    min_rpm: Option<f64>,
    max_rpm: Option<f64>,
    cycle_s: Option<f64>,
    smoothing: Option<f64>,
}

/// A CPU or memory stress window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressWindow {
    pub kind: StressKind,
    pub at_s: f64,
    /// Seconds; 0 = until the end of the run.
    #[serde(default)]
    pub duration_s: f64,
    /// CPU: busy-loop workers per pod.
    #[serde(default)]
    pub workers: Option<u32>,
    /// Memory: MiB per pod.
    #[serde(default)]
    pub mib: Option<u64>,
    /// At most this many pods; 0 = all.
    #[serde(default)]
    pub max_pods: usize,
    /// CPU: seconds between looks for new pods.
    #[serde(default)]
    pub refresh_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeSwitch {
    pub at_s: f64,
    pub mode: Mode,
}

/// A load phase placed on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadPhase {
    pub start_s: f64,
    pub schedule: Schedule,
}

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub baseline_rps: Option<f64>,
    pub load: Vec<LoadPhase>,
    pub stress: Vec<StressWindow>,
    pub modes: Vec<ModeSwitch>,
    /// Configuration tables that override the config file for this run (`sim`, `scaling`,
    /// `recommenders`, `experiment`), includes merged in.
    pub settings: toml::Table,
    /// Where the scenario came from (names it in errors).
    pub source: String,
    /// Load phases that are `wave`s without a seed of their own: drawn again for each run's
    /// seed ([`Scenario::plan_seeded`]).
    pub unseeded_waves: Vec<(usize, WaveParams)>,
}

impl Scenario {
    pub fn load_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fallback_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::parse(&text, base, &fallback_name).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path, fallback_name: &str) -> Result<Self, String> {
        let f: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let mut settings = toml::Table::new();
        for inc in &f.include {
            let path = base_dir.join(inc);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("include {}: {e}", path.display()))?;
            let sf: SettingsFile =
                toml::from_str(&text).map_err(|e| format!("include {}: {}", path.display(), toml_error(&text, &e)))?;
            let _ = (sf.name, sf.description);
            let tables = SettingsTables {
                sim: sf.sim,
                scaling: sf.scaling,
                recommenders: sf.recommenders,
                experiment: sf.experiment,
                reward: sf.reward,
            };
            merge(&mut settings, tables.into_table(path.parent().unwrap_or(Path::new("."))));
        }
        let tables = SettingsTables {
            sim: f.sim.clone(),
            scaling: f.scaling.clone(),
            recommenders: f.recommenders.clone(),
            experiment: f.experiment.clone(),
            reward: f.reward.clone(),
        };
        merge(&mut settings, tables.into_table(base_dir));
        let mut load = Vec::new();
        let mut unseeded_waves = Vec::new();
        let mut cursor = 0.0;
        for (i, p) in f.load.iter().enumerate() {
            if p.pattern == "wave" && p.seed.is_none() {
                unseeded_waves.push((i, p.wave_params()));
            }
            let schedule = p.to_schedule(base_dir).map_err(|e| format!("load phase {}: {e}", i + 1))?;
            schedule.validate().map_err(|e| format!("load phase {}: {e}", i + 1))?;
            let start = p.at_s.unwrap_or(cursor);
            if !(start >= 0.0) {
                return Err(format!("load phase {}: at_s must be >= 0", i + 1));
            }
            if !schedule.duration().is_finite() {
                return Err(format!("load phase {}: needs a finite duration", i + 1));
            }
            cursor = start + schedule.duration();
            load.push(LoadPhase { start_s: start, schedule });
        }
        for (i, s) in f.stress.iter().enumerate() {
            if !(s.at_s >= 0.0 && s.duration_s >= 0.0) {
                return Err(format!("stress window {}: at_s and duration_s must be >= 0", i + 1));
            }
            match s.kind {
                StressKind::Cpu if s.workers == Some(0) => {
                    return Err(format!("stress window {}: workers must be >= 1", i + 1));
                }
                StressKind::Memory if s.mib.is_none() || s.mib == Some(0) => {
                    return Err(format!("stress window {}: memory stress needs mib >= 1", i + 1));
                }
                _ => {}
            }
        }
        let mut modes = f.mode.clone();
        modes.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        if f.baseline_rps.is_some_and(|b| !(b >= 0.0)) {
            return Err("baseline_rps must be >= 0".into());
        }
        Ok(Scenario {
            name: f.name.unwrap_or_else(|| fallback_name.to_string()),
            description: f.description,
            baseline_rps: f.baseline_rps,
            load,
            stress: f.stress,
            modes,
            settings,
            source: fallback_name.to_string(),
            unseeded_waves,
        })
    }

    /// The configuration for this scenario: `cfg` (defaults and the config file) with the
    /// scenario's tables over it. Command-line flags go on top afterwards.
    pub fn apply_settings(&self, cfg: &crate::config::Config) -> Result<crate::config::Config, String> {
        if self.settings.is_empty() {
            return Ok(cfg.clone());
        }
        if let Some(toml::Value::Table(e)) = self.settings.get("experiment")
            && e.contains_key("scenario")
        {
            return Err(format!("scenario {}: [experiment] cannot name another scenario", self.name));
        }
        let mut value = toml::Table::try_from(cfg).map_err(|e| format!("cannot merge the scenario's settings: {e}"))?;
        merge(&mut value, self.settings.clone());
        let merged: crate::config::Config = toml::Value::Table(value).try_into().map_err(|e: toml::de::Error| {
            format!("scenario {}: {}", self.name, e.message().trim().replace('\n', " "))
        })?;
        crate::config::validate(&merged).map_err(|(k, m)| format!("scenario {}: key `{k}`: {m}", self.name))?;
        Ok(merged)
    }

    /// The end of the last scripted thing (load phase, stress window, mode switch).
    pub fn length_s(&self) -> f64 {
        let load = self.load.iter().map(|p| p.start_s + p.schedule.duration()).fold(0.0, f64::max);
        let stress = self.stress.iter().map(|s| s.at_s + s.duration_s).fold(0.0, f64::max);
        let modes = self.modes.iter().map(|m| m.at_s).fold(0.0, f64::max);
        load.max(stress).max(modes)
    }

    /// The load as a traffic plan with `baseline_rps` when no phase is active (an unseeded
    /// `wave` is drawn with seed 0; runs use [`Scenario::plan_seeded`]).
    pub fn plan(&self, default_baseline: f64) -> LoadPlan {
        LoadPlan { phases: self.load.clone(), baseline: self.baseline_rps.unwrap_or(default_baseline) }
    }

    /// The plan of a run with this seed: `wave` phases without a seed of their own are drawn
    /// with it.
    pub fn plan_seeded(&self, default_baseline: f64, seed: u64) -> LoadPlan {
        let mut plan = self.plan(default_baseline);
        for (i, w) in &self.unseeded_waves {
            if let Some(p) = plan.phases.get_mut(*i) {
                p.schedule = w.schedule(seed);
            }
        }
        plan
    }
}

fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match crate::config::locate_toml_error(text, e).0 {
        Some(l) => format!("line {l}: {msg}"),
        None => msg,
    }
}

impl SettingsTables {
    /// The tables as one, paths in `[sim.service] file` made relative to `dir`.
    fn into_table(self, dir: &Path) -> toml::Table {
        let mut t = toml::Table::new();
        for (k, v) in [
            ("sim", self.sim),
            ("scaling", self.scaling),
            ("recommenders", self.recommenders),
            ("experiment", self.experiment),
            ("reward", self.reward),
        ] {
            if let Some(mut v) = v {
                if k == "sim"
                    && let Some(toml::Value::Table(service)) = v.get_mut("service")
                    && let Some(toml::Value::String(f)) = service.get_mut("file")
                    && !f.trim().is_empty()
                    && Path::new(f.as_str()).is_relative()
                {
                    *f = dir.join(f.as_str()).display().to_string();
                }
                t.insert(k.to_string(), toml::Value::Table(v));
            }
        }
        t
    }
}

/// `over` into `base`, table by table (other values replace).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl LoadPhaseFile {
    fn need(&self, v: Option<f64>, name: &str) -> Result<f64, String> {
        v.ok_or_else(|| format!("pattern {:?} needs {name}", self.pattern))
    }

    /// The `wave` generator's parameters (seed 003's where not given).
    fn wave_params(&self) -> WaveParams {
        let d = WaveParams::default();
        WaveParams {
            base_rpm: self.base_rpm.unwrap_or(d.base_rpm),
            amplitude_rpm: self.amplitude_rpm.unwrap_or(d.amplitude_rpm),
            min_rpm: self.min_rpm.unwrap_or(d.min_rpm),
            max_rpm: self.max_rpm.unwrap_or(d.max_rpm),
            cycle_s: self.cycle_s.unwrap_or(d.cycle_s),
            smoothing: self.smoothing.unwrap_or(d.smoothing),
            step_s: self.step_s.unwrap_or(d.step_s),
            duration_s: self.duration_s.unwrap_or(d.duration_s),
        }
    }

    fn to_schedule(&self, base_dir: &Path) -> Result<Schedule, String> {
        if self.pattern != "wave"
            && [
                self.seed.map(|_| 0.0),
                self.base_rpm,
                self.amplitude_rpm,
                self.min_rpm,
                self.max_rpm,
                self.cycle_s,
                self.smoothing,
            ]
            .iter()
            .any(Option::is_some)
        {
            return Err(format!(
                "seed, *_rpm, cycle_s and smoothing belong to pattern \"wave\", not {:?}",
                self.pattern
            ));
        }
        Ok(match self.pattern.as_str() {
            "wave" => {
                let w = self.wave_params();
                w.validate()?;
                w.schedule(self.seed.unwrap_or(0))
            }
            "constant" => Schedule::Constant {
                rps: self.need(self.rps, "rps")?,
                duration_s: self.need(self.duration_s, "duration_s")?,
            },
            "ramp" => Schedule::Ramp {
                start_rps: self.need(self.start_rps, "start_rps")?,
                end_rps: self.need(self.end_rps, "end_rps")?,
                ramp_s: self.need(self.ramp_s, "ramp_s")?,
                hold_s: self.hold_s.unwrap_or(0.0),
            },
            "step" => match &self.levels {
                Some(levels) => Schedule::Step { levels: levels.clone() },
                None => Schedule::steps_between(
                    self.need(self.start_rps, "start_rps (or levels)")?,
                    self.need(self.end_rps, "end_rps")?,
                    self.steps.unwrap_or(4),
                    self.need(self.ramp_s, "ramp_s")?,
                    self.hold_s.unwrap_or(0.0),
                ),
            },
            "sine" => Schedule::Sine {
                min_rps: self.need(self.min_rps, "min_rps")?,
                max_rps: self.need(self.max_rps, "max_rps")?,
                period_s: self.need(self.period_s, "period_s")?,
                duration_s: self.need(self.duration_s, "duration_s")?,
            },
            "timestamps" => match (&self.values, &self.file) {
                (Some(v), _) => Schedule::timestamps(v.clone())?,
                (None, Some(f)) => Schedule::timestamps_file(&base_dir.join(f))?,
                (None, None) => return Err("pattern \"timestamps\" needs file or values".into()),
            },
            "trace" => {
                let step = self.step_s.unwrap_or(1.0);
                let mut s = match (&self.values, &self.file) {
                    (Some(v), _) => Schedule::Trace { values: v.clone(), step_s: step },
                    (None, Some(f)) => Schedule::trace_file(&base_dir.join(f), step)?,
                    (None, None) => return Err("pattern \"trace\" needs file or values".into()),
                };
                if let (Some(k), Schedule::Trace { values, .. }) = (self.scale, &mut s) {
                    values.iter_mut().for_each(|v| *v *= k);
                }
                s
            }
            other => {
                return Err(format!("unknown pattern {other:?} (constant, ramp, step, sine, trace, timestamps, wave)"));
            }
        })
    }
}

/// Load phases on a timeline with a baseline rate in between; overlapping phases add up.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub phases: Vec<LoadPhase>,
    pub baseline: f64,
}

impl LoadPlan {
    pub fn single(schedule: Schedule, baseline: f64) -> Self {
        Self { phases: vec![LoadPhase { start_s: 0.0, schedule }], baseline }
    }

    /// A constant rate for ever.
    pub fn constant(rps: f64) -> Self {
        Self::single(Schedule::Constant { rps, duration_s: f64::INFINITY }, 0.0)
    }

    /// The spans no phase covers (where the baseline rate applies), from 0 on.
    pub fn gaps(&self) -> Vec<(f64, f64)> {
        let mut spans: Vec<(f64, f64)> =
            self.phases.iter().map(|p| (p.start_s, p.start_s + p.schedule.duration())).filter(|(a, b)| b > a).collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut gaps = Vec::new();
        let mut at = 0.0;
        for (a, b) in spans {
            if a > at {
                gaps.push((at, a));
            }
            at = f64::max(at, b);
        }
        if at.is_finite() {
            gaps.push((at, f64::INFINITY));
        }
        gaps
    }

    /// Requests/s at `t` seconds after the start: the active phases' rates added up, or the
    /// baseline between phases.
    pub fn rate(&self, t: f64) -> f64 {
        let mut active = false;
        let mut sum = 0.0;
        for p in &self.phases {
            let local = t - p.start_s;
            if local >= 0.0 && local < p.schedule.duration() {
                active = true;
                sum += p.schedule.rate(local);
            }
        }
        if active { sum } else { self.baseline }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_wave_without_a_seed_is_drawn_for_each_run() {
        let text = "[[load]]\npattern = \"wave\"\nduration_s = 600\n[[load]]\npattern = \"wave\"\nduration_s = 600\nseed = 3\n";
        let s = Scenario::parse(text, Path::new("."), "w").expect("parses");
        assert_eq!(s.unseeded_waves.len(), 1);
        let (a, b) = (s.plan_seeded(0.0, 1), s.plan_seeded(0.0, 2));
        assert_ne!(a.phases[0].schedule, b.phases[0].schedule, "another run seed, another wave");
        assert_eq!(a.phases[1].schedule, b.phases[1].schedule, "a wave with its own seed stays");
        assert_eq!(a.phases[1].schedule, WaveParams { duration_s: 600.0, ..WaveParams::default() }.schedule(3));
        assert!((a.phases[0].schedule.duration() - 600.0).abs() < 1e-9);
        let bad = "[[load]]\npattern = \"ramp\"\nstart_rps = 1\nend_rps = 2\nramp_s = 5\nseed = 3\n";
        let e = Scenario::parse(bad, Path::new("."), "w").expect_err("refused");
        assert!(e.contains("belong to pattern \"wave\""), "{e}");
    }

    use super::*;

    const CLASSIC: &str = r#"
name = "classic"
[[load]]
pattern = "ramp"
start_rps = 10
end_rps = 150
ramp_s = 120
hold_s = 180
[[stress]]
kind = "cpu"
at_s = 60
duration_s = 180
workers = 4
[[stress]]
kind = "memory"
at_s = 120
duration_s = 180
mib = 55
"#;

    #[test]
    fn classic_parses_and_plans() {
        let s = Scenario::parse(CLASSIC, Path::new("."), "x").expect("parses");
        assert_eq!(s.name, "classic");
        assert_eq!(s.length_s(), 300.0);
        let plan = s.plan(10.0);
        assert_eq!(plan.rate(0.0), 10.0);
        assert_eq!(plan.rate(60.0), 80.0);
        assert_eq!(plan.rate(200.0), 150.0);
        assert_eq!(plan.rate(400.0), 10.0, "baseline after the last phase");
    }

    #[test]
    fn gaps_are_where_no_phase_runs() {
        let s = Scenario::parse(CLASSIC, Path::new("."), "x").expect("parses");
        assert_eq!(s.plan(10.0).gaps(), vec![(300.0, f64::INFINITY)]);
        let plan = LoadPlan {
            phases: vec![
                LoadPhase { start_s: 10.0, schedule: Schedule::Constant { rps: 1.0, duration_s: 5.0 } },
                LoadPhase { start_s: 12.0, schedule: Schedule::Constant { rps: 1.0, duration_s: 10.0 } },
            ],
            baseline: 1.0,
        };
        assert_eq!(plan.gaps(), vec![(0.0, 10.0), (22.0, f64::INFINITY)]);
        assert!(LoadPlan::constant(5.0).gaps().is_empty());
    }

    #[test]
    fn settings_override_the_config_and_flags_come_later() {
        let text = "[sim]\nrouting = \"central_queue\"\n[sim.service]\nmean_ms = 200\n[scaling]\nmetrics = [\"cpu\"]\nmax_replicas = 6\n[experiment]\ninterval = 15\n";
        let s = Scenario::parse(text, Path::new("."), "x").expect("parses");
        let base = crate::config::Config::default();
        let c = s.apply_settings(&base).expect("merges");
        assert_eq!(c.sim.routing, crate::config::Routing::CentralQueue);
        assert_eq!(c.sim.service.mean_ms, 200.0);
        assert_eq!(c.sim.service.cv, base.sim.service.cv, "the rest of [sim.service] stays");
        assert_eq!((c.scaling.max_replicas, c.scaling.metrics.len()), (6, 1));
        assert_eq!(c.experiment.interval, 15.0);
        let e = Scenario::parse("[sim]\nroutng = 1\n", Path::new("."), "x")
            .expect("parses")
            .apply_settings(&base)
            .expect_err("unknown key");
        assert!(e.contains("routng"), "{e}");
        let e = Scenario::parse("[sim]\nconcurrency = 0\n", Path::new("."), "x")
            .expect("parses")
            .apply_settings(&base)
            .expect_err("bad value");
        assert!(e.contains("sim.concurrency"), "{e}");
        assert!(Scenario::parse("[ui]\ntheme = \"x\"\n", Path::new("."), "x").is_err(), "only experiment settings");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Scenario::parse("[[load]]\npattern = \"ramp\"\nstart_rps = 1\n", Path::new("."), "x")
            .expect_err("incomplete");
        assert!(e.contains("load phase 1") && e.contains("end_rps"), "{e}");
        let e = Scenario::parse("[[load]]\npatern = \"ramp\"\n", Path::new("."), "x").expect_err("typo");
        assert!(e.contains("line 2"), "{e}");
        let e = Scenario::parse("[[stress]]\nkind = \"memory\"\nat_s = 1\n", Path::new("."), "x").expect_err("no mib");
        assert!(e.contains("mib"), "{e}");
    }
}
