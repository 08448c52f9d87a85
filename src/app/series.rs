//! The charts' history: a bounded, time-indexed store of `f32` series (one shared time axis,
//! `NaN` = value unknown) with min/max pyramids, so that any window — fifteen minutes or the
//! whole retention — is drawn from about two points per column and the cost of a frame does not
//! grow with history.
//!
//! Level 0 holds every sample. Level `k` (1..) holds one entry per `4^k` consecutive samples
//! (aligned on the sample's global index) with the min and max of each series over them. A window
//! is read from the finest level with at most two entries per column, then bucketed per column
//! keeping min and max, so spikes survive any zoom.

use std::collections::VecDeque;

/// Each level aggregates `2^LEVEL_BITS` entries of the level below.
const LEVEL_BITS: u32 = 2;
/// Levels above the raw samples: the top one aggregates `4^8 = 65536` samples per entry.
const LEVELS: u32 = 8;

#[derive(Debug, Clone)]
struct Level {
    /// An entry covers `2^bits` samples.
    bits: u32,
    /// Global entry index of the front entry.
    first: u64,
    /// Time of each entry's first sample.
    t: VecDeque<f64>,
    min: Vec<VecDeque<f32>>,
    max: Vec<VecDeque<f32>>,
}

impl Level {
    fn new(bits: u32, series: usize) -> Self {
        Self {
            bits,
            first: 0,
            t: VecDeque::new(),
            min: (0..series).map(|_| VecDeque::new()).collect(),
            max: (0..series).map(|_| VecDeque::new()).collect(),
        }
    }
}

/// The bounded store. Times must not go backwards (later samples with an earlier time are
/// ignored).
#[derive(Debug, Clone)]
pub struct SeriesStore {
    retention_s: f64,
    /// Global index of `t.front()`.
    first: u64,
    t: VecDeque<f64>,
    v: Vec<VecDeque<f32>>,
    levels: Vec<Level>,
}

/// `min` that ignores `NaN` (unknown) values.
fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.min(b)
    }
}

fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.max(b)
    }
}

/// Per-column accumulator of [`SeriesStore::downsample`].
#[derive(Debug, Clone, Copy)]
struct Bucket {
    col: i64,
    min: (f64, f32),
    max: (f64, f32),
    values: bool,
    missing: bool,
}

impl Bucket {
    fn new(col: i64) -> Self {
        Self { col, min: (0.0, f32::NAN), max: (0.0, f32::NAN), values: false, missing: false }
    }

    fn add(&mut self, t: f64, lo: f32, hi: f32) {
        if lo.is_nan() && hi.is_nan() {
            self.missing = true;
            return;
        }
        if !self.values || lo < self.min.1 {
            self.min = (t, lo);
        }
        if !self.values || hi > self.max.1 {
            self.max = (t, hi);
        }
        self.values = true;
    }

    fn flush(&self, out: &mut Vec<(f64, f64)>) {
        if self.values {
            let (a, b) = if self.min.0 <= self.max.0 { (self.min, self.max) } else { (self.max, self.min) };
            out.push((a.0, f64::from(a.1)));
            if a != b {
                out.push((b.0, f64::from(b.1)));
            }
        } else if self.missing && out.last().is_some_and(|p| !p.0.is_nan()) {
            out.push((f64::NAN, f64::NAN));
        }
    }
}

impl SeriesStore {
    /// A store of `series` series keeping `retention_s` seconds; `capacity` samples are reserved
    /// up front (the expected count over the retention) so that a full store holds no slack.
    pub fn new(series: usize, retention_s: f64, capacity: usize) -> Self {
        let capacity = capacity.min(1 << 21);
        Self {
            retention_s,
            first: 0,
            t: VecDeque::with_capacity(capacity),
            v: (0..series).map(|_| VecDeque::with_capacity(capacity)).collect(),
            levels: (1..=LEVELS).map(|k| Level::new(k * LEVEL_BITS, series)).collect(),
        }
    }

