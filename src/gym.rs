//! The simulated cluster as a reinforcement-learning environment: the core of the Python
//! package's `scaletui.AutoscaleEnv` (python/), usable from Rust as well.
//!
//! An episode is a headless run of a scenario on the simulator in virtual time (`--speed max`),
//! in `ai_scaler`, whose driver is the environment itself: the run's control loop asks for a
//! decision every `interval` seconds through the external-policy channel transport, exactly as
//! `--driver exec:CMD` asks a process. So an episode is the same run as `scaletui --headless`
//! of the same scenario and seed driven by the same decisions, row for row, and it writes the
//! same CSV (into `record_dir`, or a scratch directory that is removed).
//!
//! - `reset(seed)` starts a run with `sim.seed = seed` and returns the observation of its first
//!   tick; `step(action)` applies the action there and returns the observation of the next tick,
//!   the reward of the interval between them and its figures. The last tick of the run ends the
//!   episode (truncated: the time limit); its decision is "keep".
//! - Actions: [`ActionSpace::Delta`] (0, 1, 2 = −1, 0, +1 replica, seed 003's) or
//!   [`ActionSpace::Count`] (the replica count 0..=max; below `min_replicas` means the minimum).
//!   The change then goes through the run's guardrails like any driver's (min/max, max_step, the
//!   convergence wait, `[scaling] apply_limits`).
//! - Observations: seed 003's four features by default ([`SEED003_FEATURES`]), or any list of
//!   the figures [`figure`] knows (the CSV's column names), as `f32`; a figure that has no value
//!   this tick (no traffic: no latency) is 0.
//! - Rewards: [`crate::engine::reward`] (`[reward] preset`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, Config, Speed};
use crate::engine::advisor::Recommender;
use crate::engine::advisor::external::{ChannelRequest, ExternalPolicy, Observation, PolicyAnswer};
use crate::engine::experiment::{Experiment, RunSummary};
pub use crate::engine::learn::features::{FIGURES, SEED003_FEATURES, figure};
use crate::engine::reward::{Reward, reward};
use crate::engine::types::Mode;
use crate::report::sweep::set_key;
use crate::run;

/// The driver name episodes record (`applied_by`, `driver`).
pub const DRIVER: &str = "env";

/// How actions are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionSpace {
    /// 0, 1, 2: one replica fewer, keep, one more.
    Delta,
    /// The replica count itself, 0..=max_replicas.
    Count,
}

impl ActionSpace {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "delta" => Ok(Self::Delta),
            "count" => Ok(Self::Count),
            other => Err(format!("action space {other:?}: delta (−1/0/+1) or count (a replica count)")),
        }
    }

    /// How many actions there are.
    pub fn size(self, max_replicas: i32) -> usize {
        match self {
            Self::Delta => 3,
            Self::Count => max_replicas.max(0) as usize + 1,
        }
    }
}

/// What an environment is made of.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// The run's configuration (scenario settings and overrides applied; backend, speed, mode and
    /// driver are set by the environment).
    pub cfg: Config,
    pub actions: ActionSpace,
    /// Figure names; empty: [`SEED003_FEATURES`].
    pub observe: Vec<String>,
    /// The rate that seed 003's `rate` feature divides by (requests/s).
    pub max_rps: f64,
    /// Keep each episode's CSV here (`None`: a scratch directory, removed).
    pub record_dir: Option<PathBuf>,
}

impl EnvSpec {
    /// A spec from a scenario (a path, or a name in `scenarios/`; empty: none) and dotted
    /// overrides (`sim.service.mean_ms` = 20, …) over the configuration a run would load.
    /// Without an `experiment.duration` (the scenario's or an override) an episode lasts the
    /// scenario plus ten minutes, as in `scaletui compare`. A `wave` load's `max_rpm` counts as
    /// its peak rate (seed 003's max_rate).
    pub fn new(scenario: &str, overrides: &[(String, toml::Value)]) -> Result<Self, String> {
        let (base, _) = crate::config::load_checked(None, crate::engine::check_config).map_err(|e| e.to_string())?;
        Self::with_base(base, scenario, overrides)
    }

