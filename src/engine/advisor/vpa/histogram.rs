//! The Kubernetes VPA recommender's histograms, rebuilt from its specification
//! (`vertical-pod-autoscaler/pkg/recommender/util`): linear and exponential bucketing schemes, a
//! histogram of weighted samples whose percentiles are bucket ends, and a decaying histogram that
//! gives a sample the weight `2^((t - reference) / half_life)` so that old samples lose half their
//! importance every half-life. The unit tests reproduce the upstream tests' numbers.

/// How values map to buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BucketScheme {
    /// Buckets of `size`, the first starting at 0.
    Linear { size: f64 },
    /// Bucket `n` has size `first * ratio^n`; bucket `n >= 1` starts at
    /// `first * (ratio^n - 1) / (ratio - 1)`.
    Exponential { first: f64, ratio: f64 },
}

/// The number and size of buckets, and the weight below which a bucket counts as empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramOptions {
    pub scheme: BucketScheme,
    pub num_buckets: usize,
    pub epsilon: f64,
}

impl HistogramOptions {
    /// Fixed-size buckets from 0; the last bucket starts at or above `max_value`.
    pub fn linear(max_value: f64, bucket_size: f64, epsilon: f64) -> Result<Self, String> {
        if !(max_value > 0.0 && bucket_size > 0.0 && epsilon > 0.0) {
            return Err("max value, bucket size and epsilon must be positive".into());
        }
        let num_buckets = (max_value / bucket_size).ceil() as usize + 1;
        Ok(Self { scheme: BucketScheme::Linear { size: bucket_size }, num_buckets, epsilon })
    }

    /// Exponentially growing buckets; the last bucket starts at or above `max_value`.
    pub fn exponential(max_value: f64, first_bucket: f64, ratio: f64, epsilon: f64) -> Result<Self, String> {
        if !(max_value > 0.0 && first_bucket > 0.0 && ratio > 1.0 && epsilon > 0.0) {
            return Err("max value, first bucket size and epsilon must be > 0 and ratio > 1".into());
        }
        let n = (max_value * (ratio - 1.0) / first_bucket + 1.0).ln() / ratio.ln();
        Ok(Self {
            scheme: BucketScheme::Exponential { first: first_bucket, ratio },
            num_buckets: n.ceil() as usize + 1,
            epsilon,
        })
    }

    /// The bucket a value falls in (values outside the range go to the first or last bucket).
    pub fn find_bucket(&self, value: f64) -> usize {
        let raw = match self.scheme {
            BucketScheme::Linear { size } => {
                let b = (value / size).trunc();
                if b < 0.0 || b.is_nan() {
                    return 0;
                }
                b
            }
            BucketScheme::Exponential { first, ratio } => {
                if !(value >= first) {
                    return 0;
                }
                ((value * (ratio - 1.0) / first + 1.0).ln() / ratio.ln()).trunc()
            }
        };
        (raw as usize).min(self.num_buckets - 1)
    }

    /// Where bucket `b` starts (`b` is clamped to the valid range).
    pub fn bucket_start(&self, b: usize) -> f64 {
        let b = b.min(self.num_buckets - 1);
        match self.scheme {
            BucketScheme::Linear { size } => b as f64 * size,
            BucketScheme::Exponential { first, ratio } => {
                if b == 0 {
                    0.0
                } else {
                    first * (ratio.powi(b as i32) - 1.0) / (ratio - 1.0)
                }
            }
        }
    }
}

/// Weighted samples in buckets. A percentile is the end of the bucket where the cumulative
/// weight reaches it (the start of the last bucket, which has no end).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub options: HistogramOptions,
    weights: Vec<f64>,
    total: f64,
    /// First non-empty bucket (else the last bucket).
    min_bucket: usize,
    /// Last non-empty bucket (else 0).
    max_bucket: usize,
}

impl Histogram {
    pub fn new(options: HistogramOptions) -> Self {
        Self {
            options,
            weights: vec![0.0; options.num_buckets],
            total: 0.0,
            min_bucket: options.num_buckets - 1,
            max_bucket: 0,
        }
    }

    /// Add a sample; a negative weight is ignored.
    pub fn add(&mut self, value: f64, weight: f64) {
        if !(weight >= 0.0) {
            return;
        }
        let b = self.options.find_bucket(value);
        self.weights[b] += weight;
        self.total += weight;
        if b < self.min_bucket && self.weights[b] >= self.options.epsilon {
            self.min_bucket = b;
        }
        if b > self.max_bucket && self.weights[b] >= self.options.epsilon {
            self.max_bucket = b;
        }
    }

