//! `scaletui train dqn`: seed 003's Double DQN trained on the simulator, episode after episode
//! of a scenario in virtual time (the Python environment's core, [`crate::gym`]), with a
//! progress bar, checkpoints that a later run resumes from, a learning curve (CSV, PNG, SVG) and
//! an evaluation on held-out seeds beside the HPA algorithm and a random policy.
//!
//! The model directory (`-o DIR`) holds `model.safetensors` + `model.json` (what `--driver dqn`
//! and `compare dqn:DIR` load), `curve.csv` and `curve.png`/`.svg`, `eval.csv`, and
//! `checkpoint/` (both networks, the replay buffer and the counters) while training runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::learn::dqn::{Dqn, QNet};
use crate::engine::learn::model::{DQN_KIND, DQN_VERSION, DqnModel, DqnModelInfo, TrainingFigures};
use crate::engine::learn::replay::{PrioritizedReplay, Transition};
use crate::engine::reward::effective_rt_s;
use crate::engine::rng::Rng;
use crate::gym::{ActionSpace, Env, EnvSpec, StepOut};

/// What to train.
#[derive(Debug, Clone)]
pub struct DqnTrainSpec {
    /// The configuration the episodes start from (the file and flags; the scenario's settings
    /// and `overrides` go over it).
    pub base: crate::config::Config,
    pub scenario: String,
    /// Settings over the configuration (dotted keys), as the Python environment takes them.
    pub overrides: Vec<(String, toml::Value)>,
    pub steps: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// Save a checkpoint (and the model so far) every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Held-out episode seeds for the evaluation (empty: none).
    pub eval_seeds: Vec<u64>,
    /// Continue from `out/checkpoint` when it is there.
    pub resume: bool,
    /// Progress on stderr.
    pub show: bool,
}

/// One episode's figures (seed 003's: mean response time, the share of intervals over Tmax,
/// mean replicas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeFigures {
    pub episode: u64,
    /// Training steps done at its end.
    pub steps: u64,
    pub seed: u64,
    pub reward: f64,
    pub mean_rt_s: f64,
    pub over_tmax: f64,
    pub mean_replicas: f64,
    pub epsilon: f64,
}

/// Accumulates an episode.
#[derive(Default)]
struct Tally {
    reward: f64,
    rt: f64,
    rt_n: u64,
    over: u64,
    replicas: f64,
    n: u64,
}

impl Tally {
    fn add(&mut self, s: &StepOut, failed_rt_s: f64, tmax_s: f64) {
        self.reward += s.reward.total;
        if let Some(rt) = effective_rt_s(&s.observation, failed_rt_s) {
            self.rt += rt;
            self.rt_n += 1;
            if rt > tmax_s {
                self.over += 1;
            }
        }
        self.replicas += f64::from(s.observation.current_replicas.unwrap_or(0));
        self.n += 1;
    }

    fn figures(&self, episode: u64, steps: u64, seed: u64, epsilon: f64) -> EpisodeFigures {
        let per = |x: f64, n: u64| if n > 0 { x / n as f64 } else { 0.0 };
        EpisodeFigures {
            episode,
            steps,
            seed,
            reward: self.reward,
            mean_rt_s: per(self.rt, self.rt_n),
            over_tmax: per(self.over as f64, self.rt_n),
            mean_replicas: per(self.replicas, self.n),
            epsilon,
        }
    }
}

/// The counters of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    steps: u64,
    episodes: u64,
    seconds: f64,
    curve: Vec<EpisodeFigures>,
    /// The episode under way is dropped at a checkpoint; the next one starts fresh.
    seed: u64,
    total_steps: u64,
}

/// What training did.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub steps: u64,
    pub episodes: u64,
    pub seconds: f64,
    pub interrupted: bool,
    pub curve: Vec<EpisodeFigures>,
    pub evaluation: Vec<PolicyEvaluation>,
    pub model_dir: PathBuf,
}

