//! Seed 003's LSTM request-rate predictor: two LSTM layers (hidden 64, dropout 0.1 between them
//! while training), a linear head that predicts the next value as `last + fc(h)` (residual),
//! sequences of 16, trained online on batches of 8 windows drawn from what it has seen (MSE,
//! Adam, gradients clipped to norm 1.0). Its prediction is blended as the seed's:
//! `last + 0.7·(model − last) + 0.3·trend` with `trend = (x[−1] − x[−4])/3`, the change limited
//! to ±1.5·|trend| and the result clipped to `[min, max]`. Values are divided by `scale` inside
//! the network. Weights start from the project's seeded generator (PyTorch's LSTM init,
//! U(±1/√hidden)), and dropout masks come from it too: the same seed gives the same predictions.

use std::collections::VecDeque;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::engine::rng::Rng;

fn ce(e: candle_core::Error) -> String {
    format!("tensor: {e}")
}

/// The predictor's settings (seed 003's).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmSettings {
    pub hidden: usize,
    pub layers: usize,
    pub seq_len: usize,
    pub dropout: f64,
    pub lr: f64,
    pub batch: usize,
    pub clip: f64,
    /// Values kept to draw training windows from.
    pub memory: usize,
}

impl Default for LstmSettings {
    fn default() -> Self {
        Self { hidden: 64, layers: 2, seq_len: 16, dropout: 0.1, lr: 1e-3, batch: 8, clip: 1.0, memory: 512 }
    }
}

struct Layer {
    w_ih: Var,
    w_hh: Var,
    b_ih: Var,
    b_hh: Var,
}

pub struct LstmPredictor {
    pub settings: LstmSettings,
    layers: Vec<Layer>,
    fc_w: Var,
    fc_b: Var,
    opt: AdamW,
    rng: Rng,
    /// Seen values divided by `scale`, oldest first.
    seen: VecDeque<f64>,
    scale: f64,
    min: f64,
    max: f64,
    /// Learning steps taken.
    pub trained: u64,
}

fn uniform_var(shape: (usize, usize), bound: f64, rng: &mut Rng) -> Result<Var, String> {
    let data: Vec<f32> = (0..shape.0 * shape.1).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).map_err(ce)?).map_err(ce)
}

