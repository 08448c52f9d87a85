//! The small forms behind `c`, `m`, `l` and `e`: text fields prefilled from the configuration
//! (`[stress.cpu]`, `[stress.memory]`, `[load]`), validated on Enter into the engine's command.
//! Errors name the field and stay in the form.

use std::path::PathBuf;

use ratatui::crossterm::event::KeyEvent;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::TextArea;

use crate::config::Config;
use crate::engine::load::wave::WaveParams;
use crate::engine::load::{LoadParams, Schedule};
use crate::engine::messages::EngineCommand;
use crate::engine::stress::{CpuStressParams, MemoryStressParams, StressParams};

/// One labelled, single-line field.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub help: &'static str,
    pub input: TextArea<'static>,
}

impl Field {
    fn new(label: &'static str, help: &'static str, value: impl Into<String>) -> Self {
        let mut input = TextArea::new(vec![value.into()]);
        input.set_cursor_line_style(Style::default());
        input.move_cursor(ratatui_textarea::CursorMove::End);
        Self { label, help, input }
    }

    pub fn value(&self) -> String {
        self.input.lines().first().map(|s| s.trim().to_string()).unwrap_or_default()
    }

    fn set_focus(&mut self, on: bool) {
        self.input.set_cursor_style(if on {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Cpu,
    Memory,
    Load,
}

/// A form: its fields, the focused one and the last validation error.
#[derive(Debug, Clone)]
pub struct Form {
    pub kind: FormKind,
    pub title: &'static str,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub error: Option<String>,
}

fn num(s: f64) -> String {
    if s.fract() == 0.0 && s.abs() < 1e15 { format!("{}", s as i64) } else { format!("{s}") }
}

fn parse_f(label: &str, text: &str, min: f64) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min => Ok(v),
        _ => Err(format!("{label}: needs a number >= {}, not {text:?}", num(min))),
    }
}

fn parse_u(label: &str, text: &str, min: u64) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(format!("{label}: needs a whole number >= {min}, not {text:?}")),
    }
}

/// Load patterns and the fields each one uses (by label).
const LOAD_FIELDS: &[(&str, &[&str])] = &[
    ("constant", &["rps", "duration s"]),
    ("ramp", &["start rps", "end rps", "ramp s", "hold s"]),
    ("step", &["start rps", "end rps", "steps", "ramp s", "hold s"]),
    ("sine", &["start rps", "end rps", "period s", "duration s"]),
    ("trace", &["trace file"]),
    ("wave", &["duration s", "wave seed"]),
];

impl Form {
    pub fn cpu(cfg: &Config) -> Self {
        let c = &cfg.stress.cpu;
        Self::with(
            FormKind::Cpu,
            "CPU stress",
            vec![
                Field::new("workers", "busy-loop workers per pod (each up to one core)", c.workers.to_string()),
                Field::new("duration s", "seconds of run clock; 0 = until stopped", num(c.duration)),
                Field::new("max pods", "at most this many pods; 0 = all", c.max_pods.to_string()),
                Field::new("refresh s", "seconds between looks for new pods", num(c.refresh)),
            ],
        )
    }

    pub fn memory(cfg: &Config) -> Self {
        let m = &cfg.stress.memory;
        Self::with(
            FormKind::Memory,
            "Memory stress",
            vec![
                Field::new("MiB", "MiB held in /dev/shm per pod", m.mb.to_string()),
                Field::new("duration s", "seconds of run clock; 0 = until stopped", num(m.duration)),
                Field::new("max pods", "at most this many pods; 0 = all", m.max_pods.to_string()),
            ],
        )
    }

    pub fn load(cfg: &Config) -> Self {
        let l = &cfg.load;
        Self::with(
            FormKind::Load,
            "Load generator",
            vec![
                Field::new("pattern", "constant, ramp, step, sine, trace or wave", l.pattern.clone()),
                Field::new("rps", "requests/s of a constant load", num(l.rps)),
                Field::new("start rps", "ramp/step start, sine minimum", num(l.ramp_start)),
                Field::new("end rps", "ramp/step end, sine maximum", num(l.ramp_end)),
                Field::new("ramp s", "seconds from start to end rps", num(l.ramp_duration)),
                Field::new("hold s", "seconds at end rps after the ramp", num(l.hold)),
                Field::new("steps", "number of equal steps", l.steps.to_string()),
                Field::new("period s", "sine period", num(l.period)),
                Field::new("duration s", "seconds of a constant or sine load", num(l.duration)),
                Field::new("trace file", "requests/s values, one per second", l.trace.clone()),
                Field::new("wave seed", "seed of seed 003's rate generator", l.wave_seed.to_string()),
                Field::new("url", "empty: the cluster's own target", l.url.clone()),
                Field::new("concurrency", "most requests in flight", l.concurrency.to_string()),
            ],
        )
    }

