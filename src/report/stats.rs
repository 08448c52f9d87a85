//! Statistics of repeated runs: mean, standard deviation, median, a seeded percentile bootstrap
//! confidence interval of the mean, paired differences against a baseline with their interval,
//! Wilcoxon's signed-rank test (exact for small samples without ties, the normal approximation
//! with the tie correction otherwise) and Holm's correction across comparisons. The normal
//! distribution comes from `statrs`.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::engine::rng::Rng;

/// A sample's description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Described {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub median: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

/// Sample standard deviation (n − 1); 0 for one value.
pub fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return if xs.is_empty() { f64::NAN } else { 0.0 };
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The `q`-quantile by linear interpolation between order statistics (type 7, as numpy).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

pub fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The percentile bootstrap `level` interval of the mean: `resamples` resamples with
/// replacement drawn from a generator seeded with `seed`.
pub fn bootstrap_ci(xs: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    if xs.len() == 1 || resamples == 0 {
        return (xs[0].min(mean(xs)), xs[0].max(mean(xs)));
    }
    let mut rng = Rng::new(seed);
    let n = xs.len();
    let means: Vec<f64> = (0..resamples).map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64).collect();
    let a = (1.0 - level) / 2.0;
    (quantile(&means, a), quantile(&means, 1.0 - a))
}

pub fn describe(xs: &[f64], resamples: usize, seed: u64) -> Described {
    let (ci_low, ci_high) = bootstrap_ci(xs, resamples, 0.95, seed);
    Described { n: xs.len(), mean: mean(xs), sd: sd(xs), median: median(xs), ci_low, ci_high }
}

/// Wilcoxon's signed-rank test of paired differences, two-sided; `None` when every difference
/// is zero. Zero differences are dropped (Wilcoxon's treatment, scipy's default); equal
/// magnitudes get their average rank. Without ties and with at most 50 differences the p-value
/// is exact (the distribution of the rank sum counted over all sign patterns); otherwise the
/// normal approximation with the tie correction of the variance.
pub fn wilcoxon(diffs: &[f64]) -> Option<f64> {
    let d: Vec<f64> = diffs.iter().copied().filter(|x| *x != 0.0 && x.is_finite()).collect();
    let n = d.len();
    if n == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|a, b| d[*a].abs().total_cmp(&d[*b].abs()));
    let mut ranks = vec![0.0; n];
    let mut ties = false;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[idx[j + 1]].abs() == d[idx[i]].abs() {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        let t = (j - i + 1) as f64;
        if t > 1.0 {
            ties = true;
            tie_term += t * t * t - t;
        }
        i = j + 1;
    }
    let w_plus: f64 = (0..n).filter(|k| d[*k] > 0.0).map(|k| ranks[k]).sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let stat = w_plus.min(total - w_plus);
    if !ties && n <= 50 {
        // counts[s] = sign patterns whose positive ranks sum to s.
        let max = n * (n + 1) / 2;
        let mut counts = vec![0f64; max + 1];
        counts[0] = 1.0;
        for r in 1..=n {
            for s in (r..=max).rev() {
                counts[s] += counts[s - r];
            }
        }
        let all = 2f64.powi(n as i32);
        let below: f64 = counts[..=(stat.round() as usize)].iter().sum();
        return Some((2.0 * below / all).min(1.0));
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    if !(var > 0.0) {
        return Some(1.0);
    }
    let z = (stat - mean) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some((2.0 * normal.cdf(z)).min(1.0))
}

