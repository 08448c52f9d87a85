//! The control loop: every interval, observe (cluster + metrics) → compute the HPA algorithm's
//! decision (`hpa_sim_*`) → ask the recommenders → apply per mode → record. Between ticks it runs
//! the scenario's timeline and the stress tasks, and takes commands from the front end. Mode
//! switches from the keyboard and from a scenario go through the same [`Experiment::set_mode`].

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{ApplyLimits, Backend, Config};
use crate::engine::advisor::{RecOutput, RecommendInput, Recommender};
use crate::engine::clock::SharedClock;
use crate::engine::cluster::sim::{
    SimCluster,
    model::{custom_metrics_of, to_hpa_pod, to_hpa_sample},
};
use crate::engine::cluster::{Cluster, HpaChange};
use crate::engine::hpa::limit::Limiter;
use crate::engine::hpa::{self, HpaRunner, HpaSpec, ReconcileOptions};
use crate::engine::load::task::{LoadTasks, TaskNews};
use crate::engine::load::{LoadParams, Schedule};
use crate::engine::messages::{EngineCommand, EngineEvent, RunInfo, TaskId, TaskStatus};
use crate::engine::metrics::{MetricsQuery, MetricsSource};
use crate::engine::record::{HpaSim, RecommenderCells, RecordedEvent, Recorder, Row};
use crate::engine::scenario::{LoadPlan, Scenario};
use crate::engine::stress::{CpuStressParams, MemoryStressParams, StressParams, StressTask};
use crate::engine::types::{DeploymentState, Fallback, HpaInfo, MetricsSample, Mode, PodInfo, PodUsage, StressKind};

/// The HPA that scaletui creates (and the simulator's HPA at start): the metrics of
/// `[scaling] metrics` with their targets, min/max and the configured behavior.
pub fn hpa_spec(cfg: &Config) -> HpaSpec {
    let s = &cfg.scaling;
    HpaSpec {
        min_replicas: s.min_replicas,
        max_replicas: s.max_replicas,
        metrics: s.hpa_metrics(),
        behavior: Some(s.behavior.to_hpa()),
    }
}

/// The gentle load the dashboard plays on the simulator when no scenario is given.
pub fn demo_schedule() -> Schedule {
    Schedule::Sine { min_rps: 20.0, max_rps: 160.0, period_s: 1200.0, duration_s: f64::INFINITY }
}

/// Everything an experiment needs.
pub struct ExperimentSetup {
    pub cfg: Config,
    pub cluster: Arc<dyn Cluster>,
    /// The simulator, when the backend is `sim` (scenario load is fed to it directly).
    pub sim: Option<Arc<SimCluster>>,
    pub metrics: Box<dyn MetricsSource>,
    pub recommenders: Vec<Box<dyn Recommender>>,
    pub clock: SharedClock,
    pub scenario: Option<Scenario>,
    /// Play [`demo_schedule`] on the simulator when there is no scenario.
    pub demo_load: bool,
    pub events: mpsc::Sender<EngineEvent>,
    pub commands: mpsc::Receiver<EngineCommand>,
    /// Wall clock at start (names the files).
    pub wall_start: f64,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub reason: String,
    pub rows: u64,
    pub csv_path: std::path::PathBuf,
    pub events_path: std::path::PathBuf,
    /// `<csv stem>_summary.json`, when it could be written.
    pub summary_path: Option<std::path::PathBuf>,
    pub restored: Vec<String>,
}

/// What to apply this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyDecision {
    /// Scale to this count (only when it differs from the current spec).
    pub scale_to: Option<i32>,
    pub applied_replicas: Option<i32>,
    pub applied_by: String,
    pub note: String,
    /// The behavior policy or window that limited the recommendation (empty: none did).
    pub limit: String,
}

/// Guardrails for `ai_scaler`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guardrails {
    pub min: i32,
    pub max: i32,
    /// 0 = no limit.
    pub max_step: i32,
    pub scale_while_converging: bool,
    pub fallback: Fallback,
}