    fn with(kind: FormKind, title: &'static str, fields: Vec<Field>) -> Self {
        let mut f = Self { kind, title, fields, focus: 0, error: None };
        f.refocus();
        f
    }

    fn get(&self, label: &str) -> String {
        self.fields.iter().find(|f| f.label == label).map(Field::value).unwrap_or_default()
    }

    /// Is a field used with the values typed so far? (Load fields depend on the pattern.)
    pub fn visible(&self, i: usize) -> bool {
        if self.kind != FormKind::Load {
            return true;
        }
        let Some(field) = self.fields.get(i) else { return false };
        let pattern = self.get("pattern");
        match LOAD_FIELDS.iter().find(|(p, _)| *p == pattern) {
            Some((_, used)) => matches!(field.label, "pattern" | "url" | "concurrency") || used.contains(&field.label),
            None => true,
        }
    }

    pub fn visible_fields(&self) -> Vec<usize> {
        (0..self.fields.len()).filter(|i| self.visible(*i)).collect()
    }

    fn refocus(&mut self) {
        let focus = self.focus;
        for (i, f) in self.fields.iter_mut().enumerate() {
            f.set_focus(i == focus);
        }
    }

    /// Move the focus among the visible fields.
    pub fn move_focus(&mut self, by: isize) {
        let vis = self.visible_fields();
        if vis.is_empty() {
            return;
        }
        let cur = vis.iter().position(|i| *i == self.focus).unwrap_or(0) as isize;
        self.focus = vis[(cur + by).rem_euclid(vis.len() as isize) as usize];
        self.refocus();
    }