    /// [`EnvSpec::new`] over a given configuration instead of the one found here.
    pub fn with_base(base: Config, scenario: &str, overrides: &[(String, toml::Value)]) -> Result<Self, String> {
        let mut cfg = base;
        let mut peak = 0.0f64;
        if !scenario.trim().is_empty() {
            let sc = run::find_scenario(scenario.trim()).map_err(|e| e.to_string())?;
            cfg = sc.apply_settings(&cfg)?;
            cfg.experiment.scenario = scenario.trim().to_string();
            let own =
                matches!(sc.settings.get("experiment"), Some(toml::Value::Table(e)) if e.contains_key("duration"));
            if !own {
                cfg.experiment.duration = ((sc.length_s() + 600.0) / 60.0).ceil();
            }
            for (_, w) in &sc.unseeded_waves {
                peak = peak.max(w.max_rpm / 60.0);
            }
            let plan = sc.plan(cfg.sim.baseline_rps);
            let end = sc.length_s().max(1.0);
            let mut t = 0.0;
            while t <= end {
                peak = peak.max(plan.rate(t));
                t += 1.0;
            }
        }
        for (k, v) in overrides {
            cfg = set_key(&cfg, k, v)?;
        }
        if !(cfg.experiment.duration > 0.0) {
            return Err("an episode needs an end: give a scenario or experiment.duration (minutes)".into());
        }
        cfg.cluster.backend = Backend::Sim;
        cfg.sim.speed = Speed::Max;
        cfg.experiment.mode = Mode::AiScaler;
        cfg.experiment.driver = DRIVER.into();
        cfg.advisor.enabled = false;
        crate::engine::check_config(&cfg).map_err(|(k, m)| format!("configuration: key `{k}`: {m}"))?;
        let max_rps = if peak > 0.0 { peak } else { 260.0 / 60.0 };
        Ok(Self { cfg, actions: ActionSpace::Delta, observe: Vec::new(), max_rps, record_dir: None })
    }

    /// The observation's names.
    pub fn features(&self) -> Vec<String> {
        if self.observe.is_empty() {
            SEED003_FEATURES.iter().map(|s| s.to_string()).collect()
        } else {
            self.observe.clone()
        }
    }

    /// Check the observation list.
    pub fn check(&self) -> Result<(), String> {
        for f in &self.observe {
            if !FIGURES.contains(&f.as_str()) {
                return Err(format!("unknown observation figure {f:?} (one of: {})", FIGURES.join(", ")));
            }
        }
        if !(self.max_rps.is_finite() && self.max_rps > 0.0) {
            return Err(format!("max_rps must be positive, not {}", self.max_rps));
        }
        Ok(())
    }

    /// Bounds of each feature (seed 003's are [0, 1] and [−1, 1]; figures are unbounded below
    /// at 0 and above).
    pub fn bounds(&self) -> Vec<(f32, f32)> {
        if self.observe.is_empty() {
            vec![(0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (-1.0, 1.0)]
        } else {
            self.observe.iter().map(|_| (f32::NEG_INFINITY, f32::INFINITY)).collect()
        }
    }
}

/// What a step (or a reset) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOut {
    pub obs: Vec<f32>,
    pub reward: Reward,
    pub terminated: bool,
    pub truncated: bool,
    /// The observed tick (its figures are the CSV row's).
    pub observation: Observation,
    /// The replica count the step asked for (`None` at reset).
    pub requested: Option<i32>,
}

struct Episode {
    requests: mpsc::Receiver<ChannelRequest>,
    pending: Option<ChannelRequest>,
    task: JoinHandle<RunSummary>,
    drain: JoinHandle<()>,
    cancel: CancellationToken,
    /// The scratch directory (removed at the end) or `None` when recording.
    scratch: Option<PathBuf>,
    /// Arrival rates seen (req/s), newest last (for the trend feature).
    rates: Vec<f64>,
    last: Observation,
    done: bool,
}

/// One environment: a runtime of its own (one thread: deterministic, and many environments can
/// run on many threads).
pub struct Env {
    pub spec: EnvSpec,
    rt: tokio::runtime::Runtime,
    episode: Option<Episode>,
    /// The CSV of the last finished episode.
    pub last_csv: Option<PathBuf>,
}

static SCRATCH: AtomicU64 = AtomicU64::new(0);

impl Env {
    pub fn new(spec: EnvSpec) -> Result<Self, String> {
        spec.check()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the environment's runtime: {e}"))?;
        Ok(Self { spec, rt, episode: None, last_csv: None })
    }

    /// The number of actions.
    pub fn action_count(&self) -> usize {
        self.spec.actions.size(self.spec.cfg.scaling.max_replicas)
    }

