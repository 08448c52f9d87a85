//! Seed 003's agent: a Double DQN over an MLP (state → 128 → 64 → 3, ReLU, Xavier-uniform
//! weights, zero biases) with prioritized replay ([`super::replay`]), Adam, a soft-updated
//! target network and a linear ε schedule. Tensors are candle's, on the CPU.
//!
//! - Target: `y = r + γ (1 − done) Q_target(s', argmax_a Q_online(s', a))` (Double DQN: the
//!   online network picks, the target network evaluates).
//! - Loss: the importance-weighted mean of `(y − Q_online(s, a))²`; the new priorities are `|y − Q|`.
//! - After every learning step: `θ_target ← τ θ_online + (1 − τ) θ_target`.
//! - ε falls linearly from `eps_start` to `eps_end` over `eps_fraction` of the training steps.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use serde::{Deserialize, Serialize};

use super::replay::{PrioritizedReplay, ReplaySettings, Transition};
use crate::engine::rng::Rng;

fn ce(e: candle_core::Error) -> String {
    format!("tensor: {e}")
}

/// Make candle compute each matmul on one thread, unless the user chose (`RAYON_NUM_THREADS`,
/// `CANDLE_NUM_THREADS`). candle reads `RAYON_NUM_THREADS` at every matmul and splits it over
/// that many threads; for networks this small that costs far more than it saves (a learning
/// step 3× slower on 2 cores, `cargo bench --bench dqn`).
///
/// # Safety
/// It sets an environment variable: call it before any other thread exists (first thing in
/// `main`).
pub unsafe fn prefer_serial_tensors() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees no other thread runs (or reads the environment) yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// The agent's settings (`[recommenders.dqn]`; seed 003's values by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DqnSettings {
    /// The trained model the `dqn` recommender uses (a directory from `scaletui train dqn`, or
    /// its `model.json`); empty: the recommender is off. Training ignores it.
    pub model: String,
    pub hidden: Vec<usize>,
    pub gamma: f64,
    pub lr: f64,
    pub batch: usize,
    pub buffer: usize,
    pub tau: f64,
    pub eps_start: f64,
    pub eps_end: f64,
    pub eps_fraction: f64,
    pub alpha: f64,
    pub beta: f64,
    pub beta_increment: f64,
    pub priority_eps: f64,
}

impl Default for DqnSettings {
    fn default() -> Self {
        Self {
            model: String::new(),
            hidden: vec![128, 64],
            gamma: 0.99,
            lr: 1e-3,
            batch: 64,
            buffer: 10_000,
            tau: 1e-3,
            eps_start: 1.0,
            eps_end: 0.05,
            eps_fraction: 0.9,
            alpha: 0.6,
            beta: 0.4,
            beta_increment: 0.001,
            priority_eps: 1e-6,
        }
    }
}

impl DqnSettings {
    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        if self.hidden.is_empty() || self.hidden.iter().any(|h| *h == 0 || *h > 4096) {
            return Err("hidden: one or more layer sizes, 1..=4096".into());
        }
        if !unit(self.gamma) || !unit(self.tau) || !(self.tau > 0.0) {
            return Err("gamma must be in [0, 1] and tau in (0, 1]".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err("lr must be positive".into());
        }
        if self.batch == 0 || self.buffer < self.batch {
            return Err("batch must be >= 1 and buffer >= batch".into());
        }
        if !unit(self.eps_start) || !unit(self.eps_end) || !unit(self.eps_fraction) {
            return Err("eps_start, eps_end and eps_fraction must be in [0, 1]".into());
        }
        if !unit(self.alpha) || !unit(self.beta) || !(self.beta_increment >= 0.0) || !(self.priority_eps > 0.0) {
            return Err("alpha and beta must be in [0, 1], beta_increment >= 0, priority_eps > 0".into());
        }
        Ok(())
    }

    pub fn replay(&self) -> ReplaySettings {
        ReplaySettings {
            capacity: self.buffer,
            alpha: self.alpha,
            beta: self.beta,
            beta_increment: self.beta_increment,
            eps: self.priority_eps,
        }
    }