    pub fn series(&self) -> usize {
        self.v.len()
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Time of the oldest and newest samples held.
    pub fn span(&self) -> Option<(f64, f64)> {
        Some((*self.t.front()?, *self.t.back()?))
    }

    /// Add a series (unknown over the samples already held); returns its index.
    pub fn add_series(&mut self) -> usize {
        let n = self.t.len();
        let mut q = VecDeque::with_capacity(self.t.capacity());
        q.extend(std::iter::repeat_n(f32::NAN, n));
        self.v.push(q);
        for l in &mut self.levels {
            let m = l.t.len();
            l.min.push(std::iter::repeat_n(f32::NAN, m).collect());
            l.max.push(std::iter::repeat_n(f32::NAN, m).collect());
        }
        self.v.len() - 1
    }

    /// Append a sample: `values[i]` for series `i` (missing or `NaN` = unknown). Returns false
    /// (and stores nothing) when `t` is earlier than the newest sample.
    pub fn push(&mut self, t: f64, values: &[f32]) -> bool {
        if !t.is_finite() || self.t.back().is_some_and(|last| t < *last) {
            return false;
        }
        let idx = self.first + self.t.len() as u64;
        self.t.push_back(t);
        for (i, q) in self.v.iter_mut().enumerate() {
            q.push_back(values.get(i).copied().unwrap_or(f32::NAN));
        }
        for l in &mut self.levels {
            let e = idx >> l.bits;
            let current = l.first + l.t.len() as u64;
            if !l.t.is_empty() && current == e + 1 {
                for (i, (mn, mx)) in l.min.iter_mut().zip(l.max.iter_mut()).enumerate() {
                    let x = values.get(i).copied().unwrap_or(f32::NAN);
                    if let (Some(a), Some(b)) = (mn.back_mut(), mx.back_mut()) {
                        *a = nan_min(*a, x);
                        *b = nan_max(*b, x);
                    }
                }
            } else {
                if l.t.is_empty() {
                    l.first = e;
                }
                l.t.push_back(t);
                for (i, (mn, mx)) in l.min.iter_mut().zip(l.max.iter_mut()).enumerate() {
                    let x = values.get(i).copied().unwrap_or(f32::NAN);
                    mn.push_back(x);
                    mx.push_back(x);
                }
            }
        }
        self.evict(t);
        true
    }

    fn evict(&mut self, newest: f64) {
        let limit = newest - self.retention_s;
        while self.t.front().is_some_and(|t| *t < limit) {
            self.t.pop_front();
            for q in &mut self.v {
                q.pop_front();
            }
            self.first += 1;
        }
        // Drop aggregate entries whose every sample is gone.
        for l in &mut self.levels {
            while !l.t.is_empty() && ((l.first + 1) << l.bits) <= self.first {
                l.t.pop_front();
                for q in l.min.iter_mut().chain(l.max.iter_mut()) {
                    q.pop_front();
                }
                l.first += 1;
            }
        }
    }

    /// The newest value of a series (`None` when unknown or out of range).
    pub fn latest(&self, series: usize) -> Option<f32> {
        self.v.get(series).and_then(|q| q.back().copied()).filter(|x| !x.is_nan())
    }

    /// Points of `series` in the window `[a, b]` for a chart `cols` columns wide: at most two per
    /// column (its min and max, in time order), `(NaN, NaN)` where values are unknown (a break
    /// in the line), plus the nearest point on each side of the window so lines reach the edges.
    /// Work is proportional to `cols`, not to the samples held or in the window.
    pub fn downsample(&self, series: usize, a: f64, b: f64, cols: usize, out: &mut Vec<(f64, f64)>) {
        out.clear();
        if series >= self.v.len() || self.t.is_empty() || !(b > a) || cols == 0 {
            return;
        }
        let budget = 2 * cols;
        let lo0 = self.t.partition_point(|t| *t < a);
        let hi0 = self.t.partition_point(|t| *t <= b);
        let width = b - a;
        let col_of = |t: f64| -> i64 {
            if t < a {
                -1
            } else if t > b {
                cols as i64
            } else {
                (((t - a) / width * cols as f64) as i64).min(cols as i64 - 1)
            }
        };
        let mut bucket: Option<Bucket> = None;
        let mut feed = |t: f64, lo: f32, hi: f32, out: &mut Vec<(f64, f64)>| {
            let c = col_of(t);
            match &mut bucket {
                Some(bk) if bk.col == c => bk.add(t, lo, hi),
                _ => {
                    if let Some(bk) = &bucket {
                        bk.flush(out);
                    }
                    let mut bk = Bucket::new(c);
                    bk.add(t, lo, hi);
                    bucket = Some(bk);
                }
            }
        };
        if hi0 - lo0 <= budget {
            let q = &self.v[series];
            let (from, to) = (lo0.saturating_sub(1), (hi0 + 1).min(self.t.len()));
            for (t, v) in self.t.range(from..to).zip(q.range(from..to)) {
                feed(*t, *v, *v, out);
            }
        } else {
            // The finest level with at most `budget` entries in the window (else the coarsest).
            let mut chosen = self.levels.len() - 1;
            let mut range = (0, 0);
            for (k, l) in self.levels.iter().enumerate() {
                let lo = l.t.partition_point(|t| *t < a);
                let hi = l.t.partition_point(|t| *t <= b);
                range = (lo, hi);
                chosen = k;
                if hi - lo <= budget {
                    break;
                }
            }
            let l = &self.levels[chosen];
            let (lo, hi) = range;
            let (from, to) = (lo.saturating_sub(1), (hi + 1).min(l.t.len()));
            let values = l.min[series].range(from..to).zip(l.max[series].range(from..to));
            for (t, (mn, mx)) in l.t.range(from..to).zip(values) {
                feed(*t, *mn, *mx, out);
            }
        }
        if let Some(bk) = &bucket {
            bk.flush(out);
        }
        if out.last().is_some_and(|p| p.0.is_nan()) {
            out.pop();
        }
    }

    /// Bytes held by the samples (for the memory benchmark's report).
    pub fn heap_bytes(&self) -> usize {
        let lvl: usize = self
            .levels
            .iter()
            .map(|l| l.t.capacity() * 8 + l.min.iter().chain(l.max.iter()).map(|q| q.capacity() * 4).sum::<usize>())
            .sum();
        self.t.capacity() * 8 + self.v.iter().map(|q| q.capacity() * 4).sum::<usize>() + lvl
    }
}

/// The y range of downsampled points (ignoring breaks).
pub fn y_range<'a>(points: impl IntoIterator<Item = &'a (f64, f64)>) -> Option<(f64, f64)> {
    points.into_iter().filter(|p| p.1.is_finite()).fold(None, |acc, p| match acc {
        None => Some((p.1, p.1)),
        Some((lo, hi)) => Some((lo.min(p.1), hi.max(p.1))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, f: impl Fn(usize) -> f32) -> SeriesStore {
        let mut s = SeriesStore::new(1, f64::INFINITY, n);
        for i in 0..n {
            assert!(s.push(i as f64, &[f(i)]));
        }
        s
    }

    #[test]
    fn small_windows_return_the_samples_themselves() {
        let s = filled(100, |i| i as f32);
        let mut out = Vec::new();
        s.downsample(0, 10.0, 20.0, 40, &mut out);
        // One sample each side of the window, then every sample in it.
        assert_eq!(out.first(), Some(&(9.0, 9.0)));
        assert_eq!(out.last(), Some(&(21.0, 21.0)));
        assert_eq!(out.len(), 13);
    }

    #[test]
    fn spikes_survive_any_zoom() {
        // One sample in 86 400 is a spike; the window holds all of them.
        let s = filled(86_400, |i| if i == 50_000 { 100.0 } else { 1.0 });
        let mut out = Vec::new();
        s.downsample(0, 0.0, 86_399.0, 100, &mut out);
        assert!(out.len() <= 2 * 100 + 4, "{} points", out.len());
        let (lo, hi) = y_range(&out).expect("points");
        assert_eq!((lo, hi), (1.0, 100.0));
        // The spike sits in the right column.
        let spike = out.iter().find(|p| p.1 == 100.0).expect("spike");
        assert!((spike.0 - 50_000.0).abs() < 86_400.0 / 100.0, "{spike:?}");
    }

    #[test]
    fn the_work_does_not_grow_with_history() {
        for n in [3_600, 86_400] {
            let s = filled(n, |i| (i % 7) as f32);
            let mut out = Vec::new();
            let end = (n - 1) as f64;
            s.downsample(0, 0.0, end, 200, &mut out);
            assert!(out.len() <= 404, "n={n}: {} points", out.len());
            s.downsample(0, end - 900.0, end, 200, &mut out);
            assert!(out.len() <= 404, "n={n}: {} points", out.len());
        }
    }

    #[test]
    fn unknown_values_break_the_line() {
        let s = filled(30, |i| if (10..15).contains(&i) { f32::NAN } else { 2.0 });
        let mut out = Vec::new();
        s.downsample(0, 0.0, 29.0, 60, &mut out);
        let breaks = out.iter().filter(|p| p.0.is_nan()).count();
        assert_eq!(breaks, 1, "{out:?}");
        assert_eq!(out.len(), 26);
    }

    #[test]
    fn retention_evicts_old_samples_and_aggregates() {
        let mut s = SeriesStore::new(1, 100.0, 128);
        for i in 0..1_000 {
            s.push(i as f64, &[i as f32]);
        }
        assert_eq!(s.span(), Some((899.0, 999.0)));
        assert_eq!(s.len(), 101);
        // The coarse levels only keep entries that still cover held samples.
        for l in &s.levels {
            assert!(((l.first + 1) << l.bits) > s.first, "level {} keeps a dead entry", l.bits);
        }
        assert_eq!(s.latest(0), Some(999.0));
    }

    #[test]
    fn series_added_later_are_unknown_before() {
        let mut s = filled(10, |_| 1.0);
        let k = s.add_series();
        s.push(10.0, &[1.0, 5.0]);
        let mut out = Vec::new();
        s.downsample(k, 0.0, 10.0, 20, &mut out);
        assert_eq!(out, vec![(10.0, 5.0)]);
        assert_eq!(s.latest(k), Some(5.0));
    }

    #[test]
    fn out_of_order_samples_are_refused() {
        let mut s = filled(5, |_| 1.0);
        assert!(!s.push(2.0, &[3.0]));
        assert!(!s.push(f64::NAN, &[3.0]));
        assert_eq!(s.len(), 5);
    }
}
