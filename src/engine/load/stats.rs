//! The load generator's aggregates: per-second windows (counters and HDR histograms), folded
//! into the run's totals and into an interval the experiment takes once per tick. Nothing is
//! kept per request, so memory stays flat however long a run lasts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly (µs): one hour. Larger values are clamped to it.
const MAX_US: u64 = 3_600_000_000;

/// An HDR histogram of microseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    pub fn new() -> Self {
        // Bounds are constants within hdrhistogram's limits; construction cannot fail.
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US);
        self.0.saturating_record(us);
    }

    pub fn add(&mut self, other: &Hist) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0..1) in milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q) as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.max() as f64 / 1000.0)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.mean() / 1000.0)
    }

    pub fn stdev_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.stdev() / 1000.0)
    }

    /// How many values are at least `ms` milliseconds.
    pub fn count_at_least_ms(&self, ms: f64) -> u64 {
        let us = (ms * 1000.0).max(1.0) as u64;
        if self.0.is_empty() || us > self.0.max() {
            return 0;
        }
        self.0.count_between(us, self.0.max())
    }

    /// The percentiles a summary prints.
    pub fn summary(&self) -> Percentiles {
        let q = |x| self.quantile_ms(x);
        Percentiles {
            count: self.len(),
            min_ms: (!self.0.is_empty()).then(|| self.0.min() as f64 / 1000.0),
            mean_ms: self.mean_ms(),
            stdev_ms: self.stdev_ms(),
            p50_ms: q(0.50),
            p75_ms: q(0.75),
            p90_ms: q(0.90),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: self.max_ms(),
        }
    }
}

/// Latency percentiles in milliseconds (`None` when nothing was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Percentiles {
    pub count: u64,
    pub min_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub stdev_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p75_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Counters of one window (a second, a tick, a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Counts {
    /// Requests written to a connection.
    pub sent: u64,
    /// Responses received (any status).
    pub responses: u64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub status: [u64; 5],
    /// Connection or protocol errors (refused, reset, malformed answer).
    pub errors: u64,
    /// No complete answer within the timeout.
    pub timeouts: u64,
    /// Sent late because every connection was busy when it fell due (the concurrency cap was
    /// reached): it waited for a connection, or for the requests queued before it.
    pub late: u64,
    /// Never sent: every connection stayed busy until the request was a timeout behind schedule.
    pub dropped: u64,
    /// Still in flight when the run was stopped.
    pub cancelled: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.responses += o.responses;
        for (a, b) in self.status.iter_mut().zip(o.status) {
            *a += b;
        }
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.late += o.late;
        self.dropped += o.dropped;
        self.cancelled += o.cancelled;
    }

    /// Failed requests, as the seed counted them: errors, timeouts and answers with status >= 400.
    pub fn failed(&self) -> u64 {
        self.errors + self.timeouts + self.status[3] + self.status[4]
    }

    /// Answers with status < 400.
    pub fn ok(&self) -> u64 {
        self.status[0] + self.status[1] + self.status[2]
    }
}

/// Counters and histograms together.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    pub counts: Counts,
    /// From each request's scheduled send time to its complete answer (coordinated-omission free).
    pub latency: Hist,
    /// From the actual send to the complete answer.
    pub service: Hist,
    /// Whole seconds folded in.
    pub seconds: u64,
    /// Requests the schedule asked for over those seconds.
    pub target: f64,
}

impl Aggregate {
    pub fn add(&mut self, o: &Aggregate) {
        self.counts.add(&o.counts);
        self.latency.add(&o.latency);
        self.service.add(&o.service);
        self.seconds += o.seconds;
        self.target += o.target;
    }

    fn reset(&mut self) {
        self.counts = Counts::default();
        self.latency.reset();
        self.service.reset();
        self.seconds = 0;
        self.target = 0.0;
    }
}

/// One closed second of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondReport {
    /// Seconds since the start of the run (this window is `[second, second + 1)`).
    pub second: u64,
    /// Length of the window in seconds: 1, less for the last second of a run.
    pub span_s: f64,
    /// Requests per second the schedule asked for in this second (`None`: closed loop).
    pub target_rps: Option<f64>,
    pub counts: Counts,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests in flight when the second was closed.
    pub in_flight: u64,
}

impl SecondReport {
    /// The live line of `scaletui load` and the tasks panel.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), fmt_ms);
        let target = self.target_rps.map_or("max".to_string(), |t| format!("{t:.0}"));
        let c = &self.counts;
        let mut s = format!(
            "t={:>4}s  target {target} rps  sent {}  answered {}/s  p50 {}  p95 {}  p99 {}  errors {}",
            self.second + 1,
            c.sent,
            c.responses,
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.p99_ms),
            c.failed(),
        );
        if c.timeouts > 0 {
            s.push_str(&format!(" (timeouts {})", c.timeouts));
        }
        if c.late > 0 || c.dropped > 0 {
            s.push_str(&format!("  late {}  dropped {}", c.late, c.dropped));
        }
        s.push_str(&format!("  in-flight {}", self.in_flight));
        s
    }
}

/// Milliseconds with a precision that suits the size.
pub fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}ms")
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}

/// What the experiment records per tick: the seconds closed since the last take.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IntervalFigures {
    pub seconds: u64,
    pub target_rps: Option<f64>,
    pub achieved_rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
    pub late: u64,
}