/// A policy's figures over the held-out episodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyEvaluation {
    pub policy: String,
    pub episodes: usize,
    pub reward: f64,
    pub mean_rt_s: f64,
    pub over_tmax: f64,
    pub mean_replicas: f64,
}

/// The seed of training episode `n`.
fn episode_seed(seed: u64, n: u64) -> u64 {
    Rng::stream(seed, 0x5EED_0000 + n).next_u64()
}

fn env_spec(spec: &DqnTrainSpec, actions: ActionSpace) -> Result<EnvSpec, String> {
    let mut s = EnvSpec::with_base(spec.base.clone(), &spec.scenario, &spec.overrides)?;
    s.actions = actions;
    Ok(s)
}

/// Train (or resume), save the model, the curve and the evaluation.
pub fn train_dqn(spec: &DqnTrainSpec, cancel: &CancellationToken) -> Result<TrainOutcome, String> {
    if spec.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    let env_spec = env_spec(spec, ActionSpace::Delta)?;
    let settings = env_spec.cfg.recommenders.dqn.clone();
    settings.validate().map_err(|e| format!("recommenders.dqn: {e}"))?;
    let features = env_spec.features();
    let (failed_rt_s, tmax_s) = (env_spec.cfg.reward.failed_rt_s, env_spec.cfg.reward.tmax_s);
    let info_base = DqnModelInfo {
        kind: DQN_KIND.into(),
        version: DQN_VERSION,
        observe: env_spec.observe.clone(),
        features: features.clone(),
        max_rps: env_spec.max_rps,
        actions: vec![-1, 0, 1],
        dims: std::iter::once(features.len()).chain(settings.hidden.iter().copied()).chain([3]).collect(),
        reward: format!("{:?}", env_spec.cfg.reward.preset).to_lowercase(),
        scenario: spec.scenario.clone(),
        seed: spec.seed,
        interval_s: env_spec.cfg.experiment.interval,
        settings: settings.clone(),
        training: TrainingFigures::default(),
    };
    let mut env = Env::new(env_spec)?;
    let mut agent = Dqn::new(features.len(), 3, settings.clone(), spec.seed)?;
    std::fs::create_dir_all(&spec.out).map_err(|e| format!("{}: {e}", spec.out.display()))?;
    let ck = spec.out.join("checkpoint");
    let mut state = CheckpointState {
        steps: 0,
        episodes: 0,
        seconds: 0.0,
        curve: Vec::new(),
        seed: spec.seed,
        total_steps: spec.steps,
    };
    if spec.resume && ck.join("state.json").is_file() {
        state = load_checkpoint(&ck, &mut agent)?;
        if state.seed != spec.seed {
            return Err(format!(
                "{}: the checkpoint was trained with --seed {}; resume with it or start another directory",
                ck.display(),
                state.seed
            ));
        }
        state.total_steps = spec.steps;
        if spec.show {
            eprintln!("resuming at step {} (episode {})", state.steps, state.episodes);
        }
    }
    let mut rng = Rng::stream(spec.seed, 0xAC7 + state.steps);
    let started = Instant::now();
    let seconds_before = state.seconds;
    let mut progress = Progress::new(spec.steps, state.steps, spec.show);
    let mut interrupted = false;
    let mut last_checkpoint = state.steps;
    'episodes: while state.steps < spec.steps {
        let ep_seed = episode_seed(spec.seed, state.episodes);
        let mut now = env.reset(ep_seed)?;
        let mut tally = Tally::default();
        loop {
            if cancel.is_cancelled() {
                interrupted = true;
                break 'episodes;
            }
            let eps = settings.epsilon(state.steps, spec.steps);
            let a = agent.act(&now.obs, eps, &mut rng)?;
            let next = env.step(a as i64)?;
            tally.add(&next, failed_rt_s, tmax_s);
            agent.replay.push(Transition {
                state: now.obs.clone(),
                action: a as u32,
                reward: next.reward.total as f32,
                next: next.obs.clone(),
                // The time limit is not a terminal state: its value is bootstrapped.
                done: next.terminated,
            });
            agent.learn(&mut rng)?;
            state.steps += 1;
            progress.step(state.steps, eps, &state.curve);
            let end = next.terminated || next.truncated;
            now = next;
            if end {
                state.episodes += 1;
                state.curve.push(tally.figures(state.episodes, state.steps, ep_seed, eps));
                progress.episode(state.curve.last());
                break;
            }
            if state.steps >= spec.steps {
                break 'episodes;
            }
        }
        if spec.checkpoint_every > 0 && state.steps - last_checkpoint >= spec.checkpoint_every {
            state.seconds = seconds_before + started.elapsed().as_secs_f64();
            save_checkpoint(&ck, &agent, &state)?;
            save_model(&spec.out, &agent.online, &info_base, &state)?;
            write_curve(&spec.out, &state.curve)?;
            last_checkpoint = state.steps;
        }
    }
    env.close();
    progress.finish();
    state.seconds = seconds_before + started.elapsed().as_secs_f64();
    save_checkpoint(&ck, &agent, &state)?;
    save_model(&spec.out, &agent.online, &info_base, &state)?;
    write_curve(&spec.out, &state.curve)?;
    if let Err(e) = plot_curve(&spec.out, &state.curve) {
        eprintln!("warning: the learning curve plot: {e}");
    }
    let evaluation = if interrupted || spec.eval_seeds.is_empty() {
        Vec::new()
    } else {
        let model = DqnModel::load(&spec.out)?;
        let ev = evaluate(spec, &model.net, cancel)?;
        write_eval(&spec.out, &ev)?;
        ev
    };
    Ok(TrainOutcome {
        steps: state.steps,
        episodes: state.episodes,
        seconds: state.seconds,
        interrupted,
        curve: state.curve,
        evaluation,
        model_dir: spec.out.clone(),
    })
}

