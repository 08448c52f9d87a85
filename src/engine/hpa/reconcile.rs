//! A whole HPA sync (`reconcileAutoscaler`, §1 and §3) with a step-by-step explanation, and a
//! stateful runner that keeps the recommendation and scale-event histories between syncs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::calc::{self, Proposal};
use super::normalize::{self, Limited, Stabilized};
use super::types::*;

/// One HPA situation: the shape of a conformance `reconcile` case's `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileInput {
    #[serde(default)]
    pub min_replicas: Option<i32>,
    pub max_replicas: i32,
    pub spec_replicas: i32,
    /// `scale.status.replicas`; defaults to `spec_replicas`.
    #[serde(default)]
    pub status_replicas: Option<i32>,
    /// `spec.behavior` as written; `null` selects the legacy path.
    #[serde(default)]
    pub behavior_as_written: Option<BehaviorWritten>,
    /// `spec.behavior` after defaulting; computed from `behavior_as_written` when absent.
    #[serde(default)]
    pub behavior_effective: Option<Behavior>,
    /// `spec.metrics`; empty means the API default, CPU at 80 % utilization.
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub pod_resource_metrics: Vec<PodResourceSample>,
    #[serde(default)]
    pub pod_custom_metrics: Vec<PodValueSample>,
    /// Per-pod samples of several `Pods` metrics, by metric name (an HPA with more than one);
    /// a metric not named here reads `pod_custom_metrics`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_custom_metrics_by_name: BTreeMap<String, Vec<PodValueSample>>,
    #[serde(default)]
    pub object_metric_milli: Option<i64>,
    #[serde(default)]
    pub external_metric_values_milli: Vec<i64>,
    /// Metric types whose fetch fails in this sync.
    #[serde(default)]
    pub failing_metric_sources: Vec<String>,
    /// `null`: no history yet (the initial record is added); `[]`: an empty history.
    #[serde(default)]
    pub recommendation_history: Option<Vec<Recommendation>>,
    #[serde(default)]
    pub scale_up_events: Vec<ScaleEvent>,
    #[serde(default)]
    pub scale_down_events: Vec<ScaleEvent>,
    #[serde(default)]
    pub controller: ControllerConfig,
}

impl ReconcileInput {
    fn behavior(&self) -> Option<Behavior> {
        if let Some(b) = &self.behavior_effective {
            return Some(b.clone());
        }
        self.behavior_as_written.as_ref().map(Behavior::from_written)
    }

    fn tolerances(&self, behavior: Option<&Behavior>) -> Tolerances {
        let mut t = Tolerances::both(self.controller.tolerance);
        if let Some(b) = behavior {
            if let Some(x) = b.scale_up.tolerance {
                t.scale_up = x;
            }
            if let Some(x) = b.scale_down.tolerance {
                t.scale_down = x;
            }
        }
        t
    }
}

/// The outcome of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricOutcome {
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A status condition (`AbleToScale`, `ScalingActive`, `ScalingLimited`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
}

/// One step of the decision, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    InitialRecommendation {
        replicas: i32,
    },
    GuardRail {
        reason: &'static str,
        desired_replicas: i32,
    },
    Metrics {
        outcomes: Vec<MetricOutcome>,
    },
    MaxOverMetrics {
        replicas: i32,
        invalid_metrics: usize,
        hard_failure: bool,
    },
    Stabilization {
        path: &'static str,
        before: i32,
        after: i32,
        #[serde(skip_serializing_if = "Option::is_none")]
        window_s: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        up_window_s: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        down_window_s: Option<f64>,
        considered: Vec<Recommendation>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    RateLimitAndClamp {
        path: &'static str,
        before: i32,
        after: i32,
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<i32>,
        min_replicas: i32,
        max_replicas: i32,
    },
    Decision {
        current_replicas: i32,
        desired_replicas: i32,
        rescale: bool,
    },
    ScaleEventStored {
        direction: &'static str,
        replica_change: i32,
    },
}

/// Histories after the sync, as ages (the new records have age 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryAges {
    pub recommendations: Vec<Recommendation>,
    pub scale_up_events: Vec<ScaleEvent>,
    pub scale_down_events: Vec<ScaleEvent>,
}