    /// Remove a sample (a bucket's weight never goes below zero).
    pub fn subtract(&mut self, value: f64, weight: f64) {
        if !(weight >= 0.0) {
            return;
        }
        let b = self.options.find_bucket(value);
        let w = if weight > self.weights[b] - self.options.epsilon { self.weights[b] } else { weight };
        self.total -= w;
        self.weights[b] -= w;
        self.update_min_max();
    }

    /// Add another histogram's samples (same options).
    pub fn merge(&mut self, other: &Histogram) {
        for b in other.min_bucket..=other.max_bucket.min(self.weights.len() - 1) {
            self.weights[b] += other.weights[b];
        }
        self.total += other.total;
        self.min_bucket = self.min_bucket.min(other.min_bucket);
        self.max_bucket = self.max_bucket.max(other.max_bucket);
    }

    pub fn is_empty(&self) -> bool {
        self.weights[self.min_bucket] < self.options.epsilon
    }

    pub fn total_weight(&self) -> f64 {
        self.total
    }

    /// The `p`-th percentile (0..1); 0 for an empty histogram.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let threshold = p * self.total;
        let mut sum = 0.0;
        let mut b = self.min_bucket;
        while b < self.max_bucket {
            sum += self.weights[b];
            if sum >= threshold {
                break;
            }
            b += 1;
        }
        if b < self.options.num_buckets - 1 { self.options.bucket_start(b + 1) } else { self.options.bucket_start(b) }
    }

    /// Equal buckets (within 1e-15) and the same non-empty range.
    pub fn same_as(&self, other: &Histogram) -> bool {
        self.options == other.options
            && self.min_bucket == other.min_bucket
            && self.max_bucket == other.max_bucket
            && (self.min_bucket..=self.max_bucket).all(|b| (self.weights[b] - other.weights[b]).abs() <= 1e-15)
    }

    /// Multiply every weight (percentiles do not change).
    fn scale(&mut self, factor: f64) {
        for b in self.min_bucket..=self.max_bucket {
            self.weights[b] *= factor;
        }
        self.total *= factor;
        self.update_min_max();
    }

    fn update_min_max(&mut self) {
        let last = self.options.num_buckets - 1;
        while self.weights[self.min_bucket] < self.options.epsilon && self.min_bucket < last {
            self.min_bucket += 1;
        }
        while self.weights[self.max_bucket] < self.options.epsilon && self.max_bucket > 0 {
            self.max_bucket -= 1;
        }
    }
}

/// When the decay factor would exceed 2^this, the reference time moves forward.
const MAX_DECAY_EXPONENT: f64 = 100.0;

/// A histogram where newer samples weigh more: a sample at time `t` (Unix seconds) is added with
/// its weight times `2^((t - reference) / half_life)`. The reference is a multiple of the
/// half-life and moves forward (rescaling the weights) before the factor grows too large.
#[derive(Debug, Clone, PartialEq)]
pub struct DecayingHistogram {
    pub histogram: Histogram,
    pub half_life_s: f64,
    /// Unix seconds; starts at the epoch.
    pub reference: f64,
}

impl DecayingHistogram {
    pub fn new(options: HistogramOptions, half_life_s: f64) -> Self {
        Self { histogram: Histogram::new(options), half_life_s, reference: 0.0 }
    }

    pub fn add(&mut self, value: f64, weight: f64, t: f64) {
        let f = self.decay_factor(t);
        self.histogram.add(value, weight * f);
    }

    pub fn subtract(&mut self, value: f64, weight: f64, t: f64) {
        let f = self.decay_factor(t);
        self.histogram.subtract(value, weight * f);
    }