    /// Typing in the focused field.
    pub fn input(&mut self, key: KeyEvent) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.input.input(key);
            self.error = None;
        }
    }

    /// Validate into the engine's command.
    pub fn submit(&self, cfg: &Config) -> Result<EngineCommand, String> {
        match self.kind {
            FormKind::Cpu => {
                let workers = parse_u("workers", &self.get("workers"), 1)?;
                let workers = u32::try_from(workers).map_err(|_| "workers: too many".to_string())?;
                Ok(EngineCommand::StartStress(StressParams::Cpu(CpuStressParams {
                    workers,
                    duration_s: parse_f("duration s", &self.get("duration s"), 0.0)?,
                    max_pods: parse_u("max pods", &self.get("max pods"), 0)? as usize,
                    refresh_s: {
                        let r = parse_f("refresh s", &self.get("refresh s"), 0.0)?;
                        if r <= 0.0 {
                            return Err("refresh s: needs a number > 0".into());
                        }
                        r
                    },
                })))
            }
            FormKind::Memory => Ok(EngineCommand::StartStress(StressParams::Memory(MemoryStressParams {
                mib: parse_u("MiB", &self.get("MiB"), 1)?,
                duration_s: parse_f("duration s", &self.get("duration s"), 0.0)?,
                max_pods: parse_u("max pods", &self.get("max pods"), 0)? as usize,
            }))),
            FormKind::Load => self.load_params(cfg).map(EngineCommand::StartLoad),
        }
    }

    fn load_params(&self, cfg: &Config) -> Result<LoadParams, String> {
        let pattern = self.get("pattern");
        let f = |label: &str| parse_f(label, &self.get(label), 0.0);
        let schedule = match pattern.as_str() {
            "constant" => {
                let d = f("duration s")?;
                Schedule::Constant { rps: f("rps")?, duration_s: if d > 0.0 { d } else { f64::INFINITY } }
            }
            "ramp" => Schedule::Ramp {
                start_rps: f("start rps")?,
                end_rps: f("end rps")?,
                ramp_s: f("ramp s")?,
                hold_s: f("hold s")?,
            },
            "step" => {
                let steps = parse_u("steps", &self.get("steps"), 1)?;
                let steps = u32::try_from(steps).map_err(|_| "steps: too many".to_string())?;
                Schedule::steps_between(f("start rps")?, f("end rps")?, steps, f("ramp s")?, f("hold s")?)
            }
            "sine" => {
                let period = f("period s")?;
                if period <= 0.0 {
                    return Err("period s: needs a number > 0".into());
                }
                let (lo, hi) = (f("start rps")?, f("end rps")?);
                if lo > hi {
                    return Err("sine: start rps (the minimum) must not exceed end rps (the maximum)".into());
                }
                let d = f("duration s")?;
                Schedule::Sine {
                    min_rps: lo,
                    max_rps: hi,
                    period_s: period,
                    duration_s: if d > 0.0 { d } else { f64::INFINITY },
                }
            }
            "trace" => {
                let path = self.get("trace file");
                if path.is_empty() {
                    return Err("trace file: give the path of a file of requests/s values".into());
                }
                Schedule::trace_file(std::path::Path::new(&path), 1.0).map_err(|e| format!("trace file: {e}"))?
            }
            "wave" => {
                let d = f("duration s")?;
                if d <= 0.0 {
                    return Err("duration s: a wave needs a duration > 0".into());
                }
                let seed = parse_u("wave seed", &self.get("wave seed"), 0)?;
                let w = WaveParams { duration_s: d, ..WaveParams::default() };
                w.validate()?;
                w.steps(seed)
            }
            other => return Err(format!("pattern: constant, ramp, step, sine, trace or wave, not {other:?}")),
        };
        if schedule.duration() <= 0.0 {
            return Err("the schedule lasts 0 seconds; give it a duration".into());
        }
        schedule.validate()?;
        let url = self.get("url");
        let concurrency = parse_u("concurrency", &self.get("concurrency"), 1)? as usize;
        Ok(LoadParams {
            schedule,
            url: (!url.is_empty()).then_some(url),
            concurrency,
            timeout_s: cfg.load.timeout_s,
            method: cfg.load.method.clone(),
            headers: Vec::new(),
            body: None,
        })
    }
}

/// The `e` export: one editable path.
#[derive(Debug, Clone)]
pub struct ExportForm {
    pub path: Field,
    pub rows: usize,
    pub error: Option<String>,
}

impl ExportForm {
    /// Prefilled with `<output_dir>/dashboard_<mode>_<YYYYmmdd_HHMMSS>.csv` (UTC, now).
    pub fn new(cfg: &Config, mode: crate::engine::types::Mode, wall_now: f64, rows: usize) -> Self {
        let name = crate::engine::record::run_file_name(mode, wall_now).replacen("experiment_", "dashboard_", 1);
        let path = cfg.experiment.output_dir.join(name);
        let mut f = Field::new("path", "where to write the CSV (folders are created)", path.display().to_string());
        f.set_focus(true);
        Self { path: f, rows, error: None }
    }

    pub fn input(&mut self, key: KeyEvent) {
        self.path.input.input(key);
        self.error = None;
    }