fn recent_reward(curve: &[EpisodeFigures]) -> f64 {
    let tail = &curve[curve.len().saturating_sub(10)..];
    if tail.is_empty() { 0.0 } else { tail.iter().map(|e| e.reward).sum::<f64>() / tail.len() as f64 }
}

fn save_model(dir: &Path, net: &QNet, base: &DqnModelInfo, state: &CheckpointState) -> Result<(), String> {
    let mut info = base.clone();
    info.training = TrainingFigures {
        steps: state.steps,
        episodes: state.episodes,
        seconds: state.seconds,
        steps_per_s: if state.seconds > 0.0 { state.steps as f64 / state.seconds } else { 0.0 },
        epsilon: base.settings.epsilon(state.steps, state.total_steps),
        recent_reward: recent_reward(&state.curve),
    };
    DqnModel::save(dir, net, &info)
}

fn save_checkpoint(dir: &Path, agent: &Dqn, state: &CheckpointState) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    agent.online.save(&dir.join("online.safetensors"))?;
    agent.target.save(&dir.join("target.safetensors"))?;
    let replay = serde_json::to_string(&agent.replay).map_err(|e| e.to_string())?;
    let tmp = dir.join("replay.json.tmp");
    std::fs::write(&tmp, replay).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("replay.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The counters last: a state.json always has the files it counts.
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("state.json")).map_err(|e| format!("{}: {e}", dir.display()))
}

fn load_checkpoint(dir: &Path, agent: &mut Dqn) -> Result<CheckpointState, String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let state: CheckpointState =
        serde_json::from_str(&read("state.json")?).map_err(|e| format!("{}: {e}", dir.join("state.json").display()))?;
    agent.online.load(&dir.join("online.safetensors"))?;
    agent.target.load(&dir.join("target.safetensors"))?;
    let replay: PrioritizedReplay = serde_json::from_str(&read("replay.json")?)
        .map_err(|e| format!("{}: {e}", dir.join("replay.json").display()))?;
    if replay.settings.capacity != agent.settings.buffer {
        return Err(format!(
            "{}: the checkpoint's buffer holds {}, the settings say {}",
            dir.display(),
            replay.settings.capacity,
            agent.settings.buffer
        ));
    }
    agent.replay = replay;
    Ok(state)
}

