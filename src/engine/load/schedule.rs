//! Rate schedules: requests per second over time, their integral (how many requests by time t)
//! and its inverse (when the n-th request is due). Pure; the simulator consumes them directly and
//! the HTTP load generator paces requests with [`Schedule::time_of_count`].

use std::f64::consts::PI;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The numbers of a data file: separated by whitespace or commas, `#` starts a comment; each
/// must be finite and pass `ok` (an error names the first that is not `what`).
pub fn numbers(text: &str, what: &str, ok: impl Fn(f64) -> bool) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for (i, tok) in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        match tok.parse::<f64>() {
            Ok(v) if v.is_finite() && ok(v) => out.push(v),
            _ => return Err(format!("value {} ({tok:?}) is not {what}", i + 1)),
        }
    }
    Ok(out)
}

/// One step of a [`Schedule::Step`] pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub rps: f64,
    pub duration_s: f64,
}

/// A rate schedule starting at t = 0. Outside `[0, duration)` the rate is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pattern", rename_all = "lowercase")]
pub enum Schedule {
    /// A constant rate. `duration_s` may be infinite (until stopped).
    Constant { rps: f64, duration_s: f64 },
    /// A linear ramp from `start_rps` to `end_rps` over `ramp_s`, then `end_rps` for `hold_s`.
    Ramp { start_rps: f64, end_rps: f64, ramp_s: f64, hold_s: f64 },
    /// Constant levels one after another.
    Step { levels: Vec<Level> },
    /// `min..max` as a sine of period `period_s`, starting at `min` (phase −π/2).
    Sine { min_rps: f64, max_rps: f64, period_s: f64, duration_s: f64 },
    /// A recorded trace: one rate per `step_s` seconds.
    Trace { values: Vec<f64>, step_s: f64 },
    /// A trace of request send times (seconds after the start, ascending): each request is
    /// replayed at its time.
    Timestamps { times: Vec<f64> },
}

impl Schedule {
    /// Equal steps from `start` to `end` (`steps` levels) over `ramp_s`, then `end` for `hold_s`.
    pub fn steps_between(start: f64, end: f64, steps: u32, ramp_s: f64, hold_s: f64) -> Self {
        let n = steps.max(1);
        let mut levels: Vec<Level> = (0..n)
            .map(|i| {
                let frac = if n == 1 { 1.0 } else { f64::from(i) / f64::from(n - 1) };
                Level { rps: start + (end - start) * frac, duration_s: ramp_s / f64::from(n) }
            })
            .collect();
        if hold_s > 0.0 {
            levels.push(Level { rps: end, duration_s: hold_s });
        }
        Schedule::Step { levels }
    }

    /// Read a trace file: requests-per-second values separated by whitespace (or commas).
    pub fn trace_file(path: &Path, step_s: f64) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse_trace(&text, step_s).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse_trace(text: &str, step_s: f64) -> Result<Self, String> {
        let values = numbers(text, "a rate >= 0", |v| v >= 0.0)?;
        if values.is_empty() {
            return Err("the trace holds no values".into());
        }
        if !(step_s > 0.0) {
            return Err("trace step must be positive".into());
        }
        Ok(Schedule::Trace { values, step_s })
    }