/// Holm's step-down adjustment of `p` (in the same order); `None`s stay `None` and do not count.
pub fn holm(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..p.len()).filter(|i| p[*i].is_some()).collect();
    order.sort_by(|a, b| p[*a].unwrap_or(1.0).total_cmp(&p[*b].unwrap_or(1.0)));
    let m = order.len();
    let mut out = vec![None; p.len()];
    let mut running: f64 = 0.0;
    for (k, i) in order.iter().enumerate() {
        let adj = ((m - k) as f64 * p[*i].unwrap_or(1.0)).min(1.0);
        running = running.max(adj);
        out[*i] = Some(running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_sample() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), 5.0);
        assert!((sd(&xs) - 2.138_089_935).abs() < 1e-8);
        assert_eq!(median(&xs), 4.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    }

    #[test]
    fn the_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time() {
        // 400 samples of 30 from an exponential law of mean 1 (skewed): the percentile bootstrap
        // covers the true mean in about 95 % of them (a bit less for small skewed samples).
        let mut rng = Rng::new(17);
        let reps = 400u32;
        let mut covered = 0u32;
        for k in 0..reps {
            let xs: Vec<f64> = (0..30).map(|_| rng.exponential(1.0)).collect();
            let (lo, hi) = bootstrap_ci(&xs, 1000, 0.95, u64::from(k));
            if lo <= 1.0 && 1.0 <= hi {
                covered += 1;
            }
        }
        let share = f64::from(covered) / f64::from(reps);
        assert!((0.90..=0.98).contains(&share), "covered {share}");
        // And the same seed gives the same interval.
        let xs = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(bootstrap_ci(&xs, 500, 0.95, 3), bootstrap_ci(&xs, 500, 0.95, 3));
    }

    #[test]
    fn wilcoxon_matches_published_values() {
        // Darwin's Zea mays data as differences (scipy.stats.wilcoxon's documentation, exact):
        // statistic 24, p = 0.041259765625.
        let d = [6.0, 8.0, 14.0, 16.0, 23.0, 24.0, 28.0, 29.0, 41.0, -48.0, 49.0, 56.0, 60.0, -67.0, 75.0];
        assert!((wilcoxon(&d).expect("p") - 0.041_259_765_625).abs() < 1e-12);
        // Five positive differences: the most extreme of 32 sign patterns, twice.
        assert!((wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("p") - 0.0625).abs() < 1e-12);
        // scipy 1.17.1: wilcoxon([1, -1.5, 2, -2.5]) = 0.875 (exact).
        assert!((wilcoxon(&[1.0, -1.5, 2.0, -2.5]).expect("p") - 0.875).abs() < 1e-12);
        // With ties: the normal approximation with the tie correction, as scipy's
        // method="approx" gives 0.010606166224521318.
        let tied = [1.0, 2.0, 2.0, -3.0, 4.0, 4.0, 4.0, 5.0, -1.0, 6.0, 7.0, 8.0];
        assert!((wilcoxon(&tied).expect("p") - 0.010_606_166_224_521_318).abs() < 1e-12);
        // 60 differences, no ties (beyond the exact table): scipy's normal approximation,
        // statistic 585, p = 0.015126799117971637.
        let big = [
            0.646, 1.122, 0.63, -1.003, 1.205, 0.746, -0.237, 0.881, 0.665, 0.594, 0.328, 0.847, -0.436, 0.137, -0.182,
            0.899, 0.34, 0.008, -0.482, 0.043, 0.308, 0.024, 1.594, 1.307, -2.411, -1.589, 0.125, -0.122, 0.514, 0.517,
            2.418, -0.812, -0.078, 2.343, 0.947, 0.963, -0.214, -1.348, 0.467, 0.409, -0.927, -0.383, 0.228, -0.645,
            0.202, 0.395, 0.336, -0.206, 0.894, 1.191, 0.621, -0.518, 1.032, -0.201, 1.179, -0.772, 1.214, 0.28,
            -0.949, -0.014,
        ];
        assert!((wilcoxon(&big).expect("p") - 0.015_126_799_117_971_637).abs() < 1e-9);
        assert_eq!(wilcoxon(&[0.0, 0.0]), None);
    }

    #[test]
    fn holm_steps_down() {
        let adj = holm(&[Some(0.01), Some(0.04), None, Some(0.03)]);
        assert_eq!(adj[2], None);
        assert!((adj[0].expect("a") - 0.03).abs() < 1e-12);
        assert!((adj[3].expect("b") - 0.06).abs() < 1e-12);
        assert!((adj[1].expect("c") - 0.06).abs() < 1e-12, "monotone: {adj:?}");
    }
}