    /// ε at `step` of `total` training steps.
    pub fn epsilon(&self, step: u64, total: u64) -> f64 {
        let span = (self.eps_fraction * total as f64).max(1.0);
        let frac = (step as f64 / span).min(1.0);
        self.eps_start + (self.eps_end - self.eps_start) * frac
    }
}

/// An MLP: `dims[0]` inputs, ReLU between layers, `dims.last()` outputs.
pub struct QNet {
    pub dims: Vec<usize>,
    vars: VarMap,
    layers: Vec<(Var, Var)>,
}

impl QNet {
    /// Xavier-uniform weights from `rng`, zero biases.
    pub fn new(dims: &[usize], rng: &mut Rng) -> Result<Self, String> {
        let vars = VarMap::new();
        let mut layers = Vec::new();
        for (i, w) in dims.windows(2).enumerate() {
            let (fan_in, fan_out) = (w[0], w[1]);
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            let data: Vec<f32> = (0..fan_in * fan_out).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
            let weight =
                Var::from_tensor(&Tensor::from_vec(data, (fan_out, fan_in), &Device::Cpu).map_err(ce)?).map_err(ce)?;
            let bias = Var::zeros(fan_out, DType::F32, &Device::Cpu).map_err(ce)?;
            if let Ok(mut d) = vars.data().lock() {
                d.insert(format!("l{i}.weight"), weight.clone());
                d.insert(format!("l{i}.bias"), bias.clone());
            }
            layers.push((weight, bias));
        }
        Ok(Self { dims: dims.to_vec(), vars, layers })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    /// The Q-values of one state.
    pub fn q(&self, state: &[f32]) -> Result<Vec<f32>, String> {
        if state.len() != self.dims[0] {
            return Err(format!("the model takes {} features, not {}", self.dims[0], state.len()));
        }
        // One state through the layers in plain loops (a 1 × n matmul is all overhead in a
        // tensor library); the same arithmetic as `forward`.
        let mut h: Vec<f32> = state.to_vec();
        let last = self.layers.len().saturating_sub(1);
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let w = w.as_tensor().to_vec2::<f32>().map_err(ce)?;
            let b = b.as_tensor().to_vec1::<f32>().map_err(ce)?;
            h = w
                .iter()
                .zip(&b)
                .map(|(row, bias)| {
                    let v = row.iter().zip(&h).map(|(a, x)| a * x).sum::<f32>() + bias;
                    if i < last { v.max(0.0) } else { v }
                })
                .collect();
        }
        Ok(h)
    }

    /// Copy another network's weights (same shape).
    pub fn copy_from(&self, other: &QNet) -> Result<(), String> {
        for ((tw, tb), (ow, ob)) in self.layers.iter().zip(&other.layers) {
            tw.set(ow.as_tensor()).map_err(ce)?;
            tb.set(ob.as_tensor()).map_err(ce)?;
        }
        Ok(())
    }

