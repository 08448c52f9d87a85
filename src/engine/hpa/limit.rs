//! A driver's recommendation applied the way the HPA applies its own: through `behavior`'s
//! stabilization windows and rate-limit policies (`normalize`'s code, §6.2–6.5 of
//! `conformance/hpa-spec.md`), so a model's bad answer cannot become a cluster's bad minute.
//!
//! [`Limiter`] keeps what the controller keeps between syncs — the recommendations of the
//! windows and the scale events of the policies' periods — with absolute times on the run's clock.

use super::normalize::{convert_with_behavior, stabilize_behavior};
use super::reconcile::HpaHistory;
use super::types::{Behavior, BehaviorWritten, PolicyType, Recommendation, ScaleEvent, ScalingRules, SelectPolicy};

/// What the limiter let through.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub replicas: i32,
    /// Why it differs from the recommendation (empty when it does not).
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Limiter {
    written: BehaviorWritten,
    behavior: Behavior,
    /// (replicas, at).
    recommendations: Vec<(i32, f64)>,
    /// The scale events, kept as the shadow HPA keeps its own.
    events: HpaHistory,
}

/// `scaleUp Percent 100/15s`, `scaleDown Pods 1/30s`: the policy that set the limit.
fn policy_name(direction: &str, rules: &ScalingRules, limit: i32, current: i32, events: [&[ScaleEvent]; 2]) -> String {
    if rules.select_policy == SelectPolicy::Disabled {
        return format!("{direction} disabled");
    }
    // The policy whose own proposal equals the limit (the selected one).
    let single = |p: &super::types::ScalingPolicy| ScalingRules {
        select_policy: SelectPolicy::Max,
        stabilization_window_s: None,
        policies: vec![*p],
        tolerance: None,
    };
    let chosen = rules.policies.iter().find(|p| {
        let one = single(p);
        let proposed = if direction == "scaleUp" {
            super::normalize::scale_up_limit(current, events[0], events[1], &one).max(current)
        } else {
            super::normalize::scale_down_limit(current, events[0], events[1], &one).min(current)
        };
        proposed == limit
    });
    match chosen {
        Some(p) => {
            let kind = match p.kind {
                PolicyType::Pods => "Pods",
                PolicyType::Percent => "Percent",
            };
            format!("{direction} {kind} {}/{}s", p.value, p.period_s)
        }
        None => format!("{direction} policies"),
    }
}

impl Limiter {
    pub fn new(behavior: &BehaviorWritten) -> Self {
        Self {
            written: behavior.clone(),
            behavior: Behavior::from_written(behavior),
            recommendations: Vec::new(),
            events: HpaHistory::default(),
        }
    }

    /// The count to apply at `now` for a recommendation of `desired` (already clamped to
    /// `[min, max]`) with `current` replicas: the stabilized recommendation, then the policies'
    /// limit. Records `desired` in the windows' history (as the HPA does at every sync).
    pub fn limit(&mut self, now: f64, current: i32, desired: i32, min: i32, max: i32) -> Limited {
        let b = &self.behavior;
        let up_window = f64::from(b.scale_up.stabilization_window_s.unwrap_or(0));
        let down_window = f64::from(b.scale_down.stabilization_window_s.unwrap_or(300));
        let mut history: Vec<Recommendation> =
            self.recommendations.iter().map(|(n, t)| Recommendation { replicas: *n, age_s: now - t }).collect();
        let (stable, _) = stabilize_behavior(&mut history, current, desired, up_window, down_window);
        self.recommendations = history.iter().map(|r| (r.replicas, now - r.age_s)).collect();
        let mut reasons = Vec::new();
        if stable.replicas != desired {
            let (dir, window) = if desired < current || stable.replicas > desired {
                ("scaleDown", down_window)
            } else {
                ("scaleUp", up_window)
            };
            reasons.push(format!("{dir} stabilized over {window:.0}s to {}", stable.replicas));
        }
        let (up, down) = self.events.scale_events_at(now);
        let limited = convert_with_behavior(
            current,
            stable.replicas,
            min,
            max,
            &up,
            &down,
            &self.behavior.scale_up,
            &self.behavior.scale_down,
        );
        if limited.replicas != stable.replicas {
            let why = match limited.reason {
                "ScaleUpLimit" => {
                    policy_name("scaleUp", &self.behavior.scale_up, limited.replicas, current, [&up, &down])
                }
                "ScaleDownLimit" => {
                    policy_name("scaleDown", &self.behavior.scale_down, limited.replicas, current, [&up, &down])
                }
                "TooManyReplicas" => format!("max {max}"),
                "TooFewReplicas" => format!("min {min}"),
                other => other.to_string(),
            };
            reasons.push(why);
        }
        Limited { replicas: limited.replicas, reason: reasons.join("; ") }
    }

