//! Load generator runs as background tasks of an experiment: started from a key, a command or a
//! scenario phase (kube backend), reporting a [`TaskStatus`] each second, folded into the
//! record's `load_*` columns per tick, stopped on request and on every exit path.

use tokio::sync::mpsc;

use super::LoadParams;
use super::generator::{GeneratorConfig, LoadEvent, LoadRun, Summary};
use super::stats::{Aggregate, IntervalFigures, SecondReport, fmt_ms};
use crate::engine::messages::{TaskId, TaskStatus};
use crate::engine::record::LoadColumns;

/// What the experiment records and shows after something happened to a load task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskNews {
    pub status: TaskStatus,
    /// An entry for the events record: (kind, detail).
    pub event: Option<(String, String)>,
}

struct Entry {
    id: TaskId,
    params: LoadParams,
    url: String,
    origin: String,
    run: LoadRun,
    last: Option<SecondReport>,
    summary: Option<Summary>,
    stopping: bool,
}

/// The experiment's load tasks.
pub struct LoadTasks {
    entries: Vec<Entry>,
    tx: mpsc::UnboundedSender<(TaskId, LoadEvent)>,
    rx: mpsc::UnboundedReceiver<(TaskId, LoadEvent)>,
}

impl Default for LoadTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadTasks {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { entries: Vec::new(), tx, rx }
    }

    /// Has a load task with this id (running, or finished and not yet recorded by a tick).
    pub fn has(&self, id: TaskId) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// Tasks still sending.
    pub fn running(&self) -> usize {
        self.entries.iter().filter(|e| e.summary.is_none()).count()
    }

    /// The next report of any task (never ends: the sender lives in `self`).
    pub async fn recv(&mut self) -> Option<(TaskId, LoadEvent)> {
        self.rx.recv().await
    }

    /// Start a run of `params` against `url` (`Err`: the target could not be found).
    pub async fn start(
        &mut self,
        id: TaskId,
        params: LoadParams,
        url: Result<String, String>,
        origin: &str,
    ) -> TaskNews {
        let label = format!("#{id} load ({}, {origin})", params.describe());
        let failed = |why: String| TaskNews {
            status: TaskStatus {
                id,
                kind: "load".into(),
                params: params.describe(),
                state: format!("failed: {why}"),
                finished: true,
                progress: None,
                figures: String::new(),
            },
            event: Some(("task_failed".into(), format!("{label}: {why}"))),
        };
        let url = match url {
            Ok(u) => u,
            Err(why) => return failed(why),
        };
        let cfg = GeneratorConfig::from_params(&params, url.clone());
        let tx = self.tx.clone();
        let run = match LoadRun::start(cfg, move |e| {
            let _ = tx.send((id, e));
        })
        .await
        {
            Ok(r) => r,
            Err(why) => return failed(why),
        };
        let entry = Entry {
            id,
            params,
            url: url.clone(),
            origin: origin.to_string(),
            run,
            last: None,
            summary: None,
            stopping: false,
        };
        let status = status(&entry);
        self.entries.push(entry);
        TaskNews { status, event: Some(("task_start".into(), format!("{label} -> {url}: running"))) }
    }

    /// Fold in a report; returns what to show and record.
    pub fn on_event(&mut self, id: TaskId, ev: LoadEvent) -> Option<TaskNews> {
        let e = self.entries.iter_mut().find(|e| e.id == id)?;
        match ev {
            LoadEvent::Second(r) => {
                e.last = Some(r);
                Some(TaskNews { status: status(e), event: None })
            }
            LoadEvent::Finished(s) => {
                let how = if e.stopping {
                    "stopped"
                } else if s.stopped_early {
                    "stopped early"
                } else {
                    "ended"
                };
                let detail =
                    format!("#{} load {how} ({}, {}): {}", e.id, e.params.describe(), e.origin, summary_line(&s));
                e.summary = Some(*s);
                Some(TaskNews { status: status(e), event: Some(("task_stop".into(), detail)) })
            }
        }
    }

    /// Ask a task to stop (its `Finished` report follows); returns its status now.
    pub fn stop(&mut self, id: TaskId) -> Option<TaskStatus> {
        let e = self.entries.iter_mut().find(|e| e.id == id)?;
        if e.summary.is_none() {
            e.stopping = true;
            e.run.stop();
        }
        Some(status(e))
    }

    /// The `load_*` columns of a tick: the seconds closed since the last tick, over all tasks.
    /// Tasks that finished are forgotten once their last seconds are taken.
    pub fn take_tick(&mut self) -> LoadColumns {
        if self.entries.is_empty() {
            return LoadColumns::default();
        }
        let mut all = Aggregate::default();
        let mut closed_loop = true;
        let mut seconds = 0;
        for e in &self.entries {
            let a = e.run.take_interval();
            // Tasks run side by side: their seconds overlap, their counts add up.
            seconds = seconds.max(a.seconds);
            all.add(&a);
            closed_loop &= e.run.closed_loop();
        }
        all.seconds = seconds;
        self.entries.retain(|e| e.summary.is_none());
        let f = IntervalFigures::of(&all, closed_loop);
        if f.seconds == 0 {
            return LoadColumns::default();
        }
        LoadColumns {
            target_rps: f.target_rps,
            achieved_rps: f.achieved_rps,
            p50_ms: f.p50_ms,
            p95_ms: f.p95_ms,
            p99_ms: f.p99_ms,
            errors: Some(f.errors),
            late: Some(f.late),
        }
    }

    /// Stop every task and wait for their ends (at exit). Returns the news of each.
    pub async fn stop_all(&mut self) -> Vec<TaskNews> {
        let mut news = Vec::new();
        for mut e in std::mem::take(&mut self.entries) {
            if e.summary.is_some() {
                continue;
            }
            e.stopping = true;
            e.run.stop();
            let s = e.run.finish().await;
            let detail = match &s {
                Ok(s) => format!("#{} load stopped at exit ({}): {}", e.id, e.params.describe(), summary_line(s)),
                Err(why) => format!("#{} load stopped at exit ({}): {why}", e.id, e.params.describe()),
            };
            let mut status = TaskStatus {
                id: e.id,
                kind: "load".into(),
                params: e.params.describe(),
                state: "done".into(),
                finished: true,
                progress: None,
                figures: String::new(),
            };
            if let Ok(s) = s {
                status.figures = summary_line(&s);
            }
            news.push(TaskNews { status, event: Some(("task_stop".into(), detail)) });
        }
        news
    }
}