    /// `θ ← τ θ_other + (1 − τ) θ`.
    pub fn soft_update(&self, other: &QNet, tau: f64) -> Result<(), String> {
        for (t, o) in self.vars().iter().zip(other.vars()) {
            let next = ((t.as_tensor() * (1.0 - tau)).map_err(ce)? + (o.as_tensor() * tau).map_err(ce)?).map_err(ce)?;
            t.set(&next).map_err(ce)?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        self.vars.save(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Load weights saved by [`QNet::save`] into this network (its shape must match).
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        self.vars.load(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// All weights, flattened (for comparisons).
    pub fn flat(&self) -> Vec<f32> {
        self.vars()
            .iter()
            .flat_map(|v| v.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default())
            .collect()
    }
}

/// What one learning step did.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnStep {
    pub loss: f32,
    pub td: Vec<f32>,
}

/// The agent: online and target networks, the optimizer and the replay buffer.
pub struct Dqn {
    pub settings: DqnSettings,
    pub online: QNet,
    pub target: QNet,
    opt: AdamW,
    pub replay: PrioritizedReplay,
}

impl Dqn {
    pub fn new(features: usize, actions: usize, settings: DqnSettings, seed: u64) -> Result<Self, String> {
        settings.validate()?;
        let mut dims = vec![features];
        dims.extend(&settings.hidden);
        dims.push(actions);
        let mut rng = Rng::stream(seed, 0xD0_u64);
        let online = QNet::new(&dims, &mut rng)?;
        let target = QNet::new(&dims, &mut rng)?;
        target.copy_from(&online)?;
        let params = ParamsAdamW { lr: settings.lr, weight_decay: 0.0, ..ParamsAdamW::default() };
        let opt = AdamW::new(online.vars(), params).map_err(ce)?;
        let replay = PrioritizedReplay::new(settings.replay());
        Ok(Self { settings, online, target, opt, replay })
    }

    /// ε-greedy: a random action with probability `epsilon`, else the best (lowest index wins a tie).
    pub fn act(&self, state: &[f32], epsilon: f64, rng: &mut Rng) -> Result<usize, String> {
        let n = *self.online.dims.last().unwrap_or(&1);
        if rng.uniform() < epsilon {
            return Ok(rng.below(n));
        }
        Ok(argmax(&self.online.q(state)?))
    }

    /// The Double DQN targets of transitions (no gradient).
    pub fn targets(&self, batch: &[&Transition]) -> Result<Vec<f32>, String> {
        let s2 = stack(batch.iter().map(|t| t.next.as_slice()), self.online.dims[0])?;
        let best = self.online.forward(&s2).and_then(|q| q.argmax_keepdim(1)).map_err(ce)?;
        let q2 =
            self.target.forward(&s2).and_then(|q| q.gather(&best, 1)?.flatten_all()?.to_vec1::<f32>()).map_err(ce)?;
        Ok(batch
            .iter()
            .zip(q2)
            .map(|(t, q)| t.reward + if t.done { 0.0 } else { self.settings.gamma as f32 * q })
            .collect())
    }

    /// One learning step on a drawn batch (`weights`: importance-sampling weights).
    pub fn learn_on(&mut self, batch: &[&Transition], weights: &[f32]) -> Result<LearnStep, String> {
        let b = batch.len();
        let y = self.targets(batch)?;
        let s = stack(batch.iter().map(|t| t.state.as_slice()), self.online.dims[0])?;
        let a: Vec<u32> = batch.iter().map(|t| t.action).collect();
        let a = Tensor::from_vec(a, (b, 1), &Device::Cpu).map_err(ce)?;
        let q = self.online.forward(&s).and_then(|q| q.gather(&a, 1)?.flatten_all()).map_err(ce)?;
        let y = Tensor::from_vec(y, b, &Device::Cpu).map_err(ce)?;
        let w = Tensor::from_slice(weights, b, &Device::Cpu).map_err(ce)?;
        let td = (&y - &q).map_err(ce)?;
        let loss = (td.sqr().and_then(|d| d * &w)).and_then(|l| l.mean_all()).map_err(ce)?;
        self.opt.backward_step(&loss).map_err(ce)?;
        self.target.soft_update(&self.online, self.settings.tau)?;
        let td = td.to_vec1::<f32>().map_err(ce)?;
        Ok(LearnStep { loss: loss.to_scalar::<f32>().map_err(ce)?, td })
    }

    /// Draw a batch from the buffer, learn on it and update its priorities (`None` until the
    /// buffer holds a batch).
    pub fn learn(&mut self, rng: &mut Rng) -> Result<Option<f32>, String> {
        if self.replay.len() < self.settings.batch {
            return Ok(None);
        }
        let drawn = self.replay.sample(self.settings.batch, rng);
        let items: Vec<Transition> = drawn.indices.iter().map(|&i| self.replay.get(i).clone()).collect();
        let refs: Vec<&Transition> = items.iter().collect();
        let step = self.learn_on(&refs, &drawn.weights)?;
        self.replay.update(&drawn.indices, &step.td);
        Ok(Some(step.loss))
    }
}

fn stack<'a>(rows: impl Iterator<Item = &'a [f32]>, dim: usize) -> Result<Tensor, String> {
    let mut flat = Vec::new();
    let mut n = 0;
    for r in rows {
        if r.len() != dim {
            return Err(format!("a state of {} features for a model of {dim}", r.len()));
        }
        flat.extend_from_slice(r);
        n += 1;
    }
    Tensor::from_vec(flat, (n, dim), &Device::Cpu).map_err(ce)
}

/// The index of the largest value (the first of equals; NaN never wins).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Dqn {
        let s = DqnSettings { hidden: vec![5], batch: 2, buffer: 8, ..DqnSettings::default() };
        Dqn::new(2, 3, s, 1).expect("agent")
    }