/// Aggregates shared by the generator's tasks: open per-second windows, the interval since the
/// experiment last took it, and the run's totals.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    /// Open seconds, oldest first, contiguous.
    open: VecDeque<(u64, Aggregate)>,
    /// Closed windows kept for reuse (their histograms are allocated once).
    spare: Vec<Aggregate>,
    interval: Aggregate,
    pub total: Aggregate,
    closed_through: Option<u64>,
}

impl Stats {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            open: VecDeque::new(),
            spare: Vec::new(),
            interval: Aggregate::default(),
            total: Aggregate::default(),
            closed_through: None,
        }
    }

    /// The window of the second that `at` falls in (an already closed second goes to the oldest
    /// open one).
    pub fn window(&mut self, at: Instant) -> &mut Aggregate {
        let mut sec = at.saturating_duration_since(self.start).as_secs();
        if let Some(c) = self.closed_through {
            sec = sec.max(c + 1);
        }
        let first = match self.open.front() {
            Some((s, _)) => *s,
            None => {
                let w = self.spare.pop().unwrap_or_default();
                self.open.push_back((sec, w));
                sec
            }
        };
        let sec = sec.max(first);
        while self.open.back().is_some_and(|(s, _)| *s < sec) {
            let next = self.open.back().map_or(sec, |(s, _)| s + 1);
            let w = self.spare.pop().unwrap_or_default();
            self.open.push_back((next, w));
        }
        let idx = (sec - first) as usize;
        &mut self.open[idx].1
    }

    /// Close every second before `upto` (seconds since the start); `target(k)` is the count the
    /// schedule asked for in second k. Returns the closed seconds in order.
    pub fn close_until(&mut self, upto: u64, target: impl Fn(u64) -> Option<f64>) -> Vec<(u64, Aggregate)> {
        let mut out = Vec::new();
        let from = self.closed_through.map_or(0, |c| c + 1);
        for sec in from..upto {
            let mut w = match self.open.front() {
                Some((s, _)) if *s == sec => self.open.pop_front().map(|(_, w)| w).unwrap_or_default(),
                _ => self.spare.pop().unwrap_or_default(),
            };
            w.seconds = 1;
            w.target = target(sec).unwrap_or(0.0);
            self.interval.add(&w);
            self.total.add(&w);
            out.push((sec, w));
            self.closed_through = Some(sec);
        }
        out
    }

    /// Give closed windows back for reuse.
    pub fn recycle(&mut self, mut w: Aggregate) {
        if self.spare.len() < 4 {
            w.reset();
            self.spare.push(w);
        }
    }

    /// The seconds closed since the last call (and start a new interval).
    pub fn take_interval(&mut self) -> Aggregate {
        std::mem::take(&mut self.interval)
    }
}

impl IntervalFigures {
    /// Rates and percentiles of an interval (`closed_loop`: no target).
    pub fn of(a: &Aggregate, closed_loop: bool) -> Self {
        let secs = a.seconds as f64;
        Self {
            seconds: a.seconds,
            target_rps: (a.seconds > 0 && !closed_loop).then(|| a.target / secs),
            achieved_rps: (a.seconds > 0).then(|| a.counts.responses as f64 / secs),
            p50_ms: a.latency.quantile_ms(0.50),
            p95_ms: a.latency.quantile_ms(0.95),
            p99_ms: a.latency.quantile_ms(0.99),
            errors: a.counts.failed(),
            late: a.counts.late,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_close_in_order_and_fold_into_totals() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        s.window(t0 + Duration::from_millis(100)).counts.sent += 1;
        s.window(t0 + Duration::from_millis(2500)).counts.sent += 3;
        s.window(t0 + Duration::from_millis(900)).latency.record(Duration::from_millis(7));
        let closed = s.close_until(2, |k| Some(10.0 + k as f64));
        assert_eq!(closed.iter().map(|(k, w)| (*k, w.counts.sent)).collect::<Vec<_>>(), vec![(0, 1), (1, 0)]);
        // A late record for a closed second lands in the next open one.
        s.window(t0 + Duration::from_millis(500)).counts.sent += 5;
        let closed = s.close_until(3, |_| Some(10.0));
        assert_eq!(closed[0].1.counts.sent, 8);
        assert_eq!(s.total.counts.sent, 9);
        assert_eq!(s.total.seconds, 3);
        let f = IntervalFigures::of(&s.take_interval(), false);
        assert_eq!(f.seconds, 3);
        assert_eq!(f.target_rps, Some(31.0 / 3.0));
        assert!((f.p50_ms.expect("p50") - 7.0).abs() < 0.01);
        assert_eq!(s.take_interval().seconds, 0, "taking resets the interval");
    }

    #[test]
    fn histogram_percentiles_and_counts() {
        let mut h = Hist::new();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        assert!((h.quantile_ms(0.99).expect("p99") - 99.0).abs() < 0.1);
        assert_eq!(h.count_at_least_ms(91.0), 10);
        h.record(Duration::from_secs(10_000));
        assert!(h.max_ms().expect("max") < 3_610_000.0, "clamped to an hour");
        assert_eq!(Hist::new().quantile_ms(0.5), None);
    }
}