/// Run the trained network greedily, the HPA algorithm and a random policy on the held-out
/// seeds (the same episodes for each).
pub fn evaluate(spec: &DqnTrainSpec, net: &QNet, cancel: &CancellationToken) -> Result<Vec<PolicyEvaluation>, String> {
    let delta = env_spec(spec, ActionSpace::Delta)?;
    let (failed_rt_s, tmax_s) = (delta.cfg.reward.failed_rt_s, delta.cfg.reward.tmax_s);
    let mut out = Vec::new();
    let mut rng = Rng::stream(spec.seed, 0xE7A1);
    for policy in ["dqn", "hpa", "random"] {
        let actions = if policy == "hpa" { ActionSpace::Count } else { ActionSpace::Delta };
        let mut env = Env::new(env_spec(spec, actions)?)?;
        let mut eps = Vec::new();
        for &seed in &spec.eval_seeds {
            if cancel.is_cancelled() {
                return Err("interrupted during the evaluation".into());
            }
            let mut now = env.reset(seed)?;
            let mut tally = Tally::default();
            loop {
                let a = match policy {
                    "dqn" => crate::engine::learn::dqn::argmax(&net.q(&now.obs)?) as i64,
                    // The HPA algorithm's answer for this tick, applied as a replica count.
                    "hpa" => i64::from(now.observation.baseline.or(now.observation.current_replicas).unwrap_or(1)),
                    _ => rng.below(3) as i64,
                };
                let next = env.step(a)?;
                tally.add(&next, failed_rt_s, tmax_s);
                let end = next.terminated || next.truncated;
                now = next;
                if end {
                    break;
                }
            }
            eps.push(tally.figures(0, 0, seed, 0.0));
        }
        env.close();
        let n = eps.len().max(1) as f64;
        out.push(PolicyEvaluation {
            policy: policy.into(),
            episodes: eps.len(),
            reward: eps.iter().map(|e| e.reward).sum::<f64>() / n,
            mean_rt_s: eps.iter().map(|e| e.mean_rt_s).sum::<f64>() / n,
            over_tmax: eps.iter().map(|e| e.over_tmax).sum::<f64>() / n,
            mean_replicas: eps.iter().map(|e| e.mean_replicas).sum::<f64>() / n,
        });
    }
    Ok(out)
}

/// The evaluation as a table (seed 003's figures beside the HPA's).
pub fn eval_table(ev: &[PolicyEvaluation]) -> String {
    let mut s = format!(
        "| {:<7} | {:>8} | {:>14} | {:>12} | {:>15} | {:>13} |\n| ------- | -------: | -------------: | -----------: | --------------: | ------------: |\n",
        "policy", "episodes", "reward/episode", "mean RT (s)", "RT > Tmax (%)", "mean replicas"
    );
    for e in ev {
        s += &format!(
            "| {:<7} | {:>8} | {:>14.2} | {:>12.4} | {:>15.1} | {:>13.2} |\n",
            e.policy,
            e.episodes,
            e.reward,
            e.mean_rt_s,
            100.0 * e.over_tmax,
            e.mean_replicas
        );
    }
    s
}

