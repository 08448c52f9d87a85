//! Normalization of the metric proposal: stabilization, rate limits and min/max (§5, §6).

use serde::Serialize;

use super::types::{PolicyType, Recommendation, ScaleEvent, ScalingRules, SelectPolicy};

/// Result of a stabilization step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stabilized {
    pub replicas: i32,
    /// The recommendations that were inside a window and so shaped the result.
    pub considered: Vec<Recommendation>,
    /// Index replaced in the history, or `None` when the new record was appended.
    pub replaced_index: Option<usize>,
}

/// `stabilizeRecommendation` (legacy path, §5.1). Updates `history` in place (ages: the new record
/// gets age 0).
pub fn stabilize_legacy(history: &mut Vec<Recommendation>, window_s: f64, prenormalized: i32) -> Stabilized {
    let mut max_rec = prenormalized;
    let mut old_index = None;
    let mut considered = Vec::new();
    for (i, rec) in history.iter().enumerate() {
        if rec.age_s > window_s {
            old_index = Some(i);
        } else {
            considered.push(*rec);
            if rec.replicas > max_rec {
                max_rec = rec.replicas;
            }
        }
    }
    let new = Recommendation { replicas: prenormalized, age_s: 0.0 };
    match old_index {
        Some(i) => history[i] = new,
        None => history.push(new),
    }
    Stabilized { replicas: max_rec, considered, replaced_index: old_index }
}

/// A limit and the `ScalingLimited` reason that goes with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limited {
    pub replicas: i32,
    pub reason: &'static str,
    /// The policy/legacy limit that applied in the direction of change, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

/// `convertDesiredReplicasWithRules` (legacy clamp, §5.2).
pub fn convert_legacy(
    current: i32,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    scale_up_limit_factor: f64,
    scale_up_limit_minimum: f64,
) -> Limited {
    let scale_up_limit = (scale_up_limit_factor * f64::from(current)).max(scale_up_limit_minimum) as i32;
    let (max_allowed, reason) = if max_replicas > scale_up_limit {
        (scale_up_limit, "ScaleUpLimit")
    } else {
        (max_replicas, "TooManyReplicas")
    };
    if desired < min_replicas {
        return Limited { replicas: min_replicas, reason: "TooFewReplicas", limit: Some(scale_up_limit) };
    }
    if desired > max_allowed {
        return Limited { replicas: max_allowed, reason, limit: Some(scale_up_limit) };
    }
    Limited { replicas: desired, reason: "DesiredWithinRange", limit: Some(scale_up_limit) }
}

/// `stabilizeRecommendationWithBehaviors` (§6.2). Returns the stabilized count and the reason
/// (`ScaleUpStabilized`/`ScaleDownStabilized`) that applies when it differs from `desired`.
pub fn stabilize_behavior(
    history: &mut Vec<Recommendation>,
    current: i32,
    desired: i32,
    up_window_s: f64,
    down_window_s: f64,
) -> (Stabilized, &'static str) {
    let mut up_rec = desired;
    let mut down_rec = desired;
    let mut old_index = None;
    let mut considered = Vec::new();
    for (i, rec) in history.iter().enumerate() {
        let in_up = rec.age_s < up_window_s;
        let in_down = rec.age_s < down_window_s;
        if in_up {
            up_rec = up_rec.min(rec.replicas);
        }
        if in_down {
            down_rec = down_rec.max(rec.replicas);
        }
        if in_up || in_down {
            considered.push(*rec);
        }
        if rec.age_s > up_window_s && rec.age_s > down_window_s {
            old_index = Some(i);
        }
    }
    let mut rec = current;
    if rec < up_rec {
        rec = up_rec;
    }
    if rec > down_rec {
        rec = down_rec;
    }
    let new = Recommendation { replicas: desired, age_s: 0.0 };
    match old_index {
        Some(i) => history[i] = new,
        None => history.push(new),
    }
    let reason = if desired >= current { "ScaleUpStabilized" } else { "ScaleDownStabilized" };
    (Stabilized { replicas: rec, considered, replaced_index: old_index }, reason)
}

