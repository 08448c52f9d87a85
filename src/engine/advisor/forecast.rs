//! `forecast`: predictive scaling in the manner of the predictive HPA. Every tick the HPA's
//! proposal (`hpa_sim_raw_desired`, before stabilization) — or the request rate, with
//! `signal = "load"` — joins a history; linear regression (least squares over the last
//! `history_size` observations, evaluated `look_ahead_s` ahead and rounded up) and additive
//! Holt-Winters (level, trend and season smoothed by alpha, beta, gamma; season length in ticks;
//! needs two full seasons) forecast it. The HPA's proposal is always a candidate; `combine`
//! picks one value (max by default, so a sudden spike still gets the reactive answer), a
//! scale-down stabilization window keeps the largest recent value, and the result is clamped
//! to min/max. Until a model has enough history it says so (`warming_up`), and the HPA's value
//! alone counts.

use std::collections::VecDeque;

use async_trait::async_trait;

use super::{RecOutput, RecommendInput, Recommender};
pub use crate::config::ForecastConfig;
use crate::engine::learn::lstm::{LstmPredictor, LstmSettings};

/// Least squares of `values` over `times`, evaluated at `at`; `None` with fewer than two
/// distinct times.
pub fn linear_forecast(points: &[(f64, f64)], at: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some(my + slope * (at - mt))
}

/// Additive Holt-Winters over `x` (one value per tick) with season `m`, forecasting `h >= 1`
/// ticks past the last value. Initialization from the first two seasons: the trend is the
/// difference of their means per tick, the season the first season's deviations from that
/// line, the level the line one tick before the first value (exact for a line plus a season).
/// `None` with fewer than two seasons.
pub fn holt_winters_forecast(x: &[f64], m: usize, alpha: f64, beta: f64, gamma: f64, h: usize) -> Option<f64> {
    if m < 2 || x.len() < 2 * m || h == 0 {
        return None;
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let first = mean(&x[..m]);
    let mut trend = (mean(&x[m..2 * m]) - first) / m as f64;
    let centre = (m as f64 - 1.0) / 2.0;
    let mut season: Vec<f64> =
        x[..m].iter().enumerate().map(|(i, v)| v - (first + (i as f64 - centre) * trend)).collect();
    let mut level = first - (centre + 1.0) * trend;
    for (t, &v) in x.iter().enumerate() {
        let s = season[t % m];
        let new_level = alpha * (v - s) + (1.0 - alpha) * (level + trend);
        trend = beta * (new_level - level) + (1.0 - beta) * trend;
        season[t % m] = gamma * (v - new_level) + (1.0 - gamma) * s;
        level = new_level;
    }
    let n = x.len();
    Some(level + h as f64 * trend + season[(n - 1 + h) % m])
}

/// One value from the candidates (the HPA's value first), as the predictive HPA's
/// `decisionType`: mean and median round down.
pub fn combine(how: &str, values: &[i32]) -> Option<i32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(match how {
        "min" => v[0],
        "mean" => (v.iter().map(|x| i64::from(*x)).sum::<i64>() / n as i64) as i32,
        "median" => {
            if n % 2 == 1 {
                v[n / 2]
            } else {
                ((i64::from(v[n / 2 - 1]) + i64::from(v[n / 2])) / 2) as i32
            }
        }
        _ => v[n - 1],
    })
}

fn ceil_replicas(x: f64) -> Option<i32> {
    x.is_finite().then(|| x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32)
}

pub struct ForecastRecommender {
    cfg: ForecastConfig,
    /// (elapsed seconds, observed signal).
    history: VecDeque<(f64, f64)>,
    /// (elapsed seconds, combined value) within the stabilization window.
    recent: VecDeque<(f64, i32)>,
    /// Seed 003's LSTM predictor (`models` has `lstm`), made at the first tick; or why not.
    lstm: Option<Result<LstmPredictor, String>>,
}

