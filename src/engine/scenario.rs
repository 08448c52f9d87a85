//! Scenarios: a TOML file that scripts an experiment on a timeline — load phases, CPU/memory
//! stress windows and mode switches at given times (seconds after the start of the run).
//!
//! ```toml
//! name = "classic"
//! description = "ramp 10→150 rps over 120 s, hold 180 s, CPU and memory stress"
//! baseline_rps = 10          # between and after load phases (default: sim.baseline_rps)
//!
//! [[load]]                   # phases run one after another unless `at_s` is given
//! pattern = "ramp"           # constant | ramp | step | sine | trace
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
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cluster::sim::TrafficPlan;
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
}

impl Scenario {
    pub fn load_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fallback_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::parse(&text, base, &fallback_name).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path, fallback_name: &str) -> Result<Self, String> {
        let f: ScenarioFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            match crate::config::locate_toml_error(text, &e).0 {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }
        })?;
        let mut load = Vec::new();
        let mut cursor = 0.0;
        for (i, p) in f.load.iter().enumerate() {
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
        })
    }

    /// The end of the last scripted thing (load phase, stress window, mode switch).
    pub fn length_s(&self) -> f64 {
        let load = self.load.iter().map(|p| p.start_s + p.schedule.duration()).fold(0.0, f64::max);
        let stress = self.stress.iter().map(|s| s.at_s + s.duration_s).fold(0.0, f64::max);
        let modes = self.modes.iter().map(|m| m.at_s).fold(0.0, f64::max);
        load.max(stress).max(modes)
    }

    /// The load as a traffic plan with `baseline_rps` when no phase is active.
    pub fn plan(&self, default_baseline: f64) -> LoadPlan {
        LoadPlan { phases: self.load.clone(), baseline: self.baseline_rps.unwrap_or(default_baseline) }
    }
}

impl LoadPhaseFile {
    fn need(&self, v: Option<f64>, name: &str) -> Result<f64, String> {
        v.ok_or_else(|| format!("pattern {:?} needs {name}", self.pattern))
    }

    fn to_schedule(&self, base_dir: &Path) -> Result<Schedule, String> {
        Ok(match self.pattern.as_str() {
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
            other => return Err(format!("unknown pattern {other:?} (constant, ramp, step, sine, trace)")),
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
}

impl TrafficPlan for LoadPlan {
    fn rate(&self, t: f64) -> f64 {
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