    #[test]
    fn the_double_dqn_target_by_hand() {
        let d = agent();
        let t1 = Transition { state: vec![0.1, 0.2], action: 1, reward: 0.5, next: vec![0.3, -0.4], done: false };
        let t2 = Transition { state: vec![0.0, 0.0], action: 2, reward: -1.0, next: vec![1.0, 1.0], done: true };
        let y = d.targets(&[&t1, &t2]).expect("targets");
        // The online network picks the action, the target network values it.
        let pick = argmax(&d.online.q(&t1.next).expect("q"));
        let value = d.target.q(&t1.next).expect("q")[pick];
        assert!((y[0] - (0.5 + 0.99 * value)).abs() < 1e-6);
        assert_eq!(y[1], -1.0, "a terminal transition does not bootstrap");
        // With the target network changed, the pick stays the online network's.
        d.target.soft_update(&QNet::new(&[2, 5, 3], &mut Rng::new(99)).expect("net"), 1.0).expect("update");
        let y2 = d.targets(&[&t1]).expect("targets");
        let value2 = d.target.q(&t1.next).expect("q")[pick];
        assert!((y2[0] - (0.5 + 0.99 * value2)).abs() < 1e-6);
    }

    #[test]
    fn soft_update_mixes_by_tau() {
        let mut rng = Rng::new(3);
        let a = QNet::new(&[2, 3, 1], &mut rng).expect("a");
        let b = QNet::new(&[2, 3, 1], &mut rng).expect("b");
        let (wa, wb) = (a.flat(), b.flat());
        a.soft_update(&b, 0.25).expect("update");
        for ((x, y), z) in wa.iter().zip(&wb).zip(a.flat()) {
            assert!((z - (0.75 * x + 0.25 * y)).abs() < 1e-6);
        }
    }

    #[test]
    fn a_learning_step_lowers_the_weighted_error() {
        let mut d = agent();
        d.opt.set_learning_rate(1e-2);
        let t = Transition { state: vec![0.5, -0.5], action: 0, reward: 1.0, next: vec![0.0, 0.0], done: true };
        let before = (d.online.q(&t.state).expect("q")[0] - 1.0).abs();
        for _ in 0..300 {
            d.learn_on(&[&t, &t], &[1.0, 1.0]).expect("learn");
        }
        let after = (d.online.q(&t.state).expect("q")[0] - 1.0).abs();
        assert!(after < before / 10.0, "{before} → {after}");
        // A zero weight learns nothing (a fresh optimizer: Adam's momentum would move it).
        let mut d = agent();
        let w0 = d.online.flat();
        let u = Transition { action: 1, reward: 5.0, ..t.clone() };
        d.learn_on(&[&u], &[0.0]).expect("learn");
        let w1 = d.online.flat();
        let moved = w0.iter().zip(&w1).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(moved < 1e-6, "{moved}");
    }

    #[test]
    fn epsilon_falls_linearly_then_stays() {
        let s = DqnSettings::default();
        assert_eq!(s.epsilon(0, 1000), 1.0);
        assert!((s.epsilon(450, 1000) - 0.525).abs() < 1e-9);
        assert!((s.epsilon(900, 1000) - 0.05).abs() < 1e-9);
        assert!((s.epsilon(1000, 1000) - 0.05).abs() < 1e-9);
    }

    #[test]
    fn save_and_load_give_identical_outputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("m.safetensors");
        let a = QNet::new(&[4, 8, 3], &mut Rng::new(5)).expect("a");
        a.save(&p).expect("save");
        let mut b = QNet::new(&[4, 8, 3], &mut Rng::new(6)).expect("b");
        let x = [0.1, 0.9, 0.3, -0.2];
        assert_ne!(a.q(&x).expect("q"), b.q(&x).expect("q"));
        b.load(&p).expect("load");
        assert_eq!(a.q(&x).expect("q"), b.q(&x).expect("q"));
        let mut c = QNet::new(&[5, 8, 3], &mut Rng::new(6)).expect("c");
        assert!(c.load(&p).is_err(), "another shape is an error");
    }
}
