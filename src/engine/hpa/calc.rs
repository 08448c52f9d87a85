//! Per-metric replica proposals (`replica_calculator.go`, `metrics/utilization.go`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::types::{Pod, PodMetric, PodPhase, PodResourceSample, PodValueSample, Tolerances};

/// Result of `groupPods`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PodGroups {
    pub ready_pod_count: i64,
    pub unready_pods: BTreeSet<String>,
    pub missing_pods: BTreeSet<String>,
    pub ignored_pods: BTreeSet<String>,
}

pub type PodMetrics = BTreeMap<String, PodMetric>;

/// `groupPods` (§2.1). `resource` is `Some("cpu")` for the CPU readiness rules.
pub fn group_pods(
    pods: &[Pod],
    metrics: &PodMetrics,
    resource: Option<&str>,
    cpu_initialization_period_s: f64,
    initial_readiness_delay_s: f64,
) -> PodGroups {
    let mut g = PodGroups::default();
    for pod in pods {
        if pod.deleting || pod.phase == PodPhase::Failed {
            g.ignored_pods.insert(pod.name.clone());
            continue;
        }
        if pod.phase == PodPhase::Pending {
            g.unready_pods.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing_pods.insert(pod.name.clone());
            continue;
        };
        if resource == Some("cpu") {
            let unready = match (&pod.ready_condition, pod.start_age_s) {
                (None, _) | (_, None) => true,
                (Some(cond), Some(start_age)) => {
                    let ltt_age = pod.ready_transition_age_s.unwrap_or(super::ZERO_TIME_AGE_S);
                    let is_false = cond == "False";
                    if start_age < cpu_initialization_period_s {
                        // Still initialising: unready, or no full window measured since the last
                        // readiness change.
                        is_false || metric.timestamp_age_s > ltt_age - metric.window_s
                    } else {
                        // Went unready soon after start and has never been ready since.
                        is_false && ltt_age > start_age - initial_readiness_delay_s
                    }
                }
            };
            if unready {
                g.unready_pods.insert(pod.name.clone());
                continue;
            }
        }
        g.ready_pod_count += 1;
    }
    g
}

/// `calculatePodRequests` (§2.2): per pod, the request of `resource` in milli-units.
pub fn calculate_requests(
    pods: &[Pod],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let containers = pod.counted_containers();
        let mut request: i64 = 0;
        let mut found = container.is_none();
        for c in &containers {
            if container.is_none() || container == Some(c.name.as_str()) {
                found = true;
                match c.request(resource) {
                    Some(r) => request = request.saturating_add(r),
                    None => {
                        return Err(format!(
                            "missing request for {resource} in container {} of Pod {}",
                            c.name, pod.name
                        ));
                    }
                }
            }
        }
        if let (false, Some(name)) = (found, container) {
            return Err(format!("container {name} not found in Pod {}", pod.name));
        }
        out.insert(pod.name.clone(), request);
    }
    Ok(out)
}

