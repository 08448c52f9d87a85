//! Rewards of a control interval for learning policies (the Python environment, and policies
//! trained on the simulator), from the observation at the end of the interval and the change
//! the policy asked for at its start. `[reward] preset`:
//!
//! - `seed003`, seed 003's DQN reward: `-(c_perf + c_res) + alignment`, where
//!   `c_perf = (RT - Tmin)/(Tmax - Tmin)` when `RT <= Tmax`, else `2.3 + (RT - Tmin)/(Tmax - Tmin)`;
//!   `c_res = 2.5 (n - 1)/(N_max - 1) + 0.1 (1.3^(n-1) - 1)`, or -0.4 (a bonus) when `n = 1` and
//!   the arrival rate is below 20 % of the base rate; `alignment` is -0.4 for a change and +0.2
//!   for none. RT is the interval's mean response time with every failed request (rejected,
//!   timed out, lost) counted as `failed_rt_s`; the seed's model never answers below Tmin, the
//!   simulator does, so `c_perf` is floored at 0 (no reward for being faster than Tmin). `n` is
//!   the replica count at the end of the interval and `N_max` the configured maximum.
//! - `slo_cost`, scaletui's own objective: `-(slo_weight · [p > slo_ms] + error_weight · failed
//!   share + core_weight · cores in use)`, with the SLO of `[report]` (percentile and threshold)
//!   and the cores the pods use (mean CPU per pod × pods), so its sum over an episode is the
//!   negated weighted sum of SLO-violating ticks, failure share and core-ticks `scaletui report`
//!   counts.

use serde::Serialize;

use crate::config::{ReportConfig, RewardConfig, RewardPreset};
use crate::engine::advisor::external::Observation;

/// A reward and its terms (named as the preset names them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Reward {
    pub total: f64,
    /// seed003: `c_perf`; slo_cost: the SLO and failure terms.
    pub performance: f64,
    /// seed003: `c_res`; slo_cost: the core term.
    pub resources: f64,
    /// seed003: the action alignment term; slo_cost: 0.
    pub alignment: f64,
    /// The response time seed003 used (seconds), or the SLO percentile slo_cost compared (ms).
    pub latency: f64,
}

/// The interval's mean response time in seconds, failures counted as `failed_rt_s`; `None`
/// when nothing arrived or was answered.
pub fn effective_rt_s(o: &Observation, failed_rt_s: f64) -> Option<f64> {
    let failed = o.rejected.unwrap_or(0) + o.timed_out.unwrap_or(0) + o.failed.unwrap_or(0);
    let served = o.served.unwrap_or(0);
    let mean_s = o.latency_mean_ms.map(|m| m / 1000.0);
    match (served, mean_s) {
        (0, _) | (_, None) if failed == 0 => None,
        (0, _) | (_, None) => Some(failed_rt_s),
        (s, Some(m)) => Some((s as f64 * m + failed as f64 * failed_rt_s) / (s + failed) as f64),
    }
}