    /// Read a trace of request times: one number (seconds) per line or separated by whitespace or
    /// commas, in any order; shifted so the earliest request is at 0.
    pub fn timestamps_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse_timestamps(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse_timestamps(text: &str) -> Result<Self, String> {
        Self::timestamps(numbers(text, "a time in seconds", |_| true)?)
    }

    /// Request times shifted so the earliest is at 0, sorted.
    pub fn timestamps(mut times: Vec<f64>) -> Result<Self, String> {
        if times.is_empty() {
            return Err("the trace holds no request times".into());
        }
        if times.iter().any(|t| !t.is_finite()) {
            return Err("request times must be finite numbers".into());
        }
        times.sort_by(f64::total_cmp);
        let first = times[0];
        times.iter_mut().for_each(|t| *t -= first);
        Ok(Schedule::Timestamps { times })
    }

    /// Check the parameters: finite, non-negative rates and durations.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match self {
            Schedule::Constant { rps, duration_s } => {
                if !ok(*rps) || duration_s.is_nan() || *duration_s < 0.0 {
                    return Err("constant: rps and duration must be >= 0".into());
                }
            }
            Schedule::Ramp { start_rps, end_rps, ramp_s, hold_s } => {
                if ![*start_rps, *end_rps, *ramp_s, *hold_s].into_iter().all(ok) {
                    return Err("ramp: rates and durations must be >= 0".into());
                }
            }
            Schedule::Step { levels } => {
                if levels.is_empty() || !levels.iter().all(|l| ok(l.rps) && ok(l.duration_s)) {
                    return Err("step: needs levels with rps and duration >= 0".into());
                }
            }
            Schedule::Sine { min_rps, max_rps, period_s, duration_s } => {
                if ![*min_rps, *max_rps].into_iter().all(ok)
                    || min_rps > max_rps
                    || !(*period_s > 0.0)
                    || !(*duration_s >= 0.0)
                {
                    return Err("sine: needs 0 <= min <= max, period > 0, duration >= 0".into());
                }
            }
            Schedule::Trace { values, step_s } => {
                if values.is_empty() || !values.iter().all(|v| ok(*v)) || !(*step_s > 0.0) {
                    return Err("trace: needs values >= 0 and a positive step".into());
                }
            }
            Schedule::Timestamps { times } => {
                if times.is_empty() || !times.iter().all(|t| ok(*t)) || !times.is_sorted() {
                    return Err("timestamps: needs ascending times >= 0".into());
                }
            }
        }
        Ok(())
    }

    pub fn duration(&self) -> f64 {
        match self {
            Schedule::Constant { duration_s, .. } => *duration_s,
            Schedule::Ramp { ramp_s, hold_s, .. } => ramp_s + hold_s,
            Schedule::Step { levels } => levels.iter().map(|l| l.duration_s).sum(),
            Schedule::Sine { duration_s, .. } => *duration_s,
            Schedule::Trace { values, step_s } => values.len() as f64 * step_s,
            Schedule::Timestamps { times } => times.last().copied().unwrap_or(0.0),
        }
    }

    /// Lower and upper bounds of the rate over `[t0, t1)` (the thinning bound of the simulator's
    /// Poisson arrivals; equal bounds mean the rate is constant there).
    pub fn rate_bounds(&self, t0: f64, t1: f64) -> (f64, f64) {
        let end = self.duration();
        let (t0, t1) = (t0.max(0.0), t1.min(end));
        if !(t1 > t0) {
            return (0.0, 0.0);
        }
        let minmax = |it: &mut dyn Iterator<Item = f64>| {
            it.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        match self {
            Schedule::Constant { rps, .. } => (*rps, *rps),
            Schedule::Ramp { start_rps, end_rps, ramp_s, .. } => {
                let at = |t: f64| if t < *ramp_s { start_rps + (end_rps - start_rps) * t / ramp_s } else { *end_rps };
                let (a, b) = (at(t0), at(t1.min(*ramp_s).max(t0)));
                let (c, d) = (at(t1), if t1 > *ramp_s { *end_rps } else { b });
                minmax(&mut [a, b, c, d].into_iter())
            }
            Schedule::Step { levels } => {
                let mut start = 0.0;
                let mut vals = Vec::new();
                for l in levels {
                    let e = start + l.duration_s;
                    if e > t0 && start < t1 {
                        vals.push(l.rps);
                    }
                    start = e;
                }
                if vals.is_empty() { (0.0, 0.0) } else { minmax(&mut vals.into_iter()) }
            }
            Schedule::Sine { min_rps, max_rps, period_s, .. } => {
                let (a, b) = (self.rate(t0), self.rate(t1.min(end - 1e-12).max(t0)));
                let (mut lo, mut hi) = (a.min(b), a.max(b));
                // Extremes inside: maxima at period/2 + k·period, minima at k·period.
                let k_max = ((t0 - period_s / 2.0) / period_s).ceil();
                if period_s / 2.0 + k_max * period_s < t1 {
                    hi = *max_rps;
                }
                if (t0 / period_s).ceil() * period_s < t1 {
                    lo = *min_rps;
                }
                (lo, hi)
            }
            Schedule::Trace { values, step_s } => {
                let i0 = (t0 / step_s) as usize;
                let i1 = ((t1 / step_s).ceil() as usize).max(i0 + 1).min(values.len());
                minmax(&mut values[i0.min(values.len())..i1].iter().copied())
            }
            Schedule::Timestamps { .. } => (0.0, f64::INFINITY),
        }
    }

    /// Requests per second at `t` seconds after the start.
    pub fn rate(&self, t: f64) -> f64 {
        if let Schedule::Timestamps { times } = self {
            // The requests of the second around `t`.
            let (a, b) = (t.floor(), t.floor() + 1.0);
            return (times.partition_point(|x| *x < b) - times.partition_point(|x| *x < a)) as f64;
        }
        if !(t >= 0.0) || t >= self.duration() {
            return 0.0;
        }
        match self {
            Schedule::Constant { rps, .. } => *rps,
            Schedule::Ramp { start_rps, end_rps, ramp_s, .. } => {
                if t < *ramp_s {
                    start_rps + (end_rps - start_rps) * t / ramp_s
                } else {
                    *end_rps
                }
            }
            Schedule::Step { levels } => {
                let mut start = 0.0;
                for l in levels {
                    if t < start + l.duration_s {
                        return l.rps;
                    }
                    start += l.duration_s;
                }
                0.0
            }
            Schedule::Sine { min_rps, max_rps, period_s, .. } => {
                let mid = (min_rps + max_rps) / 2.0;
                let amp = (max_rps - min_rps) / 2.0;
                mid + amp * (2.0 * PI * t / period_s - PI / 2.0).sin()
            }
            Schedule::Trace { values, step_s } => {
                let i = (t / step_s) as usize;
                values.get(i).copied().unwrap_or(0.0)
            }
            Schedule::Timestamps { .. } => 0.0,
        }
    }

    /// Requests due in `[0, t]`: the integral of the rate.
    pub fn integral(&self, t: f64) -> f64 {
        if let Schedule::Timestamps { times } = self {
            return times.partition_point(|x| *x <= t) as f64;
        }
        let t = t.clamp(0.0, self.duration());
        if t <= 0.0 {
            return 0.0;
        }
        match self {
            Schedule::Constant { rps, .. } => rps * t,
            Schedule::Ramp { start_rps, end_rps, ramp_s, .. } => {
                if t <= *ramp_s {
                    let slope = (end_rps - start_rps) / ramp_s;
                    start_rps * t + 0.5 * slope * t * t
                } else {
                    0.5 * (start_rps + end_rps) * ramp_s + end_rps * (t - ramp_s)
                }
            }
            Schedule::Step { levels } => {
                let mut start = 0.0;
                let mut sum = 0.0;
                for l in levels {
                    let end = start + l.duration_s;
                    if t <= end {
                        return sum + l.rps * (t - start);
                    }
                    sum += l.rps * l.duration_s;
                    start = end;
                }
                sum
            }
            Schedule::Sine { min_rps, max_rps, period_s, .. } => {
                let mid = (min_rps + max_rps) / 2.0;
                let amp = (max_rps - min_rps) / 2.0;
                let w = 2.0 * PI / period_s;
                // ∫ sin(wt − π/2) = −cos(wt − π/2)/w
                mid * t - amp / w * ((w * t - PI / 2.0).cos() - (-PI / 2.0f64).cos())
            }
            Schedule::Trace { values, step_s } => {
                let full = (t / step_s) as usize;
                let whole: f64 = values.iter().take(full).sum::<f64>() * step_s;
                let part = values.get(full).map_or(0.0, |v| v * (t - full as f64 * step_s));
                whole + part
            }
            Schedule::Timestamps { .. } => 0.0,
        }
    }

    /// Total requests over the whole schedule (infinite for an endless constant).
    pub fn total(&self) -> f64 {
        self.integral(self.duration())
    }

    /// When the cumulative count first reaches `n` (the send time of request number `n`, counting
    /// from 1 and placing each request at the end of its share), or `None` past the end.
    /// `after` is a lower bound (e.g. the previous request's time) that speeds up the search.
    pub fn time_of_count(&self, n: f64, after: f64) -> Option<f64> {
        let dur = self.duration();
        if n <= 0.0 {
            return Some(0.0);
        }
        if let Schedule::Timestamps { times } = self {
            return times.get((n.ceil() as usize).max(1) - 1).copied();
        }
        let mut lo = after.clamp(0.0, dur.min(f64::MAX));
        if self.integral(lo) >= n {
            lo = 0.0;
        }
        // Find an upper bound.
        let mut step = 1.0;
        let mut hi = lo + step;
        loop {
            if hi >= dur {
                hi = dur;
                if self.integral(hi) < n - 1e-9 {
                    return None;
                }
                break;
            }
            if self.integral(hi) >= n {
                break;
            }
            lo = hi;
            step *= 2.0;
            hi = lo + step;
        }
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if self.integral(mid) >= n {
                hi = mid;
            } else {
                lo = mid;
            }
            if hi - lo < 1e-7 {
                break;
            }
        }
        Some(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn ramp_integral_is_the_area_not_rate_times_time() {
        // Seed bug: rate(now) × elapsed; 10→150 over 120 s "expects" 18,000 by the ramp's end.
        let s = Schedule::Ramp { start_rps: 10.0, end_rps: 150.0, ramp_s: 120.0, hold_s: 180.0 };
        assert!(close(s.integral(120.0), 9_600.0));
        assert!(close(s.integral(300.0), 9_600.0 + 150.0 * 180.0));
        let s = Schedule::Ramp { start_rps: 100.0, end_rps: 1100.0, ramp_s: 10.0, hold_s: 0.0 };
        assert!(close(s.total(), 6_000.0));
        assert_eq!(s.rate(5.0), 600.0);
    }

    #[test]
    fn integrals_match_numeric_sums() {
        let cases = vec![
            Schedule::Constant { rps: 7.0, duration_s: 50.0 },
            Schedule::Ramp { start_rps: 150.0, end_rps: 10.0, ramp_s: 40.0, hold_s: 10.0 },
            Schedule::steps_between(10.0, 100.0, 4, 40.0, 20.0),
            Schedule::Sine { min_rps: 20.0, max_rps: 140.0, period_s: 30.0, duration_s: 75.0 },
            Schedule::Trace { values: vec![1.0, 5.0, 0.0, 9.0], step_s: 1.0 },
        ];
        for s in cases {
            let dt = 1e-3;
            let mut sum = 0.0;
            let mut t = 0.0;
            while t < s.duration() {
                sum += s.rate(t + dt / 2.0) * dt;
                t += dt;
            }
            assert!((sum - s.total()).abs() < 0.05, "{s:?}: {sum} vs {}", s.total());
        }
    }

    #[test]
    fn sine_starts_at_min_and_peaks_at_half_period() {
        let s = Schedule::Sine { min_rps: 10.0, max_rps: 110.0, period_s: 100.0, duration_s: 1000.0 };
        assert!(close(s.rate(0.0), 10.0));
        assert!(close(s.rate(50.0), 110.0));
        assert!(close(s.integral(100.0), 6_000.0));
    }

    #[test]
    fn time_of_count_inverts_the_integral() {
        let s = Schedule::Ramp { start_rps: 0.0, end_rps: 100.0, ramp_s: 10.0, hold_s: 5.0 };
        let mut prev = 0.0;
        for n in 1..=1000 {
            let t = s.time_of_count(f64::from(n), prev).expect("within schedule");
            assert!(t >= prev);
            assert!((s.integral(t) - f64::from(n)).abs() < 1e-3);
            prev = t;
        }
        assert_eq!(s.time_of_count(s.total() + 1.0, 0.0), None);
    }

    #[test]
    fn rate_bounds_hold_the_rate() {
        let cases = vec![
            Schedule::Constant { rps: 7.0, duration_s: 50.0 },
            Schedule::Ramp { start_rps: 150.0, end_rps: 10.0, ramp_s: 40.0, hold_s: 10.0 },
            Schedule::Ramp { start_rps: 0.0, end_rps: 90.0, ramp_s: 30.5, hold_s: 10.0 },
            Schedule::steps_between(10.0, 100.0, 4, 40.0, 20.0),
            Schedule::Sine { min_rps: 20.0, max_rps: 140.0, period_s: 30.0, duration_s: 75.0 },
            Schedule::Trace { values: vec![1.0, 5.0, 0.0, 9.0], step_s: 1.5 },
        ];
        for s in cases {
            let mut t0 = 0.0;
            while t0 < s.duration() {
                let t1 = t0 + 0.7;
                let (lo, hi) = s.rate_bounds(t0, t1);
                let mut t = t0;
                while t < t1.min(s.duration()) {
                    let r = s.rate(t);
                    assert!(r >= lo - 1e-9 && r <= hi + 1e-9, "{s:?} at {t}: {r} outside [{lo}, {hi}]");
                    t += 0.01;
                }
                t0 = t1;
            }
        }
    }

    #[test]
    fn timestamps_replay_each_request_at_its_time() {
        let s = Schedule::parse_timestamps("100.5\n100.0 101.25, 103\n").expect("parses");
        assert_eq!(s, Schedule::Timestamps { times: vec![0.0, 0.5, 1.25, 3.0] });
        assert_eq!(s.integral(1.0), 2.0);
        assert_eq!(s.total(), 4.0);
        assert_eq!(s.time_of_count(3.0, 0.0), Some(1.25));
        assert_eq!(s.time_of_count(5.0, 0.0), None);
        assert_eq!(s.rate(0.2), 2.0);
        assert!(Schedule::parse_timestamps("1 x").is_err());
    }

    #[test]
    fn trace_parses_whitespace_and_rejects_garbage() {
        let s = Schedule::parse_trace("5 6\n7\t8 # comment\n", 1.0).expect("parses");
        assert_eq!(s, Schedule::Trace { values: vec![5.0, 6.0, 7.0, 8.0], step_s: 1.0 });
        assert!(Schedule::parse_trace("5 x", 1.0).is_err());
        assert!(Schedule::parse_trace("", 1.0).is_err());
    }
}
