//! What a metrics pipeline sees of the simulated cluster: counts of requests by outcome, the
//! sojourn times of the requests that finished (HDR histograms: per tick and for the whole run),
//! the time-average of requests in the system, and metrics-server's per-pod CPU averaged over
//! its window with measurement noise. Noise lives here only: the physical model never sees it.

use hdrhistogram::Histogram;
use rand_distr::Distribution;
use serde::Serialize;

use crate::engine::rng::Rng;

/// Latencies are recorded in microseconds, up to an hour (longer ones count as an hour).
const MAX_US: u64 = 3_600_000_000;

fn histogram<T: hdrhistogram::Counter>(digits: u8) -> Histogram<T> {
    match Histogram::new_with_bounds(1, MAX_US, digits) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts.
        Err(_) => unreachable!("valid histogram bounds"),
    }
}

/// Requests by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub arrived: u64,
    pub served: u64,
    /// Turned away at once: no ready pod, or the queue full (503).
    pub rejected: u64,
    /// The client gave up (`timeout_s`).
    pub timed_out: u64,
    /// Lost with a pod: killed at the end of its grace period, or OOM-killed.
    pub failed: u64,
}

/// Latency percentiles of finished requests, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Counts and latencies over a span (a tick, or the run).
#[derive(Debug, Clone)]
pub struct Span<T: hdrhistogram::Counter> {
    pub counts: Counts,
    hist: Histogram<T>,
    /// Exact sums over the served requests (seconds).
    sum_s: f64,
    max_s: f64,
    /// Work of the served requests (core-seconds).
    pub work_s: f64,
}

impl<T: hdrhistogram::Counter> Span<T> {
    /// Latencies to `digits` significant digits (3 for the run: 0.1 %; 2 for a tick: 1 %, ten
    /// times fewer buckets to clear and scan at every tick).
    fn new(digits: u8) -> Self {
        Self { counts: Counts::default(), hist: histogram(digits), sum_s: 0.0, max_s: 0.0, work_s: 0.0 }
    }

    #[inline]
    fn served(&mut self, latency_s: f64, work: f64) {
        self.counts.served += 1;
        self.hist.saturating_record(((latency_s * 1e6 + 0.5) as u64).max(1));
        self.sum_s += latency_s;
        self.work_s += work;
        if latency_s > self.max_s {
            self.max_s = latency_s;
        }
    }

    pub fn summary(&self) -> LatencySummary {
        if self.counts.served == 0 {
            return LatencySummary::default();
        }
        // One pass for the three percentiles (value_at_quantile walks the buckets each time).
        let total = self.hist.len();
        let want = [0.50, 0.95, 0.99].map(|q: f64| ((q * total as f64).ceil() as u64).clamp(1, total));
        let mut got = [None; 3];
        let (mut seen, mut k) = (0u64, 0usize);
        for v in self.hist.iter_recorded() {
            seen += v.count_at_value().as_u64();
            while k < 3 && seen >= want[k] {
                got[k] = Some(self.hist.highest_equivalent(v.value_iterated_to()) as f64 / 1e6);
                k += 1;
            }
            if k == 3 {
                break;
            }
        }
        LatencySummary {
            mean: Some(self.sum_s / self.counts.served as f64),
            p50: got[0],
            p95: got[1],
            p99: got[2],
            max: Some(self.max_s),
        }
    }

    /// Served requests that took at most `le_s` (a Prometheus histogram bucket).
    pub fn count_le(&self, le_s: f64) -> u64 {
        let le = (le_s * 1e6).round() as u64;
        self.hist
            .iter_recorded()
            .filter(|v| self.hist.lowest_equivalent(v.value_iterated_to()) <= le)
            .map(|v| v.count_at_value().as_u64())
            .sum()
    }

    pub fn latency_sum_s(&self) -> f64 {
        self.sum_s
    }

    fn clear(&mut self) {
        self.counts = Counts::default();
        self.hist.reset();
        self.sum_s = 0.0;
        self.max_s = 0.0;
        self.work_s = 0.0;
    }
}

/// Everything counted about the traffic.
#[derive(Debug, Clone)]
pub struct Observer {
    /// Since the last tick's take.
    pub tick: Span<u32>,
    pub tick_since: f64,
    pub run: Span<u64>,
    /// Requests in the system now, and the integral of that count over time.
    pub in_system: u64,
    area: f64,
    area_t: f64,
    area_since: f64,
}

impl Observer {
    pub fn new(t: f64) -> Self {
        Self { tick: Span::new(2), tick_since: t, run: Span::new(3), in_system: 0, area: 0.0, area_t: t, area_since: t }
    }

    #[inline]
    fn integrate(&mut self, t: f64) {
        self.area += self.in_system as f64 * (t - self.area_t);
        self.area_t = t;
    }

    #[inline]
    pub fn arrived(&mut self) {
        self.tick.counts.arrived += 1;
        self.run.counts.arrived += 1;
    }

