//! Input and state types of the HPA algorithm.
//!
//! All times are *ages* in seconds before "now" (`conformance/hpa-spec.md` §0). The shapes follow
//! the conformance data (`tests/data/hpa_cases.json`), so a case's `input` deserialises straight
//! into these types, and `scaletui hpa explain` reads the same JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The age that stands for Go's zero `time.Time` in the conformance data.
pub const ZERO_TIME_AGE_S: f64 = 100_000_000_000.0;

/// Per-direction tolerance (`isWithin(r)` ⇔ `1 − down ≤ r ≤ 1 + up`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    pub scale_down: f64,
    pub scale_up: f64,
}

impl Tolerances {
    pub fn both(t: f64) -> Self {
        Self { scale_down: t, scale_up: t }
    }

    /// `Tolerances.isWithin`: both bounds inclusive.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

impl Default for Tolerances {
    fn default() -> Self {
        Self::both(0.1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PodPhase {
    Pending,
    #[default]
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// A container's requests. `request_milli` is the request of "the resource being evaluated" (the
/// conformance data's form); `requests` names each resource (`cpu`, `memory`, …) explicitly and
/// wins when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub request_milli: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, i64>>,
}

impl Container {
    pub fn request(&self, resource: &str) -> Option<i64> {
        match &self.requests {
            Some(map) => map.get(resource).copied(),
            None => self.request_milli,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InitContainer {
    pub name: String,
    #[serde(default)]
    pub request_milli: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub restart_policy: Option<String>,
}

impl InitContainer {
    fn as_container(&self) -> Container {
        Container { name: self.name.clone(), request_milli: self.request_milli, requests: self.requests.clone() }
    }
}

/// What the HPA knows of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Pod {
    pub name: String,
    #[serde(default)]
    pub phase: PodPhase,
    #[serde(default)]
    pub deleting: bool,
    /// `"True"`, `"False"`, `"Unknown"` or absent (no Ready condition).
    #[serde(default)]
    pub ready_condition: Option<String>,
    /// `None`: no `status.startTime`.
    #[serde(default)]
    pub start_age_s: Option<f64>,
    /// Age of the Ready condition's `lastTransitionTime`; `None` with a condition = zero time.
    #[serde(default)]
    pub ready_transition_age_s: Option<f64>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Vec<InitContainer>,
}

impl Pod {
    pub fn ready_is(&self, value: &str) -> bool {
        self.ready_condition.as_deref() == Some(value)
    }

    /// Containers counted for requests: regular ones plus restartable (sidecar) init containers.
    pub fn counted_containers(&self) -> Vec<Container> {
        let mut all = self.containers.clone();
        all.extend(
            self.init_containers
                .iter()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                .map(InitContainer::as_container),
        );
        all
    }
}

/// One container's usage in a resource-metrics sample. `usage_milli: None` is a container that
/// lacks the resource (the Go harness's zero-value slot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContainerUsage {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub usage_milli: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BTreeMap<String, i64>>,
}

impl ContainerUsage {
    pub fn usage_of(&self, resource: &str) -> Option<i64> {
        match &self.usage {
            Some(map) => map.get(resource).copied(),
            None => self.usage_milli,
        }
    }
}

/// A `metrics.k8s.io` PodMetrics item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PodResourceSample {
    pub pod: String,
    #[serde(default)]
    pub timestamp_age_s: f64,
    #[serde(default = "default_window")]
    pub window_s: f64,
    #[serde(default)]
    pub containers: Vec<ContainerUsage>,
}

/// A custom-metrics (`Pods`) sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PodValueSample {
    pub pod: String,
    pub value_milli: i64,
    #[serde(default)]
    pub timestamp_age_s: f64,
    #[serde(default = "default_window")]
    pub window_s: f64,
}

fn default_window() -> f64 {
    60.0
}

/// A per-pod metric value after extraction (`metricsclient.PodMetric`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp_age_s: f64,
    pub window_s: f64,
}

/// A metric target (`autoscaling/v2` MetricTarget), values in milli-units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value_milli: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_milli: Option<i64>,
}

/// One entry of `spec.metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricSpec {
    /// `Resource`, `ContainerResource`, `Pods`, `Object`, `External`; anything else is invalid.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub described_object: Option<String>,
    #[serde(default)]
    pub target: Option<MetricTarget>,
}

impl MetricSpec {
    pub fn resource_utilization(resource: &str, percent: i32) -> Self {
        Self {
            kind: "Resource".into(),
            resource: Some(resource.into()),
            target: Some(MetricTarget { average_utilization_percent: Some(percent), ..MetricTarget::default() }),
            ..Self::default()
        }
    }