    /// A scale change that happened at `at` (applied by scaletui or seen on the target).
    pub fn record_scale(&mut self, at: f64, previous: i32, new: i32) {
        self.events.record_scale(Some(&self.written), at, previous, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::hpa::types::{ScalingPolicy, ScalingRulesWritten};

    /// scaletui's default `[scaling.behavior]`: up 100 %/15 s, window 0; down 1 pod/30 s, window 60 s.
    fn behavior() -> BehaviorWritten {
        BehaviorWritten {
            scale_up: Some(ScalingRulesWritten {
                select_policy: Some(SelectPolicy::Max),
                stabilization_window_s: Some(0),
                policies: Some(vec![ScalingPolicy { kind: PolicyType::Percent, value: 100, period_s: 15 }]),
                tolerance: None,
            }),
            scale_down: Some(ScalingRulesWritten {
                select_policy: Some(SelectPolicy::Max),
                stabilization_window_s: Some(60),
                policies: Some(vec![ScalingPolicy { kind: PolicyType::Pods, value: 1, period_s: 30 }]),
                tolerance: None,
            }),
        }
    }

    #[test]
    fn a_jump_up_is_cut_to_the_percent_policy_and_a_drop_waits_for_the_window() {
        let mut l = Limiter::new(&behavior());
        // 3 -> 10 at t=0: 100 % of 3 per 15 s allows 6.
        let a = l.limit(0.0, 3, 10, 1, 10);
        assert_eq!((a.replicas, a.reason.as_str()), (6, "scaleUp Percent 100/15s"));
        l.record_scale(0.0, 3, 6);
        // 5 s later, 10 again: the period's start is still 3, so 6 is all it gets.
        let b = l.limit(5.0, 6, 10, 1, 10);
        assert_eq!((b.replicas, b.reason.as_str()), (6, "scaleUp Percent 100/15s"));
        // A drop to 1 within 60 s of the 10s: held by the window.
        let c = l.limit(10.0, 6, 1, 1, 10);
        assert_eq!(c.replicas, 6);
        assert!(c.reason.starts_with("scaleDown stabilized over 60s"), "{}", c.reason);
        // 16 s after the first scale the period has passed: 6 -> 10 is allowed (100 % of 6 = 12).
        let d = l.limit(16.0, 6, 10, 1, 10);
        assert_eq!((d.replicas, d.reason.as_str()), (10, ""));
        l.record_scale(16.0, 6, 10);
        // Past the window with only 1s recommended since t=16+: one pod per 30 s.
        for t in [20.0, 40.0, 60.0, 76.5] {
            l.limit(t, 10, 1, 1, 10);
        }
        let e = l.limit(77.0, 10, 1, 1, 10);
        assert_eq!((e.replicas, e.reason.as_str()), (9, "scaleDown Pods 1/30s"));
        l.record_scale(77.0, 10, 9);
        let f = l.limit(90.0, 9, 1, 1, 10);
        assert_eq!((f.replicas, f.reason.as_str()), (9, "scaleDown Pods 1/30s"));
        let g = l.limit(107.5, 9, 1, 1, 10);
        assert_eq!(g.replicas, 8);
    }

    #[test]
    fn within_the_policies_nothing_is_changed() {
        let mut l = Limiter::new(&behavior());
        let a = l.limit(0.0, 4, 6, 1, 10);
        assert_eq!((a.replicas, a.reason.as_str()), (6, ""));
        let b = l.limit(1.0, 6, 6, 1, 10);
        assert_eq!((b.replicas, b.reason.as_str()), (6, ""));
    }
}
