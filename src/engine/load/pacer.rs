//! Send times of an open-loop run: request number `n` (counting from 1) is due when the
//! schedule's integral reaches `n`. [`Pacer`] walks them in order in O(1) per request for the
//! piecewise schedules (constant, ramp, step, trace: closed forms per segment) and by bisection
//! for the sine ([`Schedule::time_of_count`]). Never `rate(now) × elapsed`: during a ramp that
//! sends about twice the intended count.

use super::Schedule;

/// Walks the due times of one schedule, limited to `[0, limit_s]`.
#[derive(Debug, Clone)]
pub struct Pacer {
    schedule: Schedule,
    limit_s: f64,
    /// The number of the next request to hand out (from 1).
    next: u64,
    /// Hand out every `stride`-th request (one share of a run split across threads).
    stride: u64,
    /// The last due time (lower bound for the next).
    last_t: f64,
    cursor: Cursor,
}

/// Piecewise-constant schedules (step, trace): the current segment, its start and the count due
/// before it.
#[derive(Debug, Clone, Default)]
struct Cursor {
    seg: usize,
    seg_start: f64,
    seg_count: f64,
}

/// Rounding slack on counts: the n-th request is due when the integral reaches `n − EPS`.
const EPS: f64 = 1e-9;

impl Pacer {
    /// `limit_s`: stop at this time even if the schedule goes on (`f64::INFINITY`: its end).
    pub fn new(schedule: Schedule, limit_s: f64) -> Self {
        Self { schedule, limit_s, next: 1, stride: 1, last_t: 0.0, cursor: Cursor::default() }
    }