    /// A short name for display (`cpu`, `memory`, `qps`, …).
    pub fn label(&self) -> String {
        match (&self.resource, &self.metric, &self.container) {
            (Some(r), _, Some(c)) => format!("{r}/{c}"),
            (Some(r), _, None) => r.clone(),
            (None, Some(m), _) => m.clone(),
            _ => self.kind.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    Pods,
    Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub kind: PolicyType,
    pub value: i32,
    #[serde(alias = "periodSeconds")]
    pub period_s: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SelectPolicy {
    #[default]
    Max,
    Min,
    Disabled,
}

/// `HPAScalingRules` as written by a user: every field optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScalingRulesWritten {
    #[serde(default)]
    #[serde(alias = "selectPolicy")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default)]
    #[serde(alias = "stabilizationWindowSeconds")]
    pub stabilization_window_s: Option<i32>,
    #[serde(default)]
    pub policies: Option<Vec<ScalingPolicy>>,
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// `spec.behavior` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BehaviorWritten {
    #[serde(default)]
    #[serde(alias = "scaleUp")]
    pub scale_up: Option<ScalingRulesWritten>,
    #[serde(default)]
    #[serde(alias = "scaleDown")]
    pub scale_down: Option<ScalingRulesWritten>,
}

/// `HPAScalingRules` after API defaulting. `stabilization_window_s: None` means "the controller's
/// downscale-stabilization flag" (scale-down only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingRules {
    #[serde(default)]
    pub select_policy: SelectPolicy,
    #[serde(default)]
    pub stabilization_window_s: Option<i32>,
    #[serde(default)]
    pub policies: Vec<ScalingPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

impl ScalingRules {
    /// `GenerateHPAScaleUpRules` defaults: window 0, Max of {4 pods/15 s, 100 %/15 s}.
    pub fn default_scale_up() -> Self {
        Self {
            select_policy: SelectPolicy::Max,
            stabilization_window_s: Some(0),
            policies: vec![
                ScalingPolicy { kind: PolicyType::Pods, value: 4, period_s: 15 },
                ScalingPolicy { kind: PolicyType::Percent, value: 100, period_s: 15 },
            ],
            tolerance: None,
        }
    }

    /// `GenerateHPAScaleDownRules` defaults: window from the controller flag, 100 %/15 s.
    pub fn default_scale_down() -> Self {
        Self {
            select_policy: SelectPolicy::Max,
            stabilization_window_s: None,
            policies: vec![ScalingPolicy { kind: PolicyType::Percent, value: 100, period_s: 15 }],
            tolerance: None,
        }
    }

    /// `copyHPAScalingRules`: every field the user set replaces the default.
    pub fn with_written(mut self, written: Option<&ScalingRulesWritten>) -> Self {
        if let Some(w) = written {
            if let Some(p) = w.select_policy {
                self.select_policy = p;
            }
            if let Some(s) = w.stabilization_window_s {
                self.stabilization_window_s = Some(s);
            }
            if let Some(p) = &w.policies {
                self.policies = p.clone();
            }
            if let Some(t) = w.tolerance {
                self.tolerance = Some(t);
            }
        }
        self
    }

    pub fn longest_period_s(&self) -> i32 {
        self.policies.iter().map(|p| p.period_s).max().unwrap_or(0)
    }
}

/// `spec.behavior` after defaulting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Behavior {
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

impl Behavior {
    /// `SetDefaults_HorizontalPodAutoscalerBehavior`.
    pub fn from_written(w: &BehaviorWritten) -> Self {
        Self {
            scale_up: ScalingRules::default_scale_up().with_written(w.scale_up.as_ref()),
            scale_down: ScalingRules::default_scale_down().with_written(w.scale_down.as_ref()),
        }
    }
}

/// A stored recommendation (`timestampedRecommendation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub replicas: i32,
    pub age_s: f64,
}

/// A stored scale event (`timestampedScaleEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleEvent {
    pub replica_change: i32,
    pub age_s: f64,
    #[serde(default)]
    pub outdated: bool,
}

/// kube-controller-manager settings that shape the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerConfig {
    pub tolerance: f64,
    pub cpu_initialization_period_s: f64,
    pub initial_readiness_delay_s: f64,
    pub downscale_stabilization_window_s: f64,
    pub legacy_scale_up_limit_factor: f64,
    pub legacy_scale_up_limit_minimum: f64,
}

impl Default for ControllerConfig {
    /// Production defaults (`hpa-spec.md` §8).
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period_s: 300.0,
            initial_readiness_delay_s: 30.0,
            downscale_stabilization_window_s: 300.0,
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
        }
    }
}