/// The mode table of PRODUCT.md §2 as a pure function.
#[allow(clippy::too_many_arguments)]
pub fn decide_apply(
    mode: Mode,
    dep: Option<&DeploymentState>,
    live_hpa: Option<&HpaInfo>,
    driver: &str,
    driver_out: Option<&RecOutput>,
    hpa_sim: &HpaSim,
    g: Guardrails,
    mut limiter: Option<(&mut Limiter, f64)>,
) -> ApplyDecision {
    let current = dep.map(|d| d.spec_replicas);
    // `[scaling] apply_limits = "behavior"`: the HPA's windows and policies at `now`.
    let mut limit = |cur: i32, target: i32, notes: &mut Vec<String>, limited: &mut String| -> i32 {
        let Some((l, now)) = limiter.as_mut() else { return target };
        let r = l.limit(*now, cur, target, g.min, g.max.max(g.min));
        if r.replicas != target {
            notes.push(format!("limited {target} to {}: {}", r.replicas, r.reason));
            *limited = r.reason;
        }
        r.replicas
    };
    match mode {
        Mode::Comparison => ApplyDecision {
            scale_to: None,
            applied_replicas: current,
            applied_by: "observation_only".into(),
            note: String::new(),
            limit: String::new(),
        },
        Mode::HpaOnly => ApplyDecision {
            scale_to: None,
            applied_replicas: live_hpa.and_then(|h| h.desired_replicas).or(current),
            applied_by: "hpa".into(),
            note: if live_hpa.is_none() { "no HPA on the deployment".into() } else { String::new() },
            limit: String::new(),
        },
        Mode::AiScaler => {
            let Some(dep) = dep else {
                return ApplyDecision {
                    scale_to: None,
                    applied_replicas: None,
                    applied_by: "none".into(),
                    note: "deployment state unknown".into(),
                    limit: String::new(),
                };
            };
            let cur = dep.spec_replicas;
            let clamp = |n: i32| n.clamp(g.min, g.max.max(g.min));
            if let Some(want) = driver_out.and_then(|o| o.replicas) {
                let mut target = clamp(want);
                let mut notes = Vec::new();
                if target != want {
                    notes.push(format!("clamped {want} to [{}, {}]", g.min, g.max));
                }
                if g.max_step > 0 && (target - cur).abs() > g.max_step {
                    target = cur + g.max_step * (target - cur).signum();
                    notes.push(format!("max_step {} per tick", g.max_step));
                }
                let mut limited = String::new();
                target = limit(cur, target, &mut notes, &mut limited);
                if target != cur && !dep.converged() && !g.scale_while_converging {
                    notes.push(format!(
                        "waiting for the previous change to converge ({}/{} ready)",
                        dep.ready_replicas, dep.spec_replicas
                    ));
                    target = cur;
                }
                let by = if target == cur { format!("{driver}_no_change") } else { driver.to_string() };
                return ApplyDecision {
                    scale_to: (target != cur).then_some(target),
                    applied_replicas: Some(target),
                    applied_by: by,
                    note: notes.join("; "),
                    limit: limited,
                };
            }
            let why = driver_out.map_or_else(|| format!("no recommender named {driver}"), |o| o.status.clone());
            match (g.fallback, hpa_sim.desired) {
                (Fallback::HpaSim, Some(d)) => {
                    let mut notes = vec![format!("fallback: {why}")];
                    let mut limited = String::new();
                    let target = limit(cur, clamp(d), &mut notes, &mut limited);
                    ApplyDecision {
                        scale_to: (target != cur).then_some(target),
                        applied_replicas: Some(target),
                        applied_by: "hpa_sim".into(),
                        note: notes.join("; "),
                        limit: limited,
                    }
                }
                (Fallback::HpaSim, None) => ApplyDecision {
                    scale_to: None,
                    applied_replicas: Some(cur),
                    applied_by: "hold".into(),
                    note: format!("fallback hpa_sim has no decision; {why}"),
                    limit: String::new(),
                },
                (Fallback::Hold, _) => ApplyDecision {
                    scale_to: None,
                    applied_replicas: Some(cur),
                    applied_by: "hold".into(),
                    note: format!("fallback: {why}"),
                    limit: String::new(),
                },
            }
        }
    }
}

struct TaskEntry {
    id: TaskId,
    task: StressTask,
    origin: String,
}

pub struct Experiment {
    cfg: Config,
    cluster: Arc<dyn Cluster>,
    /// The simulator, whose own totals go into the summary file.
    sim: Option<Arc<SimCluster>>,
    tally: crate::engine::record::summary::Tally,
    metrics: Box<dyn MetricsSource>,
    recommenders: Vec<Box<dyn Recommender>>,
    clock: SharedClock,
    scenario: Option<Scenario>,
    /// Scenario events not done yet: (at, index into stress windows or mode switches).
    pending_stress: Vec<usize>,
    pending_modes: Vec<usize>,
    events: mpsc::Sender<EngineEvent>,
    commands: mpsc::Receiver<EngineCommand>,
    recorder: Recorder,
    mode: Mode,
    driver: String,
    shadow: HpaRunner,
    /// `[scaling] apply_limits`: the behavior every driver's recommendation goes through.
    limiter: Limiter,
    hpa_spec: HpaSpec,
    prev_spec: Option<i32>,
    history: VecDeque<Row>,
    tasks: Vec<TaskEntry>,
    /// Load generator runs (wall time); on the kube backend also the scenario's load phases.
    loads: LoadTasks,
    /// Scenario load phases still to start through the load generator (kube backend).
    pending_load: Vec<usize>,
    next_task_id: TaskId,
    start: f64,
    ticks: u64,
    dropped_events: u64,
    /// The metric source's status kind on the last tick (an event marks each change).
    metrics_kind: &'static str,
    /// Whether the last advisor call found no model server (an event marks each change).
    advisor_unreachable: bool,
}

const HISTORY_ROWS: usize = 120;

impl Experiment {
    pub fn new(s: ExperimentSetup) -> std::io::Result<Self> {
        let extra: Vec<(String, Vec<String>)> = s
            .recommenders
            .iter()
            .filter(|r| r.name() != "ai")
            .map(|r| (r.column_prefix().to_string(), r.columns()))
            .collect();
        let mode = s.cfg.experiment.mode;
        let recorder = Recorder::create(&s.cfg.experiment.output_dir, mode, s.wall_start, &extra)?;
        let spec = hpa_spec(&s.cfg);
        let shadow = HpaRunner::new(spec.clone(), hpa::ControllerConfig::default());
        let start = s.clock.now();
        if let Some(sim) = &s.sim {
            let baseline = s.cfg.sim.baseline_rps;
            match (&s.scenario, s.demo_load) {
                (Some(sc), _) => sim.set_plan(Some(sc.plan_seeded(baseline, s.cfg.sim.seed))),
                (None, true) => sim.set_plan(Some(LoadPlan::single(demo_schedule(), baseline))),
                (None, false) => sim.set_plan(Some(LoadPlan { phases: Vec::new(), baseline })),
            }
        }
        // On a real cluster the scenario's load phases run through the load generator; the
        // simulator consumes them directly (above).
        let pending_load = match (&s.scenario, &s.sim) {
            (Some(sc), None) => (0..sc.load.len()).collect(),
            _ => Vec::new(),
        };
        let (pending_stress, pending_modes) = match &s.scenario {
            Some(sc) => ((0..sc.stress.len()).collect(), (0..sc.modes.len()).collect()),
            None => (Vec::new(), Vec::new()),
        };
        let limiter = Limiter::new(&s.cfg.scaling.behavior.to_hpa());
        Ok(Self {
            driver: s.cfg.experiment.driver.clone(),
            cfg: s.cfg,
            cluster: s.cluster,
            sim: s.sim,
            tally: Default::default(),
            metrics: s.metrics,
            recommenders: s.recommenders,
            clock: s.clock,
            scenario: s.scenario,
            pending_stress,
            pending_modes,
            events: s.events,
            commands: s.commands,
            recorder,
            mode,
            shadow,
            hpa_spec: spec,
            prev_spec: None,
            limiter,
            history: VecDeque::new(),
            tasks: Vec::new(),
            loads: LoadTasks::new(),
            pending_load,
            next_task_id: 1,
            start,
            ticks: 0,
            dropped_events: 0,
            metrics_kind: "ok",
            advisor_unreachable: false,
        })
    }