/// The decision and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconcileOutput {
    pub desired_replicas: i32,
    pub current_replicas: i32,
    pub rescale: bool,
    pub metrics_error: bool,
    /// The metric proposal (max over valid metrics) before stabilization and limits; `None` when
    /// the guard rails decided or every metric failed.
    pub metric_desired_replicas: Option<i32>,
    pub metrics: Vec<MetricOutcome>,
    pub steps: Vec<Step>,
    pub conditions: Vec<Condition>,
    pub history_after: HistoryAges,
}

impl ReconcileOutput {
    /// The proposal of the first metric named `resource` (e.g. `cpu`).
    pub fn proposal_for(&self, resource: &str) -> Option<&Proposal> {
        self.metrics.iter().find(|m| m.name == resource).and_then(|m| m.proposal.as_ref())
    }
}

/// Options that are not part of the HPA situation itself.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileOptions {
    /// Record a scale event after a rescale (what the controller does after a successful scale
    /// update). A "what would the HPA do" shadow that does not scale turns this off.
    pub store_scale_events: bool,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self { store_scale_events: true }
    }
}

/// `reconcileAutoscaler` with the defaults.
pub fn reconcile(input: &ReconcileInput) -> ReconcileOutput {
    reconcile_with(input, ReconcileOptions::default())
}

pub fn reconcile_with(input: &ReconcileInput, opts: ReconcileOptions) -> ReconcileOutput {
    let mut steps = Vec::new();
    let mut conditions = Vec::new();
    let current = input.spec_replicas;
    let status_replicas = input.status_replicas.unwrap_or(input.spec_replicas);
    let behavior = input.behavior();
    let tolerances = input.tolerances(behavior.as_ref());

    let mut history = HistoryAges {
        recommendations: input.recommendation_history.clone().unwrap_or_default(),
        scale_up_events: input.scale_up_events.clone(),
        scale_down_events: input.scale_down_events.clone(),
    };
    if input.recommendation_history.is_none() {
        history.recommendations.push(Recommendation { replicas: current, age_s: 0.0 });
        steps.push(Step::InitialRecommendation { replicas: current });
    }

    let min_replicas = input.min_replicas.unwrap_or(1);
    let max_replicas = input.max_replicas;
    let mut metrics_error = false;
    let mut outcomes = Vec::new();
    let mut metric_desired = None;

    let (desired, mut rescale) = if current == 0 && min_replicas != 0 {
        conditions.push(Condition { kind: "ScalingActive", status: false, reason: "ScalingDisabled" });
        steps.push(Step::GuardRail {
            reason: "scaling is disabled since the replica count of the target is zero",
            desired_replicas: 0,
        });
        (0, false)
    } else if current > max_replicas {
        steps.push(Step::GuardRail {
            reason: "current number of replicas above spec.maxReplicas",
            desired_replicas: max_replicas,
        });
        (max_replicas, true)
    } else if current < min_replicas {
        steps.push(Step::GuardRail {
            reason: "current number of replicas below spec.minReplicas",
            desired_replicas: min_replicas,
        });
        (min_replicas, true)
    } else {
        let specs = if input.metrics.is_empty() {
            vec![MetricSpec::resource_utilization("cpu", 80)]
        } else {
            input.metrics.clone()
        };
        let mut replicas = 0i32;
        let mut invalid = 0usize;
        for (index, spec) in specs.iter().enumerate() {
            let result = compute_for_metric(input, spec, current, status_replicas, &tolerances);
            let mut outcome =
                MetricOutcome { index, kind: spec.kind.clone(), name: spec.label(), proposal: None, error: None };
            match result {
                Ok(p) => {
                    if replicas == 0 || p.replicas > replicas {
                        replicas = p.replicas;
                    }
                    outcome.proposal = Some(p);
                }
                Err(e) => {
                    invalid += 1;
                    outcome.error = Some(e);
                }
            }
            outcomes.push(outcome);
        }
        steps.push(Step::Metrics { outcomes: outcomes.clone() });
        metrics_error = invalid > 0;
        let hard_failure = invalid >= specs.len() || (invalid > 0 && replicas < current);
        steps.push(Step::MaxOverMetrics { replicas, invalid_metrics: invalid, hard_failure });
        if hard_failure {
            conditions.push(Condition { kind: "ScalingActive", status: false, reason: "FailedGetMetrics" });
            (current, false)
        } else {
            conditions.push(Condition { kind: "ScalingActive", status: true, reason: "ValidMetricFound" });
            metric_desired = Some(replicas);
            let desired = replicas.max(0);
            let normalized = normalize(
                input,
                behavior.as_ref(),
                &mut history,
                &mut steps,
                &mut conditions,
                current,
                desired,
                min_replicas,
            );
            (normalized, normalized != current)
        }
    };

    let desired = if rescale { desired } else { current };
    if desired == current {
        rescale = false;
    }
    steps.push(Step::Decision { current_replicas: current, desired_replicas: desired, rescale });
    if rescale {
        conditions.push(Condition { kind: "AbleToScale", status: true, reason: "SucceededRescale" });
        if let (Some(b), true) = (&behavior, opts.store_scale_events) {
            if desired > current {
                normalize::store_scale_event(&mut history.scale_up_events, &b.scale_up, desired - current);
                steps.push(Step::ScaleEventStored { direction: "up", replica_change: desired - current });
            } else {
                normalize::store_scale_event(&mut history.scale_down_events, &b.scale_down, current - desired);
                steps.push(Step::ScaleEventStored { direction: "down", replica_change: current - desired });
            }
        }
    }
    ReconcileOutput {
        desired_replicas: desired,
        current_replicas: current,
        rescale,
        metrics_error,
        metric_desired_replicas: metric_desired,
        metrics: outcomes,
        steps,
        conditions,
        history_after: history,
    }
}