/// `getPodMetrics`: one value per pod from resource samples. A pod whose sample lacks the resource
/// in any container (or, for a named container, lacks that container) has no value.
pub fn extract_resource_metrics(
    samples: &[PodResourceSample],
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetrics, String> {
    if samples.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = PodMetrics::new();
    for s in samples {
        let value = match container {
            Some(name) => s.containers.iter().find(|c| c.name == name).and_then(|c| c.usage_of(resource)),
            None => {
                if s.containers.is_empty() {
                    None
                } else {
                    s.containers.iter().try_fold(0i64, |acc, c| c.usage_of(resource).map(|u| acc.saturating_add(u)))
                }
            }
        };
        if let Some(value) = value {
            out.insert(s.pod.clone(), PodMetric { value, timestamp_age_s: s.timestamp_age_s, window_s: s.window_s });
        }
    }
    Ok(out)
}

/// Custom (`Pods`) metric values per pod.
pub fn extract_value_metrics(samples: &[PodValueSample]) -> Result<PodMetrics, String> {
    if samples.is_empty() {
        return Err("no metrics returned from custom metrics API".into());
    }
    Ok(samples
        .iter()
        .map(|s| {
            (
                s.pod.clone(),
                PodMetric { value: s.value_milli, timestamp_age_s: s.timestamp_age_s, window_s: s.window_s },
            )
        })
        .collect())
}

/// `GetResourceUtilizationRatio`: (ratio, utilization %, raw average).
pub fn utilization_ratio(
    metrics: &PodMetrics,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i64, i64), String> {
    let mut metrics_total: i128 = 0;
    let mut requests_total: i128 = 0;
    let mut entries: i128 = 0;
    for (pod, m) in metrics {
        let Some(req) = requests.get(pod) else { continue };
        metrics_total += i128::from(m.value);
        requests_total += i128::from(*req);
        entries += 1;
    }
    if requests_total == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = clamp_i64((metrics_total * 100) / requests_total);
    let raw_average = clamp_i64(metrics_total / entries);
    Ok((utilization as f64 / f64::from(target_utilization), utilization, raw_average))
}

/// `GetMetricUsageRatio`: (ratio, average usage).
pub fn usage_ratio(metrics: &PodMetrics, target: i64) -> (f64, i64) {
    let total: i128 = metrics.values().map(|m| i128::from(m.value)).sum();
    let count = metrics.len().max(1) as i128;
    let usage = clamp_i64(total / count);
    (usage as f64 / target as f64, usage)
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `int32(math.Ceil(x))` with the newest code's clamp to the int32 range.
pub fn ceil_i32(x: f64) -> i32 {
    // `as` saturates (NaN -> 0), which is the clamp the newest upstream code applies.
    x.ceil() as i32
}

/// `int64(math.Ceil(x))` clamped to MaxInt64.
pub fn ceil_i64(x: f64) -> i64 {
    if x >= i64::MAX as f64 { i64::MAX } else { x.ceil() as i64 }
}

/// How a proposal was reached, for `hpa explain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProposalTrace {
    /// The usage ratio before any filling (current / target).
    pub usage_ratio: f64,
    pub within_tolerance: bool,
    /// `fast` (no missing pods, no unready pods on a scale-up) or `conservative`.
    pub path: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<PodGroups>,
    /// The ratio recomputed after filling missing/unready pods (conservative path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_usage_ratio: Option<f64>,
    /// Why the conservative path kept the current count, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_current_because: Option<&'static str>,
}

/// A per-metric result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub replicas: i32,
    /// Average utilization in whole percent (resource utilization targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization_percent: Option<i64>,
    /// Raw average value (resource targets) or usage as reported (others), milli-units.
    pub usage_milli: i64,
    pub trace: ProposalTrace,
}

/// Shared shape of the conservative recomputation (§2.3 step 7, §2.4).
struct Conservative<'a> {
    current_replicas: i32,
    tolerances: &'a Tolerances,
}

impl Conservative<'_> {
    fn decide(&self, usage_ratio: f64, new_ratio: f64, samples: usize, trace: &mut ProposalTrace) -> i32 {
        trace.new_usage_ratio = Some(new_ratio);
        let c = self.current_replicas;
        if self.tolerances.is_within(new_ratio) {
            trace.kept_current_because = Some("recomputed ratio within tolerance");
            return c;
        }
        if (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0) {
            trace.kept_current_because = Some("recomputed ratio flipped direction");
            return c;
        }
        let new_replicas = ceil_i32(new_ratio * samples as f64);
        if (new_ratio < 1.0 && new_replicas > c) || (new_ratio > 1.0 && new_replicas < c) {
            trace.kept_current_because = Some("proposal moves against the ratio's direction");
            return c;
        }
        new_replicas
    }
}

/// Group the pods and drop the samples of ignored and unready pods; errors when there are no pods
/// or no samples left (shared by the utilization and plain-value calculations).
fn group_and_filter(
    pods: &[Pod],
    metrics: &mut PodMetrics,
    resource: Option<&str>,
    cpu_initialization_period_s: f64,
    initial_readiness_delay_s: f64,
) -> Result<PodGroups, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, metrics, resource, cpu_initialization_period_s, initial_readiness_delay_s);
    for p in groups.ignored_pods.iter().chain(groups.unready_pods.iter()) {
        metrics.remove(p);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    Ok(groups)
}