    pub fn csv_path(&self) -> &std::path::Path {
        &self.recorder.csv_path
    }

    fn send(&mut self, e: EngineEvent) {
        if self.events.try_send(e).is_err() {
            self.dropped_events += 1;
        }
    }

    fn event(&mut self, kind: &str, detail: impl Into<String>) {
        let now = self.clock.now();
        let e = RecordedEvent {
            t: now,
            elapsed_s: now - self.start,
            kind: kind.to_string(),
            mode: self.mode,
            detail: detail.into(),
        };
        if let Err(err) = self.recorder.write_event(&e) {
            self.send(EngineEvent::Notice(format!("cannot write the events file: {err}")));
        }
        self.send(EngineEvent::Event(e));
    }

    /// Fill the history the advisor's prompt and the recommenders see — and the dashboard's
    /// charts — with the metric source's last `experiment.history_minutes` before the start
    /// (Prometheus range queries at the interval's step; the other sources have no history).
    async fn load_history(&mut self) {
        let minutes = self.cfg.experiment.history_minutes;
        let info = self.cluster.info();
        let pods = self.cluster.pods().await.unwrap_or_default();
        let query = MetricsQuery {
            now: self.clock.now(),
            namespace: info.namespace.clone(),
            deployment: info.deployment.clone(),
            container: self.cfg.cluster.container.clone(),
            pods,
        };
        match self.metrics.history(&query, minutes, self.cfg.experiment.interval).await {
            Ok(samples) => {
                let rows: Vec<Row> = samples
                    .iter()
                    .filter(|s| s.at < self.start)
                    .map(|s| Row {
                        elapsed_s: s.at - self.start,
                        mode: self.mode,
                        backend: info.backend.clone(),
                        metrics_source: self.metrics.name().to_string(),
                        ..Row::from_sample(s)
                    })
                    .collect();
                if rows.is_empty() {
                    return;
                }
                self.event(
                    "history",
                    format!("{} samples of the last {minutes} min from {}", rows.len(), self.metrics.name()),
                );
                for r in rows.iter().skip(rows.len().saturating_sub(HISTORY_ROWS)) {
                    self.history.push_back(r.clone());
                }
                self.send(EngineEvent::History(rows));
            }
            Err(e) => self.event("history", format!("no history of the last {minutes} min: {e}")),
        }
    }

    fn run_info(&self) -> RunInfo {
        let s = &self.cfg.sim;
        let sim = self.cfg.cluster.backend == Backend::Sim;
        RunInfo {
            cluster: self.cluster.info(),
            mode: self.mode,
            interval_s: self.cfg.experiment.interval,
            duration_s: (self.cfg.experiment.duration > 0.0).then_some(self.cfg.experiment.duration * 60.0),
            csv_path: self.recorder.csv_path.clone(),
            events_path: self.recorder.events_path.clone(),
            start: self.start,
            speed: self.clock.speed().to_string(),
            metrics_source: self.metrics.name().to_string(),
            scenario: self.scenario.as_ref().map(|s| s.name.clone()),
            min_replicas: self.cfg.scaling.min_replicas,
            max_replicas: self.cfg.scaling.max_replicas,
            cpu_target: self.cfg.scaling.cpu_target,
            memory_target: self.cfg.scaling.memory_target,
            cpu_request_m: sim.then_some(s.cpu_request_m),
            memory_request_mib: sim.then_some(s.memory_request_mib),
            recommenders: self
                .recommenders
                .iter()
                .filter(|r| r.name() != "ai")
                .map(|r| (r.name().to_string(), r.columns()))
                .collect(),
            driver: self.driver.clone(),
            drivers: self.recommenders.iter().filter(|r| r.can_drive()).map(|r| r.name().to_string()).collect(),
            advisor: self
                .recommenders
                .iter()
                .any(|r| r.name() == "ai")
                .then(|| format!("{} at {}", self.cfg.advisor.model, self.cfg.advisor.url)),
            read_only: self.cfg.cluster.read_only,
            limits_off: self.cfg.scaling.apply_limits == ApplyLimits::None,
            prompt_template: self.cfg.advisor.prompt.clone(),
        }
    }

    /// Switch who is in control: `hpa_only` ensures the HPA, `ai_scaler` removes it,
    /// `comparison` leaves the cluster as it is. `origin` says who asked (key, scenario, start).
    pub async fn set_mode(&mut self, mode: Mode, origin: &str) {
        let from = self.mode;
        if mode == Mode::AiScaler && self.cfg.cluster.read_only {
            // At start there is no mode to stay in: observe only.
            let stay = if origin == "start" { Mode::Comparison } else { from };
            self.mode = stay;
            self.event("error", format!("read-only: {mode} needs to delete the HPA and scale; staying in {stay}"));
            return;
        }
        if mode == Mode::AiScaler
            && (from != Mode::AiScaler || origin == "start")
            && let Err(e) = self.cluster.take_control().await
        {
            // Another scaletui drives this deployment: stay out of its way.
            let stay = if origin == "start" { Mode::Comparison } else { from };
            self.mode = stay;
            self.event("error", format!("{e}; staying in {stay}"));
            return;
        }
        if from == Mode::AiScaler && mode != Mode::AiScaler {
            self.cluster.release_control().await;
        }
        self.mode = mode;
        if origin == "start" {
            self.event("mode_switch", format!("start in {mode}"));
        } else if from != mode {
            self.event("mode_switch", format!("{from} -> {mode} ({origin})"));
        }
        match mode {
            Mode::HpaOnly if !self.cfg.cluster.read_only => {
                let spec = self.hpa_spec.clone();
                match self.cluster.ensure_hpa(&spec).await {
                    Ok(HpaChange::Created) => self.event("hpa", "HPA created"),
                    Ok(HpaChange::Replaced) => self.event("hpa", "HPA updated to the configured spec"),
                    Ok(HpaChange::Unchanged) => {}
                    Err(e) => self.event("error", format!("cannot ensure the HPA: {e}")),
                }
            }
            Mode::AiScaler => match self.cluster.delete_hpa().await {
                Ok(true) => self.event("hpa", "HPA deleted (ai_scaler is in control)"),
                Ok(false) => {}
                Err(e) => self.event("error", format!("cannot delete the HPA: {e}")),
            },
            _ => {}
        }
    }