    /// Start an episode with this seed (any running one is ended first).
    pub fn reset(&mut self, seed: u64) -> Result<StepOut, String> {
        self.close();
        let mut cfg = self.spec.cfg.clone();
        cfg.sim.seed = seed;
        let scratch = match &self.spec.record_dir {
            Some(d) => {
                cfg.experiment.output_dir = d.clone();
                None
            }
            None => {
                let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
                let d = std::env::temp_dir().join(format!("scaletui-env-{}-{n}", std::process::id()));
                cfg.experiment.output_dir = d.clone();
                Some(d)
            }
        };
        let (tx, requests) = mpsc::channel(1);
        let policy = ExternalPolicy::channel(DRIVER, tx, &cfg.policy, cfg.experiment.interval)
            .with_duration(cfg.experiment.duration * 60.0);
        let extra: Vec<Box<dyn Recommender>> = vec![Box::new(policy)];
        let cancel = CancellationToken::new();
        let (task, drain) = self.rt.block_on(async {
            let mut parts = run::build_with(&cfg, false, extra).await.map_err(|e| e.to_string())?;
            let exp = Experiment::new(parts.setup)
                .map_err(|e| format!("cannot create the record in {}: {e}", cfg.experiment.output_dir.display()))?;
            let drain = tokio::spawn(async move { while parts.events.recv().await.is_some() {} });
            let c = cancel.clone();
            Ok::<_, String>((tokio::spawn(async move { exp.run(c).await }), drain))
        })?;
        let mut ep = Episode {
            requests,
            pending: None,
            task,
            drain,
            cancel,
            scratch,
            rates: Vec::new(),
            last: Observation::default(),
            done: false,
        };
        let first = self.rt.block_on(ep.requests.recv());
        let Some(req) = first else {
            let summary = self.rt.block_on(&mut ep.task).map_err(|e| e.to_string())?;
            return Err(format!("the run ended before its first tick ({})", summary.reason));
        };
        self.episode = Some(ep);
        Ok(self.take(req, None, 0))
    }

    /// Apply `action` at the current tick and advance to the next.
    pub fn step(&mut self, action: i64) -> Result<StepOut, String> {
        let n = self.action_count();
        let actions = self.spec.actions;
        let Some(ep) = self.episode.as_mut() else {
            return Err("step before reset".into());
        };
        if ep.done {
            return Err("the episode has ended; call reset".into());
        }
        if action < 0 || action as usize >= n {
            return Err(format!("action {action} is outside 0..{n}"));
        }
        let Some(req) = ep.pending.take() else {
            return Err("no tick is waiting for an action".into());
        };
        let o = &req.observation;
        let cur = o.current_replicas.unwrap_or(o.min_replicas);
        let (lo, hi) = (o.min_replicas, o.max_replicas.max(o.min_replicas));
        let want = match actions {
            ActionSpace::Delta => cur + (action as i32 - 1),
            ActionSpace::Count => action as i32,
        }
        .clamp(lo, hi);
        let _ = req.reply.send(Some(PolicyAnswer { replicas: want, reasoning: format!("action {action}") }));
        let next = self.rt.block_on(ep.requests.recv());
        match next {
            Some(req) => Ok(self.take(req, Some(want), want - cur)),
            None => {
                // The run ended without saying this was its last tick (stopped early).
                let last = ep.last.clone();
                self.finish_episode();
                let mut out = self.out_of(last, Some(want), want - cur);
                out.truncated = true;
                Ok(out)
            }
        }
    }

    /// Take the request of a tick: its observation, reward and end.
    fn take(&mut self, req: ChannelRequest, requested: Option<i32>, change: i32) -> StepOut {
        let obs = req.observation.clone();
        let last = obs.last;
        if let Some(ep) = self.episode.as_mut() {
            ep.rates.push(obs.rps.unwrap_or(0.0));
            ep.last = obs.clone();
            if last {
                // The run's last tick: keep the replicas, then let the run write its files.
                let _ = req.reply.send(Some(PolicyAnswer {
                    replicas: obs.current_replicas.unwrap_or(obs.min_replicas),
                    reasoning: "episode end".into(),
                }));
            } else {
                ep.pending = Some(req);
            }
        }
        let mut out = self.out_of(obs, requested, change);
        if last {
            self.finish_episode();
            out.truncated = true;
        }
        out
    }