/// Normalization (§5 legacy path without `behavior`, §6 with it): stabilization, then rate
/// limits and min/max, each recorded as a step and a condition.
#[allow(clippy::too_many_arguments)]
fn normalize(
    input: &ReconcileInput,
    behavior: Option<&Behavior>,
    history: &mut HistoryAges,
    steps: &mut Vec<Step>,
    conditions: &mut Vec<Condition>,
    current: i32,
    desired: i32,
    min_replicas: i32,
) -> i32 {
    let flag = input.controller.downscale_stabilization_window_s;
    let path = if behavior.is_some() { "behavior" } else { "legacy" };
    let (stabilized, why, window_s, up_window_s, down_window_s) = match behavior {
        None => {
            let s = normalize::stabilize_legacy(&mut history.recommendations, flag, desired);
            (s, "ScaleDownStabilized", Some(flag), None, None)
        }
        Some(b) => {
            let up = b.scale_up.stabilization_window_s.map(f64::from).unwrap_or(0.0);
            let down = b.scale_down.stabilization_window_s.map(f64::from).unwrap_or(flag);
            let (s, why) = normalize::stabilize_behavior(&mut history.recommendations, current, desired, up, down);
            (s, why, None, Some(up), Some(down))
        }
    };
    let Stabilized { replicas: stabilized, considered, .. } = stabilized;
    let reason = (stabilized != desired).then_some(why);
    conditions.push(Condition { kind: "AbleToScale", status: true, reason: reason.unwrap_or("ReadyForNewScale") });
    steps.push(Step::Stabilization {
        path,
        before: desired,
        after: stabilized,
        window_s,
        up_window_s,
        down_window_s,
        considered,
        reason,
    });
    let Limited { replicas, reason, limit } = match behavior {
        None => normalize::convert_legacy(
            current,
            stabilized,
            min_replicas,
            input.max_replicas,
            input.controller.legacy_scale_up_limit_factor,
            input.controller.legacy_scale_up_limit_minimum,
        ),
        Some(b) => normalize::convert_with_behavior(
            current,
            stabilized,
            min_replicas,
            input.max_replicas,
            &history.scale_up_events,
            &history.scale_down_events,
            &b.scale_up,
            &b.scale_down,
        ),
    };
    conditions.push(Condition { kind: "ScalingLimited", status: reason != "DesiredWithinRange", reason });
    steps.push(Step::RateLimitAndClamp {
        path,
        before: stabilized,
        after: replicas,
        reason,
        limit,
        min_replicas,
        max_replicas: input.max_replicas,
    });
    replicas
}