    /// Run until the duration ends, `shutdown` is cancelled or a Shutdown command arrives.
    pub async fn run(mut self, shutdown: CancellationToken) -> RunSummary {
        let info = self.run_info();
        self.send(EngineEvent::Started(Box::new(info)));
        let scenario_name = self.scenario.as_ref().map(|s| s.name.clone());
        self.event(
            "run_start",
            format!(
                "backend={} metrics={} speed={} interval={}s scenario={}",
                self.cluster.info().backend,
                self.metrics.name(),
                self.clock.speed(),
                self.cfg.experiment.interval,
                scenario_name.as_deref().unwrap_or("-"),
            ),
        );
        if let Some(notice) = self.cluster.saved_hpa_notice() {
            if self.cfg.cluster.restore_hpa {
                match self.cluster.restore_saved_hpa().await {
                    Ok(line) => self.event("restore", line),
                    Err(e) => self.event("error", format!("--restore-hpa: {e}")),
                }
            } else {
                self.event("hpa_saved", notice);
            }
        }
        let initial = self.mode;
        self.set_mode(initial, "start").await;
        self.load_history().await;
        let interval = self.cfg.experiment.interval;
        let end = if self.cfg.experiment.duration > 0.0 {
            self.start + self.cfg.experiment.duration * 60.0
        } else {
            f64::INFINITY
        };
        let mut next_tick = self.start;
        // Once the front end has gone away the run goes on headless-style until its end.
        let mut front_end = true;
        let reason = loop {
            if next_tick >= end - 1e-9 {
                break "duration reached".to_string();
            }
            let wake = [Some(next_tick), self.next_scenario_at(), self.next_task_wake()]
                .into_iter()
                .flatten()
                .fold(f64::INFINITY, f64::min);
            let clock = self.clock.clone();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break "interrupted".to_string(),
                cmd = self.commands.recv(), if front_end => match cmd {
                    Some(EngineCommand::Shutdown) => break "quit".to_string(),
                    Some(cmd) => { self.handle(cmd).await; continue; }
                    None => { front_end = false; continue; }
                },
                Some((id, ev)) = self.loads.recv() => {
                    if let Some(news) = self.loads.on_event(id, ev) {
                        self.task_news(news);
                    }
                    continue;
                }
                _ = clock.sleep_until(wake) => {}
            }
            let now = self.clock.now();
            self.run_scenario(now).await;
            self.poll_tasks(now).await;
            if now + 1e-9 >= next_tick {
                // A tick can wait for a slow model (virtual clock): Ctrl-C must not wait for it.
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break "interrupted".to_string(),
                    _ = self.tick(now) => {}
                }
                next_tick += interval;
            }
        };
        self.finish(reason).await
    }

    fn next_scenario_at(&self) -> Option<f64> {
        let sc = self.scenario.as_ref()?;
        let s = self.pending_stress.iter().map(|i| sc.stress[*i].at_s);
        let m = self.pending_modes.iter().map(|i| sc.modes[*i].at_s);
        let l = self.pending_load.iter().map(|i| sc.load[*i].start_s);
        s.chain(m).chain(l).map(|a| self.start + a).reduce(f64::min)
    }

    fn next_task_wake(&self) -> Option<f64> {
        self.tasks.iter().filter_map(|t| t.task.next_wake()).reduce(f64::min)
    }

    async fn run_scenario(&mut self, now: f64) {
        let Some(sc) = self.scenario.clone() else { return };
        let start = self.start;
        let due = |at: f64| start + at <= now + 1e-9;
        let modes: Vec<usize> = self.pending_modes.iter().copied().filter(|i| due(sc.modes[*i].at_s)).collect();
        self.pending_modes.retain(|i| !modes.contains(i));
        for i in modes {
            self.set_mode(sc.modes[i].mode, "scenario").await;
        }
        let loads: Vec<usize> = self.pending_load.iter().copied().filter(|i| due(sc.load[*i].start_s)).collect();
        self.pending_load.retain(|i| !loads.contains(i));
        for i in loads {
            let schedule = match sc.unseeded_waves.iter().find(|(w, _)| *w == i) {
                Some((_, w)) => w.schedule(self.cfg.sim.seed),
                None => sc.load[i].schedule.clone(),
            };
            match LoadParams::with_schedule(&self.cfg.load, schedule) {
                Ok(p) => self.start_load(p, "scenario").await,
                Err(e) => self.event("task_failed", format!("load phase {}: {e}", i + 1)),
            }
        }
        let stress: Vec<usize> = self.pending_stress.iter().copied().filter(|i| due(sc.stress[*i].at_s)).collect();
        self.pending_stress.retain(|i| !stress.contains(i));
        for i in stress {
            let w = &sc.stress[i];
            let params = match w.kind {
                StressKind::Cpu => StressParams::Cpu(CpuStressParams {
                    workers: w.workers.unwrap_or(self.cfg.stress.cpu.workers),
                    duration_s: w.duration_s,
                    max_pods: w.max_pods,
                    refresh_s: w.refresh_s.unwrap_or(self.cfg.stress.cpu.refresh),
                }),
                StressKind::Memory => StressParams::Memory(MemoryStressParams {
                    mib: w.mib.unwrap_or(self.cfg.stress.memory.mb),
                    duration_s: w.duration_s,
                    max_pods: w.max_pods,
                }),
            };
            self.start_stress(params, "scenario").await;
        }
    }

    async fn handle(&mut self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::SetMode(m) => self.set_mode(m, "key").await,
            EngineCommand::RestoreSavedHpa => match self.cluster.restore_saved_hpa().await {
                Ok(line) => self.event("restore", line),
                Err(e) => self.event("error", format!("cannot put the saved HPA back: {e}")),
            },
            EngineCommand::StartStress(p) => self.start_stress(p, "key").await,
            EngineCommand::StopTask(id) if self.loads.has(id) => {
                if let Some(status) = self.loads.stop(id) {
                    self.send(EngineEvent::Task(status));
                }
            }
            EngineCommand::StopTask(id) => self.stop_task(id).await,
            EngineCommand::AskAdvisor => {
                let mut asked = false;
                for r in &mut self.recommenders {
                    if r.name() == "ai" {
                        r.ask_now();
                        asked = true;
                    }
                }
                if !asked {
                    self.send(EngineEvent::Notice("no AI advisor is configured".into()));
                }
            }
            EngineCommand::StartLoad(p) => self.start_load(p, "key").await,
            EngineCommand::SetPromptTemplate(t) => {
                let result = self.recommenders.iter_mut().find(|r| r.name() == "ai").map(|r| r.set_prompt_template(t));
                match result {
                    None => self.send(EngineEvent::Notice("no AI advisor is configured".into())),
                    Some(Ok(())) => self.event("prompt", "the advisor's prompt template was replaced"),
                    Some(Err(e)) => self.send(EngineEvent::Notice(format!("prompt template not changed: {e}"))),
                }
            }
            EngineCommand::SetDriver(d) => {
                if self.recommenders.iter().any(|r| r.name() == d && !r.can_drive()) {
                    self.send(EngineEvent::Notice(format!("{d} cannot drive: it does not recommend replicas")));
                } else if self.recommenders.iter().any(|r| r.name() == d) {
                    self.event("driver", format!("{} -> {d}", self.driver));
                    self.driver = d;
                } else {
                    self.send(EngineEvent::Notice(format!("no recommender named {d}")));
                }
            }
            EngineCommand::Shutdown => {}
        }
    }

    fn task_status(&self, e: &TaskEntry, now: f64) -> TaskStatus {
        TaskStatus {
            id: e.id,
            kind: format!("{} stress", e.task.params.kind().as_str()),
            params: e.task.params.describe(),
            state: e.task.state.label(),
            finished: e.task.state.finished(),
            progress: e.task.progress(now),
            figures: e.task.figures(),
        }
    }

    async fn start_stress(&mut self, params: StressParams, origin: &str) {
        let now = self.clock.now();
        let id = self.next_task_id;
        self.next_task_id += 1;
        let mut entry = TaskEntry { id, task: StressTask::new(params, now), origin: origin.to_string() };
        let log = entry.task.start(self.cluster.as_ref(), now).await;
        let label =
            format!("#{id} {} stress ({}, {origin})", entry.task.params.kind().as_str(), entry.task.params.describe());
        if entry.task.state.finished() {
            self.event("task_failed", format!("{label}: {}", entry.task.state.label()));
        } else {
            self.event("task_start", format!("{label}: {}", entry.task.state.label()));
        }
        for l in log.into_iter().filter(|l| l.contains("failed")) {
            self.event("error", l);
        }
        let status = self.task_status(&entry, now);
        self.send(EngineEvent::Task(status));
        if !entry.task.state.finished() {
            self.tasks.push(entry);
        }
    }

    /// Start the load generator as a background task (wall time) against `params.url` or the
    /// cluster's load target.
    async fn start_load(&mut self, params: LoadParams, origin: &str) {
        let id = self.next_task_id;
        self.next_task_id += 1;
        let url = if self.clock.is_max() {
            Err("the load generator runs in real time; on the virtual clock (--speed max) scenario load \
                 is fed to the simulator directly"
                .to_string())
        } else {
            match &params.url {
                Some(u) => Ok(u.clone()),
                None => self.cluster.load_target().await.map_err(|e| format!("no load target: {e}")),
            }
        };
        if let (Backend::Sim, crate::config::Speed::Factor(f)) = (self.cfg.cluster.backend, self.clock.speed())
            && (f - 1.0).abs() > 1e-9
            && url.is_ok()
        {
            self.send(EngineEvent::Notice(format!(
                "the simulator runs at {f}x real time: it sees the load generator's real request rate divided by {f}"
            )));
        }
        let news = self.loads.start(id, params, url, origin).await;
        self.task_news(news);
    }

    fn task_news(&mut self, news: TaskNews) {
        if let Some((kind, detail)) = news.event {
            self.event(&kind, detail);
        }
        self.send(EngineEvent::Task(news.status));
    }

    async fn stop_task(&mut self, id: TaskId) {
        let Some(pos) = self.tasks.iter().position(|t| t.id == id) else {
            self.send(EngineEvent::Notice(format!("no running task #{id}")));
            return;
        };
        let mut entry = self.tasks.remove(pos);
        entry.task.stop(self.cluster.as_ref()).await;
        let now = self.clock.now();
        self.event(
            "task_stop",
            format!("#{id} {} stress stopped ({})", entry.task.params.kind().as_str(), entry.task.state.label()),
        );
        let status = self.task_status(&entry, now);
        self.send(EngineEvent::Task(status));
    }

    async fn poll_tasks(&mut self, now: f64) {
        let mut i = 0;
        while i < self.tasks.len() {
            if self.tasks[i].task.next_wake().is_some_and(|w| w <= now + 1e-9) {
                let cluster = self.cluster.clone();
                let log = self.tasks[i].task.poll(cluster.as_ref(), now).await;
                for l in log.into_iter().filter(|l| l.contains("failed")) {
                    self.event("error", l);
                }
                let status = self.task_status(&self.tasks[i], now);
                self.send(EngineEvent::Task(status));
                if self.tasks[i].task.state.finished() {
                    let e = self.tasks.remove(i);
                    self.event(
                        "task_stop",
                        format!(
                            "#{} {} stress ended ({}, {})",
                            e.id,
                            e.task.params.kind().as_str(),
                            e.task.state.label(),
                            e.origin
                        ),
                    );
                    continue;
                }
            }
            i += 1;
        }
    }

    /// One control tick.
    async fn tick(&mut self, now: f64) {
        self.ticks += 1;
        let info = self.cluster.info();
        let mut cluster_errors = Vec::new();
        // The three reads at once: an API server that does not answer costs one timeout a tick.
        let (dep, pods, live_hpa) = tokio::join!(self.cluster.deployment(), self.cluster.pods(), self.cluster.hpa());
        let dep = match dep {
            Ok(d) => Some(d),
            Err(e) => {
                cluster_errors.push(format!("deployment: {e}"));
                None
            }
        };
        let pods = match pods {
            Ok(p) => p,
            Err(e) => {
                cluster_errors.push(format!("pods: {e}"));
                Vec::new()
            }
        };
        let live_hpa = match live_hpa {
            Ok(h) => h,
            Err(e) => {
                cluster_errors.push(format!("hpa: {e}"));
                None
            }
        };
        let query = MetricsQuery {
            now,
            namespace: info.namespace.clone(),
            deployment: info.deployment.clone(),
            container: self.cfg.cluster.container.clone(),
            pods: pods.clone(),
        };
        let sample = self.metrics.sample(&query).await;
        if sample.status.kind() != self.metrics_kind {
            let name = crate::engine::metrics::display_name(self.metrics.name());
            let detail = match &sample.status {
                crate::engine::types::SourceStatus::Ok => format!("{name}: ok"),
                other => other.headline(name),
            };
            self.metrics_kind = sample.status.kind();
            self.event("metrics", detail);
        }

        // Scale changes seen on the target feed the shadow HPA's rate-limit history.
        if let Some(d) = &dep {
            if let Some(prev) = self.prev_spec.filter(|p| *p != d.spec_replicas) {
                let b = self.shadow.spec.behavior.clone();
                self.shadow.history.record_scale(b.as_ref(), now, prev, d.spec_replicas);
                self.limiter.record_scale(now, prev, d.spec_replicas);
            }
            self.prev_spec = Some(d.spec_replicas);
        }
        let hpa_sim = self.hpa_sim(now, dep.as_ref(), &pods, &sample);

        // A slice of the history itself (cloning 120 rows every tick cost more than the model).
        let history: &[Row] = self.history.make_contiguous();
        let input = RecommendInput {
            now,
            elapsed_s: now - self.start,
            mode: self.mode,
            deployment: dep,
            sample: &sample,
            pods: &pods,
            hpa_sim: &hpa_sim,
            min_replicas: self.cfg.scaling.min_replicas,
            max_replicas: self.cfg.scaling.max_replicas,
            cpu_target: self.cfg.scaling.cpu_target,
            memory_target: self.cfg.scaling.memory_target,
            history,
            wait: self.clock.is_max(),
        };
        let mut outputs: Vec<(String, RecOutput)> = Vec::new();
        for r in &mut self.recommenders {
            let out = r.recommend(&input).await;
            outputs.push((r.name().to_string(), out));
        }
        let driver_out = outputs.iter().find(|(n, _)| *n == self.driver).map(|(_, o)| o);
        let g = Guardrails {
            min: self.cfg.scaling.min_replicas,
            max: self.cfg.scaling.max_replicas,
            max_step: self.cfg.advisor.max_step,
            scale_while_converging: self.cfg.advisor.scale_while_converging,
            fallback: self.cfg.experiment.fallback,
        };
        let recommended = driver_out.and_then(|o| o.replicas);
        let limiter = (self.cfg.scaling.apply_limits == ApplyLimits::Behavior).then_some((&mut self.limiter, now));
        let mut decision =
            decide_apply(self.mode, dep.as_ref(), live_hpa.as_ref(), &self.driver, driver_out, &hpa_sim, g, limiter);
        if self.mode == Mode::HpaOnly && live_hpa.is_none() && !self.cfg.cluster.read_only {
            // Someone removed the HPA while it is in control: put it back.
            let spec = self.hpa_spec.clone();
            match self.cluster.ensure_hpa(&spec).await {
                Ok(_) => self.event("hpa", "HPA was missing in hpa_only; re-created"),
                Err(e) => self.event("error", format!("cannot ensure the HPA: {e}")),
            }
        }
        if let (Some(to), Some(d)) = (decision.scale_to, dep) {
            match self.cluster.scale(to).await {
                Ok(()) => {
                    self.event("scale", format!("{} -> {to} by {}", d.spec_replicas, decision.applied_by));
                    self.prev_spec = Some(to);
                    let b = self.shadow.spec.behavior.clone();
                    self.shadow.history.record_scale(b.as_ref(), now, d.spec_replicas, to);
                    self.limiter.record_scale(now, d.spec_replicas, to);
                }
                Err(e) => {
                    self.event("error", format!("scale to {to} failed: {e}"));
                    decision.note = format!("scale failed: {e}");
                    decision.applied_replicas = Some(d.spec_replicas);
                }
            }
        }

        let (workers, mib, stress_pods) = self.tasks.iter().fold((0u32, 0u64, 0u32), |(w, m, p), t| {
            let (tw, tm) = t.task.load();
            (w + tw, m + tm, p + t.task.pods().len() as u32)
        });
        let mut row = Row {
            t: now,
            elapsed_s: now - self.start,
            mode: self.mode,
            current_replicas: dep.map(|d| d.spec_replicas),
            ready_replicas: dep.map(|d| d.ready_replicas),
            cpu_millicores: sample.cpu_millicores,
            memory_mebibytes: sample.memory_mebibytes,
            cpu_request_millicores: sample.cpu_request_millicores,
            memory_request_mebibytes: sample.memory_request_mebibytes,
            pod_count: sample.pod_count,
            hpa_sim,
            hpa_current_replicas: live_hpa.as_ref().and_then(|h| h.current_replicas),
            hpa_desired_replicas: live_hpa.as_ref().and_then(|h| h.desired_replicas),
            applied_replicas: decision.applied_replicas,
            applied_by: decision.applied_by,
            backend: info.backend.clone(),
            metrics_source: self.metrics.name().to_string(),
            metrics_status: sample.status.label(),
            cluster_status: if cluster_errors.is_empty() { "ok".into() } else { cluster_errors.join("; ") },
            hpa_present: Some(live_hpa.is_some()),
            applied_note: decision.note,
            recommended_replicas: recommended,
            applied_limit: decision.limit,
            traffic: sample.traffic,
            stress_cpu_workers: workers,
            stress_memory_mib: mib,
            stress_pods,
            load: self.loads.take_tick(),
            driver: self.driver.clone(),
            scenario: self.scenario.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            ..Row::default()
        };
        for (name, out) in outputs {
            if name == "ai" {
                let mut ai = out.ai.unwrap_or_default();
                if ai.status.is_none() {
                    ai.status = Some(out.status.clone());
                }
                if ai.recommended_replicas.is_none() {
                    ai.recommended_replicas = out.replicas;
                }
                row.ai = ai;
            } else {
                row.recommenders.push(RecommenderCells {
                    name,
                    replicas: out.replicas,
                    status: out.status,
                    values: out.values,
                });
            }
        }
        self.note_advisor_reachability(&row.ai);
        if let Err(e) = self.recorder.write_row(&row) {
            self.send(EngineEvent::Notice(format!("cannot write the CSV: {e}")));
        }
        self.tally.add(&row);
        self.history.push_back(row.clone());
        while self.history.len() > HISTORY_ROWS {
            self.history.pop_front();
        }
        self.send(EngineEvent::Sample(Box::new(row)));
    }

    /// An event when the advisor's model server stops or starts answering, the first saying what
    /// to do about it (the row's `ai_error` holds the details every tick).
    fn note_advisor_reachability(&mut self, ai: &crate::engine::record::AiColumns) {
        let status = ai.status.as_deref().unwrap_or("");
        if status == "pending" || status.is_empty() {
            return;
        }
        let unreachable = status == "unreachable";
        if unreachable == self.advisor_unreachable {
            return;
        }
        self.advisor_unreachable = unreachable;
        let detail = if unreachable {
            format!(
                "{}; start a model server (e.g. `ollama serve`), point --ai-url at one, or set enabled = false in [advisor]",
                ai.error.as_deref().unwrap_or("no model server answers")
            )
        } else {
            "the model server answers again".to_string()
        };
        self.event("advisor", detail);
    }

    /// The HPA algorithm on this tick's observation (a shadow: it never scales anything).
    fn hpa_sim(&mut self, now: f64, dep: Option<&DeploymentState>, pods: &[PodInfo], sample: &MetricsSample) -> HpaSim {
        let Some(dep) = dep else {
            return HpaSim { action: String::new(), reason: "deployment state unknown".into(), ..HpaSim::default() };
        };
        let mut per_pod: Vec<PodUsage> = sample.per_pod.clone();
        if per_pod.is_empty() && (sample.cpu_millicores.is_some() || sample.memory_mebibytes.is_some()) {
            // Only averages are known (e.g. Prometheus without per-pod series): give every ready
            // pod the average.
            per_pod = pods
                .iter()
                .filter(|p| p.is_ready())
                .map(|p| PodUsage {
                    pod: p.name.clone(),
                    cpu_m: sample.cpu_millicores,
                    memory_mib: sample.memory_mebibytes,
                    at: sample.at,
                    window_s: 60.0,
                    ..PodUsage::default()
                })
                .collect();
        }
        let obs = hpa::Observation {
            spec_replicas: dep.spec_replicas,
            status_replicas: dep.status_replicas,
            pods: pods.iter().map(|p| to_hpa_pod(p, now)).collect(),
            pod_resource_metrics: per_pod.iter().map(|u| to_hpa_sample(u, now)).collect(),
            pod_custom_metrics: custom_metrics_of(&per_pod, now),
        };
        let out = self.shadow.sync(now, &obs, ReconcileOptions { store_scale_events: false });
        let cpu = out.proposal_for("cpu");
        let mem = out.proposal_for("memory");
        let desired = out.desired_replicas;
        let action = match desired.cmp(&dep.spec_replicas) {
            std::cmp::Ordering::Greater => "scale_up",
            std::cmp::Ordering::Less => "scale_down",
            std::cmp::Ordering::Equal => "no_change",
        };
        let mut reasons: Vec<String> =
            out.metrics.iter().filter_map(|m| m.error.as_ref().map(|e| format!("{}: {e}", m.name))).collect();
        reasons.extend(
            out.conditions
                .iter()
                .filter(|c| c.kind != "ScalingActive" || !c.status)
                .filter(|c| {
                    !matches!(
                        c.reason,
                        "ReadyForNewScale" | "DesiredWithinRange" | "SucceededRescale" | "ValidMetricFound"
                    )
                })
                .map(|c| c.reason.to_string()),
        );
        HpaSim {
            desired: Some(desired),
            raw_desired: out.metric_desired_replicas,
            cpu_desired: cpu.map(|p| p.replicas),
            mem_desired: mem.map(|p| p.replicas),
            action: action.into(),
            cpu_ratio: cpu.map(|p| p.trace.usage_ratio),
            mem_ratio: mem.map(|p| p.trace.usage_ratio),
            reason: reasons.join("; "),
        }
    }

    /// `<csv stem>_summary.json`: the simulator's own totals, or the ticks added up.
    fn write_summary(&mut self) -> Option<std::path::PathBuf> {
        use crate::engine::record::summary::{SummaryFile, summary_path};
        let scenario = self.scenario.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        let file = match &self.sim {
            Some(sim) => SummaryFile::from_model(&sim.totals(), &self.cfg, &scenario),
            None => SummaryFile::from_tally(&self.tally, &self.cfg, &scenario),
        };
        let path = summary_path(&self.recorder.csv_path);
        match file.write(&path) {
            Ok(()) => Some(path),
            Err(e) => {
                self.send(EngineEvent::Notice(format!("cannot write {}: {e}", path.display())));
                None
            }
        }
    }

    async fn finish(mut self, reason: String) -> RunSummary {
        for news in self.loads.stop_all().await {
            self.task_news(news);
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        for t in &mut tasks {
            t.task.stop(self.cluster.as_ref()).await;
            let now = self.clock.now();
            self.event(
                "task_stop",
                format!(
                    "#{} {} stress stopped at exit ({})",
                    t.id,
                    t.task.params.kind().as_str(),
                    t.task.state.label()
                ),
            );
            let status = self.task_status(t, now);
            self.send(EngineEvent::Task(status));
        }
        for r in &mut self.recommenders {
            r.shutdown().await;
        }
        let restored = if self.cfg.cluster.keep_changes {
            vec!["kept scaletui's changes (--keep-changes)".to_string()]
        } else {
            match self.cluster.restore().await {
                Ok(done) => done,
                Err(e) => vec![format!("restore failed: {e}")],
            }
        };
        for r in &restored {
            self.event("restore", r.clone());
        }
        if self.dropped_events > 0 {
            let n = self.dropped_events;
            self.event(
                "notice",
                format!("{n} display updates were dropped (the front end was busy); the CSV is complete"),
            );
        }
        self.event("run_end", format!("{reason}; {} rows", self.recorder.rows_written));
        let _ = self.recorder.flush();
        let summary_path = self.write_summary();
        let summary = RunSummary {
            reason: reason.clone(),
            rows: self.recorder.rows_written,
            csv_path: self.recorder.csv_path.clone(),
            events_path: self.recorder.events_path.clone(),
            summary_path,
            restored: restored.clone(),
        };
        let _ = self
            .events
            .send(EngineEvent::Finished {
                reason,
                rows: summary.rows,
                csv_path: summary.csv_path.clone(),
                events_path: summary.events_path.clone(),
                restored,
            })
            .await;
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(spec: i32, ready: i32) -> DeploymentState {
        DeploymentState { spec_replicas: spec, status_replicas: spec, ready_replicas: ready, available_replicas: ready }
    }

    fn g() -> Guardrails {
        Guardrails { min: 1, max: 10, max_step: 0, scale_while_converging: false, fallback: Fallback::HpaSim }
    }

    fn ai(n: Option<i32>) -> RecOutput {
        RecOutput {
            replicas: n,
            status: if n.is_some() { "parsed".into() } else { "failed: timeout".into() },
            ..RecOutput::default()
        }
    }

    #[test]
    fn ai_scaler_applies_clamped_recommendations() {
        let sim = HpaSim { desired: Some(4), ..HpaSim::default() };
        let d = decide_apply(Mode::AiScaler, Some(&dep(3, 3)), None, "ai", Some(&ai(Some(25))), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_by.as_str()), (Some(10), "ai"));
        let d = decide_apply(Mode::AiScaler, Some(&dep(3, 3)), None, "ai", Some(&ai(Some(3))), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_by.as_str()), (None, "ai_no_change"));
        let d = decide_apply(
            Mode::AiScaler,
            Some(&dep(3, 3)),
            None,
            "ai",
            Some(&ai(Some(9))),
            &sim,
            Guardrails { max_step: 2, ..g() },
            None,
        );
        assert_eq!(d.scale_to, Some(5));
    }

    #[test]
    fn ai_scaler_waits_for_convergence_and_falls_back() {
        let sim = HpaSim { desired: Some(4), ..HpaSim::default() };
        let d = decide_apply(Mode::AiScaler, Some(&dep(5, 3)), None, "ai", Some(&ai(Some(7))), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_by.as_str()), (None, "ai_no_change"));
        assert!(d.note.contains("converge"));
        let d = decide_apply(Mode::AiScaler, Some(&dep(3, 3)), None, "ai", Some(&ai(None)), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_by.as_str()), (Some(4), "hpa_sim"));
        assert!(d.note.contains("timeout"));
        let d = decide_apply(
            Mode::AiScaler,
            Some(&dep(3, 3)),
            None,
            "ai",
            None,
            &sim,
            Guardrails { fallback: Fallback::Hold, ..g() },
            None,
        );
        assert_eq!((d.scale_to, d.applied_by.as_str()), (None, "hold"));
    }

    #[test]
    fn other_modes_never_scale() {
        let sim = HpaSim { desired: Some(4), ..HpaSim::default() };
        let h = HpaInfo {
            name: "h".into(),
            min_replicas: 1,
            max_replicas: 10,
            current_replicas: Some(3),
            desired_replicas: Some(6),
            conditions: vec![],
        };
        let d = decide_apply(Mode::HpaOnly, Some(&dep(3, 3)), Some(&h), "ai", Some(&ai(Some(9))), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_replicas, d.applied_by.as_str()), (None, Some(6), "hpa"));
        let d = decide_apply(Mode::Comparison, Some(&dep(3, 3)), Some(&h), "ai", Some(&ai(Some(9))), &sim, g(), None);
        assert_eq!((d.scale_to, d.applied_replicas, d.applied_by.as_str()), (None, Some(3), "observation_only"));
    }
}