impl LstmPredictor {
    /// Values are predicted within `[min, max]` and divided by `scale` (> 0) for the network.
    pub fn new(settings: LstmSettings, scale: f64, min: f64, max: f64, seed: u64) -> Result<Self, String> {
        if !(scale > 0.0 && scale.is_finite() && max >= min) {
            return Err(format!("lstm: needs scale > 0 and min <= max (scale {scale}, [{min}, {max}])"));
        }
        if settings.seq_len < 4 || settings.layers == 0 || settings.hidden == 0 || settings.batch == 0 {
            return Err("lstm: seq_len >= 4, layers, hidden and batch >= 1".into());
        }
        let mut rng = Rng::stream(seed, 0x157);
        let h = settings.hidden;
        let bound = 1.0 / (h as f64).sqrt();
        let mut layers = Vec::new();
        for i in 0..settings.layers {
            let input = if i == 0 { 1 } else { h };
            layers.push(Layer {
                w_ih: uniform_var((4 * h, input), bound, &mut rng)?,
                w_hh: uniform_var((4 * h, h), bound, &mut rng)?,
                b_ih: uniform_var((1, 4 * h), bound, &mut rng)?,
                b_hh: uniform_var((1, 4 * h), bound, &mut rng)?,
            });
        }
        let fc_w = uniform_var((1, h), bound, &mut rng)?;
        let fc_b = uniform_var((1, 1), bound, &mut rng)?;
        let mut vars = vec![fc_w.clone(), fc_b.clone()];
        for l in &layers {
            vars.extend([l.w_ih.clone(), l.w_hh.clone(), l.b_ih.clone(), l.b_hh.clone()]);
        }
        let opt = AdamW::new(vars, ParamsAdamW { lr: settings.lr, weight_decay: 0.0, ..ParamsAdamW::default() })
            .map_err(ce)?;
        Ok(Self { settings, layers, fc_w, fc_b, opt, rng, seen: VecDeque::new(), scale, min, max, trained: 0 })
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.fc_w.clone(), self.fc_b.clone()];
        for l in &self.layers {
            v.extend([l.w_ih.clone(), l.w_hh.clone(), l.b_ih.clone(), l.b_hh.clone()]);
        }
        v
    }

    /// The network's next value (scaled) for windows `x` of shape (batch, seq_len): the last
    /// value plus the head of the last hidden state. `train`: dropout between layers.
    fn forward(&mut self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (b, n) = x.dims2()?;
        let h = self.settings.hidden;
        let mut inputs: Vec<Tensor> = (0..n).map(|t| x.narrow(1, t, 1)).collect::<candle_core::Result<_>>()?;
        let last_layer = self.layers.len() - 1;
        for (li, l) in self.layers.iter().enumerate() {
            let mut hs = Tensor::zeros((b, h), DType::F32, &Device::Cpu)?;
            let mut cs = Tensor::zeros((b, h), DType::F32, &Device::Cpu)?;
            let mut outs = Vec::with_capacity(n);
            for input in &inputs {
                let gates = (input.matmul(&l.w_ih.as_tensor().t()?)?.broadcast_add(l.b_ih.as_tensor())?
                    + hs.matmul(&l.w_hh.as_tensor().t()?)?.broadcast_add(l.b_hh.as_tensor())?)?;
                let g = gates.chunk(4, 1)?;
                let (i, f) = (candle_nn::ops::sigmoid(&g[0])?, candle_nn::ops::sigmoid(&g[1])?);
                let (c_in, o) = (g[2].tanh()?, candle_nn::ops::sigmoid(&g[3])?);
                cs = ((f * &cs)? + (i * c_in)?)?;
                hs = (o * cs.tanh()?)?;
                outs.push(hs.clone());
            }
            if train && li < last_layer && self.settings.dropout > 0.0 {
                let p = self.settings.dropout;
                let keep = 1.0 / (1.0 - p);
                outs = outs
                    .into_iter()
                    .map(|o| {
                        let mask: Vec<f32> =
                            (0..b * h).map(|_| if self.rng.uniform() < p { 0.0 } else { keep as f32 }).collect();
                        o * Tensor::from_vec(mask, (b, h), &Device::Cpu)?
                    })
                    .collect::<candle_core::Result<_>>()?;
            }
            inputs = outs;
        }
        let h_last = inputs.last().cloned().unwrap_or(Tensor::zeros((b, h), DType::F32, &Device::Cpu)?);
        let delta = h_last.matmul(&self.fc_w.as_tensor().t()?)?.broadcast_add(self.fc_b.as_tensor())?;
        x.narrow(1, n - 1, 1)? + delta
    }

    /// One learning step on `batch` windows drawn from what was seen; `None` until there is one.
    fn learn(&mut self) -> Result<Option<f32>, String> {
        let n = self.settings.seq_len;
        if self.seen.len() < n + 1 {
            return Ok(None);
        }
        let starts = self.seen.len() - n;
        let b = self.settings.batch;
        let mut xs = Vec::with_capacity(b * n);
        let mut ys = Vec::with_capacity(b);
        for _ in 0..b {
            let s = self.rng.below(starts);
            xs.extend((s..s + n).map(|i| self.seen[i] as f32));
            ys.push(self.seen[s + n] as f32);
        }
        let x = Tensor::from_vec(xs, (b, n), &Device::Cpu).map_err(ce)?;
        let y = Tensor::from_vec(ys, (b, 1), &Device::Cpu).map_err(ce)?;
        let pred = self.forward(&x, true).map_err(ce)?;
        let loss = (pred - y).and_then(|d| d.sqr()).and_then(|d| d.mean_all()).map_err(ce)?;
        let mut grads = loss.backward().map_err(ce)?;
        // Clip the gradients to a global norm of `clip`.
        let vars = self.vars();
        let mut sq = 0.0f64;
        for v in &vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                sq += f64::from(g.sqr().and_then(|s| s.sum_all()).and_then(|s| s.to_scalar::<f32>()).map_err(ce)?);
            }
        }
        let norm = sq.sqrt();
        if norm > self.settings.clip {
            let k = self.settings.clip / norm;
            for v in &vars {
                if let Some(g) = grads.remove(v.as_tensor()) {
                    grads.insert(v.as_tensor(), (g * k).map_err(ce)?);
                }
            }
        }
        self.opt.step(&grads).map_err(ce)?;
        self.trained += 1;
        loss.to_scalar::<f32>().map(Some).map_err(ce)
    }

    /// Take the next observed value and learn on one batch.
    pub fn observe(&mut self, x: f64) -> Result<(), String> {
        if !x.is_finite() {
            return Err(format!("lstm: {x} is not a number"));
        }
        self.seen.push_back(x / self.scale);
        while self.seen.len() > self.settings.memory.max(self.settings.seq_len + 1) {
            self.seen.pop_front();
        }
        self.learn().map(|_| ())
    }

    /// The network's own next value (unblended), `None` before `seq_len` values.
    pub fn model_next(&mut self) -> Result<Option<f64>, String> {
        let n = self.settings.seq_len;
        if self.seen.len() < n {
            return Ok(None);
        }
        let xs: Vec<f32> = self.seen.iter().skip(self.seen.len() - n).map(|v| *v as f32).collect();
        let x = Tensor::from_vec(xs, (1, n), &Device::Cpu).map_err(ce)?;
        let y = self.forward(&x, false).and_then(|t| t.flatten_all()?.to_vec1::<f32>()).map_err(ce)?;
        Ok(y.first().map(|v| f64::from(*v) * self.scale))
    }

    /// The blended prediction of the next value (seed 003's), `None` before `seq_len` values.
    pub fn predict(&mut self) -> Result<Option<f64>, String> {
        let Some(model) = self.model_next()? else { return Ok(None) };
        let k = self.seen.len();
        let at = |back: usize| self.seen[k - back] * self.scale;
        Ok(Some(blend(at(1), at(4), model, self.min, self.max)))
    }
}