fn status(e: &Entry) -> TaskStatus {
    let (state, finished, figures) = match &e.summary {
        Some(s) => (if e.stopping { "stopped" } else { "done" }.to_string(), true, summary_line(s)),
        None => {
            let state = if e.stopping { "stopping".to_string() } else { format!("running -> {}", e.url) };
            (state, false, e.last.as_ref().map(figures).unwrap_or_else(|| "starting".into()))
        }
    };
    TaskStatus {
        id: e.id,
        kind: "load".into(),
        params: e.params.describe(),
        state,
        finished,
        progress: if finished { Some(1.0) } else { e.run.progress() },
        figures,
    }
}

/// The tasks panel's live figures of one second.
pub fn figures(r: &SecondReport) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), fmt_ms);
    let target = r.target_rps.map_or("max".into(), |t| format!("{t:.0}"));
    let c = &r.counts;
    format!(
        "target {target} rps · achieved {:.0} · p50 {} p95 {} p99 {} · errors {} · late {}",
        c.responses as f64 / r.span_s.max(1e-3),
        ms(r.p50_ms),
        ms(r.p95_ms),
        ms(r.p99_ms),
        c.failed(),
        c.late + c.dropped,
    )
}

/// One line about a finished run.
pub fn summary_line(s: &Summary) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), fmt_ms);
    format!(
        "sent {} in {:.1}s, {:.1} answers/s, p50 {} p99 {}, errors {}, late {}, dropped {}",
        s.counts.sent,
        s.elapsed_s,
        s.achieved_rps,
        ms(s.latency.p50_ms),
        ms(s.latency.p99_ms),
        s.counts.failed(),
        s.counts.late,
        s.counts.dropped
    )
}