    pub fn percentile(&self, p: f64) -> f64 {
        self.histogram.percentile(p)
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Merge another decaying histogram with the same half-life (aligning references first).
    pub fn merge(&mut self, other: &DecayingHistogram) {
        let mut o = other.clone();
        if self.reference < o.reference {
            self.shift_reference(o.reference);
        } else if o.reference < self.reference {
            o.shift_reference(self.reference);
        }
        self.histogram.merge(&o.histogram);
    }

    pub fn same_as(&self, other: &DecayingHistogram) -> bool {
        self.half_life_s == other.half_life_s
            && self.reference == other.reference
            && self.histogram.same_as(&other.histogram)
    }

    fn shift_reference(&mut self, to: f64) {
        // Round to a multiple of the half-life (halves round up).
        let to = (to / self.half_life_s + 0.5).floor() * self.half_life_s;
        let exponent = ((self.reference - to) / self.half_life_s + 0.5).floor();
        self.histogram.scale(2f64.powf(exponent));
        self.reference = to;
    }

    fn decay_factor(&mut self, t: f64) -> f64 {
        if t > self.reference + self.half_life_s * MAX_DECAY_EXPONENT {
            self.shift_reference(t);
        }
        ((t - self.reference) / self.half_life_s).exp2()
    }
}

#[cfg(test)]
mod tests {
    //! The numbers of the upstream `histogram_options_test.go`, `histogram_test.go` and
    //! `decaying_histogram_test.go`.
    use super::*;

    const WEIGHT_EPS: f64 = 1e-15;
    const HOUR: f64 = 3600.0;
    /// `time.Unix(1234567890, 0)`.
    const START: f64 = 1_234_567_890.0;

    fn close(want: f64, got: f64) {
        // testify's InEpsilon with a relative error of 1e-15.
        let rel = ((want - got) / want).abs();
        assert!(rel <= 1e-15, "want {want}, got {got}");
    }

    fn test_options() -> HistogramOptions {
        HistogramOptions::linear(10.0, 1.0, WEIGHT_EPS).expect("valid")
    }

    #[test]
    fn linear_options() {
        let o = HistogramOptions::linear(5.0, 0.3, 0.001).expect("valid");
        assert_eq!(o.epsilon, 0.001);
        assert_eq!(o.num_buckets, 18);
        assert_eq!(o.bucket_start(0), 0.0);
        assert_eq!(o.bucket_start(17), 5.1);
        assert_eq!(o.find_bucket(-1.0), 0);
        assert_eq!(o.find_bucket(0.0), 0);
        assert_eq!(o.find_bucket(1.3), 4);
        assert_eq!(o.find_bucket(100.0), 17);
    }

    #[test]
    fn exponential_options() {
        let o = HistogramOptions::exponential(500.0, 40.0, 1.5, 0.001).expect("valid");
        assert_eq!(o.num_buckets, 6);
        let starts: Vec<f64> = (0..6).map(|b| o.bucket_start(b)).collect();
        assert_eq!(starts, vec![0.0, 40.0, 100.0, 190.0, 325.0, 527.5]);
        assert_eq!(o.find_bucket(-1.0), 0);
        assert_eq!(o.find_bucket(39.99), 0);
        assert_eq!(o.find_bucket(40.0), 1);
        assert_eq!(o.find_bucket(100.0), 2);
        assert_eq!(o.find_bucket(900.0), 5);
        assert!(HistogramOptions::exponential(500.0, 40.0, 1.0, 0.001).is_err());
        assert!(HistogramOptions::linear(0.0, 1.0, 0.001).is_err());
    }

    #[test]
    fn empty_histogram_percentiles_are_zero() {
        let h = Histogram::new(test_options());
        for p in [-0.5, 0.0, 0.5, 1.0, 1.5] {
            assert_eq!(h.percentile(p), 0.0);
        }
        let d = DecayingHistogram::new(test_options(), HOUR);
        for p in [-0.5, 0.0, 0.5, 1.0, 1.5] {
            assert_eq!(d.percentile(p), 0.0);
        }
    }

    /// `{1: 1, 2: 2, 3: 3, 4: 4}`.
    fn expect_1234(p: impl Fn(f64) -> f64) {
        for (q, want) in [
            (0.0, 2.0),
            (0.1, 2.0),
            (0.2, 3.0),
            (0.3, 3.0),
            (0.4, 4.0),
            (0.5, 4.0),
            (0.6, 4.0),
            (0.7, 5.0),
            (0.8, 5.0),
            (0.9, 5.0),
            (1.0, 5.0),
        ] {
            close(want, p(q));
        }
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::new(test_options());
        for i in 1..=4 {
            h.add(f64::from(i), f64::from(i));
        }
        expect_1234(|q| h.percentile(q));
    }

