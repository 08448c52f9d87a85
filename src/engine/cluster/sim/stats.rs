//! Weighted latency histogram (log-spaced buckets with fractional counts), used to aggregate the
//! simulator's per-second latency distributions into per-tick percentiles in bounded memory.

/// Buckets grow by 2 % from 0.1 ms; 1,000 buckets reach past 40 minutes.
const FIRST_MS: f64 = 0.1;
const GROWTH: f64 = 1.02;
const BUCKETS: usize = 1000;

#[derive(Debug, Clone)]
pub struct WeightedHistogram {
    counts: Vec<f64>,
    total: f64,
}

impl Default for WeightedHistogram {
    fn default() -> Self {
        Self { counts: vec![0.0; BUCKETS], total: 0.0 }
    }
}

impl WeightedHistogram {
    fn bucket(ms: f64) -> usize {
        if !(ms > FIRST_MS) {
            return 0;
        }
        (((ms / FIRST_MS).ln() / GROWTH.ln()) as usize + 1).min(BUCKETS - 1)
    }

    fn value(i: usize) -> f64 {
        if i == 0 { FIRST_MS } else { FIRST_MS * GROWTH.powf(i as f64 - 0.5) }
    }

    pub fn record(&mut self, ms: f64, weight: f64) {
        if weight > 0.0 && ms.is_finite() {
            self.counts[Self::bucket(ms)] += weight;
            self.total += weight;
        }
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// The `q`-quantile (0..1) in ms, or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total <= 0.0 {
            return None;
        }
        let want = q.clamp(0.0, 1.0) * self.total;
        let mut acc = 0.0;
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want && *c > 0.0 {
                return Some(Self::value(i));
            }
        }
        self.counts.iter().rposition(|c| *c > 0.0).map(Self::value)
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0.0);
        self.total = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_two_percent() {
        let mut h = WeightedHistogram::default();
        for i in 1..=1000 {
            h.record(f64::from(i), 1.0);
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).expect("non-empty");
            assert!((got - want).abs() / want < 0.02, "q{q}: {got}");
        }
        h.clear();
        assert_eq!(h.quantile(0.5), None);
    }
}