/// `getReplicasChangePerPeriod`: changes of events strictly younger than the period.
pub fn replicas_change_per_period(period_s: i32, events: &[ScaleEvent]) -> i32 {
    events.iter().filter(|e| e.age_s < f64::from(period_s)).fold(0i32, |acc, e| acc.saturating_add(e.replica_change))
}

/// `calculateScaleUpLimitWithScalingRules`: the raw policy limit.
pub fn scale_up_limit(current: i32, up_events: &[ScaleEvent], down_events: &[ScaleEvent], rules: &ScalingRules) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MAX, std::cmp::min),
        SelectPolicy::Max => (i32::MIN, std::cmp::max),
    };
    for p in &rules.policies {
        let start = period_start(current, p.period_s, up_events, down_events);
        let proposed = match p.kind {
            PolicyType::Pods => start.saturating_add(p.value),
            PolicyType::Percent => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: the raw policy limit.
pub fn scale_down_limit(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &ScalingRules,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MIN, std::cmp::max),
        SelectPolicy::Max => (i32::MAX, std::cmp::min),
    };
    for p in &rules.policies {
        let start = period_start(current, p.period_s, up_events, down_events);
        let proposed = match p.kind {
            PolicyType::Pods => start.saturating_sub(p.value),
            // int32(float64 × (1 − v/100)): truncation toward zero.
            PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
}

fn period_start(current: i32, period_s: i32, up_events: &[ScaleEvent], down_events: &[ScaleEvent]) -> i32 {
    let added = replicas_change_per_period(period_s, up_events);
    let deleted = replicas_change_per_period(period_s, down_events);
    current.saturating_sub(added).saturating_add(deleted)
}

/// `convertDesiredReplicasWithBehaviorRate` (§6.3).
#[allow(clippy::too_many_arguments)]
pub fn convert_with_behavior(
    current: i32,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    up_rules: &ScalingRules,
    down_rules: &ScalingRules,
) -> Limited {
    if desired > current {
        let mut limit = scale_up_limit(current, up_events, down_events, up_rules);
        if limit < current {
            limit = current;
        }
        let (max_allowed, reason) =
            if max_replicas > limit { (limit, "ScaleUpLimit") } else { (max_replicas, "TooManyReplicas") };
        if desired > max_allowed {
            return Limited { replicas: max_allowed, reason, limit: Some(limit) };
        }
        return Limited { replicas: desired, reason: "DesiredWithinRange", limit: Some(limit) };
    }
    if desired < current {
        let mut limit = scale_down_limit(current, up_events, down_events, down_rules);
        if limit > current {
            limit = current;
        }
        let (min_allowed, reason) =
            if min_replicas < limit { (limit, "ScaleDownLimit") } else { (min_replicas, "TooFewReplicas") };
        if desired < min_allowed {
            return Limited { replicas: min_allowed, reason, limit: Some(limit) };
        }
        return Limited { replicas: desired, reason: "DesiredWithinRange", limit: Some(limit) };
    }
    Limited { replicas: desired, reason: "DesiredWithinRange", limit: None }
}

/// `storeScaleEvent` (§6.5) into one direction's list: mark events older than the longest period
/// outdated, then overwrite the last outdated one or append.
pub fn store_scale_event(events: &mut Vec<ScaleEvent>, rules: &ScalingRules, replica_change: i32) {
    let longest = f64::from(rules.longest_period_s());
    for e in events.iter_mut() {
        if e.age_s > longest {
            e.outdated = true;
        }
    }
    let new = ScaleEvent { replica_change, age_s: 0.0, outdated: false };
    match events.iter().rposition(|e| e.outdated) {
        Some(i) => events[i] = new,
        None => events.push(new),
    }
}