/// `computeReplicasForMetric`: dispatch on the metric type (§2).
fn compute_for_metric(
    input: &ReconcileInput,
    spec: &MetricSpec,
    spec_replicas: i32,
    status_replicas: i32,
    tolerances: &Tolerances,
) -> Result<Proposal, String> {
    let c = &input.controller;
    let failing = input.failing_metric_sources.iter().any(|f| f == &spec.kind);
    let target = spec.target.clone().unwrap_or_default();
    let missing_target = || format!("invalid target for {} metric {}", spec.kind, spec.label());
    match spec.kind.as_str() {
        "Resource" | "ContainerResource" => {
            let resource = spec.resource.clone().unwrap_or_else(|| "cpu".into());
            let container = if spec.kind == "ContainerResource" { spec.container.as_deref() } else { None };
            if failing {
                return Err(format!("unable to get metrics for resource {resource}: failing metric source"));
            }
            if let Some(pct) = target.average_utilization_percent {
                calc::resource_utilization_replicas(
                    spec_replicas,
                    pct,
                    &resource,
                    container,
                    tolerances,
                    &input.pods,
                    &input.pod_resource_metrics,
                    c.cpu_initialization_period_s,
                    c.initial_readiness_delay_s,
                )
            } else if let Some(avg) = target.average_value_milli {
                let metrics = calc::extract_resource_metrics(&input.pod_resource_metrics, &resource, container)
                    .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
                calc::plain_metric_replicas(
                    metrics,
                    spec_replicas,
                    avg,
                    tolerances,
                    &input.pods,
                    Some(&resource),
                    c.cpu_initialization_period_s,
                    c.initial_readiness_delay_s,
                )
            } else {
                Err(missing_target())
            }
        }
        "Pods" => {
            let name = spec.metric.clone().unwrap_or_default();
            if failing {
                return Err(format!("unable to get metric {name}: failing metric source"));
            }
            let avg = target.average_value_milli.ok_or_else(missing_target)?;
            let samples = input.pod_custom_metrics_by_name.get(&name).unwrap_or(&input.pod_custom_metrics);
            let metrics =
                calc::extract_value_metrics(samples).map_err(|e| format!("unable to get metric {name}: {e}"))?;
            calc::plain_metric_replicas(
                metrics,
                spec_replicas,
                avg,
                tolerances,
                &input.pods,
                None,
                c.cpu_initialization_period_s,
                c.initial_readiness_delay_s,
            )
        }
        "Object" => {
            let name = spec.metric.clone().unwrap_or_default();
            let usage = match (failing, input.object_metric_milli) {
                (false, Some(u)) => u,
                _ => return Err(format!("unable to get metric {name}: object metric unavailable")),
            };
            if let Some(v) = target.value_milli {
                calc::object_value_replicas(spec_replicas, usage, v, tolerances, &input.pods)
            } else if let Some(avg) = target.average_value_milli {
                Ok(calc::per_pod_average_replicas(status_replicas, usage, avg, tolerances))
            } else {
                Err(missing_target())
            }
        }
        "External" => {
            let name = spec.metric.clone().unwrap_or_default();
            if failing {
                return Err(format!("unable to get external metric {name}: failing metric source"));
            }
            let usage = calc::external_sum(&input.external_metric_values_milli)
                .map_err(|e| format!("unable to get external metric {name}: {e}"))?;
            if let Some(v) = target.value_milli {
                calc::object_value_replicas(spec_replicas, usage, v, tolerances, &input.pods)
            } else if let Some(avg) = target.average_value_milli {
                Ok(calc::per_pod_average_replicas(status_replicas, usage, avg, tolerances))
            } else {
                Err(missing_target())
            }
        }
        other => Err(format!("unknown metric source type {other:?}")),
    }
}

/// An HPA as configured: what `spec` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HpaSpec {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub metrics: Vec<MetricSpec>,
    pub behavior: Option<BehaviorWritten>,
}

/// Histories with absolute times (seconds on the caller's clock).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HpaHistory {
    /// `None` until the first sync (then the initial record is added).
    recommendations: Option<Vec<(i32, f64)>>,
    scale_up_events: Vec<(i32, f64, bool)>,
    scale_down_events: Vec<(i32, f64, bool)>,
}