/// Seed 003's blend of the model's next value with the trend over the last three steps.
pub fn blend(last: f64, three_back: f64, model: f64, min: f64, max: f64) -> f64 {
    let trend = (last - three_back) / 3.0;
    let pred = last + 0.7 * (model - last) + 0.3 * trend;
    let limit = 1.5 * trend.abs();
    pred.clamp(last - limit, last + limit).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blend_by_hand() {
        // trend (100 − 94)/3 = 2; 100 + 0.7·(110 − 100) + 0.3·2 = 107.6, limited to 100 + 3.
        assert!((blend(100.0, 94.0, 110.0, 3.0, 260.0) - 103.0).abs() < 1e-12);
        // Inside the limit: 100 + 0.7·(101 − 100) + 0.3·2 = 101.3.
        assert!((blend(100.0, 94.0, 101.0, 3.0, 260.0) - 101.3).abs() < 1e-12);
        // No trend: no change; and the range clips.
        assert_eq!(blend(50.0, 50.0, 90.0, 3.0, 260.0), 50.0);
        assert_eq!(blend(259.0, 240.0, 400.0, 3.0, 260.0), 260.0);
    }

    #[test]
    fn shapes_determinism_and_learning() {
        let s = LstmSettings { hidden: 8, memory: 64, ..LstmSettings::default() };
        let mut a = LstmPredictor::new(s.clone(), 10.0, 0.0, 20.0, 1).expect("a");
        let mut b = LstmPredictor::new(s.clone(), 10.0, 0.0, 20.0, 1).expect("b");
        assert_eq!(a.predict().expect("predict"), None, "needs a full sequence");
        // A sawtooth ramp; a learning step on every value once a window and its next exist.
        for t in 0..60 {
            let x = 5.0 + 0.1 * f64::from(t % 40);
            a.observe(x).expect("observe");
            b.observe(x).expect("observe");
        }
        assert!(a.trained > 0);
        let (pa, pb) = (a.model_next().expect("next"), b.model_next().expect("next"));
        assert_eq!(pa, pb, "the same seed, the same network");
        assert!(pa.is_some_and(f64::is_finite));
        let p = a.predict().expect("predict").expect("a value");
        assert!((0.0..=20.0).contains(&p));
        assert!(LstmPredictor::new(s, 0.0, 0.0, 1.0, 1).is_err());
        assert!(a.observe(f64::NAN).is_err());
    }
}