    fn out_of(&self, o: Observation, requested: Option<i32>, change: i32) -> StepOut {
        let rates = self.episode.as_ref().map(|e| e.rates.as_slice()).unwrap_or(&[]);
        let obs = features(&self.spec, &o, rates);
        let r = match requested {
            Some(_) => reward(&self.spec.cfg.reward, &self.spec.cfg.report, &o, change),
            None => Reward::default(),
        };
        StepOut { obs, reward: r, terminated: false, truncated: false, observation: o, requested }
    }

    /// Let the run finish (it writes its CSV); remove a scratch directory.
    fn finish_episode(&mut self) {
        let Some(ep) = self.episode.as_mut() else { return };
        if ep.done {
            return;
        }
        ep.done = true;
        ep.pending = None;
        let summary = self.rt.block_on(&mut ep.task);
        ep.drain.abort();
        match (&ep.scratch, summary) {
            (Some(d), _) => {
                let _ = std::fs::remove_dir_all(d);
                self.last_csv = None;
            }
            (None, Ok(s)) => self.last_csv = Some(s.csv_path),
            (None, Err(_)) => self.last_csv = None,
        }
    }

    /// End any running episode (its CSV keeps the rows so far).
    pub fn close(&mut self) {
        if let Some(ep) = self.episode.as_mut()
            && !ep.done
        {
            ep.cancel.cancel();
            // A tick waiting for an action gets none (the fallback), then the run stops.
            ep.pending = None;
            ep.requests.close();
        }
        self.finish_episode();
        self.episode = None;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.close();
    }
}

/// The observation vector of `o` for this environment.
pub fn features(spec: &EnvSpec, o: &Observation, rates: &[f64]) -> Vec<f32> {
    crate::engine::learn::features::features(&spec.observe, spec.max_rps, o, rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_features_by_hand() {
        let spec = EnvSpec {
            cfg: Config::default(),
            actions: ActionSpace::Delta,
            observe: Vec::new(),
            max_rps: 10.0,
            record_dir: None,
        };
        let o = Observation {
            cpu_utilization: Some(50.0),
            rps: Some(6.0),
            current_replicas: Some(4),
            max_replicas: 8,
            ..Observation::default()
        };
        // The rate two ticks ago was 2 req/s: trend (6 − 2)/10.
        assert_eq!(features(&spec, &o, &[2.0, 3.0, 6.0]), vec![0.5, 0.6, 0.5, 0.4]);
        let hot = Observation { cpu_utilization: Some(180.0), rps: Some(30.0), ..o.clone() };
        assert_eq!(features(&spec, &hot, &[0.0, 0.0, 30.0]), vec![1.0, 1.0, 0.5, 1.0]);
        let listed = EnvSpec { observe: vec!["rps".into(), "latency_p95_ms".into()], ..spec };
        assert_eq!(features(&listed, &o, &[]), vec![6.0, 0.0], "no latency this tick: 0");
        assert!(listed.check().is_ok());
        assert!(EnvSpec { observe: vec!["nope".into()], ..listed }.check().is_err());
    }

    #[test]
    fn every_listed_figure_is_read() {
        let o = Observation {
            current_replicas: Some(1),
            ready_replicas: Some(1),
            cpu_millicores: Some(1.0),
            memory_mebibytes: Some(1.0),
            cpu_request_millicores: Some(1.0),
            memory_request_mebibytes: Some(1.0),
            cpu_utilization: Some(1.0),
            memory_utilization: Some(1.0),
            pod_count: Some(1),
            baseline: Some(1),
            hpa_sim_cpu_ratio: Some(1.0),
            hpa_sim_mem_ratio: Some(1.0),
            rps: Some(1.0),
            served_rps: Some(1.0),
            errors_per_s: Some(1.0),
            latency_p50_ms: Some(1.0),
            latency_p95_ms: Some(1.0),
            latency_p99_ms: Some(1.0),
            latency_mean_ms: Some(1.0),
            in_flight: Some(1.0),
            waiting: Some(1.0),
            arrived: Some(1),
            served: Some(1),
            rejected: Some(1),
            timed_out: Some(1),
            failed: Some(1),
            ..Observation::default()
        };
        for f in FIGURES {
            assert!(figure(&o, f).is_some(), "{f}");
        }
        assert_eq!(figure(&o, "no_such"), None);
    }
}