/// The reward of the interval that ended with `o`, after the policy asked for `change`
/// replicas (new − current; 0 = keep).
pub fn reward(cfg: &RewardConfig, report: &ReportConfig, o: &Observation, change: i32) -> Reward {
    let n = f64::from(o.current_replicas.unwrap_or(o.min_replicas).max(1));
    match cfg.preset {
        RewardPreset::Seed003 => {
            let rt = effective_rt_s(o, cfg.failed_rt_s).unwrap_or(cfg.tmin_s);
            let span = cfg.tmax_s - cfg.tmin_s;
            let scaled = ((rt - cfg.tmin_s) / span).max(0.0);
            let performance = if rt <= cfg.tmax_s { scaled } else { 2.3 + scaled };
            let rate_rpm = o.rps.unwrap_or(0.0) * 60.0;
            let n_max = f64::from(o.max_replicas.max(1));
            let resources = if n <= 1.0 && rate_rpm < 0.2 * cfg.base_rate_rpm {
                -0.4
            } else {
                let share = if n_max > 1.0 { (n - 1.0) / (n_max - 1.0) } else { 0.0 };
                2.5 * share + 0.1 * (1.3f64.powf(n - 1.0) - 1.0)
            };
            let alignment = if change != 0 { -0.4 } else { 0.2 };
            Reward { total: -(performance + resources) + alignment, performance, resources, alignment, latency: rt }
        }
        RewardPreset::SloCost => {
            let p = match report.slo_percentile {
                50 => o.latency_p50_ms,
                99 => o.latency_p99_ms,
                _ => o.latency_p95_ms,
            };
            let violated = p.is_some_and(|p| p > report.slo_ms);
            let failed = o.rejected.unwrap_or(0) + o.timed_out.unwrap_or(0) + o.failed.unwrap_or(0);
            let share = match o.arrived {
                Some(a) if a > 0 => failed as f64 / a as f64,
                _ => 0.0,
            };
            let cores = o.cpu_millicores.unwrap_or(0.0) * f64::from(o.pod_count.unwrap_or(0)) / 1000.0;
            let performance = cfg.slo_weight * f64::from(u8::from(violated)) + cfg.error_weight * share;
            let resources = cfg.core_weight * cores;
            Reward {
                total: -(performance + resources),
                performance,
                resources,
                alignment: 0.0,
                latency: p.unwrap_or(0.0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(n: i32, rps: f64, served: u64, mean_ms: f64, failed: u64) -> Observation {
        Observation {
            current_replicas: Some(n),
            min_replicas: 1,
            max_replicas: 13,
            rps: Some(rps),
            served: Some(served),
            rejected: Some(failed),
            timed_out: Some(0),
            failed: Some(0),
            arrived: Some(served + failed),
            latency_mean_ms: Some(mean_ms),
            ..Observation::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn seed003_by_hand() {
        let cfg = RewardConfig::default();
        let rep = ReportConfig::default();
        // RT 0.45 s: c_perf = (0.45-0.2)/0.5 = 0.5; n = 4: c_res = 2.5*3/12 + 0.1*(1.3^3-1) = 0.625 + 0.1197
        let r = reward(&cfg, &rep, &obs(4, 2.0, 30, 450.0, 0), 0);
        assert!(close(r.performance, 0.5), "{r:?}");
        assert!(close(r.resources, 0.625 + 0.1 * (1.3f64.powi(3) - 1.0)), "{r:?}");
        assert!(close(r.total, -(0.5 + r.resources) + 0.2));
        // Above Tmax: 2.3 + (0.9-0.2)/0.5; a change costs 0.4.
        let r = reward(&cfg, &rep, &obs(4, 2.0, 30, 900.0, 0), 1);
        assert!(close(r.performance, 2.3 + 1.4) && close(r.alignment, -0.4), "{r:?}");
        // Failures count as 1 s: 10 served at 0.2 s and 10 failed = 0.6 s.
        let r = reward(&cfg, &rep, &obs(2, 2.0, 10, 200.0, 10), 0);
        assert!(close(r.latency, 0.6) && close(r.performance, 0.8), "{r:?}");
        // Faster than Tmin earns nothing; one replica below 16 req/min earns the bonus.
        let r = reward(&cfg, &rep, &obs(1, 0.2, 3, 10.0, 0), 0);
        assert!(close(r.performance, 0.0) && close(r.resources, -0.4) && close(r.total, 0.4 + 0.2), "{r:?}");
        // Nothing arrived: no performance cost.
        let r = reward(&cfg, &rep, &obs(1, 1.0, 0, 0.0, 0), 0);
        assert!(close(r.performance, 0.0), "{r:?}");
    }

    #[test]
    fn slo_cost_by_hand() {
        let cfg = RewardConfig { preset: RewardPreset::SloCost, ..RewardConfig::default() };
        let rep = ReportConfig { slo_ms: 100.0, slo_percentile: 95, ..ReportConfig::default() };
        let mut o = obs(3, 10.0, 90, 50.0, 10);
        o.latency_p95_ms = Some(150.0);
        o.cpu_millicores = Some(250.0);
        o.pod_count = Some(4);
        let r = reward(&cfg, &rep, &o, 1);
        // 1 (SLO) + 2 x 0.1 (failed share) + 0.1 x 1 core.
        assert!(close(r.performance, 1.2) && close(r.resources, 0.1) && close(r.total, -1.3), "{r:?}");
        o.latency_p95_ms = Some(80.0);
        o.rejected = Some(0);
        assert!(close(reward(&cfg, &rep, &o, 0).total, -0.1));
    }
}
