//! Everything the dashboard shows, owned by the UI task: what the engine reported (run facts,
//! the chart history, tasks, events, the advisor's stream) and the interface's own state (focus,
//! zoom, popups). Changed only by [`super::update::update`]; read by `widgets`.

use std::collections::VecDeque;

use crate::app::forms::{ExportForm, Form};
use crate::app::keymap::Keymap;
use crate::app::prompt_editor::PromptEditor;
use crate::app::rows::RowArchive;
use crate::app::series::SeriesStore;
use crate::app::theme::Themes;
use crate::config::Config;
use crate::engine::advisor::prompt::PromptTemplate;
use crate::engine::messages::{RunInfo, TaskId, TaskStatus};
use crate::engine::record::Row;
use crate::engine::types::Mode;

/// Fixed chart series (indexes into the [`SeriesStore`]); extra recommenders follow.
/// Seconds after a quit request before a second `q`/Ctrl-c is offered to force the exit.
pub const SLOW_STOP_S: f64 = 15.0;

pub mod sid {
    pub const SPEC: usize = 0;
    pub const READY: usize = 1;
    pub const HPA_SIM: usize = 2;
    pub const HPA_LIVE: usize = 3;
    pub const AI: usize = 4;
    pub const CPU: usize = 5;
    pub const CPU_TARGET: usize = 6;
    pub const AI_CPU: usize = 7;
    pub const MEM: usize = 8;
    pub const MEM_TARGET: usize = 9;
    pub const AI_MEM: usize = 10;
    pub const RPS: usize = 11;
    pub const SERVED: usize = 12;
    pub const ERRORS: usize = 13;
    pub const LOAD_TARGET: usize = 14;
    pub const LOAD_ACHIEVED: usize = 15;
    pub const P50: usize = 16;
    pub const P95: usize = 17;
    pub const P99: usize = 18;
    pub const FIXED: usize = 19;
}

/// Recent full rows kept (the prompt preview and the panels read the newest).
pub const RECENT_ROWS: usize = 120;
/// Events kept for the events panel.
pub const EVENTS_KEPT: usize = 500;
/// Finished tasks kept in the tasks panel.
pub const FINISHED_TASKS_KEPT: usize = 20;
/// Streamed advisor text kept (the tail).
pub const ADVISOR_TEXT_MAX: usize = 8 * 1024;
/// Shortest chart window, seconds.
pub const MIN_WINDOW_S: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Charts,
    Advisor,
    Tasks,
    Events,
}

impl Focus {
    pub const ORDER: [Focus; 4] = [Focus::Charts, Focus::Advisor, Focus::Tasks, Focus::Events];

    pub fn step(self, by: isize) -> Focus {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0) as isize;
        let n = Self::ORDER.len() as isize;
        Self::ORDER[(i + by).rem_euclid(n) as usize]
    }
}

/// The charts' time window (x axis = run-clock seconds since the start).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartView {
    pub window_s: f64,
    pub default_window_s: f64,
    pub max_window_s: f64,
    /// Frozen at this right edge (data keeps arriving and being recorded).
    pub frozen_at: Option<f64>,
}

/// What the advisor is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum AdvisorStatus {
    /// No advisor in this run (yet).
    NotConfigured,
    Idle,
    Asking {
        attempt: u32,
    },
    Streaming,
    Done(String),
    Failed(String),
}