    #[test]
    fn percentiles_out_of_bounds() {
        let o = HistogramOptions::linear(1.0, 0.1, WEIGHT_EPS).expect("valid");
        let mut h = Histogram::new(o);
        h.add(0.1, 0.1);
        h.add(0.2, 0.2);
        close(0.2, h.percentile(-0.1));
        close(0.3, h.percentile(1.1));
        h.add(0.0, 0.1);
        h.add(1.0, 0.2);
        close(0.1, h.percentile(-0.1));
        close(1.0, h.percentile(1.1));
    }

    #[test]
    fn emptiness_follows_epsilon() {
        let o = HistogramOptions::linear(1.0, 0.1, WEIGHT_EPS).expect("valid");
        let mut h = Histogram::new(o);
        assert!(h.is_empty());
        h.add(0.1, WEIGHT_EPS * 2.5);
        assert!(!h.is_empty());
        h.subtract(0.1, WEIGHT_EPS);
        assert!(!h.is_empty());
        h.subtract(0.1, WEIGHT_EPS);
        assert!(h.is_empty());

        let mut h = Histogram::new(o);
        h.add(9.9, WEIGHT_EPS * 3.0);
        assert!(!h.is_empty());
        h.add(0.1, WEIGHT_EPS * 0.3);
        assert!(!h.is_empty());
        h.add(999.9, WEIGHT_EPS * 0.3);
        assert!(!h.is_empty());
    }

    #[test]
    fn merge() {
        let mut h1 = Histogram::new(test_options());
        h1.add(1.0, 1.0);
        h1.add(2.0, 1.0);
        let mut h2 = Histogram::new(test_options());
        h2.add(2.0, 1.0);
        h2.add(3.0, 1.0);
        let mut expected = Histogram::new(test_options());
        for v in [1.0, 2.0, 2.0, 3.0] {
            expected.add(v, 1.0);
        }
        h1.merge(&h2);
        assert!(h1.same_as(&expected));
    }

    #[test]
    fn simple_decay() {
        let mut h = DecayingHistogram::new(test_options(), HOUR);
        h.add(2.0, 1000.0, START);
        // 20 half-lives later a sample weighs 2^20 / 1000 > 1000 times more.
        h.add(1.0, 1.0, START + 20.0 * HOUR);
        close(2.0, h.percentile(0.999));
        close(3.0, h.percentile(1.0));
        // The first reference is the start rounded to the hour (1234569600, as the upstream
        // tests' ports note).
        assert_eq!(h.reference, 1_234_569_600.0);
    }

    #[test]
    fn longterm_decay() {
        let mut h = DecayingHistogram::new(test_options(), HOUR);
        h.add(2.0, 1.0, START);
        h.add(1.0, 1.0, START + 101.0 * HOUR);
        close(2.0, h.percentile(1.0));
    }

    #[test]
    fn decaying_percentiles() {
        let mut h = DecayingHistogram::new(test_options(), HOUR);
        for i in 1..=4 {
            h.add(f64::from(i), f64::from(i), START + f64::from(i - 1) * HOUR);
        }
        for (q, want) in
            [(0.0, 2.0), (0.02, 2.0), (0.03, 3.0), (0.10, 3.0), (0.11, 4.0), (0.34, 4.0), (0.35, 5.0), (1.0, 5.0)]
        {
            close(want, h.percentile(q));
        }
    }

    #[test]
    fn no_decay_at_a_fixed_time() {
        let mut h = DecayingHistogram::new(test_options(), HOUR);
        for i in 1..=4 {
            h.add(f64::from(i), f64::from(i), START);
        }
        expect_1234(|q| h.percentile(q));
    }

    #[test]
    fn decaying_merge() {
        let mut h1 = DecayingHistogram::new(test_options(), HOUR);
        h1.add(1.0, 1.0, START);
        h1.add(2.0, 1.0, START + HOUR);
        let mut h2 = DecayingHistogram::new(test_options(), HOUR);
        h2.add(2.0, 1.0, START + 2.0 * HOUR);
        h2.add(3.0, 1.0, START + HOUR);
        let mut expected = DecayingHistogram::new(test_options(), HOUR);
        expected.add(2.0, 1.0, START + 2.0 * HOUR);
        expected.add(2.0, 1.0, START + HOUR);
        expected.add(3.0, 1.0, START + HOUR);
        expected.add(1.0, 1.0, START);
        h1.merge(&h2);
        assert!(h1.same_as(&expected));
    }
}