impl ForecastRecommender {
    pub fn new(cfg: ForecastConfig) -> Self {
        Self { cfg, history: VecDeque::new(), recent: VecDeque::new(), lstm: None }
    }

    /// Feed the LSTM this tick's value and ask for the next one (seed 003's blend).
    fn lstm_step(&mut self, observed: f64, input: &RecommendInput<'_>) -> Result<Option<f64>, String> {
        let replicas = self.cfg.signal != "load";
        let cfg_scale = self.cfg.lstm_scale;
        let p = self.lstm.get_or_insert_with(|| {
            let (scale, lo, hi) = if replicas {
                let max = f64::from(input.max_replicas.max(1));
                (if cfg_scale > 0.0 { cfg_scale } else { max }, f64::from(input.min_replicas), max)
            } else {
                (if cfg_scale > 0.0 { cfg_scale } else { (2.0 * observed).max(1.0) }, 0.0, f64::INFINITY)
            };
            LstmPredictor::new(LstmSettings::default(), scale, lo, hi, 0x15_7E)
        });
        match p {
            Ok(p) => {
                p.observe(observed)?;
                p.predict()
            }
            Err(e) => Err(e.clone()),
        }
    }

    fn keep(&self) -> usize {
        self.cfg.history_size.max(self.cfg.season_length * self.cfg.stored_seasons)
    }

    fn uses(&self, model: &str) -> bool {
        self.cfg.models.iter().any(|m| m == model)
    }
}

#[async_trait]
impl Recommender for ForecastRecommender {
    fn name(&self) -> &str {
        "forecast"
    }

    fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = vec!["baseline".into(), "linear".into(), "holt_winters".into()];
        if self.uses("lstm") {
            c.push("lstm".into());
        }
        c.push("observations".into());
        c
    }

    async fn recommend(&mut self, input: &RecommendInput<'_>) -> RecOutput {
        let blanks = if self.uses("lstm") { 4 } else { 3 };
        let empty = |status: &str, n: usize| RecOutput {
            replicas: None,
            status: status.into(),
            values: std::iter::repeat_n(String::new(), blanks).chain([n.to_string()]).collect(),
            ..RecOutput::default()
        };
        let Some(baseline) = input.hpa_sim.raw_desired.or(input.hpa_sim.desired) else {
            return empty("no HPA proposal this tick", self.history.len());
        };
        let now = input.elapsed_s;
        let rps = input.sample.traffic.map(|t| t.rps);
        let observed = match (self.cfg.signal.as_str(), rps) {
            ("load", Some(r)) => r,
            ("load", None) => return empty("no request rate this tick", self.history.len()),
            _ => f64::from(baseline),
        };
        self.history.push_back((now, observed));
        while self.history.len() > self.keep() {
            self.history.pop_front();
        }
        let lstm_raw = self.uses("lstm").then(|| self.lstm_step(observed, input));
        // Ticks ahead for Holt-Winters: the look-ahead over the last interval.
        let step = match (self.history.len(), self.history.iter().rev().nth(1)) {
            (n, Some(prev)) if n >= 2 => (now - prev.0).max(1e-9),
            _ => input.elapsed_s.max(1.0),
        };
        let h = ((self.cfg.look_ahead_s / step).ceil() as usize).max(1);
        // Turn a forecast of the signal into replicas.
        let to_replicas = |pred: f64| -> Option<i32> {
            match (self.cfg.signal.as_str(), rps) {
                ("load", Some(r)) if r > 0.0 => ceil_replicas(f64::from(baseline) * pred.max(0.0) / r),
                ("load", _) => Some(baseline),
                _ => ceil_replicas(pred),
            }
        };
        let mut warming = Vec::new();
        let linear = if self.uses("linear") {
            let pts: Vec<(f64, f64)> = self.history.iter().rev().take(self.cfg.history_size).rev().copied().collect();
            let p = linear_forecast(&pts, now + self.cfg.look_ahead_s).and_then(to_replicas);
            if p.is_none() {
                warming.push(format!("linear {}/2", pts.len().min(2)));
            }
            p
        } else {
            None
        };
        let hw = if self.uses("holt_winters") {
            let xs: Vec<f64> = self.history.iter().map(|p| p.1).collect();
            let m = self.cfg.season_length;
            let p =
                holt_winters_forecast(&xs, m, self.cfg.alpha, self.cfg.beta, self.cfg.gamma, h).and_then(to_replicas);
            if p.is_none() {
                warming.push(format!("holt_winters {}/{}", xs.len().min(2 * m), 2 * m));
            }
            p
        } else {
            None
        };
        let lstm = if let Some(raw) = lstm_raw {
            match raw {
                Ok(Some(p)) => to_replicas(p),
                Ok(None) => {
                    warming.push(format!("lstm {}/{}", self.history.len().min(16), 16));
                    None
                }
                Err(e) => {
                    warming.push(format!("lstm failed: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut candidates = vec![baseline];
        candidates.extend(linear);
        candidates.extend(hw);
        candidates.extend(lstm);
        let combined = combine(&self.cfg.combine, &candidates).unwrap_or(baseline);
        self.recent.push_back((now, combined));
        while self.recent.front().is_some_and(|(t, _)| *t < now - self.cfg.stabilization_window_s - 1e-9) {
            self.recent.pop_front();
        }
        let stabilized = self.recent.iter().map(|(_, v)| *v).max().unwrap_or(combined);
        let out = stabilized.clamp(input.min_replicas, input.max_replicas.max(input.min_replicas));
        let status = if warming.is_empty() { "ok".to_string() } else { format!("warming_up: {}", warming.join(", ")) };
        let cell = |v: Option<i32>| v.map_or(String::new(), |x| x.to_string());
        RecOutput {
            replicas: Some(out),
            status,
            values: [baseline.to_string(), cell(linear), cell(hw)]
                .into_iter()
                .chain(self.uses("lstm").then(|| cell(lstm)))
                .chain([self.history.len().to_string()])
                .collect(),
            ..RecOutput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_regression_extrapolates() {
        let pts = [(0.0, 1.0), (30.0, 2.0), (60.0, 3.0)];
        let p = linear_forecast(&pts, 90.0).expect("fit");
        assert!((p - 4.0).abs() < 1e-12, "{p}");
        assert_eq!(linear_forecast(&pts[..1], 90.0), None);
        assert_eq!(linear_forecast(&[(5.0, 1.0), (5.0, 2.0)], 9.0), None);
    }

    #[test]
    fn holt_winters_follows_a_season_and_a_trend() {
        // A season of 4 on a rising line: the forecast continues both.
        let m = 4;
        let season = [0.0, 2.0, 0.0, -2.0];
        let x: Vec<f64> = (0..16).map(|t| 10.0 + 0.5 * f64::from(t) + season[t as usize % m]).collect();
        for h in 1..=4 {
            let t = 15 + h;
            let want = 10.0 + 0.5 * t as f64 + season[t % m];
            let got = holt_winters_forecast(&x, m, 0.5, 0.3, 0.3, h).expect("two seasons");
            assert!((got - want).abs() < 1e-9, "h={h}: {got} vs {want}");
        }
        assert_eq!(holt_winters_forecast(&x[..7], m, 0.5, 0.3, 0.3, 1), None, "needs two seasons");
    }

    #[test]
    fn combine_like_the_predictive_hpa() {
        assert_eq!(combine("max", &[3, 5, 4]), Some(5));
        assert_eq!(combine("min", &[3, 5, 4]), Some(3));
        assert_eq!(combine("mean", &[3, 5, 4, 5]), Some(4), "17/4 floors");
        assert_eq!(combine("median", &[3, 6, 4, 5]), Some(4), "(4+5)/2 floors");
        assert_eq!(combine("median", &[3, 6, 4]), Some(4));
        assert_eq!(combine("max", &[]), None);
    }
}
