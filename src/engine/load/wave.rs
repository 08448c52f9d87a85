//! Seed 003's arrival-rate generator (the workload its DQN trains on), as a rate trace: per
//! interval of `step_s` seconds a rate in requests per minute,
//!
//! ```text
//! every cycle of cycle_s seconds draw  amplitude_mod ~ U(1, 1.5), phase_shift ~ U(−0.3, 0.3)
//!                                      and 2 secondary waves: amp = (0.05 + U·0.25)·60,
//!                                      freq = 0.1 + U·0.2, phase = U·2π
//! position = (t mod cycle_s) / cycle_s
//! rate     = base + sin(2π·position + phase_shift)·amplitude·amplitude_mod
//!                 + Σ amp·sin(freq·2π·position + phase)
//! rw       = clip(rw + N(0, 0.5), −0.2, 0.2)·60         (as the seed has it: ±12 req/min)
//! out      = clip(smoothing·prev + (1 − smoothing)·(rate + rw), min, max)
//! ```
//!
//! with seed 003's values by default (base 80, amplitude 163, min 3, max 260 req/min, cycle
//! 1200 s, smoothing 0.95, 15 s intervals). The first interval's `prev` is `base`. The random
//! walk's ×60 inside the recurrence is the seed's (it saturates at ±12 req/min); scaletui keeps it
//! so the workload is the one the seed's agent saw. Draws come from the project's seeded
//! generator: the same seed gives the same trace on every machine.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::Schedule;
use crate::engine::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaveParams {
    pub base_rpm: f64,
    pub amplitude_rpm: f64,
    pub min_rpm: f64,
    pub max_rpm: f64,
    pub cycle_s: f64,
    pub smoothing: f64,
    pub step_s: f64,
    pub duration_s: f64,
}

impl Default for WaveParams {
    fn default() -> Self {
        Self {
            base_rpm: 80.0,
            amplitude_rpm: 163.0,
            min_rpm: 3.0,
            max_rpm: 260.0,
            cycle_s: 1200.0,
            smoothing: 0.95,
            step_s: 15.0,
            duration_s: 2500.0,
        }
    }
}