    /// Share `k` of `of` (0-based): requests k+1, k+1+of, k+1+2·of, …
    pub fn share(mut self, k: u64, of: u64) -> Self {
        self.stride = of.max(1);
        self.next = k.min(self.stride - 1) + 1;
        self
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The end of the run: the schedule's duration or the limit, whichever is first.
    pub fn end_s(&self) -> f64 {
        self.schedule.duration().min(self.limit_s)
    }

    /// Requests due over the whole run (infinite for an endless schedule).
    pub fn total(&self) -> f64 {
        self.schedule.integral(self.end_s())
    }

    /// Seconds after the start at which this share's next request is due, or `None` past the end.
    pub fn next_due(&mut self) -> Option<f64> {
        let n = self.next;
        let t = self.time_of(n as f64)?;
        if t > self.end_s() + 1e-9 {
            return None;
        }
        self.next = n + self.stride;
        self.last_t = t;
        Some(t)
    }

    /// Skip this share's requests due by `t` (they are dropped); returns how many were skipped.
    pub fn skip_until(&mut self, t: f64) -> u64 {
        let t = t.min(self.end_s());
        let due = (self.schedule.integral(t) + EPS).floor();
        if !due.is_finite() || due < self.next as f64 {
            return 0;
        }
        let skipped = (due as u64 - self.next) / self.stride + 1;
        self.next += skipped * self.stride;
        self.last_t = self.last_t.max(t);
        skipped
    }

    fn time_of(&mut self, n: f64) -> Option<f64> {
        let target = n - EPS;
        let cursor = &mut self.cursor;
        match &self.schedule {
            Schedule::Constant { rps, duration_s } => {
                if !(*rps > 0.0) {
                    return None;
                }
                let t = n / rps;
                (t <= duration_s + 1e-9).then_some(t.min(*duration_s))
            }
            Schedule::Ramp { start_rps, end_rps, ramp_s, hold_s } => {
                let (a, b, r) = (*start_rps, *end_rps, *ramp_s);
                let ramp_area = 0.5 * (a + b) * r;
                if target <= ramp_area && r > 0.0 {
                    // a·t + ½·k·t² = n  →  t = 2n / (a + √(a² + 2kn)), stable for k of either sign.
                    let k = (b - a) / r;
                    let disc = (a * a + 2.0 * k * n).max(0.0);
                    let denom = a + disc.sqrt();
                    if denom <= 0.0 {
                        return None;
                    }
                    Some((2.0 * n / denom).min(r))
                } else if b > 0.0 {
                    let t = r + (n - ramp_area) / b;
                    (t <= r + hold_s + 1e-9).then_some(t.min(r + hold_s))
                } else {
                    None
                }
            }
            Schedule::Step { levels } => cursor.solve(target, n, |i| levels.get(i).map(|l| (l.rps, l.duration_s))),
            Schedule::Trace { values, step_s } => cursor.solve(target, n, |i| values.get(i).map(|v| (*v, *step_s))),
            Schedule::Sine { .. } => self.schedule.time_of_count(n, self.last_t),
            Schedule::Timestamps { times } => times.get(n as usize - 1).copied(),
        }
    }
}

impl Cursor {
    /// Constant-rate segments one after another: advance to the segment where the count reaches
    /// `n`, then solve within it.
    fn solve(&mut self, target: f64, n: f64, seg: impl Fn(usize) -> Option<(f64, f64)>) -> Option<f64> {
        loop {
            let (rate, dur) = seg(self.seg)?;
            let end_count = self.seg_count + rate * dur;
            if rate > 0.0 && end_count >= target {
                let t = self.seg_start + ((n - self.seg_count) / rate).max(0.0);
                return Some(t.min(self.seg_start + dur));
            }
            self.seg += 1;
            self.seg_start += dur;
            self.seg_count = end_count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::load::Level;

    fn all_due(s: Schedule, limit: f64) -> Vec<f64> {
        let mut p = Pacer::new(s, limit);
        std::iter::from_fn(|| p.next_due()).collect()
    }

    #[test]
    fn counts_are_the_integral() {
        assert_eq!(all_due(Schedule::Constant { rps: 2000.0, duration_s: 10.0 }, f64::INFINITY).len(), 20_000);
        let ramp = Schedule::Ramp { start_rps: 100.0, end_rps: 1100.0, ramp_s: 10.0, hold_s: 0.0 };
        assert_eq!(all_due(ramp, f64::INFINITY).len(), 6_000);
        // The seed's ramp: 10→150 over 120 s is 9,600 requests, not 18,000.
        let ramp = Schedule::Ramp { start_rps: 10.0, end_rps: 150.0, ramp_s: 120.0, hold_s: 0.0 };
        assert_eq!(all_due(ramp, f64::INFINITY).len(), 9_600);
        // A limit cuts the run short.
        assert_eq!(all_due(Schedule::Constant { rps: 100.0, duration_s: 10.0 }, 2.5).len(), 250);
        assert!(all_due(Schedule::Constant { rps: 0.0, duration_s: 10.0 }, f64::INFINITY).is_empty());
    }

    #[test]
    fn due_times_match_the_schedules_inverse() {
        let cases = vec![
            Schedule::Constant { rps: 7.5, duration_s: 40.0 },
            Schedule::Ramp { start_rps: 10.0, end_rps: 150.0, ramp_s: 12.0, hold_s: 5.0 },
            Schedule::Ramp { start_rps: 150.0, end_rps: 0.0, ramp_s: 10.0, hold_s: 5.0 },
            Schedule::Ramp { start_rps: 0.0, end_rps: 50.0, ramp_s: 10.0, hold_s: 3.0 },
            Schedule::Step {
                levels: vec![
                    Level { rps: 10.0, duration_s: 3.0 },
                    Level { rps: 0.0, duration_s: 2.0 },
                    Level { rps: 40.0, duration_s: 4.0 },
                ],
            },
            Schedule::Sine { min_rps: 5.0, max_rps: 60.0, period_s: 8.0, duration_s: 20.0 },
            Schedule::Trace { values: vec![3.0, 0.0, 0.5, 25.0, 9.0], step_s: 2.0 },
        ];
        for s in cases {
            let due = all_due(s.clone(), f64::INFINITY);
            assert_eq!(due.len() as f64, (s.total() + 1e-9).floor(), "{s:?}");
            let mut prev = 0.0;
            for (i, t) in due.iter().enumerate() {
                let n = (i + 1) as f64;
                assert!(*t >= prev - 1e-9, "{s:?}: monotone at {n}");
                assert!((s.integral(*t) - n).abs() < 1e-5, "{s:?}: request {n} at {t}: {}", s.integral(*t));
                prev = *t;
            }
        }
    }

    #[test]
    fn shares_split_a_run_exactly() {
        let s = Schedule::Ramp { start_rps: 100.0, end_rps: 1100.0, ramp_s: 10.0, hold_s: 0.0 };
        let whole = all_due(s.clone(), f64::INFINITY);
        let mut parts: Vec<f64> = (0..3)
            .flat_map(|k| {
                let mut p = Pacer::new(s.clone(), f64::INFINITY).share(k, 3);
                std::iter::from_fn(move || p.next_due()).collect::<Vec<_>>()
            })
            .collect();
        parts.sort_by(f64::total_cmp);
        assert_eq!(parts, whole);
        let mut p = Pacer::new(Schedule::Constant { rps: 10.0, duration_s: 10.0 }, f64::INFINITY).share(1, 2);
        assert_eq!(p.next_due(), Some(0.2));
        assert_eq!(p.skip_until(1.05), 4, "requests 4, 6, 8 and 10 of share 1");
        assert_eq!(p.next_due(), Some(1.2));
    }

    #[test]
    fn skipping_drops_what_was_due() {
        let mut p = Pacer::new(Schedule::Constant { rps: 100.0, duration_s: 10.0 }, f64::INFINITY);
        assert_eq!(p.next_due(), Some(0.01));
        assert_eq!(p.skip_until(2.0), 199);
        let next = p.next_due().expect("more");
        assert!((next - 2.01).abs() < 1e-9, "{next}");
        assert_eq!(p.skip_until(1.0), 0, "never backwards");
        assert_eq!(p.skip_until(100.0), 799);
        assert_eq!(p.next_due(), None);
    }
}