fn write_eval(dir: &Path, ev: &[PolicyEvaluation]) -> Result<(), String> {
    let p = dir.join("eval.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    for e in ev {
        w.serialize(e).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", p.display()))
}

fn write_curve(dir: &Path, curve: &[EpisodeFigures]) -> Result<(), String> {
    let p = dir.join("curve.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    if curve.is_empty() {
        w.write_record(["episode", "steps", "seed", "reward", "mean_rt_s", "over_tmax", "mean_replicas", "epsilon"])
            .map_err(|e| e.to_string())?;
    }
    for e in curve {
        w.serialize(e).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", p.display()))
}

/// The learning curve: episode reward, intervals over Tmax and mean replicas per episode, each
/// with its moving average over ten episodes, as PNG and SVG.
pub fn plot_curve(dir: &Path, curve: &[EpisodeFigures]) -> Result<(), String> {
    crate::report::plot::register_font();
    let png = dir.join("curve.png");
    let svg = dir.join("curve.svg");
    draw_curve(BitMapBackend::new(&png, (1000, 900)).into_drawing_area(), curve)?;
    draw_curve(SVGBackend::new(&svg, (1000, 900)).into_drawing_area(), curve)
}

/// How a panel reads an episode.
type Figure = fn(&EpisodeFigures) -> f64;

fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    curve: &[EpisodeFigures],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| format!("curve: {x}");
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((3, 1));
    let series: [(&str, Figure); 3] = [
        ("episode reward", |f| f.reward),
        ("intervals with RT > Tmax (%)", |f| 100.0 * f.over_tmax),
        ("mean replicas", |f| f.mean_replicas),
    ];
    let x_max = curve.len().max(2) as f64;
    for (area, (title, value)) in panels.iter().zip(series) {
        let pts: Vec<(f64, f64)> = curve.iter().enumerate().map(|(i, f)| ((i + 1) as f64, value(f))).collect();
        let avg: Vec<(f64, f64)> = (0..pts.len())
            .map(|i| {
                let w = &pts[i.saturating_sub(9)..=i];
                (pts[i].0, w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64)
            })
            .collect();
        let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0).min(hi), lo.max(0.0) + 1.0) };
        let pad = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..x_max, (lo - pad)..(hi + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("episode")
            .x_label_formatter(&|v| crate::report::plot::tidy(*v))
            .y_label_formatter(&|v| crate::report::plot::tidy(*v))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        let light = RGBColor(150, 180, 210);
        chart.draw_series(LineSeries::new(pts, light.stroke_width(1))).map_err(e)?;
        chart.draw_series(LineSeries::new(avg, RGBColor(0, 114, 178).stroke_width(2))).map_err(e)?;
    }
    root.present().map_err(e)
}

/// Progress: a bar with the episode reward, ε and steps/s on a terminal; a plain line every
/// few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    show: bool,
    total: u64,
    started: Instant,
    first_step: u64,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, done: u64, show: bool) -> Self {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} steps · {per_sec} · ETA {eta} {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_position(done);
            b
        });
        let now = Instant::now();
        Self { bar, show, total, started: now, first_step: done, last_line: now }
    }

    fn step(&mut self, steps: u64, eps: f64, curve: &[EpisodeFigures]) {
        if let Some(b) = &self.bar {
            b.set_position(steps);
            if steps.is_multiple_of(50) {
                b.set_message(format!("ε {eps:.2} · reward (last 10 episodes) {:.1}", recent_reward(curve)));
            }
        } else if self.show && (self.last_line.elapsed().as_secs_f64() >= 2.0 || steps == self.total) {
            self.last_line = Instant::now();
            let el = self.started.elapsed().as_secs_f64();
            let rate = if el > 0.0 { (steps - self.first_step) as f64 / el } else { 0.0 };
            eprintln!(
                "train: {steps}/{} steps · {rate:.0} steps/s · episode {} · ε {eps:.2} · reward (last 10) {:.1}",
                self.total,
                curve.len(),
                recent_reward(curve)
            );
        }
    }

    fn episode(&self, f: Option<&EpisodeFigures>) {
        if let (Some(b), Some(f)) = (&self.bar, f)
            && f.episode.is_multiple_of(10)
        {
            b.println(format!(
                "episode {:>5} · reward {:>8.1} · RT {:.3} s · over Tmax {:>5.1} % · replicas {:.2} · ε {:.2}",
                f.episode,
                f.reward,
                f.mean_rt_s,
                100.0 * f.over_tmax,
                f.mean_replicas,
                f.epsilon
            ));
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