impl HpaHistory {
    /// Record a scale change that happened at `at` (e.g. observed on the target), with the same
    /// bookkeeping as the controller's `storeScaleEvent`.
    pub fn record_scale(&mut self, behavior: Option<&BehaviorWritten>, at: f64, previous: i32, new: i32) {
        let Some(b) = behavior.map(Behavior::from_written) else { return };
        let (list, rules, change) = if new > previous {
            (&mut self.scale_up_events, &b.scale_up, new - previous)
        } else if new < previous {
            (&mut self.scale_down_events, &b.scale_down, previous - new)
        } else {
            return;
        };
        let mut ages: Vec<ScaleEvent> =
            list.iter().map(|(c, t, o)| ScaleEvent { replica_change: *c, age_s: at - t, outdated: *o }).collect();
        normalize::store_scale_event(&mut ages, rules, change);
        *list = ages.iter().map(|e| (e.replica_change, at - e.age_s, e.outdated)).collect();
    }

    /// The scale-up and scale-down events with their ages at `now`.
    pub fn scale_events_at(&self, now: f64) -> (Vec<ScaleEvent>, Vec<ScaleEvent>) {
        (Self::ages(&self.scale_up_events, now), Self::ages(&self.scale_down_events, now))
    }

    fn ages(list: &[(i32, f64, bool)], now: f64) -> Vec<ScaleEvent> {
        list.iter().map(|(c, t, o)| ScaleEvent { replica_change: *c, age_s: now - t, outdated: *o }).collect()
    }

    fn absolute(list: &[ScaleEvent], now: f64) -> Vec<(i32, f64, bool)> {
        list.iter().map(|e| (e.replica_change, now - e.age_s, e.outdated)).collect()
    }
}

/// Everything one sync needs besides the spec and the history.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub pods: Vec<Pod>,
    pub pod_resource_metrics: Vec<PodResourceSample>,
    /// `Pods` metrics' per-pod samples by metric name.
    pub pod_custom_metrics: BTreeMap<String, Vec<PodValueSample>>,
}

/// A stateful HPA: the spec, the controller settings and the histories between syncs.
#[derive(Debug, Clone)]
pub struct HpaRunner {
    pub spec: HpaSpec,
    pub controller: ControllerConfig,
    pub history: HpaHistory,
}

impl HpaRunner {
    pub fn new(spec: HpaSpec, controller: ControllerConfig) -> Self {
        Self { spec, controller, history: HpaHistory::default() }
    }

    /// The situation at `now` as a reconcile input (what `hpa explain` reads).
    pub fn input(&self, now: f64, obs: &Observation) -> ReconcileInput {
        ReconcileInput {
            min_replicas: Some(self.spec.min_replicas),
            max_replicas: self.spec.max_replicas,
            spec_replicas: obs.spec_replicas,
            status_replicas: Some(obs.status_replicas),
            behavior_as_written: self.spec.behavior.clone(),
            behavior_effective: None,
            metrics: self.spec.metrics.clone(),
            pods: obs.pods.clone(),
            pod_resource_metrics: obs.pod_resource_metrics.clone(),
            pod_custom_metrics: Vec::new(),
            pod_custom_metrics_by_name: obs.pod_custom_metrics.clone(),
            object_metric_milli: None,
            external_metric_values_milli: Vec::new(),
            failing_metric_sources: Vec::new(),
            recommendation_history: self
                .history
                .recommendations
                .as_ref()
                .map(|r| r.iter().map(|(n, t)| Recommendation { replicas: *n, age_s: now - t }).collect()),
            scale_up_events: HpaHistory::ages(&self.history.scale_up_events, now),
            scale_down_events: HpaHistory::ages(&self.history.scale_down_events, now),
            controller: self.controller.clone(),
        }
    }