impl WaveParams {
    pub fn validate(&self) -> Result<(), String> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if !(self.base_rpm.is_finite() && self.amplitude_rpm.is_finite() && self.amplitude_rpm >= 0.0) {
            return Err("wave: base_rpm and amplitude_rpm must be numbers (amplitude >= 0)".into());
        }
        if !(self.min_rpm >= 0.0 && self.max_rpm >= self.min_rpm && self.max_rpm.is_finite()) {
            return Err("wave: needs 0 <= min_rpm <= max_rpm".into());
        }
        if !pos(self.cycle_s) || !pos(self.step_s) || !pos(self.duration_s) {
            return Err("wave: cycle_s, step_s and duration_s must be positive".into());
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err("wave: smoothing must be in [0, 1)".into());
        }
        Ok(())
    }

    /// The rates, requests per minute, one per interval.
    pub fn rates_rpm(&self, seed: u64) -> Vec<f64> {
        let mut rng = Rng::stream(seed, 0x3A7E);
        let n = (self.duration_s / self.step_s).ceil() as usize;
        let mut out = Vec::with_capacity(n);
        let (mut amp_mod, mut shift, mut waves) = (1.0, 0.0, [(0.0, 0.0, 0.0); 2]);
        let mut cycle = u64::MAX;
        let mut rw = 0.0;
        let mut prev = self.base_rpm;
        for k in 0..n {
            let t = k as f64 * self.step_s;
            let c = (t / self.cycle_s).floor() as u64;
            if c != cycle {
                cycle = c;
                amp_mod = 1.0 + 0.5 * rng.uniform();
                shift = -0.3 + 0.6 * rng.uniform();
                for w in &mut waves {
                    let amp = (0.05 + rng.uniform() * 0.25) * 60.0;
                    let freq = 0.1 + rng.uniform() * 0.2;
                    let phase = rng.uniform() * 2.0 * PI;
                    *w = (amp, freq, phase);
                }
            }
            let position = (t % self.cycle_s) / self.cycle_s;
            let mut rate = self.base_rpm + (2.0 * PI * position + shift).sin() * self.amplitude_rpm * amp_mod;
            for (amp, freq, phase) in waves {
                rate += amp * (freq * 2.0 * PI * position + phase).sin();
            }
            rw = (rw + 0.5 * rng.normal()).clamp(-0.2, 0.2) * 60.0;
            let v = (self.smoothing * prev + (1.0 - self.smoothing) * (rate + rw)).clamp(self.min_rpm, self.max_rpm);
            out.push(v);
            prev = v;
        }
        out
    }

    /// The same rates as steps, the last one cut at `duration_s` (the load generator's form: a
    /// run ends inside an interval).
    pub fn steps(&self, seed: u64) -> Schedule {
        let mut left = self.duration_s;
        let levels = self
            .rates_rpm(seed)
            .iter()
            .map(|r| {
                let d = self.step_s.min(left);
                left -= d;
                super::Level { rps: r / 60.0, duration_s: d }
            })
            .collect();
        Schedule::Step { levels }
    }

    /// The trace (requests per second per interval) for `seed`.
    pub fn schedule(&self, seed: u64) -> Schedule {
        Schedule::Trace { values: self.rates_rpm(seed).iter().map(|r| r / 60.0).collect(), step_s: self.step_s }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_computed_sequence() {
        let p = WaveParams { duration_s: 45.0, ..WaveParams::default() };
        // The same draws, in the same order, by hand.
        let mut rng = Rng::stream(5, 0x3A7E);
        let amp_mod = 1.0 + 0.5 * rng.uniform();
        let shift = -0.3 + 0.6 * rng.uniform();
        let mut waves = Vec::new();
        for _ in 0..2 {
            let a = (0.05 + rng.uniform() * 0.25) * 60.0;
            let f = 0.1 + rng.uniform() * 0.2;
            let ph = rng.uniform() * 2.0 * PI;
            waves.push((a, f, ph));
        }
        let mut prev = 80.0;
        let mut rw: f64 = 0.0;
        let mut want = Vec::new();
        for k in 0..3 {
            let pos = (k as f64 * 15.0) / 1200.0;
            let mut r = 80.0 + (2.0 * PI * pos + shift).sin() * 163.0 * amp_mod;
            for (a, f, ph) in &waves {
                r += a * (f * 2.0 * PI * pos + ph).sin();
            }
            rw = (rw + 0.5 * rng.normal()).clamp(-0.2, 0.2) * 60.0;
            prev = (0.95 * prev + 0.05 * (r + rw)).clamp(3.0, 260.0);
            want.push(prev);
        }
        assert_eq!(p.rates_rpm(5), want);
        // Seeded: the same seed, the same trace; another seed, another.
        assert_eq!(p.rates_rpm(5), p.rates_rpm(5));
        assert_ne!(p.rates_rpm(5), p.rates_rpm(6));
    }

    #[test]
    fn a_long_trace_stays_in_its_range_and_cycles() {
        let p = WaveParams { duration_s: 24_000.0, ..WaveParams::default() };
        let r = p.rates_rpm(100);
        assert_eq!(r.len(), 1600);
        assert!(r.iter().all(|v| (3.0..=260.0).contains(v)));
        // It swings over most of its range.
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        assert!(hi > 200.0 && lo < 40.0, "{lo}..{hi}");
        assert!(p.validate().is_ok());
        // As steps: the same rates, cut at the duration.
        let short = WaveParams { duration_s: 40.0, ..p.clone() };
        match short.steps(100) {
            Schedule::Step { levels } => {
                assert_eq!(levels.iter().map(|l| l.duration_s).collect::<Vec<_>>(), vec![15.0, 15.0, 10.0]);
                assert_eq!(levels[0].rps, r[0] / 60.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(WaveParams { smoothing: 1.0, ..p.clone() }.validate().is_err());
        assert!(WaveParams { min_rpm: 300.0, ..p }.validate().is_err());
    }
}