    /// A request entered the system at `t` (it was not turned away).
    #[inline]
    pub fn entered(&mut self, t: f64) {
        self.integrate(t);
        self.in_system += 1;
    }

    /// A request left the system at `t`.
    #[inline]
    pub fn left(&mut self, t: f64) {
        self.integrate(t);
        self.in_system -= 1;
    }

    #[inline]
    pub fn rejected(&mut self) {
        self.tick.counts.rejected += 1;
        self.run.counts.rejected += 1;
    }

    #[inline]
    pub fn served(&mut self, latency_s: f64, work: f64) {
        self.tick.served(latency_s, work);
        self.run.served(latency_s, work);
    }

    #[inline]
    pub fn timed_out(&mut self) {
        self.tick.counts.timed_out += 1;
        self.run.counts.timed_out += 1;
    }

    #[inline]
    pub fn failed(&mut self) {
        self.tick.counts.failed += 1;
        self.run.counts.failed += 1;
    }

    /// The tick's counts, latencies and length; a new tick starts at `t`.
    pub fn take_tick(&mut self, t: f64) -> (Counts, LatencySummary, f64) {
        let out = (self.tick.counts, self.tick.summary(), t - self.tick_since);
        self.tick.clear();
        self.tick_since = t;
        out
    }

    /// The time-average number of requests in the system since the start, at `t`.
    pub fn mean_in_system(&self, t: f64) -> f64 {
        let area = self.area + self.in_system as f64 * (t - self.area_t);
        let span = t - self.area_since;
        if span > 0.0 { area / span } else { 0.0 }
    }
}

/// A CPU reading of metrics-server with measurement noise of relative size `noise`: Beta
/// distributed around the true fraction `u` of the limit with mean `u` (no bias) and standard
/// deviation `noise · sqrt(u(1−u))`, so it stays inside [0, limit], a pod at its limit reads its
/// limit, and an idle one reads nothing.
pub fn measure_cpu(true_m: f64, limit_m: f64, noise: f64, rng: &mut Rng) -> f64 {
    let u = (true_m / limit_m).clamp(0.0, 1.0);
    if noise <= 0.0 || u <= 1e-9 || u >= 1.0 - 1e-9 {
        return u * limit_m;
    }
    let kappa = 1.0 / (noise * noise) - 1.0;
    match rand_distr::Beta::new(u * kappa, (1.0 - u) * kappa) {
        Ok(b) => b.sample(rng) * limit_m,
        Err(_) => u * limit_m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_summarise_what_finished() {
        let mut o = Observer::new(0.0);
        for i in 1..=1000 {
            o.arrived();
            o.entered(0.0);
            o.left(1.0);
            o.served(f64::from(i) / 1000.0, 0.001);
        }
        o.arrived();
        o.rejected();
        let s = o.run.summary();
        assert_eq!(o.run.counts, Counts { arrived: 1001, served: 1000, rejected: 1, ..Counts::default() });
        assert!((s.mean.expect("mean") - 0.5005).abs() < 1e-12);
        for (got, want) in [(s.p50, 0.5), (s.p95, 0.95), (s.p99, 0.99), (s.max, 1.0)] {
            assert!((got.expect("q") - want).abs() / want < 0.002, "{got:?} vs {want}");
        }
        assert_eq!(o.run.count_le(0.1), 100);
        let (counts, lat, secs) = o.take_tick(2.0);
        assert_eq!((counts.served, secs), (1000, 2.0));
        // The tick's histogram keeps two significant digits.
        assert!((lat.p99.expect("p99") - 0.99).abs() / 0.99 < 0.01, "{lat:?}");
        assert_eq!(o.tick.counts.served, 0);
        // 1000 requests in the system for the first second of two.
        assert!((o.mean_in_system(2.0) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn noise_is_unbiased_bounded_and_vanishes_at_the_limit() {
        let mut rng = Rng::new(3);
        assert_eq!(measure_cpu(200.0, 200.0, 0.05, &mut rng), 200.0);
        assert_eq!(measure_cpu(250.0, 200.0, 0.05, &mut rng), 200.0, "clamped to the limit");
        let xs: Vec<f64> = (0..50_000).map(|_| measure_cpu(60.0, 200.0, 0.05, &mut rng)).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((m - 60.0).abs() < 0.1, "{m}");
        assert!(xs.iter().all(|x| (0.0..=200.0).contains(x)));
        let mut near: Vec<f64> = (0..10_000).map(|_| measure_cpu(199.0, 200.0, 0.05, &mut rng)).collect();
        near.sort_by(f64::total_cmp);
        let mean = near.iter().sum::<f64>() / near.len() as f64;
        assert!((mean - 199.0).abs() < 0.1, "{mean}");
        assert!(near[500] > 197.0, "a pod at 99.5 % of its limit reads close to it: 5th percentile {}", near[500]);
    }
}