    /// One sync at `now`; the histories are updated as the controller would.
    pub fn sync(&mut self, now: f64, obs: &Observation, opts: ReconcileOptions) -> ReconcileOutput {
        let out = reconcile_with(&self.input(now, obs), opts);
        let h = &out.history_after;
        self.history.recommendations = Some(h.recommendations.iter().map(|r| (r.replicas, now - r.age_s)).collect());
        self.history.scale_up_events = HpaHistory::absolute(&h.scale_up_events, now);
        self.history.scale_down_events = HpaHistory::absolute(&h.scale_down_events, now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(n: usize, request_m: i64) -> Vec<Pod> {
        (0..n)
            .map(|i| Pod {
                name: format!("p{i}"),
                phase: PodPhase::Running,
                ready_condition: Some("True".into()),
                start_age_s: Some(3600.0),
                ready_transition_age_s: Some(3500.0),
                containers: vec![Container { name: "c".into(), request_milli: Some(request_m), requests: None }],
                ..Pod::default()
            })
            .collect()
    }

    fn obs(n: usize, usage_m: i64) -> Observation {
        Observation {
            spec_replicas: n as i32,
            status_replicas: n as i32,
            pods: pods(n, 100),
            pod_resource_metrics: (0..n)
                .map(|i| PodResourceSample {
                    pod: format!("p{i}"),
                    timestamp_age_s: 0.0,
                    window_s: 30.0,
                    containers: vec![ContainerUsage { name: "c".into(), usage_milli: Some(usage_m), usage: None }],
                })
                .collect(),
            pod_custom_metrics: BTreeMap::new(),
        }
    }

    fn spec(behavior: Option<BehaviorWritten>) -> HpaSpec {
        HpaSpec {
            min_replicas: 1,
            max_replicas: 100,
            metrics: vec![MetricSpec::resource_utilization("cpu", 50)],
            behavior,
        }
    }

    #[test]
    fn default_behavior_scale_up_is_max_of_4_pods_and_100_percent() {
        // c = 10 at 250 % of target: the metric asks for 50; Max(10+4, 20) = 20 (rate-008).
        let mut r = HpaRunner::new(spec(Some(BehaviorWritten::default())), ControllerConfig::default());
        let out = r.sync(0.0, &obs(10, 250), ReconcileOptions::default());
        assert_eq!(out.metric_desired_replicas, Some(50));
        assert_eq!(out.desired_replicas, 20);
        assert!(out.conditions.iter().any(|c| c.reason == "ScaleUpLimit"));
        // The scale event is stored: 15 s later, from 20, the period still holds the +10.
        let out = r.sync(10.0, &obs(20, 250), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 20, "rate limit within the 15 s period");
        let out = r.sync(16.0, &obs(20, 250), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 40);
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let b = BehaviorWritten {
            scale_up: None,
            scale_down: Some(ScalingRulesWritten {
                stabilization_window_s: Some(60),
                policies: Some(vec![ScalingPolicy { kind: PolicyType::Pods, value: 1, period_s: 30 }]),
                ..ScalingRulesWritten::default()
            }),
        };
        let mut r = HpaRunner::new(spec(Some(b)), ControllerConfig::default());
        assert_eq!(r.sync(0.0, &obs(4, 50), ReconcileOptions::default()).desired_replicas, 4);
        // Load drops: the metric wants 1, but a recommendation of 4 is inside the window.
        let out = r.sync(15.0, &obs(4, 10), ReconcileOptions::default());
        assert_eq!((out.metric_desired_replicas, out.desired_replicas), (Some(1), 4));
        assert!(out.conditions.iter().any(|c| c.reason == "ScaleDownStabilized"));
        // After the window, at most 1 pod per 30 s.
        let out = r.sync(61.0, &obs(4, 10), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 3);
        assert!(out.conditions.iter().any(|c| c.reason == "ScaleDownLimit"));
        let out = r.sync(76.0, &obs(3, 10), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 3, "the last pod went within 30 s");
        let out = r.sync(92.0, &obs(3, 10), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 2);
    }

    #[test]
    fn legacy_path_keeps_the_initial_record_for_five_minutes() {
        let mut r = HpaRunner::new(spec(None), ControllerConfig::default());
        let out = r.sync(0.0, &obs(4, 10), ReconcileOptions::default());
        assert_eq!((out.metric_desired_replicas, out.desired_replicas), (Some(1), 4));
        let out = r.sync(301.0, &obs(4, 10), ReconcileOptions::default());
        assert_eq!(out.desired_replicas, 1);
    }

    #[test]
    fn a_shadow_does_not_store_scale_events() {
        let mut r = HpaRunner::new(spec(Some(BehaviorWritten::default())), ControllerConfig::default());
        let out = r.sync(0.0, &obs(10, 250), ReconcileOptions { store_scale_events: false });
        assert_eq!(out.desired_replicas, 20);
        assert!(out.history_after.scale_up_events.is_empty());
    }
}