    pub fn submit(&self) -> Result<PathBuf, String> {
        let p = self.path.value();
        if p.is_empty() {
            return Err("give a file path".into());
        }
        let path = PathBuf::from(&p);
        if path.is_dir() {
            return Err(format!("{p} is a folder; give a file name"));
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn retype(form: &mut Form, label: &str, text: &str) {
        form.focus = form.fields.iter().position(|f| f.label == label).expect("field");
        for _ in 0..40 {
            form.input(key(KeyCode::Backspace));
        }
        for c in text.chars() {
            form.input(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn forms_are_prefilled_from_the_config() {
        let mut cfg = Config::default();
        cfg.stress.cpu.workers = 3;
        cfg.stress.memory.mb = 40;
        cfg.load.ramp_end = 90.0;
        let cmd = Form::cpu(&cfg).submit(&cfg).expect("valid");
        assert_eq!(
            cmd,
            EngineCommand::StartStress(StressParams::Cpu(CpuStressParams {
                workers: 3,
                duration_s: 300.0,
                max_pods: 0,
                refresh_s: 15.0
            }))
        );
        let cmd = Form::memory(&cfg).submit(&cfg).expect("valid");
        assert_eq!(
            cmd,
            EngineCommand::StartStress(StressParams::Memory(MemoryStressParams {
                mib: 40,
                duration_s: 300.0,
                max_pods: 0
            }))
        );
        let EngineCommand::StartLoad(p) = Form::load(&cfg).submit(&cfg).expect("valid") else { panic!("load") };
        assert_eq!(p.schedule, Schedule::Ramp { start_rps: 10.0, end_rps: 90.0, ramp_s: 120.0, hold_s: 0.0 });
        assert_eq!((p.url, p.concurrency, p.timeout_s, p.method.as_str()), (None, 256, 5.0, "GET"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let cfg = Config::default();
        let mut f = Form::cpu(&cfg);
        retype(&mut f, "workers", "0");
        assert_eq!(f.submit(&cfg), Err("workers: needs a whole number >= 1, not \"0\"".to_string()));
        retype(&mut f, "workers", "4");
        retype(&mut f, "duration s", "soon");
        assert!(f.submit(&cfg).expect_err("bad").starts_with("duration s:"));
        let mut f = Form::load(&cfg);
        retype(&mut f, "pattern", "zigzag");
        assert!(f.submit(&cfg).expect_err("bad").starts_with("pattern:"));
        retype(&mut f, "pattern", "trace");
        assert!(f.submit(&cfg).expect_err("bad").starts_with("trace file:"));
    }

    #[test]
    fn load_fields_follow_the_pattern() {
        let cfg = Config::default();
        let mut f = Form::load(&cfg);
        let labels = |f: &Form| f.visible_fields().iter().map(|i| f.fields[*i].label).collect::<Vec<_>>();
        assert_eq!(labels(&f), ["pattern", "start rps", "end rps", "ramp s", "hold s", "url", "concurrency"]);
        retype(&mut f, "pattern", "constant");
        assert_eq!(labels(&f), ["pattern", "rps", "duration s", "url", "concurrency"]);
        let EngineCommand::StartLoad(p) = f.submit(&cfg).expect("valid") else { panic!("load") };
        assert_eq!(p.schedule, Schedule::Constant { rps: 50.0, duration_s: 300.0 });
        // Seed 003's generator: its duration and seed.
        retype(&mut f, "pattern", "wave");
        assert_eq!(labels(&f), ["pattern", "duration s", "wave seed", "url", "concurrency"]);
        retype(&mut f, "wave seed", "7");
        let EngineCommand::StartLoad(w) = f.submit(&cfg).expect("valid") else { panic!("load") };
        assert_eq!(w.schedule, WaveParams { duration_s: 300.0, ..WaveParams::default() }.steps(7));
        retype(&mut f, "wave seed", "x");
        assert!(f.submit(&cfg).expect_err("bad").starts_with("wave seed:"));
        retype(&mut f, "wave seed", "7");
        retype(&mut f, "pattern", "constant");
        // Focus skips hidden fields.
        f.focus = 0;
        f.move_focus(1);
        assert_eq!(f.fields[f.focus].label, "rps");
        f.move_focus(-2);
        assert_eq!(f.fields[f.focus].label, "concurrency");
        retype(&mut f, "pattern", "step");
        let EngineCommand::StartLoad(p) = f.submit(&cfg).expect("valid") else { panic!("load") };
        assert_eq!(p.schedule, Schedule::steps_between(10.0, 150.0, 4, 120.0, 0.0));
    }

    #[test]
    fn export_path_is_editable_and_checked() {
        let cfg = Config::default();
        let mut e = ExportForm::new(&cfg, crate::engine::types::Mode::HpaOnly, 1_700_000_000.0, 5);
        assert_eq!(e.submit(), Ok(PathBuf::from("./experiment_data/dashboard_hpa_only_20231114_221320.csv")));
        for _ in 0..80 {
            e.input(key(KeyCode::Backspace));
        }
        assert!(e.submit().is_err());
        for c in "/tmp".chars() {
            e.input(key(KeyCode::Char(c)));
        }
        assert!(e.submit().expect_err("a folder").contains("folder"));
    }
}
