//! What arrives and how much work it brings: request arrivals from a load plan (Poisson or
//! evenly spaced, traces replayed as recorded) and the service-time laws. Pure functions of a
//! seeded generator; the tests check them against their moments.

use rand_distr::Distribution;

use crate::config::{ArrivalKind, ServiceConfig, ServiceDistribution};
use crate::engine::load::Schedule;
use crate::engine::load::pacer::Pacer;
use crate::engine::rng::Rng;
use crate::engine::scenario::LoadPlan;

/// The CPU work of one request, in seconds of one full core.
#[derive(Debug, Clone)]
pub enum ServiceLaw {
    Deterministic(f64),
    Exponential(f64),
    LogNormal {
        mean: f64,
        cv: f64,
        dist: rand_distr::LogNormal<f64>,
    },
    Gamma {
        mean: f64,
        cv: f64,
        dist: rand_distr::Gamma<f64>,
    },
    /// Samples (seconds), drawn uniformly.
    Empirical(Vec<f64>),
}

impl ServiceLaw {
    /// The law `[sim.service]` describes; errors name the key.
    pub fn from_config(c: &ServiceConfig) -> Result<Self, (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        let mean = c.mean_ms / 1000.0;
        let need_mean = || -> Result<(), (String, String)> {
            if c.mean_ms.is_finite() && c.mean_ms > 0.0 {
                Ok(())
            } else {
                Err(("mean_ms".into(), format!("must be milliseconds > 0, not {}", c.mean_ms)))
            }
        };
        let need_cv = || -> Result<(), (String, String)> {
            if c.cv.is_finite() && c.cv > 0.0 {
                Ok(())
            } else {
                Err(("cv".into(), format!("must be > 0 for {:?}, not {}", c.distribution, c.cv)))
            }
        };
        match c.distribution {
            ServiceDistribution::Deterministic => {
                need_mean()?;
                Ok(Self::Deterministic(mean))
            }
            ServiceDistribution::Exponential => {
                need_mean()?;
                Ok(Self::Exponential(mean))
            }
            ServiceDistribution::Lognormal => {
                need_mean()?;
                need_cv()?;
                let s2 = (1.0 + c.cv * c.cv).ln();
                let mu = mean.ln() - s2 / 2.0;
                match rand_distr::LogNormal::new(mu, s2.sqrt()) {
                    Ok(dist) => Ok(Self::LogNormal { mean, cv: c.cv, dist }),
                    Err(e) => bad("cv", format!("no lognormal law for it: {e}")),
                }
            }
            ServiceDistribution::Gamma => {
                need_mean()?;
                need_cv()?;
                let shape = 1.0 / (c.cv * c.cv);
                match rand_distr::Gamma::new(shape, mean / shape) {
                    Ok(dist) => Ok(Self::Gamma { mean, cv: c.cv, dist }),
                    Err(e) => bad("cv", format!("no gamma law for it: {e}")),
                }
            }
            ServiceDistribution::Empirical => {
                let mut ms = c.samples_ms.clone();
                if !c.file.trim().is_empty() {
                    let text = std::fs::read_to_string(c.file.trim())
                        .map_err(|e| ("file".to_string(), format!("cannot read {}: {e}", c.file)))?;
                    let v = crate::engine::load::schedule::numbers(&text, "milliseconds >= 0", |v| v >= 0.0)
                        .map_err(|e| ("file".to_string(), format!("{}: {e}", c.file)))?;
                    ms.extend(v);
                }
                if ms.is_empty() {
                    return bad("samples_ms", "the empirical law needs samples (samples_ms or file)".into());
                }
                if ms.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || ms.iter().all(|v| *v == 0.0) {
                    return bad("samples_ms", "samples must be milliseconds >= 0, not all 0".into());
                }
                Ok(Self::Empirical(ms.into_iter().map(|v| v / 1000.0).collect()))
            }
        }
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Self::Deterministic(m) => *m,
            Self::Exponential(m) => m * rng.exp1(),
            Self::LogNormal { dist, .. } => dist.sample(rng),
            Self::Gamma { dist, .. } => dist.sample(rng),
            Self::Empirical(v) => v[rng.below(v.len())],
        }
    }

    /// Mean work (core-seconds).
    pub fn mean(&self) -> f64 {
        match self {
            Self::Deterministic(m) | Self::Exponential(m) => *m,
            Self::LogNormal { mean, .. } | Self::Gamma { mean, .. } => *mean,
            Self::Empirical(v) => v.iter().sum::<f64>() / v.len() as f64,
        }
    }

    /// Coefficient of variation.
    pub fn cv(&self) -> f64 {
        match self {
            Self::Deterministic(_) => 0.0,
            Self::Exponential(_) => 1.0,
            Self::LogNormal { cv, .. } | Self::Gamma { cv, .. } => *cv,
            Self::Empirical(v) => {
                let m = self.mean();
                let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
                var.sqrt() / m
            }
        }
    }

    /// The `q`-quantile (core-seconds) where it has a closed form (gamma has none here).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Self::Deterministic(m) => Some(*m),
            Self::Exponential(m) => Some(-m * (1.0 - q).ln()),
            Self::LogNormal { mean, cv, .. } => {
                let s2 = (1.0 + cv * cv).ln();
                let mu = mean.ln() - s2 / 2.0;
                Some((mu + s2.sqrt() * normal_quantile(q)).exp())
            }
            Self::Gamma { .. } => None,
            Self::Empirical(v) => {
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
                Some(s[i])
            }
        }
    }

    /// One line for the settings in force: `lognormal mean 2 ms cv 1`.
    pub fn describe(&self) -> String {
        let ms = self.mean() * 1000.0;
        match self {
            Self::Deterministic(_) => format!("deterministic {ms} ms"),
            Self::Exponential(_) => format!("exponential mean {ms} ms"),
            Self::LogNormal { cv, .. } => format!("lognormal mean {ms} ms cv {cv}"),
            Self::Gamma { cv, .. } => format!("gamma mean {ms} ms cv {cv}"),
            Self::Empirical(v) => format!("empirical, {} samples, mean {ms:.3} ms cv {:.3}", v.len(), self.cv()),
        }
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9
/// after one Newton step on the error function).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Seconds per thinning block: the rate's bound is taken over blocks this long.
const BLOCK_S: f64 = 1.0;

/// One source of arrivals, in plan time (seconds after the plan's start).
#[derive(Debug, Clone)]
enum Stream {
    /// A Poisson process of a schedule's rate by thinning, block by block: within a block the
    /// candidates come at the block's highest rate and each is kept with probability
    /// rate / highest (none are tested where the rate is constant).
    Thinned { sched: Schedule, offset: f64, t: f64, end: f64, block_end: f64, lo: f64, hi: f64 },
    /// Requests due at fixed times: the integral's crossings of whole numbers (evenly spaced),
    /// or a timestamp trace.
    Paced { pacer: Pacer, offset: f64 },
    /// A count trace replayed with its counts: each step's requests at uniformly random times
    /// within the step (a Poisson process given the counts it recorded), or evenly spaced.
    Counts { values: Vec<f64>, step: f64, offset: f64, idx: usize, from: f64, buf: Vec<f64>, poisson: bool },
    /// The baseline rate in the gaps between load phases.
    Gaps { rate: f64, gaps: Vec<(f64, f64)>, gi: usize, t: f64, poisson: bool },
}

impl Stream {
    /// The next arrival (plan time), or `None` when the stream has ended.
    fn next(&mut self, rng: &mut Rng) -> Option<f64> {
        match self {
            Stream::Thinned { sched, offset, t, end, block_end, lo, hi } => loop {
                if *t >= *end {
                    return None;
                }
                if *t >= *block_end {
                    *block_end = (*t + BLOCK_S).min(*end);
                    (*lo, *hi) = sched.rate_bounds(*t, *block_end);
                    if !(*hi > 0.0) {
                        if end.is_infinite() && sched.rate_bounds(*t, f64::INFINITY).1 <= 0.0 {
                            return None;
                        }
                        *t = *block_end;
                        continue;
                    }
                }
                *t += rng.exp1() / *hi;
                if *t >= *block_end {
                    // Memoryless: the process starts afresh at the block's end.
                    *t = *block_end;
                    continue;
                }
                // Accepted below the block's lowest rate without evaluating the rate (a squeeze).
                let u = rng.uniform() * *hi;
                if u <= *lo || u <= sched.rate(*t) {
                    return Some(*offset + *t);
                }
            },
            Stream::Paced { pacer, offset } => pacer.next_due().map(|t| *offset + t),
            Stream::Counts { values, step, offset, idx, from, buf, poisson } => loop {
                if let Some(t) = buf.pop() {
                    return Some(*offset + t);
                }
                let v = *values.get(*idx)?;
                let x = v * *step;
                let mut n = x.floor();
                if x > n && rng.uniform() < x - n {
                    n += 1.0;
                }
                let start = *idx as f64 * *step;
                *idx += 1;
                for k in 0..n as u64 {
                    let u = if *poisson { rng.uniform() } else { (k as f64 + 0.5) / n };
                    let t = start + u * *step;
                    if t >= *from {
                        buf.push(t);
                    }
                }
                // Popped from the end: descending.
                buf.sort_by(|a, b| b.total_cmp(a));
            },
            Stream::Gaps { rate, gaps, gi, t, poisson } => loop {
                let &(a, b) = gaps.get(*gi)?;
                if *t < a {
                    *t = a;
                }
                let dt = if *poisson { rng.exp1() / *rate } else { 1.0 / *rate };
                if *t + dt < b {
                    *t += dt;
                    return Some(*t);
                }
                *gi += 1;
            },
        }
    }
}

/// All arrivals of a load plan merged in time order, in model time.
#[derive(Debug, Clone)]
pub struct Arrivals {
    streams: Vec<Stream>,
    /// Each stream's next arrival (model time; infinite when it has ended).
    next: Vec<f64>,
    /// Model time of the plan's t = 0.
    origin: f64,
    best: usize,
}

impl Arrivals {
    /// No arrivals.
    pub fn none() -> Self {
        Self { streams: Vec::new(), next: Vec::new(), origin: 0.0, best: 0 }
    }

    /// The arrivals of `plan` from model time `from` on, the plan's t = 0 at model time `origin`.
    pub fn new(plan: &LoadPlan, origin: f64, from: f64, kind: ArrivalKind, rng: &mut Rng) -> Self {
        let from_local = (from - origin).max(0.0);
        let mut streams = Vec::new();
        for p in &plan.phases {
            let offset = p.start_s;
            let end = p.schedule.duration();
            let local = (from_local - offset).max(0.0);
            if local >= end {
                continue;
            }
            let paced = |s: &Schedule| {
                let mut pacer = Pacer::new(s.clone(), f64::INFINITY);
                pacer.skip_until(local);
                Stream::Paced { pacer, offset }
            };
            let s = match (&p.schedule, kind) {
                (Schedule::Trace { values, step_s }, _) => Stream::Counts {
                    values: values.clone(),
                    step: *step_s,
                    offset,
                    idx: (local / step_s) as usize,
                    from: local,
                    buf: Vec::new(),
                    poisson: kind == ArrivalKind::Poisson,
                },
                (Schedule::Timestamps { .. }, _) | (_, ArrivalKind::Uniform) => paced(&p.schedule),
                (sched, ArrivalKind::Poisson) => {
                    Stream::Thinned { sched: sched.clone(), offset, t: local, end, block_end: local, lo: 0.0, hi: 0.0 }
                }
            };
            streams.push(s);
        }
        if plan.baseline > 0.0 {
            let gaps: Vec<(f64, f64)> = plan.gaps().into_iter().filter(|(_, b)| *b > from_local).collect();
            if !gaps.is_empty() {
                streams.push(Stream::Gaps {
                    rate: plan.baseline,
                    gaps,
                    gi: 0,
                    t: from_local,
                    poisson: kind == ArrivalKind::Poisson,
                });
            }
        }
        let mut a = Self { next: vec![f64::INFINITY; streams.len()], streams, origin, best: 0 };
        for i in 0..a.streams.len() {
            a.next[i] = a.streams[i].next(rng).map_or(f64::INFINITY, |t| origin + t);
        }
        a.pick();
        a
    }

    fn pick(&mut self) {
        let mut best = 0;
        for i in 1..self.next.len() {
            if self.next[i] < self.next[best] {
                best = i;
            }
        }
        self.best = best;
    }

    /// The next arrival's time (infinite when there are none).
    #[inline]
    pub fn peek(&self) -> f64 {
        self.next.get(self.best).copied().unwrap_or(f64::INFINITY)
    }

    /// Take the next arrival and draw the one after it.
    #[inline]
    pub fn pop(&mut self, rng: &mut Rng) -> f64 {
        let i = self.best;
        let t = self.next[i];
        self.next[i] = self.streams[i].next(rng).map_or(f64::INFINITY, |x| self.origin + x);
        if self.next.len() > 1 {
            self.pick();
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scenario::LoadPhase;

    fn law(d: ServiceDistribution, cv: f64) -> ServiceLaw {
        ServiceLaw::from_config(&ServiceConfig { distribution: d, mean_ms: 20.0, cv, ..ServiceConfig::default() })
            .expect("law")
    }

    fn moments(l: &ServiceLaw, n: u32) -> (f64, f64) {
        let mut rng = Rng::new(11);
        let xs: Vec<f64> = (0..n).map(|_| l.sample(&mut rng)).collect();
        let m = xs.iter().sum::<f64>() / f64::from(n);
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / f64::from(n - 1);
        (m, v.sqrt() / m)
    }

    #[test]
    fn service_laws_have_their_mean_and_cv() {
        for (d, cv) in [
            (ServiceDistribution::Deterministic, 0.0),
            (ServiceDistribution::Exponential, 1.0),
            (ServiceDistribution::Lognormal, 0.5),
            (ServiceDistribution::Lognormal, 2.0),
            (ServiceDistribution::Gamma, 0.5),
            (ServiceDistribution::Gamma, 2.0),
        ] {
            let l = law(d, if cv > 0.0 { cv } else { 1.0 });
            let (m, c) = moments(&l, 400_000);
            assert!((m - 0.020).abs() / 0.020 < 0.02, "{d:?} cv {cv}: mean {m}");
            // A heavy lognormal tail (cv 2) needs many draws for its cv; 6 % is 2.5 sigma here.
            assert!((c - cv).abs() <= 0.06 * cv.max(0.1), "{d:?}: cv {c} vs {cv}");
            assert!((l.mean() - 0.020).abs() < 1e-12 && (l.cv() - cv).abs() < 1e-12);
        }
        let e = ServiceLaw::from_config(&ServiceConfig {
            distribution: ServiceDistribution::Empirical,
            samples_ms: vec![10.0, 30.0],
            ..ServiceConfig::default()
        })
        .expect("empirical");
        let (m, c) = moments(&e, 100_000);
        assert!((m - 0.020).abs() < 0.0005 && (c - 0.5).abs() < 0.02, "{m} {c}");
    }

    #[test]
    fn quantiles_match_the_draws() {
        for l in [law(ServiceDistribution::Exponential, 1.0), law(ServiceDistribution::Lognormal, 1.5)] {
            let mut rng = Rng::new(5);
            let mut xs: Vec<f64> = (0..200_000).map(|_| l.sample(&mut rng)).collect();
            xs.sort_by(f64::total_cmp);
            for q in [0.5, 0.95, 0.99] {
                let want = l.quantile(q).expect("closed form");
                let got = xs[(q * xs.len() as f64) as usize];
                assert!((got - want).abs() / want < 0.03, "{l:?} q{q}: {got} vs {want}");
            }
        }
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
    }

    #[test]
    fn bad_laws_name_their_key() {
        let e = ServiceLaw::from_config(&ServiceConfig { mean_ms: 0.0, ..ServiceConfig::default() }).expect_err("0");
        assert_eq!(e.0, "mean_ms");
        let e = ServiceLaw::from_config(&ServiceConfig {
            distribution: ServiceDistribution::Gamma,
            cv: -1.0,
            ..ServiceConfig::default()
        })
        .expect_err("cv");
        assert_eq!(e.0, "cv");
        let e = ServiceLaw::from_config(&ServiceConfig {
            distribution: ServiceDistribution::Empirical,
            ..ServiceConfig::default()
        })
        .expect_err("no samples");
        assert_eq!(e.0, "samples_ms");
    }

    fn count(plan: &LoadPlan, kind: ArrivalKind, from: f64, until: f64, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let mut a = Arrivals::new(plan, 100.0, 100.0 + from, kind, &mut rng);
        let mut out = Vec::new();
        while a.peek() < 100.0 + until {
            let t = a.pop(&mut rng);
            assert!(out.last().is_none_or(|l| *l <= t), "in order");
            out.push(t - 100.0);
        }
        out
    }

    #[test]
    fn poisson_arrivals_follow_the_rate() {
        // A ramp 0 -> 200 rps over 100 s: 10,000 expected, Poisson sd 100.
        let ramp = Schedule::Ramp { start_rps: 0.0, end_rps: 200.0, ramp_s: 100.0, hold_s: 0.0 };
        let plan = LoadPlan::single(ramp, 0.0);
        let ts = count(&plan, ArrivalKind::Poisson, 0.0, 200.0, 1);
        assert!((ts.len() as f64 - 10_000.0).abs() < 400.0, "{}", ts.len());
        // Counts per 10 s follow the integral of the rate.
        for k in 0..10 {
            let (a, b) = (k as f64 * 10.0, k as f64 * 10.0 + 10.0);
            let want = b * b - a * a; // ∫ 2t dt
            let got = ts.iter().filter(|t| **t >= a && **t < b).count() as f64;
            assert!((got - want).abs() < 4.0 * want.sqrt() + 1.0, "[{a},{b}): {got} vs {want}");
        }
        // Inter-arrival times at a constant rate are exponential: mean 1/λ, cv 1.
        let plan = LoadPlan::single(Schedule::Constant { rps: 50.0, duration_s: 4000.0 }, 0.0);
        let ts = count(&plan, ArrivalKind::Poisson, 0.0, 4000.0, 2);
        let gaps: Vec<f64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - m) * (g - m)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((m - 0.02).abs() < 0.0003 && (sd / m - 1.0).abs() < 0.02, "mean {m} cv {}", sd / m);
    }

    #[test]
    fn uniform_arrivals_are_the_integral_crossings() {
        let plan = LoadPlan::single(Schedule::Constant { rps: 4.0, duration_s: 10.0 }, 0.0);
        let ts = count(&plan, ArrivalKind::Uniform, 0.0, 20.0, 1);
        assert_eq!(ts.len(), 40);
        assert!((ts[0] - 0.25).abs() < 1e-9 && (ts[39] - 10.0).abs() < 1e-9, "{ts:?}");
        // Starting later skips what was due before.
        assert_eq!(count(&plan, ArrivalKind::Uniform, 5.0, 20.0, 1).len(), 20);
    }

    #[test]
    fn traces_replay_their_counts_and_baseline_fills_the_gaps() {
        let trace = Schedule::Trace { values: vec![3.0, 0.0, 7.0], step_s: 1.0 };
        let plan = LoadPlan { phases: vec![LoadPhase { start_s: 10.0, schedule: trace }], baseline: 2.0 };
        for kind in [ArrivalKind::Poisson, ArrivalKind::Uniform] {
            let ts = count(&plan, kind, 0.0, 23.0, 3);
            let in_step = |a: f64| ts.iter().filter(|t| **t >= a && **t < a + 1.0).count();
            assert_eq!((in_step(10.0), in_step(11.0), in_step(12.0)), (3, 0, 7), "{kind:?}");
            let before = ts.iter().filter(|t| **t < 10.0).count() as f64;
            let after = ts.iter().filter(|t| **t >= 13.0).count() as f64;
            assert!((before - 20.0).abs() <= 12.0 && (after - 20.0).abs() <= 12.0, "{kind:?} {before} {after}");
        }
        let ts = count(&plan, ArrivalKind::Uniform, 0.0, 23.0, 3);
        assert_eq!(ts.iter().filter(|t| **t < 10.0).count(), 19, "every 0.5 s from 0.5 to 9.5");
    }

    #[test]
    fn same_seed_same_arrivals() {
        let plan =
            LoadPlan::single(Schedule::Sine { min_rps: 5.0, max_rps: 80.0, period_s: 60.0, duration_s: 300.0 }, 1.0);
        assert_eq!(
            count(&plan, ArrivalKind::Poisson, 0.0, 400.0, 9),
            count(&plan, ArrivalKind::Poisson, 0.0, 400.0, 9)
        );
        assert_ne!(
            count(&plan, ArrivalKind::Poisson, 0.0, 400.0, 9),
            count(&plan, ArrivalKind::Poisson, 0.0, 400.0, 8)
        );
    }
}