/// `ReplicaCalculator.GetResourceReplicas` (§2.3).
#[allow(clippy::too_many_arguments)]
pub fn resource_utilization_replicas(
    current_replicas: i32,
    target_utilization: i32,
    resource: &str,
    container: Option<&str>,
    tolerances: &Tolerances,
    pods: &[Pod],
    samples: &[PodResourceSample],
    cpu_initialization_period_s: f64,
    initial_readiness_delay_s: f64,
) -> Result<Proposal, String> {
    let mut metrics = extract_resource_metrics(samples, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    let groups =
        group_and_filter(pods, &mut metrics, Some(resource), cpu_initialization_period_s, initial_readiness_delay_s)?;
    let requests = calculate_requests(pods, container, resource)?;
    let (usage_ratio, utilization, raw_average) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let scale_up_with_unready = !groups.unready_pods.is_empty() && usage_ratio > 1.0;
    let mut trace = ProposalTrace {
        usage_ratio,
        within_tolerance: tolerances.is_within(usage_ratio),
        path: "fast",
        groups: Some(groups.clone()),
        ..ProposalTrace::default()
    };
    let done = |replicas: i32, trace: ProposalTrace| Proposal {
        replicas,
        utilization_percent: Some(utilization),
        usage_milli: raw_average,
        trace,
    };
    if !scale_up_with_unready && groups.missing_pods.is_empty() {
        if trace.within_tolerance {
            return Ok(done(current_replicas, trace));
        }
        return Ok(done(ceil_i32(usage_ratio * groups.ready_pod_count as f64), trace));
    }
    trace.path = "conservative";
    if !groups.missing_pods.is_empty() {
        if usage_ratio < 1.0 {
            let fallback = i128::from(target_utilization.max(100));
            for p in &groups.missing_pods {
                let req = i128::from(requests.get(p).copied().unwrap_or(0));
                metrics.insert(
                    p.clone(),
                    PodMetric { value: clamp_i64(req * fallback / 100), timestamp_age_s: 0.0, window_s: 0.0 },
                );
            }
        } else if usage_ratio > 1.0 {
            for p in &groups.missing_pods {
                metrics.insert(p.clone(), PodMetric { value: 0, timestamp_age_s: 0.0, window_s: 0.0 });
            }
        }
    }
    if scale_up_with_unready {
        for p in &groups.unready_pods {
            metrics.insert(p.clone(), PodMetric { value: 0, timestamp_age_s: 0.0, window_s: 0.0 });
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let replicas =
        Conservative { current_replicas, tolerances }.decide(usage_ratio, new_ratio, metrics.len(), &mut trace);
    Ok(done(replicas, trace))
}

/// `calcPlainMetricReplicas` (§2.4), for `Pods` metrics and resource `averageValue` targets.
#[allow(clippy::too_many_arguments)]
pub fn plain_metric_replicas(
    mut metrics: PodMetrics,
    current_replicas: i32,
    target_usage: i64,
    tolerances: &Tolerances,
    pods: &[Pod],
    resource: Option<&str>,
    cpu_initialization_period_s: f64,
    initial_readiness_delay_s: f64,
) -> Result<Proposal, String> {
    let groups =
        group_and_filter(pods, &mut metrics, resource, cpu_initialization_period_s, initial_readiness_delay_s)?;
    let (usage_ratio, usage) = usage_ratio(&metrics, target_usage);
    let scale_up_with_unready = !groups.unready_pods.is_empty() && usage_ratio > 1.0;
    let mut trace = ProposalTrace {
        usage_ratio,
        within_tolerance: tolerances.is_within(usage_ratio),
        path: "fast",
        groups: Some(groups.clone()),
        ..ProposalTrace::default()
    };
    let done = |replicas: i32, trace: ProposalTrace| Proposal {
        replicas,
        utilization_percent: None,
        usage_milli: usage,
        trace,
    };
    if !scale_up_with_unready && groups.missing_pods.is_empty() {
        if trace.within_tolerance {
            return Ok(done(current_replicas, trace));
        }
        return Ok(done(ceil_i32(usage_ratio * groups.ready_pod_count as f64), trace));
    }
    trace.path = "conservative";
    // Missing pods: the target on a scale-down, 0 on a scale-up, nothing when the ratio is
    // exactly 1 (the count then stays, as Kubernetes leaves it).
    if !groups.missing_pods.is_empty() && usage_ratio != 1.0 {
        let fill = if usage_ratio < 1.0 { target_usage } else { 0 };
        for p in &groups.missing_pods {
            metrics.insert(p.clone(), PodMetric { value: fill, timestamp_age_s: 0.0, window_s: 0.0 });
        }
    }
    if scale_up_with_unready {
        for p in &groups.unready_pods {
            metrics.insert(p.clone(), PodMetric { value: 0, timestamp_age_s: 0.0, window_s: 0.0 });
        }
    }
    let (new_ratio, _) = self::usage_ratio(&metrics, target_usage);
    let replicas =
        Conservative { current_replicas, tolerances }.decide(usage_ratio, new_ratio, metrics.len(), &mut trace);
    Ok(done(replicas, trace))
}

/// `getReadyPodsCount`: Running pods with `Ready=True` (deleting pods count too).
pub fn ready_pods_count(pods: &[Pod]) -> Result<i64, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    Ok(pods.iter().filter(|p| p.phase == PodPhase::Running && p.ready_is("True")).count() as i64)
}

/// `getUsageRatioReplicaCount` (§2.5): Object and External `value` targets.
pub fn usage_ratio_replica_count(
    current_replicas: i32,
    usage_ratio: f64,
    tolerances: &Tolerances,
    pods: &[Pod],
) -> Result<(i32, ProposalTrace), String> {
    let mut trace = ProposalTrace {
        usage_ratio,
        within_tolerance: tolerances.is_within(usage_ratio),
        path: "fast",
        ..ProposalTrace::default()
    };
    if current_replicas != 0 {
        if trace.within_tolerance {
            return Ok((current_replicas, trace));
        }
        let ready = ready_pods_count(pods).map_err(|e| format!("unable to calculate ready pods: {e}"))?;
        Ok((ceil_i32(usage_ratio * ready as f64), trace))
    } else {
        trace.path = "scale_from_zero";
        Ok((ceil_i32(usage_ratio), trace))
    }
}

/// `GetObjectMetricReplicas`.
pub fn object_value_replicas(
    current_replicas: i32,
    usage: i64,
    target: i64,
    tolerances: &Tolerances,
    pods: &[Pod],
) -> Result<Proposal, String> {
    let ratio = usage as f64 / target as f64;
    let (replicas, trace) = usage_ratio_replica_count(current_replicas, ratio, tolerances, pods)?;
    Ok(Proposal { replicas, utilization_percent: None, usage_milli: usage, trace })
}

/// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas` (§2.6).
pub fn per_pod_average_replicas(
    status_replicas: i32,
    usage: i64,
    target_average: i64,
    tolerances: &Tolerances,
) -> Proposal {
    let ratio = usage as f64 / (target_average as f64 * f64::from(status_replicas));
    let within = tolerances.is_within(ratio);
    let replicas = if within { status_replicas } else { ceil_i32(usage as f64 / target_average as f64) };
    let per_pod = ceil_i64(usage as f64 / f64::from(status_replicas));
    Proposal {
        replicas,
        utilization_percent: None,
        usage_milli: per_pod,
        trace: ProposalTrace { usage_ratio: ratio, within_tolerance: within, path: "fast", ..ProposalTrace::default() },
    }
}

/// Sum of external values, capped at MaxInt64; an empty result is an error.
pub fn external_sum(values: &[i64]) -> Result<i64, String> {
    if values.is_empty() {
        return Err("no metrics returned from external metrics API".into());
    }
    Ok(values.iter().fold(0i64, |acc, v| acc.saturating_add(*v)))
}