impl AdvisorStatus {
    pub fn label(&self) -> String {
        match self {
            AdvisorStatus::NotConfigured => "no advisor configured".into(),
            AdvisorStatus::Idle => "idle".into(),
            AdvisorStatus::Asking { attempt } if *attempt > 1 => format!("asking (attempt {attempt})"),
            AdvisorStatus::Asking { .. } => "asking".into(),
            AdvisorStatus::Streaming => "streaming".into(),
            AdvisorStatus::Done(s) => format!("done: {s}"),
            AdvisorStatus::Failed(why) => format!("failed: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdvisorPanel {
    pub status: AdvisorStatus,
    /// The reasoning of the call in progress (or the last one), as streamed.
    pub text: String,
    /// Latency of the last finished call (from its `Done`).
    pub last_latency_ms: Option<f64>,
    pub last_replicas: Option<i32>,
    /// Lines scrolled up from the end (0 = follow the stream).
    pub scroll: u16,
}

/// A line of the events panel.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub elapsed_s: f64,
    pub kind: String,
    pub detail: String,
}

/// A transient message on the hint line.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    /// Wall clock (Unix seconds) when it goes away.
    pub until: f64,
}

pub enum Popup {
    /// The keys, scrolled down by that many lines.
    Help(usize),
    ConfirmMode(Mode),
    /// Put back the HPA an earlier run removed and never restored (what was found).
    ConfirmRestore(String),
    ConfirmQuit {
        running: usize,
    },
    Form(Box<Form>),
    Export(Box<ExportForm>),
    Prompt(Box<PromptEditor>),
}

impl std::fmt::Debug for Popup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Popup::Help(_) => "Help",
            Popup::ConfirmMode(_) => "ConfirmMode",
            Popup::ConfirmRestore(_) => "ConfirmRestore",
            Popup::ConfirmQuit { .. } => "ConfirmQuit",
            Popup::Form(_) => "Form",
            Popup::Export(_) => "Export",
            Popup::Prompt(_) => "Prompt",
        };
        f.write_str(name)
    }
}

/// How the run ended (from the engine's `Finished`).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub reason: String,
    pub rows: u64,
    pub csv_path: std::path::PathBuf,
    pub events_path: std::path::PathBuf,
    pub restored: Vec<String>,
}

pub struct AppState {
    pub cfg: Config,
    pub keymap: Keymap,
    pub themes: Themes,
    pub info: Option<RunInfo>,
    pub mode: Mode,
    pub store: SeriesStore,
    /// Extra recommenders' series: (name, index in the store).
    pub rec_series: Vec<(String, usize)>,
    pub archive: RowArchive,
    pub recent: VecDeque<Row>,
    pub rows_seen: u64,
    /// A row carried load-generator figures (the traffic chart then shows them).
    pub load_seen: bool,
    pub view: ChartView,
    pub focus: Focus,
    pub advisor: AdvisorPanel,
    /// Tasks by id (running and recently finished).
    pub tasks: Vec<TaskStatus>,
    pub selected_task: Option<TaskId>,
    pub events: VecDeque<EventLine>,
    /// Lines scrolled up from the newest event (0 = follow).
    pub events_scroll: usize,
    pub popup: Option<Popup>,
    pub toast: Option<Toast>,
    /// The terminal's area at the last frame (what scrolling a popup is clamped to).
    pub screen: ratatui::layout::Rect,
    /// Wall clock (Unix seconds), updated by the loop's timer.
    pub wall_now: f64,
    /// The prompt template in effect.
    pub prompt_template: PromptTemplate,
    /// The recommender that drives ai_scaler (from the rows and `driver` events).
    pub driver: String,
    /// Quit requested at this wall time; the engine is shutting down.
    pub quitting: Option<f64>,
    /// An HPA an earlier run removed and never put back (the engine's notice), until restored.
    pub saved_hpa: Option<String>,
    pub finished: Option<Finished>,
    /// The engine task ended without `Finished` (a panic or an error).
    pub engine_error: Option<String>,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl AppState {
    pub fn new(cfg: Config, keymap: Keymap, themes: Themes, wall_now: f64) -> Self {
        // `cfg` is the run's configuration (after `super::dashboard_config`).
        let interval = cfg.experiment.interval;
        let retention = cfg.ui.history_hours * 3600.0;
        let capacity = (retention / interval.max(0.001)).ceil() as usize + 2;
        let window = cfg.ui.window_minutes * 60.0;
        let cfg_driver = cfg.experiment.driver.clone();
        Self {
            keymap,
            themes,
            info: None,
            mode: cfg.experiment.mode,
            store: SeriesStore::new(sid::FIXED, retention, capacity),
            rec_series: Vec::new(),
            archive: RowArchive::new(retention),
            recent: VecDeque::with_capacity(RECENT_ROWS),
            rows_seen: 0,
            load_seen: false,
            view: ChartView {
                window_s: window.min(retention),
                default_window_s: window.min(retention),
                max_window_s: retention,
                frozen_at: None,
            },
            focus: Focus::Charts,
            advisor: AdvisorPanel {
                status: AdvisorStatus::NotConfigured,
                text: String::new(),
                last_latency_ms: None,
                last_replicas: None,
                scroll: 0,
            },
            tasks: Vec::new(),
            selected_task: None,
            events: VecDeque::with_capacity(64),
            events_scroll: 0,
            popup: None,
            toast: None,
            screen: ratatui::layout::Rect::new(0, 0, 80, 24),
            wall_now,
            prompt_template: PromptTemplate::default(),
            driver: cfg_driver,
            quitting: None,
            saved_hpa: None,
            finished: None,
            engine_error: None,
            dirty: true,
            cfg,
        }
    }

    pub fn palette(&self) -> &crate::widgets::palette::Palette {
        self.themes.palette()
    }

    pub fn last_row(&self) -> Option<&Row> {
        self.recent.back()
    }

    /// Run-clock seconds since the start, from the wall clock and the run's speed.
    pub fn elapsed_s(&self) -> f64 {
        match &self.info {
            Some(info) => {
                let speed = info.speed.parse::<f64>().unwrap_or(1.0);
                ((self.wall_now - info.start) * speed).max(0.0)
            }
            None => 0.0,
        }
    }

    /// The charts' x range: the last `window_s` up to the newest sample (or the frozen edge). A
    /// run younger than the window is drawn from its start across the whole width (at least ten
    /// ticks wide), so the charts are full from the first seconds and settle into the window.
    pub fn window(&self) -> (f64, f64) {
        let w = self.view.window_s;
        let right = self.view.frozen_at.unwrap_or_else(|| self.store.span().map_or(0.0, |s| s.1));
        if right >= w { (right - w, right) } else { (0.0, right.max((10.0 * self.cfg.experiment.interval).min(w))) }
    }

    pub fn running_tasks(&self) -> usize {
        self.tasks.iter().filter(|t| !t.finished).count()
    }

    pub fn selected(&self) -> Option<&TaskStatus> {
        self.selected_task.and_then(|id| self.tasks.iter().find(|t| t.id == id))
    }

    /// Tasks as the panel lists them: running first (oldest first), then finished (newest first).
    pub fn tasks_in_order(&self) -> Vec<&TaskStatus> {
        let mut running: Vec<&TaskStatus> = self.tasks.iter().filter(|t| !t.finished).collect();
        running.sort_by_key(|t| t.id);
        let mut done: Vec<&TaskStatus> = self.tasks.iter().filter(|t| t.finished).collect();
        done.sort_by_key(|t| std::cmp::Reverse(t.id));
        running.extend(done);
        running
    }

    /// The chart values of a row, by series index.
    pub fn values_of(&self, row: &Row) -> Vec<f32> {
        let f = |v: Option<f64>| v.map_or(f32::NAN, |x| x as f32);
        let n = |v: Option<i32>| v.map_or(f32::NAN, |x| x as f32);
        let (cpu_target, mem_target) = match &self.info {
            Some(i) => (f64::from(i.cpu_target), f64::from(i.memory_target)),
            None => (f64::from(self.cfg.scaling.cpu_target), f64::from(self.cfg.scaling.memory_target)),
        };
        let tr = row.traffic;
        let load = &row.load;
        let pick = |load: Option<f64>, svc: Option<f64>| f(load.or(svc));
        let mut v = vec![f32::NAN; self.store.series()];
        let fixed = [
            n(row.current_replicas),
            n(row.ready_replicas),
            n(row.hpa_sim.desired),
            n(row.hpa_desired_replicas),
            n(row.ai.recommended_replicas),
            f(row.cpu_millicores),
            f(row.cpu_request_millicores.map(|r| r * cpu_target / 100.0)),
            f(row.ai.predicted_cpu_millicores),
            f(row.memory_mebibytes),
            f(row.memory_request_mebibytes.map(|r| r * mem_target / 100.0)),
            f(row.ai.predicted_memory_mebibytes),
            f(tr.map(|t| t.rps)),
            f(tr.map(|t| t.served_rps)),
            f(tr.map(|t| t.errors_per_s)),
            f(load.target_rps),
            f(load.achieved_rps),
            pick(load.p50_ms, tr.and_then(|t| t.p50_ms)),
            pick(load.p95_ms, tr.and_then(|t| t.p95_ms)),
            pick(load.p99_ms, tr.and_then(|t| t.p99_ms)),
        ];
        v[..sid::FIXED].copy_from_slice(&fixed);
        for cells in &row.recommenders {
            if let Some((_, i)) = self.rec_series.iter().find(|(n, _)| *n == cells.name)
                && let Some(slot) = v.get_mut(*i)
            {
                *slot = n(cells.replicas);
            }
        }
        v
    }

    /// The series of an extra recommender, created on first sight.
    pub fn recommender_series(&mut self, name: &str) -> usize {
        if let Some((_, i)) = self.rec_series.iter().find(|(n, _)| n == name) {
            return *i;
        }
        let i = self.store.add_series();
        self.rec_series.push((name.to_string(), i));
        i
    }

    /// Take a sample from before the run: charts only (it is not part of the record).
    pub fn push_history(&mut self, row: Row) {
        let values = self.values_of(&row);
        self.store.push(row.elapsed_s, &values);
    }

    /// Take a sample from the engine: charts, export archive, recent rows.
    pub fn push_row(&mut self, row: Row) {
        // A series per recommender that recommends replicas (the VPA recommends requests).
        for cells in &row.recommenders {
            if cells.replicas.is_some() {
                self.recommender_series(&cells.name);
            }
        }
        if !row.driver.is_empty() {
            self.driver = row.driver.clone();
        }
        let values = self.values_of(&row);
        self.store.push(row.elapsed_s, &values);
        self.archive.push(&row);
        self.load_seen |= row.load.target_rps.is_some() || row.load.achieved_rps.is_some();
        self.mode = row.mode;
        self.rows_seen += 1;
        if self.recent.len() >= RECENT_ROWS {
            self.recent.pop_front();
        }
        self.recent.push_back(row);
    }

    pub fn push_event(&mut self, elapsed_s: f64, kind: &str, detail: &str) {
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(EventLine { elapsed_s, kind: kind.to_string(), detail: detail.to_string() });
        if self.events_scroll > 0 {
            // Keep the same lines in view while scrolled back.
            self.events_scroll = (self.events_scroll + 1).min(self.events.len().saturating_sub(1));
        }
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toast = Some(Toast { text: text.into(), error, until: self.wall_now + if error { 8.0 } else { 4.0 } });
    }

    /// Take a task status: insert or update; keep the selection on a running task.
    pub fn upsert_task(&mut self, t: TaskStatus) {
        let id = t.id;
        let running = !t.finished;
        match self.tasks.iter_mut().find(|x| x.id == id) {
            Some(x) => *x = t,
            None => {
                self.tasks.push(t);
                if running {
                    self.selected_task = Some(id);
                }
            }
        }
        // Keep a bounded number of finished tasks.
        let finished: Vec<TaskId> = {
            let mut f: Vec<TaskId> = self.tasks.iter().filter(|t| t.finished).map(|t| t.id).collect();
            f.sort_unstable();
            f
        };
        if finished.len() > FINISHED_TASKS_KEPT {
            let drop: Vec<TaskId> = finished[..finished.len() - FINISHED_TASKS_KEPT].to_vec();
            self.tasks.retain(|t| !drop.contains(&t.id));
        }
        let selected_running = self.selected().is_some_and(|s| !s.finished);
        if !selected_running {
            let newest_running = self.tasks.iter().filter(|t| !t.finished).map(|t| t.id).max();
            self.selected_task =
                newest_running.or(self.selected_task.filter(|s| self.tasks.iter().any(|t| t.id == *s)));
            if self.selected_task.is_none() {
                self.selected_task = self.tasks.iter().map(|t| t.id).max();
            }
        }
    }

    /// Move the task selection by `by` in panel order.
    pub fn move_task_selection(&mut self, by: isize) {
        let order: Vec<TaskId> = self.tasks_in_order().iter().map(|t| t.id).collect();
        if order.is_empty() {
            return;
        }
        let cur = self.selected_task.and_then(|id| order.iter().position(|x| *x == id)).unwrap_or(0) as isize;
        let next = (cur + by).clamp(0, order.len() as isize - 1) as usize;
        self.selected_task = Some(order[next]);
    }
}
